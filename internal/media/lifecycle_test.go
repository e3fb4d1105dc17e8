package media

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley/parley/internal/testtool"
)

// TestPeerVanishes: a client whose network disappears (no DTLS close) is
// cleaned up by the SFU itself once ICE fails, and its tracks leave the
// other subscribers.
func TestPeerVanishes(t *testing.T) {
	s := newTestSFU(t, func(c *Config) {
		c.ICEDisconnectedTimeout = 500 * time.Millisecond
		c.ICEFailedTimeout = 1500 * time.Millisecond
	})
	sub := newTestClient(t, s, "room", "S", RoomEvents{})
	var mu sync.Mutex
	states := map[string]webrtc.PeerConnectionState{}
	pub := newTestClientOpts(t, s, "room", "PUB", clientOpts{state: func(pc string, st webrtc.PeerConnectionState) {
		mu.Lock()
		states[pc] = st
		mu.Unlock()
	}})
	v := pub.addVideo("cam", "x")
	pub.publish(map[string]string{"cam": "camera"})
	v.negotiated()
	warmUp(t, "S receiving", v, nil, func() bool { return sub.track("PUB:camera") != nil })

	// The network goes: sockets closed under the client's connections.
	_ = pub.pubConn.Close()
	_ = pub.conn.Close()
	testtool.Eventually(t, 10*time.Second, func() bool {
		st := s.Stats()
		return st.Peers == 1 && st.PublishedTracks == 0 && st.ForwardedTracks == 0
	}, "the vanished peer cleaned up")
	mu.Lock()
	if states["pub"] != webrtc.PeerConnectionStateFailed {
		t.Errorf("publish connection state reported %v, want failed", states["pub"])
	}
	mu.Unlock()
	testtool.Eventually(t, 10*time.Second, func() bool {
		return !strings.Contains(sub.lastOffer(), "PUB:camera") && s.Stats().SubscriberOffersOutstanding == 0
	}, "S renegotiated without PUB")
}

// TestScreenShare: a publisher renegotiates to add a screen share (its own
// stream, PUB:screen) and again to remove it.
func TestScreenShare(t *testing.T) {
	s := newTestSFU(t, nil)
	sub := newTestClient(t, s, "room", "S", RoomEvents{})
	pub := newTestClient(t, s, "room", "PUB", RoomEvents{})
	cam := pub.addVideo("cam", "cams")
	pub.publish(map[string]string{"cam": "camera"})
	cam.negotiated()
	warmUp(t, "camera", cam, nil, func() bool { return sub.track("PUB:camera") != nil })

	scr := pub.addVideo("scr", "screens")
	pub.publish(map[string]string{"scr": "screen"})
	scr.negotiated()
	warmUp(t, "screen", scr, nil, func() bool { return sub.track("PUB:screen") != nil })
	if rt := sub.track("PUB:screen"); rt.streamID != "PUB:screen" || rt.kind != webrtc.RTPCodecTypeVideo {
		t.Fatalf("screen arrived as stream %q kind %v", rt.streamID, rt.kind)
	}
	if n := s.Stats().PublishedTracks; n != 2 {
		t.Fatalf("%d tracks published, want 2", n)
	}

	if err := pub.pub.RemoveTrack(scr.tr.Sender()); err != nil {
		t.Fatal(err)
	}
	pub.publish(nil)
	testtool.Eventually(t, 10*time.Second, func() bool {
		return s.Stats().PublishedTracks == 1 && !strings.Contains(sub.lastOffer(), "PUB:screen") &&
			s.Stats().SubscriberOffersOutstanding == 0
	}, "screen unpublished")
	// The camera still flows.
	n := len(sub.track("PUB:camera").pkts)
	warmUp(t, "camera after the screen left", cam, nil, func() bool { return len(sub.track("PUB:camera").pkts) > n+5 })
	sub.checkErrs()
}

