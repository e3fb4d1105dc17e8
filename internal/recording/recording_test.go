package recording

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"

	"github.com/parley/parley/internal/media"
	"github.com/parley/parley/internal/testtool"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newService(t *testing.T, cfg Config) *Service {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	opusTrack = media.TrackInfo{Participant: "p_aaaaaaaaaa", TrackID: "p_aaaaaaaaaa:microphone", Source: "microphone", Kind: "audio", MimeType: "audio/opus", ClockRate: 48000, Channels: 2}
	vp8Track  = media.TrackInfo{Participant: "p_aaaaaaaaaa", TrackID: "p_aaaaaaaaaa:camera", Source: "camera", Kind: "video", MimeType: "video/VP8", ClockRate: 90000}
)

func rtpBytes(t testing.TB, seq uint16, ts uint32, marker bool, payload []byte) []byte {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts, SSRC: 1, Marker: marker}, Payload: payload}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// opusPackets reads the Opus packets of testdata/tone.ogg (after its
// two header packets).
func opusPackets(t testing.TB) [][]byte {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "tone.ogg"))
	if err != nil {
		t.Fatal(err)
	}
	var pkts [][]byte
	var cur []byte
	for off := 0; off+27 <= len(b); {
		n := int(b[off+26])
		lacing := b[off+27 : off+27+n]
		body := off + 27 + n
		for _, l := range lacing {
			cur = append(cur, b[body:body+int(l)]...)
			body += int(l)
			if l < 255 {
				pkts = append(pkts, cur)
				cur = nil
			}
		}
		off = body
	}
	return pkts[2:]
}

// feedOpus sends d of testdata/tone.ogg as RTP, one 20 ms packet each.
func feedOpus(t *testing.T, sink media.TrackSink, d time.Duration, _ *clock, ts0 uint32) {
	t.Helper()
	pkts := opusPackets(t)
	ts := ts0
	for i := 0; time.Duration(i)*20*time.Millisecond < d; i++ {
		sink.WriteRTP(0, rtpBytes(t, uint16(i), ts, false, pkts[i%len(pkts)]))
		ts += 960
	}
}

// feedVP8 sends n frames of testdata/pattern.ivf (30 fps) as RTP.
func feedVP8(t *testing.T, sink media.TrackSink, frames int, c *clock) {
	t.Helper()
	feedVP8Layer(t, sink, 0, 0, frames, 1000, 0, c)
}

// feedVP8Layer sends frames [skip, skip+frames) of testdata/pattern.ivf
// on a simulcast layer, its RTP timestamps from ts0 and sequence numbers
// from seq0 (each layer has its own).
func feedVP8Layer(t *testing.T, sink media.TrackSink, layer, skip, frames int, ts0 uint32, seq0 uint16, c *clock) (uint16, uint32) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "pattern.ivf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	pay := &codecs.VP8Payloader{}
	seq, ts := seq0, ts0
	for range skip {
		if _, _, err := r.ParseNextFrame(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < frames; i++ {
		frame, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			f.Seek(0, io.SeekStart)
			r, _, _ = ivfreader.NewWith(f)
			i--
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		parts := pay.Payload(1200, frame)
		for j, p := range parts {
			sink.WriteRTP(layer, rtpBytes(t, seq, ts, j == len(parts)-1, p))
			seq++
		}
		ts += 3000
		if c != nil {
			c.add(time.Second / 30)
		}
	}
	return seq, ts
}

func ffprobeDuration(t *testing.T, path string) time.Duration {
	t.Helper()
	ffprobe := testtool.Find(t, "ffmpeg", "ffprobe")
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	sec, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe %s: %q", path, out)
	}
	return time.Duration(sec * float64(time.Second))
}

