package room_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signaling"
)

// authServer serves sockets for the Manager, each authenticated as the
// request's ?user and ?cred, at ?at (unix nanoseconds; default now).
func authServer(t *testing.T, m *room.Manager) string {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		auth := room.Auth{UserID: q.Get("user"), Credential: q.Get("cred"), At: time.Now()}
		if at := q.Get("at"); at != "" {
			d, _ := time.ParseDuration(at)
			auth.At = auth.At.Add(-d)
		}
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		m.Serve(context.WithoutCancel(r.Context()), conn, "chan", room.ModeAuto, "h", signaling.User{UserID: auth.UserID, Name: auth.UserID}, auth)
	}))
	t.Cleanup(hs.Close)
	t.Cleanup(func() { m.Shutdown(context.Background()) })
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

// socketEnd dials query, awaits hello, and returns a channel that gets
// the error that ends the socket.
func socketEnd(t *testing.T, base, query string) <-chan error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, base+"/?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	end := make(chan error, 1)
	// hello comes after the socket was registered (or the close, if it
	// was refused).
	if _, _, err := conn.Read(ctx); err != nil {
		end <- err
		return end
	}
	go func() {
		for {
			if _, _, err := conn.Read(context.Background()); err != nil {
				end <- err
				return
			}
		}
	}()
	return end
}

func closeCode(t *testing.T, end <-chan error, within time.Duration) (websocket.StatusCode, bool) {
	t.Helper()
	select {
	case err := <-end:
		return websocket.CloseStatus(err), true
	case <-time.After(within):
		return 0, false
	}
}

// TestEndAuthWholeUser: ending every credential of a user (as a password
// change will) closes all of that user's sockets with 4001, whatever
// credential opened them, and no one else's.
func TestEndAuthWholeUser(t *testing.T) {
	m := room.NewManager(room.Config{}, slog.New(slog.DiscardHandler), nil)
	base := authServer(t, m)
	a1 := socketEnd(t, base, "user=u1&cred=session:a")
	a2 := socketEnd(t, base, "user=u1&cred=token:b")
	other := socketEnd(t, base, "user=u2&cred=session:c")
	m.EndAuth("u1", "", "your password was changed")
	for _, end := range []<-chan error{a1, a2} {
		if code, ok := closeCode(t, end, time.Second); !ok || code != room.CloseRevoked {
			t.Errorf("u1's socket: closed %v with %d, want 4001 within 1s", ok, code)
		}
	}
	if _, closed := closeCode(t, other, 200*time.Millisecond); closed {
		t.Error("u2's socket was closed too")
	}
}

// TestEndAuthRefusesLateRegistration: a connection authenticated just
// before its credential ended, but registered after (the upgrade raced the
// logout), is refused with 4001; one authenticated after the end is
// accepted (its credential was checked after it ended: a new login).
func TestEndAuthRefusesLateRegistration(t *testing.T) {
	m := room.NewManager(room.Config{}, slog.New(slog.DiscardHandler), nil)
	base := authServer(t, m)
	m.EndAuth("u1", "session:a", "you logged out")
	// Authenticated 50 ms ago, before the end.
	if code, ok := closeCode(t, socketEnd(t, base, "user=u1&cred=session:a&at=50ms"), time.Second); !ok || code != room.CloseRevoked {
		t.Errorf("socket authenticated before the logout: closed %v with %d, want 4001", ok, code)
	}
	// Authenticated now, after the end: another session of the same user.
	if _, closed := closeCode(t, socketEnd(t, base, "user=u1&cred=session:z"), 200*time.Millisecond); closed {
		t.Error("a socket of the user's other session was refused")
	}
	// Authenticated longer ago than the Manager remembers: refused.
	if code, ok := closeCode(t, socketEnd(t, base, "user=u1&cred=session:y&at=2m"), time.Second); !ok || code != room.CloseRevoked {
		t.Errorf("socket authenticated 2 minutes ago: closed %v with %d, want 4001", ok, code)
	}
}

// TestKickRefusesLateRegistration: a socket whose membership check passed
// just before its user was removed from the channel, but which registers
// after the removal (the upgrade raced it), is closed with 4003 instead of
// slipping into the call; a socket of a channel deleted the same way gets
// 4004. Others are unaffected.
func TestKickRefusesLateRegistration(t *testing.T) {
	m := room.NewManager(room.Config{}, slog.New(slog.DiscardHandler), nil)
	base := authServer(t, m)
	stays := socketEnd(t, base, "user=u2&cred=session:b")
	m.Kick("chan", "u1")
	if code, ok := closeCode(t, socketEnd(t, base, "user=u1&cred=session:a&at=50ms"), time.Second); !ok || code != room.CloseRemoved {
		t.Errorf("socket checked before the removal: closed %v with %d, want 4003", ok, code)
	}
	// Checked after the removal: the web layer's membership check decides
	// (an owner may have added them back); the room lets it in.
	if _, closed := closeCode(t, socketEnd(t, base, "user=u1&cred=session:a"), 200*time.Millisecond); closed {
		t.Error("a socket authenticated after the removal was refused")
	}
	if _, closed := closeCode(t, stays, 100*time.Millisecond); closed {
		t.Error("another member's socket was closed by the kick")
	}
	m.CloseRoom("chan")
	if code, ok := closeCode(t, stays, time.Second); !ok || code != room.CloseDeleted {
		t.Errorf("socket of a deleted channel: closed %v with %d, want 4004", ok, code)
	}
	if code, ok := closeCode(t, socketEnd(t, base, "user=u2&cred=session:b&at=50ms"), time.Second); !ok || code != room.CloseDeleted {
		t.Errorf("socket checked before the deletion: closed %v with %d, want 4004", ok, code)
	}
}
