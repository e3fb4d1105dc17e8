package client

import (
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/signaling"
)

// meshPeer is the connection to one other participant in a mesh call,
// negotiated with the "perfect negotiation" pattern of docs/protocol.md.
// All its fields are owned by the client's run goroutine.
type meshPeer struct {
	c           *Client
	id          string
	pc          *webrtc.PeerConnection
	polite      bool // our id sorts lower
	makingOffer bool
	offered     bool // an offer was sent or received: no fallback offer needed
	closed      bool
	pending     []webrtc.ICECandidateInit // candidates before the remote description
	firstStream string                    // the peer's camera stream id
	started     time.Time                 // of the connection or its last ICE restart
	restart     *time.Timer               // pending ICE restart while failed
	goneTimer   *time.Timer               // closes it if its peer does not come back
}

// iceRestartEvery is how often a failed connection tries ICE again with
// fresh credentials (and the server's current TURN credentials), until it
// connects or the peer leaves: a network outage heals by itself.
const iceRestartEvery = 5 * time.Second

// scheduleRestart arranges an ICE restart (owner goroutine). The
// impolite side restarts first; the polite one only if no restart offer
// came for a while. Both at once would collide, and pion cannot roll back
// an offer: the polite side would have to start a fresh connection, whose
// new DTLS session the other's restarted one would never handshake.
func (p *meshPeer) scheduleRestart() {
	if p.restart != nil || p.closed {
		return
	}
	wait := time.Second
	if p.polite {
		wait = 3 * iceRestartEvery
	}
	p.restart = time.AfterFunc(wait, func() { p.c.queue(p.restartICE) })
}

// restartICE offers with new ICE credentials; both sides may do so at
// once, which perfect negotiation settles like any offer collision.
func (p *meshPeer) restartICE() {
	p.restart = nil
	if p.closed || p.pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
		return
	}
	defer func() { // again, until it connects
		wait := iceRestartEvery
		if p.polite {
			wait = 3 * iceRestartEvery
		}
		p.restart = time.AfterFunc(wait, func() { p.c.queue(p.restartICE) })
	}()
	if p.pc.SignalingState() != webrtc.SignalingStateStable {
		return // an exchange is under way; try after it
	}
	p.c.event("connection with %s: restarting ICE", p.c.names[p.id])
	p.started = time.Now()
	p.makingOffer, p.offered = true, true
	defer func() { p.makingOffer = false }()
	offer, err := p.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err == nil {
		err = p.pc.SetLocalDescription(offer)
	}
	if err != nil {
		p.c.log.Warn("ICE restart offer", "peer", p.id, "err", err)
		return
	}
	p.c.send(signaling.Message{Type: signaling.TypeOffer, To: p.id, SDP: p.pc.LocalDescription().SDP})
}

// waitForOffer is how long an existing participant waits for the
// newcomer's offer before offering itself (as the page does).
const waitForOffer = 2500 * time.Millisecond

// meshPeerFor returns the connection to id, making it if needed; offer
// makes the first offer now, else one follows only if the peer has not
// offered within waitForOffer.
func (c *Client) meshPeerFor(id string, offer bool) *meshPeer {
	if p := c.mesh[id]; p != nil {
		return p
	}
	pc, err := c.newPC()
	if err != nil {
		c.log.Error("mesh connection", "peer", id, "err", err)
		return nil
	}
	p := &meshPeer{c: c, id: id, pc: pc, polite: c.myID < id, started: time.Now()}
	c.mesh[id] = p
	if err := c.addLocalTracks(pc, webrtc.RTPTransceiverDirectionSendrecv); err != nil {
		c.log.Error("mesh tracks", "peer", id, "err", err)
	}
	// Receive whatever the browser sends, even if we send nothing.
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if (k == webrtc.RTPCodecTypeAudio && c.audio == nil) || (k == webrtc.RTPCodecTypeVideo && c.video == nil) {
			if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				c.log.Warn("mesh receive transceiver", "err", err)
			}
		}
	}
	pc.OnICECandidate(func(ci *webrtc.ICECandidate) {
		m := signaling.Message{Type: signaling.TypeCandidate, To: id}
		if ci == nil {
			m.EndOfICE = true
		} else {
			m.Candidate = fromInit(ci.ToJSON())
		}
		c.queue(func() { c.send(m) })
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		// The peer's first stream is its camera stream; others are screens.
		// Tracks arrive on goroutines of their own: decide on the owner's.
		source := signaling.SourceScreen
		c.onOwner(func() {
			if p.firstStream == "" || p.firstStream == tr.StreamID() {
				p.firstStream = tr.StreamID()
				source = signaling.SourceCamera
				if tr.Kind() == webrtc.RTPCodecTypeAudio {
					source = signaling.SourceMicrophone
				}
			}
		})
		c.onTrack(id, source, tr)
	})
	// No OnNegotiationNeeded: the client's tracks are fixed from the start,
	// so it only ever makes the first offer of a pair (and answers the
	// browser's renegotiations).
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		at := time.Now()
		c.queue(func() {
			if p.closed {
				return
			}
			switch s {
			case webrtc.PeerConnectionStateConnected:
				c.event("connection with %s: connected in %.1f s", c.names[id], at.Sub(p.started).Seconds())
			case webrtc.PeerConnectionStateFailed:
				c.event("connection with %s: failed: %s", c.names[id], c.failureHint())
				p.scheduleRestart()
			default:
				c.event("connection with %s: %s", c.names[id], s)
			}
		})
	})
	if offer {
		p.negotiate()
	} else {
		time.AfterFunc(waitForOffer, func() {
			c.queue(func() {
				if !p.offered && !p.closed {
					p.negotiate()
				}
			})
		})
	}
	return p
}

