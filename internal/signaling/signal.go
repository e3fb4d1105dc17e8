// Package signaling defines Parley's signaling wire messages (docs/protocol.md)
// and validates what clients send. The server and the Go client share it, so
// the two cannot drift apart.
package signaling

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Version is the protocol version announced in hello.
const Version = 1

// Subprotocol is the WebSocket subprotocol name for this version.
const Subprotocol = "parley.v1"

// Limits from docs/protocol.md.
const (
	MaxMessageBytes   = 64 << 10
	MaxSDPBytes       = 60000
	MaxCandidateBytes = 1024
	MaxChatRunes      = 2000
	// MaxResumeTokenBytes bounds join's resumeToken (the server's are
	// 43 bytes).
	MaxResumeTokenBytes = 128
)

// Message types.
const (
	TypeHello              = "hello"
	TypeJoined             = "joined"
	TypeParticipantJoined  = "participant-joined"
	TypeParticipantLeft    = "participant-left"
	TypeParticipantUpdated = "participant-updated"
	TypeOffer              = "offer"
	TypeAnswer             = "answer"
	TypeCandidate          = "candidate"
	TypeChat               = "chat"
	TypeError              = "error"
	TypePong               = "pong"
	TypeJoin               = "join"
	TypeUpdate             = "update"
	TypeLeave              = "leave"
	TypePing               = "ping"
	TypeTopology           = "topology"
	TypeSpeaker            = "speaker"
	TypeLayout             = "layout"
	TypeIceServers         = "ice-servers"
	TypeSFURestart         = "sfu-restart"
	// TypeJoinToken (server → client) hands a socket opened with a join
	// token a fresh one before the old one expires.
	TypeJoinToken = "join-token"
	// TypeModerate (client → server) asks for a moderation action;
	// TypeModerated (server → client) announces one that was done.
	TypeModerate  = "moderate"
	TypeModerated = "moderated"
	// Lobby: TypeLobby (server → members) lists who waits; TypeAdmission
	// (server → the waiting socket) says what became of it; TypeAdmit
	// and TypeDeny (client → server) let a member decide.
	TypeLobby     = "lobby"
	TypeAdmission = "admission"
	TypeAdmit     = "admit"
	TypeDeny      = "deny"
	// TypeStudio (server → client) says the channel's studio changed
	// (docs/protocol.md, docs/studio.md).
	TypeStudio = "studio"
	// TypeRecord (client) starts or stops recording the call (Action);
	// TypeRecording (server) tells everyone the recording state.
	TypeRecord    = "record"
	TypeRecording = "recording"
)

// Actions of a record message.
const (
	RecordStart = "start"
	RecordStop  = "stop"
)

// Recording is the call's recording state (the recording message).
type Recording struct {
	// Active is true while the call is being recorded.
	Active bool `json:"active"`
	// ID names the recording (in the channel's recordings list).
	ID string `json:"id,omitzero"`
	// By is who started it.
	By *User `json:"by,omitzero"`
	// StartedAt is when it started.
	StartedAt time.Time `json:"startedAt,omitzero"`
	// Reason says why it stopped (when Active is false): who stopped it,
	// or what stopped it (the storage is full, everyone left).
	Reason string `json:"reason,omitzero"`
}

// Admission outcomes (admission.action).
const (
	AdmissionWaiting  = "waiting"
	AdmissionAdmitted = "admitted"
	AdmissionDenied   = "denied"
)

// Moderation actions (moderate, moderated).
const (
	ActionMute        = "mute"
	ActionAllowUnmute = "allow-unmute"
	ActionCameraOff   = "camera-off"
	ActionRemove      = "remove"
	ActionLock        = "lock"
	ActionUnlock      = "unlock"
	ActionEnd         = "end"
)

// targeted reports whether action names a participant ("id").
func targeted(action string) bool {
	switch action {
	case ActionMute, ActionAllowUnmute, ActionCameraOff, ActionRemove:
		return true
	}
	return false
}

// Roles a user has in a channel (User.Role, Participant.Role).
const (
	RoleOwner     = "owner"
	RoleModerator = "moderator"
	RoleMember    = "" // a plain member: the field is left out
	// RoleGuest: no account; came in through the channel's guest link.
	RoleGuest = "guest"
)

// CanModerate reports whether role may send moderate.
func CanModerate(role string) bool { return role == RoleOwner || role == RoleModerator }

