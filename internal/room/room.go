package room

import (
	"log/slog"
	"sort"

	"github.com/coder/websocket"

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
)

type event struct {
	kind   eventKind
	c      *client
	msg    signal.Message
	chat   signal.ChatMessage
	userID string
	code   websocket.StatusCode
	reason string
}

// room is the state of one channel's call. Only run touches its fields
// (refs belongs to the Manager's lock).
type room struct {
	channelID string
	cfg       Config
	log       *slog.Logger
	events    chan event
	refs      int

	clients      map[*client]struct{}
	participants map[string]*client
}

func newRoom(channelID string, cfg Config, log *slog.Logger) *room {
	return &room{
		channelID:    channelID,
		cfg:          cfg,
		log:          log,
		events:       make(chan event, 64),
		clients:      map[*client]struct{}{},
		participants: map[string]*client{},
	}
}

func (r *room) run() {
	for ev := range r.events {
		switch ev.kind {
		case evAttach:
			r.clients[ev.c] = struct{}{}
			ev.c.sendMsg(signal.Message{
				Type:         signal.TypeHello,
				Version:      signal.Version,
				User:         &ev.c.user,
				Participants: r.roster(nil),
				IceServers:   r.cfg.ICEServers(ev.c.user.UserID),
			})
		case evDetach:
			delete(r.clients, ev.c)
			r.removeParticipant(ev.c, ev.reason)
		case evMessage:
			r.handle(ev.c, ev.msg)
		case evChat:
			r.broadcast(nil, signal.Message{Type: signal.TypeChat, Chat: &ev.chat})
		case evKick:
			for c := range r.clients {
				if c.user.UserID == ev.userID {
					r.removeParticipant(c, signal.ReasonLeft)
					c.close(CloseRemoved, "you were removed from this channel")
				}
			}
		case evClose:
			for c := range r.clients {
				c.close(ev.code, ev.reason)
			}
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
		p := *c.p
		r.broadcast(c, signal.Message{Type: signal.TypeParticipantUpdated, Participant: &p})
	case signal.TypeOffer, signal.TypeAnswer, signal.TypeCandidate:
		to := r.participants[m.To]
		if to == nil || to == c {
			c.refuse(signal.CodeUnknownPeer, m.Type, "%s is not in the call (they may have just left)", m.To)
			return
		}
		m.From = c.p.ID
		m.To = ""
		to.sendMsg(m)
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
	if holder := r.participants[id]; id == "" || (holder != nil && holder.user.UserID != c.user.UserID) {
		id = newParticipantID()
	} else if holder != nil {
		// The same user is back on a new socket before the old one was
		// noticed dead: the new one takes over the id silently, so peers
		// keep their media connections.
		holder.p = nil
		delete(r.participants, id)
		holder.close(CloseReplaced, "you joined this call from a newer connection")
	}
	p := signal.Participant{ID: id, UserID: c.user.UserID, Name: c.user.Name}
	if m.State != nil {
		p.State = *m.State
	}
	others := r.roster(c)
	c.p = &p
	r.participants[id] = c
	you := p
	c.sendMsg(signal.Message{Type: signal.TypeJoined, You: &you, Participants: others, Topology: signal.TopologyMesh})
	r.broadcast(c, signal.Message{Type: signal.TypeParticipantJoined, Participant: &you})
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
	r.broadcast(c, signal.Message{Type: signal.TypeParticipantLeft, ID: id, Reason: reason})
	r.log.Info("participant left", "participant", id, "reason", reason)
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
