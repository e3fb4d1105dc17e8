// Package webhook tells accounts' own HTTP endpoints of what happens in
// the channels they own: calls starting and ending, participants joining
// and leaving, members added and removed, recordings and studio takes
// finished.
//
// Events go through a durable outbox in the database (store.OutboxEvent,
// table webhook_deliveries): a change's events are written in the change's
// own transaction, and a call's facts at the moment they happen. A
// delivery worker (Worker) claims due rows and POSTs them, signed with
// HMAC-SHA256, retrying with capped exponential backoff for a day; each
// webhook's events go out one at a time, in the order they were written.
package webhook

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/parley/parley/internal/store"
)

// Event types a webhook may choose.
const (
	CallStarted          = "call.started"
	CallEnded            = "call.ended"
	ParticipantJoined    = "participant.joined"
	ParticipantLeft      = "participant.left"
	MemberAdded          = "member.added"
	MemberRemoved        = "member.removed"
	RecordingFinished    = "recording.finished"
	StudioTakeFinished   = "studio.take_finished"
	DefaultRetryDuration = 24 * time.Hour
)

// EventTypes lists every event type, in the order pages show them.
var EventTypes = []string{CallStarted, CallEnded, ParticipantJoined, ParticipantLeft, MemberAdded, MemberRemoved, RecordingFinished, StudioTakeFinished}

// EventLabels describes each event type for people.
var EventLabels = map[string]string{
	CallStarted:        "Call started",
	CallEnded:          "Call ended",
	ParticipantJoined:  "Participant joined a call",
	ParticipantLeft:    "Participant left a call",
	MemberAdded:        "Member added to a channel",
	MemberRemoved:      "Member removed from (or left) a channel",
	RecordingFinished:  "Call recording finished",
	StudioTakeFinished: "Studio take finished",
}

// Envelope is the JSON body of every delivery.
type Envelope struct {
	// ID is the event's id: the same in every retry and re-send, and
	// for every webhook the event goes to. Receivers de-duplicate by it.
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"createdAt"`
	ChannelID string    `json:"channelId"`
	// Data depends on Type (docs/api.md#webhooks).
	Data json.RawMessage `json:"data"`
}

// CallData is the data of call.started and call.ended.
type CallData struct {
	CallID    string     `json:"callId"`
	StartedAt time.Time  `json:"startedAt"`
	EndedAt   *time.Time `json:"endedAt,omitempty"`
}

// ParticipantData is the data of participant.joined and participant.left.
type ParticipantData struct {
	CallID        string `json:"callId"`
	ParticipantID string `json:"participantId"`
	UserID        string `json:"userId,omitempty"`
	Username      string `json:"username,omitempty"`
	Name          string `json:"name"`
	Role          string `json:"role,omitempty"`
	// Reason is why the participant left: left, removed, ended,
	// disconnected... (participant.left only).
	Reason string `json:"reason,omitempty"`
}

// MemberData is the data of member.added and member.removed.
type MemberData struct {
	UserID      string `json:"userId"`
	Username    string `json:"username"`
	DisplayName string `json:"displayName"`
	// How: "added" (by the owner), "invite" (joined by a link), "removed"
	// (by the owner) or "left" (on their own).
	How string `json:"how"`
}

// RecordingData is the data of recording.finished.
type RecordingData struct {
	RecordingID string `json:"recordingId"`
	State       string `json:"state"`
	DurationMS  int64  `json:"durationMs"`
}

// TakeData is the data of studio.take_finished.
type TakeData struct {
	TakeID     string `json:"takeId"`
	TrackID    string `json:"trackId"`
	SongID     string `json:"songId"`
	UserID     string `json:"userId"`
	DurationMS int64  `json:"durationMs"`
}

// NewEvent builds an outbox event of type typ in channelID, happening at
// at, to be retried for retryFor (0: DefaultRetryDuration).
func NewEvent(typ, channelID string, at time.Time, retryFor time.Duration, data any) (store.OutboxEvent, error) {
	if retryFor <= 0 {
		retryFor = DefaultRetryDuration
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return store.OutboxEvent{}, fmt.Errorf("webhook: event data: %w", err)
	}
	at = at.UTC().Truncate(time.Millisecond)
	env := Envelope{ID: newID("evt_"), Type: typ, CreatedAt: at, ChannelID: channelID, Data: raw}
	body, err := json.Marshal(env)
	if err != nil {
		return store.OutboxEvent{}, fmt.Errorf("webhook: event: %w", err)
	}
	return store.OutboxEvent{ID: env.ID, Type: typ, ChannelID: channelID, Payload: body, CreatedAt: at, ExpiresAt: at.Add(retryFor)}, nil
}

func newID(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// ValidEvent reports whether typ is an event type.
func ValidEvent(typ string) bool {
	_, ok := EventLabels[typ]
	return ok
}
