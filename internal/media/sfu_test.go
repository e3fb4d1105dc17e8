package media

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/testtool"
)

const (
	videoTag = 0x80000000
	audioTag = 0x40000000
)

// warmUp sends media from pub until cond holds.
func warmUp(t *testing.T, what string, v *pubVideo, a *pubAudio, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out warming up: %s", what)
		}
		if v != nil {
			for _, l := range v.layers {
				if err := v.sendFrame(l, false, 2, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		if a != nil {
			if err := a.send(0); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(20 * time.Millisecond) // pacing media
	}
}

// TestFanOut: one publisher's VP8 and Opus reach five subscribers, every
// packet, in streams named PUB:camera.
func TestFanOut(t *testing.T) {
	s := newTestSFU(t, nil)
	const nSubs = 5
	var subs []*testClient
	for i := range nSubs {
		subs = append(subs, newTestClient(t, s, "room", fmt.Sprintf("s%d", i), RoomEvents{}))
	}
	pub := newTestClient(t, s, "room", "PUB", RoomEvents{})
	v := pub.addVideo("cam", "local-stream")
	a := pub.addAudio("mic", "local-stream")
	pub.publish(map[string]string{"cam": "camera", "mic": "microphone"})
	v.negotiated()
	a.negotiated()
	pub.waitConnected(10 * time.Second)

	warmUp(t, "subscribers bound and receiving", v, a, func() bool {
		if s.Stats().BoundTracks != 2*nSubs {
			return false
		}
		for _, c := range subs {
			if c.track("PUB:camera") == nil || c.track("PUB:microphone") == nil {
				return false
			}
		}
		return true
	})
	if st := s.Stats(); st.PublishedTracks != 2 || st.ForwardedTracks != 2*nSubs {
		t.Fatalf("stats: published %d forwarded %d", st.PublishedTracks, st.ForwardedTracks)
	}

	const frames, perFrame = 100, 3
	vt, at := uint32(0), uint32(0)
	l := v.layers[0]
	for range frames {
		if err := v.sendFrame(l, false, perFrame, func() uint32 { vt++; return videoTag | (vt - 1) }); err != nil {
			t.Fatal(err)
		}
		if err := a.send(audioTag | at); err != nil {
			t.Fatal(err)
		}
		at++
		time.Sleep(4 * time.Millisecond) // pacing media
	}

	for _, c := range subs {
		testtool.Eventually(t, 10*time.Second, func() bool {
			return countTags(c.track("PUB:camera"), videoTag) == frames*perFrame &&
				countTags(c.track("PUB:microphone"), audioTag) == frames
		}, c.id+" receiving every packet")
		video, audio := c.track("PUB:camera"), c.track("PUB:microphone")
		if video.streamID != "PUB:camera" || audio.streamID != "PUB:camera" {
			t.Errorf("%s: stream ids %q, %q; want PUB:camera", c.id, video.streamID, audio.streamID)
		}
		// Sequence-number accounting: the tagged packets occupy a
		// contiguous run of sequence numbers.
		checkContiguous(t, c.id+" video", video, videoTag)
		checkContiguous(t, c.id+" audio", audio, audioTag)
		c.checkErrs()
	}
	st := s.Stats()
	if st.PacketsOut < uint64(nSubs*(frames*perFrame+frames)) {
		t.Errorf("PacketsOut = %d", st.PacketsOut)
	}
	if st.FirstMedia != nSubs {
		t.Errorf("join-to-first-media observed for %d subscribers, want %d", st.FirstMedia, nSubs)
	}
	t.Logf("stats: %+v", st)
}

func countTags(rt *recvTrack, kind uint32) int {
	if rt == nil {
		return 0
	}
	seen := map[uint32]bool{}
	for _, p := range rt.pkts {
		if p.tag&0xC0000000 == kind {
			seen[p.tag] = true
		}
	}
	return len(seen)
}

func checkContiguous(t *testing.T, what string, rt *recvTrack, kind uint32) {
	t.Helper()
	var seqs []int
	var first uint16
	have := false
	for _, p := range rt.pkts {
		if p.tag&0xC0000000 != kind {
			continue
		}
		if !have {
			first, have = p.seq, true
		}
		seqs = append(seqs, int(p.seq-first))
	}
	sort.Ints(seqs)
	for i, s := range seqs {
		if s != i {
			t.Errorf("%s: sequence numbers not contiguous at %d: %v...", what, i, seqs[max(0, i-3):min(len(seqs), i+3)])
			return
		}
	}
}

// TestRenegotiation: a publisher joining later reaches an existing
// subscriber through a server offer; changes made while an offer is
// outstanding are coalesced, never two offers at once.
func TestRenegotiation(t *testing.T) {
	s := newTestSFU(t, nil)
	sub := newTestClient(t, s, "room", "S", RoomEvents{})
	a := newTestClient(t, s, "room", "A", RoomEvents{})
	av, aa := a.addVideo("cam", "x"), a.addAudio("mic", "x")
	a.publish(map[string]string{"cam": "camera", "mic": "microphone"})
	av.negotiated()
	aa.negotiated()
	warmUp(t, "S receives A", av, aa, func() bool { return sub.track("A:camera") != nil })

	// S answers an offer only once the SFU has queued a change behind it
	// (or the publishers are all set up): every join then lands while an
	// offer is outstanding, which is what coalescing is for.
	release := make(chan struct{})
	sub.mu.Lock()
	sub.holdAnswer = func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for s.Stats().PeersWithPendingNegotiation == 0 {
			select {
			case <-release:
				return
			case <-sub.done:
				return
			case <-tick.C:
			}
		}
	}
	sub.mu.Unlock()

	// Two more publishers join in quick succession, each with two tracks.
	var clients []*testClient
	var vids []*pubVideo
	for _, id := range []string{"B", "C"} {
		c := newTestClient(t, s, "room", id, RoomEvents{})
		v, au := c.addVideo("cam", "x"), c.addAudio("mic", "x")
		c.publish(map[string]string{"cam": "camera", "mic": "microphone"})
		v.negotiated()
		au.negotiated()
		clients = append(clients, c)
		vids = append(vids, v)
		go func() {
			for range 200 {
				if c.pub.ConnectionState() > 3 {
					return
				}
				_ = v.sendFrame(v.layers[0], false, 1, nil)
				_ = au.send(0)
				time.Sleep(20 * time.Millisecond) // pacing media
			}
		}()
	}
	close(release)
	testtool.Eventually(t, 15*time.Second, func() bool {
		return sub.track("B:camera") != nil && sub.track("C:camera") != nil &&
			sub.track("B:microphone") != nil && sub.track("C:microphone") != nil
	}, "S receiving B and C")
	offer := sub.lastOffer()
	for _, want := range []string{"a=msid:B:camera B:camera", "a=msid:B:camera B:microphone", "a=msid:C:camera C:camera"} {
		if !strings.Contains(offer, want) {
			t.Errorf("last offer lacks %q", want)
		}
	}

	// B leaves: S gets an offer without B's tracks.
	n := len(sub.offers)
	clients[0].close()
	testtool.Eventually(t, 10*time.Second, func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.offers) > n && !strings.Contains(sub.offers[len(sub.offers)-1], "B:camera")
	}, "offer without B")
	testtool.Eventually(t, 10*time.Second, func() bool { return s.Stats().SubscriberOffersOutstanding == 0 }, "answer applied")

	sub.mu.Lock()
	maxOut, offers := sub.maxOutstanding, len(sub.offers)
	sub.mu.Unlock()
	if maxOut != 1 {
		t.Errorf("at most %d offers were outstanding at once, want 1", maxOut)
	}
	t.Logf("S got %d offers for 3 publishers joining and one leaving", offers)
	sub.checkErrs()
	_ = vids
}

