package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/testtool"
)

// This file: ending a credential (logout, a revoked access token) ends
// every connection it authenticated at once (docs/security.md,
// "Revocation"; close code 4001 in docs/protocol.md).

// openSocket is a signaling socket whose end the test can await.
type openSocket struct {
	t    testing.TB
	conn *websocket.Conn
	msgs chan signaling.Message
	end  chan error // the error that ended reading
}

// dialAs opens a signaling socket to channel ch with the given headers
// (a session cookie or a bearer token) and waits for hello.
func dialAs(t testing.TB, s *servertest.Server, ch string, hdr http.Header) *openSocket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/c/"+ch, &websocket.DialOptions{
		HTTPHeader: hdr, Subprotocols: []string{signaling.Subprotocol},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	o := &openSocket{t: t, conn: conn, msgs: make(chan signaling.Message, 256), end: make(chan error, 1)}
	go func() {
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				o.end <- err
				return
			}
			if m, err := signaling.Parse(data); err == nil {
				select {
				case o.msgs <- m:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { conn.CloseNow() })
	if m := o.next(); m.Type != signaling.TypeHello {
		t.Fatalf("first message %q, want hello", m.Type)
	}
	return o
}

func cookieHeader(s *servertest.Server, c *http.Client) http.Header {
	ck := s.SessionCookie(c)
	return http.Header{"Cookie": {ck.Name + "=" + ck.Value}, "Origin": {s.URL}}
}

func bearerHeader(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

func (o *openSocket) next() signaling.Message {
	o.t.Helper()
	select {
	case m := <-o.msgs:
		return m
	case err := <-o.end:
		o.t.Fatalf("socket ended: %v", err)
	case <-time.After(10 * time.Second):
		o.t.Fatal("no message within 10s")
	}
	return signaling.Message{}
}

// closedWithin awaits the socket's close and returns its close status
// and reason; it fails the test if the socket is still open after d.
func (o *openSocket) closedWithin(d time.Duration, start time.Time) (websocket.StatusCode, string) {
	o.t.Helper()
	select {
	case err := <-o.end:
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			o.t.Fatalf("socket ended without a close frame after %v: %v", time.Since(start), err)
		}
		return ce.Code, ce.Reason
	case <-time.After(time.Until(start.Add(d))):
		o.t.Fatalf("socket still open %v after the credential was ended", d)
	}
	return 0, ""
}

// alive checks that the socket still answers a ping.
func (o *openSocket) alive(what string) {
	o.t.Helper()
	b, _ := signaling.Encode(signaling.Message{Type: signaling.TypePing, TS: 7})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.conn.Write(ctx, websocket.MessageText, b); err != nil {
		o.t.Fatalf("%s: %v", what, err)
	}
	for {
		select {
		case m := <-o.msgs:
			if m.Type == signaling.TypePong {
				return
			}
		case err := <-o.end:
			o.t.Fatalf("%s was closed: %v", what, err)
		case <-ctx.Done():
			o.t.Fatalf("%s: no pong", what)
		}
	}
}

// TestLogoutClosesSessionSockets: logging out closes, within a second,
// every socket the session opened, with code 4001 and a reason that says
// so; the same user's other login and access token keep their sockets.
func TestLogoutClosesSessionSockets(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(ann, "Standup")
	other := s.Client() // Ann on a second device
	if resp, _ := s.PostForm(other, "/login", url.Values{"username": {"ann"}, "password": {servertest.Password}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("second login: %d", resp.StatusCode)
	}
	tok := token(t, s, other, "cli")

	first := dialAs(t, s, ch, cookieHeader(s, ann))
	second := dialAs(t, s, ch, cookieHeader(s, ann)) // a second tab
	elsewhere := dialAs(t, s, ch, cookieHeader(s, other))
	cli := dialAs(t, s, ch, bearerHeader(tok))

	start := time.Now()
	if resp, _ := s.PostForm(ann, "/logout", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	for _, o := range []*openSocket{first, second} {
		code, reason := o.closedWithin(time.Second, start)
		if code != 4001 || !strings.Contains(reason, "logged out") {
			t.Errorf("socket of the logged-out session closed with %d %q, want 4001 and a reason saying so", code, reason)
		}
	}
	elsewhere.alive("the socket of the same user's other login")
	cli.alive("the socket of the same user's access token")
}

// TestRevokedTokenEndsConnections: revoking an access token ends, within
// a second, the signaling socket (4001) and the WHIP publisher it
// authenticated (the call hears participant-left, the session resource is
// gone); the same user's other token and login keep theirs.
func TestRevokedTokenEndsConnections(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	bob := s.SignUp("bob", "Bob")
	ch := s.CreateChannel(ann, "Stage")
	s.AddMember(ann, ch, "bob")

	resp, body := s.PostForm(ann, "/account/tokens", url.Values{"name": {"obs"}})
	m := regexp.MustCompile(`<code id="new-token" class="token">(parley_[A-Za-z0-9_-]+)</code>`).FindStringSubmatch(body)
	id := regexp.MustCompile(`data-token-id="([a-z0-9]+)"`).FindStringSubmatch(body)
	if resp.StatusCode != http.StatusCreated || m == nil || id == nil {
		t.Fatalf("create token: status %d", resp.StatusCode)
	}
	revoked, kept := m[1], token(t, s, ann, "kept")

	watcher := dialLobby(t, s, bob, ch)
	watcher.expect(signaling.TypeHello)
	pub := newPublisher(t)
	if resp, body := pub.post(s.URL+"/whip/"+ch, revoked, pub.offer()); resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST: %d %s", resp.StatusCode, body)
	}
	whip := watcher.expect(signaling.TypeParticipantJoined).Participant
	sock := dialAs(t, s, ch, bearerHeader(revoked))
	keptSock := dialAs(t, s, ch, bearerHeader(kept))
	login := dialAs(t, s, ch, cookieHeader(s, ann))

	start := time.Now()
	if resp, _ := s.PostForm(ann, "/account/tokens/"+id[1]+"/revoke", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: status %d", resp.StatusCode)
	}
	if code, reason := sock.closedWithin(time.Second, start); code != 4001 || !strings.Contains(reason, "revoked") {
		t.Errorf("socket of the revoked token closed with %d %q, want 4001 and a reason saying so", code, reason)
	}
	deadline := time.After(time.Until(start.Add(time.Second)))
	for gone := false; !gone; {
		select {
		case m, ok := <-watcher.msgs:
			if !ok {
				t.Fatal("the watching member's socket closed")
			}
			gone = m.Type == signaling.TypeParticipantLeft && m.ID == whip.ID
		case <-deadline:
			t.Fatal("the WHIP publisher of the revoked token is still in the call 1s after the revoke")
		}
	}
	// Its resource goes within the same second (asked with the kept
	// token: same user). The session announces its end before it has
	// released everything, so poll with a PATCH that changes nothing on a
	// live session (refused for its content type) until it says 404.
	testtool.Eventually(t, max(time.Until(start.Add(time.Second)), 100*time.Millisecond), func() bool {
		resp, _ := request(t, http.MethodPatch, pub.location, kept, "text/plain", "")
		return resp.StatusCode == http.StatusNotFound
	}, "the ended WHIP session's resource to be gone")
	if resp, _ := request(t, http.MethodDelete, pub.location, kept, "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE of the ended WHIP session: %d, want 404", resp.StatusCode)
	}
	keptSock.alive("the socket of the user's other token")
	login.alive("the socket of the user's login")
}
