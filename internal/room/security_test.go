package room_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
)

// meshOnly keeps calls of a few raw sockets in the mesh, so the server does
// not set up SFU connections nobody answers.
var meshOnly = servertest.WithConfig(func(c *config.Config) { c.P2PMax = 10 })

// TestHostilePeerMessagesRefused: a participant's offer, answer or
// candidate to another participant that carries anything beyond the
// documented shape (pc, which only the server's SFU messages carry; from;
// any other field) is refused with an error to the sender and never
// reaches the addressee; a clean message after them is relayed with only
// the documented fields.
func TestHostilePeerMessagesRefused(t *testing.T) {
	s, ch, a, b := setup(t, meshOnly)
	pa := dial(t, s, a, ch)
	pa.expect(signaling.TypeHello)
	pa.send(signaling.Message{Type: signaling.TypeJoin})
	alice := pa.expect(signaling.TypeJoined).You.ID
	pb := dial(t, s, b, ch)
	pb.expect(signaling.TypeHello)
	pb.send(signaling.Message{Type: signaling.TypeJoin})
	bob := pb.expect(signaling.TypeJoined).You.ID
	pa.expect(signaling.TypeParticipantJoined)

	const sdp = `"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"`
	cand := `{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host","sdpMid":"0"}`
	for _, hostile := range []string{
		// The attack of issue 9: a forged SFU subscribe offer.
		`{"type":"offer","to":"` + alice + `","pc":"sub","sdp":` + sdp + `}`,
		`{"type":"offer","to":"` + alice + `","pc":"sub","sdp":` + sdp + `,"sources":{"x":"camera"},"tiles":[]}`,
		`{"type":"answer","to":"` + alice + `","pc":"pub","sdp":` + sdp + `}`,
		`{"type":"candidate","to":"` + alice + `","pc":"sub","candidate":` + cand + `}`,
		`{"type":"candidate","to":"` + alice + `","pc":"pub","candidate":null}`,
		// The Go decoder would take "PC" for "pc"; the allow-list does not.
		`{"type":"offer","to":"` + alice + `","PC":"sub","sdp":` + sdp + `}`,
		// Server-only fields and strangers.
		`{"type":"offer","to":"` + alice + `","from":"sfu","sdp":` + sdp + `}`,
		`{"type":"answer","to":"` + alice + `","sdp":` + sdp + `,"resumeToken":"x"}`,
		`{"type":"offer","to":"` + alice + `","sdp":` + sdp + `,"state":{"audio":true}}`,
		`{"type":"candidate","to":"` + alice + `","candidate":` + cand + `,"sdp":` + sdp + `}`,
		`{"type":"offer","to":"` + alice + `","sdp":` + sdp + `,"futureField":1}`,
	} {
		pb.sendRaw(hostile)
		var typ struct{ Type string }
		json.Unmarshal([]byte(hostile), &typ)
		e := pb.expect(signaling.TypeError)
		if e.Code != signaling.CodeInvalid || e.Ref != typ.Type || !strings.Contains(e.Human, "remove") {
			t.Errorf("%s\ngot %+v, want an %q error about the extra field", hostile, e, signaling.CodeInvalid)
		}
	}
	// Addressed wrongly: to oneself.
	pb.sendRaw(`{"type":"offer","to":"` + bob + `","sdp":` + sdp + `}`)
	if e := pb.expect(signaling.TypeError); e.Code != signaling.CodeUnknownPeer {
		t.Errorf("offer to oneself: %+v", e)
	}

	// Nothing of the above reached Alice: the first negotiation message
	// she gets is the clean one, with the documented fields only.
	pb.sendRaw(`{"type":"offer","to":"` + alice + `","sdp":"v=0\r\nclean\r\n"}`)
	for {
		m := <-pa.msgs
		if m.Type == signaling.TypeOffer || m.Type == signaling.TypeAnswer || m.Type == signaling.TypeCandidate {
			want := signaling.Message{Type: signaling.TypeOffer, From: bob, SDP: "v=0\r\nclean\r\n"}
			if normal(m) != normal(want) {
				t.Fatalf("Alice got %s, want %s", normal(m), normal(want))
			}
			break
		}
	}
}

func normal(m signaling.Message) string {
	b, _ := json.Marshal(m)
	return string(b)
}

