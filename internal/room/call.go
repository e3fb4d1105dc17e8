package room

import (
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/signaling"
)

// call is the state of one channel's call (the package's "room"), an
// actor: only its goroutine (run) touches its fields, and everyone else
// hands it closures through post (refs and sessions belong to the
// Manager's lock).
type call struct {
	channelID string
	cfg       Config
	log       *slog.Logger
	inbox     chan func()   // run on the room goroutine, in order
	quit      chan struct{} // closed by the Manager once refs is 0
	refs      int
	sessions  int          // of refs, WHIP/WHEP sessions (Manager's lock too)
	joined    atomic.Int32 // len(participants), readable by the Manager

	// chatTurn (capacity 1) is held by a reader goroutine from before it
	// stores a chat message until its broadcast is queued on inbox, so
	// chat is broadcast in the order it was stored (see client.chat).
	chatTurn chan struct{}

	clients      map[*socket]struct{}
	participants map[string]*socket
	mode         string // channel mode: auto, sfu or p2p
	topology     string // what the call uses now
	retiring     []retired
	ingests      map[*Ingest]struct{} // WHIP publishers, also in participants
	viewers      map[*Player]struct{} // WHEP players, not participants
	closing      bool                 // closeAll ran: no new sessions
	rec          *recState            // the running recording (record.go)
	// Moderation (moderate.go): locked refuses new joins; removed holds
	// the users a moderator removed, refused until the call ends;
	// forceSFU keeps the call on the SFU once a moderator muted someone
	// in it, so that the mute is enforced by the server; handSeq numbers
	// raised hands.
	locked  bool
	removed map[string]bool
	// capacity is the most participants the call takes; 0 = no limit
	// (set once, when the room is made).
	capacity int
	// waiting are the sockets in the lobby, in the order they came
	// (lobby.go).
	waiting []*socket
	// held holds the users a moderator muted with "ask to unmute", by
	// user id: their audio stays off, even across a rejoin, until a
	// moderator allows it or the call ends.
	held     map[string]bool
	forceSFU bool
	handSeq  int
	// speaker carries the SFU's active-speaker changes; it is never closed
	// (media may call after the room ends) and holds only the latest.
	speaker chan string
	// speakerNow is the last speaker broadcast, told to each newcomer so
	// a page that joins while someone talks highlights them too.
	speakerNow string
	// mediaEnded carries SFU peers that closed by themselves (never
	// closed; senders give up if it is full).
	mediaEnded chan endedMedia
	// callID and callStarted name the call in progress for Config.Events
	// ("" between calls; events.go).
	callID      string
	callStarted time.Time
}

// retired is an SFU connection kept for a while after the room went back
// to the mesh, so clients can switch without a gap.
type retired struct {
	peer  MediaPeer
	until time.Time
}

// retireGrace is how long SFU connections outlive a switch to the mesh.
const retireGrace = 10 * time.Second

func newCall(channelID, mode string, cfg Config, log *slog.Logger) *call {
	return &call{
		channelID:    channelID,
		cfg:          cfg,
		log:          log,
		inbox:        make(chan func(), 64),
		chatTurn:     make(chan struct{}, 1),
		quit:         make(chan struct{}),
		clients:      map[*socket]struct{}{},
		participants: map[string]*socket{},
		ingests:      map[*Ingest]struct{}{},
		viewers:      map[*Player]struct{}{},
		removed:      map[string]bool{},
		held:         map[string]bool{},
		mode:         mode,
		topology:     signaling.TopologyMesh,
		speaker:      make(chan string, 1),
		mediaEnded:   make(chan endedMedia, 64),
	}
}

// post runs f on the room goroutine, after everything posted before it.
// It blocks while the queue is full; it drops f (false) once the room has
// stopped, which cannot happen while the caller holds a reference (a
// socket or a WHIP/WHEP session), only for the Manager's own messages.
// The Manager never calls it with its lock held.
func (r *call) post(f func()) bool {
	select {
	case r.inbox <- f:
		return true
	case <-r.quit:
		return false
	}
}

func (r *call) run() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case f := <-r.inbox:
			f()
		case <-r.quit:
			// Every reference posted its last message before it was
			// dropped: run what is still queued, then stop.
			for {
				select {
				case f := <-r.inbox:
					f()
				default:
					if r.rec != nil {
						r.stopRecording(true, "the call ended")
					}
					r.stopMedia()
					return
				}
			}
		case id := <-r.speaker:
			r.speakerNow = id
			r.broadcastJoined(signaling.Message{Type: signaling.TypeSpeaker, ID: id})
		case e := <-r.mediaEnded:
			r.restoreMedia(e)
		case now := <-tick.C:
			r.reapRetired(now, false)
			r.refreshICEServers(now)
		}
	}
}

