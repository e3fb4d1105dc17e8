package media

// Peers for programs that speak WHIP (RFC 9725) and WHEP instead of the
// signaling protocol: a WHIP publisher is a participant with a publish
// connection only; a WHEP viewer is a receive-only connection the client
// offered, fed by ordinary downTracks of one chosen participant's tracks.
// Both go through the same forwarding path as browsers' connections.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"
)

// ErrNoPublisher: nobody in the room (or not the participant asked for)
// sends camera video or a microphone through the SFU (View).
var ErrNoPublisher = errors.New("media: nobody is sending media through the SFU in this room")

// viewerTile is the tile size a viewer is treated as drawing: larger than
// any layer, so it gets the best one its bandwidth estimate allows.
var viewerTile = Tile{Source: sourceCamera, Width: 1920, Height: 1080}

// JoinPublisher adds a participant that only sends (a WHIP encoder such as
// OBS): its Peer has a publish connection and no subscribe connection, so
// nothing is forwarded to it. Publish, AddCandidate("pub", …), SetSending,
// Done and Close work as for Join; PeerEvents.Offer is never called.
func (s *SFU) JoinPublisher(roomID, participantID string, re RoomEvents, pe PeerEvents) (*Peer, error) {
	return s.join(roomID, participantID, re, pe, true)
}

// Viewer is a receive-only player (WHEP) of one participant's camera
// video and microphone. The client offered and the SFU answered once;
// there is no renegotiation, so the choice of participant is fixed, and
// when that participant's tracks end the viewer closes by itself.
type Viewer struct {
	p         *Peer
	publisher string
}

// Participant is the id of the participant the viewer watches.
func (v *Viewer) Participant() string { return v.publisher }

// AddCandidate adds a remote ICE candidate the player trickled. An empty
// candidate (end of candidates) is ignored.
func (v *Viewer) AddCandidate(c webrtc.ICECandidateInit) error {
	return v.p.AddCandidate("sub", c)
}

// RestartICE restarts the viewer's ICE session (see Peer.RestartICE).
func (v *Viewer) RestartICE(ufrag, pwd string, cands []webrtc.ICECandidateInit) (ICEParams, error) {
	return v.p.RestartICE(ufrag, pwd, cands)
}

// Done is closed when the viewer has closed: by Close, by its connection
// failing, or because its publisher stopped sending.
func (v *Viewer) Done() <-chan struct{} { return v.p.Done() }

// Close ends the viewer and waits for its goroutines. It is idempotent;
// like Peer.Close it must not be called from inside a media callback.
func (v *Viewer) Close() { v.p.Close() }

