package recording

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/parley/parley/internal/media"
)

// item is one queued packet or sender report. Items are preallocated per
// file and recycled, so queueing allocates nothing.
type item struct {
	kind    uint8 // itemRTP, itemSR, itemEnd
	layer   int8
	n       int
	at      int64 // arrival, Unix nanoseconds
	rtpTime uint32
	buf     [1500]byte
}

const (
	itemRTP = iota
	itemSR
	itemEnd
)

// layerClock maps one layer's RTP time to wall-clock time.
type layerClock struct {
	ok     bool
	fromSR bool // set from a sender report, not a packet's arrival
	ts     uint32
	at     int64 // Unix nanoseconds
}

func (c *layerClock) wall(ts uint32, clock uint32) int64 {
	return c.at + int64(int32(ts-c.ts))*1e9/int64(clock)
}

// trackWriter records one track into one file: a media.TrackSink.
type trackWriter struct {
	ss    *Session
	path  string
	info  media.TrackInfo
	idx   int // in the manifest's Files
	now   func() time.Time
	clock uint32
	video bool
	vp9   bool
	h264  bool // AVC frames in a Matroska file; it opens at a keyframe with SPS and PPS

	free, queue chan *item
	dropped     atomic.Uint64
	closeOnce   sync.Once
	done        chan struct{}

	// owned by the writing goroutine
	f        *countingFile
	ogg      *oggwriter.OggWriter
	wm       webm.BlockWriteCloser
	sb       *samplebuilder.SampleBuilder
	layer    int
	waitKey  bool
	clocks   [3]layerClock
	started  bool  // first frame written
	start    int64 // wall time of the first frame
	startTS  uint32
	startL   int
	srSynced bool
	lastMS   int64
	packets  uint64
	switches int
	broken   bool // a write failed: the rest is discarded
}

func newTrackWriter(ss *Session, path string, t media.TrackInfo) (*trackWriter, error) {
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("recording: create %s: %w", path, err)
	}
	n := ss.svc.cfg.QueuePackets
	w := &trackWriter{
		ss: ss, path: path, info: t, clock: t.ClockRate,
		video: t.Kind == "video", vp9: strings.EqualFold(t.MimeType, "video/vp9"),
		h264: strings.EqualFold(t.MimeType, "video/h264"),
		free: make(chan *item, n), queue: make(chan *item, n+1), done: make(chan struct{}),
		f: &countingFile{f: fh, svc: ss.svc}, layer: -1, now: ss.svc.cfg.Now,
	}
	if w.clock == 0 {
		w.clock = 90000
	}
	for range n {
		w.free <- &item{}
	}
	if !w.video {
		ch := t.Channels
		if ch == 0 {
			ch = 2
		}
		// Pion's writer computes granule positions from RTP timestamps,
		// so silence (DTX, mute) keeps its length.
		if w.ogg, err = oggwriter.NewWith(w.f, 48000, ch); err != nil {
			fh.Close()
			return nil, fmt.Errorf("recording: ogg: %w", err)
		}
	}
	go w.run()
	return w, nil
}

// WriteRTP queues a copy of b (forwarding goroutine: never blocks, no
// allocation). Without a free buffer the packet is dropped and counted.
func (w *trackWriter) WriteRTP(layer int, b []byte) {
	if len(b) > len(item{}.buf) {
		w.dropped.Add(1)
		return
	}
	select {
	case it := <-w.free:
		it.kind, it.layer, it.n, it.at = itemRTP, int8(layer), copy(it.buf[:], b), w.now().UnixNano()
		w.queue <- it // room for every item: never blocks
	default:
		w.dropped.Add(1)
	}
}

// SenderReport queues a sender report (its NTP time is not used: the
// arrival time is, so participants with skewed clocks still line up).
func (w *trackWriter) SenderReport(layer int, rtpTime uint32, _ uint64) {
	select {
	case it := <-w.free:
		it.kind, it.layer, it.rtpTime, it.at = itemSR, int8(layer), rtpTime, w.now().UnixNano()
		w.queue <- it
	default:
	}
}

