package room

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
	if err := r.moderateAs(c.role, c.p.ID, m); err != nil {
		c.refuse(err.Code, m.Type, "%s", err.Message)
	}
}

// moderateAs carries out a moderation message from someone with role,
// who is participant by in the call ("" for a moderator acting through
// the API from outside it), or says why not.
func (r *call) moderateAs(role, by string, m signaling.Message) *signaling.Error {
	refuse := func(code, format string, args ...any) *signaling.Error {
		return &signaling.Error{Code: code, Ref: m.Type, Message: fmt.Sprintf(format, args...)}
	}
	if !signaling.CanModerate(role) {
		return refuse(signaling.CodeForbidden, "only the channel's owner and moderators can %s", actionText(m.Action))
	}
	var target *socket
	if m.ID != "" {
		target = r.participants[m.ID]
		if target == nil || target.p == nil {
			return refuse(signaling.CodeUnknownPeer, "%s is not in the call (they may have just left)", m.ID)
		}
		if target.role == signaling.RoleOwner && role != signaling.RoleOwner {
			return refuse(signaling.CodeForbidden, "nobody can %s the channel's owner", actionText(m.Action))
		}
		if target.conn == nil && m.Action != signaling.ActionRemove {
			return refuse(signaling.CodeInvalid, "a WHIP publisher can only be removed; its encoder does not take requests")
		}
	}
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
	return nil
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

// CallState is a channel's call as the API shows it.
type CallState struct {
	// Participants are the people (and WHIP publishers) in the call, by
	// name.
	Participants []signaling.Participant
	// Locked: nobody new may join until a moderator unlocks it.
	Locked bool
}

// ErrModeration wraps a refused Moderate; the *signaling.Error in the
// chain says why (CodeForbidden, CodeUnknownPeer, CodeInvalid).
var ErrModeration = errors.New("room: moderation refused")

// Call reports who is in channelID's call now (none: an empty state).
func (m *Manager) Call(ctx context.Context, channelID string) (CallState, error) {
	done := make(chan CallState, 1)
	m.mu.Lock()
	r := m.rooms[channelID]
	m.mu.Unlock()
	if r == nil || !r.post(func() {
		st := CallState{Locked: r.locked, Participants: []signaling.Participant{}}
		for _, c := range r.participants {
			if c.p != nil {
				st.Participants = append(st.Participants, *c.p)
			}
		}
		slices.SortFunc(st.Participants, func(a, b signaling.Participant) int {
			if a.Name != b.Name {
				if a.Name < b.Name {
					return -1
				}
				return 1
			}
			if a.ID < b.ID {
				return -1
			}
			if a.ID > b.ID {
				return 1
			}
			return 0
		})
		done <- st
	}) {
		return CallState{Participants: []signaling.Participant{}}, nil
	}
	select {
	case st := <-done:
		return st, nil
	case <-ctx.Done():
		return CallState{}, ctx.Err()
	}
}

// Moderate carries out a moderation action (signaling.ActionMute,
// ActionCameraOff, ActionRemove, ActionLock, ...) on channelID's call
// for user, who acts from outside the call (through the API) with the
// role the caller looked up; target is a participant id for the actions
// that take one. The same rules apply as to a moderate message: an error
// wrapping ErrNoCall when nobody is in the call, else one wrapping
// ErrModeration and a *signaling.Error saying why.
func (m *Manager) Moderate(ctx context.Context, channelID string, user signaling.User, action, target string, ask bool) error {
	done := make(chan *signaling.Error, 1)
	m.mu.Lock()
	r := m.rooms[channelID]
	m.mu.Unlock()
	msg := signaling.Message{Type: signaling.TypeModerate, Action: action, ID: target, Ask: ask}
	if r == nil || !r.post(func() {
		if len(r.participants) == 0 {
			done <- &signaling.Error{Code: signaling.CodeInvalid, Message: ErrNoCall.Error()}
			return
		}
		by := ""
		for _, c := range r.participants {
			if c.p != nil && c.user.UserID == user.UserID && c.conn != nil {
				by = c.p.ID // the moderator is in the call too: their pages name them
				break
			}
		}
		done <- r.moderateAs(user.Role, by, msg)
	}) {
		return ErrNoCall
	}
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
		if err.Message == ErrNoCall.Error() {
			return ErrNoCall
		}
		return fmt.Errorf("%w: %w", ErrModeration, err)
	case <-ctx.Done():
		return ctx.Err()
	}
}