// TestResumeNeedsToken: when a participant's socket drops, another member
// who resumes its id (without the token, with a wrong one, or with the
// victim's own token) gets a fresh id, and the others never see the
// victim's id rejoin under another name; the same user without the token
// gets a fresh id too; the same user with the token gets its id back.
func TestResumeNeedsToken(t *testing.T) {
	s, ch, a, b := setup(t, meshOnly)
	pa := dial(t, s, a, ch)
	pa.expect(signaling.TypeHello)
	pa.send(signaling.Message{Type: signaling.TypeJoin})
	pa.expect(signaling.TypeJoined)
	pb := dial(t, s, b, ch)
	pb.expect(signaling.TypeHello)
	pb.send(signaling.Message{Type: signaling.TypeJoin})
	jb := pb.expect(signaling.TypeJoined)
	bob, token := jb.You.ID, jb.ResumeToken
	if len(token) < 32 {
		t.Fatalf("joined gave resume token %q: want a secret of at least 32 characters", token)
	}
	pa.expect(signaling.TypeParticipantJoined)

	pb.conn.CloseNow()
	if l := pa.expect(signaling.TypeParticipantLeft); l.ID != bob || l.Reason != signaling.ReasonDisconnected {
		t.Fatalf("drop: %+v", l)
	}

	// Alice, from other sockets, tries to take Bob's id.
	for _, tok := range []string{"", "wrong", token} {
		pe := dial(t, s, a, ch)
		pe.expect(signaling.TypeHello)
		pe.send(signaling.Message{Type: signaling.TypeJoin, Resume: bob, ResumeToken: tok})
		j := pe.expect(signaling.TypeJoined)
		if j.You.ID == bob || !signaling.ValidParticipantID(j.You.ID) {
			t.Fatalf("Alice resuming Bob's id with token %q got id %s", tok, j.You.ID)
		}
		if j.ResumeToken == token || j.ResumeToken == "" {
			t.Errorf("Alice's new id came with token %q", j.ResumeToken)
		}
		if pj := pa.expect(signaling.TypeParticipantJoined); pj.Participant.ID != j.You.ID || pj.Participant.Name != "Alice" {
			t.Fatalf("the others saw %+v join", pj.Participant)
		}
	}
	// Bob himself without the token: a newcomer.
	pb2 := dial(t, s, b, ch)
	pb2.expect(signaling.TypeHello)
	pb2.send(signaling.Message{Type: signaling.TypeJoin, Resume: bob})
	if j := pb2.expect(signaling.TypeJoined); j.You.ID == bob {
		t.Fatal("a resume without the token kept the id")
	}
	pa.expect(signaling.TypeParticipantJoined)
	// Bob with the token: his id back, and the others see him as Bob.
	pb3 := dial(t, s, b, ch)
	pb3.expect(signaling.TypeHello)
	pb3.send(signaling.Message{Type: signaling.TypeJoin, Resume: bob, ResumeToken: token})
	if j := pb3.expect(signaling.TypeJoined); j.You.ID != bob || j.ResumeToken != token {
		t.Fatalf("resume with the token gave %s (token %q), want %s", j.You.ID, j.ResumeToken, bob)
	}
	if pj := pa.expect(signaling.TypeParticipantJoined); pj.Participant.ID != bob || pj.Participant.Name != "Bob" {
		t.Fatalf("the others saw %+v", pj.Participant)
	}
}

// relayHarness is a Manager behind a real WebSocket with two joined
// participants: the fuzzer speaks as the attacker, the victim's socket is
// read raw.
type relayHarness struct {
	attacker, victim *websocket.Conn
	victimID         string
	attackerSeq      int
}