// Reasons carried by participant-left.
const (
	ReasonLeft         = "left"
	ReasonDisconnected = "disconnected"
	ReasonTimeout      = "timeout"
	ReasonReplaced     = "replaced"
	// ReasonRemoved: a moderator removed the participant from the call.
	ReasonRemoved = "removed"
	// ReasonEnded: a moderator ended the call for everyone.
	ReasonEnded = "ended"
)

// Error codes carried by error messages.
const (
	CodeBadMessage    = "bad-message"
	CodeUnknownType   = "unknown-type"
	CodeInvalid       = "invalid"
	CodeNotJoined     = "not-joined"
	CodeAlreadyJoined = "already-joined"
	CodeUnknownPeer   = "unknown-peer"
	CodeRateLimited   = "rate-limited"
	CodeInternal      = "internal"
	// CodeForbidden: the user may not do this: only the owner and
	// moderators may moderate; members may start recording only when the
	// owner allows it.
	CodeForbidden = "forbidden"
	// CodeConflict: the call's state does not allow it now (stop
	// without a recording, a second start).
	CodeConflict = "conflict"
	// CodeLocked: the call is locked; join refused.
	CodeLocked = "locked"
	// CodeRemoved: a moderator removed this user from the call; join
	// refused until the call ends.
	CodeRemoved = "removed"
	// CodeMuted: a moderator asked this participant to stay muted.
	CodeMuted = "muted"
	// CodeFull: the call takes no more participants (a 1:1 call).
	CodeFull = "full"
)

// Topologies: in a mesh every pair of participants has its own peer
// connection; with the SFU everyone has two connections with the server.
const (
	TopologyMesh = "mesh"
	TopologySFU  = "sfu"
)

// SFU is the "to"/"from" of messages exchanged with the server's SFU.
const SFU = "sfu"

// Peer connections with the SFU.
const (
	PCPublish   = "pub"
	PCSubscribe = "sub"
)

// Media sources.
const (
	SourceMicrophone = "microphone"
	SourceCamera     = "camera"
	SourceScreen     = "screen"
)

// Limits on SFU messages.
const (
	MaxTiles     = 64
	MaxTileSide  = 16384
	MaxSources   = 16
	maxSourceKey = 256
)

