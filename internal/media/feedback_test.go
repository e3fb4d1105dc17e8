package media

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/parley/parley/internal/testtool"
)

// TestNACK: the subscriber's socket drops every 7th video packet
// (retransmissions included); its NACKs are answered from the SFU's cache
// until it has every packet.
func TestNACK(t *testing.T) {
	c := newCall(t, callOpts{})
	c.receiving(t)
	s, sub, v := c.s, c.sub, c.cam

	sub.conn.dropEvery.Store(7)
	const frames, perFrame = 100, 3
	tag := uint32(0)
	l := v.layers[0]
	for range frames {
		if err := v.sendFrame(l, false, perFrame, func() uint32 { tag++; return videoTag | (tag - 1) }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // pacing media
	}
	// Keep the stream going: a loss at the very end is only noticed when
	// a later packet arrives.
	warmUp(t, "every packet despite the loss", v, nil, func() bool {
		return countTags(sub.track("PUB:camera"), videoTag) == frames*perFrame
	})
	st := s.Stats()
	if sub.conn.dropped.Load() == 0 || st.NACKs == 0 || st.Retransmissions == 0 {
		t.Fatalf("dropped %d, NACKs %d, retransmissions %d: nothing was repaired", sub.conn.dropped.Load(), st.NACKs, st.Retransmissions)
	}
	t.Logf("dropped %d packets; SFU got %d NACKs and retransmitted %d", sub.conn.dropped.Load(), st.NACKs, st.Retransmissions)
	checkContiguous(t, "video", sub.track("PUB:camera"), videoTag)
}

// TestNACKUpstream: packets lost between the publisher and the SFU are
// NACKed by the SFU, retransmitted by the publisher and forwarded.
func TestNACKUpstream(t *testing.T) {
	c := newCall(t, callOpts{})
	c.receiving(t)
	sub, pub, v := c.sub, c.pub, c.cam

	pub.pubConn.dropEveryWrite.Store(9)
	const frames, perFrame = 60, 3
	tag := uint32(0)
	for range frames {
		if err := v.sendFrame(v.layers[0], false, perFrame, func() uint32 { tag++; return videoTag | (tag - 1) }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // pacing media
	}
	warmUp(t, "every packet despite the uplink loss", v, nil, func() bool {
		return countTags(sub.track("PUB:camera"), videoTag) == frames*perFrame
	})
	if pub.pubConn.dropped.Load() == 0 {
		t.Fatal("nothing was dropped")
	}
	t.Logf("publisher lost %d packets on the way, all repaired", pub.pubConn.dropped.Load())
}

// TestKeyframeRequests: a subscriber's PLI reaches the publisher, and
// bursts of them are rate limited.
func TestKeyframeRequests(t *testing.T) {
	// An interval no test outlasts: the only way past it is the clock
	// step below, so no keyframe request of the SFU's own (a new
	// subscriber, a layer switch) can slip into the count. The layer must
	// outlive the step, or it would count as gone quiet.
	c := newCall(t, callOpts{cfg: func(c *Config) {
		c.PLIInterval = time.Hour
		c.LayerTimeout = 3 * time.Hour
	}})
	c.receiving(t)
	s, sub, v := c.s, c.sub, c.cam
	// Step past the interval that began with the SFU's keyframe request
	// for S: the next request goes out, later ones within the interval
	// do not.
	s.skew.Add(int64(time.Hour))
	before := s.Stats().PLIs
	v.layers[0].pli.Store(false)
	d := sub.downFor("PUB:camera")
	for range 10 {
		d.keyframeRequested()
	}
	testtool.Eventually(t, 5*time.Second, func() bool { return v.layers[0].pli.Load() }, "PLI at the publisher")
	if n := s.Stats().PLIs - before; n != 1 {
		t.Errorf("10 keyframe requests within the interval sent %d PLIs, want 1", n)
	}
}

// downFor finds the SFU's downTrack for one of the client's tracks.
func (c *testClient) downFor(trackID string) *downTrack {
	c.peer.subMu.Lock()
	defer c.peer.subMu.Unlock()
	for d := range c.peer.downs {
		if d.ID() == trackID {
			return d
		}
	}
	c.t.Fatalf("no downTrack %s", trackID)
	return nil
}

// TestSpeaker: the louder of two publishers is the active speaker; when
// the levels swap, so does the speaker; silence is reported.
func TestSpeaker(t *testing.T) {
	speakers := make(chan string, 100)
	re := RoomEvents{Speaker: func(id string) {
		select {
		case speakers <- id:
		default:
		}
	}}
	s := newTestSFU(t, nil)
	a := newTestClient(t, s, "room", "A", re)
	b := newTestClient(t, s, "room", "B", re)
	var auds []*pubAudio
	for _, c := range []*testClient{a, b} {
		au := c.addAudio("mic", "x")
		c.publish(map[string]string{"mic": "microphone"})
		au.negotiated()
		auds = append(auds, au)
	}
	auds[0].level.Store(20) // -20 dBov: speaking up
	auds[1].level.Store(40) // -40 dBov: quieter, above the threshold
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, au := range auds {
					_ = au.send(0)
				}
			}
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()
	expect := func(want string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case got := <-speakers:
				if got == want {
					return
				}
			case <-timeout:
				t.Fatalf("speaker %q never reported", want)
			}
		}
	}
	expect("A")
	auds[0].level.Store(40)
	auds[1].level.Store(15)
	expect("B")
	auds[0].level.Store(127)
	auds[1].level.Store(127)
	expect("")
	// A muted participant is not the speaker, however loud.
	auds[0].level.Store(10)
	auds[1].level.Store(30)
	a.peer.SetSending(false, false, false)
	expect("B")
}

