package room

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/parley/parley/internal/signaling"
)

// Call event kinds, as CallEvent.Kind.
const (
	EventCallStarted       = "call.started"
	EventCallEnded         = "call.ended"
	EventParticipantJoined = "participant.joined"
	EventParticipantLeft   = "participant.left"
)

// CallEvent is a fact about a call, reported through Config.Events: the
// call started (its first participant joined) or ended (its last one
// left), or a participant joined or left.
type CallEvent struct {
	Kind      string
	ChannelID string
	// CallID names this call of the channel: from its first participant
	// joining to its last leaving.
	CallID string
	// StartedAt is when the call started; At when this happened.
	StartedAt time.Time
	At        time.Time
	// Participant is who joined or left (participant events only).
	Participant signaling.Participant
	// Reason is why a participant left (signaling.Reason...).
	Reason string
}

// emit reports a call event (room goroutine). Events of one call are
// reported in order, one at a time, from this goroutine.
func (r *call) emit(kind string, p *signaling.Participant, reason string) {
	if r.cfg.Events == nil {
		return
	}
	ev := CallEvent{Kind: kind, ChannelID: r.channelID, CallID: r.callID, StartedAt: r.callStarted, At: time.Now(), Reason: reason}
	if p != nil {
		ev.Participant = *p
	}
	r.cfg.Events(ev)
}

// participantIn reports a new participant, starting the call if it is
// the first.
func (r *call) participantIn(p *signaling.Participant) {
	if len(r.participants) == 1 {
		b := make([]byte, 8)
		rand.Read(b)
		r.callID = "call_" + hex.EncodeToString(b)
		r.callStarted = time.Now()
		r.emit(EventCallStarted, nil, "")
	}
	r.emit(EventParticipantJoined, p, "")
}

// participantOut reports a participant gone, ending the call if it was
// the last.
func (r *call) participantOut(p signaling.Participant, reason string) {
	if r.callID == "" {
		return
	}
	r.emit(EventParticipantLeft, &p, reason)
	if len(r.participants) == 0 {
		r.emit(EventCallEnded, nil, "")
		r.callID = ""
	}
}
