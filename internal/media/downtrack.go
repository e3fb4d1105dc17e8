package media

import (
	"strings"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// epoch records how one stretch of a subscriber's outgoing stream maps to
// a publisher layer, so NACKed packets can be found again after a switch.
type epoch struct {
	l        *layer
	startOut uint16 // first outgoing sequence number of the stretch
	seqOff   uint16 // out = in + seqOff
	tsOff    uint32
}

const epochHistory = 4

// maxResendPerRTCP bounds the retransmissions one RTCP packet triggers.
const maxResendPerRTCP = 128

// downTrack is one upTrack as sent to one subscriber. It implements
// webrtc.TrackLocal; pion binds it to the subscriber's RTP sender, and
// packets are written straight to the bound TrackLocalWriter (the sender's
// interceptor chain and SRTP) from the publisher's reader goroutine.
type downTrack struct {
	up  *upTrack
	sub *Peer

	// sender is set when the subscriber's negotiation adds the track
	// (under sub.negMu) and read by that negotiation only.
	sender *webrtc.RTPSender

	mu      sync.Mutex
	removed bool
	writer  webrtc.TrackLocalWriter
	bindID  string
	ssrc    uint32
	pt      uint8
	alID    uint8 // audio level extension id on the subscriber's connection

	cur, target int // layer forwarded now, layer wanted (-1 = none)
	maxLayer    int // cap from the subscriber's reported loss
	bwMax       int // cap from the subscriber's bandwidth estimate (-1 = paused)
	createdAt   int64
	started     bool // something was sent: offsets continue from last*
	resync      bool // next forwarded packet starts a new epoch

	seqOff        uint16
	tsOff         uint32
	lowIn, highIn uint16 // window of input sequence numbers of the epoch
	lastSeq       uint16 // newest outgoing sequence number and its timestamp
	lastTs        uint32
	lastAt        int64

	epochs [epochHistory]epoch
	epochN int

	lossBad int
	capAt   int64

	hdr rtp.Header       // scratch for writes, guarded by mu
	ext [1]rtp.Extension // backing array for hdr.Extensions
}

func newDownTrack(u *upTrack, sub *Peer) *downTrack {
	return &downTrack{up: u, sub: sub, cur: -1, target: -1, maxLayer: maxLayers - 1, bwMax: maxLayers - 1,
		createdAt: sub.sfu.now()}
}

// ID is the outgoing track id, PUBLISHER:source.
func (d *downTrack) ID() string { return d.up.trackID }

// RID is empty: a subscriber gets one encoding.
func (d *downTrack) RID() string { return "" }

// StreamID is PUBLISHER:camera or PUBLISHER:screen.
func (d *downTrack) StreamID() string { return d.up.streamID }

// Kind is audio or video.
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.up.kind }

// Bind is called by pion when the subscriber's negotiation completed.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var codec webrtc.RTPCodecParameters
	found := false
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, d.up.codec.MimeType) {
			codec, found = c, true
			break
		}
	}
	if !found {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	var alID uint8
	for _, h := range ctx.HeaderExtensions() {
		if h.URI == sdp.AudioLevelURI {
			alID = uint8(h.ID)
		}
	}
	d.mu.Lock()
	d.writer = ctx.WriteStream()
	d.bindID = ctx.ID()
	d.ssrc = uint32(ctx.SSRC())
	d.pt = uint8(codec.PayloadType)
	d.alID = alID
	d.resync = true
	if d.up.kind == webrtc.RTPCodecTypeAudio {
		d.cur, d.target = 0, 0
	} else {
		d.cur = -1
	}
	d.mu.Unlock()
	d.refreshTarget(d.sub.sfu.now())
	return codec, nil
}

// Unbind is called by pion when the sender stops.
func (d *downTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	d.mu.Lock()
	if d.bindID == ctx.ID() {
		d.writer = nil
	}
	d.mu.Unlock()
	return nil
}

// markRemoved stops forwarding for good; the subscriber's negotiation
// removes the sender.
func (d *downTrack) markRemoved() {
	d.mu.Lock()
	was := d.removed
	d.removed = true
	d.writer = nil
	d.mu.Unlock()
	if !was {
		d.up.pub.sfu.metrics.forwarded.Add(-1)
	}
}

func (d *downTrack) isBound() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writer != nil
}

// resume makes the next packet start a new epoch (after the publisher
// unmuted), at a keyframe for video.
func (d *downTrack) resume() {
	d.mu.Lock()
	d.resync = true
	if d.up.kind == webrtc.RTPCodecTypeVideo {
		d.cur = -1
	}
	d.mu.Unlock()
}

