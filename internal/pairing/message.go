package pairing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Subprotocol is the WebSocket subprotocol of both pairing sockets.
const Subprotocol = "parley-pair.v1"

// Limits on what a client may send (docs/protocol.md, "Sending to another
// device"). An offer carries one m-section per forwarded track: a grid of
// 16 participants (32 tracks) stays well under MaxSDPBytes.
const (
	MaxMessageBytes   = 128 << 10
	MaxSDPBytes       = 120000
	MaxCandidateBytes = 1024
	MaxLabels         = 32
	MaxLabelBytes     = 128
	MaxReasonBytes    = 200
)

// Message types. Clients send offer (sender only), answer (receiver
// only), candidate and stop; the server sends code, paired, expired, stop,
// error, and relays the others unchanged in meaning.
const (
	TypeCode      = "code"
	TypePaired    = "paired"
	TypeExpired   = "expired"
	TypeOffer     = "offer"
	TypeAnswer    = "answer"
	TypeCandidate = "candidate"
	TypeStop      = "stop"
	TypeError     = "error"
)

// Modes of an offer: what the sender forwards.
const (
	ModeSpeaker     = "speaker"     // the active speaker, switched with replaceTrack
	ModeParticipant = "participant" // one chosen participant
	ModeGrid        = "grid"        // everyone, one stream each
)

// Role is which end of a pair a socket is.
type Role int

// The two ends.
const (
	RoleReceiver Role = iota
	RoleSender
)

func (r Role) String() string {
	if r == RoleSender {
		return "sender"
	}
	return "receiver"
}

// Candidate is an ICE candidate as RTCIceCandidateInit has it.
type Candidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *int    `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// Label names one forwarded stream (by its MediaStream id) for the
// receiver's tiles.
type Label struct {
	Stream string `json:"stream"`
	Name   string `json:"name"`
}

// Message is every pairing message; which fields a type may carry is
// checked by Decode (clients) and fixed by the server's constructors.
type Message struct {
	Type      string     `json:"type"`
	Code      string     `json:"code,omitempty"`      // code: the 6 digits to show
	ExpiresIn int        `json:"expiresIn,omitempty"` // code: seconds until it expires unused
	Name      string     `json:"name,omitempty"`      // paired (to the receiver): the sender's display name
	SDP       string     `json:"sdp,omitempty"`       // offer, answer
	Mode      string     `json:"mode,omitempty"`      // offer
	Labels    []Label    `json:"labels,omitempty"`    // offer
	Candidate *Candidate `json:"candidate,omitempty"` // candidate
	Reason    string     `json:"reason,omitempty"`    // stop
	Message   string     `json:"message,omitempty"`   // error
}

// ErrInvalid wraps every reason Decode refuses a message.
var ErrInvalid = errors.New("invalid pairing message")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Decode reads one message a client of role from sent, refusing anything
// but the types that role may send, fields those types do not carry,
// unknown fields and oversized values. The result holds only the allowed
// fields, so relaying it passes on nothing else.
func Decode(data []byte, from Role) (Message, error) {
	if len(data) > MaxMessageBytes {
		return Message{}, invalid("message of %d bytes (at most %d)", len(data), MaxMessageBytes)
	}
	if !utf8.Valid(data) {
		return Message{}, invalid("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Message
	if err := dec.Decode(&m); err != nil {
		return Message{}, invalid("not a JSON message object of known fields: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Message{}, invalid("data after the message")
	}
	if m.Code != "" || m.ExpiresIn != 0 || m.Name != "" || m.Message != "" {
		return Message{}, invalid("code, expiresIn, name and message are the server's fields")
	}
	out := Message{Type: m.Type}
	switch m.Type {
	case TypeOffer, TypeAnswer:
		want := RoleSender
		if m.Type == TypeAnswer {
			want = RoleReceiver
		}
		if from != want {
			return Message{}, invalid("the %s does not send %s", from, m.Type)
		}
		if m.Candidate != nil || m.Reason != "" {
			return Message{}, invalid("%s carries sdp (and, in an offer, mode and labels) only", m.Type)
		}
		if m.SDP == "" || len(m.SDP) > MaxSDPBytes {
			return Message{}, invalid("%s needs sdp of 1 to %d bytes", m.Type, MaxSDPBytes)
		}
		out.SDP = m.SDP
		if m.Type == TypeAnswer {
			if m.Mode != "" || m.Labels != nil {
				return Message{}, invalid("answer carries sdp only")
			}
			return out, nil
		}
		switch m.Mode {
		case ModeSpeaker, ModeParticipant, ModeGrid:
		default:
			return Message{}, invalid("offer mode %q: use speaker, participant or grid", m.Mode)
		}
		out.Mode = m.Mode
		if len(m.Labels) > MaxLabels {
			return Message{}, invalid("%d labels (at most %d)", len(m.Labels), MaxLabels)
		}
		for _, l := range m.Labels {
			if l.Stream == "" || len(l.Stream) > MaxLabelBytes || len(l.Name) > MaxLabelBytes {
				return Message{}, invalid("a label needs a stream id and a name of at most %d bytes each", MaxLabelBytes)
			}
		}
		out.Labels = m.Labels
	case TypeCandidate:
		c := m.Candidate
		if c == nil || m.SDP != "" || m.Mode != "" || m.Labels != nil || m.Reason != "" {
			return Message{}, invalid("candidate carries a candidate object only")
		}
		if len(c.Candidate) > MaxCandidateBytes || (c.SDPMid != nil && len(*c.SDPMid) > 64) ||
			(c.UsernameFragment != nil && len(*c.UsernameFragment) > 256) ||
			(c.SDPMLineIndex != nil && (*c.SDPMLineIndex < 0 || *c.SDPMLineIndex > 1023)) {
			return Message{}, invalid("candidate too long or sdpMLineIndex out of 0…1023")
		}
		out.Candidate = c
	case TypeStop:
		if m.SDP != "" || m.Mode != "" || m.Labels != nil || m.Candidate != nil {
			return Message{}, invalid("stop carries a reason only")
		}
		if len(m.Reason) > MaxReasonBytes {
			return Message{}, invalid("stop reason of %d bytes (at most %d)", len(m.Reason), MaxReasonBytes)
		}
		out.Reason = m.Reason
	default:
		return Message{}, invalid("unknown type %q: the %s sends %s", m.Type, from, allowed(from))
	}
	return out, nil
}

func allowed(r Role) string {
	if r == RoleSender {
		return "offer, candidate and stop"
	}
	return "answer, candidate and stop"
}

func encode(m Message) []byte {
	b, err := json.Marshal(m)
	if err != nil { // only strings and numbers: cannot happen
		return []byte(`{"type":"error","message":"server error"}`)
	}
	return b
}
