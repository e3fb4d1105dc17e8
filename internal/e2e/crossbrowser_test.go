package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/servertest"
)

// tileGoneWithin is how soon the others must lose the tile of someone who
// closed their tab (issue 14: Firefox's leave used to be cut off, leaving
// a frozen tile for the dead-socket timeout).
const tileGoneWithin = time.Second

// watchTileGone starts recording, in u's page, when the tile of id goes
// (Date.now() in window.__tileGoneAt).
func (u *user) watchTileGone(id string) {
	u.t.Helper()
	eval[bool](u, fmt.Sprintf(`(() => { window.__tileGoneAt = 0;
		const sel = '#tiles .tile[data-participant-id=%q]';
		const obs = new MutationObserver(() => { if (!document.querySelector(sel)) { window.__tileGoneAt = Date.now(); obs.disconnect(); } });
		obs.observe(document.querySelector('#tiles'), {childList: true, subtree: true});
		return true; })()`, id))
}

// tileGoneAfter waits for the tile watched by watchTileGone to go and
// returns how long after since it went.
func (u *user) tileGoneAfter(since time.Time, timeout time.Duration) time.Duration {
	u.t.Helper()
	u.waitFor("the tile to go", `window.__tileGoneAt > 0`, timeout)
	at := eval[float64](u, `window.__tileGoneAt`)
	return time.UnixMilli(int64(at)).Sub(since)
}