// TestBandwidthEstimate: a subscriber whose bandwidth estimate (REMB) is
// below what it is sent gets lower camera layers, then no camera while
// the screen share keeps flowing; when the estimate recovers, the camera
// comes back.
func TestBandwidthEstimate(t *testing.T) {
	s := newTestSFU(t, func(c *Config) { c.BandwidthProbeInterval = time.Second })
	sub := newTestClient(t, s, "room", "S", RoomEvents{})
	sub.peer.SetLayout([]Tile{
		{Participant: "PUB", Source: "camera", Width: 1280, Height: 720},
		{Participant: "PUB", Source: "screen", Width: 1280, Height: 720},
	})
	pub := newTestClient(t, s, "room", "PUB", RoomEvents{})
	cam := pub.addVideo("cam", "cams", "q", "h", "f")
	scr := pub.addVideo("scr", "screens")
	pub.publish(map[string]string{"cam": "camera", "scr": "screen"})
	cam.negotiated()
	scr.negotiated()
	stop := make(chan struct{})
	camDone, scrDone := sendSimulcast(cam, stop), sendSimulcast(scr, stop)
	defer func() {
		close(stop)
		<-camDone
		<-scrDone
	}()

	count := func(id string) int {
		if rt := sub.track(id); rt != nil {
			return len(rt.pkts)
		}
		return 0
	}
	lastLayer := func() int {
		rt := sub.track("PUB:camera")
		if rt == nil || len(rt.pkts) == 0 {
			return -1
		}
		return int(rt.pkts[len(rt.pkts)-1].layer)
	}
	testtool.Eventually(t, 15*time.Second, func() bool { return lastLayer() == 2 }, "the f layer for a large tile")
	testtool.Eventually(t, 5*time.Second, func() bool { return count("PUB:screen") > 10 }, "the screen share")

	// The subscriber's browser estimates 100 kbit/s: less than the
	// screen share alone (about 290 kbit/s here).
	var rate atomic.Uint64
	rate.Store(100_000)
	remb := make(chan struct{})
	rembDone := make(chan struct{})
	go func() {
		defer close(rembDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-remb:
				return
			case <-tick.C:
			}
			var ssrcs []uint32
			for _, id := range []string{"PUB:camera", "PUB:screen"} {
				if rt := sub.track(id); rt != nil && len(rt.pkts) > 0 {
					ssrcs = append(ssrcs, rt.pkts[0].ssrc)
				}
			}
			_ = sub.sub.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{
				SenderSSRC: 1, Bitrate: float32(rate.Load()), SSRCs: ssrcs}})
		}
	}()
	defer func() {
		close(remb)
		<-rembDone
	}()

	testtool.Eventually(t, 10*time.Second, func() bool { return lastLayer() == 0 }, "the camera lowered to q")
	camDown := sub.downFor("PUB:camera")
	testtool.Eventually(t, 10*time.Second, func() bool {
		cur, target, bwMax := camDown.state()
		return bwMax < 0 && target < 0 && cur < 0
	}, "the camera paused for bandwidth")
	// Paused: not one more camera packet while the screen share (sent
	// alongside the camera's layers) keeps flowing.
	sub.silence(t, func() {
		n := count("PUB:screen")
		testtool.Eventually(t, 5*time.Second, func() bool { return count("PUB:screen") > n+20 }, "the screen share still flowing")
	}, "PUB:camera")
	if st := s.Stats(); st.REMBs == 0 || st.BandwidthLimits < 3 {
		t.Errorf("stats: %d REMBs, %d bandwidth limits; want REMBs counted and 3 steps (f→h→q→paused)", st.REMBs, st.BandwidthLimits)
	}

	// The estimate recovers: the camera comes back, a layer at a time.
	rate.Store(50_000_000)
	n := count("PUB:camera")
	testtool.Eventually(t, 10*time.Second, func() bool { return count("PUB:camera") > n+20 }, "the camera back")
	testtool.Eventually(t, 15*time.Second, func() bool { return lastLayer() == 2 }, "the camera back on f")
	sub.checkErrs()
	pub.checkErrs()
}
