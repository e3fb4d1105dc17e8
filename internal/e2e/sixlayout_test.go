package e2e_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/client"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/source"
	"github.com/parley/parley/internal/testtool"
)

// TestSixPersonLayout is issue 14's layout check with six people, light
// enough for CI: one Chromium page (Ada) and five native Go participants
// (internal/client), each publishing testdata's 320×240, 15 frames/s,
// 150 kbit/s VP8 pattern (pre-encoded: no encoder runs) and its tone. Ada's
// page shows six tiles (hers and five remote ones, with frames decoding),
// and at 1280×800 and on a 390×844 phone:
//   - the grid: no sideways scroll, the tiles cover ≥60% of their area,
//     none behind the controls (checkRoom, as TestCallRoom with 2 and 3);
//   - a pinned tile is the large one, the five others in a strip, each
//     inside the tile area (none cut off, none behind the controls), no
//     sideways scroll; the speaker view (desktop; phones hide its button)
//     likewise; unpinned, the grid again.
func TestSixPersonLayout(t *testing.T) {
	s := servertest.Start(t)
	browser := newBrowser(t)
	ada := newUser(t, browser, s, "Ada")
	ada.signUp("ada", "Ada")
	channel := ada.createChannel("Six of us")
	bots := []string{"Bob", "Cyd", "Dan", "Eve", "Fay"}
	for _, n := range bots {
		s.SignUp(lower(n), n)
		ada.addMember(channel, lower(n))
	}
	ada.do(chromedp.EmulateViewport(1280, 800), reducedMotion())
	ada.joinCall(channel)
	for _, n := range bots {
		goParticipant(t, s, channel, lower(n))
	}
	ada.waitFor("five others in the call", `window.parley.peers().length === 5`, 30*time.Second)
	ids := eval[[]string](ada, `window.parley.peers()`)
	ada.waitFor("the SFU", `window.parley.state.topology === "sfu"`, 15*time.Second)
	ada.waitRemoteVideos(ids, 45*time.Second)

	t.Run("desktop grid", func(t *testing.T) {
		ada.checkRoom(t, "6 people", 6)
	})
	t.Run("desktop speaker view", func(t *testing.T) {
		ada.do(chromedp.Click(chromedp.CSS("#view-btn")))
		ada.checkFeatured(t, "speaker view", "")
		ada.do(chromedp.Click(chromedp.CSS("#view-btn")))
		ada.waitFor("the grid", gridShown, 5*time.Second)
		ada.checkRoom(t, "back to the grid", 6)
	})
	t.Run("desktop pinned", func(t *testing.T) {
		ada.pinCheck(t, "desktop", ids[2])
	})
	t.Run("phone grid", func(t *testing.T) {
		ada.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
		g := ada.checkRoom(t, "phone, 6 people", 6)
		if g.FirstTileTop > 100 {
			t.Errorf("ada (phone): the first video starts %.0f px down, want it near the top", g.FirstTileTop)
		}
	})
	t.Run("phone pinned", func(t *testing.T) {
		ada.pinCheck(t, "phone", ids[4])
	})
	// Still a call: the five videos keep arriving.
	ada.waitFramesRise(ids, 10, 15*time.Second)
}

// pinCheck pins id's tile on u's page, checks it is shown large with the
// others in a strip, and unpins it (the grid again).
func (u *user) pinCheck(t *testing.T, what, id string) {
	t.Helper()
	u.do(chromedp.Click(chromedp.CSS(tileSel(id) + " .tile-pin")))
	u.checkFeatured(t, what+", pinned", id)
	u.do(chromedp.Click(chromedp.CSS(tileSel(id) + " .tile-pin")))
	u.waitFor("the grid", gridShown, 5*time.Second)
	u.checkRoom(t, what+", unpinned", 6)
}

// gridShown is true when no tile is shown large.
const gridShown = `document.querySelector('#tiles').dataset.layout === "grid"`