// TestMute: a muted source is not forwarded; unmuted, video resumes at a
// keyframe and sequence numbers continue without a gap.
func TestMute(t *testing.T) {
	c := newCall(t, callOpts{mic: true})
	c.receiving(t)
	s, sub, pub, v, a := c.s, c.sub, c.pub, c.cam, c.mic
	count := func(id string) int { return len(sub.track(id).pkts) }
	// sendMuted sends 10 frames of two video packets and 10 audio
	// packets, paced like media, and waits until the SFU has dropped
	// them all as muted: then both tracks' readers are past the mute.
	sendMuted := func() {
		from := s.Stats().Dropped["muted"]
		for range 10 {
			_ = v.sendFrame(v.layers[0], false, 2, nil)
			_ = a.send(0)
			time.Sleep(10 * time.Millisecond) // pacing media
		}
		testtool.Eventually(t, 10*time.Second, func() bool { return s.Stats().Dropped["muted"] >= from+30 },
			"the SFU dropping 30 muted packets")
	}

	pub.peer.SetSending(false, false, false)
	sendMuted()
	sub.silence(t, sendMuted, "PUB:camera", "PUB:microphone")
	nv, na := count("PUB:camera"), count("PUB:microphone")

	pub.peer.SetSending(true, true, false)
	warmUp(t, "media after unmute", v, a, func() bool {
		return count("PUB:camera") > nv+3 && count("PUB:microphone") > na+3
	})
	video, audio := sub.track("PUB:camera"), sub.track("PUB:microphone")
	if p, prev := video.pkts[nv], video.pkts[nv-1]; p.seq != prev.seq+1 || !p.kf || int32(p.ts-prev.ts) <= 0 {
		t.Errorf("video resumed with seq %d after %d, keyframe %v, ts %d after %d", p.seq, prev.seq, p.kf, p.ts, prev.ts)
	}
	if p, prev := audio.pkts[na], audio.pkts[na-1]; p.seq != prev.seq+1 || int32(p.ts-prev.ts) <= 0 {
		t.Errorf("audio resumed with seq %d after %d, ts %d after %d", p.seq, prev.seq, p.ts, prev.ts)
	}
}

// TestMetrics: the SFU's metrics are registered under parley_sfu_ names.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(Config{LoopbackOnly: true, TCPPort: -1}, testLog(), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.TCPAddr() != nil {
		t.Errorf("TCPAddr = %v with TCP disabled", s.TCPAddr())
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, name := range []string{"parley_sfu_published_tracks", "parley_sfu_forwarded_tracks",
		"parley_sfu_packets_in_total", "parley_sfu_bytes_in_total", "parley_sfu_packets_out_total",
		"parley_sfu_bytes_out_total", "parley_sfu_nacks_total", "parley_sfu_plis_total",
		"parley_sfu_layer_switches_total", "parley_sfu_dropped_packets_total", "parley_sfu_receiver_loss_ratio",
		"parley_sfu_remb_total", "parley_sfu_bandwidth_limits_total", "parley_sfu_join_to_first_media_seconds"} {
		if !have[name] {
			t.Errorf("metric %s missing", name)
		}
	}
	// A second SFU on the same registry is refused, not a panic.
	if _, err := New(Config{LoopbackOnly: true}, testLog(), reg); err == nil {
		t.Error("second registration accepted")
	}
}

// TestICETCP: a client that cannot use UDP reaches the SFU over its ICE-TCP
// port, publishing and subscribing.
func TestICETCP(t *testing.T) {
	s := newTestSFU(t, nil)
	sub := newTestClientOpts(t, s, "room", "S", clientOpts{tcpOnly: true})
	pub := newTestClientOpts(t, s, "room", "PUB", clientOpts{tcpOnly: true})
	v := pub.addVideo("cam", "x")
	pub.publish(map[string]string{"cam": "camera"})
	v.negotiated()
	warmUp(t, "video over TCP", v, nil, func() bool {
		rt := sub.track("PUB:camera")
		return rt != nil && len(rt.pkts) >= 10
	})
	pair, err := pub.pub.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local.Protocol != webrtc.ICEProtocolTCP {
		t.Fatalf("selected pair %v (%v), want TCP", pair, err)
	}
}

// TestPublicIPs: with PublicIPs set, the SFU's candidates carry them.
func TestPublicIPs(t *testing.T) {
	s := newTestSFU(t, func(c *Config) { c.PublicIPs = []string{"127.0.0.2"} })
	c := newTestClient(t, s, "room", "PUB", RoomEvents{})
	c.addAudio("mic", "x")
	offer, err := c.pub.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := c.peer.Publish(offer.SDP, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer, " 127.0.0.2 ") || strings.Contains(answer, " 127.0.0.1 ") {
		t.Fatalf("answer's candidates do not advertise the public IP:\n%s", answer)
	}
}