// Close ends the file once what is queued is written.
func (w *trackWriter) Close() {
	w.closeOnce.Do(func() { w.queue <- &item{kind: itemEnd} })
}

// pollInterval is how often the writer looks at its queue when it found
// it empty. The writer never waits on the channel: a send to a goroutine
// parked on it would wake that goroutine, a system call on the
// forwarding path for every packet; a send into the buffer of a channel
// nobody waits on is only a copy.
const pollInterval = 10 * time.Millisecond

func (w *trackWriter) run() {
	defer close(w.done)
	for {
		var it *item
		select {
		case it = <-w.queue:
		default:
			time.Sleep(pollInterval)
			continue
		}
		switch it.kind {
		case itemEnd:
			w.finish()
			return
		case itemSR:
			w.senderReport(int(it.layer), it.rtpTime, it.at)
		case itemRTP:
			if !w.broken {
				w.packet(it)
			}
		}
		w.free <- it
	}
}

func (w *trackWriter) senderReport(layer int, rtpTime uint32, at int64) {
	if layer < 0 || layer >= len(w.clocks) {
		return
	}
	c := &w.clocks[layer]
	if !c.ok {
		*c = layerClock{ok: true, fromSR: true, ts: rtpTime, at: at}
	}
	if w.started && !w.srSynced && layer == w.startL {
		// The file's first frame placed on the timeline by the sender's
		// own clock, not by when its packet happened to arrive.
		w.srSynced = true
		start := at + int64(int32(w.startTS-rtpTime))*1e9/int64(w.clock)
		w.ss.fileDone(w, func(f *File) {
			f.StartMS = (start - w.ss.m.StartedAt.UnixNano()) / 1e6
			f.Sync = "sender-report"
		})
	}
}

func (w *trackWriter) packet(it *item) {
	var p rtp.Packet
	if err := p.Unmarshal(it.buf[:it.n]); err != nil {
		return
	}
	w.packets++
	l := int(it.layer)
	if l < 0 || l >= len(w.clocks) {
		return
	}
	if c := &w.clocks[l]; !c.ok {
		*c = layerClock{ok: true, ts: p.Timestamp, at: it.at}
	}
	if !w.video {
		if !w.started {
			w.begin(l, p.Timestamp)
		}
		w.lastMS = (w.clocks[l].wall(p.Timestamp, w.clock) - w.start) / 1e6
		if err := w.ogg.WriteRTP(&p); err != nil {
			w.writeFailed(err)
		} else if err := w.f.failed(); err != nil {
			w.writeFailed(err)
		}
		return
	}
	if l != w.layer {
		if w.layer >= 0 {
			w.switches++
		}
		w.layer, w.waitKey = l, true
		var dp rtp.Depacketizer = &codecs.VP8Packet{}
		if w.vp9 {
			dp = &codecs.VP9Packet{}
		} else if w.h264 {
			// Length-prefixed NAL units (AVC form), as Matroska stores
			// them; STAP-A and FU-A are unpacked.
			dp = &codecs.H264Packet{IsAVC: true}
		}
		w.sb = samplebuilder.New(128, dp, w.clock)
	}
	// The sample builder keeps the packet: give it its own payload.
	p.Payload = append([]byte(nil), p.Payload...)
	w.sb.Push(&p)
	for s := w.sb.Pop(); s != nil; s = w.sb.Pop() {
		w.frame(l, s.Data, s.PacketTimestamp)
	}
}

func (w *trackWriter) begin(l int, ts uint32) {
	w.started, w.startL, w.startTS = true, l, ts
	w.start = w.clocks[l].wall(ts, w.clock)
	w.srSynced = w.clocks[l].fromSR
	sync := "arrival"
	if w.srSynced {
		sync = "sender-report"
	}
	w.ss.fileDone(w, func(f *File) {
		f.StartMS = (w.start - w.ss.m.StartedAt.UnixNano()) / 1e6
		f.Sync = sync
	})
}