// Tile is the rendered size of one remote video (layout message).
type Tile struct {
	Participant string `json:"participant"`
	Source      string `json:"source"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
}

// State is what a participant is sending.
type State struct {
	Audio  bool `json:"audio"`
	Video  bool `json:"video"`
	Screen bool `json:"screen"`
	Hand   bool `json:"hand"`
	// Music is true while the participant's page is in music mode
	// (unprocessed stereo microphone, Opus at a music bitrate; see
	// docs/studio.md). The server only relays it.
	Music bool `json:"music,omitzero"`
}

// Participant is one member's presence in a call.
type Participant struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
	Name   string `json:"name"`
	// Username is the account's unique login name: display names may
	// repeat or imitate each other, so pages show it next to Name.
	Username string `json:"username,omitzero"`
	State    State  `json:"state"`
	// Role is "owner", "moderator", or left out for a plain member.
	Role string `json:"role,omitzero"`
	// HandSeq orders raised hands: the server numbers each raise from 1
	// upwards; 0 while the hand is down.
	HandSeq int `json:"handSeq,omitzero"`
}

// User names who a socket is logged in as.
type User struct {
	UserID string `json:"userId"`
	Name   string `json:"name"`
	// Username is the unique login name (see Participant.Username).
	Username string `json:"username,omitzero"`
	// Role is the user's role in the channel (Participant.Role).
	Role string `json:"role,omitzero"`
	// Grants are what a join token lets this user do; nil for members
	// and guests (their role decides).
	Grants *Grants `json:"grants,omitzero"`
}

// Grants are a join token's permissions (docs/api.md, Join tokens).
type Grants struct {
	Publish   bool `json:"publish"`
	Subscribe bool `json:"subscribe"`
	Chat      bool `json:"chat"`
	Moderate  bool `json:"moderate"`
	Record    bool `json:"record"`
}

// IceServer mirrors the browser's RTCIceServer dictionary.
type IceServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Candidate mirrors RTCIceCandidateInit.
type Candidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// ChatMessage is one posted chat line.
type ChatMessage struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
	Name   string `json:"name"`
	// Username is the author's unique login name (see Participant.Username).
	Username string    `json:"username,omitzero"`
	Text     string    `json:"text"`
	At       time.Time `json:"at"`
}

// Message is the envelope of every message in both directions; which fields
// are meaningful depends on Type (see docs/protocol.md).
type Message struct {
	Type         string        `json:"type"`
	Version      int           `json:"version,omitzero"`
	User         *User         `json:"user,omitzero"`
	You          *Participant  `json:"you,omitzero"`
	Participants []Participant `json:"participants,omitzero"`
	Participant  *Participant  `json:"participant,omitzero"`
	IceServers   []IceServer   `json:"iceServers,omitzero"`
	Topology     string        `json:"topology,omitzero"`
	ID           string        `json:"id,omitzero"`
	Reason       string        `json:"reason,omitzero"`
	State        *State        `json:"state,omitzero"`
	Resume       string        `json:"resume,omitzero"`
	// ResumeToken proves a resume: joined gives it to that participant
	// only, and join sends it back with resume.
	ResumeToken string `json:"resumeToken,omitzero"`
	To          string `json:"to,omitzero"`
	From        string `json:"from,omitzero"`
	SDP         string `json:"sdp,omitzero"`
	PC          string `json:"pc,omitzero"`
	// Sources maps each sent MediaStreamTrack id to its source, on a
	// publish offer.
	Sources map[string]string `json:"sources,omitzero"`
	Tiles   []Tile            `json:"tiles,omitzero"`
	// Candidate is the candidate of a candidate message; EndOfICE stands
	// for the JSON null that ends gathering (on the wire both are
	// "candidate").
	Candidate *Candidate `json:"-"`
	EndOfICE  bool       `json:"-"`
	Text      string     `json:"text,omitzero"`
	// Chat (a chat message object) and Human (an error's text) are both
	// "message" on the wire.
	Chat  *ChatMessage `json:"-"`
	Code  string       `json:"code,omitzero"`
	Human string       `json:"-"`
	Ref   string       `json:"ref,omitzero"`
	TS    float64      `json:"ts,omitzero"`
	// Action is a record message's "start" or "stop", or a moderation
	// action (moderate, moderated); By is the participant id of the
	// moderator who did it (moderated); Ask is mute's "ask to unmute":
	// the participant may not unmute until a moderator allows it.
	Action string `json:"action,omitzero"`
	By     string `json:"by,omitzero"`
	Ask    bool   `json:"ask,omitzero"`
	// Locked is whether the call is locked (hello, joined).
	Locked bool `json:"locked,omitzero"`
	// Waiting lists the people waiting in the lobby (lobby).
	Waiting []Waiting `json:"waiting,omitzero"`
	// Recording is the recording state of a recording message.
	Recording *Recording `json:"recording,omitzero"`
	// Studio is the change a studio message reports.
	Studio *StudioEvent `json:"studio,omitzero"`
	// Token and ExpiresAt are a join-token message's fresh join token
	// and when it expires.
	Token     string    `json:"token,omitzero"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// Waiting is someone waiting in the lobby to be admitted.
type Waiting struct {
	// ID is the participant id they will have once admitted.
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role,omitzero"`
}

// Studio event kinds (StudioEvent.Event).
const (
	StudioSongAdded       = "song-added"
	StudioSongChanged     = "song-changed"
	StudioSongDeleted     = "song-deleted"
	StudioTrackAdded      = "track-added"
	StudioTrackChanged    = "track-changed"
	StudioTrackDeleted    = "track-deleted"
	StudioTakeAdded       = "take-added"
	StudioTakeProgress    = "take-progress"
	StudioTakeFinished    = "take-finished"
	StudioTakeInterrupted = "take-interrupted"
	StudioTakeDeleted     = "take-deleted"
	StudioTakeChosen      = "take-chosen"
)

// StudioEvent is one change of a channel's studio: what happened and to
// which song, track and take. A page refetches what it needs
// (GET /api/channels/{id}/studio); progress carries the growing take's
// figures so that a live take's length can be drawn without a fetch.
type StudioEvent struct {
	Event string `json:"event"`
	Song  string `json:"song,omitzero"`
	Track string `json:"track,omitzero"`
	Take  string `json:"take,omitzero"`
	// By is the user whose action it was ("" for the server's own, such
	// as marking a take interrupted).
	By         string `json:"by,omitzero"`
	State      string `json:"state,omitzero"`
	DurationMS int64  `json:"durationMs,omitzero"`
	Bytes      int64  `json:"bytes,omitzero"`
	Chunks     int64  `json:"chunks,omitzero"`
	// Levels (take-progress) is the input's loudness over the new chunk,
	// 0–1, as its recorder measured it: the growing take's waveform.
	Levels []float64 `json:"levels,omitzero"`
}

// wire adds the fields whose JSON shape differs from the Go shape: the
// error's human text shares the name "message" with chat's message object,
// and a candidate may be null.
type wire struct {
	Message
	RawMessage   json.RawMessage `json:"message,omitzero"`
	RawCandidate json.RawMessage `json:"candidate,omitzero"`
}

// MarshalJSON encodes m in its wire form.
func (m Message) MarshalJSON() ([]byte, error) {
	type plain Message // no methods: avoids recursion
	w := struct {
		plain
		Message   any `json:"message,omitzero"`
		Candidate any `json:"candidate,omitzero"`
	}{plain: plain(m)}
	switch {
	case m.Chat != nil:
		w.Message = m.Chat
	case m.Human != "":
		w.Message = m.Human
	}
	switch {
	case m.Candidate != nil:
		w.Candidate = m.Candidate
	case m.EndOfICE:
		w.Candidate = json.RawMessage("null")
	}
	return json.Marshal(w)
}

// Error is a refusal to send back to the client as an error message.
type Error struct {
	Code    string
	Message string
	Ref     string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Msg turns the refusal into the error message sent to the client.
func (e *Error) Msg() Message {
	return Message{Type: TypeError, Code: e.Code, Human: e.Message, Ref: e.Ref}
}

func errf(code, ref, format string, args ...any) *Error {
	return &Error{Code: code, Ref: ref, Message: fmt.Sprintf(format, args...)}
}

var participantID = regexp.MustCompile(`^p_[a-z0-9]{8,32}$`)

// ValidParticipantID reports whether id has the shape the server hands out.
func ValidParticipantID(id string) bool { return participantID.MatchString(id) }

// Parse decodes any message (client or server direction) without validating
// the fields a client must get right; the Go client uses it for server
// messages. Errors are *Error with code bad-message.
func Parse(data []byte) (Message, error) {
	if len(data) > MaxMessageBytes {
		return Message{}, errf(CodeBadMessage, "", "message is %d bytes; the limit is %d", len(data), MaxMessageBytes)
	}
	if !utf8.Valid(data) {
		return Message{}, errf(CodeBadMessage, "", "message is not valid UTF-8")
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Message{}, errf(CodeBadMessage, "", "message must be a JSON object like {\"type\": \"ping\"}")
	}
	var w wire
	if err := json.Unmarshal(trimmed, &w); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return Message{}, errf(CodeBadMessage, w.Type, "field %q has the wrong type (%s); see docs/protocol.md", ute.Field, ute.Value)
		}
		return Message{}, errf(CodeBadMessage, "", "message is not valid JSON: %v", err)
	}
	m := w.Message
	if m.Type == "" {
		return Message{}, errf(CodeBadMessage, "", "message has no \"type\" field")
	}
	if len(w.RawMessage) > 0 {
		switch w.RawMessage[0] {
		case '"':
			if err := json.Unmarshal(w.RawMessage, &m.Human); err != nil {
				return Message{}, errf(CodeBadMessage, m.Type, "field \"message\": %v", err)
			}
		case '{':
			m.Chat = new(ChatMessage)
			if err := json.Unmarshal(w.RawMessage, m.Chat); err != nil {
				return Message{}, errf(CodeBadMessage, m.Type, "field \"message\": %v", err)
			}
		}
	}
	if len(w.RawCandidate) > 0 {
		if string(w.RawCandidate) == "null" {
			m.EndOfICE = true
		} else {
			m.Candidate = new(Candidate)
			if err := json.Unmarshal(w.RawCandidate, m.Candidate); err != nil {
				return Message{}, errf(CodeBadMessage, m.Type, "field \"candidate\" must be an RTCIceCandidateInit object or null")
			}
		}
	}
	return m, nil
}

