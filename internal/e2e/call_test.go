// Package e2e_test drives real headless Chromium against a real Parley
// server on 127.0.0.1:0: sign-up through the forms, channels, and calls
// whose video is checked frame by frame.
package e2e_test

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/servertest"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write docs/images/call.png and call-phone.png from TestCallRoom (call.png also as the landing page's internal/ui/static/call-screenshot.png) and docs/images/studio.png from TestStudioLiveOverdub")

// call is three people in one channel's call, each in their own window.
type call struct {
	s       *servertest.Server
	channel string
	users   []*user
	ids     []string
}

// startCall signs n users up through the forms; the first creates a
// channel and adds the others through the channel page; all join the call
// and see each other's video.
func startCall(t *testing.T, names ...string) *call {
	t.Helper()
	s := servertest.Start(t)
	browser := newBrowser(t)
	c := &call{s: s}
	for _, n := range names {
		u := newUser(t, browser, s, n)
		u.signUp(lower(n), n)
		c.users = append(c.users, u)
	}
	c.channel = c.users[0].createChannel("Weekly sync")
	for _, n := range names[1:] {
		c.users[0].addMember(c.channel, lower(n))
	}
	for _, u := range c.users {
		u.joinCall(c.channel)
		c.ids = append(c.ids, u.myID())
	}
	for i, u := range c.users {
		u.waitRemoteVideos(c.others(i), 45*time.Second)
	}
	return c
}

func (c *call) others(i int) []string {
	var out []string
	for j, id := range c.ids {
		if j != i {
			out = append(out, id)
		}
	}
	return out
}

func lower(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if 'A' <= ch && ch <= 'Z' {
			b[i] = ch + 'a' - 'A'
		}
	}
	return string(b)
}

func tileSel(id string) string {
	return fmt.Sprintf(`#tiles .tile[data-participant-id=%q]:not(.screen)`, id)
}

// Test 1 (and 2, 3, 4 on the same call, to spend the browser start-up
// once): three people see two remote videos each; mute and camera-off
// show on the others' tiles; a screen share is a new tile; hang-up
// removes the tile within 2 s.
func TestThreePersonCall(t *testing.T) {
	c := startCall(t, "Ada", "Bob", "Cyd")
	ada, bob, cyd := c.users[0], c.users[1], c.users[2]

	t.Run("mute shows on the others' tiles", func(t *testing.T) {
		ada.do(chromedp.Click(chromedp.CSS("#mute-btn")))
		for _, u := range []*user{bob, cyd} {
			u.waitFor("Ada shown muted", fmt.Sprintf(`document.querySelector('%s')?.dataset.audio === "off"`, tileSel(c.ids[0])), 5*time.Second)
		}
		ada.do(chromedp.Click(chromedp.CSS("#mute-btn")))
		for _, u := range []*user{bob, cyd} {
			u.waitFor("Ada shown unmuted", fmt.Sprintf(`document.querySelector('%s')?.dataset.audio === "on"`, tileSel(c.ids[0])), 5*time.Second)
		}
	})

	t.Run("camera off shows on the others' tiles", func(t *testing.T) {
		bob.do(chromedp.Click(chromedp.CSS("#camera-btn")))
		for _, u := range []*user{ada, cyd} {
			u.waitFor("Bob's camera shown off", fmt.Sprintf(`document.querySelector('%s')?.dataset.video === "off"`, tileSel(c.ids[1])), 5*time.Second)
		}
		bob.do(chromedp.Click(chromedp.CSS("#camera-btn")))
		for _, u := range []*user{ada, cyd} {
			u.waitFor("Bob's camera shown on", fmt.Sprintf(`document.querySelector('%s')?.dataset.video === "on"`, tileSel(c.ids[1])), 5*time.Second)
		}
	})

	t.Run("screen share is a new tile", func(t *testing.T) {
		cyd.do(chromedp.Click(chromedp.CSS("#screen-btn")))
		screen := fmt.Sprintf(`#tiles .tile.screen[data-participant-id=%q] video`, c.ids[2])
		for _, u := range []*user{ada, bob} {
			u.waitFor("Cyd's screen tile with frames", fmt.Sprintf(`(() => { const v = document.querySelector('%s');
				return v && v.getVideoPlaybackQuality().totalVideoFrames > 0; })()`, screen), 20*time.Second)
		}
		cyd.do(chromedp.Click(chromedp.CSS("#screen-btn")))
		for _, u := range []*user{ada, bob} {
			u.waitFor("Cyd's screen tile gone", fmt.Sprintf(`!document.querySelector('%s')`, screen), 10*time.Second)
		}
	})

	// Issue 9 item 10: display names can repeat or imitate each other, so
	// tiles (for screen readers and on hover) and chat name the username.
	t.Run("usernames shown next to display names", func(t *testing.T) {
		bob.waitFor("Ada's tile names her username", fmt.Sprintf(`(() => { const el = document.querySelector('%s');
			return !!el && el.getAttribute("aria-label") === "Ada (@ada)" && el.querySelector(".tile-username")?.textContent === "@ada"; })()`,
			tileSel(c.ids[0])), 5*time.Second)
		ada.do(fill("#chat-input", "who am i"), chromedp.Click(chromedp.CSS("#chat-send")))
		cyd.waitFor("chat names Ada's username", `[...document.querySelectorAll('#chat-log .chat-msg')].some(li =>
			li.textContent.includes("who am i") && li.querySelector(".chat-username")?.textContent === "@ada")`, 10*time.Second)
	})

	t.Run("hang-up removes the tile within 2s", func(t *testing.T) {
		cyd.do(chromedp.Click(chromedp.CSS("#hangup-btn")))
		for _, u := range []*user{ada, bob} {
			u.waitFor("Cyd's tile gone", fmt.Sprintf(`!document.querySelector('#tiles .tile[data-participant-id=%q]')`, c.ids[2]), 2*time.Second)
		}
		// The two left keep talking.
		ada.waitFramesRise([]string{c.ids[1]}, 10, 10*time.Second)
		bob.waitFramesRise([]string{c.ids[0]}, 10, 10*time.Second)
	})
}