// forward rewrites and writes one packet of layer l, if l is what this
// subscriber gets. It switches layers at keyframes of the target layer.
func (d *downTrack) forward(l *layer, p *rtp.Packet, kf bool, level []byte, now int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writer == nil {
		return false
	}
	if d.cur != l.idx {
		if d.target != l.idx || !(kf || d.up.ck == codecOther) {
			return false
		}
		if d.cur >= 0 || d.started {
			d.up.pub.sfu.metrics.layerSwitches.Add(1)
		}
		d.cur = l.idx
		d.resync = true
	}
	in := p.SequenceNumber
	newest := false
	if d.resync {
		if d.started {
			// Continue right after the last packet sent, and advance the
			// timestamp by the wall time since, so the subscriber sees one
			// continuous stream.
			d.seqOff = d.lastSeq + 1 - in
			delta := uint32(uint64(now-d.lastAt) * uint64(d.up.clock) / 1e9)
			if delta == 0 {
				delta = 1
			}
			d.tsOff = d.lastTs + delta - p.Timestamp
		} else {
			d.sub.firstMedia(now - d.createdAt)
		}
		d.started, d.resync = true, false
		d.lowIn, d.highIn = in, in
		d.epochs[d.epochN%epochHistory] = epoch{l: l, startOut: in + d.seqOff, seqOff: d.seqOff, tsOff: d.tsOff}
		d.epochN++
		newest = true
	} else {
		switch {
		case int16(in-d.highIn) > 0:
			d.highIn = in
			if d.highIn-d.lowIn > 8192 {
				d.lowIn = d.highIn - 8192
			}
		case int16(in-d.lowIn) < 0:
			// from before the switch point: its number would collide
			d.up.pub.sfu.metrics.drop(dropStale)
			return false
		}
	}
	seq, ts := in+d.seqOff, p.Timestamp+d.tsOff
	if newest || int16(seq-d.lastSeq) > 0 {
		d.lastSeq, d.lastTs, d.lastAt = seq, ts, now
	}
	return d.write(p, seq, ts, level)
}

// write sends p with the given numbers. Called with d.mu held; d.hdr is
// reused so nothing escapes to the heap.
func (d *downTrack) write(p *rtp.Packet, seq uint16, ts uint32, level []byte) bool {
	h := &d.hdr
	*h = p.Header
	h.SSRC = d.ssrc
	h.PayloadType = d.pt
	h.SequenceNumber = seq
	h.Timestamp = ts
	h.CSRC = nil
	// The publisher's extension ids mean nothing on the subscriber's
	// connection: only the audio level is carried over, re-numbered.
	h.Extension = false
	h.ExtensionProfile = 0
	h.Extensions = d.ext[:0]
	if level != nil && d.alID != 0 {
		_ = h.SetExtension(d.alID, level)
	}
	if _, err := d.writer.WriteRTP(h, p.Payload); err != nil {
		d.up.pub.sfu.metrics.drop(dropWriteError)
		return false
	}
	return true
}

// refreshTarget re-chooses the layer this subscriber should get and asks
// for a keyframe if it is not getting it yet.
func (d *downTrack) refreshTarget(now int64) {
	u := d.up
	if u.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	w, h, visible := d.sub.tileSize(u.pub.id, u.tile)
	d.mu.Lock()
	t := -1
	if visible {
		t = d.chooseLayer(w, h, now, min(d.maxLayer, d.bwMax))
	}
	d.target = t
	if t < 0 {
		d.cur = -1
	}
	need := d.writer != nil && t >= 0 && d.cur != t
	d.mu.Unlock()
	if need {
		if l := u.layer(t); l != nil {
			l.requestKeyframe()
		}
	}
}

// chooseLayer picks the smallest active layer that is at least 3/4 of the
// tile in both dimensions, else the largest one, within the layer cap (the
// lower of the loss and bandwidth caps; -1 pauses the video). Called with
// d.mu held.
func (d *downTrack) chooseLayer(w, h int, now int64, limit int) int {
	if limit < 0 {
		return -1
	}
	fit, largest, smallest := -1, -1, -1
	for i := range maxLayers {
		l := d.up.layer(i)
		if !l.active(now) {
			continue
		}
		if smallest < 0 {
			smallest = i
		}
		if i > limit {
			continue
		}
		largest = i
		lw, lh := l.size()
		if fit < 0 && lw*4 >= w*3 && lh*4 >= h*3 {
			fit = i
		}
	}
	switch {
	case fit >= 0:
		return fit
	case largest >= 0:
		return largest
	}
	return smallest
}

