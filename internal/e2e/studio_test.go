package e2e_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/servertest"
)

// The studio's browser tests (issue 11). Each page has its own fake
// microphone playing a known tone (440 Hz for Ann, 660 Hz for Bob), so an
// analyser on a listening page tells whose take it hears.

// studioToneWAV writes a 48 kHz mono 16-bit WAV of a sine at hz (Chromium loops
// it as the fake microphone) and returns its path.
func studioToneWAV(t *testing.T, hz float64) string {
	t.Helper()
	const rate, secs = 48000, 4
	n := rate * secs
	b := make([]byte, 44+2*n)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], rate)
	binary.LittleEndian.PutUint32(b[28:], rate*2)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*n))
	for i := range n {
		v := int16(0.5 * 32767 * math.Sin(2*math.Pi*hz*float64(i)/rate))
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(v))
	}
	p := filepath.Join(t.TempDir(), fmt.Sprintf("tone-%.0f.wav", hz))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// toneBrowser is a Chromium whose microphone plays a tone of hz, and
// which plays audio without a click first.
func toneBrowser(t *testing.T, hz float64) context.Context {
	t.Helper()
	return newBrowserWith(t,
		chromedp.Flag("use-file-for-fake-audio-capture", studioToneWAV(t, hz)),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
}

// openStudio opens the channel's studio and waits for it to load.
func (u *user) openStudio(channelID string) {
	u.t.Helper()
	u.do(chromedp.Navigate(u.s.URL + "/c/" + channelID + "/studio"))
	// The microphone opening changes the page's layout; clicks wait for it.
	u.waitFor("the studio to load", `window.parleyStudio && window.parleyStudio.ready && window.parleyStudio.state.mic`, 20*time.Second)
}

// waitForStudio is waitFor with the studio's status line in the failure.
func (u *user) waitForStudio(what, expr string, timeout time.Duration) {
	u.t.Helper()
	if err := u.tryWaitFor(expr, timeout); err != nil {
		u.t.Fatalf("%s: waited %s for %s (%s): %v\nstudio: %s", u.name, timeout, what, expr, err,
			eval[string](u, `JSON.stringify({status: document.querySelector('#studio-status')?.textContent, songs: [...document.querySelectorAll('#song-select option')].map(o => o.textContent + (o.selected ? " (selected)" : "")), songId: window.parleyStudio?.state.songId})`))
	}
}

// addSongAndTracks makes a song with the named tracks through the page.
func (u *user) addSongAndTracks(song string, tracks ...string) {
	u.t.Helper()
	// Enter submits, as a person would, with no click to land on a moving button.
	u.do(fill("#new-song-name", song+kb.Enter))
	u.waitForStudio("the song", fmt.Sprintf(`[...document.querySelectorAll('#song-select option')].some(o => o.selected && o.textContent.startsWith(%q))`, song), 10*time.Second)
	for i, tr := range tracks {
		u.do(fill("#new-track-name", tr+kb.Enter))
		u.waitForStudio("track "+tr, fmt.Sprintf(`document.querySelectorAll('#tracks .track').length === %d`, i+1), 10*time.Second)
	}
}

// trackID is the id of the page's n-th track (0-based).
func (u *user) trackID(n int) string {
	return eval[string](u, fmt.Sprintf(`document.querySelectorAll('#tracks .track')[%d].dataset.trackId`, n))
}

// startRecording clicks a track's record button and waits until the
// recorder runs; it returns the take's id.
func (u *user) startRecording(trackID string) string {
	u.t.Helper()
	u.clickRecord(trackID)
	u.waitFor("the recorder to start", `window.parleyStudio.state.rec && window.parleyStudio.state.rec.recorder.startedAt > 0`, 20*time.Second)
	return eval[string](u, `window.parleyStudio.state.rec.take.id`)
}

// clickRecord clicks a track's record button in one step in the page: the
// studio re-renders its track list on every live event, so a node found
// by one protocol call may be gone by the next ("Could not find node with
// given id").
func (u *user) clickRecord(trackID string) {
	u.t.Helper()
	if !eval[bool](u, fmt.Sprintf(`(() => { const b = document.querySelector('.track[data-track-id=%q] .record-btn'); if (!b) return false; b.click(); return true; })()`, trackID)) {
		u.t.Fatalf("no record button on track %s", trackID)
	}
}

// stopRecording clicks stop and waits until the take is saved.
func (u *user) stopRecording(trackID string) {
	u.t.Helper()
	u.clickRecord(trackID)
	u.waitFor("the take to be saved", `window.parleyStudio.state.rec === null`, 30*time.Second)
}

// takeState is a take's state as the page knows it.
func (u *user) takeState(take string) string {
	return eval[string](u, fmt.Sprintf(`document.querySelector('li.take[data-take-id=%q]')?.dataset.state || ""`, take))
}

// waitHears waits until the page's player output is dominated by hz.
func (u *user) waitHears(hz float64, timeout time.Duration) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("%.0f Hz on the player's analyser", hz),
		fmt.Sprintf(`(() => { const f = window.parleyStudio.dominantFrequency(); return Math.abs(f.hz - %f) < 12 && f.db > -70; })()`, hz), timeout)
	u.t.Logf("%s hears %s", u.name, eval[string](u, `JSON.stringify(window.parleyStudio.dominantFrequency())`))
}

