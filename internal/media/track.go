package media

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/packetcache"
)

// Sources a publisher's tracks come from (the values of Publish's sources).
const (
	sourceMicrophone = "microphone"
	sourceCamera     = "camera"
	sourceScreen     = "screen"
)

// maxLayers is the number of simulcast layers kept per track (q, h, f).
const maxLayers = 3

// ridIndex maps a simulcast RID to a layer index, smallest first. The
// protocol uses q/h/f; a few common alternatives are understood too.
func ridIndex(rid string) int {
	switch strings.ToLower(rid) {
	case "q", "l", "low", "0":
		return 0
	case "h", "m", "mid", "1":
		return 1
	case "f", "high", "2":
		return 2
	}
	return -1
}

// upTrack is one track a publisher sends: audio, or video with one or
// more simulcast layers. Its subscribers' downTracks live in subs, which
// the forwarding goroutines read without locking (copy on write).
type upTrack struct {
	pub      *Peer
	remoteID string // the publisher's MediaStreamTrack id
	kind     webrtc.RTPCodecType
	source   string // microphone, camera or screen
	tile     string // the layout source its video shows in: camera or screen
	codec    webrtc.RTPCodecCapability
	ck       codecKind
	clock    uint32
	trackID  string // outgoing track id: PUBLISHER:source
	streamID string // outgoing stream id: PUBLISHER:camera or PUBLISHER:screen

	layers [maxLayers]atomic.Pointer[layer]
	subs   atomic.Pointer[[]*downTrack]
	rec    atomic.Pointer[recTap] // the recording's sink while the room records (record.go)

	mu      sync.Mutex // guards changes to subs and the fields below
	closed  bool
	running int // layers whose reader is running

	// smoothed audio level, 0 (silence) ..127 (0 dBov), written by the
	// audio reader, read by the room's speaker detection
	level    atomic.Uint64 // float64 bits
	levelAt  atomic.Int64
	levelEMA float64
}

func newUpTrack(p *Peer, tr *webrtc.TrackRemote, source string, used map[string]bool) *upTrack {
	c := tr.Codec().RTPCodecCapability
	u := &upTrack{
		pub:      p,
		remoteID: tr.ID(),
		kind:     tr.Kind(),
		source:   source,
		codec:    c,
		ck:       kindOfCodec(c.MimeType),
		clock:    c.ClockRate,
	}
	if u.clock == 0 {
		u.clock = 90000
	}
	name := source
	if source == sourceScreen {
		u.tile = sourceScreen
		u.streamID = p.id + ":screen"
		if u.kind == webrtc.RTPCodecTypeAudio {
			name = "screen-audio"
		}
	} else {
		u.tile = sourceCamera
		u.streamID = p.id + ":camera"
	}
	u.trackID = p.id + ":" + name
	for i := 2; used[u.trackID]; i++ {
		u.trackID = fmt.Sprintf("%s:%s#%d", p.id, name, i)
	}
	empty := []*downTrack{}
	u.subs.Store(&empty)
	return u
}

// addLayer adds a received stream (a simulcast encoding, or the only one).
func (u *upTrack) addLayer(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) *layer {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil
	}
	idx := 0
	if tr.RID() != "" {
		idx = ridIndex(tr.RID())
		if idx < 0 || u.layers[idx].Load() != nil {
			idx = -1
			for i := range u.layers {
				if u.layers[i].Load() == nil {
					idx = i
					break
				}
			}
		}
	}
	if idx < 0 {
		return nil
	}
	if old := u.layers[idx].Load(); old != nil && !old.ended.Load() {
		return nil
	}
	l := &layer{up: u, idx: idx, rid: tr.RID(), track: tr, recv: recv, ssrc: uint32(tr.SSRC())}
	if u.kind == webrtc.RTPCodecTypeVideo {
		l.cache = &packetcache.Cache{}
	}
	for _, h := range recv.GetParameters().HeaderExtensions {
		if h.URI == sdp.AudioLevelURI {
			l.alID = uint8(h.ID)
		}
	}
	l.lastPLI.Store(math.MinInt64 / 2)
	l.lastPacket.Store(u.pub.sfu.now())
	u.layers[idx].Store(l)
	u.running++
	return l
}

