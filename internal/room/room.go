package room

import (
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/media"
	"github.com/parley/parley/internal/signal"
)

type eventKind int

const (
	evAttach  eventKind = iota // a socket opened
	evDetach                   // a socket closed
	evMessage                  // a validated client message for the room
	evChat                     // a stored chat message to broadcast
	evKick                     // close the sockets of userID
	evClose                    // close every socket
	evMode                     // the channel's mode changed
	evSFULate                  // an SFU message that came before the client's SFU connections
	evWHIP                     // a WHIP publisher joins (whip.go); answered on reply
	evWHIPEnd                  // a WHIP publisher ended
	evWHEP                     // a WHEP viewer started
	evWHEPEnd                  // a WHEP viewer ended
	evNotify                   // a server message (msg) for every socket (Manager.Notify)
)

type event struct {
	kind   eventKind
	c      *client
	msg    signal.Message
	chat   signal.ChatMessage
	userID string
	code   websocket.StatusCode
	reason string
	mode   string
	ingest *Ingest
	viewer *Viewer
	reply  chan error // buffered: the room never waits on it
}

// room is the state of one channel's call. Only run touches its fields
// (refs belongs to the Manager's lock).
type room struct {
	channelID string
	cfg       Config
	log       *slog.Logger
	events    chan event
	refs      int
	sessions  int          // of refs, WHIP/WHEP sessions (Manager's lock too)
	joined    atomic.Int32 // len(participants), readable by the Manager

	clients      map[*client]struct{}
	participants map[string]*client
	mode         string // channel mode: auto, sfu or p2p
	topology     string // what the call uses now
	retiring     []retired
	ingests      map[*Ingest]struct{} // WHIP publishers, also in participants
	viewers      map[*Viewer]struct{} // WHEP viewers, not participants
	closing      bool                 // evClose was handled: no new sessions
	// speaker carries the SFU's active-speaker changes; it is never closed
	// (media may call after the room ends) and holds only the latest.
	speaker chan string
	// mediaEnded carries SFU peers that closed by themselves (never
	// closed; senders give up if it is full).
	mediaEnded chan endedMedia
}

// retired is an SFU connection kept for a while after the room went back
// to the mesh, so clients can switch without a gap.
type retired struct {
	peer  *media.Peer
	until time.Time
}

// retireGrace is how long SFU connections outlive a switch to the mesh.
const retireGrace = 10 * time.Second

func newRoom(channelID, mode string, cfg Config, log *slog.Logger) *room {
	return &room{
		channelID:    channelID,
		cfg:          cfg,
		log:          log,
		events:       make(chan event, 64),
		clients:      map[*client]struct{}{},
		participants: map[string]*client{},
		ingests:      map[*Ingest]struct{}{},
		viewers:      map[*Viewer]struct{}{},
		mode:         mode,
		topology:     signal.TopologyMesh,
		speaker:      make(chan string, 1),
		mediaEnded:   make(chan endedMedia, 64),
	}
}

func (r *room) run() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-r.events:
			if !ok {
				r.stopMedia()
				return
			}
			r.dispatch(ev)
		case id := <-r.speaker:
			r.broadcastJoined(signal.Message{Type: signal.TypeSpeaker, ID: id})
		case e := <-r.mediaEnded:
			r.restoreMedia(e)
		case now := <-tick.C:
			r.reapRetired(now, false)
			r.refreshICEServers(now)
		}
	}
}

func (r *room) dispatch(ev event) {
	{
		switch ev.kind {
		case evAttach:
			r.clients[ev.c] = struct{}{}
			ev.c.iceAt = time.Now()
			ev.c.sendMsg(signal.Message{
				Type:         signal.TypeHello,
				Version:      signal.Version,
				User:         &ev.c.user,
				Participants: r.roster(nil),
				IceServers:   r.cfg.ICEServers(ev.c.user.UserID, ev.c.host),
			})
		case evDetach:
			delete(r.clients, ev.c)
			r.removeParticipant(ev.c, ev.reason)
		case evMessage:
			r.handle(ev.c, ev.msg)
		case evChat:
			r.broadcast(nil, signal.Message{Type: signal.TypeChat, Chat: &ev.chat})
		case evNotify:
			r.broadcast(nil, ev.msg)
		case evKick:
			r.stopSessions(ev.userID)
			for c := range r.clients {
				if c.user.UserID == ev.userID {
					r.removeParticipant(c, signal.ReasonLeft)
					c.close(CloseRemoved, removedReason)
				}
			}
		case evClose:
			r.closing = true
			r.stopSessions("")
			for c := range r.clients {
				c.close(ev.code, ev.reason)
			}
		case evSFULate:
			// Everything the room did before (join, a topology switch) is
			// done now; negotiation still runs off the room goroutine.
			go ev.c.handleSFU(r, ev.msg, true)
		case evMode:
			r.mode = ev.mode
			if r.mode == ModeP2P {
				r.stopIngests() // their media cannot go peer-to-peer
			}
			r.updateTopology()
		case evWHIP:
			ev.reply <- r.startIngest(ev.ingest)
		case evWHIPEnd:
			r.endIngest(ev.ingest, ev.reason)
		case evWHEP:
			if r.closing {
				ev.viewer.requestStop()
			}
			r.viewers[ev.viewer] = struct{}{}
		case evWHEPEnd:
			delete(r.viewers, ev.viewer)
		}
	}
}

