package room

// WHIP publishers and WHEP viewers: media sessions driven over HTTP
// (internal/web/whip.go) rather than over a signaling socket.
//
// A WHIP publisher is a participant of the call like any other (everyone
// gets participant-joined and participant-left for it) but has no
// socket: its client has a nil conn, so whatever the room sends it is
// dropped. Its media only reaches the others through the SFU, so a room
// with one uses the SFU topology, and a channel pinned to p2p refuses it.
//
// A WHEP viewer is not a participant; the room only keeps it so that it
// can end it when its user is removed from the channel or the channel
// goes away.
//
// Each session holds a room reference (like a socket) and has one
// goroutine, watch, that waits for the session's end (HTTP DELETE, the
// connection failing, the room ending it), tells the room through its
// queue, closes the media and releases the room.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/coder/websocket"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/media"
	"github.com/parley/parley/internal/signal"
)

// Errors of Publish, View, Trickle and RestartICE, for the HTTP edge to
// turn into status codes.
var (
	// ErrNoSFU: the server runs without a media server.
	ErrNoSFU = errors.New("room: this server has no media server (SFU)")
	// ErrP2POnly: the channel's calls are pinned to peer-to-peer, where
	// media never passes through the server.
	ErrP2POnly = errors.New("room: the channel's calls are pinned to peer-to-peer")
	// ErrClosing: the server is shutting down, or the channel's call is
	// being closed.
	ErrClosing = errors.New("room: the call is closing")
	// ErrBadOffer: the SDP offer does not parse or cannot be used.
	ErrBadOffer = errors.New("room: unusable SDP offer")
	// ErrNoPublisher: nobody (or not the participant asked for) sends
	// media through the server in this call.
	ErrNoPublisher = errors.New("room: nobody in the call sends media through the server")
	// ErrICERestart: a trickle fragment carries new ICE credentials: it
	// asks for an ICE restart, which RestartICE does.
	ErrICERestart = errors.New("room: the fragment restarts ICE")
	// ErrStaleICE: a fragment names an ICE session (ice-ufrag) that an
	// ICE restart already replaced.
	ErrStaleICE = errors.New("room: the fragment is for an earlier ICE session")
	// ErrBadRestart: an ICE restart without both a new ice-ufrag and an
	// ice-pwd.
	ErrBadRestart = errors.New("room: an ICE restart needs a new ice-ufrag and its ice-pwd")
	// ErrBadCandidate: a trickled ICE candidate does not parse.
	ErrBadCandidate = errors.New("room: bad ICE candidate")
)

// Candidate is one ICE candidate a WHIP or WHEP client trickled: the
// value of an a=candidate line ("candidate:…") and the mid of the m-line
// it was listed under ("" if none).
type Candidate struct {
	Candidate string
	Mid       string
}

// ICESession is the server's side of a new ICE session, as RestartICE
// returns it for the answer to an ICE restart (RFC 9725 §4.3.2).
type ICESession struct {
	Ufrag, Pwd string
	// Candidates are a=candidate values ("candidate:…").
	Candidates []string
	// Complete: gathering finished (a=end-of-candidates).
	Complete bool
	// Mid is the m-section the candidates belong to, Media its m= line
	// ("audio 9 UDP/TLS/RTP/SAVPF 111"), Group the a=group value.
	Mid, Media, Group string
}

// maxRetired bounds the earlier ICE sessions a session remembers to
// refuse late fragments of.
const maxRetired = 16

// session is what WHIP and WHEP sessions share: the room reference, the
// end signals, trickle ICE and ICE restarts.
type session struct {
	m       *Manager
	r       *room
	userID  string
	add     func(webrtc.ICECandidateInit) error
	restart func(ufrag, pwd string, cands []webrtc.ICECandidateInit) (media.ICEParams, error)

	// iceMu serializes Trickle and RestartICE (HTTP requests may
	// overlap), so candidates go to the ICE session they were sent for.
	iceMu   sync.Mutex
	ufrag   string   // the client's current ICE username fragment
	retired []string // its earlier ones, newest last

	stop     chan struct{} // closed to end the session
	stopOnce sync.Once
	done     chan struct{} // closed once everything is released
	// unregister forgets the session's credential (Manager.register);
	// watch calls it once the session has ended.
	unregister func()
}

func newSession(m *Manager, r *room, userID, ufrag string) *session {
	return &session{m: m, r: r, userID: userID, ufrag: ufrag, stop: make(chan struct{}), done: make(chan struct{})}
}

