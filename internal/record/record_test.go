package record

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/source"
	"github.com/parley/parley/internal/testtool"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                  "alice",
		"Bob Smith":              "Bob_Smith",
		"../../etc/passwd":       "etc_passwd",
		"..":                     "participant",
		"":                       "participant",
		".hidden":                "hidden",
		"-rf":                    "rf",
		"a/b\\c:d":               "a_b_c_d",
		"zoë 🎉 x":                "zo_x",
		"ok.name_1-2":            "ok.name_1-2",
		strings.Repeat("x", 300): strings.Repeat("x", maxName),
	} {
		if got := safeName(in); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCreateNeverOverwrites: two recordings of the same participant and
// kind in the same second get different files.
func TestCreateNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	a, err := create(dir, "x-audio", ".ogg", now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := create(dir, "x-audio", ".ogg", now)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	if a.Name() == b.Name() || !strings.HasSuffix(b.Name(), "-2.ogg") {
		t.Errorf("names %s and %s", a.Name(), b.Name())
	}
}

// TestRecordVP8AndOpus sends testdata's VP8 pattern and Opus tone from one
// pion peer to another over loopback, records both tracks, and checks with
// ffprobe that the files decode as VP8 and Opus and last as long as media
// flowed.
func TestRecordVP8AndOpus(t *testing.T) {
	ffprobe := requireTool(t, "ffprobe")
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	video, err := source.OpenIVF("../../testdata/pattern.ivf", false)
	if err != nil {
		t.Fatal(err)
	}
	audio, err := source.OpenOgg("../../testdata/tone.ogg", false)
	if err != nil {
		t.Fatal(err)
	}
	api := loopbackAPI(t)
	send, recv := newPC(t, api), newPC(t, api)
	var tracks []*webrtc.TrackLocalStaticSample
	for _, s := range []source.Source{video, audio} {
		tr, err := webrtc.NewTrackLocalStaticSample(s.Codec(), strings.Split(s.Codec().MimeType, "/")[0], "test")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := send.AddTrack(tr); err != nil {
			t.Fatal(err)
		}
		tracks = append(tracks, tr)
	}
	recs := make(chan *Recorder, 2)
	recv.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		r, err := Start(Config{Dir: dir, Participant: "../../evil name"}, tr, log)
		if err != nil {
			t.Error(err)
			return
		}
		recs <- r
	})
	connected := make(chan struct{})
	send.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			close(connected)
		}
	})
	negotiate(t, send, recv)
	select {
	case <-connected:
	case <-time.After(20 * time.Second):
		t.Fatal("peers did not connect")
	}

	sent := make(chan error, 2)
	for i, s := range []source.Source{video, audio} {
		go func() { sent <- s.Run(context.Background(), tracks[i]) }()
	}
	var got []*Recorder
	for len(got) < 2 {
		select {
		case r := <-recs:
			got = append(got, r)
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of 2 tracks arrived", len(got))
		}
	}
	for range 2 {
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	}
	// The sources are done; wait (bounded) for the last packets to land.
	testtool.Eventually(t, 5*time.Second, func() bool {
		for _, r := range got {
			if time.Since(r.Stats().Last) < 300*time.Millisecond {
				return false
			}
		}
		return true
	}, "the last packets")
	for _, r := range got {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}

	for _, r := range got {
		st := r.Stats()
		codec, frames, dur := probe(t, ffprobe, r.Path())
		t.Logf("%s: %s, %d frames, %.3f s; received %d packets, %d bytes over %v",
			filepath.Base(r.Path()), codec, frames, dur, st.Packets, st.Bytes, st.Duration())
		if filepath.Dir(r.Path()) != dir || !strings.HasPrefix(filepath.Base(r.Path()), "evil_name-") {
			t.Errorf("recorded to %s, want a sanitized name in %s", r.Path(), dir)
		}
		want := map[string]string{".ivf": "vp8", ".ogg": "opus"}[filepath.Ext(r.Path())]
		if codec != want {
			t.Errorf("%s: codec %q, want %q", r.Path(), codec, want)
		}
		minFrames := map[string]int{"vp8": 40, "opus": 140}[want]
		if frames < minFrames {
			t.Errorf("%s: %d frames decoded, want at least %d", r.Path(), frames, minFrames)
		}
		flowed := st.Duration().Seconds()
		if flowed < 2.5 || dur < flowed*0.9 || dur > flowed*1.1 {
			t.Errorf("%s: ffprobe says %.3f s, media flowed for %.3f s", r.Path(), dur, flowed)
		}
	}
}

// probe returns the codec, decoded frame count and duration ffprobe reads.
func probe(t *testing.T, ffprobe, path string) (codec string, frames int, dur float64) {
	t.Helper()
	out, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-select_streams", "0",
		"-show_entries", "stream=codec_name,nb_read_frames:format=duration", "-of", "default=nw=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "codec_name":
			codec = v
		case "nb_read_frames":
			frames, _ = strconv.Atoi(v)
		case "duration":
			dur, _ = strconv.ParseFloat(v, 64)
		}
	}
	return codec, frames, dur
}

// requireTool finds a command the test needs (see testtool.Find).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	return testtool.Find(t, "ffmpeg", name)
}

// loopbackAPI is pion with default codecs and interceptors, restricted to
// loopback as every test peer is.
func loopbackAPI(t *testing.T) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

func newPC(t *testing.T, api *webrtc.API) *webrtc.PeerConnection {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// negotiate runs offer/answer with all candidates in the SDP (loopback
// gathering is immediate).
func negotiate(t *testing.T, offerer, answerer *webrtc.PeerConnection) {
	t.Helper()
	exchange := func(from, to *webrtc.PeerConnection, sdp webrtc.SessionDescription) {
		done := webrtc.GatheringCompletePromise(from)
		if err := from.SetLocalDescription(sdp); err != nil {
			t.Fatal(err)
		}
		<-done
		if err := to.SetRemoteDescription(*from.LocalDescription()); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	exchange(offerer, answerer, offer)
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	exchange(answerer, offerer, answer)
}
