package pairing_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/pairing"
	"github.com/parley/parley/internal/testtool"
)

// clock is a test clock that only moves when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// start serves a hub over real WebSockets: the client address comes
// from the X-Test-IP header (default 192.0.2.1), the sender's user from
// the user query parameter.
func start(t *testing.T, cfg pairing.Config) (*pairing.Hub, *httptest.Server, *clock) {
	t.Helper()
	c := &clock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	cfg.Now = c.Now
	h := pairing.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ip := func(r *http.Request) string {
		if v := r.Header.Get("X-Test-IP"); v != "" {
			return v
		}
		return "192.0.2.1"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/receive", func(w http.ResponseWriter, r *http.Request) { h.ServeReceive(w, r, ip(r)) })
	mux.HandleFunc("GET /ws/send", func(w http.ResponseWriter, r *http.Request) {
		u := r.URL.Query().Get("user")
		h.ServeSend(w, r, ip(r), pairing.Sender{UserID: u, Name: "User " + u, ChannelID: "ch1", Credential: "cred-" + u})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { h.Close(); srv.Close() })
	return h, srv, c
}

type client struct {
	t    *testing.T
	conn *websocket.Conn
	msgs chan pairing.Message
	err  chan error // the read error that ended it
}

// dial opens a socket; it fails the test unless want (an HTTP status)
// is 101, in which case it returns the client, else nil.
func dial(t *testing.T, srv *httptest.Server, path, ip string, want int) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hd := http.Header{"Origin": {srv.URL}}
	if ip != "" {
		hd.Set("X-Test-IP", ip)
	}
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+path, &websocket.DialOptions{
		HTTPHeader: hd, Subprotocols: []string{pairing.Subprotocol},
	})
	if want != http.StatusSwitchingProtocols {
		if err == nil {
			conn.CloseNow()
			t.Fatalf("dial %s: upgraded, want %d", path, want)
		}
		if resp == nil || resp.StatusCode != want {
			t.Fatalf("dial %s: %v (response %v), want %d", path, err, resp, want)
		}
		return nil
	}
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	conn.SetReadLimit(1 << 20)
	c := &client{t: t, conn: conn, msgs: make(chan pairing.Message, 64), err: make(chan error, 1)}
	go func() {
		defer close(c.msgs)
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				c.err <- err
				return
			}
			var m pairing.Message
			if json.Unmarshal(b, &m) == nil {
				c.msgs <- m
			}
		}
	}()
	t.Cleanup(func() { conn.CloseNow() })
	return c
}

func (c *client) next(want string) pairing.Message {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			c.t.Fatalf("socket closed (%v) waiting for %s", <-c.err, want)
		}
		if m.Type != want {
			c.t.Fatalf("got %+v, want type %s", m, want)
		}
		return m
	case <-time.After(10 * time.Second):
		c.t.Fatalf("no %s within 10 s", want)
	}
	return pairing.Message{}
}

// closed waits for the socket to end and returns the close status.
func (c *client) closed() websocket.StatusCode {
	c.t.Helper()
	for {
		select {
		case _, ok := <-c.msgs:
			if ok {
				continue
			}
			return websocket.CloseStatus(<-c.err)
		case <-time.After(10 * time.Second):
			c.t.Fatal("socket still open after 10 s")
		}
	}
}

