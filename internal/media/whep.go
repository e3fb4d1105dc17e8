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

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Errors of View.
var (
	// ErrNoPublisher: nobody in the room (or not the participant asked
	// for) sends camera video or a microphone through the SFU.
	ErrNoPublisher = errors.New("media: nobody is sending media through the SFU in this room")
	// ErrBadOffer: a viewer's offer cannot be answered (it does not parse,
	// receives neither audio nor video, or shares no codec with the
	// publisher).
	ErrBadOffer = errors.New("media: the offer cannot be answered")
)

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
	wants, err := receivedKinds(offerSDP)
	if err != nil {
		return nil, "", err
	}
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
		return nil, "", fmt.Errorf("%w: %w", ErrBadOffer, err)
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
			return nil, fmt.Errorf("%w: the player does not accept %s, which the participant sends (it offers %s)",
				ErrBadOffer, name, strings.Join(codecs, ", "))
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
	p.log = s.log.With("room", roomID, "viewer-of", pub)
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
		return "", fmt.Errorf("%w: %w", ErrBadOffer, err)
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

// receivedKinds reads which kinds an offer can receive and the codecs it
// lists for each (from the first receiving m-line of the kind).
func receivedKinds(offer string) (map[webrtc.RTPCodecType][]string, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	sessionDir := direction(sd.Attributes, "sendrecv")
	wants := map[webrtc.RTPCodecType][]string{}
	for _, m := range sd.MediaDescriptions {
		kind := webrtc.NewRTPCodecType(m.MediaName.Media)
		if kind == 0 || m.MediaName.Port.Value == 0 {
			continue
		}
		if dir := direction(m.Attributes, sessionDir); dir != "recvonly" && dir != "sendrecv" {
			continue
		}
		if _, seen := wants[kind]; seen {
			continue
		}
		codecs := []string{}
		for _, a := range m.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			// "96 VP8/90000"
			if _, enc, ok := strings.Cut(a.Value, " "); ok {
				name, _, _ := strings.Cut(enc, "/")
				codecs = append(codecs, name)
			}
		}
		wants[kind] = codecs
	}
	if len(wants) == 0 {
		return nil, fmt.Errorf("%w: it has no m-line that receives audio or video (use recvonly transceivers)", ErrBadOffer)
	}
	return wants, nil
}

// direction is the direction attribute among attrs, else def.
func direction(attrs []sdp.Attribute, def string) string {
	for _, a := range attrs {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return a.Key
		}
	}
	return def
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
