package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
)

// ignoreModeration makes a page deaf to moderated messages: a modified
// page that keeps sending whatever a moderator does.
const ignoreModeration = `(() => {
	const Real = window.WebSocket;
	window.WebSocket = class extends Real {
		set onmessage(f) {
			super.onmessage = f && ((ev) => {
				if (typeof ev.data === "string" && ev.data.includes('"type":"moderated"')) return;
				f(ev);
			});
		}
		get onmessage() { return super.onmessage; }
	};
})()`

// audioMeter is a JavaScript function source: it taps the audio of the
// remote camera tile of participant id with an AnalyserNode and records
// its RMS level every 20 ms in window.__levels as [Date.now(), rms].
const audioMeter = `(id) => {
	const v = document.querySelector('#tiles .tile[data-participant-id="' + id + '"]:not(.screen) video');
	const track = v && v.srcObject && v.srcObject.getAudioTracks()[0];
	if (!track) return false;
	const ctx = new AudioContext();
	ctx.resume();
	const an = ctx.createAnalyser();
	an.fftSize = 1024;
	ctx.createMediaStreamSource(new MediaStream([track])).connect(an);
	const buf = new Float32Array(an.fftSize);
	window.__levels = [];
	window.__meter = setInterval(() => {
		an.getFloatTimeDomainData(buf);
		let s = 0;
		for (const x of buf) s += x * x;
		window.__levels.push([Date.now(), Math.sqrt(s / buf.length)]);
	}, 20);
	return true;
}`

