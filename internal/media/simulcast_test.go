package media

import (
	"testing"
	"time"

	"github.com/parley/parley/internal/testtool"
)

// sendSimulcast sends 30 frames a second on every layer of v (two packets
// a frame, a keyframe every two seconds or on PLI) until stop is closed.
func sendSimulcast(v *pubVideo, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, l := range v.layers {
					if err := v.sendFrame(l, l.frames%60 == 0, 2, nil); err != nil {
						return
					}
				}
			}
		}
	}()
	return done
}

// TestSimulcast: a small tile gets the q layer; a large one switches to f
// at an f keyframe, with one SSRC, continuous sequence numbers and
// monotonic timestamps throughout.
func TestSimulcast(t *testing.T) {
	c := newCall(t, callOpts{rids: []string{"q", "h", "f"},
		layout: []Tile{{Participant: "PUB", Source: "camera", Width: 320, Height: 180}}})
	s, sub, pub, v := c.s, c.sub, c.pub, c.cam

	stop := make(chan struct{})
	done := sendSimulcast(v, stop)
	defer func() {
		close(stop)
		<-done
	}()

	countLayer := func(layer byte) int {
		rt := sub.track("PUB:camera")
		if rt == nil {
			return 0
		}
		n := 0
		for _, p := range rt.pkts {
			if p.layer == layer {
				n++
			}
		}
		return n
	}
	testtool.Eventually(t, 15*time.Second, func() bool { return countLayer(0) >= 30 }, "q layer at the small tile")
	before := sub.track("PUB:camera")
	for _, p := range before.pkts[len(before.pkts)-20:] {
		if p.layer != 0 {
			t.Fatalf("small tile got layer %d, want q (0)", p.layer)
		}
	}
	switches := s.Stats().LayerSwitches

	sub.peer.SetLayout([]Tile{{Participant: "PUB", Source: "camera", Width: 1280, Height: 720}})
	testtool.Eventually(t, 10*time.Second, func() bool { return countLayer(2) >= 30 }, "f layer at the large tile")

	rt := sub.track("PUB:camera")
	if s.Stats().LayerSwitches <= switches {
		t.Errorf("no layer switch counted")
	}
	first := rt.pkts[0]
	switched := false
	for i, p := range rt.pkts {
		if p.ssrc != first.ssrc {
			t.Fatalf("packet %d has SSRC %d, want %d throughout", i, p.ssrc, first.ssrc)
		}
		if i == 0 {
			continue
		}
		prev := rt.pkts[i-1]
		if p.seq != prev.seq+1 {
			t.Fatalf("packet %d: sequence number %d after %d (layers %d→%d)", i, p.seq, prev.seq, prev.layer, p.layer)
		}
		if int32(p.ts-prev.ts) < 0 {
			t.Fatalf("packet %d: timestamp %d after %d (layers %d→%d)", i, p.ts, prev.ts, prev.layer, p.layer)
		}
		if i >= len(before.pkts) && p.layer != prev.layer {
			if prev.layer != 0 || p.layer != 2 || switched {
				t.Fatalf("packet %d: layer %d after %d, want one switch q→f", i, p.layer, prev.layer)
			}
			if !p.kf {
				t.Fatalf("packet %d: switched to f on a packet that does not start a keyframe", i)
			}
			if p.ts == prev.ts {
				t.Errorf("packet %d: new layer's frame has the old frame's timestamp", i)
			}
			switched = true
		}
	}
	if !switched {
		t.Fatal("never switched to f")
	}
	sub.checkErrs()
	pub.checkErrs()
}

// TestSimulcastHidden: a hidden tile gets no video; showing it resumes at
// a keyframe with continuous sequence numbers.
func TestSimulcastHidden(t *testing.T) {
	c := newCall(t, callOpts{rids: []string{"q", "h", "f"}})
	s, sub, v := c.s, c.sub, c.cam
	stop := make(chan struct{})
	done := sendSimulcast(v, stop)
	defer func() {
		close(stop)
		<-done
	}()
	count := func() int {
		if rt := sub.track("PUB:camera"); rt != nil {
			return len(rt.pkts)
		}
		return 0
	}
	testtool.Eventually(t, 15*time.Second, func() bool { return count() >= 20 }, "video before hiding")
	sub.peer.SetLayout(nil) // nothing listed: hidden
	down := sub.downFor("PUB:camera")
	testtool.Eventually(t, 5*time.Second, func() bool {
		cur, target, _ := down.state()
		return cur < 0 && target < 0
	}, "the SFU to stop the hidden tile's video")
	// Not one more packet while 30 frames of every layer come in.
	sub.silence(t, func() { packetsIn(t, s, 3*2*30) }, "PUB:camera")
	n := count()
	sub.peer.SetLayout([]Tile{{Participant: "PUB", Source: "camera", Width: 640, Height: 360}})
	testtool.Eventually(t, 10*time.Second, func() bool { return count() >= n+20 }, "video after showing")
	rt := sub.track("PUB:camera")
	if p, prev := rt.pkts[n], rt.pkts[n-1]; p.seq != prev.seq+1 || !p.kf || p.layer != 1 {
		t.Fatalf("resumed with seq %d after %d, keyframe %v, layer %d (want h)", p.seq, prev.seq, p.kf, p.layer)
	}
}

// TestSimulcastTwoLayers: a camera captured below 540 lines publishes h
// and f only (Chrome sends at most two layers there; sfu.js
// encodingsFor). With no q layer the SFU still gives a small tile the
// smaller layer and a large one the full picture. (The helper's two
// layers are 640×360 and 1280×720, marked 0 and 1 in the payload.)
func TestSimulcastTwoLayers(t *testing.T) {
	c := newCall(t, callOpts{rids: []string{"h", "f"},
		layout: []Tile{{Participant: "PUB", Source: "camera", Width: 202, Height: 114}}})
	sub, v := c.sub, c.cam
	stop := make(chan struct{})
	done := sendSimulcast(v, stop)
	defer func() {
		close(stop)
		<-done
	}()
	last := func() (byte, int) {
		rt := sub.track("PUB:camera")
		if rt == nil || len(rt.pkts) == 0 {
			return 255, 0
		}
		return rt.pkts[len(rt.pkts)-1].layer, len(rt.pkts)
	}
	testtool.Eventually(t, 15*time.Second, func() bool { l, n := last(); return l == 0 && n >= 30 }, "h at the 202×114 strip tile")
	sub.peer.SetLayout([]Tile{{Participant: "PUB", Source: "camera", Width: 1420, Height: 798}})
	testtool.Eventually(t, 10*time.Second, func() bool { l, _ := last(); return l == 1 }, "f at a 1420×798 pinned tile")
	sub.peer.SetLayout([]Tile{{Participant: "PUB", Source: "camera", Width: 456, Height: 325}})
	testtool.Eventually(t, 10*time.Second, func() bool { l, _ := last(); return l == 0 }, "h again at a 456×325 tile (640×360 covers it)")
	sub.checkErrs()
	c.pub.checkErrs()
}
