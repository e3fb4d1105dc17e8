package media

import (
	"math"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// sfuRoom is one room's media: its peers and the tracks they publish.
type sfuRoom struct {
	sfu    *SFU
	id     string
	events RoomEvents
	done   chan struct{} // closed when the room is removed

	mu      sync.Mutex
	peers   map[string]*Peer
	viewers map[*Peer]struct{} // WHEP viewers (whep.go)
	ups     []*upTrack         // published, not closed
	closed  bool
	// speakerNow is the speaker last reported, for View; run owns speaker.
	speakerNow string

	// owned by run
	speaker      string
	candidate    string
	candTicks    int
	silenceTicks int
}

func newRoom(s *SFU, id string, ev RoomEvents) *sfuRoom {
	return &sfuRoom{sfu: s, id: id, events: ev, done: make(chan struct{}), peers: map[string]*Peer{},
		viewers: map[*Peer]struct{}{}}
}

// addPeer adds p and subscribes it to every published track. A peer
// already there under the same id is detached and returned, for the
// caller to close: the newer Join wins (a client that reconnected, or a
// room switching back to the SFU before the old connections closed).
func (r *sfuRoom) addPeer(p *Peer) (*Peer, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	old := r.peers[p.id]
	var oldUps []*upTrack
	if old != nil {
		oldUps = r.detachLocked(old)
	}
	r.peers[p.id] = p
	for _, u := range r.ups {
		if !p.subscribes() { // a WHIP publisher gets nothing
			break
		}
		if d := u.subscribe(p); d != nil {
			p.queueAdd(d)
		}
	}
	r.mu.Unlock()
	for _, u := range oldUps {
		u.close()
	}
	return old, nil
}

// removePeer takes p out of the room: its tracks are unpublished (every
// subscriber renegotiates) and its subscriptions dropped.
func (r *sfuRoom) removePeer(p *Peer) {
	r.mu.Lock()
	mine := r.detachLocked(p)
	empty := len(r.peers) == 0
	r.mu.Unlock()
	for _, u := range mine {
		u.close()
	}
	if empty {
		r.sfu.removeRoomIfEmpty(r)
	}
}

// detachLocked removes p from the room's peers (if it is the one there),
// takes its tracks off the published list and drops its subscriptions. It
// returns p's tracks, to be closed once r.mu is released.
func (r *sfuRoom) detachLocked(p *Peer) []*upTrack {
	if r.peers[p.id] == p {
		delete(r.peers, p.id)
	}
	var mine []*upTrack
	others := r.ups[:0:0]
	for _, u := range r.ups {
		if u.pub == p {
			mine = append(mine, u)
		} else {
			others = append(others, u)
			u.unsubscribe(p)
		}
	}
	r.ups = others
	return mine
}

// attach finds or creates the published track a received stream belongs
// to (the layers of one simulcast track share the track id) and adds the
// stream as a layer. It returns nil if p has left.
func (r *sfuRoom) attach(p *Peer, tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) (*upTrack, *layer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.peers[p.id] != p {
		return nil, nil
	}
	var u *upTrack
	hasCamera := false
	for _, x := range r.ups {
		if x.pub != p {
			continue
		}
		if x.remoteID == tr.ID() && x.kind == tr.Kind() {
			u = x
		}
		if x.source == sourceCamera && x.kind == webrtc.RTPCodecTypeVideo {
			hasCamera = true
		}
	}
	isNew := u == nil
	if isNew {
		u = newUpTrack(p, tr, p.sourceOf(tr, hasCamera), r.usedTrackIDs(p))
	}
	l := u.addLayer(tr, recv)
	if l == nil {
		return u, nil
	}
	if isNew {
		r.ups = append(r.ups, u)
		r.sfu.metrics.published.Add(1)
		p.log.Debug("track published", "track", u.trackID, "kind", u.kind, "codec", u.codec.MimeType)
		for _, q := range r.peers {
			if q == p || !q.subscribes() {
				continue
			}
			if d := u.subscribe(q); d != nil {
				q.queueAdd(d)
			}
		}
	}
	return u, l
}

// usedTrackIDs lists the outgoing track ids p's tracks already use, so a
// second track of the same source gets a distinct one.
func (r *sfuRoom) usedTrackIDs(p *Peer) map[string]bool {
	m := map[string]bool{}
	for _, u := range r.ups {
		if u.pub == p {
			m[u.trackID] = true
		}
	}
	return m
}

// unpublish removes a track whose streams all ended.
func (r *sfuRoom) unpublish(u *upTrack) {
	r.mu.Lock()
	for i, x := range r.ups {
		if x == u {
			r.ups = append(r.ups[:i:i], r.ups[i+1:]...)
			break
		}
	}
	r.mu.Unlock()
	u.close()
}

// peerList lists the room's peers and viewers.
func (r *sfuRoom) peerList() []*Peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	peers := make([]*Peer, 0, len(r.peers)+len(r.viewers))
	for _, p := range r.peers {
		peers = append(peers, p)
	}
	for p := range r.viewers {
		peers = append(peers, p)
	}
	return peers
}