// failureHint says why a mesh connection failed and what would help. ICE
// fails when no candidate pair answers: typically both sides are behind
// symmetric NATs (or UDP is blocked) and there is no relay to meet at.
func (c *Client) failureHint() string {
	for _, s := range c.iceServers {
		for _, u := range s.URLs {
			if strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:") {
				return "no network path (ICE failed), not even through the TURN relay; " +
					"check that the relay's port (3478, UDP or TCP) is reachable from both networks"
			}
		}
	}
	return "no network path (ICE failed); a TURN server is needed between these networks, " +
		"and this server offers none (parley serve --turn embedded, or --turn-url)"
}

// negotiate sends an offer (owner goroutine).
func (p *meshPeer) negotiate() {
	if p.closed || p.pc.SignalingState() != webrtc.SignalingStateStable {
		return
	}
	p.makingOffer, p.offered = true, true
	defer func() { p.makingOffer = false }()
	offer, err := p.pc.CreateOffer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(offer)
	}
	if err != nil {
		p.c.log.Warn("mesh offer", "peer", p.id, "err", err)
		return
	}
	p.c.send(signaling.Message{Type: signaling.TypeOffer, To: p.id, SDP: p.pc.LocalDescription().SDP})
}

// handleMesh applies an offer, answer or candidate from a mesh peer.
func (c *Client) handleMesh(m signaling.Message) {
	p := c.mesh[m.From]
	if p == nil {
		if m.Type != signaling.TypeOffer {
			return
		}
		if p = c.meshPeerFor(m.From, false); p == nil {
			return
		}
	}
	switch m.Type {
	case signaling.TypeOffer, signaling.TypeAnswer:
		p.offered = true
		typ := webrtc.SDPTypeAnswer
		if m.Type == signaling.TypeOffer {
			typ = webrtc.SDPTypeOffer
			collision := p.makingOffer || p.pc.SignalingState() != webrtc.SignalingStateStable
			if collision && !p.polite {
				return // impolite: our offer wins
			}
			if collision {
				// pion cannot roll back a local offer; nothing flows on a
				// connection that never completed an exchange, so the polite
				// side starts over with a fresh one and answers.
				p.close()
				delete(c.mesh, p.id)
				if p = c.meshPeerFor(m.From, false); p == nil {
					return
				}
				p.offered = true
			}
		}
		if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: typ, SDP: m.SDP}); err != nil {
			c.log.Warn("mesh remote description", "peer", p.id, "err", err)
			return
		}
		for _, ci := range p.pending {
			_ = p.pc.AddICECandidate(ci)
		}
		p.pending = nil
		if typ == webrtc.SDPTypeOffer {
			answer, err := p.pc.CreateAnswer(nil)
			if err == nil {
				err = p.pc.SetLocalDescription(answer)
			}
			if err != nil {
				c.log.Warn("mesh answer", "peer", p.id, "err", err)
				return
			}
			c.send(signaling.Message{Type: signaling.TypeAnswer, To: p.id, SDP: p.pc.LocalDescription().SDP})
		}
	case signaling.TypeCandidate:
		if m.Candidate == nil {
			return
		}
		ci := toInit(m.Candidate)
		if p.pc.RemoteDescription() == nil {
			p.pending = append(p.pending, ci)
			return
		}
		if err := p.pc.AddICECandidate(ci); err != nil {
			c.log.Debug("mesh candidate", "peer", p.id, "err", err)
		}
	}
}

func (p *meshPeer) close() {
	p.closed = true
	if p.restart != nil {
		p.restart.Stop()
	}
	if p.goneTimer != nil {
		p.goneTimer.Stop()
	}
	p.c.closePC(p.pc)
}