// DecodeClient decodes and validates one message a client sent. Every
// failure is an *Error whose Msg can be sent back as is.
func DecodeClient(data []byte) (Message, error) {
	m, err := Parse(data)
	if err != nil {
		return Message{}, err
	}
	if IsPeerMessage(m) {
		// Relayed to another participant: only the documented fields
		// may be there (see peerFields).
		if err := checkPeerFields(data, m.Type); err != nil {
			return Message{}, err
		}
	}
	// The server fills these; never trust a client's.
	m.From = ""
	if err := validateClient(&m); err != nil {
		return Message{}, err
	}
	return m, nil
}

// IsPeerMessage reports whether a client's m is negotiation for another
// participant (relayed), rather than for the server's SFU.
func IsPeerMessage(m Message) bool {
	switch m.Type {
	case TypeOffer, TypeAnswer, TypeCandidate:
		return m.To != SFU
	}
	return false
}

// peerFields are the only JSON fields a participant may put in a message
// to another participant, by type (docs/protocol.md). It is an allow-list:
// everything else, "pc" and "from" above all (only the server sends
// those), is refused, so nothing a participant sends can pass for the
// server's.
var peerFields = map[string][]string{
	TypeOffer:     {"type", "to", "sdp"},
	TypeAnswer:    {"type", "to", "sdp"},
	TypeCandidate: {"type", "to", "candidate"},
}