func newRelayHarness(f *testing.F) *relayHarness {
	m := room.NewManager(room.Config{RatePerSecond: 1e9, Burst: 1 << 30, SendQueue: 4096},
		slog.New(slog.DiscardHandler),
		func(_ context.Context, u signaling.User, _, text string) (signaling.ChatMessage, error) {
			return signaling.ChatMessage{ID: "m_1", UserID: u.UserID, Name: u.Name, Text: text, At: time.Unix(0, 0)}, nil
		})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		u := r.URL.Query().Get("u")
		m.Serve(context.WithoutCancel(r.Context()), conn, "chan", room.ModeAuto, "127.0.0.1", signaling.User{UserID: "u_" + u, Name: u}, room.Auth{UserID: "u_" + u})
	}))
	f.Cleanup(func() { m.Shutdown(context.Background()); hs.Close() })
	h := &relayHarness{}
	dialJoin := func(name string) (*websocket.Conn, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/?u="+name, nil)
		if err != nil {
			f.Fatal(err)
		}
		conn.SetReadLimit(1 << 20)
		if err := conn.Write(ctx, websocket.MessageText, []byte(`{"type":"join"}`)); err != nil {
			f.Fatal(err)
		}
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				f.Fatal(err)
			}
			if msg, _ := signaling.Parse(data); msg.Type == signaling.TypeJoined {
				return conn, msg.You.ID
			}
		}
	}
	h.victim, h.victimID = dialJoin("victim")
	h.attacker, _ = dialJoin("attacker")
	f.Cleanup(func() { h.attacker.CloseNow(); h.victim.CloseNow() })
	// The attacker's errors are not checked; read them so its socket
	// keeps up (and answers pings).
	go func() {
		for {
			if _, _, err := h.attacker.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	return h
}

// relayedShape is what a participant may receive from another: the
// fields of docs/protocol.md's relayed offer, answer and candidate.
var relayedShape = map[string][]string{
	signaling.TypeOffer:     {"type", "from", "sdp"},
	signaling.TypeAnswer:    {"type", "from", "sdp"},
	signaling.TypeCandidate: {"type", "from", "candidate"},
}

// FuzzRelay sends arbitrary messages from one participant and checks
// everything the other receives until a marker: relayed negotiation
// carries the documented fields only (never pc, sources, resumeToken...),
// from the sender's participant id, and nothing else a participant sends
// puts fields outside the protocol in front of another.
func FuzzRelay(f *testing.F) {
	h := newRelayHarness(f)
	v := h.victimID
	for _, s := range []string{
		`{"type":"offer","to":"` + v + `","pc":"sub","sdp":"v=0\r\n"}`,
		`{"type":"offer","to":"` + v + `","sdp":"v=0\r\n","sources":{"a":"camera"}}`,
		`{"type":"answer","to":"` + v + `","PC":"pub","sdp":"v=0"}`,
		`{"type":"candidate","to":"` + v + `","candidate":{"candidate":"c","sdpMid":"0","extra":1}}`,
		`{"type":"candidate","to":"` + v + `","pc":"sub","candidate":null}`,
		`{"type":"offer","to":"` + v + `","from":"sfu","sdp":"v=0"}`,
		`{"type":"update","state":{"audio":true},"pc":"sub"}`,
		`{"type":"chat","text":"hi","pc":"sub","from":"sfu"}`,
		`{"type":"join","resume":"` + v + `"}`,
		`{"type":"leave"}`,
		`{"type":"offer","to":"sfu","pc":"pub","sdp":"v=0"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= signaling.MaxMessageBytes {
			return // closes the socket by design (1009)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.attackerSeq++
		marker := fmt.Sprintf("v=0\r\nmarker %d\r\n", h.attackerSeq)
		markerMsg, _ := json.Marshal(map[string]string{"type": "offer", "to": v, "sdp": marker})
		// The fuzz message, then (re)join in case it left, then a marker:
		// the room handles one socket's messages in order, so once the
		// victim has the marker it has everything the fuzz message caused.
		for _, msg := range [][]byte{data, []byte(`{"type":"join"}`), markerMsg} {
			if err := h.attacker.Write(ctx, websocket.MessageText, msg); err != nil {
				t.Fatalf("attacker write: %v", err)
			}
		}
		for {
			_, raw, err := h.victim.Read(ctx)
			if err != nil {
				t.Fatalf("victim read (after %q): %v", data, err)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(raw, &fields); err != nil {
				t.Fatalf("victim got non-object %s", raw)
			}
			var typ string
			json.Unmarshal(fields["type"], &typ)
			switch typ {
			case signaling.TypeOffer, signaling.TypeAnswer, signaling.TypeCandidate:
				for k := range fields {
					if !slices.Contains(relayedShape[typ], k) {
						t.Fatalf("after %q the victim got %s: field %q is outside the relayed shape", data, raw, k)
					}
				}
				m, err := signaling.Parse(raw)
				if err != nil || !signaling.ValidParticipantID(m.From) || m.From == v {
					t.Fatalf("after %q the victim got %s: from must be the sender's participant id", data, raw)
				}
				if m.Candidate != nil {
					var cand map[string]json.RawMessage
					json.Unmarshal(fields["candidate"], &cand)
					for k := range cand {
						if !slices.Contains([]string{"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"}, k) {
							t.Fatalf("after %q the victim got candidate field %q: %s", data, k, raw)
						}
					}
				}
				if typ == signaling.TypeOffer && m.SDP == marker {
					return
				}
			case signaling.TypeParticipantJoined, signaling.TypeParticipantLeft, signaling.TypeParticipantUpdated, signaling.TypeChat:
				for _, k := range []string{"pc", "from", "sdp", "sources", "resumeToken", "to"} {
					if _, ok := fields[k]; ok {
						t.Fatalf("after %q the victim got %s with field %q", data, raw, k)
					}
				}
			default:
				t.Fatalf("after %q the victim got an unexpected %s (keys %v)", data, raw, slices.Sorted(maps.Keys(fields)))
			}
		}
	})
}
