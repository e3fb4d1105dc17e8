package media

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/testtool"
)

// BenchmarkForward measures the forwarding path for real subscribers: a
// received 1200-byte RTP packet is rewritten for each subscriber, goes
// through the subscriber's interceptors and SRTP (AES-GCM) and is written
// to its loopback UDP address. The subscribers (pion peers in-process)
// discard what they receive right after the receive system call.
// ns/pkt-sub is the cost per packet per subscriber.
func BenchmarkForward(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) { benchForward(b, n) })
	}
}

func benchForward(b *testing.B, n int) {
	s := newTestSFU(b, nil)
	pub := newTestClient(b, s, "bench", "PUB", RoomEvents{})
	v := pub.addVideo("cam", "x")
	pub.publish(map[string]string{"cam": "camera"})
	v.negotiated()
	var subs []*testClient
	for i := range n {
		subs = append(subs, newTestClient(b, s, "bench", fmt.Sprintf("s%d", i), RoomEvents{}))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ready := s.Stats().BoundTracks == n
		for _, c := range subs {
			ready = ready && c.track("PUB:camera") != nil
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("subscribers not ready: %+v", s.Stats())
		}
		_ = v.sendFrame(v.layers[0], false, 1, nil)
		time.Sleep(20 * time.Millisecond) // pacing media
	}
	for _, c := range subs {
		c.conn.sink.Store(true)
	}
	u := s.rooms["bench"].snapshot()[0]
	l := u.layer(0)
	seq := v.layers[0].seq + 100
	ts := v.layers[0].ts + 30000
	payload := make([]byte, 1200-12)
	payload[0], payload[1] = 0x10, 0x10 // a keyframe first, so every subscriber forwards
	copy(payload[4:], []byte{0x9d, 0x01, 0x2a})
	mk := func() []byte {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts,
			SSRC: l.ssrc}, Payload: payload}
		raw, err := p.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		return raw
	}
	var pkt rtp.Packet
	u.handleRTP(l, mk(), &pkt)
	payload[1] = 0x11 // then delta frames
	raw := mk()
	before := s.Stats().PacketsOut
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		seq++
		binary.BigEndian.PutUint16(raw[2:], seq)
		u.handleRTP(l, raw, &pkt)
	}
	b.StopTimer()
	if got := s.Stats().PacketsOut - before; got != uint64(b.N*n) {
		b.Fatalf("%d packets out, want %d", got, b.N*n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/pkt-sub")
}

// BenchmarkFanOutInProcess measures the SFU's own share of forwarding:
// the same path with the subscribers' writers replaced by one that only
// marshals the packet (no interceptors, SRTP or socket).
func BenchmarkFanOutInProcess(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			u, l, d0 := fuzzFixture(b, webrtc.RTPCodecTypeVideo)
			subs := []*downTrack{d0}
			for range n - 1 {
				d := newDownTrack(u, d0.sub)
				d.writer, d.ssrc, d.pt, d.cur, d.target, d.resync = &discardWriter{}, 99, 96, 0, 0, true
				subs = append(subs, d)
			}
			u.subs.Store(&subs)
			payload := make([]byte, 1188)
			payload[0], payload[1] = 0x10, 0x11
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 5}, Payload: payload}
			raw, _ := p.Marshal()
			var pkt rtp.Packet
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				binary.BigEndian.PutUint16(raw[2:], uint16(i))
				u.handleRTP(l, raw, &pkt)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/pkt-sub")
		})
	}
}

// BenchmarkUDPSendFloor is one 1200-byte UDP send on loopback: the
// physical floor under BenchmarkForward's per-subscriber cost.
func BenchmarkUDPSendFloor(b *testing.B) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer rx.Close()
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := rx.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	buf := make([]byte, 1200)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tx.WriteToUDPAddrPort(buf, to); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubscriberMemory joins 50 subscribers to a room with one
// publisher (camera and microphone) and reports the heap and goroutines
// each one adds once every subscriber is receiving. The subscribers are
// in-process pion peers, so "heap-B/sub" counts both sides of each
// connection: the SFU's share is at most that. Run with -benchtime 1x.
func BenchmarkSubscriberMemory(b *testing.B) {
	const n = 50
	for range b.N {
		s := newTestSFU(b, nil)
		pub := newTestClient(b, s, "mem", "PUB", RoomEvents{})
		v, a := pub.addVideo("cam", "x"), pub.addAudio("mic", "x")
		pub.publish(map[string]string{"cam": "camera", "mic": "microphone"})
		v.negotiated()
		a.negotiated()
		pub.waitConnected(10 * time.Second)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { // 30 fps video and 50 packets/s audio throughout
			defer close(done)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				_ = a.send(0)
				if i%3 != 2 {
					_ = v.sendFrame(v.layers[0], i%100 == 0, 2, nil)
				}
			}
		}()
		before, goBefore := heapInUse(), runtime.NumGoroutine()
		var subs []*testClient
		for i := range n {
			subs = append(subs, newTestClient(b, s, "mem", fmt.Sprintf("s%d", i), RoomEvents{}))
		}
		testtool.Eventually(b, 60*time.Second, func() bool {
			for _, c := range subs {
				if c.track("PUB:camera") == nil || c.track("PUB:microphone") == nil {
					return false
				}
			}
			return true
		}, "every subscriber receiving")
		// The clients keep every received packet for the tests' checks:
		// drop them, so only connection state is measured.
		for _, c := range subs {
			c.conn.sink.Store(true)
			c.mu.Lock()
			clear(c.tracks)
			c.mu.Unlock()
		}
		after, goAfter := heapInUse(), runtime.NumGoroutine()
		if path := os.Getenv("PARLEY_HEAP_PROFILE"); path != "" {
			writeHeapProfile(b, path)
		}
		close(stop)
		<-done
		b.ReportMetric(float64(after-before)/n, "heap-B/sub")
		b.ReportMetric(float64(goAfter-goBefore)/n, "goroutines/sub")
	}
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
