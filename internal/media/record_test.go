package media

import (
	"encoding/binary"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// copySink is a TrackSink that does what a recorder must on the
// forwarding goroutine: copy the packet (here into a fixed buffer).
type copySink struct {
	buf [1500]byte
	n   int
	srs int
}

func (c *copySink) WriteRTP(_ int, b []byte)         { c.n = copy(c.buf[:], b) }
func (c *copySink) SenderReport(int, uint32, uint64) { c.srs++ }
func (c *copySink) Close()                           {}
func (c *copySink) Track(TrackInfo) TrackSink        { return c }

// TestRecordTap: a tapped track hands the recorded layer's packets and
// sender reports to the sink, the other layers' packets not; untap
// closes the tap.
func TestRecordTap(t *testing.T) {
	u, l, _ := fuzzFixture(t, webrtc.RTPCodecTypeVideo)
	sink := &copySink{}
	u.tap(sink)
	tp := u.rec.Load()
	if tp == nil || tp.layer.Load() != int32(l.idx) {
		t.Fatalf("tap %v, want layer %d", tp, l.idx)
	}
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: l.ssrc, SequenceNumber: 7}, Payload: []byte{0x10, 1, 2, 3}}
	raw, _ := p.Marshal()
	var pkt rtp.Packet
	u.handleRTP(l, raw, &pkt)
	if sink.n != len(raw) {
		t.Errorf("the recorded layer's packet did not reach the sink (%d bytes)", sink.n)
	}
	u.rec.Load().layer.Store(int32(l.idx + 1)) // another layer is recorded now
	sink.n = 0
	u.handleRTP(l, raw, &pkt)
	if sink.n != 0 {
		t.Error("a layer that is not recorded reached the sink")
	}
	u.untapIf(sink)
	if u.rec.Load() != nil {
		t.Error("untap left the tap")
	}
}

// BenchmarkRecordTap is the forwarding path's cost of recording: one
// subscriber (discarding), with and without a recording tap whose sink
// copies the packet. The difference is what recording adds per packet;
// internal/recording's BenchmarkWriteRTP is the real sink's share.
func BenchmarkRecordTap(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			u, l, _ := fuzzFixture(b, webrtc.RTPCodecTypeVideo)
			if on {
				u.tap(&copySink{})
			}
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
		})
	}
}

// TestRecordHighestLayer: a simulcast track records its highest sending
// layer; when that layer stops the recording moves down a layer, and back
// up when it returns, asking the publisher for a keyframe each time (a
// file can only continue on a new layer from a keyframe).
func TestRecordHighestLayer(t *testing.T) {
	u, q, _ := fuzzFixture(t, webrtc.RTPCodecTypeVideo)
	s := u.pub.sfu
	q.rid, q.ssrc = "q", 1
	now := s.now()
	layers := []*layer{q}
	for i, rid := range []string{"h", "f"} {
		l := &layer{up: u, idx: i + 1, rid: rid, ssrc: uint32(i + 2)}
		l.lastPLI.Store(-1 << 60)
		layers = append(layers, l)
		u.layers[i+1].Store(l)
	}
	q.lastPLI.Store(-1 << 60)
	for _, l := range layers {
		l.lastPacket.Store(now)
	}
	plis := func() uint64 { return s.metrics.plis.Load() }
	sink := &copySink{}
	u.tap(sink)
	if got := u.rec.Load().layer.Load(); got != 2 {
		t.Fatalf("recording layer %d, want 2 (f)", got)
	}
	if plis() != 1 {
		t.Errorf("%d keyframe requests at the start, want 1", plis())
	}
	// f stops sending: the recording moves to h, with a keyframe request.
	s.skew.Add(int64(2 * s.cfg.LayerTimeout))
	now = s.now()
	q.lastPacket.Store(now)
	layers[1].lastPacket.Store(now)
	u.tickRecord(now)
	if got := u.rec.Load().layer.Load(); got != 1 || plis() != 2 {
		t.Errorf("after f stopped: layer %d, %d keyframe requests; want 1, 2", got, plis())
	}
	u.tickRecord(now) // nothing changed: no new request
	if plis() != 2 {
		t.Errorf("a tick without a change asked for a keyframe")
	}
	layers[2].lastPacket.Store(now) // f is back
	u.tickRecord(now)
	if got := u.rec.Load().layer.Load(); got != 2 || plis() != 3 {
		t.Errorf("after f came back: layer %d, %d keyframe requests; want 2, 3", got, plis())
	}
}