func (c *client) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	c.sendRaw(string(b))
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func TestTwoAdmittedThirdRefused(t *testing.T) {
	h, srv, _ := start(t, pairing.Config{})
	recv := dial(t, srv, "/ws/receive", "", 101)
	code := recv.next(pairing.TypeCode)
	if !pairing.ValidCode(code.Code) || code.ExpiresIn != 600 {
		t.Fatalf("code message %+v: want 6 digits expiring in 600 s", code)
	}
	send := dial(t, srv, "/ws/send?user=a&code="+code.Code, "198.51.100.7", 101)
	send.next(pairing.TypePaired)
	if p := recv.next(pairing.TypePaired); p.Name != "User a" {
		t.Fatalf("receiver's paired %+v: want the sender's name", p)
	}
	// A third party with the right code is refused, before any upgrade.
	dial(t, srv, "/ws/send?user=c&code="+code.Code, "203.0.113.9", http.StatusConflict)

	send.send(map[string]any{"type": "offer", "sdp": "v=0 offer", "mode": "grid", "labels": []map[string]string{{"stream": "s1", "name": "Bob"}}})
	if m := recv.next(pairing.TypeOffer); m.SDP != "v=0 offer" || m.Mode != "grid" || len(m.Labels) != 1 || m.Labels[0].Name != "Bob" {
		t.Fatalf("relayed offer %+v", m)
	}
	recv.send(map[string]any{"type": "answer", "sdp": "v=0 answer"})
	if m := send.next(pairing.TypeAnswer); m.SDP != "v=0 answer" {
		t.Fatalf("relayed answer %+v", m)
	}
	recv.send(map[string]any{"type": "candidate", "candidate": map[string]any{"candidate": "candidate:1 1 udp 1 192.0.2.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}})
	if m := send.next(pairing.TypeCandidate); m.Candidate == nil || m.Candidate.SDPMid == nil || *m.Candidate.SDPMid != "0" {
		t.Fatalf("relayed candidate %+v", m)
	}
	// The sender stops: the receiver is told so and its socket closes
	// (its page then asks for a new code).
	send.send(map[string]any{"type": "stop", "reason": "left the call"})
	if m := recv.next(pairing.TypeStop); m.Reason != pairing.ReasonSenderStopped {
		t.Fatalf("stop to the receiver %+v", m)
	}
	if st := recv.closed(); st != websocket.StatusNormalClosure {
		t.Fatalf("receiver closed with %v", st)
	}
	send.closed()
	testtool.Eventually(t, 5*time.Second, func() bool { return h.Waiting() == 0 }, "the room to be forgotten")
	// The code is gone.
	dial(t, srv, "/ws/send?user=a&code="+code.Code, "198.51.100.7", http.StatusNotFound)
}

func TestReceiverLeavingStopsSender(t *testing.T) {
	_, srv, _ := start(t, pairing.Config{})
	recv := dial(t, srv, "/ws/receive", "", 101)
	code := recv.next(pairing.TypeCode).Code
	send := dial(t, srv, "/ws/send?user=a&code="+code, "", 101)
	send.next(pairing.TypePaired)
	recv.conn.Close(websocket.StatusNormalClosure, "")
	if m := send.next(pairing.TypeStop); m.Reason != pairing.ReasonDeviceLeft {
		t.Fatalf("stop to the sender %+v", m)
	}
}

func TestCodeExpires(t *testing.T) {
	h, srv, clk := start(t, pairing.Config{TTL: time.Minute})
	recv := dial(t, srv, "/ws/receive", "", 101)
	code := recv.next(pairing.TypeCode).Code
	clk.add(59 * time.Second)
	h.Sweep()
	if h.Waiting() != 1 {
		t.Fatal("the code expired before its minute")
	}
	clk.add(time.Second)
	// Expired even before the sweep ends it.
	dial(t, srv, "/ws/send?user=a&code="+code, "", http.StatusNotFound)
	h.Sweep()
	recv.next(pairing.TypeExpired)
	if st := recv.closed(); st != websocket.StatusNormalClosure {
		t.Fatalf("receiver closed with %v", st)
	}
	if h.Waiting() != 0 {
		t.Fatal("the expired room is still held")
	}
	// A paired room does not expire.
	recv2 := dial(t, srv, "/ws/receive", "", 101)
	code2 := recv2.next(pairing.TypeCode).Code
	send := dial(t, srv, "/ws/send?user=a&code="+code2, "", 101)
	send.next(pairing.TypePaired)
	clk.add(time.Hour)
	h.Sweep()
	send.send(map[string]any{"type": "offer", "sdp": "x", "mode": "speaker"})
	recv2.next(pairing.TypePaired)
	recv2.next(pairing.TypeOffer)
}

func TestWrongCodesAreLimited(t *testing.T) {
	_, srv, clk := start(t, pairing.Config{GuessesPerIP: 3, GuessesGlobal: 5, GuessWindow: time.Minute})
	recv := dial(t, srv, "/ws/receive", "", 101)
	code := recv.next(pairing.TypeCode).Code
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	// Three wrong codes (a malformed one counts too) from one address…
	dial(t, srv, "/ws/send?user=x&code="+wrong, "198.51.100.1", http.StatusNotFound)
	dial(t, srv, "/ws/send?user=x&code=12ab56", "198.51.100.1", http.StatusBadRequest)
	dial(t, srv, "/ws/send?user=x&code="+wrong, "198.51.100.1", http.StatusNotFound)
	// …and it is refused even the right one, until the window ends.
	dial(t, srv, "/ws/send?user=x&code="+code, "198.51.100.1", http.StatusTooManyRequests)
	// Another address is not (2 more wrong codes reach the global limit).
	dial(t, srv, "/ws/send?user=y&code="+wrong, "198.51.100.2", http.StatusNotFound)
	dial(t, srv, "/ws/send?user=z&code="+wrong, "198.51.100.3", http.StatusNotFound)
	// Five wrong codes in all: everyone waits.
	dial(t, srv, "/ws/send?user=w&code="+code, "198.51.100.4", http.StatusTooManyRequests)
	clk.add(time.Minute)
	send := dial(t, srv, "/ws/send?user=x&code="+code, "198.51.100.1", 101)
	send.next(pairing.TypePaired)
}

func TestReceiversPerAddressAreLimited(t *testing.T) {
	_, srv, _ := start(t, pairing.Config{MaxRoomsPerIP: 2, MaxRooms: 3})
	a := dial(t, srv, "/ws/receive", "198.51.100.1", 101)
	a.next(pairing.TypeCode)
	dial(t, srv, "/ws/receive", "198.51.100.1", 101).next(pairing.TypeCode)
	dial(t, srv, "/ws/receive", "198.51.100.1", http.StatusTooManyRequests)
	dial(t, srv, "/ws/receive", "198.51.100.2", 101).next(pairing.TypeCode)
	dial(t, srv, "/ws/receive", "198.51.100.3", http.StatusServiceUnavailable)
	// Closing one frees its place.
	a.conn.Close(websocket.StatusNormalClosure, "")
	testtool.Eventually(t, 5*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/receive", &websocket.DialOptions{
			HTTPHeader: http.Header{"Origin": {srv.URL}, "X-Test-IP": {"198.51.100.1"}}, Subprotocols: []string{pairing.Subprotocol}})
		if err != nil {
			return false
		}
		c.CloseNow()
		return true
	}, "a receiver's place to be free again")
}