// requestStop asks watch to end the session; it never blocks, so the
// room goroutine may call it.
func (s *session) requestStop() { s.stopOnce.Do(func() { close(s.stop) }) }

// Close ends the session (HTTP DELETE) and returns once its media is
// closed and the call told. It is idempotent.
func (s *session) Close() {
	s.requestStop()
	<-s.done
}

// Done is closed once the session has ended, for whatever reason, and
// everything it held is released.
func (s *session) Done() <-chan struct{} { return s.done }

// Trickle adds the ICE candidates of a trickle fragment (RFC 8840).
// ufrag is the fragment's a=ice-ufrag ("" if it has none); one of an ICE
// session that a restart replaced yields ErrStaleICE, and a new one
// ErrICERestart: the fragment is for RestartICE.
func (s *session) Trickle(ufrag string, cands []Candidate) error {
	s.iceMu.Lock()
	defer s.iceMu.Unlock()
	if err := s.checkUfrag(ufrag); err != nil {
		return err
	}
	select {
	case <-s.done:
		return ErrClosing
	default:
	}
	for _, c := range cands {
		if err := s.add(c.init()); err != nil {
			if errors.Is(err, media.ErrClosed) {
				return ErrClosing
			}
			return fmt.Errorf("%w %q: %w", ErrBadCandidate, c.Candidate, err)
		}
	}
	return nil
}

// checkUfrag sorts a fragment's ufrag: nil for the current ICE session
// (or none), ErrStaleICE, or ErrICERestart. Called with iceMu held.
func (s *session) checkUfrag(ufrag string) error {
	switch {
	case ufrag == "" || ufrag == s.ufrag:
		return nil
	case slices.Contains(s.retired, ufrag):
		return ErrStaleICE
	}
	return ErrICERestart
}

// RestartICE restarts ICE with the client's new credentials and
// candidates (a trickle fragment with a new a=ice-ufrag, RFC 9725
// §4.3.2) and returns the server's new ICE session; the media keeps
// flowing on the same tracks once the client applied it. Errors wrap
// ErrBadRestart (no pwd, or the current or an earlier ufrag: see
// ErrStaleICE), ErrBadCandidate or ErrClosing.
func (s *session) RestartICE(ufrag, pwd string, cands []Candidate) (ICESession, error) {
	s.iceMu.Lock()
	defer s.iceMu.Unlock()
	if ufrag == "" || pwd == "" {
		return ICESession{}, ErrBadRestart
	}
	if err := s.checkUfrag(ufrag); !errors.Is(err, ErrICERestart) {
		if err == nil {
			return ICESession{}, fmt.Errorf("%w: %q is the current ice-ufrag", ErrBadRestart, ufrag)
		}
		return ICESession{}, err
	}
	select {
	case <-s.done:
		return ICESession{}, ErrClosing
	default:
	}
	inits := make([]webrtc.ICECandidateInit, len(cands))
	for i, c := range cands {
		inits[i] = c.init()
	}
	local, err := s.restart(ufrag, pwd, inits)
	switch {
	case errors.Is(err, media.ErrClosed):
		return ICESession{}, ErrClosing
	case errors.Is(err, media.ErrBadCandidate):
		return ICESession{}, fmt.Errorf("%w%s", ErrBadCandidate, strings.TrimPrefix(err.Error(), media.ErrBadCandidate.Error()))
	case err != nil:
		return ICESession{}, fmt.Errorf("room: ICE restart: %w", err)
	}
	s.retired = append(s.retired, s.ufrag)
	if len(s.retired) > maxRetired {
		s.retired = s.retired[1:]
	}
	s.ufrag = ufrag
	return ICESession(local), nil
}

// init is c as pion takes it.
func (c Candidate) init() webrtc.ICECandidateInit {
	ci := webrtc.ICECandidateInit{Candidate: c.Candidate}
	if c.Mid != "" {
		mid := c.Mid
		ci.SDPMid = &mid
	}
	return ci
}

// acquireSession is acquire for an HTTP session: counted as a room
// reference, and for Shutdown, but not as a socket in Counts.
func (m *Manager) acquireSession(channelID, mode string) *room {
	r := m.acquire(channelID, mode)
	if r != nil {
		m.mu.Lock()
		r.sessions++
		m.mu.Unlock()
	}
	return r
}

func (m *Manager) releaseSession(r *room) {
	m.mu.Lock()
	r.sessions--
	m.mu.Unlock()
	m.sockets.Done()
	m.release(r)
}

