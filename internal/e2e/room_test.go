package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// roomGeometry is what a page's call view looks like on screen.
type roomGeometry struct {
	VW, VH       float64
	ScrollW      float64 `json:"scrollW"`
	Box          rect
	Tiles        []rect
	Controls     rect
	Coverage     float64
	Header       bool
	Settings     bool
	DPR          float64 `json:"dpr"`
	TileCount    int     `json:"tileCount"`
	FirstTileTop float64 `json:"firstTileTop"`
}

type rect struct {
	X, Y, W, H float64
	ID         string
	Screen     bool
}

const geometryJS = `(() => {
	const r = (el) => { const b = el.getBoundingClientRect(); return {x: b.x, y: b.y, w: b.width, h: b.height}; };
	const box = r(document.querySelector('#tiles'));
	const tiles = [...document.querySelectorAll('#tiles .tile')].map(t => ({...r(t), id: t.dataset.participantId || "local", screen: t.dataset.screen === "true"}));
	const area = tiles.reduce((a, t) => a + t.w * t.h, 0);
	const visible = (sel) => { const el = document.querySelector(sel); return !!el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden"; };
	return JSON.stringify({vw: innerWidth, vh: innerHeight, scrollW: document.documentElement.scrollWidth,
		box, tiles, controls: r(document.querySelector('#controls')), coverage: area / (box.w * box.h),
		header: visible('header.topbar'), settings: visible('#members') || visible('#meeting-code-card'),
		dpr: devicePixelRatio, tileCount: tiles.length, firstTileTop: Math.min(...tiles.map(t => t.y))});
})()`

func (u *user) geometry() roomGeometry {
	u.t.Helper()
	var g roomGeometry
	if err := json.Unmarshal([]byte(eval[string](u, geometryJS)), &g); err != nil {
		u.t.Fatalf("%s: geometry: %v", u.name, err)
	}
	return g
}

// roomSettled is true once the tiles have reached their places: n tiles,
// inside the tile area, none behind the controls, no sideways scrolling,
// and at least 60% of the area covered.
func roomSettled(n int) string {
	return fmt.Sprintf(`(() => { const g = JSON.parse(%s);
		return document.body.classList.contains("in-call") && g.tileCount === %d && g.scrollW <= g.vw && g.coverage >= 0.6
			&& g.tiles.every(t => t.x >= g.box.x - 1 && t.y >= g.box.y - 1 && t.x + t.w <= g.box.x + g.box.w + 1 && t.y + t.h <= g.box.y + g.box.h + 1
				&& t.y + t.h <= g.controls.y + 1 && t.x + t.w <= g.vw + 1); })()`, geometryJS, n)
}

// checkRoom waits for the call view to settle with n tiles and reports it.
func (u *user) checkRoom(t *testing.T, what string, n int) roomGeometry {
	t.Helper()
	if err := u.tryWaitFor(roomSettled(n), 10*time.Second); err != nil {
		t.Fatalf("%s (%s): the call view did not settle with %d tiles covering ≥60%% of the area, inside it, clear of the controls, without sideways scroll: %v\n%+v",
			u.name, what, n, err, u.geometry())
	}
	g := u.geometry()
	if g.Header || g.Settings {
		t.Errorf("%s (%s): the page header (%v) or the channel settings (%v) are shown during the call", u.name, what, g.Header, g.Settings)
	}
	t.Logf("%s (%s, %.0f×%.0f): %d tiles cover %.0f%% of the %.0f×%.0f tile area; first tile at y=%.0f; controls at y=%.0f",
		u.name, what, g.VW, g.VH, g.TileCount, 100*g.Coverage, g.Box.W, g.Box.H, g.FirstTileTop, g.Controls.Y)
	return g
}

