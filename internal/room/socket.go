package room

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/parley/parley/internal/signaling"
)

// writeTimeout bounds one write to a socket; a peer that cannot take a
// message in this time is treated as gone.
const writeTimeout = 10 * time.Second

// abuseLimit is how many rate-limited messages a socket may send before it
// is closed: a buggy client gets told, a flooding one gets cut off.
const abuseLimit = 500

// socket is one participant's WebSocket (or, with a nil conn, a WHIP
// publisher). Named apart from the internal/client package. Its
// goroutines (reader, writer, heartbeat, SFU worker) share only the out
// queue, the SFU queue and the close signal; p, peer and iceAt belong to
// the room goroutine.
type socket struct {
	conn *websocket.Conn
	user signaling.User
	cfg  Config
	log  *slog.Logger

	out       chan []byte
	closing   chan struct{}
	closeOnce sync.Once
	closeCode websocket.StatusCode
	closeWhy  string
	timedOut  atomic.Bool

	p     *signaling.Participant // owned by the room goroutine
	host  string                 // the host name the socket reached us at
	iceAt time.Time              // when it was last given ICE servers (room goroutine)
	// peer is the participant's SFU connections while the call uses the
	// SFU (room goroutine; setPeer also hands it to the SFU worker).
	peer MediaPeer
	// role is the user's role in the channel (signaling.Role*), kept up to
	// date by Manager.SetRole (room goroutine).
	role string
	// waits: a guest who waits in the lobby until a member admits them
	// (set before the socket is served); waitID is their place in
	// room.waiting while they do, with the join they sent (room goroutine).
	waits    bool
	waitID   string
	waitJoin signaling.Message
	// audioHold and videoHold enforce a moderator's mute and camera-off
	// (room goroutine, moderate.go).
	audioHold, videoHold hold
	// sfu queues the messages for the SFU, in order, for the socket's SFU
	// worker (sfuworker.go); nil for a WHIP participant, which has no socket.
	sfu *sfuQueue
	// tok is the join token the socket was opened with (jointoken.go);
	// nil for members and guests. Set before the socket is served.
	tok *JoinToken
}

func newSocket(conn *websocket.Conn, user signaling.User, cfg Config, log *slog.Logger) *socket {
	return &socket{
		conn:    conn,
		user:    user,
		cfg:     cfg,
		log:     log,
		out:     make(chan []byte, cfg.SendQueue),
		closing: make(chan struct{}),
		sfu:     newSFUQueue(conn != nil),
		role:    user.Role,
	}
}

// serve runs the socket: it returns once the socket is closed and the room
// has been told.
func (c *socket) serve(ctx context.Context, r *call, postChat PostChat) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.conn.SetReadLimit(signaling.MaxMessageBytes)

	writerDone := make(chan struct{})
	go func() { defer close(writerDone); c.writeLoop(ctx) }()
	go c.heartbeat(ctx)
	sfuCtx, stopSFU := context.WithCancel(ctx)
	defer stopSFU()
	sfuDone := make(chan struct{})
	go func() { defer close(sfuDone); c.sfuLoop(sfuCtx, r) }()

	r.post(func() { r.attach(c) })
	if c.tok != nil && c.tok.Renew != nil {
		// After attach is queued: a fresh token never goes before hello.
		go c.renewLoop(ctx, r)
	}
	err := c.readLoop(ctx, r, postChat)
	reason := signaling.ReasonDisconnected
	switch {
	case c.timedOut.Load():
		reason = signaling.ReasonTimeout
	case c.closedByClient(err):
		reason = signaling.ReasonLeft
	}
	r.post(func() { r.detach(c, reason) })

	switch status := websocket.CloseStatus(err); {
	case errors.Is(err, websocket.ErrMessageTooBig):
		c.close(websocket.StatusMessageTooBig, fmt.Sprintf("messages are limited to %d bytes", signaling.MaxMessageBytes))
	case status == websocket.StatusNormalClosure || status == websocket.StatusGoingAway:
		c.close(websocket.StatusNormalClosure, "")
	default:
		c.log.Debug("socket closed", "err", err, "reason", reason)
		c.close(websocket.StatusNormalClosure, "")
	}
	stopSFU()
	<-sfuDone // it may be negotiating: what it sends goes before the close
	<-writerDone
}

// closedByClient reports whether the read loop ended because the client
// closed the socket cleanly, of its own accord: a close frame with 1000
// (the page left for good) or 1001 (the browser closed the tab or went to
// another page), before the server began closing. That is a leave, told to
// the others as "left" at once, so their pages drop the tile instead of
// keeping it for a resume: browsers often cut off the leave message a
// closing page sends (Firefox mostly does), but not the close frame. A
// drop without a close frame (network loss, a crash) stays "disconnected"
// (or "timeout"), and the participant can still resume.
func (c *socket) closedByClient(err error) bool {
	select {
	case <-c.closing:
		return false // the server closed first; the client only answered
	default:
	}
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return true
	}
	return false
}

