package room_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signal"
)

// peer is a signaling client speaking the protocol by hand.
type peer struct {
	t    *testing.T
	conn *websocket.Conn
	msgs chan signal.Message
	done chan error
	// hello is the hello the socket got, when the test dialled through
	// actor.dial.
	hello signal.Message
}

func dial(t *testing.T, s *servertest.Server, c *http.Client, channelID string) *peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ck := s.SessionCookie(c)
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/c/"+channelID, &websocket.DialOptions{
		HTTPHeader:   http.Header{"Cookie": {ck.Name + "=" + ck.Value}, "Origin": {s.URL}},
		Subprotocols: []string{signal.Subprotocol},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return newPeer(t, conn)
}

// newPeer reads conn's messages into the peer's queue.
func newPeer(t *testing.T, conn *websocket.Conn) *peer {
	p := &peer{t: t, conn: conn, msgs: make(chan signal.Message, 256), done: make(chan error, 1)}
	go func() {
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				p.done <- err
				close(p.msgs)
				return
			}
			m, err := signal.Parse(data)
			if err != nil {
				t.Errorf("server sent unparseable %s: %v", data, err)
				continue
			}
			p.msgs <- m
		}
	}()
	t.Cleanup(func() { conn.CloseNow() })
	return p
}

func (p *peer) send(m signal.Message) {
	p.t.Helper()
	b, err := signal.Encode(m)
	if err != nil {
		p.t.Fatal(err)
	}
	p.sendRaw(string(b))
}

// sendAsync is send for goroutines other than the test's own.
func (p *peer) sendAsync(m signal.Message) {
	b, err := signal.Encode(m)
	if err != nil {
		p.t.Error(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.conn.Write(ctx, websocket.MessageText, b); err != nil {
		p.t.Errorf("send %s: %v", m.Type, err)
	}
}

func (p *peer) sendRaw(s string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.conn.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

// expect waits for the next message of type typ, skipping others.
func (p *peer) expect(typ string) signal.Message {
	p.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				p.t.Fatalf("socket closed while waiting for %s: %v", typ, <-p.done)
			}
			if m.Type == typ {
				return m
			}
		case <-timeout:
			p.t.Fatalf("no %s within 10s", typ)
		}
	}
}

// closed waits for the socket to close and returns the close status.
func (p *peer) closed() websocket.StatusCode {
	p.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case _, ok := <-p.msgs:
			if !ok {
				return websocket.CloseStatus(<-p.done)
			}
		case <-timeout:
			p.t.Fatal("socket still open after 20s")
		}
	}
}

func setup(t *testing.T, opts ...servertest.Option) (*servertest.Server, string, *http.Client, *http.Client) {
	s := servertest.Start(t, opts...)
	a := s.SignUp("alice", "Alice")
	b := s.SignUp("bob", "Bob")
	ch := s.CreateChannel(a, "Standup")
	s.AddMember(a, ch, "bob")
	return s, ch, a, b
}