// View answers a receive-only client's offer (WHEP) with the camera video
// and microphone of participantID in roomID, or, when participantID is
// empty, of the active speaker if it sends camera video, else of the
// first participant sending camera video, else of the first sending a
// microphone. Only the kinds the offer receives are sent. It returns
// ErrNoPublisher when there is nobody to watch and ErrBadOffer (wrapped)
// when the offer cannot be answered.
func (s *SFU) View(roomID, participantID, offerSDP string) (*Viewer, string, error) {
	offer, err := ParseOffer(offerSDP, Receives)
	if err != nil {
		return nil, "", err
	}
	wants := offer.receives
	conf, err := s.pcConfig()
	if err != nil {
		return nil, "", err
	}
	pc, err := s.api.NewPeerConnection(conf)
	if err != nil {
		return nil, "", fmt.Errorf("media: viewer connection: %w", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		_ = pc.Close()
		return nil, "", badOffer("", err)
	}
	p, err := s.addViewer(roomID, participantID, pc, wants)
	if err != nil {
		_ = pc.Close()
		return nil, "", err
	}
	v := &Viewer{p: p, publisher: p.id}
	answer, err := p.answerViewer()
	if err != nil {
		p.Close()
		return nil, "", err
	}
	p.log.Debug("viewer started")
	return v, answer, nil
}

// addViewer chooses whom pc watches and subscribes it to their tracks,
// all under the room's lock so a publisher cannot leave halfway.
func (s *SFU) addViewer(roomID, participantID string, pc *webrtc.PeerConnection, wants map[webrtc.RTPCodecType][]string) (*Peer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	r := s.rooms[roomID]
	if r == nil {
		return nil, ErrNoPublisher
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrNoPublisher
	}
	pub := r.chooseViewed(participantID)
	if pub == "" {
		return nil, ErrNoPublisher
	}
	var ups []*upTrack
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		codecs, ok := wants[kind]
		u := r.firstTrack(pub, kind)
		if !ok || u == nil {
			continue
		}
		name := u.codec.MimeType[strings.IndexByte(u.codec.MimeType, '/')+1:]
		if !containsFold(codecs, name) {
			return nil, badOffer(fmt.Sprintf("the player does not accept %s, which the participant sends (it offers %s)",
				name, strings.Join(codecs, ", ")), nil)
		}
		ups = append(ups, u)
	}
	if len(ups) == 0 {
		return nil, fmt.Errorf("%w: participant %s sends nothing the offer receives", ErrNoPublisher, pub)
	}
	// The viewer's id is its publisher's: it only appears in logs and in
	// the viewer's layout key, never in r.peers.
	p := newPeer(s, pub, nil, pc, PeerEvents{})
	p.viewer = true
	p.room = r
	p.log = s.log.With("channel_id", roomID, "viewer_of", pub)
	t := viewerTile
	t.Participant = pub
	p.SetLayout([]Tile{t})
	for _, u := range ups {
		if d := u.subscribe(p); d != nil {
			p.downs[d] = true
		}
	}
	if len(p.downs) == 0 { // its tracks were closing
		return nil, ErrNoPublisher
	}
	r.viewers[p] = struct{}{}
	s.metrics.viewers.Add(1)
	return p, nil
}

// answerViewer puts the viewer's downTracks on the client's receiving
// m-lines (pion fills a remote recvonly transceiver of the same kind),
// answers and waits for the host candidates, so the answer is complete.
func (p *Peer) answerViewer() (string, error) {
	p.start()
	for _, d := range p.subscriptions() {
		sender, err := p.subPC.AddTrack(d)
		if err != nil {
			return "", fmt.Errorf("media: viewer track %s: %w", d.ID(), err)
		}
		d.sender = sender
		if p.goAdd() {
			go func() {
				defer p.wg.Done()
				d.readRTCP(sender)
			}()
		}
	}
	answer, err := p.subPC.CreateAnswer(nil)
	if err == nil {
		err = p.subPC.SetLocalDescription(answer)
	}
	if err != nil {
		if p.isClosed() {
			return "", ErrNoPublisher // the publisher left meanwhile
		}
		return "", badOffer("", err)
	}
	p.waitGathering(p.subPC)
	if p.isClosed() {
		return "", ErrNoPublisher
	}
	p.subSDPOut.Store(true)
	return p.subPC.LocalDescription().SDP, nil
}

// chooseViewed picks the participant a viewer watches (see View); "" if
// nobody fits. Called with r.mu held.
func (r *sfuRoom) chooseViewed(participantID string) string {
	if participantID != "" {
		if r.firstTrack(participantID, webrtc.RTPCodecTypeVideo) != nil || r.firstTrack(participantID, webrtc.RTPCodecTypeAudio) != nil {
			return participantID
		}
		return ""
	}
	if r.speakerNow != "" && r.firstTrack(r.speakerNow, webrtc.RTPCodecTypeVideo) != nil {
		return r.speakerNow
	}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		for _, u := range r.ups { // in publication order
			if u.kind == kind && u.source == camOrMic(kind) {
				return u.pub.id
			}
		}
	}
	return ""
}