// attach takes in a socket that opened: it gets hello.
func (r *call) attach(c *socket) {
	r.clients[c] = struct{}{}
	c.iceAt = time.Now()
	c.sendMsg(signaling.Message{
		Type:         signaling.TypeHello,
		Version:      signaling.Version,
		User:         &c.user,
		Participants: r.roster(nil),
		IceServers:   r.cfg.ICEServers(c.user.UserID, c.host),
		Locked:       r.locked,
	})
	if m, ok := r.recordingMsg(); ok {
		c.sendMsg(m)
	}
}

// detach forgets a socket that closed, and its participant.
func (r *call) detach(c *socket, reason string) {
	delete(r.clients, c)
	r.leaveLobby(c)
	r.removeParticipant(c, reason)
}

// kick ends everything userID has in the call: sockets, WHIP publishers,
// WHEP viewers.
func (r *call) kick(userID string) {
	r.stopSessions(userID)
	for c := range r.clients {
		if c.user.UserID == userID {
			r.removeParticipant(c, signaling.ReasonLeft)
			c.close(CloseRemoved, removedReason)
		}
	}
}

// closeAll closes every socket and session; the room takes no new
// sessions after it.
func (r *call) closeAll(code websocket.StatusCode, reason string) {
	r.closing = true
	r.stopSessions("")
	for c := range r.clients {
		c.close(code, reason)
	}
}

// setMode applies a change of the channel's media mode.
func (r *call) setMode(mode string) {
	r.mode = mode
	if r.mode == ModeP2P {
		r.stopIngests() // their media cannot go peer-to-peer
		if r.rec != nil {
			r.stopRecording(true, "the channel was pinned to peer-to-peer, where media never reaches the server")
		}
	}
	r.updateTopology()
}

// handle applies one message from c. Messages that need no room state
// (ping, chat) never get here.
func (r *call) handle(c *socket, m signaling.Message) {
	if m.Type == signaling.TypeJoin {
		r.join(c, m)
		return
	}
	if c.p == nil {
		c.refuse(signaling.CodeNotJoined, m.Type, "join the call before sending %q", m.Type)
		return
	}
	switch m.Type {
	case signaling.TypeUpdate:
		r.update(c, *m.State)
	case signaling.TypeModerate:
		r.moderate(c, m)
	case signaling.TypeAdmit, signaling.TypeDeny:
		r.decide(c, m)
	case signaling.TypeOffer, signaling.TypeAnswer, signaling.TypeCandidate:
		if !c.mayPublish() {
			// Peer-to-peer media would bypass the server's checks; the
			// call is on the SFU while such a participant is in it.
			c.refuse(signaling.CodeForbidden, m.Type, "your join token does not allow sending media to other participants directly")
			return
		}
		to := r.participants[m.To]
		if to == nil || to == c {
			c.refuse(signaling.CodeUnknownPeer, m.Type, "%s is not in the call (they may have just left)", m.To)
			return
		}
		// A fresh message with the documented fields only: nothing the
		// sender adds can pass for the server's (signaling.PeerRelay).
		to.sendMsg(signaling.PeerRelay(m, c.p.ID))
	case signaling.TypeLeave:
		r.removeParticipant(c, signaling.ReasonLeft)
	}
}

