package e2e_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/servertest"
)

// switchReport is window.parley.lastSwitch: how the last mesh ↔ SFU switch
// went on one page.
type switchReport struct {
	From     string              `json:"from"`
	To       string              `json:"to"`
	MaxGapMs *float64            `json:"maxGapMs"`
	PerPeer  map[string]*float64 `json:"perPeer"`
	Pending  []string            `json:"pending"`
	Done     bool                `json:"done"`
}

// layoutTile is one entry of the last layout message a page sent.
type layoutTile struct {
	Participant string `json:"participant"`
	Source      string `json:"source"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
}

// pageState is the part of window.parley.state the SFU test reads.
type pageState struct {
	Topology string            `json:"topology"`
	Shown    map[string]string `json:"shown"`
	SFU      *struct {
		Pub string `json:"pub"`
		Sub string `json:"sub"`
	} `json:"sfu"`
	Layout []layoutTile `json:"layout"`
}

func (u *user) pageState() pageState {
	u.t.Helper()
	s := eval[string](u, `JSON.stringify(window.parley.state)`)
	var st pageState
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		u.t.Fatalf("%s: window.parley.state: %v (%s)", u.name, err, s)
	}
	return st
}

func (u *user) lastSwitch() *switchReport {
	u.t.Helper()
	s := eval[string](u, `JSON.stringify(window.parley.lastSwitch)`)
	var r *switchReport
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		u.t.Fatalf("%s: window.parley.lastSwitch: %v (%s)", u.name, err, s)
	}
	return r
}

// Ada and Bob talk peer to peer; Cyd joins and the room moves to the SFU
// without the video Ada and Bob see pausing for a second; Dan joins too.
// Everyone sees three remote videos whose frames keep coming, tells the
// server how large it draws them, and sees who speaks.
func TestFourPersonSFUCall(t *testing.T) {
	s := servertest.Start(t)
	// Chromium's own fake microphone beeps for ~20 ms twice a second: too
	// little sound for the server's (smoothed) speaker detection. A steady
	// tone is someone talking.
	browser := newBrowserWith(t, chromedp.Flag("use-file-for-fake-audio-capture", toneWAV(t)))
	names := []string{"Ada", "Bob", "Cyd", "Dan"}
	var users []*user
	for _, n := range names {
		u := newUser(t, browser, s, n)
		u.signUp(lower(n), n)
		users = append(users, u)
	}
	channel := users[0].createChannel("All hands")
	for _, n := range names[1:] {
		users[0].addMember(channel, lower(n))
	}
	ids := make([]string, len(users))
	others := func(i int) []string {
		var out []string
		for j, id := range ids {
			if j != i {
				out = append(out, id)
			}
		}
		return out
	}

	// Two people: peer to peer, video flowing both ways before anyone else comes.
	for i := range 2 {
		users[i].joinCall(channel)
		ids[i] = users[i].myID()
	}
	users[0].waitRemoteVideos(ids[1:2], 30*time.Second)
	users[1].waitRemoteVideos(ids[0:1], 30*time.Second)
	for _, u := range users[:2] {
		if got := u.pageState().Topology; got != "mesh" {
			t.Fatalf("%s: topology %q with two people, want mesh", u.name, got)
		}
	}

	// The third: the room switches to the SFU.
	users[2].joinCall(channel)
	ids[2] = users[2].myID()
	for i, u := range users[:2] {
		u.waitFor("the switch to the SFU", `window.parley.state.topology === "sfu"`, 10*time.Second)
		u.waitFor("the switch to finish", `window.parley.lastSwitch?.done === true`, 20*time.Second)
		r := u.lastSwitch()
		if r == nil || r.From != "mesh" || r.To != "sfu" {
			t.Fatalf("%s: last switch %+v, want mesh → sfu", u.name, r)
		}
		other := ids[1-i]
		gap := r.PerPeer[other]
		if gap == nil || r.MaxGapMs == nil {
			t.Fatalf("%s: no gap measured for %s: %+v", u.name, other, r)
		}
		t.Logf("%s: mesh → SFU switch: video from %s paused %.0f ms (max over peers %.0f ms)", u.name, names[1-i], *gap, *r.MaxGapMs)
		if *r.MaxGapMs >= 1000 {
			t.Errorf("%s: the switch paused video for %.0f ms, want under 1000 ms", u.name, *r.MaxGapMs)
		}
	}

	// The fourth joins a room already on the SFU.
	users[3].joinCall(channel)
	ids[3] = users[3].myID()

	for i, u := range users {
		u.waitRemoteVideos(others(i), 45*time.Second)
	}
	for i, u := range users {
		st := u.pageState()
		if st.Topology != "sfu" || st.SFU == nil {
			t.Errorf("%s: topology %q, sfu %+v; want sfu", u.name, st.Topology, st.SFU)
		}
		for _, id := range others(i) {
			if st.Shown[id] != "sfu" {
				t.Errorf("%s: %s's tile shows the %q path, want sfu", u.name, id, st.Shown[id])
			}
		}
		// The server was told the size of every remote camera video.
		u.waitFor("a layout with three visible remote cameras", fmt.Sprintf(`(() => {
			const l = window.parley.state.layout || [];
			const want = %s;
			return want.every(id => l.some(t => t.participant === id && t.source === "camera" && t.width > 0 && t.height > 0));
		})()`, jsArray(others(i))), 5*time.Second)
	}

	// Everyone's microphone plays the tone; all but Ada mute. The server
	// names Ada as the speaker and every page highlights her tile (her own
	// page, her preview).
	for _, u := range users[1:] {
		u.do(chromedp.Click(chromedp.CSS("#mute-btn")))
	}
	for i, u := range users {
		sel := fmt.Sprintf(`#tiles .tile[data-participant-id=%q]`, ids[0])
		if i == 0 {
			sel = `#tiles .tile.local:not(.screen)`
		}
		cond := fmt.Sprintf(`(() => { const t = document.querySelector('%s');
			return !!t && t.dataset.speaking === "true" && t.classList.contains("speaking")
				&& document.querySelectorAll('#tiles .tile[data-speaking="true"]').length === 1; })()`, sel)
		if err := u.tryWaitFor(cond, 15*time.Second); err != nil {
			t.Fatalf("%s: Ada's tile not (only) marked as speaking: %v; speaker %q after %d speaker messages", u.name, err,
				eval[string](u, `window.parley.state.speaker`), eval[int](u, `window.parley.state.speakerMessages`))
		}
	}

	// Media keeps flowing after all that.
	for i, u := range users {
		u.waitFramesRise(others(i), 10, 10*time.Second)
	}

	// The browsers report their bandwidth estimates to the SFU, and every
	// participant's join-to-first-media time was measured.
	_, metrics := s.Get(s.Client(), "/metrics")
	if n := metricValue(metrics, "parley_sfu_remb_total"); n == 0 {
		t.Errorf("no bandwidth estimate (REMB) reached the SFU from the browsers")
	}
	count := metricValue(metrics, "parley_sfu_join_to_first_media_seconds_count")
	if count < 4 {
		t.Errorf("join-to-first-media measured for %.0f participants, want 4", count)
	} else {
		t.Logf("join-to-first-media: mean %.0f ms over %.0f participants",
			1000*metricValue(metrics, "parley_sfu_join_to_first_media_seconds_sum")/count, count)
	}

	// Cyd and Dan hang up: back to two, back to peer to peer, again
	// without a visible pause.
	for _, u := range users[2:] {
		u.do(chromedp.Click(chromedp.CSS("#hangup-btn")))
	}
	for i, u := range users[:2] {
		u.waitFor("the switch back to the mesh", `window.parley.state.topology === "mesh"`, 10*time.Second)
		u.waitFor("the switch back to finish", `window.parley.lastSwitch?.to === "mesh" && window.parley.lastSwitch.done`, 20*time.Second)
		r := u.lastSwitch()
		gap := r.PerPeer[ids[1-i]]
		if gap == nil || r.MaxGapMs == nil {
			t.Fatalf("%s: no gap measured for the switch back: %+v", u.name, r)
		}
		t.Logf("%s: SFU → mesh switch: video from %s paused %.0f ms", u.name, names[1-i], *gap)
		if *r.MaxGapMs >= 1000 {
			t.Errorf("%s: the switch back paused video for %.0f ms, want under 1000 ms", u.name, *r.MaxGapMs)
		}
	}
	users[0].waitRemoteVideos(ids[1:2], 10*time.Second)
	users[1].waitRemoteVideos(ids[0:1], 10*time.Second)
	// The SFU connections are closed once nobody needs them.
	for _, u := range users[:2] {
		u.waitFor("the SFU connections closed", `window.parley.state.sfu === null`, 15*time.Second)
	}
	users[0].waitFramesRise(ids[1:2], 10, 10*time.Second)
	users[1].waitFramesRise(ids[0:1], 10, 10*time.Second)
}