// firstTrack is participant's first published camera video or microphone
// (by kind). Called with r.mu held.
func (r *sfuRoom) firstTrack(participant string, kind webrtc.RTPCodecType) *upTrack {
	for _, u := range r.ups {
		if u.pub.id == participant && u.kind == kind && u.source == camOrMic(kind) {
			return u
		}
	}
	return nil
}

func camOrMic(kind webrtc.RTPCodecType) string {
	if kind == webrtc.RTPCodecTypeVideo {
		return sourceCamera
	}
	return sourceMicrophone
}

// removeViewer takes a closing viewer out of its room.
func (r *sfuRoom) removeViewer(p *Peer) {
	r.mu.Lock()
	_, ok := r.viewers[p]
	delete(r.viewers, p)
	for _, u := range r.ups {
		u.unsubscribe(p)
	}
	empty := len(r.peers) == 0 && len(r.viewers) == 0
	r.mu.Unlock()
	if ok && empty {
		r.sfu.removeRoomIfEmpty(r)
	}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// RestartICE restarts ICE on the connection the client offered (a WHEP
// viewer's, else the publish connection, as of a WHIP publisher) with the
// client's new credentials and candidates, and returns the server's new
// ICE parameters once its host candidates are gathered (bounded by
// Config.GatherTimeout). Media keeps its tracks: only ICE starts over
// (DTLS and SRTP carry on over the new candidate pair).
//
// WHIP and WHEP clients send only the new ICE parameters (RFC 9725
// §4.3.2): the rest of their last offer still applies, so that offer is
// applied again with the new credentials, which pion takes as a remote
// ICE restart (SetRemoteDescription restarts its agent when an offer's
// ice-ufrag/ice-pwd change), and answered. Candidates that do not parse
// yield ErrBadCandidate before anything changes.
func (p *Peer) RestartICE(ufrag, pwd string, cands []webrtc.ICECandidateInit) (ICEParams, error) {
	if p.isClosed() {
		return ICEParams{}, ErrClosed
	}
	if ufrag == "" || pwd == "" {
		return ICEParams{}, ErrBadRestart
	}
	if err := checkCandidates(cands); err != nil {
		return ICEParams{}, err
	}
	var pc *webrtc.PeerConnection
	if p.viewer {
		p.negMu.Lock() // with AddCandidate: no candidate lands mid-restart
		defer p.negMu.Unlock()
		pc = p.subPC
	} else {
		p.pubMu.Lock() // with Publish and AddCandidate
		defer p.pubMu.Unlock()
		if !p.pubRemoteSet {
			return ICEParams{}, errors.New("media: ICE restart before the client's offer")
		}
		pc = p.pubPC
	}
	if p.isClosed() {
		return ICEParams{}, ErrClosed
	}
	last := pc.CurrentRemoteDescription()
	if last == nil || last.Type != webrtc.SDPTypeOffer || pc.SignalingState() != webrtc.SignalingStateStable {
		return ICEParams{}, errors.New("media: ICE restart while a negotiation is in progress")
	}
	offer, err := withICE(last.SDP, ufrag, pwd)
	if err != nil {
		return ICEParams{}, err
	}
	fail := func(step string, err error) (ICEParams, error) {
		if p.isClosed() {
			return ICEParams{}, ErrClosed
		}
		return ICEParams{}, fmt.Errorf("media: ICE restart: %s: %w", step, err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail("offer", err)
	}
	for _, c := range cands {
		if err := pc.AddICECandidate(c); err != nil {
			p.log.Debug("restart candidate", "err", err)
		}
	}
	answer, err := pc.CreateAnswer(nil)
	if err == nil {
		err = pc.SetLocalDescription(answer)
	}
	if err != nil {
		return fail("answer", err)
	}
	p.waitGathering(pc)
	if p.isClosed() {
		return ICEParams{}, ErrClosed
	}
	local, err := iceParams(pc.LocalDescription().SDP)
	if err != nil {
		return fail("local description", err)
	}
	p.log.Info("ICE restarted by the client", "candidates", len(local.Candidates))
	return local, nil
}
