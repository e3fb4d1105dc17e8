package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/pairing"
	"github.com/parley/parley/internal/servertest"
)

// pairTTL is the test server's code lifetime: long enough to type a code,
// short enough to watch one expire.
const pairTTL = 8 * time.Second

// TestSendToDevice: Alice and Bob are in a call; a third Chromium opens
// /receive (no account) and shows a code; Alice sends Bob's stream to it
// by that code. The device decodes Bob's video (frames rising) and hears
// his tone (audio energy rising), straight from Alice's page. A fourth
// client with the same code is refused; stopping, and leaving the call,
// stop the device, which shows a new code; an unused code expires.
func TestSendToDevice(t *testing.T) {
	s, alice, bobID, tv := startSendTo(t)
	code := alice.sendTo(tv, "participant", bobID)
	tv.waitPlaysBob()

	// A fourth client (a member of a call of their own) with the same
	// code is refused: the pair admits two.
	dave := s.SignUp("dave", "Dave")
	daveChannel := s.CreateChannel(dave, "Dave's")
	if st := dialSend(t, s, dave, daveChannel, code); st != http.StatusConflict {
		t.Fatalf("a second sender with a taken code: status %d, want 409", st)
	}
	// Not logged in: refused before the code is looked at.
	if st := dialSend(t, s, s.Client(), daveChannel, code); st != http.StatusUnauthorized {
		t.Fatalf("a sender without an account: status %d, want 401", st)
	}

	// Alice stops: the device says so and shows a new code.
	alice.do(chromedp.Click(chromedp.CSS("#sendto-stop")))
	tv.waitFor("the device to say the sender stopped, with a new code",
		fmt.Sprintf(`window.parleyReceive.state === "waiting" && window.parleyReceive.code !== %q && window.parleyReceive.status.includes("The sender stopped")`, code), 15*time.Second)
	if n := evalAsync[int](tv, `window.parleyReceive.stats().then(s => s.frames.length)`); n != 0 {
		t.Fatalf("the device still shows %d streams after the stop", n)
	}

	// The whole grid: one stream per participant, named.
	alice.sendTo(tv, "grid", "")
	tv.waitFor("the device to play the grid", `window.parleyReceive.state === "playing"`, 30*time.Second)
	tv.waitFor("Bob's tile in the grid", `window.parleyReceive.stats().then(s => s.names.length === 1 && s.names[0] === "Bob")`, 10*time.Second)
	tv.waitDeviceFramesRise(10, 15*time.Second)
	alice.do(chromedp.Click(chromedp.CSS("#sendto-stop")))
	tv.waitFor("a new code after the grid", `window.parleyReceive.state === "waiting" && window.parleyReceive.code.length === 6`, 15*time.Second)

	// The active speaker this time; then Alice leaves the call.
	alice.sendTo(tv, "speaker", "")
	tv.waitFor("the device to play the speaker", `window.parleyReceive.state === "playing"`, 30*time.Second)
	tv.waitDeviceFramesRise(10, 15*time.Second)
	alice.do(chromedp.Evaluate[chromedp.Void](`document.querySelector("#sendto-dialog").close()`))
	alice.do(chromedp.Click(chromedp.CSS("#hangup-btn")))
	tv.waitFor("leaving the call to stop the device", `window.parleyReceive.state === "waiting" && window.parleyReceive.status.includes("The sender stopped")`, 15*time.Second)

	// Nobody uses the new code: it expires, the device shows another,
	// and the old one is refused.
	unused := eval[string](tv, `window.parleyReceive.code`)
	tv.waitFor("the unused code to be replaced", fmt.Sprintf(`window.parleyReceive.state === "waiting" && window.parleyReceive.code.length === 6 && window.parleyReceive.code !== %q`, unused), pairTTL+20*time.Second)
	if st := dialSend(t, s, dave, daveChannel, unused); st != http.StatusNotFound {
		t.Fatalf("an expired code: status %d, want 404", st)
	}
}

// startSendTo starts a server (codes expiring after pairTTL; opts may
// change more), puts Alice and Bob in a call, and opens /receive on a
// third browser, not logged in. It returns Bob's participant id.
func startSendTo(t *testing.T, mutate ...func(*config.Config)) (s *servertest.Server, alice *user, bobID string, tv *user) {
	t.Helper()
	s = servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.PairingTTL = pairTTL
		for _, m := range mutate {
			m(c)
		}
	}))
	alice = newUser(t, newBrowser(t), s, "Alice")
	bob := newUser(t, newBrowser(t), s, "Bob")
	alice.signUp("alice", "Alice")
	bob.signUp("bob", "Bob")
	channel := alice.createChannel("Movie night")
	alice.addMember(channel, "bob")
	alice.joinCall(channel)
	bob.joinCall(channel)
	bobID = bob.myID()
	alice.waitRemoteVideos([]string{bobID}, 45*time.Second)

	tv = newUser(t, newBrowser(t), s, "TV")
	tv.do(chromedp.Navigate(s.URL + "/receive"))
	tv.waitFor("a code on the device", `window.parleyReceive?.code?.length === 6 && window.parleyReceive.state === "waiting"`, 15*time.Second)
	return s, alice, bobID, tv
}

