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
//
// What the sessions' SDP says, their trickle ICE and ICE restarts, and
// the errors about them belong to media (sdp.go, trickle.go): the room
// only has "a participant without a socket joins or leaves".

import (
	"errors"
	"fmt"
	"sync"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/media"
	"github.com/parley/parley/internal/signaling"
)

// Errors of Publish and View (besides media's about the offer:
// media.ErrBadOffer, media.ErrNoPublisher), for the HTTP edge to turn
// into status codes.
var (
	// ErrNoSFU: the server runs without a media server.
	ErrNoSFU = errors.New("room: this server has no media server (SFU)")
	// ErrP2POnly: the channel's calls are pinned to peer-to-peer, where
	// media never passes through the server.
	ErrP2POnly = errors.New("room: the channel's calls are pinned to peer-to-peer")
	// ErrClosing: the server is shutting down, or the channel's call is
	// being closed.
	ErrClosing = errors.New("room: the call is closing")
)

// session is what WHIP and WHEP sessions share: the room reference, the
// end signals and the ICE state.
type session struct {
	m      *Manager
	r      *call
	userID string
	ice    *media.ICESession

	stop     chan struct{} // closed to end the session
	stopOnce sync.Once
	done     chan struct{} // closed once everything is released
	// unregister forgets the session's credential (Manager.register);
	// watch calls it once the session has ended.
	unregister func()
}

func newSession(m *Manager, r *call, userID string) *session {
	return &session{m: m, r: r, userID: userID, stop: make(chan struct{}), done: make(chan struct{})}
}

// ICE is the session's ICE state: trickle ICE and ICE restarts (PATCH)
// and the ETag naming the current ICE session.
func (s *session) ICE() *media.ICESession { return s.ice }

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

// acquireSession is acquire for an HTTP session: counted as a room
// reference, and for Shutdown, but not as a socket in Counts.
func (m *Manager) acquireSession(channelID, mode string) *call {
	r := m.acquire(channelID, mode, 0)
	if r != nil {
		m.mu.Lock()
		r.sessions++
		m.mu.Unlock()
	}
	return r
}

func (m *Manager) releaseSession(r *call) {
	m.mu.Lock()
	r.sessions--
	m.mu.Unlock()
	m.sockets.Done()
	m.release(r)
}

