package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/servertest"
)

// axeViolation is one rule axe-core found broken, with the elements.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	URL    string `json:"helpUrl"`
	Nodes  []struct {
		Target  []any  `json:"target"`
		HTML    string `json:"html"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// axeScript is axe-core's browser bundle from _browsers (pinned by its
// lock file). The test injects it into the page it checks; Parley never
// serves it.
func axeScript(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(nodeModule(t, filepath.Join("axe-core", "axe.min.js")))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitTiles waits until u's page shows exactly these remote participants'
// tiles, each showing video frames: the call's state axe checks (it does
// not need the frames to keep coming, so a loaded machine does not fail it).
func (u *user) waitTiles(ids []string, timeout time.Duration) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("tiles with video for %v", ids), fmt.Sprintf(`(() => { const want = %s;
		const tiles = [...document.querySelectorAll('#tiles .tile[data-participant-id]:not(.local):not(.screen)')];
		return tiles.length === want.length && want.every(id => tiles.some(t => t.dataset.participantId === id && t.dataset.frames === "yes")); })()`, jsArray(ids)), timeout)
}

// axeCheck runs axe-core on u's page as it is now and fails the test on
// any violation, whatever its impact. what names the page and its state.
func (u *user) axeCheck(t *testing.T, axe, what string) {
	t.Helper()
	if !eval[bool](u, `typeof window.axe === "object"`) {
		eval[bool](u, axe+"\n;true")
	}
	// axe takes a few seconds on the call page, many more on a loaded machine.
	ctx, cancel := context.WithTimeout(u.ctx, 3*time.Minute)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: axe.run: %v", what, err)
	}
	reportAxe(t, what, out)
}

// reportAxe fails t for each violation in axe's JSON answer.
func reportAxe(t *testing.T, what, out string) {
	t.Helper()
	var vs []axeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatalf("%s: axe answered %s: %v", what, out, err)
	}
	for _, v := range vs {
		var b strings.Builder
		for _, n := range v.Nodes {
			fmt.Fprintf(&b, "\n    %v %s\n      %s", n.Target, n.HTML, strings.ReplaceAll(n.Summary, "\n", "\n      "))
		}
		t.Errorf("%s: axe %s (%s): %s (%s)%s", what, v.ID, v.Impact, v.Help, v.URL, b.String())
	}
	t.Logf("%s: axe found %d violations", what, len(vs))
}

// TestAccessibility runs axe-core on every page and state a person goes
// through: landing, sign-up, login, forgotten password, channels,
// account, the channel page before joining and its pre-join check, alone
// in the call, a two-person call, a three-person call (SFU) with chat
// messages and a raised hand, the recordings and studio pages, and an
// error page. Any violation fails, minor ones included.
func TestAccessibility(t *testing.T) {
	axe := axeScript(t)
	s := servertest.Start(t)
	browser := newBrowser(t)
	ada := newUser(t, browser, s, "Ada")

	for _, p := range []struct{ path, what string }{
		{"/", "landing"}, {"/signup", "sign-up"}, {"/login", "login"}, {"/forgot", "forgotten password"},
	} {
		ada.do(chromedp.Navigate(s.URL + p.path))
		ada.axeCheck(t, axe, p.what)
	}
	ada.do(chromedp.Navigate(s.URL + "/receive"))
	ada.waitFor("a code on the device", `window.parleyReceive?.code?.length === 6 && window.parleyReceive.state === "waiting"`, 15*time.Second)
	ada.axeCheck(t, axe, "send-to-device receiver showing its code")
	ada.signUp("ada", "Ada")
	ada.axeCheck(t, axe, "channels (empty)")
	ch := ada.createChannel("Accessible sync")
	ada.do(chromedp.Navigate(s.URL + "/channels"))
	ada.axeCheck(t, axe, "channels (one channel)")
	ada.do(chromedp.Navigate(s.URL + "/account"))
	ada.axeCheck(t, axe, "account")
	ada.do(chromedp.Navigate(s.URL + "/c/nosuchchannel0000000"))
	ada.axeCheck(t, axe, "error page")

	bob := newUser(t, browser, s, "Bob")
	bob.signUp("bob", "Bob")
	cyd := newUser(t, browser, s, "Cyd")
	cyd.signUp("cyd", "Cyd")
	ada.addMember(ch, "bob")
	ada.addMember(ch, "cyd")
	ada.do(chromedp.Navigate(s.URL + "/c/" + ch))
	ada.waitFor("signaling to connect", `document.querySelector('#signal-status')?.dataset.state === "connected"`, 15*time.Second)
	ada.axeCheck(t, axe, "channel page before joining")
	ada.do(chromedp.Click(chromedp.CSS("#prejoin-check")))
	ada.waitFor("the pre-join preview playing", `document.querySelector('#prejoin-preview')?.videoWidth > 0`, 30*time.Second)
	ada.axeCheck(t, axe, "pre-join check (preview, devices, level)")

	ada.joinCall(ch)
	ada.axeCheck(t, axe, "call, alone")
	bob.joinCall(ch)
	adaID, bobID := ada.myID(), bob.myID()
	ada.waitTiles([]string{bobID}, time.Minute)
	ada.axeCheck(t, axe, "two-person call")

	cyd.joinCall(ch)
	cydID := cyd.myID()
	cyd.waitTiles([]string{adaID, bobID}, time.Minute)
	for i, u := range []*user{ada, bob, cyd} {
		u.do(fill("#chat-input", fmt.Sprintf("hello from %s, message %d", u.name, i)), chromedp.Click(chromedp.CSS("#chat-send")))
	}
	cyd.waitFor("three chat messages", `document.querySelectorAll('#chat-log .chat-msg').length >= 3`, 10*time.Second)
	ada.waitTiles([]string{bobID, cydID}, time.Minute)
	bob.do(chromedp.Click(chromedp.CSS("#hand-btn")))
	ada.waitFor("Bob's raised hand listed", `!!document.querySelector('#hands-list li')`, 10*time.Second)
	ada.axeCheck(t, axe, "three-person call with chat")
	cyd.axeCheck(t, axe, "three-person call with chat (the last to join)")

	ada.do(chromedp.Navigate(s.URL + "/c/" + ch + "/recordings"))
	ada.axeCheck(t, axe, "recordings")
	ada.do(chromedp.Navigate(s.URL + "/c/" + ch + "/studio"))
	ada.axeCheck(t, axe, "studio")
}

// TestAccessibilityGuestsAndLobby runs axe-core on the states the first
// test does not reach: the channel page with a moderator and the guest
// link on, the guest's name page, a guest waiting in the lobby, and a
// member's call with someone waiting (admit and deny).
func TestAccessibilityGuestsAndLobby(t *testing.T) {
	axe := axeScript(t)
	s := servertest.Start(t)
	browser := newBrowser(t)
	ada, gus := newUser(t, browser, s, "Ada"), newUser(t, browser, s, "Gus")
	ada.signUp("ada", "Ada")
	s.SignUp("bob", "Bob")
	ch := ada.createChannel("Open house")
	ada.addMember(ch, "bob")
	ada.do(chromedp.Click(chromedp.CSS(`#member-list li[data-username="bob"] form[action$="/moderator"] button`)))
	ada.waitFor("Bob shown a moderator", `document.readyState === "complete" && /Unmake moderator/.test(document.querySelector('#member-list li[data-username="bob"]')?.textContent || "")`, 10*time.Second)
	ada.do(chromedp.Navigate(s.URL+"/c/"+ch), chromedp.Click(chromedp.CSS("#guests-on-btn")))
	ada.waitFor("the guest link", `!!document.querySelector('#guest-url')`, 10*time.Second)
	ada.axeCheck(t, axe, "channel page with a moderator and the guest link")
	link := eval[string](ada, `document.querySelector('#guest-url').value`)
	ada.joinCall(ch)

	gus.do(chromedp.Navigate(link))
	gus.axeCheck(t, axe, "guest name page")
	gus.do(fill("#name", "Gus Guest"), chromedp.Click(chromedp.CSS("#guest-enter-btn")))
	gus.waitFor("the guest's call page", `document.querySelector('#signal-status')?.dataset.state === "connected"`, 15*time.Second)
	gus.axeCheck(t, axe, "guest's call page before joining")
	gus.do(chromedp.Click(chromedp.CSS("#join-btn")))
	gus.waitFor("Gus told he waits", `/Waiting for someone in the call to let you in/.test(document.querySelector('#moderation-status').textContent)`, 15*time.Second)
	gus.axeCheck(t, axe, "guest waiting in the lobby")
	ada.waitFor("1 waiting on Ada's page", `(() => { const w = document.querySelector('#waiting'); return !!w && !w.hidden && /1 waiting/.test(w.textContent); })()`, 10*time.Second)
	ada.axeCheck(t, axe, "call with a guest waiting (admit, deny)")
}

// axeCheck is axeCheck for a Firefox page.
func (u *ffUser) axeCheck(t *testing.T, axe, what string) {
	t.Helper()
	if !ffEval[bool](u, `typeof window.axe === "object"`) {
		u.run(map[string]any{"op": "script", "source": axe})
	}
	var out string
	raw := u.runFor(map[string]any{"op": "eval", "expr": `axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations))`}, 3*time.Minute)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s (Firefox): axe answered %s: %v", what, raw, err)
	}
	reportAxe(t, what+" (Firefox)", out)
}
