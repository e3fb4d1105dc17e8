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
	"github.com/parley/parley/internal/signaling"
)

// peer is a signaling client speaking the protocol by hand.
type peer struct {
	t    *testing.T
	conn *websocket.Conn
	msgs chan signaling.Message
	done chan error
	// hello is the hello the socket got, when the test dialled through
	// actor.dial.
	hello signaling.Message
}

func dial(t *testing.T, s *servertest.Server, c *http.Client, channelID string) *peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ck := s.SessionCookie(c)
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/c/"+channelID, &websocket.DialOptions{
		HTTPHeader:   http.Header{"Cookie": {ck.Name + "=" + ck.Value}, "Origin": {s.URL}},
		Subprotocols: []string{signaling.Subprotocol},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return newPeer(t, conn)
}

// newPeer reads conn's messages into the peer's queue.
func newPeer(t *testing.T, conn *websocket.Conn) *peer {
	p := &peer{t: t, conn: conn, msgs: make(chan signaling.Message, 256), done: make(chan error, 1)}
	go func() {
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				p.done <- err
				close(p.msgs)
				return
			}
			m, err := signaling.Parse(data)
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

func (p *peer) send(m signaling.Message) {
	p.t.Helper()
	b, err := signaling.Encode(m)
	if err != nil {
		p.t.Fatal(err)
	}
	p.sendRaw(string(b))
}

// sendAsync is send for goroutines other than the test's own.
func (p *peer) sendAsync(m signaling.Message) {
	b, err := signaling.Encode(m)
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
func (p *peer) expect(typ string) signaling.Message {
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
	hello := pa.expect(signaling.TypeHello)
	if hello.Version != signaling.Version || hello.User.Name != "Alice" || len(hello.Participants) != 0 {
		t.Fatalf("hello: %+v", hello)
	}
	pa.send(signaling.Message{Type: signaling.TypeJoin, State: &signaling.State{Audio: true, Video: true}})
	ja := pa.expect(signaling.TypeJoined)
	if !signaling.ValidParticipantID(ja.You.ID) || ja.You.Name != "Alice" || !ja.You.State.Video || ja.Topology != signaling.TopologyMesh {
		t.Fatalf("joined: %+v", ja)
	}

	// Bob's lobby sees Alice in the call before joining.
	pb := dial(t, s, b, ch)
	hb := pb.expect(signaling.TypeHello)
	if len(hb.Participants) != 1 || hb.Participants[0].ID != ja.You.ID {
		t.Fatalf("lobby roster: %+v", hb.Participants)
	}
	pb.send(signaling.Message{Type: signaling.TypeJoin})
	jb := pb.expect(signaling.TypeJoined)
	if len(jb.Participants) != 1 || jb.Participants[0].ID != ja.You.ID {
		t.Fatalf("bob's joined roster: %+v", jb.Participants)
	}
	if got := pa.expect(signaling.TypeParticipantJoined); got.Participant.ID != jb.You.ID || got.Participant.Name != "Bob" {
		t.Fatalf("participant-joined: %+v", got.Participant)
	}

	// Offer, answer and candidates are relayed with the sender filled in.
	pb.send(signaling.Message{Type: signaling.TypeOffer, To: ja.You.ID, SDP: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"})
	off := pa.expect(signaling.TypeOffer)
	if off.From != jb.You.ID || !strings.HasPrefix(off.SDP, "v=0") {
		t.Fatalf("relayed offer: %+v", off)
	}
	pa.send(signaling.Message{Type: signaling.TypeAnswer, To: jb.You.ID, SDP: "v=0\r\n"})
	if ans := pb.expect(signaling.TypeAnswer); ans.From != ja.You.ID {
		t.Fatalf("relayed answer: %+v", ans)
	}
	mid := "0"
	pa.send(signaling.Message{Type: signaling.TypeCandidate, To: jb.You.ID, Candidate: &signaling.Candidate{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", SDPMid: &mid}})
	if c := pb.expect(signaling.TypeCandidate); c.Candidate == nil || *c.Candidate.SDPMid != "0" {
		t.Fatalf("relayed candidate: %+v", c)
	}
	pa.send(signaling.Message{Type: signaling.TypeCandidate, To: jb.You.ID, EndOfICE: true})
	if c := pb.expect(signaling.TypeCandidate); !c.EndOfICE {
		t.Fatalf("end of candidates not relayed: %+v", c)
	}

	// State updates reach the others.
	pb.send(signaling.Message{Type: signaling.TypeUpdate, State: &signaling.State{Audio: false, Screen: true}})
	if u := pa.expect(signaling.TypeParticipantUpdated); u.Participant.ID != jb.You.ID || !u.Participant.State.Screen {
		t.Fatalf("update: %+v", u)
	}

	// A message to someone not in the call is refused.
	pa.send(signaling.Message{Type: signaling.TypeOffer, To: "p_nobodyhere1", SDP: "v=0"})
	if e := pa.expect(signaling.TypeError); e.Code != signaling.CodeUnknownPeer || e.Ref != signaling.TypeOffer {
		t.Fatalf("unknown peer: %+v", e)
	}

	// Leave: the others are told at once.
	pb.send(signaling.Message{Type: signaling.TypeLeave})
	if l := pa.expect(signaling.TypeParticipantLeft); l.ID != jb.You.ID || l.Reason != signaling.ReasonLeft {
		t.Fatalf("left: %+v", l)
	}
	// Back in the lobby, Bob may not send offers.
	pb.send(signaling.Message{Type: signaling.TypeOffer, To: ja.You.ID, SDP: "v=0"})
	if e := pb.expect(signaling.TypeError); e.Code != signaling.CodeNotJoined {
		t.Fatalf("offer from lobby: %+v", e)
	}
}

func TestChatBroadcastAndHistory(t *testing.T) {
	s, ch, a, b := setup(t)
	pa := dial(t, s, a, ch)
	pa.expect(signaling.TypeHello)
	pb := dial(t, s, b, ch)
	pb.expect(signaling.TypeHello)

	pa.send(signaling.Message{Type: signaling.TypeChat, Text: "  hello <b>bob</b>  "})
	for _, p := range []*peer{pa, pb} {
		m := p.expect(signaling.TypeChat)
		if m.Chat == nil || m.Chat.Text != "hello <b>bob</b>" || m.Chat.Name != "Alice" || m.Chat.ID == "" {
			t.Fatalf("chat: %+v", m.Chat)
		}
	}
	pa.send(signaling.Message{Type: signaling.TypeChat, Text: " "})
	if e := pa.expect(signaling.TypeError); e.Code != signaling.CodeInvalid || e.Ref != signaling.TypeChat {
		t.Fatalf("empty chat: %+v", e)
	}

	// More than 100 messages: history keeps the last 100, oldest first.
	for i := 0; i < 104; i++ {
		pb.send(signaling.Message{Type: signaling.TypeChat, Text: "n" + itoa(i)})
		pb.expect(signaling.TypeChat)
	}
	_, body := s.Get(b, "/api/channels/"+ch+"/messages")
	var hist struct{ Messages []signaling.ChatMessage }
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
	pa.expect(signaling.TypeHello)
	for in, code := range map[string]string{
		`not json`:                    signaling.CodeBadMessage,
		`{"type":"explode"}`:          signaling.CodeUnknownType,
		`{"type":"update"}`:           signaling.CodeInvalid,
		`{"type":"join","resume":1}`:  signaling.CodeBadMessage,
		`{"type":"offer","to":"p_x"}`: signaling.CodeInvalid,
	} {
		pa.sendRaw(in)
		if e := pa.expect(signaling.TypeError); e.Code != code || e.Human == "" {
			t.Errorf("%s: got %+v, want code %s", in, e, code)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pa.conn.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
	if e := pa.expect(signaling.TypeError); e.Code != signaling.CodeBadMessage {
		t.Errorf("binary frame: %+v", e)
	}
	pa.send(signaling.Message{Type: signaling.TypeJoin})
	pa.expect(signaling.TypeJoined)
	pa.send(signaling.Message{Type: signaling.TypeJoin})
	if e := pa.expect(signaling.TypeError); e.Code != signaling.CodeAlreadyJoined {
		t.Errorf("second join: %+v", e)
	}
	// Still alive after all that.
	pa.send(signaling.Message{Type: signaling.TypePing, TS: 42})
	if p := pa.expect(signaling.TypePong); p.TS != 42 {
		t.Errorf("pong: %+v", p)
	}
}

func TestOversizedMessageClosesSocket(t *testing.T) {
	s, ch, a, _ := setup(t)
	pa := dial(t, s, a, ch)
	pa.expect(signaling.TypeHello)
	pa.sendRaw(`{"type":"chat","text":"` + strings.Repeat("a", signaling.MaxMessageBytes) + `"}`)
	if code := pa.closed(); code != websocket.StatusMessageTooBig {
		t.Errorf("close status %d, want %d", code, websocket.StatusMessageTooBig)
	}
}

func TestRateLimit(t *testing.T) {
	s, ch, a, _ := setup(t)
	pa := dial(t, s, a, ch)
	pa.expect(signaling.TypeHello)
	for i := 0; i < 400; i++ {
		pa.sendRaw(`{"type":"ping"}`)
	}
	if e := pa.expect(signaling.TypeError); e.Code != signaling.CodeRateLimited {
		t.Errorf("flood: %+v", e)
	}
}

func TestResumeKeepsParticipantID(t *testing.T) {
	s, ch, a, b := setup(t)
	pa := dial(t, s, a, ch)
	pa.expect(signaling.TypeHello)
	pa.send(signaling.Message{Type: signaling.TypeJoin})
	ja := pa.expect(signaling.TypeJoined)
	id, token := ja.You.ID, ja.ResumeToken

	pb := dial(t, s, b, ch)
	pb.expect(signaling.TypeHello)
	pb.send(signaling.Message{Type: signaling.TypeJoin})
	bid := pb.expect(signaling.TypeJoined).You.ID

	// Alice's socket drops; Bob is told she is disconnected (not left).
	pa.conn.CloseNow()
	if l := pb.expect(signaling.TypeParticipantLeft); l.ID != id || l.Reason != signaling.ReasonDisconnected {
		t.Fatalf("drop: %+v", l)
	}
	pa2 := dial(t, s, a, ch)
	pa2.expect(signaling.TypeHello)
	pa2.send(signaling.Message{Type: signaling.TypeJoin, Resume: id, ResumeToken: token})
	if j := pa2.expect(signaling.TypeJoined); j.You.ID != id {
		t.Fatalf("resume gave %s, want %s", j.You.ID, id)
	}
	if j := pb.expect(signaling.TypeParticipantJoined); j.Participant.ID != id {
		t.Fatalf("bob saw %+v", j.Participant)
	}

	// Another user cannot take Bob's id.
	pa3 := dial(t, s, a, ch)
	pa3.expect(signaling.TypeHello)
	pa3.send(signaling.Message{Type: signaling.TypeJoin, Resume: bid})
	if j := pa3.expect(signaling.TypeJoined); j.You.ID == bid {
		t.Fatal("alice took over bob's participant id")
	}

	// The same user resuming a live id replaces the old socket.
	pa4 := dial(t, s, a, ch)
	pa4.expect(signaling.TypeHello)
	pa4.send(signaling.Message{Type: signaling.TypeJoin, Resume: id, ResumeToken: token})
	if j := pa4.expect(signaling.TypeJoined); j.You.ID != id {
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
	hb := pb.expect(signaling.TypeHello)
	var id string
	if len(hb.Participants) == 1 {
		id = hb.Participants[0].ID
	} else {
		id = pb.expect(signaling.TypeParticipantJoined).Participant.ID
	}
	if l := pb.expect(signaling.TypeParticipantLeft); l.ID != id || l.Reason != signaling.ReasonTimeout {
		t.Fatalf("dead socket: %+v", l)
	}
}

func TestRemovedMemberIsDisconnected(t *testing.T) {
	s, ch, a, b := setup(t)
	pb := dial(t, s, b, ch)
	pb.expect(signaling.TypeHello)
	pb.send(signaling.Message{Type: signaling.TypeJoin})
	pb.expect(signaling.TypeJoined)
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
		ICEServers: func(userID, host string) []signaling.IceServer {
			n := issued.Add(1)
			return []signaling.IceServer{{URLs: []string{"turn:" + host + ":3478"}, Username: fmt.Sprintf("%d:%s", n, userID), Credential: "x"}}
		},
	}, slog.New(slog.DiscardHandler), nil)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		m.Serve(context.WithoutCancel(r.Context()), conn, "chan", room.ModeAuto, "meet.example.org", signaling.User{UserID: "u1", Name: "Ann"}, room.Auth{UserID: "u1"})
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
	var got []signaling.Message
	for len(got) < 3 {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(got), err)
		}
		msg, err := signaling.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Type == signaling.TypeHello || msg.Type == signaling.TypeIceServers {
			got = append(got, msg)
		}
	}
	if got[0].Type != signaling.TypeHello || got[1].Type != signaling.TypeIceServers || got[2].Type != signaling.TypeIceServers {
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
