package room

import (
	"github.com/parley/parley/internal/signaling"
)

// hold is how a moderator's mute or camera-off binds a participant.
type hold uint8

const (
	holdNone hold = iota
	// holdUntilAck: the source stays off until the participant's own
	// update reports it off. An update still saying "on" may have been
	// sent before the page heard of the mute, so it does not count; the
	// first "off" shows the page applied it, and from then on turning
	// the source back on is the participant's own choice. A page that
	// ignores the mute never acknowledges it and stays muted.
	holdUntilAck
)

// enforce turns off in s what a moderator turned off for c and c may not
// yet turn back on, and takes an update that turns it off as the
// acknowledgement of a holdUntilAck.
func (r *call) enforce(c *socket, s *signaling.State) {
	if c.audioHold == holdUntilAck && !s.Audio {
		c.audioHold = holdNone
	}
	if c.videoHold == holdUntilAck && !s.Video {
		c.videoHold = holdNone
	}
	if c.audioHold != holdNone || r.held[c.user.UserID] {
		s.Audio = false
	}
	if c.videoHold != holdNone {
		s.Video = false
	}
	if !c.mayPublish() {
		s.Audio, s.Video, s.Screen = false, false, false
	}
}

// update applies a participant's new state: what a moderator holds off
// stays off, the SFU forwards only what the state says is on, and a
// raised hand takes the next place in the queue.
func (r *call) update(c *socket, s signaling.State) {
	wanted := s.Audio
	r.enforce(c, &s)
	if wanted && !s.Audio && r.held[c.user.UserID] {
		c.refuse(signaling.CodeMuted, signaling.TypeUpdate, "a moderator muted you and asked you to wait: raise your hand to ask to speak")
	}
	switch {
	case s.Hand && !c.p.State.Hand:
		r.handSeq++
		c.p.HandSeq = r.handSeq
	case !s.Hand:
		c.p.HandSeq = 0
	}
	c.p.State = s
	r.applyState(c)
}

// applyState hands c's state to its SFU connections and tells everyone
// (c included: its own state may differ from what it sent).
func (r *call) applyState(c *socket) {
	if peer := c.peer; peer != nil {
		peer.SetSending(c.p.State.Audio, c.p.State.Video, c.p.State.Screen)
	}
	p := *c.p
	r.broadcast(nil, signaling.Message{Type: signaling.TypeParticipantUpdated, Participant: &p})
}

// mayJoin refuses a join into a locked call (unless it is the same
// participant coming back with a valid resume, or a moderator) and a
// join by a user a moderator removed.
func (r *call) mayJoin(c *socket, resume string) bool {
	switch {
	case signaling.CanModerate(c.role):
		return true
	case r.removed[c.user.UserID]:
		c.refuse(signaling.CodeRemoved, signaling.TypeJoin, "a moderator removed you from this call; you can join again once it has ended")
		return false
	case r.locked && resume == "":
		c.refuse(signaling.CodeLocked, signaling.TypeJoin, "the call is locked: nobody new can join until a moderator unlocks it")
		return false
	}
	return true
}

