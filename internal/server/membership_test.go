package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store"
)

// callSocket is one signaling socket of a logged-in user, read by a
// goroutine into msgs until it closes (end then holds the error).
type callSocket struct {
	msgs chan signaling.Message
	end  chan error
}

func joinCall(t *testing.T, s *servertest.Server, c *http.Client, channelID string) *callSocket {
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
	t.Cleanup(func() { conn.CloseNow() })
	cs := &callSocket{msgs: make(chan signaling.Message, 256), end: make(chan error, 1)}
	go func() {
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				cs.end <- err
				close(cs.msgs)
				return
			}
			if m, err := signaling.Parse(data); err == nil {
				cs.msgs <- m
			}
		}
	}()
	join, _ := signaling.Encode(signaling.Message{Type: signaling.TypeJoin})
	if err := conn.Write(ctx, websocket.MessageText, join); err != nil {
		t.Fatal(err)
	}
	cs.expect(t, signaling.TypeJoined, func(signaling.Message) bool { return true })
	return cs
}

// expect waits for a message of type typ that ok accepts, skipping others.
func (cs *callSocket) expect(t *testing.T, typ string, ok func(signaling.Message) bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, open := <-cs.msgs:
			if !open {
				t.Fatalf("socket closed while waiting for %s: %v", typ, <-cs.end)
			}
			if m.Type == typ && ok(m) {
				return
			}
		case <-timeout:
			t.Fatalf("no %s within 10s", typ)
		}
	}
}

// closed waits for the socket to be closed by the server and returns the
// close code.
func (cs *callSocket) closed(t *testing.T) websocket.StatusCode {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, open := <-cs.msgs:
			if !open {
				return websocket.CloseStatus(<-cs.end)
			}
		case <-timeout:
			t.Fatal("socket still open 10s later")
		}
	}
}

func user(t *testing.T, s *servertest.Server, username string) store.User {
	t.Helper()
	u, _, err := s.Accounts().LogIn(context.Background(), "", username, servertest.Password)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestMembershipChangesReachTheCall: removing a member, changing a
// channel's mode and deleting it, done through account.Service directly
// (as an API or an admin command would, with no web handler involved),
// close the removed member's socket (4003), move the running call, and
// close everyone's socket (4004).
func TestMembershipChangesReachTheCall(t *testing.T) {
	// A peer-to-peer call for three, so the only move to the SFU is the
	// mode change's.
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.P2PMax = 4 }))
	a := s.SignUp("ann", "Ann")
	b := s.SignUp("bob", "Bob")
	c := s.SignUp("cyd", "Cyd")
	ch := s.CreateChannel(a, "Standup")
	s.AddMember(a, ch, "bob")
	s.AddMember(a, ch, "cyd")
	ann, bob := user(t, s, "ann"), user(t, s, "bob")
	ctx := context.Background()

	pa, pb, pc := joinCall(t, s, a, ch), joinCall(t, s, b, ch), joinCall(t, s, c, ch)

	if err := s.Accounts().RemoveMember(ctx, ann, ch, bob.ID); err != nil {
		t.Fatal(err)
	}
	if code := pb.closed(t); code != room.CloseRemoved {
		t.Errorf("removed member's socket closed with %d, want %d", code, room.CloseRemoved)
	}

	if _, err := s.Accounts().SetChannelMode(ctx, ann, ch, store.ModeSFU); err != nil {
		t.Fatal(err)
	}
	pa.expect(t, signaling.TypeTopology, func(m signaling.Message) bool { return m.Topology == signaling.TopologySFU })

	if err := s.Accounts().DeleteChannel(ctx, ann, ch); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*callSocket{"ann": pa, "cyd": pc} {
		if code := p.closed(t); code != room.CloseDeleted {
			t.Errorf("%s's socket closed with %d after the channel was deleted, want %d", name, code, room.CloseDeleted)
		}
	}
}
