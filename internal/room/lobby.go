package room

import (
	"slices"

	"github.com/parley/parley/internal/signal"
)

// wait puts a guest who must wait into the lobby instead of the call,
// and reports whether it did. Members in the call are told (lobby); the
// guest hears admission "waiting".
func (r *room) wait(c *client, m signal.Message) bool {
	if !c.waits {
		return false
	}
	if c.waitID != "" {
		c.refuse(signal.CodeAlreadyJoined, m.Type, "you are already waiting to be let in")
		return true
	}
	c.waitID = newParticipantID()
	c.waitJoin = m
	r.waiting = append(r.waiting, c)
	c.sendMsg(signal.Message{Type: signal.TypeAdmission, Action: signal.AdmissionWaiting})
	r.tellLobby()
	r.log.Info("waiting in the lobby", "user_id", c.user.UserID)
	return true
}

// leaveLobby takes c out of the lobby (its socket closed, or a decision
// was made).
func (r *room) leaveLobby(c *client) {
	i := slices.Index(r.waiting, c)
	if i < 0 {
		return
	}
	r.waiting = slices.Delete(r.waiting, i, i+1)
	c.waitID = ""
	r.tellLobby()
}

// lobbyMsg lists who waits, in the order they came.
func (r *room) lobbyMsg() signal.Message {
	w := make([]signal.Waiting, 0, len(r.waiting))
	for _, c := range r.waiting {
		w = append(w, signal.Waiting{ID: c.waitID, Name: c.user.Name, Role: c.role})
	}
	return signal.Message{Type: signal.TypeLobby, Waiting: w}
}

// tellLobby sends the lobby list to every member in the call (guests do
// not decide, and do not see who else is coming).
func (r *room) tellLobby() {
	m := r.lobbyMsg()
	for _, c := range r.participants {
		if c.role != signal.RoleGuest {
			c.sendMsg(m)
		}
	}
}

// decide carries out a member's admit or deny.
func (r *room) decide(c *client, m signal.Message) {
	if c.role == signal.RoleGuest {
		c.refuse(signal.CodeForbidden, m.Type, "only members of the channel let people in")
		return
	}
	var w *client
	for _, x := range r.waiting {
		if x.waitID == m.ID {
			w = x
			break
		}
	}
	if w == nil {
		c.refuse(signal.CodeUnknownPeer, m.Type, "nobody with id %s is waiting (someone may have decided already, or they left)", m.ID)
		return
	}
	join := w.waitJoin
	r.leaveLobby(w)
	if m.Type == signal.TypeDeny {
		w.sendMsg(signal.Message{Type: signal.TypeAdmission, Action: signal.AdmissionDenied, By: c.p.ID})
		r.log.Info("lobby: denied", "user_id", w.user.UserID, "by", c.p.ID)
		return
	}
	w.sendMsg(signal.Message{Type: signal.TypeAdmission, Action: signal.AdmissionAdmitted, By: c.p.ID})
	r.log.Info("lobby: admitted", "user_id", w.user.UserID, "by", c.p.ID)
	w.waits = false // admitted for the life of this socket
	r.join(w, join)
}