func TestJoinRelayLeave(t *testing.T) {
	s, ch, a, b := setup(t)
	pa := dial(t, s, a, ch)
	hello := pa.expect(signal.TypeHello)
	if hello.Version != signal.Version || hello.User.Name != "Alice" || len(hello.Participants) != 0 {
		t.Fatalf("hello: %+v", hello)
	}
	pa.send(signal.Message{Type: signal.TypeJoin, State: &signal.State{Audio: true, Video: true}})
	ja := pa.expect(signal.TypeJoined)
	if !signal.ValidParticipantID(ja.You.ID) || ja.You.Name != "Alice" || !ja.You.State.Video || ja.Topology != signal.TopologyMesh {
		t.Fatalf("joined: %+v", ja)
	}

	// Bob's lobby sees Alice in the call before joining.
	pb := dial(t, s, b, ch)
	hb := pb.expect(signal.TypeHello)
	if len(hb.Participants) != 1 || hb.Participants[0].ID != ja.You.ID {
		t.Fatalf("lobby roster: %+v", hb.Participants)
	}
	pb.send(signal.Message{Type: signal.TypeJoin})
	jb := pb.expect(signal.TypeJoined)
	if len(jb.Participants) != 1 || jb.Participants[0].ID != ja.You.ID {
		t.Fatalf("bob's joined roster: %+v", jb.Participants)
	}
	if got := pa.expect(signal.TypeParticipantJoined); got.Participant.ID != jb.You.ID || got.Participant.Name != "Bob" {
		t.Fatalf("participant-joined: %+v", got.Participant)
	}

	// Offer, answer and candidates are relayed with the sender filled in.
	pb.send(signal.Message{Type: signal.TypeOffer, To: ja.You.ID, SDP: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"})
	off := pa.expect(signal.TypeOffer)
	if off.From != jb.You.ID || !strings.HasPrefix(off.SDP, "v=0") {
		t.Fatalf("relayed offer: %+v", off)
	}
	pa.send(signal.Message{Type: signal.TypeAnswer, To: jb.You.ID, SDP: "v=0\r\n"})
	if ans := pb.expect(signal.TypeAnswer); ans.From != ja.You.ID {
		t.Fatalf("relayed answer: %+v", ans)
	}
	mid := "0"
	pa.send(signal.Message{Type: signal.TypeCandidate, To: jb.You.ID, Candidate: &signal.Candidate{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", SDPMid: &mid}})
	if c := pb.expect(signal.TypeCandidate); c.Candidate == nil || *c.Candidate.SDPMid != "0" {
		t.Fatalf("relayed candidate: %+v", c)
	}
	pa.send(signal.Message{Type: signal.TypeCandidate, To: jb.You.ID, EndOfICE: true})
	if c := pb.expect(signal.TypeCandidate); !c.EndOfICE {
		t.Fatalf("end of candidates not relayed: %+v", c)
	}

	// State updates reach the others.
	pb.send(signal.Message{Type: signal.TypeUpdate, State: &signal.State{Audio: false, Screen: true}})
	if u := pa.expect(signal.TypeParticipantUpdated); u.Participant.ID != jb.You.ID || !u.Participant.State.Screen {
		t.Fatalf("update: %+v", u)
	}

	// A message to someone not in the call is refused.
	pa.send(signal.Message{Type: signal.TypeOffer, To: "p_nobodyhere1", SDP: "v=0"})
	if e := pa.expect(signal.TypeError); e.Code != signal.CodeUnknownPeer || e.Ref != signal.TypeOffer {
		t.Fatalf("unknown peer: %+v", e)
	}

	// Leave: the others are told at once.
	pb.send(signal.Message{Type: signal.TypeLeave})
	if l := pa.expect(signal.TypeParticipantLeft); l.ID != jb.You.ID || l.Reason != signal.ReasonLeft {
		t.Fatalf("left: %+v", l)
	}
	// Back in the lobby, Bob may not send offers.
	pb.send(signal.Message{Type: signal.TypeOffer, To: ja.You.ID, SDP: "v=0"})
	if e := pb.expect(signal.TypeError); e.Code != signal.CodeNotJoined {
		t.Fatalf("offer from lobby: %+v", e)
	}
}

func TestChatBroadcastAndHistory(t *testing.T) {
	s, ch, a, b := setup(t)
	pa := dial(t, s, a, ch)
	pa.expect(signal.TypeHello)
	pb := dial(t, s, b, ch)
	pb.expect(signal.TypeHello)

	pa.send(signal.Message{Type: signal.TypeChat, Text: "  hello <b>bob</b>  "})
	for _, p := range []*peer{pa, pb} {
		m := p.expect(signal.TypeChat)
		if m.Chat == nil || m.Chat.Text != "hello <b>bob</b>" || m.Chat.Name != "Alice" || m.Chat.ID == "" {
			t.Fatalf("chat: %+v", m.Chat)
		}
	}
	pa.send(signal.Message{Type: signal.TypeChat, Text: " "})
	if e := pa.expect(signal.TypeError); e.Code != signal.CodeInvalid || e.Ref != signal.TypeChat {
		t.Fatalf("empty chat: %+v", e)
	}

	// More than 100 messages: history keeps the last 100, oldest first.
	for i := 0; i < 104; i++ {
		pb.send(signal.Message{Type: signal.TypeChat, Text: "n" + itoa(i)})
		pb.expect(signal.TypeChat)
	}
	_, body := s.Get(b, "/api/channels/"+ch+"/messages")
	var hist struct{ Messages []signal.ChatMessage }
	if err := json.Unmarshal([]byte(body), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist.Messages) != 100 || hist.Messages[0].Text != "n4" || hist.Messages[99].Text != "n103" {
		t.Fatalf("history: %d messages, first %q", len(hist.Messages), hist.Messages[0].Text)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestBadMessagesGetErrors(t *testing.T) {
	s, ch, a, _ := setup(t)
	pa := dial(t, s, a, ch)
	pa.expect(signal.TypeHello)
	for in, code := range map[string]string{
		`not json`:                    signal.CodeBadMessage,
		`{"type":"explode"}`:          signal.CodeUnknownType,
		`{"type":"update"}`:           signal.CodeInvalid,
		`{"type":"join","resume":1}`:  signal.CodeBadMessage,
		`{"type":"offer","to":"p_x"}`: signal.CodeInvalid,
	} {
		pa.sendRaw(in)
		if e := pa.expect(signal.TypeError); e.Code != code || e.Human == "" {
			t.Errorf("%s: got %+v, want code %s", in, e, code)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pa.conn.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
	if e := pa.expect(signal.TypeError); e.Code != signal.CodeBadMessage {
		t.Errorf("binary frame: %+v", e)
	}
	pa.send(signal.Message{Type: signal.TypeJoin})
	pa.expect(signal.TypeJoined)
	pa.send(signal.Message{Type: signal.TypeJoin})
	if e := pa.expect(signal.TypeError); e.Code != signal.CodeAlreadyJoined {
		t.Errorf("second join: %+v", e)
	}
	// Still alive after all that.
	pa.send(signal.Message{Type: signal.TypePing, TS: 42})
	if p := pa.expect(signal.TypePong); p.TS != 42 {
		t.Errorf("pong: %+v", p)
	}
}

func TestOversizedMessageClosesSocket(t *testing.T) {
	s, ch, a, _ := setup(t)
	pa := dial(t, s, a, ch)
	pa.expect(signal.TypeHello)
	pa.sendRaw(`{"type":"chat","text":"` + strings.Repeat("a", signal.MaxMessageBytes) + `"}`)
	if code := pa.closed(); code != websocket.StatusMessageTooBig {
		t.Errorf("close status %d, want %d", code, websocket.StatusMessageTooBig)
	}
}

func TestRateLimit(t *testing.T) {
	s, ch, a, _ := setup(t)
	pa := dial(t, s, a, ch)
	pa.expect(signal.TypeHello)
	for i := 0; i < 400; i++ {
		pa.sendRaw(`{"type":"ping"}`)
	}
	if e := pa.expect(signal.TypeError); e.Code != signal.CodeRateLimited {
		t.Errorf("flood: %+v", e)
	}
}

func TestResumeKeepsParticipantID(t *testing.T) {
	s, ch, a, b := setup(t)
	pa := dial(t, s, a, ch)
	pa.expect(signal.TypeHello)
	pa.send(signal.Message{Type: signal.TypeJoin})
	ja := pa.expect(signal.TypeJoined)
	id, token := ja.You.ID, ja.ResumeToken

	pb := dial(t, s, b, ch)
	pb.expect(signal.TypeHello)
	pb.send(signal.Message{Type: signal.TypeJoin})
	bid := pb.expect(signal.TypeJoined).You.ID

	// Alice's socket drops; Bob is told she is disconnected (not left).
	pa.conn.CloseNow()
	if l := pb.expect(signal.TypeParticipantLeft); l.ID != id || l.Reason != signal.ReasonDisconnected {
		t.Fatalf("drop: %+v", l)
	}
	pa2 := dial(t, s, a, ch)
	pa2.expect(signal.TypeHello)
	pa2.send(signal.Message{Type: signal.TypeJoin, Resume: id, ResumeToken: token})
	if j := pa2.expect(signal.TypeJoined); j.You.ID != id {
		t.Fatalf("resume gave %s, want %s", j.You.ID, id)
	}
	if j := pb.expect(signal.TypeParticipantJoined); j.Participant.ID != id {
		t.Fatalf("bob saw %+v", j.Participant)
	}

	// Another user cannot take Bob's id.
	pa3 := dial(t, s, a, ch)
	pa3.expect(signal.TypeHello)
	pa3.send(signal.Message{Type: signal.TypeJoin, Resume: bid})
	if j := pa3.expect(signal.TypeJoined); j.You.ID == bid {
		t.Fatal("alice took over bob's participant id")
	}

	// The same user resuming a live id replaces the old socket.
	pa4 := dial(t, s, a, ch)
	pa4.expect(signal.TypeHello)
	pa4.send(signal.Message{Type: signal.TypeJoin, Resume: id, ResumeToken: token})
	if j := pa4.expect(signal.TypeJoined); j.You.ID != id {
		t.Fatalf("replace gave %s", j.You.ID)
	}
	if code := pa2.closed(); code != 4000 {
		t.Errorf("replaced socket closed with %d, want 4000", code)
	}
}

func TestDeadSocketDetected(t *testing.T) {
	s, ch, a, b := setup(t, servertest.WithConfig(func(c *config.Config) {
		c.PingInterval = 100 * time.Millisecond
		c.PingTimeout = 300 * time.Millisecond
	}))
	// A raw client that never reads never answers pings: it is dead as far
	// as the server can tell.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ck := s.SessionCookie(a)
	dead, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/c/"+ch, &websocket.DialOptions{
		HTTPHeader: http.Header{"Cookie": {ck.Name + "=" + ck.Value}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dead.CloseNow()
	dead.Write(ctx, websocket.MessageText, []byte(`{"type":"join"}`))

	pb := dial(t, s, b, ch)
	hb := pb.expect(signal.TypeHello)
	var id string
	if len(hb.Participants) == 1 {
		id = hb.Participants[0].ID
	} else {
		id = pb.expect(signal.TypeParticipantJoined).Participant.ID
	}
	if l := pb.expect(signal.TypeParticipantLeft); l.ID != id || l.Reason != signal.ReasonTimeout {
		t.Fatalf("dead socket: %+v", l)
	}
}

func TestRemovedMemberIsDisconnected(t *testing.T) {
	s, ch, a, b := setup(t)
	pb := dial(t, s, b, ch)
	pb.expect(signal.TypeHello)
	pb.send(signal.Message{Type: signal.TypeJoin})
	pb.expect(signal.TypeJoined)
	_, body := s.Get(a, "/c/"+ch)
	j := strings.Index(body, "/members/")
	uid := body[j+len("/members/"):]
	uid = uid[:strings.IndexByte(uid, '/')]
	s.PostForm(a, "/c/"+ch+"/members/"+uid+"/remove", nil)
	if code := pb.closed(); code != 4003 {
		t.Errorf("removed member's socket closed with %d, want 4003", code)
	}
}

// TestICEServersRefreshed: a socket is sent fresh ICE servers (new TURN
// credentials) every ICERefresh, so a call can outlive its credentials.
// The Manager runs behind a real WebSocket with a refresh short enough to
// watch.
func TestICEServersRefreshed(t *testing.T) {
	var issued atomic.Int32
	m := room.NewManager(room.Config{
		ICERefresh: 300 * time.Millisecond,
		ICEServers: func(userID, host string) []signal.IceServer {
			n := issued.Add(1)
			return []signal.IceServer{{URLs: []string{"turn:" + host + ":3478"}, Username: fmt.Sprintf("%d:%s", n, userID), Credential: "x"}}
		},
	}, slog.New(slog.DiscardHandler), nil)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		m.Serve(context.WithoutCancel(r.Context()), conn, "chan", room.ModeAuto, "meet.example.org", signal.User{UserID: "u1", Name: "Ann"}, room.Auth{UserID: "u1"})
	}))
	defer hs.Close()
	defer m.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	var got []signal.Message
	for len(got) < 3 {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(got), err)
		}
		msg, err := signal.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Type == signal.TypeHello || msg.Type == signal.TypeIceServers {
			got = append(got, msg)
		}
	}
	if got[0].Type != signal.TypeHello || got[1].Type != signal.TypeIceServers || got[2].Type != signal.TypeIceServers {
		t.Fatalf("messages %q %q %q, want hello then ice-servers twice", got[0].Type, got[1].Type, got[2].Type)
	}
	seen := map[string]bool{}
	for _, msg := range got {
		ice := msg.IceServers[0]
		if ice.URLs[0] != "turn:meet.example.org:3478" || seen[ice.Username] {
			t.Errorf("ICE servers %+v: want the host the socket used and fresh credentials each time", ice)
		}
		seen[ice.Username] = true
	}
}