// probeTake returns a take file's codec and its packets' times (ffprobe):
// MediaRecorder's WebM has no duration in its header, so the length is
// the last packet's end.
func probeTake(t *testing.T, path string) (codec string, pts []float64) {
	t.Helper()
	ffprobe := requireTool(t, "ffprobe")
	out, err := exec.Command(ffprobe, "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=codec_name:packet=pts_time",
		"-of", "default=noprint_wrappers=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "codec_name="); ok {
			codec = v
		}
		if v, ok := strings.CutPrefix(line, "pts_time="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				pts = append(pts, f)
			}
		}
	}
	if len(pts) == 0 {
		t.Fatalf("ffprobe %s: no packets\n%s", path, out)
	}
	return codec, pts
}

// takeSeconds is the audio a take file holds: its last packet's time plus
// one Opus frame (20 ms).
func takeSeconds(pts []float64) float64 { return pts[len(pts)-1] - pts[0] + 0.02 }

func takePath(s *servertest.Server, channelID, take string) string {
	return filepath.Join(s.Config.DataDir, "studio", channelID, take)
}

// bandOf starts a server and two members in their own browsers, Ann (440
// Hz, the owner) and Bob (660 Hz), with the channel's id.
func bandOf(t *testing.T, opts ...servertest.Option) (s *servertest.Server, ann, bob *user, ch string) {
	t.Helper()
	s = servertest.Start(t, opts...)
	ann = newUser(t, toneBrowser(t, 440), s, "ann")
	ann.signUp("ann", "Ann")
	ch = ann.createChannel("band")
	bob = newUser(t, toneBrowser(t, 660), s, "bob")
	bob.signUp("bob", "Bob")
	ann.addMember(ch, "bob")
	return s, ann, bob, ch
}

// TestStudioRecordAndPlay (issue 11, test 1): Ann records a 10 s take;
// the file on disk is Opus, 10 s ± 0.5 s long; Bob's page plays it and
// its analyser finds Ann's 440 Hz.
func TestStudioRecordAndPlay(t *testing.T) {
	s, ann, bob, ch := bandOf(t)
	ann.openStudio(ch)
	ann.addSongAndTracks("Tune", "Vocals")
	bob.openStudio(ch)
	track := ann.trackID(0)
	take := ann.startRecording(track)
	started := time.Now()
	bob.waitFor("Ann's take to appear as recording", fmt.Sprintf(`document.querySelector('li.take[data-take-id=%q]')?.dataset.state === "recording"`, take), 10*time.Second)
	// Bob's page draws the growing take from the levels Ann's page sends.
	bob.waitFor("Ann's live levels on Bob's page", fmt.Sprintf(`(window.parleyStudio.state.liveLevels.get(%q) || []).filter(v => v > 0.2).length >= 8`, take), 10*time.Second)
	time.Sleep(time.Until(started.Add(10 * time.Second))) // the take's length, not a synchronisation
	ann.stopRecording(track)
	bob.waitFor("Ann's take to be done", fmt.Sprintf(`document.querySelector('li.take[data-take-id=%q]')?.dataset.state === "done"`, take), 10*time.Second)

	codec, pts := probeTake(t, takePath(s, ch, take))
	if codec != "opus" {
		t.Errorf("take codec %q, want opus", codec)
	}
	t.Logf("take: %s, %.2f s, %d packets", codec, takeSeconds(pts), len(pts))
	if d := takeSeconds(pts); math.Abs(d-10) > 0.5 {
		t.Errorf("take holds %.2f s of audio, want 10 ± 0.5 s", d)
	}
	bob.do(chromedp.Click(chromedp.CSS("#play-btn")))
	bob.waitHears(440, 15*time.Second)
}