func TestCrossOriginRefused(t *testing.T) {
	_, srv, _ := start(t, pairing.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/receive", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"https://evil.example"}}, Subprotocols: []string{pairing.Subprotocol}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin upgrade: %v %v, want 403", err, resp)
	}
}

func TestMalformedMessagesRefused(t *testing.T) {
	_, srv, _ := start(t, pairing.Config{})
	recv := dial(t, srv, "/ws/receive", "", 101)
	code := recv.next(pairing.TypeCode).Code
	// Before pairing, the receiver has nobody to talk to.
	recv.send(map[string]any{"type": "answer", "sdp": "x"})
	recv.next(pairing.TypeError)
	send := dial(t, srv, "/ws/send?user=a&code="+code, "", 101)
	send.next(pairing.TypePaired)
	recv.next(pairing.TypePaired)
	bad := []string{
		`not json`,
		`{"type":"answer","sdp":"the sender does not answer"}`,
		`{"type":"offer","sdp":"x","mode":"speaker","extra":1}`,
		`{"type":"offer","sdp":"x","mode":"everything"}`,
		`{"type":"offer","sdp":"","mode":"grid"}`,
		`{"type":"code","code":"123456"}`,
		`{"type":"candidate"}`,
		`{"type":"offer","sdp":"x","mode":"grid"} {"type":"stop"}`,
		`{"type":"offer","sdp":"` + strings.Repeat("a", pairing.MaxSDPBytes+1) + `","mode":"grid"}`,
	}
	for _, b := range bad {
		send.sendRaw(b)
		if m := send.next(pairing.TypeError); m.Message == "" {
			t.Fatalf("%.40s: error without a message", b)
		}
	}
	// None reached the receiver: the next thing it gets is a good offer.
	send.send(map[string]any{"type": "offer", "sdp": "good", "mode": "participant"})
	if m := recv.next(pairing.TypeOffer); m.SDP != "good" {
		t.Fatalf("receiver got %+v", m)
	}
	// The tenth invalid message ends the socket.
	send.sendRaw(`{}`)
	send.next(pairing.TypeError)
	if st := send.closed(); st != websocket.StatusPolicyViolation {
		t.Fatalf("sender closed with %v, want policy violation", st)
	}
	recv.next(pairing.TypeStop)
	// A message over the size limit ends it at once.
	recv2 := dial(t, srv, "/ws/receive", "", 101)
	recv2.next(pairing.TypeCode)
	recv2.sendRaw(strings.Repeat(" ", pairing.MaxMessageBytes+1))
	if st := recv2.closed(); st != websocket.StatusMessageTooBig {
		t.Fatalf("oversized message: closed with %v", st)
	}
}

