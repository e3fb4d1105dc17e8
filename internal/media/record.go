package media

import (
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Recorder receives a room's published tracks while the room records
// (internal/recording implements it). SFU.Record hands it every track
// published at the time and every one published later, until stopped.
type Recorder interface {
	// Track is called once per published track (from a media goroutine;
	// it must not block for long). It returns where the track's packets
	// go, or nil to leave the track out.
	Track(t TrackInfo) TrackSink
}

// TrackInfo describes a published track to a Recorder.
type TrackInfo struct {
	Participant string // the publisher's participant id
	TrackID     string // the outgoing track id, PARTICIPANT:source
	Source      string // microphone, camera or screen
	Kind        string // "audio" or "video"
	MimeType    string // e.g. audio/opus, video/VP8
	ClockRate   uint32
	Channels    uint16
}

// TrackSink takes one track's packets. Only the recorded layer's packets
// reach it: the highest simulcast layer that is sending (the layer
// argument changes when that layer changes, and a keyframe has been
// requested for it).
type TrackSink interface {
	// WriteRTP is called on the forwarding goroutine: it must copy b and
	// return at once (queue, or drop and count), never block.
	WriteRTP(layer int, b []byte)
	// SenderReport is a publisher's RTCP sender report for the layer: the
	// RTP timestamp rtpTime was sampled at NTP time ntp.
	SenderReport(layer int, rtpTime uint32, ntp uint64)
	// Close ends the track's file: the track ended or recording stopped.
	// No call follows it.
	Close()
}

// recTap is a track's current sink and the layer it records.
type recTap struct {
	rec    Recorder
	sink   TrackSink
	layer  atomic.Int32 // -1 until the room's tick picked one
	closed atomic.Bool
}

// Record makes rec receive every track of roomID's call, now and until
// stop is called (stop closes every sink). A second Record of the same
// room replaces the first (whose sinks are closed).
func (s *SFU) Record(roomID string, rec Recorder) (stop func()) {
	s.mu.Lock()
	if s.recorders == nil {
		s.recorders = map[string]Recorder{}
	}
	old := s.recorders[roomID]
	s.recorders[roomID] = rec
	r := s.rooms[roomID]
	s.mu.Unlock()
	if old != nil && r != nil {
		for _, u := range r.snapshot() {
			u.untap()
		}
	}
	if r != nil {
		for _, u := range r.snapshot() {
			u.tap(rec)
		}
	}
	return func() {
		s.mu.Lock()
		if s.recorders[roomID] == rec {
			delete(s.recorders, roomID)
		}
		r := s.rooms[roomID]
		s.mu.Unlock()
		if r == nil {
			return
		}
		for _, u := range r.snapshot() {
			u.untapIf(rec)
		}
	}
}

// recorder is roomID's Recorder, if it records.
func (s *SFU) recorder(roomID string) Recorder {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recorders[roomID]
}

// tap starts giving u's packets to rec (if rec wants them).
func (u *upTrack) tap(rec Recorder) {
	if t := u.rec.Load(); t != nil && t.rec == rec {
		return // already recorded (each layer of a simulcast track arrives here)
	}
	kind := "audio"
	if u.kind == webrtc.RTPCodecTypeVideo {
		kind = "video"
	}
	sink := rec.Track(TrackInfo{
		Participant: u.pub.id, TrackID: u.trackID, Source: u.source, Kind: kind,
		MimeType: u.codec.MimeType, ClockRate: u.clock, Channels: u.codec.Channels,
	})
	if sink == nil {
		return
	}
	t := &recTap{rec: rec, sink: sink}
	t.layer.Store(int32(u.recordLayer(u.pub.sfu.now())))
	u.mu.Lock()
	cur := u.rec.Load()
	refuse := u.closed || (cur != nil && cur.rec == rec) // closed, or a concurrent tap won
	var old *recTap
	if !refuse {
		old = u.rec.Swap(t)
	}
	u.mu.Unlock()
	if refuse {
		sink.Close()
		return
	}
	if old != nil && old.closed.CompareAndSwap(false, true) {
		old.sink.Close()
	}
	if l := u.layer(int(t.layer.Load())); l != nil && u.kind == webrtc.RTPCodecTypeVideo {
		l.requestKeyframe()
	}
}

// untapIf stops recording u into rec, if it still does.
func (u *upTrack) untapIf(rec Recorder) {
	t := u.rec.Load()
	if t == nil || t.rec != rec || !u.rec.CompareAndSwap(t, nil) {
		return
	}
	if t.closed.CompareAndSwap(false, true) {
		t.sink.Close()
	}
}

// untap stops recording u and closes its sink.
func (u *upTrack) untap() {
	if t := u.rec.Swap(nil); t != nil && t.closed.CompareAndSwap(false, true) {
		t.sink.Close()
	}
}

// recordLayer is the layer to record: the highest one sending, else the
// highest one there (at the start nothing has been received yet).
func (u *upTrack) recordLayer(now int64) int {
	there := -1
	for i := maxLayers - 1; i >= 0; i-- {
		l := u.layers[i].Load()
		if l == nil || l.ended.Load() {
			continue
		}
		if l.active(now) {
			return i
		}
		if there < 0 {
			there = i
		}
	}
	if there < 0 {
		return 0
	}
	return there
}

// tickRecord moves the recording to the highest sending layer, asking it
// for a keyframe (the file cannot continue on the new layer without one).
func (u *upTrack) tickRecord(now int64) {
	t := u.rec.Load()
	if t == nil {
		return
	}
	want := int32(u.recordLayer(now))
	if t.layer.Load() == want {
		return
	}
	t.layer.Store(want)
	if l := u.layer(int(want)); l != nil {
		l.requestKeyframe()
	}
}

// recordRTP gives a forwarded packet to the recording, if l is the
// recorded layer. Forwarding path: no allocation, no blocking.
func (u *upTrack) recordRTP(l *layer, b []byte) {
	if t := u.rec.Load(); t != nil && t.layer.Load() == int32(l.idx) {
		t.sink.WriteRTP(l.idx, b)
	}
}

// recordRTCP hands the publisher's sender reports for l to the
// recording (they map RTP time to wall-clock time).
func (u *upTrack) recordRTCP(l *layer, b []byte) {
	t := u.rec.Load()
	if t == nil {
		return
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return
	}
	for _, p := range pkts {
		if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == l.ssrc {
			t.sink.SenderReport(l.idx, sr.RTPTime, sr.NTPTime)
		}
	}
}