// moderate carries out a moderation message from c, once it is sure c
// may: the owner and moderators only, never against the owner.
func (r *call) moderate(c *socket, m signaling.Message) {
	if !signaling.CanModerate(c.role) {
		c.refuse(signaling.CodeForbidden, m.Type, "only the channel's owner and moderators can %s", actionText(m.Action))
		return
	}
	var target *socket
	if m.ID != "" {
		target = r.participants[m.ID]
		if target == nil || target.p == nil {
			c.refuse(signaling.CodeUnknownPeer, m.Type, "%s is not in the call (they may have just left)", m.ID)
			return
		}
		if target.role == signaling.RoleOwner && c.role != signaling.RoleOwner {
			c.refuse(signaling.CodeForbidden, m.Type, "nobody can %s the channel's owner", actionText(m.Action))
			return
		}
		if target.conn == nil && m.Action != signaling.ActionRemove {
			c.refuse(signaling.CodeInvalid, m.Type, "a WHIP publisher can only be removed; its encoder does not take requests")
			return
		}
	}
	by := c.p.ID
	announce := signaling.Message{Type: signaling.TypeModerated, Action: m.Action, ID: m.ID, By: by, Ask: m.Ask}
	switch m.Action {
	case signaling.ActionMute:
		target.audioHold = holdUntilAck
		if m.Ask {
			r.held[target.user.UserID] = true
		}
		r.enforce(target, &target.p.State)
		r.enforceOnServer()
		r.broadcastJoined(announce)
		r.applyState(target)
	case signaling.ActionAllowUnmute:
		delete(r.held, target.user.UserID)
		r.broadcastJoined(announce)
	case signaling.ActionCameraOff:
		target.videoHold = holdUntilAck
		r.enforce(target, &target.p.State)
		r.enforceOnServer()
		r.broadcastJoined(announce)
		r.applyState(target)
	case signaling.ActionRemove:
		r.removed[target.user.UserID] = true
		r.broadcastJoined(announce)
		if target.conn == nil {
			r.stopSessions(target.user.UserID)
		}
		r.removeParticipant(target, signaling.ReasonRemoved)
	case signaling.ActionLock, signaling.ActionUnlock:
		r.locked = m.Action == signaling.ActionLock
		r.broadcast(nil, announce)
	case signaling.ActionEnd:
		r.broadcast(nil, announce)
		r.log.Info("call ended by a moderator", "participant_id", by)
		for _, p := range r.participants {
			if p.conn == nil {
				r.stopSessions(p.user.UserID)
			}
			r.removeParticipant(p, signaling.ReasonEnded)
		}
	}
	r.log.Info("moderation", "action", m.Action, "by", by, "target", m.ID)
}

// enforceOnServer moves a mesh call to the SFU, where the server decides
// what is forwarded: in a mesh media flows between the browsers, and a
// page that ignores a mute would still be heard. Without an SFU (none on
// the server, or the channel pinned to p2p) the mute is only asked of the
// muted page (docs/protocol.md).
func (r *call) enforceOnServer() {
	if r.cfg.Media == nil || r.mode == ModeP2P || r.forceSFU {
		return
	}
	r.forceSFU = true
	r.updateTopology()
}

// callOver forgets the call's moderation once nobody is left in it: the
// next call starts unlocked, with nobody removed or held.
func (r *call) callOver() {
	if len(r.participants) > 0 {
		return
	}
	wasLocked := r.locked
	r.locked, r.forceSFU, r.handSeq = false, false, 0
	clear(r.removed)
	clear(r.held)
	if wasLocked {
		// Lobby sockets showed the lock; the next call is open.
		r.broadcast(nil, signaling.Message{Type: signaling.TypeModerated, Action: signaling.ActionUnlock})
	}
}

// setRole applies a change of userID's role to its sockets and
// participants.
func (r *call) setRole(userID, role string) {
	for c := range r.clients {
		if c.user.UserID != userID || c.role == role {
			continue
		}
		c.role = role
		if c.p != nil {
			c.p.Role = role
			p := *c.p
			r.broadcast(nil, signaling.Message{Type: signaling.TypeParticipantUpdated, Participant: &p})
		}
	}
}

// SetRole tells a running call that userID's role in channelID changed
// (made or unmade a moderator).
func (m *Manager) SetRole(channelID, userID, role string) {
	m.tell(channelID, func(r *call) { r.setRole(userID, role) })
}

func actionText(action string) string {
	switch action {
	case signaling.ActionMute:
		return "mute others"
	case signaling.ActionAllowUnmute:
		return "let others unmute"
	case signaling.ActionCameraOff:
		return "turn off others' cameras"
	case signaling.ActionRemove:
		return "remove people from the call"
	case signaling.ActionLock:
		return "lock the call"
	case signaling.ActionUnlock:
		return "unlock the call"
	default:
		return "end the call for everyone"
	}
}