// readRTCP is the goroutine reading the subscriber's RTCP for this track
// (running the interceptors) and acting on it.
func (d *downTrack) readRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	scratch := make([]byte, 1500)
	var pkt rtp.Packet
	fails := 0
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			if isClosedErr(err) || d.sub.isClosed() {
				return
			}
			// RTCP an interceptor could not parse: count it and go on.
			d.sub.sfu.metrics.drop(dropMalformedRTCP)
			if fails++; fails > 1000 {
				return
			}
			continue
		}
		fails = 0
		d.handleRTCP(buf[:n], scratch, &pkt)
	}
}

// handleRTCP acts on a subscriber's RTCP: keyframe requests go upstream,
// NACKs are answered from the layer caches, receiver reports feed the
// loss metric and the layer cap.
func (d *downTrack) handleRTCP(b []byte, scratch []byte, pkt *rtp.Packet) {
	m := d.sub.sfu.metrics
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		m.drop(dropMalformedRTCP)
		return
	}
	d.mu.Lock()
	ssrc := d.ssrc
	d.mu.Unlock()
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.PictureLossIndication:
			if p.MediaSSRC == ssrc {
				d.keyframeRequested()
			}
		case *rtcp.FullIntraRequest:
			if p.MediaSSRC == ssrc {
				d.keyframeRequested()
			}
		case *rtcp.TransportLayerNack:
			if p.MediaSSRC == ssrc && d.up.kind == webrtc.RTPCodecTypeVideo {
				// One RTCP packet can name thousands of sequence numbers;
				// answer a bounded number so a client cannot make the SFU
				// amplify its traffic.
				budget := maxResendPerRTCP
				for _, pair := range p.Nacks {
					pair.Range(func(s uint16) bool {
						d.resend(s, scratch, pkt)
						budget--
						return budget > 0
					})
					if budget <= 0 {
						break
					}
				}
			}
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			d.sub.onREMB(p.Bitrate)
		case *rtcp.ReceiverReport:
			for _, r := range p.Reports {
				if r.SSRC == ssrc {
					d.onLoss(r.FractionLost)
				}
			}
		}
	}
}

func (d *downTrack) keyframeRequested() {
	d.mu.Lock()
	i := d.cur
	if i < 0 {
		i = d.target
	}
	d.mu.Unlock()
	if l := d.up.layer(i); l != nil {
		l.requestKeyframe()
	}
}

// resend retransmits outgoing packet out from the cache of the layer it
// came from.
func (d *downTrack) resend(out uint16, buf []byte, pkt *rtp.Packet) {
	m := d.sub.sfu.metrics
	m.nacks.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writer == nil || !d.started || int16(out-d.lastSeq) > 0 {
		return
	}
	var e *epoch
	for i := 0; i < min(d.epochN, epochHistory); i++ {
		c := &d.epochs[(d.epochN-1-i)%epochHistory]
		if int16(out-c.startOut) >= 0 {
			e = c
			break
		}
	}
	if e == nil || e.l.cache == nil {
		return
	}
	in := out - e.seqOff
	n := e.l.cache.Get(in, buf)
	if n == 0 || pkt.Unmarshal(buf[:n]) != nil || pkt.SequenceNumber != in {
		return
	}
	if d.write(pkt, out, pkt.Timestamp+e.tsOff, nil) {
		m.retransmits.Add(1)
		m.packetsOut.Add(1)
		m.bytesOut.Add(uint64(len(pkt.Payload)))
	}
}

// onLoss takes a receiver report's fraction lost (x/256): it is exported
// as a metric, and sustained loss lowers the simulcast layer this
// subscriber gets (screen shares have one layer, so they keep flowing).
func (d *downTrack) onLoss(fraction uint8) {
	m := d.sub.sfu.metrics
	m.loss.Observe(float64(fraction) / 256)
	if d.up.kind != webrtc.RTPCodecTypeVideo || !d.up.isSimulcast() {
		return
	}
	const second = int64(1e9)
	now := d.sub.sfu.now()
	changed := false
	d.mu.Lock()
	switch {
	case fraction > 25: // > 10%
		d.lossBad++
		if d.lossBad >= 2 && d.maxLayer > 0 && now-d.capAt > 2*second {
			d.maxLayer--
			d.capAt, d.lossBad, changed = now, 0, true
		}
	case fraction < 5: // < 2%
		d.lossBad = 0
		if d.maxLayer < maxLayers-1 && now-d.capAt > 10*second {
			d.maxLayer++
			d.capAt, changed = now, true
		}
	}
	d.mu.Unlock()
	if changed {
		d.refreshTarget(now)
	}
}