func (r *sfuRoom) snapshot() []*upTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*upTrack(nil), r.ups...)
}

// run does the room's periodic work: active speaker, simulcast layer
// choice when layers start or stop, keyframe re-requests, bitrates.
func (r *sfuRoom) run() {
	defer r.sfu.wg.Done()
	t := time.NewTicker(r.sfu.cfg.SpeakerInterval)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
			ups := r.snapshot()
			now := r.sfu.now()
			r.updateSpeaker(ups, now)
			for _, u := range ups {
				u.tick(now)
			}
			for _, p := range r.peerList() {
				p.balanceBandwidth(now)
			}
		}
	}
}

// updateSpeaker picks the loudest participant above the threshold, with
// hysteresis: a new speaker must be clearly louder than the current one
// (or the current one silent) for two evaluations in a row, and silence is
// only reported after a second.
func (r *sfuRoom) updateSpeaker(ups []*upTrack, now int64) {
	const (
		marginDB     = 6.0
		holdTicks    = 2
		silenceAfter = time.Second
	)
	threshold := float64(127 - r.sfu.cfg.SpeakerThreshold)
	stale := int64(600 * time.Millisecond)
	loud := map[string]float64{}
	for _, u := range ups {
		if u.kind != webrtc.RTPCodecTypeAudio || u.source != sourceMicrophone || !u.pub.sending(sourceMicrophone) {
			continue
		}
		if now-u.levelAt.Load() > stale {
			continue
		}
		v := math.Float64frombits(u.level.Load())
		if v > loud[u.pub.id] {
			loud[u.pub.id] = v
		}
	}
	best, bestV := "", threshold
	for id, v := range loud {
		if v > bestV || (v == bestV && best != "" && id < best) {
			best, bestV = id, v
		}
	}
	next := r.speaker
	switch {
	case best == "":
		r.candidate, r.candTicks = "", 0
		r.silenceTicks++
		if time.Duration(r.silenceTicks)*r.sfu.cfg.SpeakerInterval >= silenceAfter {
			next = ""
		}
	case best == r.speaker:
		r.candidate, r.candTicks, r.silenceTicks = "", 0, 0
	default:
		r.silenceTicks = 0
		cur, curLoud := loud[r.speaker]
		if r.speaker != "" && curLoud && cur >= threshold && bestV < cur+marginDB {
			r.candidate, r.candTicks = "", 0
			break
		}
		if r.candidate == best {
			r.candTicks++
		} else {
			r.candidate, r.candTicks = best, 1
		}
		if r.candTicks >= holdTicks || r.speaker == "" {
			next = best
			r.candidate, r.candTicks = "", 0
		}
	}
	if next != r.speaker {
		r.speaker = next
		r.mu.Lock()
		r.speakerNow = next
		r.mu.Unlock()
		if r.events.Speaker != nil {
			r.events.Speaker(next)
		}
	}
}
