package room

import (
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/media"
	"github.com/parley/parley/internal/signaling"
)

// Channel modes, as stored (store.Mode*); room does not import store.
const (
	ModeAuto = "auto"
	ModeSFU  = "sfu"
	ModeP2P  = "p2p"
)

// wantTopology is what the call should use now: the mesh for up to P2PMax
// participants, the SFU beyond or while a WHIP publisher (whose media only
// goes through the SFU) is in the call, unless the channel pins one (or
// the server has no SFU).
func (r *call) wantTopology() string {
	switch {
	case r.cfg.Media == nil || r.mode == ModeP2P:
		return signaling.TopologyMesh
	case r.mode == ModeSFU || len(r.participants) > r.cfg.P2PMax || len(r.ingests) > 0 || r.rec != nil || r.forceSFU || r.receiveOnly():
		return signaling.TopologySFU
	default:
		return signaling.TopologyMesh
	}
}

// updateTopology switches the call when the wanted topology changed, and
// makes sure every participant has its SFU connections while in SFU mode.
func (r *call) updateTopology() {
	want := r.wantTopology()
	if want != r.topology {
		r.log.Info("topology switch", "from", r.topology, "to", want, "participants", len(r.participants))
		r.topology = want
		if want == signaling.TopologyMesh {
			// Clients keep their SFU path until the mesh carries media:
			// keep the server side up for a grace period.
			until := time.Now().Add(retireGrace)
			for _, c := range r.participants {
				if peer := c.peer; peer != nil {
					c.setPeer(nil)
					r.retiring = append(r.retiring, retired{peer: peer, until: until})
				}
			}
		}
		r.broadcastJoined(signaling.Message{Type: signaling.TypeTopology, Topology: want})
	}
	if want == signaling.TopologySFU {
		for _, c := range r.participants {
			r.ensureMedia(c)
		}
	}
}

// ensureMedia gives a joined participant its SFU connections.
func (r *call) ensureMedia(c *socket) {
	if c.peer != nil {
		return
	}
	// The callbacks run on media goroutines: they only queue on the
	// socket (non-blocking) or hand the latest speaker over.
	peer, err := r.cfg.Media.Join(r.channelID, c.p.ID, media.RoomEvents{Speaker: r.setSpeaker}, media.PeerEvents{
		Offer: func(sdp string) {
			c.sendMsg(signaling.Message{Type: signaling.TypeOffer, From: signaling.SFU, PC: signaling.PCSubscribe, SDP: sdp})
		},
		Candidate: func(pc string, ci *webrtc.ICECandidateInit) {
			m := signaling.Message{Type: signaling.TypeCandidate, From: signaling.SFU, PC: pc}
			if ci == nil {
				m.EndOfICE = true
			} else {
				m.Candidate = &signaling.Candidate{Candidate: ci.Candidate, SDPMid: ci.SDPMid, SDPMLineIndex: ci.SDPMLineIndex, UsernameFragment: ci.UsernameFragment}
			}
			c.sendMsg(m)
		},
		State: func(pc string, s webrtc.PeerConnectionState) {
			c.log.Debug("sfu connection state", "pc", pc, "state", s.String())
		},
	})
	if err != nil {
		r.log.Error("sfu join", "participant_id", c.p.ID, "err", err)
		c.refuse(signaling.CodeInternal, signaling.TypeJoin, "the media server could not take you in; leave and join again")
		return
	}
	peer.SetSending(c.p.State.Audio, c.p.State.Video, c.p.State.Screen)
	c.setPeer(peer)
	// A peer whose connection failed (a network outage longer than the ICE
	// timeout) closes by itself; the room then gives the participant new
	// ones (mediaEnded).
	go func() {
		<-peer.Done()
		select {
		case r.mediaEnded <- endedMedia{c: c, peer: peer}:
		default: // the room is gone or swamped: nothing to restore
		}
	}()
}

// endedMedia is a participant's SFU peer that has closed.
type endedMedia struct {
	c    *socket
	peer MediaPeer
}

// restoreMedia replaces SFU connections that closed by themselves while
// the participant is still in an SFU call: the client is told to start its
// SFU connections afresh (sfu-restart) and gets a new server side. Peers
// the room closed on purpose (leave, the switch to the mesh) are no longer
// the participant's, and are ignored.
func (r *call) restoreMedia(e endedMedia) {
	if e.c.peer != e.peer || e.c.p == nil {
		return
	}
	e.c.setPeer(nil)
	if r.topology != signaling.TopologySFU {
		return
	}
	r.log.Info("sfu connections failed: starting them again", "participant_id", e.c.p.ID)
	// Before the new peer exists: its first offer must reach the client
	// after the client has dropped its old connections.
	e.c.sendMsg(signaling.Message{Type: signaling.TypeSFURestart})
	r.ensureMedia(e.c)
}

// dropMedia closes a participant's SFU connections, off the room goroutine
// (closing peer connections takes a while).
func (r *call) dropMedia(c *socket) {
	if peer := c.peer; peer != nil {
		c.setPeer(nil)
		go peer.Close()
	}
}

// reapRetired closes retired SFU connections whose grace is over (all of
// them when the room stops).
func (r *call) reapRetired(now time.Time, all bool) {
	kept := r.retiring[:0]
	for _, rt := range r.retiring {
		if all || now.After(rt.until) || r.topology == signaling.TopologySFU {
			go rt.peer.Close()
			continue
		}
		kept = append(kept, rt)
	}
	r.retiring = kept
}

func (r *call) stopMedia() {
	for c := range r.clients {
		r.dropMedia(c)
	}
	r.reapRetired(time.Now(), true)
}

// setSpeaker hands the latest active speaker to the room goroutine without
// ever blocking the media goroutine that calls it.
func (r *call) setSpeaker(id string) {
	for {
		select {
		case r.speaker <- id:
			return
		default:
		}
		select {
		case <-r.speaker: // drop the stale value
		default:
		}
	}
}
