package client_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/parley/parley/internal/client"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/testtool"
)

// fakeSource sends 20 ms "Opus" samples (the SFU forwards without
// decoding) or 33 ms "VP8" frames whose first byte marks a keyframe every
// 30 frames.
type fakeSource struct {
	codec webrtc.RTPCodecCapability
	every time.Duration
}

func (f fakeSource) Codec() webrtc.RTPCodecCapability { return f.codec }

func (f fakeSource) Run(ctx context.Context, track *webrtc.TrackLocalStaticSample) error {
	t := time.NewTicker(f.every)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		data := make([]byte, 200)
		if f.codec.MimeType == webrtc.MimeTypeVP8 {
			data = make([]byte, 1000)
			data[0] = 0x01 // P=1: interframe
			if i%30 == 0 {
				data[0] = 0x00
				copy(data[3:], []byte{0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00})
			}
		}
		if err := track.WriteSample(media.Sample{Data: data, Duration: f.every}); err != nil {
			return err
		}
	}
}

var (
	opus = fakeSource{webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, 20 * time.Millisecond}
	vp8  = fakeSource{webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, 33 * time.Millisecond}
)

// received counts packets per (participant, source) a client gets.
type received struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *received) onTrack(rt client.Remote) {
	key := rt.Participant + "/" + rt.Source
	buf := make([]byte, 1500)
	for {
		if _, _, err := rt.Track.Read(buf); err != nil {
			return
		}
		r.mu.Lock()
		r.n[key]++
		r.mu.Unlock()
	}
}

// kinds counts the tracks that brought at least 20 packets more than in
// base (nil: since the start).
func (r *received) kinds(base map[string]int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := 0
	for key, n := range r.n {
		if n >= base[key]+20 {
			k++
		}
	}
	return k
}

func (r *received) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int, len(r.n))
	for k, v := range r.n {
		m[k] = v
	}
	return m
}

type running struct {
	c    *client.Client
	got  *received
	stop context.CancelFunc
	err  chan error
}

func start(t *testing.T, s *servertest.Server, channel, username string, cfg client.Config) *running {
	t.Helper()
	cfg.URL = s.URL + "/c/" + channel
	cfg.Token = s.Token(username)
	cfg.LoopbackOnly = true
	got := &received{n: map[string]int{}}
	cfg.OnTrack = got.onTrack
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	r := &running{c: c, got: got, stop: stop, err: make(chan error, 1)}
	go func() { r.err <- c.Run(runCtx) }()
	t.Cleanup(func() { r.leave(t) })
	return r
}

var left sync.Map

