package e2e_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/recording"
	"github.com/parley/parley/internal/servertest"
)

// toneWAVAt writes a second of a sine tone at freq Hz, half scale (48 kHz,
// 16-bit mono PCM, which Chromium loops as its fake microphone).
func toneWAVAt(t *testing.T, freq float64) string {
	t.Helper()
	const rate = 48000
	samples := make([]byte, 2*rate)
	for i := range rate {
		v := int16(0.5 * math.MaxInt16 * math.Sin(2*math.Pi*freq*float64(i)/rate))
		binary.LittleEndian.PutUint16(samples[2*i:], uint16(v))
	}
	hdr := make([]byte, 44)
	copy(hdr[0:], "RIFF")
	binary.LittleEndian.PutUint32(hdr[4:], uint32(36+len(samples)))
	copy(hdr[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(hdr[16:], 16)
	binary.LittleEndian.PutUint16(hdr[20:], 1)
	binary.LittleEndian.PutUint16(hdr[22:], 1)
	binary.LittleEndian.PutUint32(hdr[24:], rate)
	binary.LittleEndian.PutUint32(hdr[28:], rate*2)
	binary.LittleEndian.PutUint16(hdr[32:], 2)
	binary.LittleEndian.PutUint16(hdr[34:], 16)
	copy(hdr[36:], "data")
	binary.LittleEndian.PutUint32(hdr[40:], uint32(len(samples)))
	path := filepath.Join(t.TempDir(), fmt.Sprintf("tone%.0f.wav", freq))
	if err := os.WriteFile(path, append(hdr, samples...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// recordFor is how long the browser test records: the issue asks for
// 20 s, and every file's length is checked against it (±1 s).
const recordFor = 20 * time.Second

// TestRecordingInBrowsers: three people in three Chromiums, each with a
// fake microphone playing its own tone and the fake camera. The owner
// presses Record; everyone sees the indicator naming her; she stops it
// after recordFor. Every participant then has an Opus and a VP8 file
// that ffprobe reads, recordFor ± 1 s long; on the recordings page the
// synced player decodes every video and its mixed audio carries all
// three tones.
func TestRecordingInBrowsers(t *testing.T) {
	ffprobe := requireTool(t, "ffprobe")
	s := servertest.Start(t)
	names := []string{"Ann", "Bob", "Cat"}
	tones := []float64{440, 660, 990}
	var users []*user
	for i, n := range names {
		b := newBrowserWith(t, chromedp.Flag("use-file-for-fake-audio-capture", toneWAVAt(t, tones[i])),
			chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
		u := newUser(t, b, s, n)
		u.signUp(lower(n), n)
		users = append(users, u)
	}
	ch := users[0].createChannel("Recorded")
	for _, n := range names[1:] {
		users[0].addMember(ch, lower(n))
	}
	var ids []string
	for _, u := range users {
		u.joinCall(ch)
		ids = append(ids, u.myID())
	}
	for i, u := range users {
		var others []string
		for j, id := range ids {
			if j != i {
				others = append(others, id)
			}
		}
		u.waitRemoteVideos(others, 60*time.Second)
	}
	// Only those allowed see the button: the owner, not a member.
	users[0].waitFor("the Record button", `!document.querySelector('#record-btn').hidden`, 10*time.Second)
	if eval[bool](users[1], `!document.querySelector('#record-btn').hidden`) {
		t.Error("a member who may not record sees the Record button")
	}
	users[0].do(chromedp.Click(chromedp.CSS("#record-btn")))
	started := time.Now()
	for _, u := range users {
		u.waitFor("the recording indicator naming Ann", `(() => { const el = document.querySelector('#recording-indicator');
			return el && !el.hidden && el.textContent.includes("Ann"); })()`, 10*time.Second)
	}
	time.Sleep(recordFor - time.Since(started)) // the recording's length under test
	users[0].do(chromedp.Click(chromedp.CSS("#record-btn")))
	for _, u := range users {
		u.waitFor("the indicator to go", `document.querySelector('#recording-indicator').hidden`, 10*time.Second)
	}

	// The files, by the manifest.
	var list struct{ Recordings []recording.Manifest }
	users[0].waitFor("the recording to be listed as finished", fmt.Sprintf(`fetch("/api/channels/%s/recordings").then(r => r.json()).then(b => { window.recs = b; })
		&& window.recs && window.recs.recordings.length === 1 && window.recs.recordings[0].state === "finished"`, ch), 20*time.Second)
	if err := json.Unmarshal([]byte(eval[string](users[0], `JSON.stringify(window.recs)`)), &list); err != nil {
		t.Fatal(err)
	}
	m := list.Recordings[0]
	dir := filepath.Join(s.Config.DataDir, "recordings", ch, m.ID)
	kinds := map[string]map[string]bool{}
	for _, f := range m.Files {
		if kinds[f.UserName] == nil {
			kinds[f.UserName] = map[string]bool{}
		}
		kinds[f.UserName][f.Kind+" "+f.Codec] = true
		out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", filepath.Join(dir, f.Name)).Output()
		if err != nil {
			t.Errorf("ffprobe %s: %v", f.Name, err)
			continue
		}
		sec, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if d := time.Duration(sec * float64(time.Second)); d < recordFor-time.Second || d > recordFor+time.Second {
			t.Errorf("%s (%s) lasts %v, want %v ± 1 s", f.Name, f.UserName, d, recordFor)
		}
	}
	for _, n := range names {
		if !kinds[n]["audio audio/opus"] || !(kinds[n]["video video/VP8"] || kinds[n]["video video/VP9"]) {
			t.Errorf("%s's files: %v, want Opus audio and VP8/VP9 video", n, kinds[n])
		}
	}

	// The synced player: videos decode, the mix carries every tone.
	ann := users[0]
	ann.do(chromedp.Navigate(s.URL + "/c/" + ch + "/recordings"))
	ann.waitFor("the recording in the list", `document.querySelector('#recordings-list button')`, 10*time.Second)
	ann.do(chromedp.Click(chromedp.CSS("#recordings-list button")), chromedp.Click(chromedp.CSS("#player .player-controls button")))
	ann.waitFor("every video to decode frames", `(() => { const v = [...document.querySelectorAll('#player video')];
		return v.length === 3 && v.every(x => x.getVideoPlaybackQuality().totalVideoFrames > 5); })()`, 20*time.Second)
	// Peaks of the mixed audio at each tone, well above the spectrum's median.
	tonesFound := fmt.Sprintf(`(() => { const a = window.parleyPlayer.analyser; const d = new Float32Array(a.frequencyBinCount);
		a.getFloatFrequencyData(d); const hz = a.context.sampleRate / a.fftSize;
		const sorted = [...d].sort((x, y) => x - y); const median = sorted[sorted.length >> 1];
		const peak = f => Math.max(...[-2,-1,0,1,2].map(k => d[Math.round(f / hz) + k]));
		window.toneLevels = %s.map(f => peak(f) - median);
		return window.toneLevels.every(x => x > 30); })()`, jsonFloats(tones))
	if err := ann.tryWaitFor(tonesFound, 15*time.Second); err != nil {
		t.Errorf("the player's mix does not carry all three tones (dB above median at %v Hz: %v): %v", tones,
			eval[[]float64](ann, `window.toneLevels || []`), err)
	}
	// Downloads are the manifest's files (members only: TestRecordingAuthorization).
	if status := evalAsync[float64](ann, `(async () => (await fetch(document.querySelector('#recordings-list a').href, {headers: {Range: "bytes=0-9"}})).status)()`); status != http.StatusPartialContent {
		t.Errorf("download with a range: %v, want 206", status)
	}
}

func jsonFloats(fs []float64) string {
	b, _ := json.Marshal(fs)
	return string(b)
}