// TestModerationInBrowsers (issue 13, moderation): Ada owns the channel;
// Bob's page is modified to ignore moderation and Cyd listens. Ada mutes
// Bob from her people list: Cyd's analyser of Bob's audio falls silent
// within 1 s although Bob's page still sends, and Cyd's page announces it
// in its live region. Raised hands show in order on every page. A member's moderation message is refused and
// changes nothing. Ada removes Cyd (who cannot rejoin) and locks the
// call (a member cannot join).
func TestModerationInBrowsers(t *testing.T) {
	s := servertest.Start(t)
	browser := newBrowserWith(t, chromedp.Flag("use-file-for-fake-audio-capture", toneWAV(t)),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
	ada, bob, cyd := newUser(t, browser, s, "Ada"), newUser(t, browser, s, "Bob"), newUser(t, browser, s, "Cyd")
	ada.signUp("ada", "Ada")
	bob.signUp("bob", "Bob")
	cyd.signUp("cyd", "Cyd")
	eveHTTP := s.SignUp("eve", "Eve")
	ch := ada.createChannel("Moderated")
	for _, n := range []string{"bob", "cyd", "eve"} {
		ada.addMember(ch, n)
	}
	bob.do(addScript(ignoreModeration))
	users := []*user{ada, bob, cyd}
	ids := make([]string, 3)
	for i, u := range users {
		u.joinCall(ch)
		ids[i] = u.myID()
	}
	for i, u := range users {
		var others []string
		for j, id := range ids {
			if j != i {
				others = append(others, id)
			}
		}
		u.waitRemoteVideos(others, 45*time.Second)
		u.waitFor("the SFU", `window.parley.state.topology === "sfu"`, 20*time.Second)
	}
	cyd.waitFor("Bob's tile on the SFU path", fmt.Sprintf(`window.parley.state.shown[%q] === "sfu"`, ids[1]), 20*time.Second)

	// Cyd hears Bob's tone (in bursts: within the last 1.5 s).
	const heardBob = `window.__levels.some(([t, r]) => t > Date.now() - 1500 && r > 0.02)`
	if !eval[bool](cyd, fmt.Sprintf(`(%s)(%q)`, audioMeter, ids[1])) {
		t.Fatal("Cyd's page has no audio track for Bob")
	}
	cyd.waitFor("Bob's tone in Cyd's analyser", heardBob, 15*time.Second)

	// A plain member cannot moderate: no buttons on Cyd's page, and Eve's
	// message from a socket of her own is refused and changes nothing.
	if n := eval[int](cyd, `document.querySelectorAll('.mod-mute, #moderator-bar:not([hidden])').length`); n != 0 {
		t.Errorf("a plain member's page shows %d moderation controls", n)
	}
	eve := dialHostile(t, s, eveHTTP, ch)
	eve.send(map[string]any{"type": "join"})
	eve.expect(signaling.TypeJoined)
	eve.send(map[string]any{"type": "moderate", "action": "mute", "id": ids[1]})
	if e := eve.expect(signaling.TypeError); e.Code != signaling.CodeForbidden || e.Ref != signaling.TypeModerate {
		t.Errorf("member's moderate: %+v, want a forbidden error", e)
	}
	eve.send(map[string]any{"type": "moderate", "action": "lock"})
	if e := eve.expect(signaling.TypeError); e.Code != signaling.CodeForbidden {
		t.Errorf("member's lock: %+v, want a forbidden error", e)
	}
	cyd.waitFor("Bob's tone still in Cyd's analyser", heardBob, 5*time.Second)

	// Raised hands are listed in the order they went up, for everyone.
	cyd.do(chromedp.Click(chromedp.CSS("#hand-btn")))
	ada.waitFor("Cyd's hand on Ada's page", fmt.Sprintf(`!!document.querySelector('#hands-list li[data-participant-id=%q]')`, ids[2]), 10*time.Second)
	bob.do(chromedp.Click(chromedp.CSS("#hand-btn")))
	hands := fmt.Sprintf(`JSON.stringify([...document.querySelectorAll('#hands-list li')].map(li => li.dataset.participantId)) === JSON.stringify([%q, %q])`, ids[2], ids[1])
	for _, u := range []*user{ada, bob, cyd} {
		u.waitFor("hands in order: Cyd, then Bob", hands, 10*time.Second)
	}
	cyd.do(chromedp.Click(chromedp.CSS("#hand-btn")))
	ada.waitFor("Cyd's hand down", fmt.Sprintf(`!document.querySelector('#hands-list li[data-participant-id=%q]')`, ids[2]), 10*time.Second)

	// Ada mutes Bob from her people list.
	btn := fmt.Sprintf(`#online-list li[data-participant-id=%q] .mod-mute`, ids[1])
	ada.waitFor("the mute button for Bob", fmt.Sprintf(`!!document.querySelector('%s')`, btn), 10*time.Second)
	clicked := eval[float64](ada, fmt.Sprintf(`(() => { document.querySelector('%s').click(); return Date.now(); })()`, btn))
	// Bob's tone comes in bursts with pauses of up to about a second
	// (Chromium's fake capture); muted, he is silent for good. Silence is
	// 2 s without a sample above the threshold, and must begin within 1 s
	// of the click.
	silence := fmt.Sprintf(`(() => {
		const l = window.__levels.filter(([t]) => t >= %f - 1500);
		for (let i = 0; i < l.length; i++) {
			const win = l.slice(i).filter(([t]) => t - l[i][0] <= 2000);
			if (win[win.length - 1][0] - l[i][0] >= 1950 && win.every(([, r]) => r < 0.005)) return l[i][0];
		}
		return 0; })()`, clicked)
	cyd.waitFor("Bob's audio to fall silent for 2 s", silence+" > 0", 15*time.Second)
	silentAt := eval[float64](cyd, silence)
	t.Logf("Bob silent on Cyd's page from %.0f ms after Ada's click", silentAt-clicked)
	if silentAt-clicked > 1000 {
		t.Errorf("Bob's audio fell silent %.0f ms after the mute, want within 1000 ms", silentAt-clicked)
	}
	// Bob's page did not mute itself: the server did.
	if !eval[bool](bob, `window.parley.state.me.audio`) {
		t.Error("Bob's page muted itself; the test needs it to keep sending")
	}
	cyd.waitFor("the mute announced in Cyd's live region", `(() => { const s = document.querySelector('#moderation-status');
		return s.getAttribute('aria-live') === 'assertive' && /Ada muted Bob/.test(s.textContent); })()`, 5*time.Second)
	cyd.waitFor("Bob shown muted on Cyd's page", fmt.Sprintf(`document.querySelector('%s')?.dataset.audio === "off"`, tileSel(ids[1])), 5*time.Second)

	// Remove: Cyd is back in the lobby, told why, and cannot rejoin.
	ada.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#online-list li[data-participant-id=%q] .mod-remove`, ids[2]))))
	cyd.waitFor("Cyd back in the lobby", `window.parley.state.view === "lobby"`, 10*time.Second)
	cyd.waitFor("the removal announced to Cyd", `/Ada removed you from the call/.test(document.querySelector('#moderation-status').textContent)`, 5*time.Second)
	ada.waitFor("Cyd's tile gone", fmt.Sprintf(`!document.querySelector('%s')`, tileSel(ids[2])), 10*time.Second)
	cyd.do(chromedp.Click(chromedp.CSS("#join-btn")))
	cyd.waitFor("the refusal shown", `(() => { const t = document.querySelector('#toast');
		return !t.hidden && /removed you from this call/.test(t.textContent); })()`, 15*time.Second)

	// Lock: Eve, a member, cannot come back in.
	eve.send(map[string]any{"type": "leave"})
	ada.do(chromedp.Click(chromedp.CSS("#lock-btn")))
	for { // the mute and the removal were announced to her too
		if m := eve.expect(signaling.TypeModerated); m.Action == signaling.ActionLock {
			if m.By != ids[0] {
				t.Errorf("lock announced as by %q, want Ada %q", m.By, ids[0])
			}
			break
		}
	}
	eve.send(map[string]any{"type": "join"})
	if e := eve.expect(signaling.TypeError); e.Code != signaling.CodeLocked {
		t.Errorf("join a locked call: %+v, want locked", e)
	}
	cyd.waitFor("the lock banner on Cyd's page", `!document.querySelector('#lock-banner').hidden || /locked the call/.test(document.querySelector('#moderation-status').textContent)`, 5*time.Second)
}