// metricValue is the value of an unlabelled sample in Prometheus text
// format, 0 if absent.
func metricValue(body, name string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// toneWAV writes a second of a 440 Hz tone at half scale (48 kHz, 16-bit
// mono PCM, which Chromium loops as its fake microphone) and returns its path.
func toneWAV(t *testing.T) string {
	t.Helper()
	const rate = 48000
	samples := make([]byte, 2*rate)
	for i := range rate {
		v := int16(0.5 * math.MaxInt16 * math.Sin(2*math.Pi*440*float64(i)/rate))
		binary.LittleEndian.PutUint16(samples[2*i:], uint16(v))
	}
	hdr := make([]byte, 44)
	copy(hdr[0:], "RIFF")
	binary.LittleEndian.PutUint32(hdr[4:], uint32(36+len(samples)))
	copy(hdr[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(hdr[16:], 16)     // fmt chunk size
	binary.LittleEndian.PutUint16(hdr[20:], 1)      // PCM
	binary.LittleEndian.PutUint16(hdr[22:], 1)      // mono
	binary.LittleEndian.PutUint32(hdr[24:], rate)   // sample rate
	binary.LittleEndian.PutUint32(hdr[28:], rate*2) // byte rate
	binary.LittleEndian.PutUint16(hdr[32:], 2)      // block align
	binary.LittleEndian.PutUint16(hdr[34:], 16)     // bits per sample
	copy(hdr[36:], "data")
	binary.LittleEndian.PutUint32(hdr[40:], uint32(len(samples)))
	path := filepath.Join(t.TempDir(), "tone.wav")
	if err := os.WriteFile(path, append(hdr, samples...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