// Ingest is a WHIP publisher in a channel's call (see the top of this
// file). Its media is published with media.Peer.Publish; it receives
// nothing.
type Ingest struct {
	*session
	c    *client // the participant, with no socket
	id   string
	peer *media.Peer
	st   signal.State
}

// ParticipantID is the publisher's participant id in the call.
func (in *Ingest) ParticipantID() string { return in.id }

// registerSession ties s to the credential that authenticated it, so that
// ending the credential (EndAuth) ends the session.
func (m *Manager) registerSession(s *session, auth Auth) error {
	unregister, err := m.register(s.r.channelID, auth, func(websocket.StatusCode, string) { s.requestStop() })
	if err != nil {
		return err
	}
	s.unregister = unregister
	return nil
}

// Publish starts a WHIP publisher for user in channelID's call and
// returns it with the SDP answer. The caller has checked that user is a
// member; mode is the channel's. The publisher shows up in the call as
// "<name> (WHIP)" and stays until Close, until its connection fails, or
// until the room ends it (the user removed, the channel deleted or pinned
// to p2p, the server shutting down, auth's credential ended: EndAuth).
// Errors wrap ErrNoSFU, ErrP2POnly, ErrClosing, ErrBadOffer, ErrRevoked or
// ErrRemoved.
func (m *Manager) Publish(channelID, mode string, user signal.User, auth Auth, offer string) (*Ingest, string, error) {
	if m.cfg.SFU == nil {
		return nil, "", ErrNoSFU
	}
	if mode == ModeP2P {
		return nil, "", ErrP2POnly
	}
	info, err := parseOffer(offer, true)
	if err != nil {
		return nil, "", err
	}
	r := m.acquireSession(channelID, mode)
	if r == nil {
		return nil, "", ErrClosing
	}
	id := newParticipantID()
	log := m.log.With("channel", channelID, "user", user.UserID, "participant", id)
	peer, err := m.cfg.SFU.JoinPublisher(channelID, id, media.RoomEvents{Speaker: r.setSpeaker}, media.PeerEvents{
		// The SFU closes a failed connection by itself; watch sees it.
		State: func(_ string, s webrtc.PeerConnectionState) { log.Debug("whip connection state", "state", s.String()) },
	})
	if err != nil {
		m.releaseSession(r)
		return nil, "", fmt.Errorf("room: whip publisher: %w", err)
	}
	answer, err := peer.Publish(offer, info.sources)
	if err == nil {
		// The SFU rejects (port 0) each m-line whose codecs it does not
		// forward; with none left the publisher would only linger as a
		// participant nobody can hear or see until ICE gives up.
		info.audio, info.video = acceptedMedia(answer)
		if !info.audio && !info.video {
			err = fmt.Errorf("%w: %s", ErrBadOffer, noCodecMessage)
		}
	}
	if err != nil {
		peer.Close()
		m.releaseSession(r)
		return nil, "", offerError(err)
	}
	c := newClient(nil, signal.User{UserID: user.UserID, Name: user.Name + " (WHIP)", Username: user.Username}, m.cfg, log)
	c.media.Store(peer)
	in := &Ingest{session: newSession(m, r, user.UserID, info.ufrag), c: c, id: id, peer: peer,
		st: signal.State{Audio: info.audio, Video: info.video}} // what the answer accepted
	in.add = func(ci webrtc.ICECandidateInit) error { return peer.AddCandidate(signal.PCPublish, ci) }
	in.restart = peer.RestartICE
	if err := m.registerSession(in.session, auth); err != nil {
		peer.Close()
		m.releaseSession(r)
		return nil, "", err
	}
	// The answer is only handed out once the room has the participant,
	// so everyone hears of it before its media can arrive.
	reply := make(chan error, 1)
	r.events <- event{kind: evWHIP, ingest: in, reply: reply}
	if err := <-reply; err != nil {
		in.unregister()
		peer.Close()
		m.releaseSession(r)
		return nil, "", err
	}
	go in.watch()
	log.Info("whip publisher started")
	return in, answer, nil
}

// watch waits for the publisher's end, then takes it out of the call.
func (in *Ingest) watch() {
	defer close(in.done)
	reason := signal.ReasonLeft
	select {
	case <-in.peer.Done():
		reason = signal.ReasonDisconnected
		in.c.log.Info("whip connection ended")
	case <-in.stop:
	}
	in.unregister()
	in.r.events <- event{kind: evWHIPEnd, ingest: in, reason: reason}
	in.peer.Close()
	in.m.releaseSession(in.r)
}