// receivedJS maps each remote camera tile to its size in device pixels and
// the picture the page receives for it.
const receivedJS = `JSON.stringify((() => { const st = window.parley.state; return [...document.querySelectorAll('#tiles .tile[data-participant-id]:not(.screen)')].map(t => {
	const b = t.getBoundingClientRect(); const m = st.received[t.dataset.participantId] || {};
	return {id: t.dataset.participantId, tw: Math.round(b.width * devicePixelRatio), th: Math.round(b.height * devicePixelRatio), w: m.width || 0, h: m.height || 0, fps: m.fps || 0}; }); })())`

type received struct {
	ID  string  `json:"id"`
	TW  int     `json:"tw"`
	TH  int     `json:"th"`
	W   int     `json:"w"`
	H   int     `json:"h"`
	FPS float64 `json:"fps"`
}

func (u *user) received() []received {
	u.t.Helper()
	var out []received
	if err := json.Unmarshal([]byte(eval[string](u, receivedJS)), &out); err != nil {
		u.t.Fatalf("%s: received: %v", u.name, err)
	}
	return out
}

// TestCallRoom is issue 14's call page, on one three-person SFU call (to
// spend the browser start-up once):
//   - the call fills the window (1280×800 and a 390×844 phone): no page
//     header, tiles covering ≥60% of their area, none behind the controls,
//     no sideways scroll; the same with two people;
//   - large tiles receive a 640×360 camera (resolutions logged per tile
//     size, for docs/performance.md);
//   - the buttons say what they do ("Unmute" while muted);
//   - joins and leaves are announced by name in the live region;
//   - with the server gone, the pages say media is interrupted (it goes
//     through the server), the tiles say reconnecting, and all recovers
//     by itself when the server is back.
func TestCallRoom(t *testing.T) {
	c := startCall(t, "Ada", "Bob", "Cyd")
	ada, bob, cyd := c.users[0], c.users[1], c.users[2]
	for _, u := range c.users {
		// No tile animations: the geometry read is where the tiles are.
		u.do(chromedp.EmulateViewport(1280, 800), reducedMotion())
		u.waitFor("the SFU", `window.parley.state.topology === "sfu"`, 15*time.Second)
	}

	t.Run("desktop layout", func(t *testing.T) {
		for _, u := range c.users {
			u.checkRoom(t, "3 people", 3)
		}
	})

	t.Run("large tiles receive 640x360", func(t *testing.T) {
		// Ada pins Bob large and Bob pins Ada (the others in the strip),
		// then the grid again. Every tile gets what its size deserves.
		ada.do(chromedp.Click(chromedp.CSS(tileSel(c.ids[1]) + " .tile-pin")))
		bob.do(chromedp.Click(chromedp.CSS(tileSel(c.ids[0]) + " .tile-pin")))
		ada.waitFor("Bob pinned large", fmt.Sprintf(`document.querySelector('%s').dataset.featured === "true" && document.querySelector('%s .tile-pin').getAttribute('aria-label') === "Unpin Bob"`, tileSel(c.ids[1]), tileSel(c.ids[1])), 5*time.Second)
		for _, layout := range []string{"pinned", "grid"} {
			if layout == "grid" {
				ada.do(chromedp.Click(chromedp.CSS(tileSel(c.ids[1]) + " .tile-pin")))
				bob.do(chromedp.Click(chromedp.CSS(tileSel(c.ids[0]) + " .tile-pin")))
				ada.waitFor("the grid", `document.querySelector('#tiles').dataset.layout === "grid"`, 5*time.Second)
			}
			for _, u := range []*user{ada, bob} {
				// A tile at least 480 device pixels wide is large: it must get
				// the 640×360 layer (the SFU and the browser's bandwidth
				// estimate take a few seconds to get there).
				cond := `(() => { const r = JSON.parse(` + receivedJS + `); return r.length === 2 && r.every(x => x.w > 0 && (x.tw < 480 || x.w >= 640)); })()`
				if err := u.tryWaitFor(cond, 25*time.Second); err != nil {
					// The SFU can only forward f if the publisher's browser
					// sends it (Chrome pauses f when its bandwidth estimate is
					// low, as on this machine under load), and rightly lowers a
					// subscriber whose own estimate is low. Without either, a
					// large tile must have it.
					for _, r := range u.received() {
						if r.TW < 480 || r.W >= 640 {
							continue
						}
						pub := c.users[slices.Index(c.ids, r.ID)]
						var sent struct {
							Layers []struct {
								Rid string  `json:"rid"`
								FPS float64 `json:"fps"`
							} `json:"layers"`
							Available float64 `json:"availableOutgoingBitrate"`
						}
						_ = json.Unmarshal([]byte(evalAsync[string](pub, `window.parley.sfuSent().then(JSON.stringify)`)), &sent)
						sendingF := slices.ContainsFunc(sent.Layers, func(l struct {
							Rid string  `json:"rid"`
							FPS float64 `json:"fps"`
						}) bool {
							return l.Rid == "f" && l.FPS > 0
						})
						_, metrics := c.s.Get(c.s.Client(), "/metrics")
						lowered := metricValue(metrics, "parley_sfu_bandwidth_limits_total")
						if sendingF && lowered == 0 {
							t.Errorf("%s (%s): the %d×%d tile of %s gets %d×%d while %s sends 640×360 (layout sent %+v)",
								u.name, layout, r.TW, r.TH, pub.name, r.W, r.H, pub.name, u.pageState().Layout)
						} else {
							// Bandwidth explains it: the publisher's browser paused
							// f, or the SFU lowered this subscriber's video for its
							// estimate (bandwidth.go). Logged; TestSimulcastTwoLayers
							// checks the choice itself.
							t.Logf("%s (%s): the %d×%d tile of %s gets %d×%d: %s sends f: %v (its estimate %.0f kbit/s); the SFU lowered video for bandwidth %.0f times",
								u.name, layout, r.TW, r.TH, pub.name, r.W, r.H, pub.name, sendingF, sent.Available/1000, lowered)
						}
					}
				}
				for _, r := range u.received() {
					t.Logf("%s (%s): tile %d×%d device px receives %d×%d at %.0f frames/s", u.name, layout, r.TW, r.TH, r.W, r.H, r.FPS)
				}
				t.Logf("%s sends: %s", u.name, evalAsync[string](u, `window.parley.sfuSent().then(JSON.stringify)`))
			}
		}
	})

	t.Run("labels say the action", func(t *testing.T) {
		label := `(() => { const b = document.querySelector('%s'); return b.getAttribute('aria-label') === %q && b.querySelector('.ctl-label').textContent === %q; })()`
		ada.waitFor("Mute", fmt.Sprintf(label, "#mute-btn", "Mute", "Mute"), 2*time.Second)
		ada.do(chromedp.Click(chromedp.CSS("#mute-btn")))
		ada.waitFor("Unmute while muted", fmt.Sprintf(label, "#mute-btn", "Unmute", "Unmute"), 2*time.Second)
		ada.do(chromedp.Click(chromedp.CSS("#mute-btn")))
		ada.waitFor("Mute again", fmt.Sprintf(label, "#mute-btn", "Mute", "Mute"), 2*time.Second)
		ada.do(chromedp.Click(chromedp.CSS("#camera-btn")))
		ada.waitFor("Start video while stopped", fmt.Sprintf(label, "#camera-btn", "Start video", "Start video"), 2*time.Second)
		ada.do(chromedp.Click(chromedp.CSS("#camera-btn")))
		ada.waitFor("Stop video again", fmt.Sprintf(label, "#camera-btn", "Stop video", "Stop video"), 2*time.Second)
		ada.do(chromedp.Click(chromedp.CSS("#view-btn")))
		ada.waitFor("the speaker view", `document.querySelector('#tiles').dataset.layout === "featured" && document.querySelector('#view-btn').textContent === "Grid view"`, 5*time.Second)
		ada.do(chromedp.Click(chromedp.CSS("#view-btn")))
		ada.waitFor("the grid view", `document.querySelector('#tiles').dataset.layout === "grid" && document.querySelector('#view-btn').textContent === "Speaker view"`, 5*time.Second)
		// A screen share is shown large; its button says how to stop it.
		cyd.do(chromedp.Click(chromedp.CSS("#screen-btn")))
		cyd.waitFor("Stop sharing", fmt.Sprintf(label, "#screen-btn", "Stop sharing", "Stop sharing"), 10*time.Second)
		ada.waitFor("Cyd's screen shown large", fmt.Sprintf(`document.querySelector('#tiles .tile.screen[data-participant-id=%q]')?.dataset.featured === "true"`, c.ids[2]), 20*time.Second)
		cyd.do(chromedp.Click(chromedp.CSS("#screen-btn")))
		cyd.waitFor("Share screen", fmt.Sprintf(label, "#screen-btn", "Share screen", "Share screen"), 10*time.Second)
		ada.waitFor("the grid after the share", `document.querySelector('#tiles').dataset.layout === "grid"`, 10*time.Second)
		// The channel settings are one button away, with the call running.
		ada.do(chromedp.Click(chromedp.CSS("#manage-btn")))
		ada.waitFor("the settings shown", `!document.body.classList.contains("in-call") && document.querySelector('#members').getClientRects().length > 0
			&& document.querySelector('#manage-btn').textContent === "Back to the call" && window.parley.state.joined`, 5*time.Second)
		ada.do(chromedp.Click(chromedp.CSS("#manage-btn")))
		ada.checkRoom(t, "back from the settings", 3)
		ada.waitFor("the status in words", `document.querySelector('#signal-status').textContent === "Connected"`, 2*time.Second)
	})

	t.Run("joins announced by name", func(t *testing.T) {
		// (Shown on failure: what the live region said.)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("Ada's live region: %s", eval[string](ada, `JSON.stringify([...document.querySelectorAll('#announcer p')].map(p => p.textContent))`))
			}
		})
		ada.waitFor("Bob and Cyd announced", `(() => { const l = [...document.querySelectorAll('#announcer p')].map(p => p.textContent);
			return l.includes("Bob joined") && l.includes("Cyd joined"); })()`, 2*time.Second)
	})

	t.Run("phone layout", func(t *testing.T) {
		bob.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
		g := bob.checkRoom(t, "phone, 3 people", 3)
		if g.FirstTileTop > 100 {
			t.Errorf("bob (phone): the first video starts %.0f px down, want it near the top", g.FirstTileTop)
		}
		// Logged, not required: on a loaded machine the phone's bandwidth
		// estimate can make the SFU lower its video (bandwidth.go), which
		// is right; the desktop check above is the requirement.
		if err := bob.tryWaitFor(`(() => { const r = JSON.parse(`+receivedJS+`); return r.length === 2 && r.every(x => x.w > 0 && (x.tw < 480 || x.w >= 640)); })()`, 15*time.Second); err != nil {
			_, metrics := c.s.Get(c.s.Client(), "/metrics")
			t.Logf("bob (phone): large tiles not at 640×360 within 15 s; the SFU lowered video for bandwidth %.0f times so far",
				metricValue(metrics, "parley_sfu_bandwidth_limits_total"))
		}
		for _, r := range bob.received() {
			t.Logf("bob (phone): tile %d×%d device px receives %d×%d at %.0f frames/s", r.TW, r.TH, r.W, r.H, r.FPS)
		}
		if *updateScreenshot {
			writeScreenshot(t, bob, "call-phone.png")
		}
		// People and chat open as sheets.
		bob.do(chromedp.Click(chromedp.CSS("#people-toggle")))
		bob.waitFor("the people sheet", `(() => { const p = document.querySelector('#people'); const b = p.getBoundingClientRect();
			return p.classList.contains('open') && getComputedStyle(p).position === 'fixed' && b.bottom >= innerHeight - 1 && b.height > 200; })()`, 5*time.Second)
		bob.do(chromedp.Click(chromedp.CSS("#people .sheet-close")))
		bob.do(chromedp.Click(chromedp.CSS("#chat-toggle")))
		bob.waitFor("the chat sheet", `(() => { const p = document.querySelector('#chat'); return p.classList.contains('open') && getComputedStyle(p).position === 'fixed'; })()`, 5*time.Second)
		bob.do(chromedp.Click(chromedp.CSS("#chat .chat-close")))
		bob.do(chromedp.EmulateViewport(1280, 800))
		bob.checkRoom(t, "back on the desktop", 3)
	})

	if *updateScreenshot {
		ada.checkRoom(t, "screenshot", 3)
		writeScreenshot(t, ada, "call.png")
	}

	t.Run("server lost: media interrupted, then back by itself", func(t *testing.T) {
		c.s.Stop()
		for _, u := range c.users {
			u.waitFor("reconnecting, media interrupted", `(() => { const s = document.querySelector('#signal-status');
				return s.dataset.state === "reconnecting" && s.textContent.includes("media interrupted") && !/continues|keeps flowing/.test(s.textContent)
					&& !/keeps flowing|continues/.test(document.querySelector('#call-status').textContent); })()`, 10*time.Second)
			u.waitFor("every remote tile reconnecting", `(() => { const t = [...document.querySelectorAll('#tiles .tile[data-participant-id]:not(.screen)')];
				return t.length === 2 && t.every(x => x.dataset.peerState === "reconnecting" && /reconnecting/i.test(x.querySelector('.peer-status').textContent)); })()`, 10*time.Second)
			u.waitFor("the reconnect announced by name", `[...document.querySelectorAll('#announcer p')].some(p => /^(Ada|Bob|Cyd)'s connection is reconnecting$/.test(p.textContent))`, 2*time.Second)
		}
		c.s.Restart()
		for _, u := range c.users {
			u.waitFor("connected again", `document.querySelector('#signal-status').dataset.state === "connected" && document.querySelector('#signal-status').textContent === "Connected"`, 30*time.Second)
		}
		for i, u := range c.users {
			u.waitFramesRise(c.others(i), 10, 30*time.Second)
			u.waitFor("every remote tile connected", `(() => { const t = [...document.querySelectorAll('#tiles .tile[data-participant-id]:not(.screen)')];
				return t.length === 2 && t.every(x => x.dataset.peerState === "connected"); })()`, 15*time.Second)
		}
	})

	t.Run("leave announced; two people fill the window", func(t *testing.T) {
		cyd.do(chromedp.Click(chromedp.CSS("#hangup-btn")))
		for _, u := range []*user{ada, bob} {
			u.waitFor("Cyd's leaving announced", `[...document.querySelectorAll('#announcer p')].some(p => p.textContent === "Cyd left")`, 10*time.Second)
			u.checkRoom(t, "2 people", 2)
		}
		bob.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
		bob.checkRoom(t, "phone, 2 people", 2)
		// Cyd is back on the channel page, header and settings shown.
		cyd.waitFor("the page again after leaving", `!document.body.classList.contains("in-call") && getComputedStyle(document.querySelector('header.topbar')).display !== "none"`, 5*time.Second)
	})
}

// reducedMotion makes the page prefer reduced motion (no tile animations).
func reducedMotion() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}}})
		return err
	})
}

// writeScreenshot saves u's window as docs/images/name (make screenshot).
func writeScreenshot(t *testing.T, u *user, name string) {
	t.Helper()
	png, err := chromedp.Run(u.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{filepath.Join("..", "..", "docs", "images", name)}
	if name == "call.png" { // the landing page shows it too
		paths = append(paths, filepath.Join("..", "ui", "static", "call-screenshot.png"))
	}
	for _, path := range paths {
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
}