// TestStudioPageClosedMidTake (issue 11, test 3): Ann's page is closed in
// the middle of a take; the take is kept, marked interrupted, with at
// least (elapsed − 1 s) of audio.
func TestStudioPageClosedMidTake(t *testing.T) {
	s, ann, bob, ch := bandOf(t, servertest.WithConfig(func(c *config.Config) { c.StudioIdle = 2 * time.Second }))
	ann.openStudio(ch)
	ann.addSongAndTracks("Tune", "Guitar")
	bob.openStudio(ch)
	take := ann.startRecording(ann.trackID(0))
	started := time.Now()
	bob.waitFor("Ann's take to grow past 4 s", fmt.Sprintf(`(window.parleyStudio.state.liveSeen.get(%q)?.ms || 0) >= 4000`, take), 20*time.Second)
	// The page's own count of what it recorded, taken just before closing
	// (the test's clock, from before the click returned, is the floor).
	elapsed := max(eval[float64](ann, `window.parleyStudio.state.rec.recorder.elapsedMs()`)/1000, time.Since(started).Seconds())
	if err := chromedp.Cancel(ann.ctx); err != nil { // closes Ann's tab
		t.Fatalf("close Ann's page: %v", err)
	}
	bob.waitFor("the take to be marked interrupted", fmt.Sprintf(`document.querySelector('li.take[data-take-id=%q]')?.dataset.state === "interrupted"`, take), 20*time.Second)
	_, pts := probeTake(t, takePath(s, ch, take))
	t.Logf("page recorded for %.2f s; the interrupted take holds %.2f s", elapsed, takeSeconds(pts))
	if d := takeSeconds(pts); d < elapsed-1 {
		t.Errorf("interrupted take holds %.2f s of audio; the page recorded for %.2f s, so want at least %.2f s", d, elapsed, elapsed-1)
	}
}

// TestStudioMembership (issue 11, test 5), from real pages: a logged-in
// non-member gets 403 from every studio route and upload; a member cannot
// delete another's take, the owner can.
func TestStudioMembership(t *testing.T) {
	s := servertest.Start(t)
	browser := newBrowser(t)
	ann := newUser(t, browser, s, "ann")
	ann.signUp("ann", "Ann")
	ch := ann.createChannel("band")
	bob := newUser(t, browser, s, "bob")
	bob.signUp("bob", "Bob")
	eve := newUser(t, browser, s, "eve")
	eve.signUp("eve", "Eve")
	ann.addMember(ch, "bob")
	ann.openStudio(ch)
	ann.addSongAndTracks("Tune", "Bass")
	bob.openStudio(ch)
	track := ann.trackID(0)
	song := eval[string](ann, `window.parleyStudio.state.songId`)
	annTake := evalAsync[string](ann, fmt.Sprintf(`window.parleyStudio.api.createTake(%q, 0, 0).then(k => k.id)`, track))
	bobTake := evalAsync[string](bob, fmt.Sprintf(`window.parleyStudio.api.createTake(%q, 1000, 0).then(k => k.id)`, track))

	// Eve's page, on the site but not in the channel, tries every route.
	eve.do(chromedp.Navigate(s.URL + "/channels"))
	base := "/api/channels/" + ch + "/studio"
	routes := [][2]string{
		{"GET", base}, {"POST", base + "/songs"}, {"PATCH", base + "/songs/" + song}, {"DELETE", base + "/songs/" + song},
		{"POST", base + "/songs/" + song + "/tracks"}, {"PATCH", base + "/tracks/" + track}, {"DELETE", base + "/tracks/" + track},
		{"PUT", base + "/tracks/" + track + "/chosen"}, {"POST", base + "/tracks/" + track + "/takes"},
		{"PUT", base + "/takes/" + annTake + "/chunks/0"}, {"POST", base + "/takes/" + annTake + "/finish"},
		{"GET", base + "/takes/" + annTake + "/audio"}, {"DELETE", base + "/takes/" + annTake},
		{"GET", "/c/" + ch + "/studio"},
	}
	for _, r := range routes {
		body := "null"
		if r[0] != "GET" {
			body = `"{\"name\":\"x\"}"`
		}
		st := evalAsync[int](eve, fmt.Sprintf(`fetch(%q, {method: %q, body: %s}).then(r => r.status)`, r[1], r[0], body))
		if st != 403 {
			t.Errorf("non-member %s %s: %d, want 403", r[0], r[1], st)
		}
	}
	del := func(u *user, take string) int {
		return evalAsync[int](u, fmt.Sprintf(`fetch(%q, {method: "DELETE"}).then(r => r.status)`, base+"/takes/"+take))
	}
	if st := del(bob, annTake); st != 403 {
		t.Errorf("Bob deletes Ann's take: %d, want 403", st)
	}
	if st := del(ann, bobTake); st != 204 {
		t.Errorf("Ann (owner) deletes Bob's take: %d, want 204", st)
	}
	if st := del(bob, annTake); st != 403 {
		t.Errorf("Bob deletes Ann's take again: %d, want 403", st)
	}
}