// startIngest adds a WHIP publisher to the call (room goroutine).
func (r *room) startIngest(in *Ingest) error {
	switch {
	case r.closing:
		return ErrClosing
	case r.mode == ModeP2P: // pinned since the caller looked
		return ErrP2POnly
	}
	p := signal.Participant{ID: in.id, UserID: in.c.user.UserID, Name: in.c.user.Name, Username: in.c.user.Username, State: in.st}
	in.c.p = &p
	r.participants[p.ID] = in.c
	r.ingests[in] = struct{}{}
	r.joined.Store(int32(len(r.participants)))
	// The call moves to the SFU before anyone hears of the newcomer, so
	// no browser starts a peer-to-peer connection to it.
	r.updateTopology()
	you := p
	r.broadcast(nil, signal.Message{Type: signal.TypeParticipantJoined, Participant: &you})
	r.log.Info("whip participant joined", "participant", p.ID, "user", p.UserID)
	return nil
}

// endIngest takes a WHIP publisher out of the call; idempotent.
func (r *room) endIngest(in *Ingest, reason string) {
	delete(r.ingests, in)
	r.removeParticipant(in.c, reason)
}

// stopSessions ends the WHIP publishers and WHEP viewers of userID (all
// of them if userID is ""), without blocking the room goroutine.
func (r *room) stopSessions(userID string) {
	for in := range r.ingests {
		if userID == "" || in.userID == userID {
			in.requestStop()
			r.endIngest(in, signal.ReasonLeft)
		}
	}
	for v := range r.viewers {
		if userID == "" || v.userID == userID {
			v.requestStop()
		}
	}
}

// stopIngests ends every WHIP publisher (the channel was pinned to p2p).
func (r *room) stopIngests() {
	for in := range r.ingests {
		in.requestStop()
		r.endIngest(in, signal.ReasonLeft)
	}
}

// Viewer is a WHEP player of one participant of a channel's call. It is
// not a participant: nobody in the call sees it.
type Viewer struct {
	*session
	mv *media.Viewer
}

// ParticipantID is the id of the participant watched.
func (v *Viewer) ParticipantID() string { return v.mv.Participant() }

// View starts a WHEP viewer for user of participantID in channelID's call
// (participantID "" = the active speaker, else the first participant
// sending camera video) and returns it with the SDP answer. The caller
// has checked membership; mode is the channel's. The choice is fixed
// for the viewer's life; it ends when that participant stops sending, on
// Close, when its connection fails, or when the room ends it. Errors
// wrap ErrNoSFU, ErrP2POnly, ErrClosing, ErrBadOffer, ErrNoPublisher or
// ErrRevoked; auth's credential ending (EndAuth) ends the viewer.
func (m *Manager) View(channelID, mode string, user signal.User, auth Auth, participantID, offer string) (*Viewer, string, error) {
	if m.cfg.SFU == nil {
		return nil, "", ErrNoSFU
	}
	if mode == ModeP2P {
		return nil, "", ErrP2POnly
	}
	info, err := parseOffer(offer, false)
	if err != nil {
		return nil, "", err
	}
	r := m.acquireSession(channelID, mode)
	if r == nil {
		return nil, "", ErrClosing
	}
	mv, answer, err := m.cfg.SFU.View(channelID, participantID, offer)
	if err != nil {
		m.releaseSession(r)
		switch {
		case errors.Is(err, media.ErrNoPublisher):
			return nil, "", fmt.Errorf("%w: %w", ErrNoPublisher, err)
		case errors.Is(err, media.ErrBadOffer):
			return nil, "", offerError(err)
		case errors.Is(err, media.ErrClosed):
			return nil, "", ErrClosing
		}
		return nil, "", fmt.Errorf("room: whep viewer: %w", err)
	}
	v := &Viewer{session: newSession(m, r, user.UserID, info.ufrag), mv: mv}
	v.add = mv.AddCandidate
	v.restart = mv.RestartICE
	if err := m.registerSession(v.session, auth); err != nil {
		mv.Close()
		m.releaseSession(r)
		return nil, "", err
	}
	r.events <- event{kind: evWHEP, viewer: v}
	go v.watch()
	m.log.Info("whep viewer started", "channel", channelID, "user", user.UserID, "participant", mv.Participant())
	return v, answer, nil
}

// watch waits for the viewer's end, then releases it.
func (v *Viewer) watch() {
	defer close(v.done)
	select {
	case <-v.mv.Done():
	case <-v.stop:
	}
	v.unregister()
	v.mv.Close()
	v.r.events <- event{kind: evWHEPEnd, viewer: v}
	v.m.releaseSession(v.r)
}