// checkPeerFields refuses a message to a participant that carries a field
// outside peerFields. It compares the raw keys, byte for byte: the Go
// decoder matches field names case-insensitively ("PC" fills PC), the
// allow-list does not.
func checkPeerFields(data []byte, typ string) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return errf(CodeBadMessage, typ, "message is not valid JSON: %v", err)
	}
	allowed := peerFields[typ]
	var extra []string
	for k := range raw {
		if !slices.Contains(allowed, k) {
			extra = append(extra, strconv.Quote(truncate(k, 40)))
		}
	}
	if len(extra) == 0 {
		return nil
	}
	slices.Sort(extra)
	why := ""
	if _, ok := raw["pc"]; ok {
		why = ` ("pc" is only for your own connections with the server: "to": "sfu")`
	} else if _, ok := raw["from"]; ok {
		why = ` (the server fills "from")`
	}
	return errf(CodeInvalid, typ, "a %q to a participant carries only %s; remove %s%s", typ, quoteList(allowed), strings.Join(extra, ", "), why)
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// PeerRelay builds the message a participant receives for m, sent by the
// participant from: a fresh message holding only the fields of the
// documented shape, whatever else m carries.
func PeerRelay(m Message, from string) Message {
	out := Message{Type: m.Type, From: from}
	switch m.Type {
	case TypeOffer, TypeAnswer:
		out.SDP = m.SDP
	case TypeCandidate:
		if m.Candidate != nil {
			c := *m.Candidate
			out.Candidate = &c
		} else {
			out.EndOfICE = true
		}
	}
	return out
}