// A two-person call between Firefox ESR and Chromium: peer-to-peer, video
// and audio both ways, mute and camera-off shown across browsers, and
// closing the Firefox tab removes its tile on the Chromium page within 1 s.
func TestFirefoxChromiumP2PCall(t *testing.T) {
	start := time.Now()
	s := servertest.Start(t)
	ff := startFirefox(t)
	ada := newUser(t, newBrowser(t), s, "Ada")
	ada.signUp("ada", "Ada")
	ch := ada.createChannel("Cross-browser")
	bob := newFFUser(t, ff, s, "bob", "Bob")
	ada.addMember(ch, "bob")

	ada.joinCall(ch)
	bob.joinCall(ch)
	adaID, bobID := ada.myID(), bob.myID()
	bob.waitMedia([]string{adaID}, 45*time.Second)
	ada.waitMedia([]string{bobID}, 45*time.Second)
	if topo := ffEval[string](bob, `window.parley.state.topology`); topo != "mesh" {
		t.Errorf("Firefox's topology %q, want mesh (two people talk peer to peer)", topo)
	}
	t.Logf("media both ways after %s", time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(browsersDir, "node_modules", "axe-core", "axe.min.js")); err == nil {
		bob.axeCheck(t, axeScript(t), "two-person call")
	}

	bob.click("#mute-btn")
	ada.waitFor("Bob (Firefox) shown muted", fmt.Sprintf(`document.querySelector('%s')?.dataset.audio === "off"`, tileSel(bobID)), 5*time.Second)
	ada.do(chromedp.Click(chromedp.CSS("#camera-btn")))
	bob.waitFor("Ada's camera shown off in Firefox", fmt.Sprintf(`document.querySelector('%s')?.dataset.video === "off"`, tileSel(adaID)), 5*time.Second)

	ada.watchTileGone(bobID)
	closed := time.Now()
	bob.closeTab()
	took := ada.tileGoneAfter(closed, 20*time.Second)
	t.Logf("Firefox tab closed: Bob's tile gone from Chromium's page %s later", took.Round(time.Millisecond))
	if took > tileGoneWithin {
		t.Errorf("Bob's tile went %s after his tab closed, want within %s", took, tileGoneWithin)
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// A three-person call with Firefox in it goes through the SFU: each page
// gets the two others' video and audio, Firefox's mute shows on the
// others' tiles, and closing the Firefox tab, then a Chromium one,
// removes the tile from the others' pages within 1 s.
func TestFirefoxSFUCall(t *testing.T) {
	start := time.Now()
	s := servertest.Start(t)
	ff := startFirefox(t)
	browser := newBrowser(t)
	ada := newUser(t, browser, s, "Ada")
	ada.signUp("ada", "Ada")
	ch := ada.createChannel("Three browsers")
	cyd := newUser(t, browser, s, "Cyd")
	cyd.signUp("cyd", "Cyd")
	bob := newFFUser(t, ff, s, "bob", "Bob")
	ada.addMember(ch, "bob")
	ada.addMember(ch, "cyd")

	ada.joinCall(ch)
	bob.joinCall(ch)
	cyd.joinCall(ch)
	adaID, bobID, cydID := ada.myID(), bob.myID(), cyd.myID()
	bob.waitMedia([]string{adaID, cydID}, 60*time.Second)
	ada.waitMedia([]string{bobID, cydID}, 60*time.Second)
	cyd.waitMedia([]string{adaID, bobID}, 60*time.Second)
	if topo := ffEval[string](bob, `window.parley.state.topology`); topo != "sfu" {
		t.Errorf("Firefox's topology %q, want sfu", topo)
	}
	t.Logf("media between all three after %s", time.Since(start).Round(time.Millisecond))

	// Chat from Firefox reaches Chromium; axe checks the Firefox page with it.
	bob.fill("#chat-input", "hello from Firefox")
	bob.click("#chat-send")
	ada.waitFor("Bob's chat from Firefox", `[...document.querySelectorAll('#chat-log .chat-msg')].some(m => m.textContent.includes("hello from Firefox"))`, 10*time.Second)
	ada.do(fill("#chat-input", "hello from Chromium"), chromedp.Click(chromedp.CSS("#chat-send")))
	bob.waitFor("Ada's chat in Firefox", `[...document.querySelectorAll('#chat-log .chat-msg')].some(m => m.textContent.includes("hello from Chromium"))`, 10*time.Second)
	if _, err := os.Stat(filepath.Join(browsersDir, "node_modules", "axe-core", "axe.min.js")); err == nil {
		bob.axeCheck(t, axeScript(t), "three-person call with chat")
	}

	bob.click("#mute-btn")
	for _, u := range []*user{ada, cyd} {
		u.waitFor("Bob (Firefox) shown muted", fmt.Sprintf(`document.querySelector('%s')?.dataset.audio === "off"`, tileSel(bobID)), 5*time.Second)
	}
	bob.click("#camera-btn")
	for _, u := range []*user{ada, cyd} {
		u.waitFor("Bob's (Firefox) camera shown off", fmt.Sprintf(`document.querySelector('%s')?.dataset.video === "off"`, tileSel(bobID)), 5*time.Second)
	}
	cyd.do(chromedp.Click(chromedp.CSS("#mute-btn")))
	bob.waitFor("Cyd shown muted in Firefox", fmt.Sprintf(`document.querySelector('%s')?.dataset.audio === "off"`, tileSel(cydID)), 5*time.Second)

	for _, u := range []*user{ada, cyd} {
		u.watchTileGone(bobID)
	}
	closed := time.Now()
	bob.closeTab()
	for _, u := range []*user{ada, cyd} {
		took := u.tileGoneAfter(closed, 20*time.Second)
		t.Logf("Firefox tab closed: Bob's tile gone from %s's page %s later", u.name, took.Round(time.Millisecond))
		if took > tileGoneWithin {
			t.Errorf("%s: Bob's tile went %s after his tab closed, want within %s", u.name, took, tileGoneWithin)
		}
	}
	// The two left keep talking; then Cyd closes her Chromium tab.
	ada.waitFramesRise([]string{cydID}, 10, 10*time.Second)
	ada.watchTileGone(cydID)
	closed = time.Now()
	if err := chromedp.Cancel(cyd.ctx); err != nil { // closes the tab
		t.Fatalf("close Cyd's tab: %v", err)
	}
	took := ada.tileGoneAfter(closed, 20*time.Second)
	t.Logf("Chromium tab closed: Cyd's tile gone from Ada's page %s later", took.Round(time.Millisecond))
	if took > tileGoneWithin {
		t.Errorf("Cyd's tile went %s after her tab closed, want within %s", took, tileGoneWithin)
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}