// offerError wraps a media error about an offer in ErrBadOffer, with
// media's own wording taken off so the message reads well to whoever sent
// the offer.
func offerError(err error) error {
	msg := strings.TrimPrefix(err.Error(), media.ErrBadOffer.Error()+": ")
	return fmt.Errorf("%w: %s", ErrBadOffer, strings.TrimPrefix(msg, "media: "))
}

// offerInfo is what the room needs from a WHIP or WHEP offer.
type offerInfo struct {
	ufrag        string
	audio, video bool              // WHIP: it sends audio, video
	sources      map[string]string // WHIP: track id → source
}

// parseOffer checks that offer is SDP with ICE credentials and at least
// one audio or video m-line that sends (WHIP: send) or receives (WHEP),
// so the common mistakes get a clear answer before any connection is
// made.
func parseOffer(offer string, send bool) (offerInfo, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return offerInfo{}, fmt.Errorf("%w: it is not valid SDP (%w)", ErrBadOffer, err)
	}
	info := offerInfo{sources: map[string]string{}}
	info.ufrag, _ = sd.Attribute("ice-ufrag")
	sessionDir := "sendrecv"
	for _, a := range sd.Attributes {
		if isDirection(a.Key) {
			sessionDir = a.Key
		}
	}
	usable := 0
	for _, md := range sd.MediaDescriptions {
		kind := md.MediaName.Media
		if (kind != "audio" && kind != "video") || md.MediaName.Port.Value == 0 {
			continue
		}
		if info.ufrag == "" {
			info.ufrag, _ = md.Attribute("ice-ufrag")
		}
		dir := sessionDir
		for _, a := range md.Attributes {
			if isDirection(a.Key) {
				dir = a.Key
			}
		}
		if send && dir != "sendonly" && dir != "sendrecv" || !send && dir != "recvonly" && dir != "sendrecv" {
			continue
		}
		usable++
		if !send {
			continue
		}
		// Sources: the first audio is the microphone, the first video
		// the camera; media guesses the rest the same way.
		source := signal.SourceCamera
		if kind == "audio" {
			source = signal.SourceMicrophone
		}
		if kind == "audio" && !info.audio || kind == "video" && !info.video {
			if id := trackID(md); id != "" {
				info.sources[id] = source
			}
		}
		info.audio = info.audio || kind == "audio"
		info.video = info.video || kind == "video"
	}
	switch {
	case usable == 0 && send:
		return offerInfo{}, fmt.Errorf("%w: it sends neither audio nor video (WHIP needs sendonly audio or video m-lines)", ErrBadOffer)
	case usable == 0:
		return offerInfo{}, fmt.Errorf("%w: it receives neither audio nor video (WHEP needs recvonly audio or video m-lines)", ErrBadOffer)
	case info.ufrag == "":
		return offerInfo{}, fmt.Errorf("%w: it has no a=ice-ufrag (ICE credentials)", ErrBadOffer)
	}
	return info, nil
}

// noCodecMessage says what a WHIP offer whose every m-line was rejected
// lacks.
const noCodecMessage = "none of its audio or video codecs is one this server forwards (Opus audio; VP8 or H.264 video)"

// acceptedMedia reports which kinds of media an SDP answer accepts: an
// audio or video m-line with a port other than 0 that is not inactive.
func acceptedMedia(answer string) (audio, video bool) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(answer); err != nil {
		return false, false
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Port.Value == 0 {
			continue
		}
		if _, inactive := md.Attribute("inactive"); inactive {
			continue
		}
		switch md.MediaName.Media {
		case "audio":
			audio = true
		case "video":
			video = true
		}
	}
	return audio, video
}

func isDirection(key string) bool {
	switch key {
	case "sendrecv", "sendonly", "recvonly", "inactive":
		return true
	}
	return false
}

// trackID is the track id of an m-line, as pion reports it for the track
// received on it: from a=msid, else from an a=ssrc … msid: line.
func trackID(md *sdp.MediaDescription) string {
	if v, ok := md.Attribute("msid"); ok {
		if _, id, ok := strings.Cut(v, " "); ok {
			return id
		}
	}
	for _, a := range md.Attributes {
		if a.Key != "ssrc" {
			continue
		}
		if _, rest, ok := strings.Cut(a.Value, " msid:"); ok {
			if _, id, ok := strings.Cut(rest, " "); ok {
				return id
			}
		}
	}
	return ""
}