// takeOffset is a take's offset on the timeline, in ms, as the page knows it.
func (u *user) takeOffset(take string) float64 {
	return eval[float64](u, fmt.Sprintf(`(() => { for (const s of window.parleyStudio.state.view.songs) for (const t of s.tracks) for (const k of t.takes) if (k.id === %q) return k.offsetMs; return -1; })()`, take))
}

// TestStudioLiveOverdub (issue 11, test 2): Ann starts recording; 3 s
// later Bob starts an overdub on another track; while Ann still records,
// Bob's page plays Ann's take (440 Hz on its analyser, the take still
// marked recording); after both stop, the offsets differ by 3 s ± 0.2 s
// and a mixdown holds both tones.
func TestStudioLiveOverdub(t *testing.T) {
	_, ann, bob, ch := bandOf(t)
	ann.openStudio(ch)
	ann.addSongAndTracks("Tune", "Guitar", "Vocals", "Drums")
	bob.openStudio(ch)
	guitar, vocals := ann.trackID(0), ann.trackID(1)
	annTake := ann.startRecording(guitar)
	annStarted := time.Now()
	bob.waitFor("Ann's take to appear", fmt.Sprintf(`!!document.querySelector('li.take[data-take-id=%q]')`, annTake), 10*time.Second)
	time.Sleep(time.Until(annStarted.Add(3 * time.Second))) // the 3 s the test is about
	bobTake := bob.startRecording(vocals)
	bob.waitHears(440, 10*time.Second)
	if st := bob.takeState(annTake); st != "recording" {
		t.Errorf("while Bob hears Ann, her take is %q on his page, want recording", st)
	}
	time.Sleep(3 * time.Second) // Bob's part
	bob.stopRecording(vocals)
	ann.stopRecording(guitar)
	bob.waitFor("both takes done on Bob's page", fmt.Sprintf(`document.querySelector('li.take[data-take-id=%q]')?.dataset.state === "done" && document.querySelector('li.take[data-take-id=%q]')?.dataset.state === "done"`, annTake, bobTake), 15*time.Second)
	diff := (bob.takeOffset(bobTake) - bob.takeOffset(annTake)) / 1000
	t.Logf("offsets: Ann %.0f ms, Bob %.0f ms", bob.takeOffset(annTake), bob.takeOffset(bobTake))
	if math.Abs(diff-3) > 0.2 {
		t.Errorf("Bob's take starts %.2f s after Ann's, want 3 ± 0.2 s", diff)
	}
	type mixdown struct {
		Seconds float64            `json:"seconds"`
		Tones   map[string]float64 `json:"tones"`
	}
	ctx, cancel := context.WithTimeout(bob.ctx, 60*time.Second)
	defer cancel()
	mix, err := chromedp.Run(ctx, chromedp.Evaluate[mixdown](`window.parleyStudio.mixdown()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("mixdown: %v", err)
	}
	t.Logf("mixdown: %.2f s, tone amplitudes %v", mix.Seconds, mix.Tones)
	if mix.Tones["440"] < 0.02 || mix.Tones["660"] < 0.02 {
		t.Errorf("mixdown tones %v: want both 440 and 660 Hz", mix.Tones)
	}
	if !eval[bool](bob, `!document.querySelector('#mixdown-link').hidden && document.querySelector('#mixdown-link').href.startsWith("blob:")`) {
		t.Error("no mixdown download offered")
	}
	if *updateScreenshot {
		// docs/studio.md's picture: three tracks, each with a take.
		drums := ann.trackID(2)
		ann.do(chromedp.Click(chromedp.CSS("#rewind-btn")))
		ann.startRecording(drums)
		time.Sleep(4 * time.Second)
		ann.stopRecording(drums)
		bob.waitFor("three takes drawn", `document.querySelectorAll('canvas.wave[data-drawn]').length >= 3`, 20*time.Second)
		png, err := chromedp.Run(bob.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join("..", "..", "docs", "images", "studio.png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
}

// TestStudioServerRestartMidTake (issue 11, test 4): the server restarts in
// the middle of a take; the page resends what was not acknowledged, and
// the finished take has no gap longer than one chunk.
func TestStudioServerRestartMidTake(t *testing.T) {
	s, ann, _, ch := bandOf(t)
	ann.openStudio(ch)
	ann.addSongAndTracks("Tune", "Drums")
	track := ann.trackID(0)
	take := ann.startRecording(track)
	ann.waitFor("a few chunks acknowledged", `window.parleyStudio.state.rec.uploader.acked >= 8`, 15*time.Second)
	// Down long enough that chunks pile up unacknowledged on the page.
	s.Stop()
	ann.waitFor("chunks waiting while the server is down", `window.parleyStudio.state.rec.uploader.pending >= 3`, 15*time.Second)
	s.Restart() // Stop was the first half; this starts it again on the same address and data
	ann.waitFor("chunks acknowledged by the new server", `window.parleyStudio.state.rec.uploader.acked >= 20 && window.parleyStudio.state.rec.uploader.pending <= 1`, 30*time.Second)
	recorded := eval[float64](ann, `window.parleyStudio.state.rec.recorder.elapsedMs()`) / 1000
	if retries := eval[int](ann, `window.parleyStudio.state.rec.uploader.retries`); retries == 0 {
		t.Error("no chunk was resent: the restart did not interrupt the upload, so the test proved nothing")
	} else {
		t.Logf("%d sends failed during the restart and were resent", retries)
	}
	ann.stopRecording(track)
	_, pts := probeTake(t, takePath(s, ch, take))
	gap := 0.0
	for i := 1; i < len(pts); i++ {
		gap = max(gap, pts[i]-pts[i-1])
	}
	t.Logf("take: %.2f s in %d packets, largest gap %.3f s; the page recorded %.2f s before stop", takeSeconds(pts), len(pts), gap, recorded)
	if gap > 0.25+0.06 { // one chunk (250 ms) plus one packet
		t.Errorf("the take has a gap of %.3f s, longer than one chunk", gap)
	}
	if takeSeconds(pts) < recorded-0.5 {
		t.Errorf("the take holds %.2f s; the page had recorded %.2f s before stopping", takeSeconds(pts), recorded)
	}
}

// TestStudioQuotaFullWhileRecording: when the channel's storage fills up
// mid-take, the page stops recording and shows the server's message, and
// the take keeps what the server stored.
func TestStudioQuotaFullWhileRecording(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.StudioQuota = 24 << 10 }))
	ann := newUser(t, toneBrowser(t, 440), s, "ann")
	ann.signUp("ann", "Ann")
	ch := ann.createChannel("band")
	ann.openStudio(ch)
	ann.addSongAndTracks("Tune", "Keys")
	track := ann.trackID(0)
	take := ann.startRecording(track)
	ann.waitFor("recording to stop at the quota", `window.parleyStudio.state.rec === null`, 30*time.Second)
	if msg := eval[string](ann, `document.querySelector('#studio-status').textContent`); !strings.Contains(msg, "storage is full") {
		t.Errorf("status %q, want the server's quota message", msg)
	}
	ann.waitFor("the take kept as done", fmt.Sprintf(`document.querySelector('li.take[data-take-id=%q]')?.dataset.state === "done"`, take), 10*time.Second)
	_, pts := probeTake(t, takePath(s, ch, take))
	t.Logf("the take keeps %.2f s", takeSeconds(pts))
	if takeSeconds(pts) < 0.5 {
		t.Errorf("the take keeps %.2f s, want what was stored before the quota", takeSeconds(pts))
	}
}