func validateClient(m *Message) error {
	switch m.Type {
	case TypeJoin:
		if m.Resume != "" && !ValidParticipantID(m.Resume) {
			return errf(CodeInvalid, m.Type, "\"resume\" must be a participant id you were given before (like p_3kq9x2m1ab), or left out")
		}
		if len(m.ResumeToken) > MaxResumeTokenBytes {
			return errf(CodeInvalid, m.Type, "\"resumeToken\" is %d bytes; send back the one \"joined\" gave you (at most %d)", len(m.ResumeToken), MaxResumeTokenBytes)
		}
	case TypeUpdate:
		if m.State == nil {
			return errf(CodeInvalid, m.Type, "\"update\" needs a \"state\" object like {\"audio\": true, \"video\": false, \"screen\": false, \"hand\": false}")
		}
	case TypeOffer, TypeAnswer:
		if err := validateTo(m); err != nil {
			return err
		}
		if err := validateSFUDescription(m); err != nil {
			return err
		}
		if m.SDP == "" {
			return errf(CodeInvalid, m.Type, "%q needs an \"sdp\" string", m.Type)
		}
		if len(m.SDP) > MaxSDPBytes {
			return errf(CodeInvalid, m.Type, "\"sdp\" is %d bytes; the limit is %d", len(m.SDP), MaxSDPBytes)
		}
		if !strings.HasPrefix(m.SDP, "v=0") {
			return errf(CodeInvalid, m.Type, "\"sdp\" is not a session description: it must start with \"v=0\"")
		}
	case TypeCandidate:
		if err := validateTo(m); err != nil {
			return err
		}
		if m.Candidate == nil && !m.EndOfICE {
			return errf(CodeInvalid, m.Type, "\"candidate\" needs a \"candidate\" object, or null to end gathering")
		}
		if m.Candidate != nil && len(m.Candidate.Candidate) > MaxCandidateBytes {
			return errf(CodeInvalid, m.Type, "the candidate string is %d bytes; the limit is %d", len(m.Candidate.Candidate), MaxCandidateBytes)
		}
	case TypeChat:
		m.Text = strings.TrimSpace(m.Text)
		n := utf8.RuneCountInString(m.Text)
		if n == 0 {
			return errf(CodeInvalid, m.Type, "chat \"text\" is empty; type something first")
		}
		if n > MaxChatRunes {
			return errf(CodeInvalid, m.Type, "chat \"text\" is %d characters; the limit is %d, so split it up", n, MaxChatRunes)
		}
	case TypeLayout:
		if len(m.Tiles) > MaxTiles {
			return errf(CodeInvalid, m.Type, "\"tiles\" lists %d videos; the limit is %d", len(m.Tiles), MaxTiles)
		}
		for _, t := range m.Tiles {
			if !ValidParticipantID(t.Participant) || (t.Source != SourceCamera && t.Source != SourceScreen) {
				return errf(CodeInvalid, m.Type, "each tile needs a participant id and a source of \"camera\" or \"screen\"")
			}
			if t.Width < 0 || t.Height < 0 || t.Width > MaxTileSide || t.Height > MaxTileSide {
				return errf(CodeInvalid, m.Type, "tile sizes must be 0 to %d pixels", MaxTileSide)
			}
		}
	case TypeRecord:
		if m.Action != RecordStart && m.Action != RecordStop {
			return errf(CodeInvalid, m.Type, "\"record\" needs \"action\": \"start\" or \"stop\"")
		}
	case TypeModerate:
		switch m.Action {
		case ActionMute, ActionAllowUnmute, ActionCameraOff, ActionRemove, ActionLock, ActionUnlock, ActionEnd:
		default:
			return errf(CodeInvalid, m.Type, "\"action\" must be one of \"mute\", \"allow-unmute\", \"camera-off\", \"remove\", \"lock\", \"unlock\", \"end\"")
		}
		if targeted(m.Action) && !ValidParticipantID(m.ID) {
			return errf(CodeInvalid, m.Type, "%q needs \"id\": the participant id of someone in the call", m.Action)
		}
		if !targeted(m.Action) {
			m.ID = ""
		}
		if m.Action != ActionMute {
			m.Ask = false
		}
	case TypeAdmit, TypeDeny:
		if !ValidParticipantID(m.ID) {
			return errf(CodeInvalid, m.Type, "%q needs \"id\": the id of someone in the lobby's \"waiting\" list", m.Type)
		}
	case TypeLeave, TypePing:
	default:
		return errf(CodeUnknownType, m.Type, "unknown message type %q; see docs/protocol.md for the types a client may send", truncate(m.Type, 40))
	}
	return nil
}

func validateTo(m *Message) error {
	if m.To == SFU {
		if m.PC != PCPublish && m.PC != PCSubscribe {
			return errf(CodeInvalid, m.Type, "%q to the SFU needs \"pc\": \"pub\" or \"sub\"", m.Type)
		}
		return nil
	}
	if !ValidParticipantID(m.To) {
		return errf(CodeInvalid, m.Type, "%q needs \"to\": the id of a participant in the call, or \"sfu\"", m.Type)
	}
	return nil
}

// validateSFUDescription checks the direction rules of docs/protocol.md:
// clients offer on the publish connection and answer on the subscribe one.
func validateSFUDescription(m *Message) error {
	if m.To != SFU {
		return nil
	}
	if m.Type == TypeOffer && m.PC != PCPublish {
		return errf(CodeInvalid, m.Type, "offers to the SFU go on the publish connection (\"pc\": \"pub\"); the server offers on \"sub\"")
	}
	if m.Type == TypeAnswer && m.PC != PCSubscribe {
		return errf(CodeInvalid, m.Type, "answers to the SFU go on the subscribe connection (\"pc\": \"sub\")")
	}
	if len(m.Sources) > MaxSources {
		return errf(CodeInvalid, m.Type, "\"sources\" lists %d tracks; the limit is %d", len(m.Sources), MaxSources)
	}
	for id, src := range m.Sources {
		if len(id) == 0 || len(id) > maxSourceKey {
			return errf(CodeInvalid, m.Type, "\"sources\" keys must be track ids of 1 to %d bytes", maxSourceKey)
		}
		if src != SourceMicrophone && src != SourceCamera && src != SourceScreen {
			return errf(CodeInvalid, m.Type, "source %q must be \"microphone\", \"camera\" or \"screen\"", truncate(src, 40))
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Encode returns the JSON of m.
func Encode(m Message) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.Type, err)
	}
	return b, nil
}
