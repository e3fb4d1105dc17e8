package signaling

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

// TestRoundTrip encodes one message of every type and decodes it again.
func TestRoundTrip(t *testing.T) {
	p := Participant{ID: "p_abcdefgh12", UserID: "u_1", Name: "Ada", State: State{Audio: true}}
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	msgs := []Message{
		{Type: TypeHello, Version: Version, User: &User{UserID: "u_1", Name: "Ada"}, Participants: []Participant{p},
			IceServers: []IceServer{{URLs: []string{"stun:127.0.0.1:3478"}, Username: "x", Credential: "y"}}},
		{Type: TypeJoined, You: &p, Participants: []Participant{}, Topology: TopologyMesh},
		{Type: TypeParticipantJoined, Participant: &p},
		{Type: TypeParticipantLeft, ID: p.ID, Reason: ReasonLeft},
		{Type: TypeParticipantUpdated, Participant: &p},
		{Type: TypeOffer, From: p.ID, To: "p_zzzzzzzz99", SDP: "v=0\r\n"},
		{Type: TypeAnswer, From: p.ID, SDP: "v=0\r\n"},
		{Type: TypeCandidate, From: p.ID, Candidate: &Candidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", SDPMid: ptr("0"), SDPMLineIndex: ptr[uint16](0)}},
		{Type: TypeCandidate, From: p.ID, EndOfICE: true},
		{Type: TypeChat, Chat: &ChatMessage{ID: "m_1", UserID: "u_1", Name: "Ada", Text: "hi", At: at}},
		{Type: TypeError, Code: CodeInvalid, Human: "bad", Ref: TypeChat},
		{Type: TypePong, TS: 12.5},
		{Type: TypeJoin, State: &State{Video: true}, Resume: p.ID},
		{Type: TypeUpdate, State: &State{Screen: true}},
		{Type: TypeChat, Text: "hello"},
		{Type: TypeLeave},
		{Type: TypePing, TS: 1},
		{Type: TypeTopology, Topology: TopologySFU},
		{Type: TypeSpeaker, ID: p.ID},
		{Type: TypeLayout, Tiles: []Tile{{Participant: p.ID, Source: SourceCamera, Width: 640, Height: 360}}},
		{Type: TypeOffer, To: SFU, PC: PCPublish, SDP: "v=0\r\n", Sources: map[string]string{"t1": SourceCamera}},
		{Type: TypeAnswer, From: SFU, PC: PCPublish, SDP: "v=0\r\n"},
		{Type: TypeStudio, Studio: &StudioEvent{Event: StudioTakeProgress, Song: "s1", Track: "t1", Take: "k1", By: "u_1", State: "recording", DurationMS: 1500, Bytes: 9000, Chunks: 6, Levels: []float64{0.1, 0.5}}},
	}
	for _, m := range msgs {
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("encode %s: %v", m.Type, err)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("parse %s (%s): %v", m.Type, b, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v\nwire %s", m.Type, got, m, b)
		}
	}
}

// TestWireShape pins the JSON field names that browsers depend on.
func TestWireShape(t *testing.T) {
	cases := []struct {
		m    Message
		want string
	}{
		{Message{Type: TypeError, Code: CodeInvalid, Human: "why", Ref: "chat"}, `{"type":"error","code":"invalid","ref":"chat","message":"why"}`},
		{Message{Type: TypeCandidate, From: "p_abcdefgh12", EndOfICE: true}, `{"type":"candidate","from":"p_abcdefgh12","candidate":null}`},
		{Message{Type: TypeJoined, You: &Participant{ID: "p_abcdefgh12"}, Participants: []Participant{}, Topology: "mesh"},
			`{"type":"joined","you":{"id":"p_abcdefgh12","userId":"","name":"","state":{"audio":false,"video":false,"screen":false,"hand":false}},"participants":[],"topology":"mesh"}`},
		// The username rides next to the display name (issue 9 item 10).
		{Message{Type: TypeParticipantJoined, Participant: &Participant{ID: "p_abcdefgh12", UserID: "u_1", Name: "Ann", Username: "ann"}},
			`{"type":"participant-joined","participant":{"id":"p_abcdefgh12","userId":"u_1","name":"Ann","username":"ann","state":{"audio":false,"video":false,"screen":false,"hand":false}}}`},
	}
	// The studio notification (issue 11).
	cases = append(cases, struct {
		m    Message
		want string
	}{Message{Type: TypeStudio, Studio: &StudioEvent{Event: StudioTakeAdded, Song: "s1", Track: "t1", Take: "k1", By: "u_1"}},
		`{"type":"studio","studio":{"event":"take-added","song":"s1","track":"t1","take":"k1","by":"u_1"}}`})
	for _, c := range cases {
		b, err := Encode(c.m)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.want {
			t.Errorf("got  %s\nwant %s", b, c.want)
		}
	}
}

// TestDecodeClientRefusals checks that each kind of bad input gets the
// documented error code and a message that says what to do.
func TestDecodeClientRefusals(t *testing.T) {
	cases := []struct {
		in, code, mention string
	}{
		{``, CodeBadMessage, "JSON object"},
		{`[1,2]`, CodeBadMessage, "JSON object"},
		{`{"type":`, CodeBadMessage, "not valid JSON"},
		{"{\"type\":\"ping\",\"x\":\"\xff\"}", CodeBadMessage, "UTF-8"},
		{`{}`, CodeBadMessage, "no \"type\""},
		{`{"type":5}`, CodeBadMessage, "wrong type"},
		{`{"type":"explode"}`, CodeUnknownType, "explode"},
		{`{"type":"hello"}`, CodeUnknownType, "hello"},
		{`{"type":"join","resume":"../etc"}`, CodeInvalid, "resume"},
		{`{"type":"update"}`, CodeInvalid, "state"},
		{`{"type":"update","state":"on"}`, CodeBadMessage, "state"},
		{`{"type":"offer","sdp":"v=0"}`, CodeInvalid, "to"},
		{`{"type":"offer","to":"p_abcdefgh12"}`, CodeInvalid, "sdp"},
		{`{"type":"answer","to":"p_abcdefgh12","sdp":"hello"}`, CodeInvalid, "v=0"},
		{`{"type":"offer","to":"p_abcdefgh12","sdp":"v=0` + strings.Repeat("a", MaxSDPBytes) + `"}`, CodeInvalid, "limit"},
		{`{"type":"candidate","to":"p_abcdefgh12"}`, CodeInvalid, "candidate"},
		{`{"type":"candidate","to":"p_abcdefgh12","candidate":"x"}`, CodeBadMessage, "RTCIceCandidateInit"},
		{`{"type":"candidate","to":"p_abcdefgh12","candidate":{"candidate":"` + strings.Repeat("a", 2000) + `"}}`, CodeInvalid, "limit"},
		{`{"type":"chat","text":"   "}`, CodeInvalid, "empty"},
		{`{"type":"chat","text":"` + strings.Repeat("é", MaxChatRunes+1) + `"}`, CodeInvalid, "split"},
		{`{"type":"chat","text":"` + strings.Repeat("a", MaxMessageBytes) + `"}`, CodeBadMessage, "limit"},
		{`{"type":"offer","to":"sfu","sdp":"v=0"}`, CodeInvalid, "pc"},
		{`{"type":"offer","to":"sfu","pc":"sub","sdp":"v=0"}`, CodeInvalid, "publish"},
		{`{"type":"answer","to":"sfu","pc":"pub","sdp":"v=0"}`, CodeInvalid, "subscribe"},
		{`{"type":"offer","to":"sfu","pc":"pub","sdp":"v=0","sources":{"t":"webcam"}}`, CodeInvalid, "microphone"},
		{`{"type":"layout","tiles":[{"participant":"p_abcdefgh12","source":"camera","width":-1,"height":2}]}`, CodeInvalid, "0 to"},
		{`{"type":"layout","tiles":[{"participant":"bob","source":"camera"}]}`, CodeInvalid, "participant id"},
	}
	for _, c := range cases {
		_, err := DecodeClient([]byte(c.in))
		var se *Error
		if !errors.As(err, &se) {
			t.Errorf("%.60q: got %v, want *Error", c.in, err)
			continue
		}
		if se.Code != c.code || !strings.Contains(se.Message, c.mention) {
			t.Errorf("%.60q: got %s %q, want code %s mentioning %q", c.in, se.Code, se.Message, c.code, c.mention)
		}
		if m := se.Msg(); m.Type != TypeError || m.Code != c.code || m.Human == "" {
			t.Errorf("%.60q: error message %+v", c.in, m)
		}
	}
}

func TestDecodeClientAccepts(t *testing.T) {
	m, err := DecodeClient([]byte(`{"type":"chat","text":"  hi  ","from":"p_spoofed000"}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Text != "hi" || m.From != "" {
		t.Errorf("got text %q from %q; want trimmed text and no client-chosen from", m.Text, m.From)
	}
	m, err = DecodeClient([]byte(`{"type":"candidate","to":"p_abcdefgh12","candidate":null}`))
	if err != nil || !m.EndOfICE {
		t.Errorf("end-of-candidates: %+v %v", m, err)
	}
	m, err = DecodeClient([]byte(`{"type":"join","unknownFutureField":1}`))
	if err != nil || m.Type != TypeJoin {
		t.Errorf("unknown fields must be ignored: %+v %v", m, err)
	}
}

// FuzzDecodeClient checks that no input makes the decoder panic, that every
// refusal is an *Error, and that accepted messages re-encode and decode to
// the same value.
func FuzzDecodeClient(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","state":{"audio":true},"resume":"p_abcdefgh12"}`,
		`{"type":"offer","to":"p_abcdefgh12","sdp":"v=0\r\n"}`,
		`{"type":"candidate","to":"p_abcdefgh12","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"type":"candidate","to":"p_abcdefgh12","candidate":null}`,
		`{"type":"chat","text":"hi"}`, `{"type":"ping","ts":1}`, `{"type":"leave"}`, `{"type":"update","state":{}}`,
		`{"type":"chat","message":"x"}`, `{"type":"chat","message":{"text":1}}`,
		`{"type":"offer","to":"sfu","pc":"pub","sdp":"v=0","sources":{"a":"camera"}}`,
		`{"type":"layout","tiles":[{"participant":"p_abcdefgh12","source":"screen","width":1,"height":1}]}`,
		`{"type":"moderate","action":"mute","id":"p_abcdefgh12","ask":true}`, `{"type":"moderate","action":"lock"}`,
		`{"type":"admit","id":"p_abcdefgh12"}`, `{"type":"deny","id":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeClient(data)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.Code == "" || se.Message == "" {
				t.Fatalf("refusal is not a complete *Error: %v", err)
			}
			return
		}
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("accepted message does not encode: %v", err)
		}
		again, err := DecodeClient(b)
		if err != nil {
			t.Fatalf("re-encoded message %s refused: %v", b, err)
		}
		if !reflect.DeepEqual(normalize(again), normalize(m)) {
			t.Fatalf("round trip changed message:\n%+v\n%+v", m, again)
		}
	})
}

// normalize maps values JSON cannot tell apart (empty vs nil slices) to one.
func normalize(m Message) string {
	b, _ := json.Marshal(m)
	return string(b)
}

func BenchmarkDecodeClientCandidate(b *testing.B) {
	msg := []byte(`{"type":"candidate","to":"p_abcdefgh12","candidate":{"candidate":"candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag sK9X network-cost 999","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"sK9X"}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := DecodeClient(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeParticipantUpdated(b *testing.B) {
	p := Participant{ID: "p_abcdefgh12", UserID: "u_1", Name: "Ada Lovelace", State: State{Audio: true, Video: true}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(Message{Type: TypeParticipantUpdated, Participant: &p}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPeerMessagesAllowListed: a message to a participant may carry only
// the documented fields (pc, from, sources or anything else is refused,
// whatever its case), a message to the SFU keeps its pc, and the relayed
// message holds nothing but type, from and sdp or candidate.
func TestPeerMessagesAllowListed(t *testing.T) {
	for _, in := range []string{
		`{"type":"offer","to":"p_abcdefgh12","sdp":"v=0","pc":"sub"}`,
		`{"type":"offer","to":"p_abcdefgh12","sdp":"v=0","Pc":"sub"}`,
		`{"type":"answer","to":"p_abcdefgh12","sdp":"v=0","from":"sfu"}`,
		`{"type":"candidate","to":"p_abcdefgh12","candidate":null,"sources":{}}`,
		`{"type":"offer","to":"p_abcdefgh12","sdp":"v=0","x":1}`,
	} {
		_, err := DecodeClient([]byte(in))
		var se *Error
		if !errors.As(err, &se) || se.Code != CodeInvalid || !strings.Contains(se.Message, "remove") {
			t.Errorf("%s: got %v, want an invalid error naming the field to remove", in, err)
		}
	}
	m, err := DecodeClient([]byte(`{"type":"offer","to":"sfu","pc":"pub","sdp":"v=0","sources":{"a":"camera"}}`))
	if err != nil || m.PC != PCPublish {
		t.Errorf("offer to the SFU: %+v %v", m, err)
	}
	in := Message{Type: TypeCandidate, To: "p_abcdefgh12", PC: PCSubscribe, Sources: map[string]string{"a": "camera"},
		ResumeToken: "secret", Candidate: &Candidate{Candidate: "c", SDPMid: ptr("0")}}
	b, _ := Encode(PeerRelay(in, "p_sender12345"))
	if want := `{"type":"candidate","from":"p_sender12345","candidate":{"candidate":"c","sdpMid":"0"}}`; string(b) != want {
		t.Errorf("relayed %s, want %s", b, want)
	}
}

// TestModerateValidated: moderate and the lobby's admit/deny are checked
// before a room sees them; fields that do not belong to the action go.
func TestModerateValidated(t *testing.T) {
	for _, tc := range []struct {
		in   string
		code string
	}{
		{`{"type":"moderate","action":"mute","id":"p_abcdefgh12","ask":true}`, ""},
		{`{"type":"moderate","action":"lock","id":"p_abcdefgh12","ask":true}`, ""},
		{`{"type":"moderate","action":"ban","id":"p_abcdefgh12"}`, CodeInvalid},
		{`{"type":"moderate","action":"remove"}`, CodeInvalid},
		{`{"type":"moderate"}`, CodeInvalid},
		{`{"type":"admit","id":"p_abcdefgh12"}`, ""},
		{`{"type":"deny","id":"nope"}`, CodeInvalid},
	} {
		m, err := DecodeClient([]byte(tc.in))
		var se *Error
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case tc.code != "" && (!errors.As(err, &se) || se.Code != tc.code):
			t.Errorf("%s: %v, want %s", tc.in, err, tc.code)
		}
		if err == nil && m.Action == ActionLock && (m.ID != "" || m.Ask) {
			t.Errorf("%s: lock kept id %q / ask %t", tc.in, m.ID, m.Ask)
		}
	}
}

// TestMusicStateRelayed: state.music (music mode, docs/studio.md) is read
// from update and join and written back out; left out while false, so the
// wire shape for pages without music mode is unchanged.
func TestMusicStateRelayed(t *testing.T) {
	for _, in := range []string{`{"type":"update","state":{"audio":true,"music":true}}`, `{"type":"join","state":{"music":true}}`} {
		m, err := DecodeClient([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if m.State == nil || !m.State.Music {
			t.Errorf("%s: state %+v, want music true", in, m.State)
		}
	}
	b, err := Encode(Message{Type: TypeParticipantUpdated, Participant: &Participant{ID: "p_abcdefgh12", State: State{Audio: true, Music: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `"state":{"audio":true,"video":false,"screen":false,"hand":false,"music":true}`; !strings.Contains(string(b), want) {
		t.Errorf("got %s, want it to contain %s", b, want)
	}
}