// sfuPeers are the two connections with the server's SFU.
type sfuPeers struct {
	c        *Client
	pub, sub *webrtc.PeerConnection
	pending  map[string][]webrtc.ICECandidateInit // by pc, before its remote description
}

// startSFU makes the publish connection (and offers on it) and the
// subscribe connection (the server offers on it).
func (c *Client) startSFU() {
	sub, err := c.newPC()
	if err != nil {
		c.log.Error("sfu subscribe connection", "err", err)
		return
	}
	s := &sfuPeers{c: c, sub: sub, pending: map[string][]webrtc.ICECandidateInit{}}
	c.sfu = s
	pcs := map[string]*webrtc.PeerConnection{signaling.PCSubscribe: sub}
	publishing := c.audio != nil || c.video != nil || len(c.layers) > 0
	if publishing {
		// A receive-only client never negotiates a publish connection.
		if s.pub, err = c.newPC(); err != nil {
			c.log.Error("sfu publish connection", "err", err)
			return
		}
		pcs[signaling.PCPublish] = s.pub
	}
	for name, pc := range pcs {
		pc.OnICECandidate(func(ci *webrtc.ICECandidate) {
			if ci == nil {
				return
			}
			m := signaling.Message{Type: signaling.TypeCandidate, To: signaling.SFU, PC: name, Candidate: fromInit(ci.ToJSON())}
			c.queue(func() { c.send(m) })
		})
		pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
			c.queue(func() { c.event("media server connection (%s): %s", name, st) })
		})
	}
	sub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		// Stream ids are PUBLISHER:camera or PUBLISHER:screen; track ids
		// PUBLISHER:microphone, PUBLISHER:camera, PUBLISHER:screen...
		publisher, _, _ := strings.Cut(tr.StreamID(), ":")
		_, source, _ := strings.Cut(tr.ID(), ":")
		source, _, _ = strings.Cut(source, "#")
		if source == "screen-audio" {
			source = signaling.SourceScreen
		}
		c.onTrack(publisher, source, tr)
	})
	if !publishing {
		return
	}
	pub := s.pub
	if err := c.addLocalTracks(pub, webrtc.RTPTransceiverDirectionSendonly); err != nil {
		c.log.Error("sfu tracks", "err", err)
		return
	}
	offer, err := pub.CreateOffer(nil)
	if err == nil {
		err = pub.SetLocalDescription(offer)
	}
	if err != nil {
		c.log.Error("sfu publish offer", "err", err)
		return
	}
	c.tagSimulcast()
	c.send(signaling.Message{Type: signaling.TypeOffer, To: signaling.SFU, PC: signaling.PCPublish, SDP: pub.LocalDescription().SDP, Sources: c.sources()})
}

// handleSFU applies a message from the SFU (owner goroutine).
func (c *Client) handleSFU(m signaling.Message) {
	s := c.sfu
	if s == nil {
		return
	}
	switch {
	case m.Type == signaling.TypeAnswer && m.PC == signaling.PCPublish && s.pub != nil:
		if err := s.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
			c.log.Warn("sfu publish answer", "err", err)
		}
		s.flush(signaling.PCPublish, s.pub)
	case m.Type == signaling.TypeOffer && m.PC == signaling.PCSubscribe:
		if err := s.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
			c.log.Warn("sfu subscribe offer", "err", err)
			return
		}
		s.flush(signaling.PCSubscribe, s.sub)
		answer, err := s.sub.CreateAnswer(nil)
		if err == nil {
			err = s.sub.SetLocalDescription(answer)
		}
		if err != nil {
			c.log.Warn("sfu subscribe answer", "err", err)
			return
		}
		c.send(signaling.Message{Type: signaling.TypeAnswer, To: signaling.SFU, PC: signaling.PCSubscribe, SDP: s.sub.LocalDescription().SDP})
	case m.Type == signaling.TypeCandidate && m.Candidate != nil:
		var pc *webrtc.PeerConnection
		switch m.PC {
		case signaling.PCSubscribe:
			pc = s.sub
		case signaling.PCPublish:
			pc = s.pub
		}
		if pc == nil {
			return
		}
		if pc.RemoteDescription() == nil {
			s.pending[m.PC] = append(s.pending[m.PC], toInit(m.Candidate))
			return
		}
		if err := pc.AddICECandidate(toInit(m.Candidate)); err != nil {
			c.log.Debug("sfu candidate", "err", err)
		}
	}
}

func (s *sfuPeers) flush(name string, pc *webrtc.PeerConnection) {
	for _, ci := range s.pending[name] {
		_ = pc.AddICECandidate(ci)
	}
	delete(s.pending, name)
}

func (s *sfuPeers) close() {
	if s.pub != nil {
		s.c.closePC(s.pub)
	}
	s.c.closePC(s.sub)
}