// TestTimelineLateTrack: a track whose first packet arrives 5 s after the
// recording started starts 5 s into the timeline; its sender report then
// places it by the sender's clock (here: 40 ms earlier than its packet
// arrived, as if the network had delayed it).
func TestTimelineLateTrack(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s := newService(t, Config{Now: c.now})
	ss, err := s.Start("chan1", Person{UserID: "u1", Name: "Ann"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	early := ss.Track(opusTrack)
	early.WriteRTP(0, rtpBytes(t, 1, 5000, false, []byte{0xfc, 1, 2}))
	c.add(5 * time.Second)
	lateInfo := opusTrack
	lateInfo.Participant, lateInfo.TrackID = "p_bbbbbbbbbb", "p_bbbbbbbbbb:microphone"
	late := ss.Track(lateInfo)
	late.WriteRTP(0, rtpBytes(t, 1, 90000, false, []byte{0xfc, 1, 2}))
	early.Close()
	late.Close()
	m := ss.Stop(StateFinished, "test")
	if len(m.Files) != 2 {
		t.Fatalf("files %+v", m.Files)
	}
	if m.Files[0].StartMS != 0 || m.Files[1].StartMS != 5000 || m.Files[1].Sync != "arrival" {
		t.Errorf("starts %d and %d ms (%s), want 0 and 5000 (arrival)", m.Files[0].StartMS, m.Files[1].StartMS, m.Files[1].Sync)
	}

	// With a sender report: RTP time 90000 + 48000·0.5 was sampled when
	// the report arrived, 0.54 s after the first packet did: so the first
	// packet was sampled 40 ms before it arrived.
	c2 := &clock{t: time.Unix(1_700_000_000, 0)}
	s2 := newService(t, Config{Now: c2.now})
	ss2, _ := s2.Start("chan1", Person{UserID: "u1"}, nil)
	c2.add(5 * time.Second)
	w := ss2.Track(opusTrack)
	w.WriteRTP(0, rtpBytes(t, 1, 90000, false, []byte{0xfc, 1, 2}))
	c2.add(540 * time.Millisecond)
	w.SenderReport(0, 90000+24000, 0)
	w.Close()
	m2 := ss2.Stop(StateFinished, "test")
	if f := m2.Files[0]; f.StartMS != 5040 || f.Sync != "sender-report" {
		t.Errorf("start %d ms (%s), want 5040 (sender-report)", f.StartMS, f.Sync)
	}
}

// TestQueueFullDropsAndCounts: when the file's writer cannot keep up
// (here: held on the session's lock), packets beyond the queue are
// dropped and counted, WriteRTP never blocks and never allocates.
func TestQueueFullDropsAndCounts(t *testing.T) {
	s := newService(t, Config{QueuePackets: 4})
	ss, _ := s.Start("chan1", Person{UserID: "u1"}, nil)
	w := ss.Track(opusTrack).(*trackWriter)
	ss.mu.Lock() // the writer blocks on its first packet (it notes the start)
	b := rtpBytes(t, 1, 1, false, []byte{0xfc, 1, 2})
	for i := 0; i < 10; i++ {
		w.WriteRTP(0, b)
	}
	if allocs := testing.AllocsPerRun(100, func() { w.WriteRTP(0, b) }); allocs != 0 {
		t.Errorf("WriteRTP allocates %v times per packet", allocs)
	}
	if got := w.dropped.Load(); got != 6+101 {
		t.Errorf("dropped %d, want %d", got, 6+101)
	}
	ss.mu.Unlock()
	w.Close()
	m := ss.Stop(StateFinished, "test")
	if m.Files[0].Dropped != 107 || m.Files[0].Packets != 4 {
		t.Errorf("manifest says %d dropped, %d written; want 107, 4", m.Files[0].Dropped, m.Files[0].Packets)
	}
}

// TestWriteRTPNoAllocs: queueing a packet with room in the queue
// allocates nothing (it runs on the forwarding goroutine).
func TestWriteRTPNoAllocs(t *testing.T) {
	s := newService(t, Config{QueuePackets: 4096})
	ss, _ := s.Start("chan1", Person{UserID: "u1"}, nil)
	w := ss.Track(opusTrack)
	b := rtpBytes(t, 1, 1, false, []byte{0xfc, 1, 2})
	if allocs := testing.AllocsPerRun(1000, func() { w.WriteRTP(0, b) }); allocs != 0 {
		t.Errorf("WriteRTP allocates %v times per packet", allocs)
	}
	w.Close()
	ss.Stop(StateFinished, "test")
}

// TestFilesPlay: an Opus and a VP8 track become an Ogg and a WebM file
// that ffprobe reads with the length that was sent; the WebM has its
// duration and cues (seekable).
func TestFilesPlay(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s := newService(t, Config{Now: c.now, QueuePackets: 1 << 16})
	ss, _ := s.Start("chan1", Person{UserID: "u1"}, nil)
	a := ss.Track(opusTrack)
	v := ss.Track(vp8Track)
	feedOpus(t, a, 3*time.Second, nil, 0)
	feedVP8(t, v, 90, nil)
	a.Close()
	v.Close()
	m := ss.Stop(StateFinished, "test")
	dir := filepath.Join(s.cfg.Dir, "chan1", m.ID)
	for _, f := range m.Files {
		got := ffprobeDuration(t, filepath.Join(dir, f.Name))
		if got < 2900*time.Millisecond || got > 3100*time.Millisecond {
			t.Errorf("%s lasts %v, want 3s", f.Name, got)
		}
		if f.DurationMS < 2900 || f.DurationMS > 3100 || f.Dropped != 0 {
			t.Errorf("manifest: %+v", f)
		}
	}
}

// TestRecoverInterrupted: a recording left "recording" by a crash, its
// files cut mid-write, is repaired at the next start: the files play
// (the WebM rewritten with its duration, the Ogg cut at its last whole
// page), the durations are what survived, the state is interrupted.
func TestRecoverInterrupted(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, Config{Dir: dir, QueuePackets: 1 << 16})
	ss, _ := s.Start("chan1", Person{UserID: "u1"}, nil)
	a := ss.Track(opusTrack)
	v := ss.Track(vp8Track)
	feedOpus(t, a, 4*time.Second, nil, 0)
	feedVP8(t, v, 120, nil)
	a.Close()
	v.Close()
	m := ss.Stop(StateFinished, "test")
	rdir := filepath.Join(dir, "chan1", m.ID)
	// The crash: files cut at 60% of their media (the WebM's header and
	// reserved cues come first), the manifest as it was while recording.
	for _, f := range m.Files {
		p := filepath.Join(rdir, f.Name)
		fi, _ := os.Stat(p)
		head := int64(0)
		if f.Kind == "video" {
			head = cuesSpace + 200
		}
		os.Truncate(p, head+(fi.Size()-head)*6/10)
	}
	m.State, m.EndedAt = StateRecording, nil
	b, _ := json.Marshal(m)
	os.WriteFile(filepath.Join(rdir, "manifest.json"), b, 0o640)

	s2 := newService(t, Config{Dir: dir})
	ids, err := s2.Recover()
	if err != nil || len(ids) != 1 || ids[0] != m.ID {
		t.Fatalf("Recover: %v, %v", ids, err)
	}
	got, err := s2.Get("chan1", m.ID)
	if err != nil || got.State != StateInterrupted || len(got.Files) != 2 {
		t.Fatalf("after recovery: %+v, %v", got, err)
	}
	for _, f := range got.Files {
		d := ffprobeDuration(t, filepath.Join(rdir, f.Name))
		if !f.Repaired || d < 1500*time.Millisecond || d > 3500*time.Millisecond {
			t.Errorf("%s: repaired %v, plays %v; want about 2.4s", f.Name, f.Repaired, d)
		}
		if diff := d - time.Duration(f.DurationMS)*time.Millisecond; diff < -100*time.Millisecond || diff > 100*time.Millisecond {
			t.Errorf("%s: manifest says %d ms, file plays %v", f.Name, f.DurationMS, d)
		}
	}
	if got.DurationMS < 1500 {
		t.Errorf("recording duration %d ms", got.DurationMS)
	}
	// A second start finds nothing more to do.
	if ids, _ := s2.Recover(); len(ids) != 0 {
		t.Errorf("second Recover repaired %v again", ids)
	}
}

// TestQuotaStopsRecording: reaching the quota stops the recording by
// itself (OnFail with ErrQuota) and a new one cannot start.
func TestQuotaStopsRecording(t *testing.T) {
	s := newService(t, Config{Quota: 20 << 10, QueuePackets: 1 << 16})
	failed := make(chan error, 1)
	ss, err := s.Start("chan1", Person{UserID: "u1"}, func(err error) { failed <- err })
	if err != nil {
		t.Fatal(err)
	}
	a := ss.Track(opusTrack)
	feedOpus(t, a, 10*time.Second, nil, 0)
	select {
	case err := <-failed:
		if !errors.Is(err, ErrQuota) {
			t.Errorf("failed with %v, want ErrQuota", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the quota did not stop the recording")
	}
	a.Close()
	m := ss.Stop(StateStopped, ErrQuota.Error())
	if m.Files[0].DurationMS <= 0 {
		t.Errorf("what fit was lost: %+v", m.Files[0])
	}
	if _, err := s.Start("chan1", Person{UserID: "u1"}, nil); !errors.Is(err, ErrQuota) {
		t.Errorf("start over the quota: %v, want ErrQuota", err)
	}
}

// TestBadNames: ids from URLs cannot reach outside the directory.
func TestBadNames(t *testing.T) {
	s := newService(t, Config{})
	for _, tc := range [][3]string{{"..", "x", "y"}, {"c", "..", "manifest.json"}, {"c", "x", "../../etc/passwd"}} {
		if f, err := s.Open(tc[0], tc[1], tc[2]); err == nil {
			f.Close()
			t.Errorf("Open%q succeeded", tc)
		}
	}
}

// TestComposite: ffmpeg turns a recording of two participants (one who
// joined a second late) into one MP4 with one video and one audio stream,
// as long as the recording; progress reaches the end.
func TestComposite(t *testing.T) {
	ffmpeg := testtool.Find(t, "ffmpeg", "ffmpeg")
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s := newService(t, Config{Now: c.now, QueuePackets: 1 << 16})
	ss, _ := s.Start("chan1", Person{UserID: "u1"}, nil)
	a, v := ss.Track(opusTrack), ss.Track(vp8Track)
	feedOpus(t, a, 3*time.Second, nil, 0)
	feedVP8(t, v, 90, nil)
	c.add(time.Second)
	late := func(ti media.TrackInfo) media.TrackInfo {
		ti.Participant, ti.TrackID = "p_bbbbbbbbbb", "p_bbbbbbbbbb:"+ti.Source
		return ti
	}
	a2, v2 := ss.Track(late(opusTrack)), ss.Track(late(vp8Track))
	feedOpus(t, a2, 2*time.Second, nil, 0)
	feedVP8(t, v2, 60, nil)
	for _, w := range []media.TrackSink{a, v, a2, v2} {
		w.Close()
	}
	c.add(2 * time.Second)
	m := ss.Stop(StateFinished, "test")
	if m.DurationMS != 3000 || m.Files[2].StartMS != 1000 {
		t.Fatalf("recording %d ms, late start %d ms; want 3000, 1000", m.DurationMS, m.Files[2].StartMS)
	}
	comp := NewCompositor(s, ffmpeg)
	defer comp.Close()
	if _, err := comp.Request("chan1", m.ID); err != nil {
		t.Fatal(err)
	}
	var st *Composite
	testtool.Eventually(t, 60*time.Second, func() bool {
		got, _ := s.Get("chan1", m.ID)
		st = comp.Status("chan1", m.ID, got)
		return st != nil && (st.State == CompositeDone || st.State == CompositeFailed)
	}, "the composite")
	if st.State != CompositeDone || st.Progress != 1 {
		t.Fatalf("composite %+v", st)
	}
	path := filepath.Join(s.cfg.Dir, "chan1", m.ID, CompositeName)
	out, err := exec.Command(filepath.Join(filepath.Dir(ffmpeg), "ffprobe"), "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(out)); len(got) != 2 || !strings.Contains(string(out), "video") || !strings.Contains(string(out), "audio") {
		t.Errorf("streams %q, want one video and one audio", got)
	}
	if d := ffprobeDuration(t, path); d < 2800*time.Millisecond || d > 3200*time.Millisecond {
		t.Errorf("composite lasts %v, want 3s", d)
	}
	if f, err := s.Open("chan1", m.ID, CompositeName); err != nil {
		t.Errorf("the composite cannot be downloaded: %v", err)
	} else {
		f.Close()
	}
}

// TestLayerSwitch: when the recorded simulcast layer changes, the file
// skips the new layer's frames until its keyframe, then goes on with
// time running forward (the new layer has its own RTP clock base).
func TestLayerSwitch(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s := newService(t, Config{Now: c.now, QueuePackets: 1 << 16})
	ss, _ := s.Start("chan1", Person{UserID: "u1"}, nil)
	v := ss.Track(vp8Track)
	feedVP8Layer(t, v, 2, 0, 30, 1000, 0, nil) // a second of f
	ss.Track(opusTrack).Close()
	w := v.(*trackWriter)
	for len(w.free) < cap(w.free) { // written
		time.Sleep(time.Millisecond)
	}
	c.add(time.Second)
	seq, ts := feedVP8Layer(t, v, 1, 1, 5, 777000, 5000, nil) // h from a delta frame: skipped
	feedVP8Layer(t, v, 1, 0, 30, ts, seq, nil)                // h from its keyframe
	v.Close()
	m := ss.Stop(StateFinished, "test")
	f := m.Files[0]
	if f.LayerSwitches != 1 {
		t.Errorf("%d layer switches, want 1", f.LayerSwitches)
	}
	// One second of f, then (after a second's gap and the 5 skipped
	// frames, 167 ms) a second of h, its last frame flushed at the end.
	if f.DurationMS < 2050 || f.DurationMS > 2200 {
		t.Errorf("the file lasts %d ms, want about 2133", f.DurationMS)
	}
	if d := ffprobeDuration(t, filepath.Join(s.cfg.Dir, "chan1", m.ID, f.Name)); d < 2050*time.Millisecond || d > 2200*time.Millisecond {
		t.Errorf("plays %v, want about 2.133s", d)
	}
}

// TestDiskFullStopsRecording: a write that fails with "no space left"
// (here: /dev/full) stops the recording by itself with ErrDiskFull.
func TestDiskFullStopsRecording(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full on this system")
	}
	s := newService(t, Config{})
	failed := make(chan error, 1)
	ss, _ := s.Start("chan1", Person{UserID: "u1"}, func(err error) { failed <- err })
	w := ss.Track(opusTrack).(*trackWriter)
	w.f.f.Close()
	w.f.f = full // before the first packet: the writer has not touched it yet
	feedOpus(t, w, time.Second, nil, 0)
	select {
	case err := <-failed:
		if !errors.Is(err, ErrDiskFull) {
			t.Errorf("failed with %v, want ErrDiskFull", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a full disk did not stop the recording")
	}
	w.Close()
	ss.Stop(StateStopped, ErrDiskFull.Error())
}

// TestStopAll: a server stopping finishes its running recordings (files
// final, state stopped) instead of leaving them to be repaired.
func TestStopAll(t *testing.T) {
	s := newService(t, Config{QueuePackets: 1 << 12})
	ss, _ := s.Start("chan1", Person{UserID: "u1"}, nil)
	w := ss.Track(opusTrack)
	feedOpus(t, w, time.Second, nil, 0)
	s.StopAll("the server was stopped")
	m, err := s.Get("chan1", ss.ID())
	if err != nil || m.State != StateStopped || len(m.Files) != 1 || m.Files[0].DurationMS < 900 {
		t.Fatalf("after StopAll: %+v, %v", m, err)
	}
}

// TestConcurrentWebMFiles: several WebM files written at once (one per
// participant's camera) share no state (run with -race).
func TestConcurrentWebMFiles(t *testing.T) {
	s := newService(t, Config{QueuePackets: 1 << 14})
	ss, _ := s.Start("chan1", Person{UserID: "u1"}, nil)
	var wg sync.WaitGroup
	for i := range 4 {
		ti := vp8Track
		ti.Participant = "p_" + strings.Repeat(string(rune('a'+i)), 10)
		v := ss.Track(ti)
		wg.Add(1)
		go func() {
			defer wg.Done()
			feedVP8(t, v, 30, nil)
			v.Close()
		}()
	}
	wg.Wait()
	m := ss.Stop(StateFinished, "test")
	for _, f := range m.Files {
		if d := ffprobeDuration(t, filepath.Join(s.cfg.Dir, "chan1", m.ID, f.Name)); d < 900*time.Millisecond || d > 1100*time.Millisecond {
			t.Errorf("%s plays %v, want 1s", f.Name, d)
		}
	}
}