// Ingest is a WHIP publisher in a channel's call (see the top of this
// file). Its media is published with MediaPeer.Publish; it receives
// nothing.
type Ingest struct {
	*session
	c    *socket // the participant, with no socket
	id   string
	peer MediaPeer
	st   signaling.State
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
// Errors wrap ErrNoSFU, ErrP2POnly, ErrClosing, media.ErrBadOffer,
// ErrRevoked or ErrRemoved.
func (m *Manager) Publish(channelID, mode string, user signaling.User, auth Auth, sdp string) (*Ingest, string, error) {
	if m.cfg.Media == nil {
		return nil, "", ErrNoSFU
	}
	if mode == ModeP2P {
		return nil, "", ErrP2POnly
	}
	offer, err := media.ParseOffer(sdp, media.Sends)
	if err != nil {
		return nil, "", err
	}
	r := m.acquireSession(channelID, mode)
	if r == nil {
		return nil, "", ErrClosing
	}
	id := newParticipantID()
	log := m.log.With("channel_id", channelID, "user_id", user.UserID, "participant_id", id)
	peer, err := m.cfg.Media.JoinPublisher(channelID, id, media.RoomEvents{Speaker: r.setSpeaker}, media.PeerEvents{
		// The SFU closes a failed connection by itself; watch sees it.
		State: func(_ string, s webrtc.PeerConnectionState) { log.Debug("whip connection state", "state", s.String()) },
	})
	if err != nil {
		m.releaseSession(r)
		return nil, "", fmt.Errorf("room: whip publisher: %w", err)
	}
	answer, err := peer.Publish(sdp, offer.Sources)
	st := signaling.State{}
	if err == nil {
		// With no m-line accepted the publisher would only linger as a
		// participant nobody can hear or see until ICE gives up.
		st.Audio, st.Video, err = media.AcceptedMedia(answer)
	}
	if err != nil {
		peer.Close()
		m.releaseSession(r)
		if errors.Is(err, media.ErrClosed) {
			return nil, "", ErrClosing
		}
		return nil, "", fmt.Errorf("room: whip offer: %w", media.OfferError(err))
	}
	c := newSocket(nil, signaling.User{UserID: user.UserID, Name: user.Name + " (WHIP)", Username: user.Username}, m.cfg, log)
	c.peer = peer // before the room has c, which then owns it
	in := &Ingest{session: newSession(m, r, user.UserID), c: c, id: id, peer: peer, st: st}
	in.ice = media.NewICESession(offer.Ufrag, func(ci webrtc.ICECandidateInit) error { return peer.AddCandidate(signaling.PCPublish, ci) }, peer.RestartICE)
	if err := m.registerSession(in.session, auth); err != nil {
		peer.Close()
		m.releaseSession(r)
		return nil, "", err
	}
	// The answer is only handed out once the room has the participant,
	// so everyone hears of it before its media can arrive.
	reply := make(chan error, 1)
	if !r.post(func() { reply <- r.startIngest(in) }) {
		reply <- ErrClosing // cannot happen while we hold a reference
	}
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
	reason := signaling.ReasonLeft
	select {
	case <-in.peer.Done():
		reason = signaling.ReasonDisconnected
		in.c.log.Info("whip connection ended")
	case <-in.stop:
	}
	in.unregister()
	in.r.post(func() { in.r.endIngest(in, reason) })
	in.peer.Close()
	in.m.releaseSession(in.r)
}

// startIngest adds a WHIP publisher to the call (room goroutine).
func (r *call) startIngest(in *Ingest) error {
	switch {
	case r.closing:
		return ErrClosing
	case r.mode == ModeP2P: // pinned since the caller looked
		return ErrP2POnly
	}
	p := signaling.Participant{ID: in.id, UserID: in.c.user.UserID, Name: in.c.user.Name, Username: in.c.user.Username, State: in.st}
	in.c.p = &p
	r.participants[p.ID] = in.c
	r.ingests[in] = struct{}{}
	r.joined.Store(int32(len(r.participants)))
	// The call moves to the SFU before anyone hears of the newcomer, so
	// no browser starts a peer-to-peer connection to it.
	r.updateTopology()
	you := p
	r.broadcast(nil, signaling.Message{Type: signaling.TypeParticipantJoined, Participant: &you})
	r.participantIn(&you)
	r.log.Info("whip participant joined", "participant_id", p.ID, "user_id", p.UserID)
	return nil
}

// endIngest takes a WHIP publisher out of the call; idempotent.
func (r *call) endIngest(in *Ingest, reason string) {
	delete(r.ingests, in)
	r.removeParticipant(in.c, reason)
}

// stopSessions ends the WHIP publishers and WHEP viewers of userID (all
// of them if userID is ""), without blocking the room goroutine.
func (r *call) stopSessions(userID string) {
	for in := range r.ingests {
		if userID == "" || in.userID == userID {
			in.requestStop()
			r.endIngest(in, signaling.ReasonLeft)
		}
	}
	for v := range r.viewers {
		if userID == "" || v.userID == userID {
			v.requestStop()
		}
	}
}

// stopIngests ends every WHIP publisher (the channel was pinned to p2p).
func (r *call) stopIngests() {
	for in := range r.ingests {
		in.requestStop()
		r.endIngest(in, signaling.ReasonLeft)
	}
}

// Player is a WHEP player of one participant of a channel's call. It is
// not a participant: nobody in the call sees it.
type Player struct {
	*session
	mv MediaViewer
}

// ParticipantID is the id of the participant watched.
func (v *Player) ParticipantID() string { return v.mv.Participant() }

// View starts a WHEP viewer for user of participantID in channelID's call
// (participantID "" = the active speaker, else the first participant
// sending camera video) and returns it with the SDP answer. The caller
// has checked membership; mode is the channel's. The choice is fixed
// for the viewer's life; it ends when that participant stops sending, on
// Close, when its connection fails, or when the room ends it. Errors
// wrap ErrNoSFU, ErrP2POnly, ErrClosing, media.ErrBadOffer,
// media.ErrNoPublisher or ErrRevoked; auth's credential ending (EndAuth)
// ends the viewer.
func (m *Manager) View(channelID, mode string, user signaling.User, auth Auth, participantID, sdp string) (*Player, string, error) {
	if m.cfg.Media == nil {
		return nil, "", ErrNoSFU
	}
	if mode == ModeP2P {
		return nil, "", ErrP2POnly
	}
	offer, err := media.ParseOffer(sdp, media.Receives)
	if err != nil {
		return nil, "", err
	}
	r := m.acquireSession(channelID, mode)
	if r == nil {
		return nil, "", ErrClosing
	}
	mv, answer, err := m.cfg.Media.View(channelID, participantID, sdp)
	if err != nil {
		m.releaseSession(r)
		if errors.Is(err, media.ErrClosed) {
			return nil, "", ErrClosing
		}
		return nil, "", fmt.Errorf("room: whep viewer: %w", err)
	}
	v := &Player{session: newSession(m, r, user.UserID), mv: mv}
	v.ice = media.NewICESession(offer.Ufrag, mv.AddCandidate, mv.RestartICE)
	if err := m.registerSession(v.session, auth); err != nil {
		mv.Close()
		m.releaseSession(r)
		return nil, "", err
	}
	r.post(func() { r.startPlayer(v) })
	go v.watch()
	m.log.Info("whep viewer started", "channel_id", channelID, "user_id", user.UserID, "participant_id", mv.Participant())
	return v, answer, nil
}

// startPlayer keeps a WHEP viewer so the room can end it (room
// goroutine).
func (r *call) startPlayer(v *Player) {
	if r.closing {
		v.requestStop()
	}
	r.viewers[v] = struct{}{}
}

// watch waits for the viewer's end, then releases it.
func (v *Player) watch() {
	defer close(v.done)
	select {
	case <-v.mv.Done():
	case <-v.stop:
	}
	v.unregister()
	v.mv.Close()
	v.r.post(func() { delete(v.r.viewers, v) })
	v.m.releaseSession(v.r)
}