func TestEndCredentialStopsPair(t *testing.T) {
	h, srv, _ := start(t, pairing.Config{})
	recv := dial(t, srv, "/ws/receive", "", 101)
	code := recv.next(pairing.TypeCode).Code
	send := dial(t, srv, "/ws/send?user=a&code="+code, "", 101)
	send.next(pairing.TypePaired)
	recv.next(pairing.TypePaired)
	h.EndCredential("a", "cred-other") // not this one
	h.Kick("ch2", "a")                 // nor this
	h.EndCredential("a", "cred-a")
	if st := send.closed(); st != websocket.StatusPolicyViolation {
		t.Fatalf("sender closed with %v", st)
	}
	if m := recv.next(pairing.TypeStop); m.Reason != pairing.ReasonSenderStopped {
		t.Fatalf("receiver got %+v", m)
	}
}

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		in   string
		from pairing.Role
		ok   bool
	}{
		{`{"type":"offer","sdp":"x","mode":"speaker"}`, pairing.RoleSender, true},
		{`{"type":"offer","sdp":"x","mode":"speaker"}`, pairing.RoleReceiver, false},
		{`{"type":"answer","sdp":"x"}`, pairing.RoleReceiver, true},
		{`{"type":"answer","sdp":"x","mode":"grid"}`, pairing.RoleReceiver, false},
		{`{"type":"candidate","candidate":{"candidate":"c","sdpMLineIndex":2000}}`, pairing.RoleSender, false},
		{`{"type":"candidate","candidate":{"candidate":"c","usernameFragment":"u"}}`, pairing.RoleReceiver, true},
		{`{"type":"stop"}`, pairing.RoleReceiver, true},
		{`{"type":"stop","sdp":"x"}`, pairing.RoleReceiver, false},
		{`{"type":"paired"}`, pairing.RoleSender, false},
		{`{"type":"offer","sdp":"x","mode":"grid","labels":[{"stream":"","name":"n"}]}`, pairing.RoleSender, false},
		{`[]`, pairing.RoleSender, false},
		{"{\"type\":\"stop\",\"reason\":\"\xff\"}", pairing.RoleSender, false},
	} {
		_, err := pairing.Decode([]byte(c.in), c.from)
		if (err == nil) != c.ok {
			t.Errorf("Decode(%s, %v): %v, want ok=%v", c.in, c.from, err, c.ok)
		}
		if err != nil && !errors.Is(err, pairing.ErrInvalid) {
			t.Errorf("Decode(%s): %v does not wrap ErrInvalid", c.in, err)
		}
	}
}

// FuzzDecode: the decoder never panics, refuses with ErrInvalid only, and
// what it accepts encodes back to a message it accepts again.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"offer","sdp":"v=0","mode":"grid","labels":[{"stream":"a","name":"b"}]}`,
		`{"type":"answer","sdp":"v=0"}`,
		`{"type":"candidate","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"type":"stop","reason":"bye"}`, `{}`, `null`, `{"type":"offer"}{}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, sender bool) {
		role := pairing.RoleReceiver
		if sender {
			role = pairing.RoleSender
		}
		m, err := pairing.Decode(data, role)
		if err != nil {
			if !errors.Is(err, pairing.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pairing.Decode(b, role); err != nil {
			t.Fatalf("accepted %q, but not its re-encoding %s: %v", data, b, err)
		}
	})
}

func TestCloseEndsPairs(t *testing.T) {
	h, srv, _ := start(t, pairing.Config{})
	recv := dial(t, srv, "/ws/receive", "", 101)
	code := recv.next(pairing.TypeCode).Code
	send := dial(t, srv, "/ws/send?user=a&code="+code, "", 101)
	send.next(pairing.TypePaired)
	h.Close()
	if st := send.closed(); st != websocket.StatusGoingAway {
		t.Fatalf("sender closed with %v, want going away", st)
	}
	if st := recv.closed(); st != websocket.StatusGoingAway && st != websocket.StatusNormalClosure {
		t.Fatalf("receiver closed with %v", st)
	}
	dial(t, srv, "/ws/receive", "", http.StatusServiceUnavailable)
	dial(t, srv, "/ws/send?user=a&code="+code, "", http.StatusServiceUnavailable)
}