// featuredSettled is true once one tile is shown large (id's, if given)
// and the other n-1 are in a strip: every tile inside the tile area and
// clear of the controls, the featured one larger than any strip tile,
// strip tiles not overlapping it or each other, no sideways scroll.
func featuredSettled(n int, id string) string {
	return fmt.Sprintf(`(() => { const g = JSON.parse(%s);
		const els = [...document.querySelectorAll('#tiles .tile')];
		const f = els.findIndex(el => el.dataset.featured === "true");
		if (!document.body.classList.contains("in-call") || document.querySelector('#tiles').dataset.layout !== "featured" || f < 0 || g.tileCount !== %d) return false;
		if (%q && els[f].dataset.participantId !== %q) return false;
		const big = g.tiles[f], strip = g.tiles.filter((_, i) => i !== f);
		const apart = (a, b) => a.x + a.w <= b.x + 1 || b.x + b.w <= a.x + 1 || a.y + a.h <= b.y + 1 || b.y + b.h <= a.y + 1;
		return g.scrollW <= g.vw
			&& g.tiles.every(t => t.w > 0 && t.h > 0 && t.x >= g.box.x - 1 && t.y >= g.box.y - 1 && t.x + t.w <= g.box.x + g.box.w + 1
				&& t.y + t.h <= g.box.y + g.box.h + 1 && t.y + t.h <= g.controls.y + 1 && t.x + t.w <= g.vw + 1)
			&& strip.every(t => t.w * t.h < big.w * big.h && apart(t, big))
			&& strip.every((a, i) => strip.every((b, j) => i === j || apart(a, b))); })()`, geometryJS, n, id, id)
}

// checkFeatured waits for featuredSettled with six tiles and logs the
// sizes.
func (u *user) checkFeatured(t *testing.T, what, id string) {
	t.Helper()
	if err := u.tryWaitFor(featuredSettled(6, id), 10*time.Second); err != nil {
		t.Fatalf("%s (%s): no tile shown large with the other five in a strip, all inside the tile area, clear of the controls, without sideways scroll: %v\n%+v",
			u.name, what, err, u.geometry())
	}
	g := u.geometry()
	var featured string
	var strip []string
	for i, el := range eval[[]bool](u, `[...document.querySelectorAll('#tiles .tile')].map(el => el.dataset.featured === "true")`) {
		r := g.Tiles[i]
		if el {
			featured = fmt.Sprintf("%.0f×%.0f", r.W, r.H)
		} else {
			strip = append(strip, fmt.Sprintf("%.0f×%.0f", r.W, r.H))
		}
	}
	t.Logf("%s (%s, %.0f×%.0f): large tile %s, strip %s; %.0f%% of the %.0f×%.0f tile area covered",
		u.name, what, g.VW, g.VH, featured, strings.Join(strip, " "), 100*g.Coverage, g.Box.W, g.Box.H)
}

// goParticipant joins channel as username with the native client
// (internal/client), publishing testdata's test pattern and tone, until
// the test ends.
func goParticipant(t *testing.T, s *servertest.Server, channel, username string) *client.Client {
	t.Helper()
	audio, err := source.OpenOgg(filepath.Join("..", "..", "testdata", "tone.ogg"), true)
	if err != nil {
		t.Fatal(err)
	}
	video, err := source.OpenIVF(filepath.Join("..", "..", "testdata", "pattern.ivf"), true)
	if err != nil {
		t.Fatal(err)
	}
	dialCtx, cancelDial := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancelDial()
	c, err := client.Dial(dialCtx, client.Config{URL: s.URL + "/c/" + channel, Token: s.Token(username), LoopbackOnly: true,
		Audio: audio, Video: video}, nil)
	if err != nil {
		t.Fatalf("%s: dial: %v", username, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Logf("%s: Run after leaving: %v", username, err)
		}
	})
	testtool.Eventually(t, 15*time.Second, func() bool { return c.Stats().Joined > 0 }, username+" joined")
	return c
}