// waitPlaysBob waits until the device shows Bob's stream, named, with
// frames rising, and hears his tone (decoded audio energy rising).
func (u *user) waitPlaysBob() {
	u.t.Helper()
	u.waitFor("the device to play", `window.parleyReceive.state === "playing"`, 30*time.Second)
	u.waitFor("Bob's name on the device", `window.parleyReceive.stats().then(s => s.names.includes("Bob"))`, 10*time.Second)
	u.waitDeviceFramesRise(10, 15*time.Second)
	// Autoplay with sound wants a gesture on the device: the page plays
	// muted and offers a button, which a person presses.
	if eval[bool](u, `!document.querySelector("#receive-sound").hidden`) {
		u.do(chromedp.Click(chromedp.CSS("#receive-sound")))
	}
	u.waitFor("Bob's tone on the device", `window.parleyReceive.stats().then(s => s.energy > 0)`, 20*time.Second)
	energy := evalAsync[float64](u, `window.parleyReceive.stats().then(s => s.energy)`)
	u.waitFor("the tone to keep playing", fmt.Sprintf(`window.parleyReceive.stats().then(s => s.energy > %v)`, energy), 10*time.Second)
}

// TestSendToDeviceSFU: the same through the SFU (--p2p-max 1), in
// "active speaker" mode: the tracks Alice's page forwards are the ones
// its SFU subscribe connection receives.
func TestSendToDeviceSFU(t *testing.T) {
	_, alice, _, tv := startSendTo(t, func(c *config.Config) { c.P2PMax = 1 })
	alice.waitFor("the call on the SFU", `window.parley.state.topology === "sfu" && Object.values(window.parley.state.shown || {}).every(p => p === "sfu")`, 20*time.Second)
	alice.sendTo(tv, "speaker", "")
	tv.waitPlaysBob()
}

// sendTo opens "Send to a device" in u's call, types the device's code
// and sends what mode says; it returns the code. A code that expired
// between reading and sending (the test server's are short) is read
// again.
func (u *user) sendTo(device *user, mode, participantID string) string {
	u.t.Helper()
	for try := 0; ; try++ {
		code := eval[string](device, `window.parleyReceive.code`)
		u.do(
			chromedp.Evaluate[chromedp.Void](`document.querySelector("#sendto-dialog").open || document.querySelector("#sendto-btn").click()`),
			chromedp.WaitVisible(chromedp.CSS("#sendto-code")),
			chromedp.Evaluate[chromedp.Void](`document.querySelector("#sendto-code").value = ""`),
			chromedp.SendKeys(chromedp.CSS("#sendto-code"), code[:3]+" "+code[3:]),
			chromedp.Click(chromedp.CSS("#sendto-mode-"+mode)),
		)
		if participantID != "" {
			u.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector("#sendto-who").value = %q`, participantID)))
		}
		u.do(chromedp.Click(chromedp.CSS("#sendto-start")))
		err := u.tryWaitFor(`["paired", "sending", "failed"].includes(document.querySelector("#sendto-btn").dataset.state)`, 15*time.Second)
		state := eval[string](u, `document.querySelector("#sendto-btn").dataset.state`)
		if err == nil && state != "failed" {
			u.waitFor("Alice's page to send", `document.querySelector("#sendto-btn").dataset.state === "sending"`, 30*time.Second)
			return code
		}
		if try == 2 {
			u.t.Fatalf("%s: sending to code %s: %s (%v)", u.name, code, eval[string](u, `document.querySelector("#sendto-status").textContent`), err)
		}
		device.waitFor("a fresh code", fmt.Sprintf(`window.parleyReceive.code.length === 6 && window.parleyReceive.code !== %q`, code), pairTTL+10*time.Second)
	}
}

// waitDeviceFramesRise waits until every stream the device shows painted
// n more frames than now.
func (u *user) waitDeviceFramesRise(n int, timeout time.Duration) {
	u.t.Helper()
	base := evalAsync[[]int](u, `window.parleyReceive.stats().then(s => s.frames)`)
	if len(base) == 0 {
		u.t.Fatalf("%s: no streams shown", u.name)
	}
	u.waitFor(fmt.Sprintf("frames to rise from %v", base), fmt.Sprintf(`window.parleyReceive.stats().then(s => s.frames.length === %d && s.frames.every((f, i) => f >= %s[i] + %d))`, len(base), jsInts(base), n), timeout)
}

func jsInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// dialSend tries /ws/send as c's user and returns the HTTP status (101 if
// it was admitted; the socket is closed again).
func dialSend(t *testing.T, s *servertest.Server, c *http.Client, channelID, code string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hd := http.Header{"Origin": {s.URL}}
	if ck := s.SessionCookie(c); ck != nil {
		hd.Set("Cookie", ck.Name+"="+ck.Value)
	}
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/send?code="+code+"&channel="+channelID, &websocket.DialOptions{
		HTTPHeader: hd, Subprotocols: []string{pairing.Subprotocol},
	})
	if err == nil {
		conn.CloseNow()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial /ws/send: %v", err)
	}
	return resp.StatusCode
}