func (r *running) leave(t *testing.T) {
	if _, done := left.LoadOrStore(r, true); done {
		return
	}
	r.stop()
	select {
	case err := <-r.err:
		if err != nil {
			t.Errorf("Run after leaving: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("Run did not return after leaving")
	}
}

// TestMeshAndSFU: two native clients talk peer to peer, each receiving the
// other's audio and video; a third joins, the call moves to the SFU, and
// all three receive both tracks of both others.
func TestMeshAndSFU(t *testing.T) {
	s := servertest.Start(t)
	names := []string{"ada", "bob", "cyd"}
	owner := s.SignUp("ada", "Ada")
	for _, n := range names[1:] {
		s.SignUp(n, n)
	}
	ch := s.CreateChannel(owner, "Bots")
	for _, n := range names[1:] {
		s.AddMember(owner, ch, n)
	}
	var events atomic.Int32
	cfg := client.Config{Audio: opus, Video: vp8, OnEvent: func(e string) { events.Add(1); t.Log(e) }}
	a := start(t, s, ch, "ada", cfg)
	b := start(t, s, ch, "bob", cfg)
	testtool.Eventually(t, 20*time.Second, func() bool {
		return a.got.kinds(nil) == 2 && b.got.kinds(nil) == 2
	}, "ada and bob receiving each other's audio and video (mesh)")
	if st := a.c.Stats(); st.Connections != 1 || st.PacketsSent == 0 || st.PacketsRecv == 0 {
		t.Errorf("ada's mesh stats: %+v, want one connection sending and receiving", st)
	}

	c := start(t, s, ch, "cyd", cfg)
	for _, r := range []*running{a, b} {
		testtool.Eventually(t, 10*time.Second, func() bool { return r.c.Stats().Connections == 2 }, "the switch to the SFU")
	}
	base := []map[string]int{a.got.snapshot(), b.got.snapshot(), nil}
	for i, r := range []*running{a, b, c} {
		testtool.Eventually(t, 30*time.Second, func() bool {
			return r.got.kinds(base[i]) == 4
		}, "everyone receiving both others' audio and video through the SFU")
	}
	if st := c.c.Stats(); st.Connections != 2 || st.FirstMedia <= 0 {
		t.Errorf("cyd's SFU stats: %+v, want two connections and a first-media time", st)
	}
	if events.Load() == 0 {
		t.Error("no events reported")
	}
	c.leave(t)
	b.leave(t)
	a.leave(t)
	// After leaving (parley join's summary), nothing received is forgotten.
	if st := a.c.Stats(); st.Connections != 0 || st.PacketsRecv == 0 {
		t.Errorf("ada's stats after leaving: %+v, want what she received still counted", st)
	}
}

// TestDialRefusals: bad URLs and credentials get errors that say what to do.
func TestDialRefusals(t *testing.T) {
	s := servertest.Start(t)
	owner := s.SignUp("ann", "Ann")
	s.SignUp("eve", "Eve")
	ch := s.CreateChannel(owner, "Private")
	ctx := context.Background()
	for name, tc := range map[string]struct {
		cfg  client.Config
		want string
	}{
		"not a URL":      {client.Config{URL: "ftp://x/c/y", Token: "parley_x"}, "not a channel URL"},
		"not a channel":  {client.Config{URL: s.URL + "/channels", Token: "parley_x"}, "path must be /c/CHANNEL"},
		"no credentials": {client.Config{URL: s.URL + "/c/" + ch}, "no credentials"},
		"bad token":      {client.Config{URL: s.URL + "/c/" + ch, Token: "parley_nope"}, "refused the credentials"},
		"bad password":   {client.Config{URL: s.URL + "/c/" + ch, Username: "ann", Password: "wrong"}, "check the username and password"},
		"not a member":   {client.Config{URL: s.URL + "/c/" + ch, Token: s.Token("eve")}, "not a member"},
		"no channel":     {client.Config{URL: s.URL + "/c/nosuch", Token: s.Token("eve")}, "no such channel"},
	} {
		_, err := client.Dial(ctx, tc.cfg, nil)
		if err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, tc.want)
		}
	}
	// Username and password work too.
	c, err := client.Dial(ctx, client.Config{URL: s.URL + "/c/" + ch, Username: "ann", Password: servertest.Password}, nil)
	if err != nil {
		t.Fatalf("password login: %v", err)
	}
	if c.User().Name != "Ann" {
		t.Errorf("logged in as %+v", c.User())
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestSignalingReconnects: the server goes away mid-call; two clients in
// a peer-to-peer call keep receiving each other's media, say signaling is
// reconnecting, and rejoin by themselves (same participant ids) when the
// server is back on the same address.
func TestSignalingReconnects(t *testing.T) {
	s := servertest.Start(t)
	owner := s.SignUp("ada", "Ada")
	s.SignUp("bob", "Bob")
	ch := s.CreateChannel(owner, "Resilient")
	s.AddMember(owner, ch, "bob")
	var lost, back atomic.Int32
	cfg := client.Config{Audio: opus, Video: vp8, OnEvent: func(e string) {
		switch {
		case strings.HasPrefix(e, "signaling lost"):
			lost.Add(1)
		case e == "signaling reconnected":
			back.Add(1)
		}
	}}
	a := start(t, s, ch, "ada", cfg)
	b := start(t, s, ch, "bob", cfg)
	testtool.Eventually(t, 20*time.Second, func() bool { return a.got.kinds(nil) == 2 && b.got.kinds(nil) == 2 }, "a peer-to-peer call")

	s.Stop()
	testtool.Eventually(t, 20*time.Second, func() bool { return lost.Load() == 2 }, "both clients noticing")
	base := []map[string]int{a.got.snapshot(), b.got.snapshot()}
	testtool.Eventually(t, 10*time.Second, func() bool {
		return a.got.kinds(base[0]) == 2 && b.got.kinds(base[1]) == 2
	}, "media still flowing peer to peer with the server down")
	s.Restart()
	testtool.Eventually(t, 30*time.Second, func() bool { return back.Load() == 2 }, "both clients back")
	base = []map[string]int{a.got.snapshot(), b.got.snapshot()}
	testtool.Eventually(t, 10*time.Second, func() bool {
		return a.got.kinds(base[0]) == 2 && b.got.kinds(base[1]) == 2
	}, "media still flowing after the rejoin")
	if st := a.c.Stats(); st.Connections != 1 {
		t.Errorf("ada has %d connections after the rejoin, want the one she kept", st.Connections)
	}
	b.leave(t)
	a.leave(t)
}