// Test 5: the server goes away mid-call; media keeps flowing peer to peer,
// the pages say signaling is reconnecting, and reconnect by themselves when
// the server is back on the same address.
func TestCallSurvivesServerRestart(t *testing.T) {
	c := startCall(t, "Ada", "Bob")
	ada, bob := c.users[0], c.users[1]

	c.s.Stop()
	for _, u := range c.users {
		u.waitFor("signaling shown as reconnecting", `document.querySelector('#signal-status')?.dataset.state === "reconnecting"`, 10*time.Second)
	}
	// For 5 s with no server, new frames keep being decoded on both sides
	// (checked in rounds of at least 5 frames each).
	start := time.Now()
	for start.Add(5 * time.Second).After(time.Now()) {
		ada.waitFramesRise([]string{c.ids[1]}, 5, 2*time.Second)
		bob.waitFramesRise([]string{c.ids[0]}, 5, 2*time.Second)
	}

	c.s.Restart()
	for _, u := range c.users {
		u.waitFor("signaling reconnected", `document.querySelector('#signal-status')?.dataset.state === "connected"`, 20*time.Second)
	}
	// Both are back in the call under the same ids and still see each other.
	if got := ada.myID(); got != c.ids[0] {
		t.Errorf("Ada rejoined as %s, want %s", got, c.ids[0])
	}
	ada.waitFramesRise([]string{c.ids[1]}, 10, 10*time.Second)
	bob.waitFramesRise([]string{c.ids[0]}, 10, 10*time.Second)
	// The server knows both again: chat goes through.
	ada.do(fill("#chat-input", "back again"), chromedp.Click(chromedp.CSS("#chat-send")))
	bob.waitFor("chat after restart", `[...document.querySelectorAll('#chat-log .chat-msg')].some(li => li.textContent.includes("back again"))`, 10*time.Second)
}

// Test 6: a logged-in non-member who knows the channel URL cannot see it
// or join it.
func TestNonMemberCannotJoin(t *testing.T) {
	s := servertest.Start(t)
	browser := newBrowser(t)
	owner := newUser(t, browser, s, "Olivia")
	owner.signUp("olivia", "Olivia")
	ch := owner.createChannel("Secret plans")
	owner.joinCall(ch)

	eve := newUser(t, browser, s, "Eve")
	eve.signUp("eve", "Eve")
	resp, err := chromedp.RunResponse(eve.ctx, chromedp.Navigate(s.URL+"/c/"+ch))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 403 {
		t.Errorf("non-member page status %d, want 403", resp.Status)
	}
	body := eval[string](eve, `document.body.innerText`)
	if !strings.Contains(body, "not a member") || strings.Contains(body, "Secret plans") || strings.Contains(body, "Olivia") {
		t.Errorf("403 page does not explain, or leaks the channel: %q", body)
	}
	if eval[bool](eve, `!!document.querySelector('#call-app')`) {
		t.Error("the call app is on the 403 page")
	}
	// Opening the signaling socket by hand from the browser fails too.
	outcome := evalAsync[string](eve, fmt.Sprintf(`new Promise(resolve => {
		const ws = new WebSocket("ws://" + location.host + "/ws/c/%s", "parley.v1");
		ws.onopen = () => resolve("open");
		ws.onerror = () => resolve("refused");
	})`, ch))
	if outcome != "refused" {
		t.Errorf("non-member websocket: %s", outcome)
	}
	// The owner's lobby/call never heard of Eve.
	if n := eval[int](owner, `document.querySelectorAll('#tiles .tile:not(.local)').length`); n != 0 {
		t.Errorf("owner sees %d remote tiles", n)
	}
}