func (w *trackWriter) frame(l int, data []byte, ts uint32) {
	var kf bool
	var width, height int
	var sps, pps []byte
	if w.h264 {
		kf, sps, pps = h264Frame(data)
	} else {
		kf, width, height = keyframe(w.vp9, data)
	}
	if w.waitKey {
		if !kf {
			return // a new layer can only start at a keyframe
		}
		w.waitKey = false
	}
	if w.wm == nil {
		if !kf {
			return
		}
		te := webm.TrackEntry{Name: "Video", TrackNumber: 1, TrackUID: 1, CodecID: "V_VP8", TrackType: 1}
		switch {
		case w.vp9:
			te.CodecID = "V_VP9"
		case w.h264:
			// The decoder's configuration goes in the header, so the
			// file can only open at a keyframe that carries it.
			if sps == nil || pps == nil {
				return
			}
			width, height = spsSize(sps)
			te.CodecID, te.CodecPrivate = "V_MPEG4/ISO/AVC", avcConfig(sps, pps)
		}
		te.Video = &webm.Video{PixelWidth: uint64(width), PixelHeight: uint64(height)}
		ws, err := newWebM(w.f, te, w.ss.log)
		if err != nil {
			w.writeFailed(err)
			return
		}
		w.wm = ws
		w.begin(l, ts)
	}
	ms := (w.clocks[l].wall(ts, w.clock) - w.start) / 1e6
	if ms < w.lastMS {
		ms = w.lastMS // a layer switch must not step back in time
	}
	w.lastMS = ms
	w.wm.Write(kf, ms, data)
	if err := w.f.failed(); err != nil {
		w.writeFailed(err)
	}
}

// cuesSpace is the room kept at the start of a WebM file for its cues
// (the seek index, one entry per cluster of at most 32 s, about 20 bytes
// each): enough for days.
const cuesSpace = 32 << 10

// newWebM starts a WebM file with one track, written as it goes (a
// segment of unknown size: a file cut short still plays); Close fills
// in the duration and the cues, so players can seek. w never returns
// errors to the writer (the library stops for good on one, and blocks
// its callers): the caller checks w.failed.
func newWebM(w *countingFile, te webm.TrackEntry, log *slog.Logger) (webm.BlockWriteCloser, error) {
	// A segment info of its own: the library's default is one shared
	// value, which it writes the duration into (a data race between
	// files). One track needs no block sorter (the default is shared too).
	info := &webm.Info{TimecodeScale: 1000000, MuxingApp: "parley", WritingApp: "parley"}
	// WebM allows only VP8/VP9 (and audio codecs we do not put here):
	// anything else is plain Matroska.
	header := *webm.DefaultEBMLHeader
	if te.CodecID != "V_VP8" && te.CodecID != "V_VP9" {
		header.DocType = "matroska"
	}
	ws, err := webm.NewSimpleBlockWriter(w, []webm.TrackEntry{te},
		mkvcore.WithEBMLHeader(&header), mkvcore.WithSegmentInfo(info), mkvcore.WithBlockInterceptor(nil),
		mkvcore.WithSeekHead(true), mkvcore.WithCues(cuesSpace),
		mkvcore.WithOnFatalHandler(func(err error) { log.Error("webm writer", "err", err) }),
		mkvcore.WithOnErrorHandler(func(err error) { log.Debug("webm writer", "err", err) }))
	if err != nil {
		return nil, err
	}
	return ws[0], nil
}

func (w *trackWriter) writeFailed(err error) {
	w.broken = true
	switch {
	case errors.Is(err, ErrQuota):
		w.ss.fail(ErrQuota)
	case errors.Is(err, syscall.ENOSPC):
		w.ss.fail(ErrDiskFull)
	default:
		w.ss.fail(fmt.Errorf("recording: write %s: %w", w.path, err))
	}
}