// layerEnded marks a layer's stream as ended and reports whether it was
// the last one running.
func (u *upTrack) layerEnded(l *layer) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	l.ended.Store(true)
	u.running--
	return u.running == 0
}

func (u *upTrack) layer(i int) *layer {
	if i < 0 || i >= maxLayers {
		return nil
	}
	return u.layers[i].Load()
}

// subscribe creates q's downTrack for u; nil if u is closed.
func (u *upTrack) subscribe(q *Peer) *downTrack {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil
	}
	d := newDownTrack(u, q)
	old := *u.subs.Load()
	subs := make([]*downTrack, len(old), len(old)+1)
	copy(subs, old)
	subs = append(subs, d)
	u.subs.Store(&subs)
	u.pub.sfu.metrics.forwarded.Add(1)
	return d
}

// unsubscribe drops q's downTrack (q is leaving; its connection closes).
func (u *upTrack) unsubscribe(q *Peer) {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := *u.subs.Load()
	subs := make([]*downTrack, 0, len(old))
	for _, d := range old {
		if d.sub == q {
			d.markRemoved()
			continue
		}
		subs = append(subs, d)
	}
	u.subs.Store(&subs)
}

// close stops forwarding u and removes it from every subscriber.
func (u *upTrack) close() {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	u.closed = true
	subs := *u.subs.Load()
	empty := []*downTrack{}
	u.subs.Store(&empty)
	u.mu.Unlock()
	u.pub.sfu.metrics.published.Add(-1)
	u.untap()
	for _, d := range subs {
		d.markRemoved()
		d.sub.queueRemove(d)
	}
}

// requestKeyframeAll asks every layer for a keyframe (after an unmute).
func (u *upTrack) requestKeyframeAll() {
	for i := range u.layers {
		if l := u.layers[i].Load(); l != nil {
			l.requestKeyframe()
		}
	}
}

// observeLevel smooths the RFC 6464 level (0 = 0 dBov, 127 = silence).
func (u *upTrack) observeLevel(dBov byte, now int64) {
	loud := float64(127 - int(dBov&0x7f))
	u.levelEMA += (loud - u.levelEMA) * 0.15
	u.level.Store(math.Float64bits(u.levelEMA))
	u.levelAt.Store(now)
}

// tick is the room's periodic work for u: bitrates and layer choices.
func (u *upTrack) tick(now int64) {
	for i := range u.layers {
		l := u.layers[i].Load()
		if l == nil {
			continue
		}
		b := l.bytes.Load()
		if l.rateAt != 0 && now > l.rateAt {
			l.bitrate.Store(uint64(float64(b-l.rateBytes) * 8e9 / float64(now-l.rateAt)))
		}
		l.rateAt, l.rateBytes = now, b
	}
	u.tickRecord(now)
	if u.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	for _, d := range *u.subs.Load() {
		d.refreshTarget(now)
	}
}

// readRTP is the forwarding goroutine of one received stream.
func (u *upTrack) readRTP(l *layer) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	fails := 0
	for {
		n, _, err := l.track.Read(buf)
		if err != nil {
			if u.pub.isClosed() || isClosedErr(err) {
				return
			}
			// A packet pion could not make sense of (too short, unknown
			// payload type): count it and go on.
			u.pub.sfu.metrics.drop(dropMalformedRTP)
			if fails++; fails > 10000 {
				u.pub.log.Warn("giving up on a track that only errors", "track", u.trackID, "err", err)
				return
			}
			continue
		}
		fails = 0
		u.handleRTP(l, buf[:n], &pkt)
	}
}

// readRTCP drains the publisher's RTCP for one stream; reading runs the
// interceptors (receiver reports need the sender reports).
func (u *upTrack) readRTCP(l *layer) {
	buf := make([]byte, 1500)
	fails := 0
	for {
		var err error
		var n int
		if l.rid != "" {
			n, _, err = l.recv.ReadSimulcast(buf, l.rid)
		} else {
			n, _, err = l.recv.Read(buf)
		}
		if err != nil {
			if u.pub.isClosed() || l.ended.Load() || isClosedErr(err) {
				return
			}
			u.pub.sfu.metrics.drop(dropMalformedRTCP)
			if fails++; fails > 100 {
				return
			}
			continue
		}
		fails = 0
		u.recordRTCP(l, buf[:n])
	}
}