// handle applies one message from c. Messages that need no room state
// (ping, chat) never get here.
func (r *room) handle(c *client, m signal.Message) {
	if m.Type == signal.TypeJoin {
		r.join(c, m)
		return
	}
	if c.p == nil {
		c.refuse(signal.CodeNotJoined, m.Type, "join the call before sending %q", m.Type)
		return
	}
	switch m.Type {
	case signal.TypeUpdate:
		c.p.State = *m.State
		if peer := c.media.Load(); peer != nil {
			peer.SetSending(c.p.State.Audio, c.p.State.Video, c.p.State.Screen)
		}
		p := *c.p
		r.broadcast(c, signal.Message{Type: signal.TypeParticipantUpdated, Participant: &p})
	case signal.TypeOffer, signal.TypeAnswer, signal.TypeCandidate:
		to := r.participants[m.To]
		if to == nil || to == c {
			c.refuse(signal.CodeUnknownPeer, m.Type, "%s is not in the call (they may have just left)", m.To)
			return
		}
		// A fresh message with the documented fields only: nothing the
		// sender adds can pass for the server's (signal.PeerRelay).
		to.sendMsg(signal.PeerRelay(m, c.p.ID))
	case signal.TypeLeave:
		r.removeParticipant(c, signal.ReasonLeft)
	}
}

func (r *room) join(c *client, m signal.Message) {
	if c.p != nil {
		c.refuse(signal.CodeAlreadyJoined, m.Type, "this connection is already in the call as %s", c.p.ID)
		return
	}
	id := m.Resume
	if id != "" && !r.resumeTokenOK(c, id, m.ResumeToken) {
		// Not proven to be the same participant: a newcomer, not an error,
		// so a client with a stale token still gets into the call.
		r.log.Info("resume refused: wrong token or user", "participant", id, "user", c.user.UserID)
		id = ""
	}
	// A WHIP publisher's id (no socket) is never taken over by a socket.
	if holder := r.participants[id]; id == "" || (holder != nil && (holder.user.UserID != c.user.UserID || holder.conn == nil)) {
		id = newParticipantID()
	} else if holder != nil {
		// The same user is back on a new socket before the old one was
		// noticed dead: the new one takes over the id silently, so peers
		// keep their media connections.
		holder.p = nil
		delete(r.participants, id)
		r.dropMedia(holder)
		holder.close(CloseReplaced, "you joined this call from a newer connection")
	}
	p := signal.Participant{ID: id, UserID: c.user.UserID, Name: c.user.Name, Username: c.user.Username}
	if m.State != nil {
		p.State = *m.State
	}
	others := r.roster(c)
	c.p = &p
	r.participants[id] = c
	r.joined.Store(int32(len(r.participants)))
	you := p
	topology := r.wantTopology()
	c.sendMsg(signal.Message{Type: signal.TypeJoined, You: &you, Participants: others, Topology: topology, ResumeToken: r.resumeToken(id, c.user.UserID)})
	r.broadcast(c, signal.Message{Type: signal.TypeParticipantJoined, Participant: &you})
	r.updateTopology()
	r.log.Info("participant joined", "participant", id, "user", c.user.UserID, "resumed", id == m.Resume)
}

func (r *room) removeParticipant(c *client, reason string) {
	if c.p == nil {
		return
	}
	id := c.p.ID
	c.p = nil
	if r.participants[id] != c {
		return
	}
	delete(r.participants, id)
	r.joined.Store(int32(len(r.participants)))
	r.dropMedia(c)
	r.broadcast(c, signal.Message{Type: signal.TypeParticipantLeft, ID: id, Reason: reason})
	r.log.Info("participant left", "participant", id, "reason", reason)
	r.updateTopology()
}

// roster lists the call's participants except skip, in a stable order.
func (r *room) roster(skip *client) []signal.Participant {
	ps := make([]signal.Participant, 0, len(r.participants))
	for _, c := range r.participants {
		if c != skip {
			ps = append(ps, *c.p)
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].ID < ps[j].ID })
	return ps
}

// broadcast encodes m once and queues it on every socket but skip.
func (r *room) broadcast(skip *client, m signal.Message) {
	b, err := signal.Encode(m)
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
func (r *room) broadcastJoined(m signal.Message) {
	b, err := signal.Encode(m)
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
func (r *room) refreshICEServers(now time.Time) {
	if r.cfg.ICERefresh <= 0 {
		return
	}
	for c := range r.clients {
		if c.conn != nil && now.Sub(c.iceAt) >= r.cfg.ICERefresh {
			c.iceAt = now
			c.sendMsg(signal.Message{Type: signal.TypeIceServers, IceServers: r.cfg.ICEServers(c.user.UserID, c.host)})
		}
	}
}
