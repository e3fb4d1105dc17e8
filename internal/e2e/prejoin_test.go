package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/servertest"
)

// TestPreJoin (issue 13, pre-join screen): with three fake cameras, Ada
// checks her devices (preview, a moving microphone level), picks the
// last camera and "Join muted", and joins: she sends that camera and
// joins muted, as Bob's page shows. Her choices are remembered after a
// reload, and "Join with camera off" joins with the camera off.
func TestPreJoin(t *testing.T) {
	s := servertest.Start(t)
	browser := newBrowserWith(t, chromedp.Flag("use-fake-device-for-media-stream", "device-count=3"))
	ada, bob := newUser(t, browser, s, "Ada"), newUser(t, browser, s, "Bob")
	ada.signUp("ada", "Ada")
	bob.signUp("bob", "Bob")
	ch := ada.createChannel("Check")
	ada.addMember(ch, "bob")
	bob.joinCall(ch)

	ada.do(chromedp.Navigate(s.URL + "/c/" + ch))
	ada.waitFor("signaling", `document.querySelector('#signal-status')?.dataset.state === "connected"`, 15*time.Second)
	ada.do(chromedp.Click(chromedp.CSS("#prejoin-check")))
	ada.waitFor("three cameras to choose from", `document.querySelectorAll('#cam-select option').length >= 3 && !document.querySelector('#cam-select').disabled`, 15*time.Second)
	ada.waitFor("the preview playing", `document.querySelector('#prejoin-preview').videoWidth > 0`, 15*time.Second)
	ada.waitFor("the microphone level moving", `(() => { window.__peak = Math.max(window.__peak || 0, document.querySelector('#mic-level').value); return window.__peak > 0.02; })()`, 15*time.Second)

	// Chromium's second fake camera emulates a depth camera (Y16), which
	// WebRTC does not send; the third (MJPEG) is an ordinary one.
	second := eval[string](ada, `(() => { const s = document.querySelector('#cam-select');
		const other = s.options[s.options.length - 1];
		s.value = other.value; s.dispatchEvent(new Event('change')); return other.value; })()`)
	ada.waitFor("the preview on the chosen camera", fmt.Sprintf(`document.querySelector('#prejoin-preview').srcObject?.getVideoTracks()[0]?.getSettings().deviceId === %q`, second), 15*time.Second)
	ada.do(chromedp.Click(chromedp.CSS("#join-muted")))
	ada.do(chromedp.Click(chromedp.CSS("#join-btn")))
	ada.waitFor("Ada in the call", `!!(window.parley && window.parley.myId)`, 15*time.Second)
	adaID := ada.myID()

	if got := eval[string](ada, `document.querySelector('#tiles .tile.local video').srcObject.getVideoTracks()[0].getSettings().deviceId`); got != second {
		t.Errorf("Ada sends camera %q, want the chosen %q", got, second)
	}
	if eval[bool](ada, `window.parley.state.me.audio`) {
		t.Error("Ada joined unmuted after choosing Join muted")
	}
	bob.waitRemoteVideos([]string{adaID}, 45*time.Second)
	bob.waitFor("Ada shown muted on Bob's page", fmt.Sprintf(`document.querySelector('%s')?.dataset.audio === "off"`, tileSel(adaID)), 10*time.Second)
	// She can unmute herself: the microphone is there, just off.
	ada.do(chromedp.Click(chromedp.CSS("#mute-btn")))
	bob.waitFor("Ada unmuted on Bob's page", fmt.Sprintf(`document.querySelector('%s')?.dataset.audio === "on"`, tileSel(adaID)), 10*time.Second)

	// Remembered in this browser.
	ada.do(chromedp.Click(chromedp.CSS("#hangup-btn")), chromedp.Reload())
	ada.waitFor("the choices after a reload", fmt.Sprintf(`(() => { const p = JSON.parse(localStorage.getItem("parley.devices") || "{}");
		return document.querySelector('#join-muted').checked && p.cam === %q && p.muted === true; })()`, second), 10*time.Second)

	// Join with camera off (and still muted, as remembered).
	ada.waitFor("signaling after the reload", `document.querySelector('#signal-status')?.dataset.state === "connected"`, 15*time.Second)
	ada.do(chromedp.Click(chromedp.CSS("#join-camoff")), chromedp.Click(chromedp.CSS("#join-btn")))
	ada.waitFor("Ada back in the call", `!!(window.parley && window.parley.myId)`, 15*time.Second)
	if me := eval[map[string]bool](ada, `window.parley.state.me`); me["audio"] || me["video"] {
		t.Errorf("Ada rejoined sending %v, want muted with the camera off", me)
	}
	adaID = ada.myID()
	bob.waitFor("Ada's camera shown off on Bob's page", fmt.Sprintf(`document.querySelector('%s')?.dataset.video === "off"`, tileSel(adaID)), 15*time.Second)
}