func (c *socket) readLoop(ctx context.Context, r *call, postChat PostChat) error {
	limiter := rate.NewLimiter(rate.Limit(c.cfg.RatePerSecond), c.cfg.Burst)
	dropped := 0
	for {
		typ, data, err := c.conn.Read(ctx)
		if err != nil {
			return err
		}
		if !limiter.Allow() {
			dropped++
			if dropped >= abuseLimit {
				c.close(websocket.StatusPolicyViolation, "too many messages")
				return errors.New("rate limit abused")
			}
			if dropped%50 == 1 { // tell, without echoing every dropped message
				c.refuse(signaling.CodeRateLimited, "", "too many messages: at most %.0f per second; this one was dropped", c.cfg.RatePerSecond)
			}
			continue
		}
		if typ != websocket.MessageText {
			c.refuse(signaling.CodeBadMessage, "", "binary frames are not part of the protocol; send JSON text")
			continue
		}
		m, err := signaling.DecodeClient(data)
		if err != nil {
			var se *signaling.Error
			if errors.As(err, &se) {
				c.sendMsg(se.Msg())
			}
			continue
		}
		switch m.Type {
		case signaling.TypePing:
			c.sendMsg(signaling.Message{Type: signaling.TypePong, TS: m.TS})
		case signaling.TypeChat:
			if err := c.chat(ctx, r, postChat, m.Text); err != nil {
				return err
			}
		case signaling.TypeLayout:
			c.toSFU(m)
		case signaling.TypeRecord:
			// Authorized here, off the room goroutine (it may ask the
			// database); applied by the room.
			if err := c.mayRecord(ctx, r.channelID); err != nil {
				c.sendMsg(recordError(m.Action, err).Msg())
				continue
			}
			r.post(func() {
				if _, err := r.record(c.user, m.Action); err != nil {
					c.sendMsg(recordError(m.Action, err).Msg())
				}
			})
		default:
			if m.To == signaling.SFU {
				c.toSFU(m)
				continue
			}
			r.post(func() { r.handle(c, m) })
		}
	}
}

// mayRecord asks Config.MayRecord whether c's user may record.
func (c *socket) mayRecord(ctx context.Context, channelID string) error {
	if c.cfg.MayRecord == nil {
		return ErrForbidden
	}
	return c.cfg.MayRecord(ctx, c.user, channelID)
}

// chat stores a posted message and queues its broadcast, holding the
// room's chat turn throughout. Without the turn, two readers could store
// messages 1 and 2 and queue their broadcasts as 2, 1 (the first reader
// descheduled between its commit and its post): everyone would see 1 as
// the newer, while the history, ordered and trimmed by the order of
// storing, holds 2 as the newer. After a run of posts, 1 could be trimmed
// as the 101st newest while the live chat showed fewer than 100 after it,
// an acknowledged message gone (issue 9, item 12). Storing is already one
// at a time per channel (the channel row lock; on SQLite the one write
// lock), so the turn costs little. It fails only if ctx ends while
// waiting for the turn.
func (c *socket) chat(ctx context.Context, r *call, postChat PostChat, text string) error {
	select {
	case r.chatTurn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.chatTurn }()
	msg, err := postChat(ctx, c.user, r.channelID, text)
	var se *signaling.Error
	switch {
	case errors.As(err, &se):
		c.sendMsg(se.Msg())
		return nil
	case err != nil:
		c.log.Warn("chat not stored", "err", err)
		c.refuse(signaling.CodeInternal, signaling.TypeChat, "your message could not be saved; try again")
		return nil
	}
	r.post(func() { r.broadcast(nil, signaling.Message{Type: signaling.TypeChat, Chat: &msg}) })
	return nil
}

func (c *socket) writeLoop(ctx context.Context) {
	for {
		select {
		case b := <-c.out:
			wctx, cancel := context.WithTimeout(ctx, writeTimeout)
			err := c.conn.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				c.close(websocket.StatusGoingAway, "")
				c.conn.CloseNow()
				return
			}
		case <-c.closing:
			c.flush(ctx)
			c.conn.Close(c.closeCode, c.closeWhy)
			return
		}
	}
}

// flush writes what is still queued (a final error, say) without waiting
// long for a peer that is going away.
func (c *socket) flush(ctx context.Context) {
	for {
		select {
		case b := <-c.out:
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			err := c.conn.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				return
			}
		default:
			return
		}
	}
}

// heartbeat pings the socket; a socket that does not answer in time is
// closed, and its participant reported as timed out.
func (c *socket) heartbeat(ctx context.Context) {
	t := time.NewTicker(c.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.closing:
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, c.cfg.PingTimeout)
			err := c.conn.Ping(pctx)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					c.timedOut.Store(true)
					c.log.Info("socket timed out", "err", err)
				}
				c.conn.CloseNow()
				return
			}
		}
	}
}

// close asks the writer to close the socket with code and reason; the first
// call wins.
func (c *socket) close(code websocket.StatusCode, why string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeWhy = code, why
		close(c.closing)
	})
}

// send queues an encoded message; a socket whose queue is full is too slow
// to keep up and is closed rather than allowed to stall the room.
func (c *socket) send(b []byte) {
	if c.conn == nil {
		return // a WHIP participant: it has no socket to hear anything
	}
	select {
	case <-c.closing:
	case c.out <- b:
	default:
		c.log.Warn("socket too slow; closing")
		c.close(websocket.StatusTryAgainLater, "you fell behind; reconnecting will catch you up")
	}
}

func (c *socket) sendMsg(m signaling.Message) {
	b, err := signaling.Encode(m)
	if err != nil {
		c.log.Error("encode", "type", m.Type, "err", err)
		return
	}
	c.send(b)
}

func (c *socket) refuse(code, ref, format string, args ...any) {
	c.sendMsg(signaling.Message{Type: signaling.TypeError, Code: code, Ref: ref, Human: fmt.Sprintf(format, args...)})
}