func (w *trackWriter) finish() {
	if w.sb != nil && !w.broken {
		// The last frame waits in the sample builder for a packet of
		// the next one, which will not come.
		w.sb.Flush()
		for s := w.sb.Pop(); s != nil; s = w.sb.Pop() {
			w.frame(w.layer, s.Data, s.PacketTimestamp)
		}
	}
	var err error
	switch {
	case w.wm != nil:
		err = w.wm.Close() // writes the duration and closes the file
	case w.ogg != nil:
		err = w.ogg.Close()
		w.f.Close()
	default:
		w.f.Close()
	}
	if err != nil && !w.broken {
		w.ss.log.Warn("finalise", "file", w.path, "err", err)
	}
	if !w.started {
		w.ss.dropEmpty(w)
		return
	}
	dur := w.lastMS
	if !w.video {
		dur += 20 // the last Opus frame's own length
	}
	w.ss.fileDone(w, func(f *File) {
		f.DurationMS = dur
		f.Packets = w.packets
		f.Dropped = w.dropped.Load()
		f.Bytes = w.f.n
		f.LayerSwitches = w.switches
	})
}

// countingFile counts what is written (the quota) and lets the WebM
// writer go back to fill in the duration and cues. After the first
// failed write (disk full, quota) it discards everything and says it
// succeeded, keeping the error for failed: the writers on top of it
// then finish normally, and the file keeps what it had.
type countingFile struct {
	f      *os.File
	svc    *Service
	n      int64 // bytes written; read by the owner after Close
	closed bool
	mu     sync.Mutex
	err    error
}

func (c *countingFile) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *countingFile) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
}

func (c *countingFile) Write(b []byte) (int, error) {
	if c.failed() != nil {
		return len(b), nil
	}
	if !c.svc.addBytes(int64(len(b))) {
		c.svc.addBytes(-int64(len(b)))
		c.fail(ErrQuota)
		return len(b), nil
	}
	n, err := c.f.Write(b)
	c.n += int64(n)
	c.svc.addBytes(int64(n - len(b)))
	if err != nil {
		c.fail(err)
	}
	return len(b), nil
}

func (c *countingFile) WriteAt(b []byte, off int64) (int, error) {
	if _, err := c.f.WriteAt(b, off); err != nil {
		c.fail(err)
	}
	return len(b), nil
}

func (c *countingFile) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	return c.f.Close()
}

// keyframe reports whether a VP8/VP9 frame is a keyframe, and its size
// when the header says.
func keyframe(vp9 bool, d []byte) (bool, int, int) {
	if !vp9 {
		if len(d) < 10 || d[0]&1 != 0 {
			return false, 0, 0
		}
		if d[3] != 0x9d || d[4] != 0x01 || d[5] != 0x2a {
			return false, 0, 0
		}
		return true, int(uint16(d[6])|uint16(d[7])<<8) & 0x3fff, int(uint16(d[8])|uint16(d[9])<<8) & 0x3fff
	}
	return vp9Keyframe(d)
}

// vp9Keyframe reads a VP9 uncompressed header (VP9 bitstream spec 6.2).
func vp9Keyframe(d []byte) (bool, int, int) {
	r := bitReader{b: d}
	if r.bits(2) != 2 { // frame_marker
		return false, 0, 0
	}
	profile := r.bits(1) | r.bits(1)<<1
	if profile == 3 {
		r.bits(1)
	}
	if r.bits(1) == 1 { // show_existing_frame
		return false, 0, 0
	}
	if r.bits(1) != 0 { // frame_type: 0 = key frame
		return false, 0, 0
	}
	r.bits(2) // show_frame, error_resilient_mode
	if r.bits(24) != 0x498342 {
		return false, 0, 0
	}
	if profile >= 2 {
		r.bits(1) // ten_or_twelve_bit
	}
	if cs := r.bits(3); cs != 7 { // color_space != CS_RGB
		r.bits(1) // color_range
		if profile == 1 || profile == 3 {
			r.bits(3)
		}
	} else if profile == 1 || profile == 3 {
		r.bits(1)
	}
	w, h := r.bits(16)+1, r.bits(16)+1
	if r.over {
		return true, 0, 0
	}
	return true, int(w), int(h)
}

type bitReader struct {
	b    []byte
	pos  int
	over bool
}

func (r *bitReader) bits(n int) uint32 {
	var v uint32
	for range n {
		if r.pos/8 >= len(r.b) {
			r.over = true
			return 0
		}
		v = v<<1 | uint32(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}
