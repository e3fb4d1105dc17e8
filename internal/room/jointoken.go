package room

// Sockets opened with a join token (docs/api.md, Join tokens): the grants
// the token carries are enforced here, and the token is kept fresh over
// the open socket (join-token messages) until it is revoked.

import (
	"context"
	"errors"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/signaling"
)

// ErrTokenEnded: the join token cannot be renewed (revoked, or the key
// that signed it was); Renew wraps it.
var ErrTokenEnded = errors.New("room: join token ended")

// JoinToken is what a socket opened with a join token carries.
type JoinToken struct {
	// Grants are what the holder may do (also in the user's Grants).
	Grants signaling.Grants
	// Issued and Expires bound the token the socket was opened with.
	Issued, Expires time.Time
	// Renew returns a fresh token and its expiry; an error wrapping
	// ErrTokenEnded ends the socket, any other is retried. It is called
	// from the socket's own goroutine.
	Renew func(ctx context.Context) (token string, expires time.Time, err error)
}

// Close reasons of a socket whose join token ended (code CloseRevoked).
const (
	tokenExpiredReason = revokedPrefix + "your join token expired; ask the app for a new one"
	tokenRevokedReason = revokedPrefix + "your join token was revoked"
)

// renewRetry is how long a failed renewal waits before the next try.
const renewRetry = 5 * time.Second

// ServeJoinToken is ServeGuest for a socket opened with a join token:
// user.Role is signaling.RoleGuest (or RoleModerator with the moderate
// grant), user.Grants the token's grants; there is no lobby (the app let
// them in). A second socket of the same user that joins takes over the
// first one's participant (closed with CloseReplaced).
func (m *Manager) ServeJoinToken(ctx context.Context, conn *websocket.Conn, channelID, mode, host string, user signaling.User, auth Auth, tok JoinToken) {
	g := tok.Grants
	user.Grants = &g
	m.serveToken(ctx, conn, channelID, mode, host, user, auth, &tok)
}

// renewLoop keeps c's join token fresh: halfway through each token's
// life it asks for a new one and sends it (join-token); if none comes
// before the token expires, or the token was revoked, it closes the
// socket with CloseRevoked. Socket goroutine.
func (c *socket) renewLoop(ctx context.Context, r *call) {
	tok := c.tok
	expires := tok.Expires
	next := tok.Issued.Add(expires.Sub(tok.Issued) / 2)
	for {
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-c.closing:
			t.Stop()
			return
		case <-t.C:
		}
		if !time.Now().Before(expires) {
			c.log.Info("join token expired")
			c.close(CloseRevoked, tokenExpiredReason)
			return
		}
		token, exp, err := tok.Renew(ctx)
		switch {
		case errors.Is(err, ErrTokenEnded):
			c.log.Info("join token ended", "err", err)
			c.close(CloseRevoked, tokenRevokedReason)
			return
		case err != nil:
			// Try again soon, but never past the expiry.
			c.log.Warn("join token renewal failed; retrying", "err", err)
			next = time.Now().Add(renewRetry)
			if next.After(expires) {
				next = expires
			}
			continue
		}
		now := time.Now()
		expires, next = exp, now.Add(exp.Sub(now)/2)
		// Through the room, so that it follows hello (queued before this
		// goroutine started).
		msg := signaling.Message{Type: signaling.TypeJoinToken, Token: token, ExpiresAt: exp.UTC()}
		if !r.post(func() { c.sendMsg(msg) }) {
			return
		}
	}
}

// grants returns what c may do: nil for members and guests (roles decide).
func (c *socket) grants() *signaling.Grants {
	if c.tok == nil {
		return nil
	}
	return &c.tok.Grants
}

// mayPublish reports whether c may send media.
func (c *socket) mayPublish() bool { g := c.grants(); return g == nil || g.Publish }

// tokenJoin refuses a join the token's grants cannot allow here, and
// returns the participant id a socket of the same identity holds (it is
// taken over), or resume. Room goroutine.
func (r *call) tokenJoin(c *socket, resume string) (id string, ok bool) {
	g := c.grants()
	if g == nil {
		return resume, true
	}
	if !g.Subscribe {
		c.refuse(signaling.CodeForbidden, signaling.TypeJoin, "your join token does not allow receiving (subscribe), and everyone in the call receives: publish with WHIP instead")
		return "", false
	}
	if !g.Publish && (r.cfg.Media == nil || r.mode == ModeP2P) {
		c.refuse(signaling.CodeForbidden, signaling.TypeJoin, "your join token does not allow sending (publish), which only the media server can enforce, and this call is peer-to-peer only")
		return "", false
	}
	if resume != "" {
		return resume, true
	}
	// The same identity again (a second tab, a reconnect that lost its
	// resume token): it replaces the first.
	for pid, other := range r.participants {
		if other != c && other.conn != nil && other.user.UserID == c.user.UserID {
			return pid, true
		}
	}
	return "", true
}

// receiveOnly reports whether a participant of the call may not send
// media (a join token without publish): the call must then use the SFU,
// where the server decides what is forwarded.
func (r *call) receiveOnly() bool {
	for _, c := range r.participants {
		if !c.mayPublish() {
			return true
		}
	}
	return false
}