func (r *call) join(c *socket, m signaling.Message) {
	if c.p != nil {
		c.refuse(signaling.CodeAlreadyJoined, m.Type, "this connection is already in the call as %s", c.p.ID)
		return
	}
	id := m.Resume
	if id != "" && !r.resumeTokenOK(c, id, m.ResumeToken) {
		// Not proven to be the same participant: a newcomer, not an error,
		// so a client with a stale token still gets into the call.
		r.log.Info("resume refused: wrong token or user", "participant_id", id, "user_id", c.user.UserID)
		id = ""
	}
	if !r.mayJoin(c, id) {
		return
	}
	id, ok := r.tokenJoin(c, id)
	if !ok {
		return
	}
	if r.wait(c, m) {
		return
	}
	// A WHIP publisher's id (no socket) is never taken over by a socket.
	holder := r.participants[id]
	heldAudio, heldVideo := holdNone, holdNone
	if id == "" || (holder != nil && (holder.user.UserID != c.user.UserID || holder.conn == nil)) {
		holder = nil
		id = newParticipantID()
	} else if holder != nil {
		// The same user is back on a new socket before the old one was
		// noticed dead: the new one takes over the id silently, so peers
		// keep their media connections.
		heldAudio, heldVideo = holder.audioHold, holder.videoHold
		holder.p = nil
		holder.audioHold, holder.videoHold = holdNone, holdNone
		delete(r.participants, id)
		r.dropMedia(holder)
		holder.close(CloseReplaced, "you joined this call from a newer connection")
	}
	if holder == nil && r.capacity > 0 && len(r.participants) >= r.capacity {
		c.refuse(signaling.CodeFull, signaling.TypeJoin, "this call is full: it takes %d people at once", r.capacity)
		return
	}
	p := signaling.Participant{ID: id, UserID: c.user.UserID, Name: c.user.Name, Username: c.user.Username, Role: c.role}
	if m.State != nil {
		p.State = *m.State
	}
	// The same participant on a new socket: a mute it has not
	// acknowledged yet stays.
	c.audioHold, c.videoHold = heldAudio, heldVideo
	r.enforce(c, &p.State)
	if p.State.Hand {
		r.handSeq++
		p.HandSeq = r.handSeq
	}
	others := r.roster(c)
	c.p = &p
	r.participants[id] = c
	r.joined.Store(int32(len(r.participants)))
	you := p
	topology := r.wantTopology()
	c.sendMsg(signaling.Message{Type: signaling.TypeJoined, You: &you, Participants: others, Topology: topology, ResumeToken: r.resumeToken(id, c.user.UserID), Locked: r.locked})
	r.broadcast(c, signaling.Message{Type: signaling.TypeParticipantJoined, Participant: &you})
	if holder == nil { // not the same participant on a new socket
		r.participantIn(&you)
	}
	if _, ok := r.participants[r.speakerNow]; ok && r.speakerNow != id {
		c.sendMsg(signaling.Message{Type: signaling.TypeSpeaker, ID: r.speakerNow})
	}
	if r.rec != nil {
		r.rec.s.Participant(id, c.user)
	}
	if len(r.waiting) > 0 && c.role != signaling.RoleGuest {
		c.sendMsg(r.lobbyMsg())
	}
	r.updateTopology()
	r.log.Info("participant joined", "participant_id", id, "user_id", c.user.UserID, "resumed", id == m.Resume)
}

func (r *call) removeParticipant(c *socket, reason string) {
	if c.p == nil {
		return
	}
	id := c.p.ID
	gone := *c.p
	c.p = nil
	c.audioHold, c.videoHold = holdNone, holdNone
	if r.participants[id] != c {
		return
	}
	delete(r.participants, id)
	r.joined.Store(int32(len(r.participants)))
	r.participantOut(gone, reason)
	r.callOver()
	r.dropMedia(c)
	r.broadcast(c, signaling.Message{Type: signaling.TypeParticipantLeft, ID: id, Reason: reason})
	r.log.Info("participant left", "participant_id", id, "reason", reason)
	if r.rec != nil && len(r.participants) == 0 {
		r.stopRecording(true, "everyone left the call")
	}
	r.updateTopology()
}

// roster lists the call's participants except skip, in a stable order.
func (r *call) roster(skip *socket) []signaling.Participant {
	ps := make([]signaling.Participant, 0, len(r.participants))
	for _, c := range r.participants {
		if c != skip {
			ps = append(ps, *c.p)
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].ID < ps[j].ID })
	return ps
}

// broadcast encodes m once and queues it on every socket but skip.
func (r *call) broadcast(skip *socket, m signaling.Message) {
	b, err := signaling.Encode(m)
	if err != nil {
		r.log.Error("encode broadcast", "type", m.Type, "err", err)
		return
	}
	for c := range r.clients {
		if c != skip {
			c.send(b)
		}
	}
}

// broadcastJoined encodes m once and queues it on every joined socket.
func (r *call) broadcastJoined(m signaling.Message) {
	b, err := signaling.Encode(m)
	if err != nil {
		r.log.Error("encode broadcast", "type", m.Type, "err", err)
		return
	}
	for _, c := range r.participants {
		c.send(b)
	}
}

// refreshICEServers sends fresh TURN credentials to sockets whose last
// ones are older than ICERefresh, so a long call outlives them.
func (r *call) refreshICEServers(now time.Time) {
	if r.cfg.ICERefresh <= 0 {
		return
	}
	for c := range r.clients {
		if c.conn != nil && now.Sub(c.iceAt) >= r.cfg.ICERefresh {
			c.iceAt = now
			c.sendMsg(signaling.Message{Type: signaling.TypeIceServers, IceServers: r.cfg.ICEServers(c.user.UserID, c.host)})
		}
	}
}