// TestCleanup: after every peer closed, nothing is published or forwarded
// and, once the SFU is closed, no goroutine is left.
func TestCleanup(t *testing.T) {
	baseline := runtime.NumGoroutine()
	s, err := New(Config{LoopbackOnly: true}, testLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var clients []*testClient
	var vids []*pubVideo
	var auds []*pubAudio
	for _, id := range []string{"a", "b", "c"} {
		c := newTestClient(t, s, "room", id, RoomEvents{})
		v, au := c.addVideo("cam", "x"), c.addAudio("mic", "x")
		c.publish(map[string]string{"cam": "camera", "mic": "microphone"})
		v.negotiated()
		au.negotiated()
		clients, vids, auds = append(clients, c), append(vids, v), append(auds, au)
	}
	warmUp(t, "everyone receiving everyone", nil, nil, func() bool {
		for i := range clients {
			_ = vids[i].sendFrame(vids[i].layers[0], false, 1, nil)
			_ = auds[i].send(0)
		}
		return s.Stats().BoundTracks == 3*2*2
	})
	if st := s.Stats(); st.PublishedTracks != 6 || st.ForwardedTracks != 12 || st.Peers != 3 || st.Rooms != 1 {
		t.Fatalf("stats before close: %+v", st)
	}
	for _, c := range clients {
		c.close()
	}
	if st := s.Stats(); st.PublishedTracks != 0 || st.ForwardedTracks != 0 || st.Peers != 0 || st.Rooms != 0 || st.BoundTracks != 0 {
		t.Fatalf("stats after close: %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("%d goroutines, baseline %d; the SFU's:\n%s\nall:\n%s", runtime.NumGoroutine(), baseline,
				mediaGoroutines(), goroutineDump())
		}
	}()
	testtool.Eventually(t, 10*time.Second, func() bool {
		return runtime.NumGoroutine() <= baseline && mediaGoroutines() == ""
	}, "the SFU's goroutines to end")
}

// mediaGoroutines returns the stacks of goroutines running SFU code.
func mediaGoroutines() string {
	var out []string
	for _, g := range strings.Split(goroutineDump(), "\n\n") {
		for _, fn := range []string{"media.(*Peer)", "media.(*upTrack)", "media.(*downTrack)", "media.(*sfuRoom)", "media.(*SFU)"} {
			if strings.Contains(g, fn) {
				out = append(out, g)
				break
			}
		}
	}
	return strings.Join(out, "\n\n")
}