func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed)
}

// handleRTP forwards one received packet to every subscriber. It is the
// hot path: no allocation, one lock per subscriber, writes inline.
func (u *upTrack) handleRTP(l *layer, b []byte, pkt *rtp.Packet) {
	m := u.pub.sfu.metrics
	if err := pkt.Unmarshal(b); err != nil || pkt.Version != 2 {
		m.drop(dropMalformedRTP)
		return
	}
	m.packetsIn.Add(1)
	m.bytesIn.Add(uint64(len(b)))
	now := u.pub.sfu.now()
	l.lastPacket.Store(now)
	l.bytes.Add(uint64(len(b)))

	var level []byte
	kf := false
	if u.kind == webrtc.RTPCodecTypeAudio {
		if l.alID != 0 {
			if e := pkt.GetExtension(l.alID); len(e) > 0 {
				level = e[:1]
				u.observeLevel(e[0], now)
			}
		}
	} else {
		var w, h int
		kf, w, h = keyframeStart(u.ck, pkt.Payload)
		if kf && w > 0 && h > 0 {
			l.width.Store(int32(w))
			l.height.Store(int32(h))
		}
		l.cache.Store(pkt.SequenceNumber, b)
	}
	if !u.pub.sending(u.source) {
		m.drop(dropMuted)
		return
	}
	u.recordRTP(l, b)
	var n, bytes uint64
	for _, d := range *u.subs.Load() {
		if d.forward(l, pkt, kf, level, now) {
			n++
			bytes += uint64(len(pkt.Payload))
		}
	}
	if n > 0 {
		m.packetsOut.Add(n)
		m.bytesOut.Add(bytes)
	}
}

// layer is one received RTP stream of an upTrack.
type layer struct {
	up    *upTrack
	idx   int
	rid   string
	track *webrtc.TrackRemote
	recv  *webrtc.RTPReceiver
	ssrc  uint32
	alID  uint8              // audio level extension id on the publisher's connection
	cache *packetcache.Cache // video only

	ended      atomic.Bool
	lastPLI    atomic.Int64
	lastPacket atomic.Int64
	width      atomic.Int32 // from the last keyframe header (VP8), 0 if unknown
	height     atomic.Int32
	bytes      atomic.Uint64
	bitrate    atomic.Uint64 // bits per second, updated by the room

	rateAt    int64 // room goroutine only
	rateBytes uint64
}

// active reports whether the layer is sending.
func (l *layer) active(now int64) bool {
	return l != nil && !l.ended.Load() && now-l.lastPacket.Load() < int64(l.up.pub.sfu.cfg.LayerTimeout)
}

// size is the layer's frame size: from its keyframes, else derived from
// another layer's (each layer is half the next one), else a guess.
func (l *layer) size() (int, int) {
	if w, h := l.width.Load(), l.height.Load(); w > 0 && h > 0 {
		return int(w), int(h)
	}
	for i := range l.up.layers {
		o := l.up.layers[i].Load()
		if o == nil || o == l {
			continue
		}
		if w, h := o.width.Load(), o.height.Load(); w > 0 && h > 0 {
			shift := l.idx - i
			if shift > 0 {
				return int(w) << shift, int(h) << shift
			}
			return int(w) >> -shift, int(h) >> -shift
		}
	}
	if !l.up.isSimulcast() {
		return 1280, 720
	}
	return 320 << l.idx, 180 << l.idx
}

func (u *upTrack) isSimulcast() bool {
	for i := range u.layers {
		if l := u.layers[i].Load(); l != nil && l.rid != "" {
			return true
		}
	}
	return false
}

// requestKeyframe sends a PLI for this layer to the publisher, at most one
// per Config.PLIInterval.
func (l *layer) requestKeyframe() {
	s := l.up.pub.sfu
	now := s.now()
	last := l.lastPLI.Load()
	if now-last < int64(s.cfg.PLIInterval) || !l.lastPLI.CompareAndSwap(last, now) {
		return
	}
	s.metrics.plis.Add(1)
	err := l.up.pub.pubPC.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: l.ssrc}})
	if err != nil && !isClosedErr(err) {
		l.up.pub.log.Debug("pli", "err", err)
	}
}
