package room

import (
	"slices"

	"github.com/parley/parley/internal/signaling"
)

// wait puts a guest who must wait into the lobby instead of the call,
// and reports whether it did. Members in the call are told (lobby); the
// guest hears admission "waiting".
func (r *call) wait(c *socket, m signaling.Message) bool {
	if !c.waits {
		return false
	}
	if c.waitID != "" {
		c.refuse(signaling.CodeAlreadyJoined, m.Type, "you are already waiting to be let in")
		return true
	}
	c.waitID = newParticipantID()
	c.waitJoin = m
	r.waiting = append(r.waiting, c)
	c.sendMsg(signaling.Message{Type: signaling.TypeAdmission, Action: signaling.AdmissionWaiting})
	r.tellLobby()
	r.log.Info("waiting in the lobby", "user_id", c.user.UserID)
	return true
}

// leaveLobby takes c out of the lobby (its socket closed, or a decision
// was made).
func (r *call) leaveLobby(c *socket) {
	i := slices.Index(r.waiting, c)
	if i < 0 {
		return
	}
	r.waiting = slices.Delete(r.waiting, i, i+1)
	c.waitID = ""
	r.tellLobby()
}

// lobbyMsg lists who waits, in the order they came.
func (r *call) lobbyMsg() signaling.Message {
	w := make([]signaling.Waiting, 0, len(r.waiting))
	for _, c := range r.waiting {
		w = append(w, signaling.Waiting{ID: c.waitID, Name: c.user.Name, Role: c.role})
	}
	return signaling.Message{Type: signaling.TypeLobby, Waiting: w}
}

// tellLobby sends the lobby list to every member in the call (guests do
// not decide, and do not see who else is coming).
func (r *call) tellLobby() {
	m := r.lobbyMsg()
	for _, c := range r.participants {
		if c.role != signaling.RoleGuest {
			c.sendMsg(m)
		}
	}
}

// decide carries out a member's admit or deny.
func (r *call) decide(c *socket, m signaling.Message) {
	if c.role == signaling.RoleGuest {
		c.refuse(signaling.CodeForbidden, m.Type, "only members of the channel let people in")
		return
	}
	var w *socket
	for _, x := range r.waiting {
		if x.waitID == m.ID {
			w = x
			break
		}
	}
	if w == nil {
		c.refuse(signaling.CodeUnknownPeer, m.Type, "nobody with id %s is waiting (someone may have decided already, or they left)", m.ID)
		return
	}
	join := w.waitJoin
	r.leaveLobby(w)
	if m.Type == signaling.TypeDeny {
		w.sendMsg(signaling.Message{Type: signaling.TypeAdmission, Action: signaling.AdmissionDenied, By: c.p.ID})
		r.log.Info("lobby: denied", "user_id", w.user.UserID, "by", c.p.ID)
		return
	}
	w.sendMsg(signaling.Message{Type: signaling.TypeAdmission, Action: signaling.AdmissionAdmitted, By: c.p.ID})
	r.log.Info("lobby: admitted", "user_id", w.user.UserID, "by", c.p.ID)
	w.waits = false // admitted for the life of this socket
	r.join(w, join)
}