// TestBadAnswer: a subscriber answer that does not apply is refused and
// the SFU offers again.
func TestBadAnswer(t *testing.T) {
	s := newTestSFU(t, nil)
	sub := newTestClient(t, s, "room", "S", RoomEvents{})
	sub.badAnswers.Store(1)
	if err := sub.peer.AnswerSubscriber("v=0"); !errors.Is(err, ErrNoOffer) {
		t.Errorf("answer without an offer: %v, want ErrNoOffer", err)
	}
	pub := newTestClient(t, s, "room", "PUB", RoomEvents{})
	v := pub.addVideo("cam", "x")
	pub.publish(map[string]string{"cam": "camera"})
	v.negotiated()
	warmUp(t, "S receiving after a bad answer", v, nil, func() bool { return sub.track("PUB:camera") != nil })
	sub.mu.Lock()
	n := len(sub.offers)
	sub.mu.Unlock()
	if n < 2 {
		t.Errorf("%d offers, want a second one after the bad answer", n)
	}
	sub.checkErrs()
}

// TestQueuedConnNeverBlocks: writes to an ICE-TCP connection whose peer
// does not read return at once; what does not fit the queue is dropped
// and counted.
func TestQueuedConnNeverBlocks(t *testing.T) {
	// In a bubble, "at once" is exact: the fake clock cannot reach the
	// 5 s timeout unless every goroutine is blocked, which a blocking
	// write would be.
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe() // synchronous: a write blocks until read
		defer b.Close()
		m := newMetrics()
		l := &fakeListener{conns: make(chan net.Conn, 1)}
		l.conns <- a
		c, err := tcpListener{Listener: l, m: m}.Accept()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range tcpQueueLen + 100 {
				if _, err := c.Write(make([]byte, 1000)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("writes blocked")
		}
		if m.dropped[dropTCPQueueFull].Load() == 0 {
			t.Error("no drops counted")
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte{1}); err == nil {
			t.Error("write after close succeeded")
		}
	})
}

type fakeListener struct {
	net.Listener
	conns chan net.Conn
}

func (l *fakeListener) Accept() (net.Conn, error) { return <-l.conns, nil }

// TestClientCloses: a client that closes its connections (DTLS
// close_notify) is cleaned up without the room calling Close.
func TestClientCloses(t *testing.T) {
	c := newCall(t, callOpts{})
	c.receiving(t)
	s, pub := c.s, c.pub
	_ = pub.pub.GracefulClose()
	_ = pub.sub.GracefulClose()
	testtool.Eventually(t, 5*time.Second, func() bool {
		st := s.Stats()
		return st.Peers == 1 && st.PublishedTracks == 0
	}, "the departed peer cleaned up")
}

// TestRejoinReplaces: joining again with a participant id in use replaces
// the old peer; subscribers move to the new one's tracks.
func TestRejoinReplaces(t *testing.T) {
	s := newTestSFU(t, nil)
	sub := newTestClient(t, s, "room", "S", RoomEvents{})
	old := newTestClient(t, s, "room", "PUB", RoomEvents{})
	v := old.addVideo("cam", "x")
	old.publish(map[string]string{"cam": "camera"})
	v.negotiated()
	warmUp(t, "S receiving the first PUB", v, nil, func() bool { return sub.track("PUB:camera") != nil })

	sub.mu.Lock()
	delete(sub.tracks, "PUB:camera")
	sub.mu.Unlock()
	again := newTestClient(t, s, "room", "PUB", RoomEvents{})
	v2 := again.addVideo("cam2", "y")
	again.publish(map[string]string{"cam2": "camera"})
	v2.negotiated()
	testtool.Eventually(t, 5*time.Second, func() bool { return old.peer.isClosed() }, "the old peer closed")
	warmUp(t, "S receiving the new PUB", v2, nil, func() bool {
		rt := sub.track("PUB:camera")
		return rt != nil && len(rt.pkts) >= 5
	})
	if st := s.Stats(); st.Peers != 2 || st.PublishedTracks != 1 || st.ForwardedTracks != 1 {
		t.Fatalf("stats after the rejoin: %+v", st)
	}
}
