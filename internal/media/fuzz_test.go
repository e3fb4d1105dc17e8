package media

import (
	"log/slog"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/packetcache"
)

// discardWriter stands in for a subscriber's bound sender in the fuzz
// tests: it marshals what it is given, as SRTP would, and drops it.
type discardWriter struct{ buf [1500]byte }

func (w *discardWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	n, err := h.MarshalTo(w.buf[:])
	if err != nil {
		return 0, err
	}
	return n + copy(w.buf[n:], payload), nil
}

func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// fuzzFixture is one published track (video VP8 or audio Opus) with one
// bound subscriber, wired without a network.
func fuzzFixture(t testing.TB, kind webrtc.RTPCodecType) (*upTrack, *layer, *downTrack) {
	s := &SFU{metrics: newMetrics(), epoch: time.Now(), log: slog.New(slog.DiscardHandler)}
	s.cfg.setDefaults()
	pc, err := webrtc.NewAPI().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	pub := newPeer(s, "P", pc, pc, PeerEvents{})
	sub := newPeer(s, "S", pc, pc, PeerEvents{})
	u := &upTrack{pub: pub, kind: kind, tile: sourceCamera, source: sourceCamera, clock: 90000,
		codec: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, ck: codecVP8}
	l := &layer{up: u, cache: &packetcache.Cache{}}
	if kind == webrtc.RTPCodecTypeAudio {
		u.source, u.clock, u.ck = sourceMicrophone, 48000, codecOther
		u.codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000}
		l.cache, l.alID = nil, 1
	}
	u.layers[0].Store(l)
	d := newDownTrack(u, sub)
	d.writer, d.ssrc, d.pt, d.alID, d.cur, d.target, d.resync = &discardWriter{}, 1234, 96, 3, 0, 0, true
	subs := []*downTrack{d}
	u.subs.Store(&subs)
	return u, l, d
}

func rtpSeed(t testing.TB, seq uint16, payload []byte, ext bool) []byte {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: 3000 * uint32(seq), SSRC: 42}, Payload: payload}
	if ext {
		_ = p.Header.SetExtension(1, []byte{0x85})
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzForwardRTP feeds arbitrary bytes to the forwarding entry point, as
// received from a publisher: no panic, and what does not parse is counted.
func FuzzForwardRTP(f *testing.F) {
	key := []byte{0x10, 0x10, 0, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 1, 2, 3}
	f.Add(rtpSeed(f, 1, key, false), false)
	f.Add(rtpSeed(f, 2, []byte{0x90, 0xe0, 0x80, 0x01, 0x02, 0x11}, false), false)
	f.Add(rtpSeed(f, 3, []byte{0x7c, 0x85, 1, 2}, false), false) // H.264 FU-A IDR start, as VP8
	f.Add(rtpSeed(f, 4, []byte{1, 2, 3}, true), true)
	f.Add([]byte{0x80}, false)
	f.Add([]byte{0xa0, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 42, 9, 9, 0, 200}, false) // padding longer than the packet
	f.Add([]byte{0x90, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 42, 0xbe, 0xde, 0, 9}, true)
	f.Fuzz(func(t *testing.T, data []byte, audio bool) {
		kind := webrtc.RTPCodecTypeVideo
		if audio {
			kind = webrtc.RTPCodecTypeAudio
		}
		u, l, _ := fuzzFixture(t, kind)
		m := u.pub.sfu.metrics
		var pkt rtp.Packet
		// Twice: the second time the subscriber is past its first packet.
		for range 2 {
			before := m.dropped[dropMalformedRTP].Load()
			u.handleRTP(l, data, &pkt)
			var check rtp.Packet
			bad := check.Unmarshal(data) != nil || check.Version != 2
			if got := m.dropped[dropMalformedRTP].Load() - before; (got == 1) != bad {
				t.Fatalf("malformed counted %d for a packet that is malformed=%v", got, bad)
			}
		}
		// The parsers on the raw bytes as a payload.
		keyframeStart(codecVP8, data)
		keyframeStart(codecH264, data)
	})
}

// FuzzHandleRTCP feeds arbitrary bytes to a subscriber's RTCP handling
// (keyframe requests, NACKs answered from the cache, receiver reports).
func FuzzHandleRTCP(f *testing.F) {
	seed := func(pkts ...rtcp.Packet) []byte {
		b, err := rtcp.Marshal(pkts)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(seed(&rtcp.PictureLossIndication{MediaSSRC: 1234}))
	f.Add(seed(&rtcp.FullIntraRequest{MediaSSRC: 1234, FIR: []rtcp.FIREntry{{SSRC: 1234}}}))
	f.Add(seed(&rtcp.TransportLayerNack{MediaSSRC: 1234, Nacks: []rtcp.NackPair{{PacketID: 10, LostPackets: 0xffff}}}))
	f.Add(seed(&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{{SSRC: 1234, FractionLost: 200}}},
		&rtcp.TransportLayerNack{MediaSSRC: 1234, Nacks: []rtcp.NackPair{{PacketID: 65530, LostPackets: 0x00ff}}}))
	f.Add(seed(&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 1e6, SSRCs: []uint32{1234}}))
	f.Add([]byte{0x81, 0xc9, 0, 0})
	f.Add([]byte{0x80, 0xcd, 0xff, 0xff, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		u, l, d := fuzzFixture(t, webrtc.RTPCodecTypeVideo)
		var pkt rtp.Packet
		for i := range uint16(20) {
			u.handleRTP(l, rtpSeed(t, i, []byte{0x10, 0x10, 0, 0, 1, 2, 3}, false), &pkt)
		}
		m := u.pub.sfu.metrics
		before := m.dropped[dropMalformedRTCP].Load()
		scratch := make([]byte, 1500)
		d.handleRTCP(data, scratch, &pkt)
		_, err := rtcp.Unmarshal(data)
		if got := m.dropped[dropMalformedRTCP].Load() - before; (got == 1) != (err != nil) {
			t.Fatalf("malformed RTCP counted %d, unmarshal error %v", got, err)
		}
	})
}
