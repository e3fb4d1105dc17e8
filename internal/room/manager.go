// Package room runs calls: one room per channel, holding the sockets of the
// members who have the channel open, the participants of its call, presence
// and chat fan-out, and the relay of negotiation messages between
// participants (docs/protocol.md).
//
// Each room's state is owned by one goroutine fed by a queue of closures
// (room.post); each socket has its own reader, writer, heartbeat and SFU
// worker goroutines (client.go, sfuworker.go) that talk to the room only
// through that queue. The media server is reached through the Media
// interface (media.go), so a room can be tested alone against a fake.
package room

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley/parley/internal/signaling"
)

// PostChat stores a chat message posted by user in channelID (checking that
// the user is still a member) and returns it as broadcast. It is called from
// the poster's reader goroutine so that database latency never stalls a room;
// calls for one room are made one at a time, each message's broadcast queued
// before the next call, so the live chat follows the order of storing.
// A *signaling.Error it returns is sent to the poster as is.
type PostChat func(ctx context.Context, user signaling.User, channelID, text string) (signaling.ChatMessage, error)

// Config tunes the signaling limits; zero fields take the documented defaults.
type Config struct {
	// ICEServers returns the ICE servers (with TURN credentials) handed to
	// a user in hello; host is the name the client reached the server at.
	ICEServers func(userID, host string) []signaling.IceServer
	// ICERefresh is how often a socket is sent fresh ICE servers
	// (ice-servers), before its TURN credentials expire; 0 = never.
	ICERefresh time.Duration
	// PingInterval and PingTimeout drive dead-socket detection.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// RatePerSecond and Burst limit the messages one socket may send.
	RatePerSecond float64
	Burst         int
	// SendQueue is how many messages may wait for a slow socket before it
	// is closed.
	SendQueue int
	// Media forwards media for calls beyond P2PMax participants
	// (SFUMedia of the server's media.SFU); nil keeps every call in the
	// mesh.
	Media Media
	// P2PMax is the largest call kept peer-to-peer (default 2).
	P2PMax int
	// Recorder records calls (record.go); nil: recording is refused.
	Recorder Recorder
	// MayRecord says whether user may start or stop recording channelID:
	// nil, or an error wrapping ErrForbidden (or another error). It is
	// called from the socket's reader goroutine; nil allows nobody.
	MayRecord func(ctx context.Context, user signaling.User, channelID string) error
	// ResumeKey signs the resume tokens given in joined; nil: a random
	// one, so tokens do not survive a restart (ids then start afresh).
	ResumeKey []byte
	// Events, if set, is told of calls starting and ending and of
	// participants joining and leaving (events.go). It is called on the
	// room's goroutine, in order, so it must be quick: the server writes
	// the webhook outbox row there, at the moment of the fact.
	Events func(CallEvent)
}

func (c Config) withDefaults() Config {
	if c.ICEServers == nil {
		c.ICEServers = func(string, string) []signaling.IceServer { return nil }
	}
	if c.PingInterval == 0 {
		c.PingInterval = 5 * time.Second
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = 10 * time.Second
	}
	if c.RatePerSecond == 0 {
		c.RatePerSecond = 50
	}
	if c.Burst == 0 {
		c.Burst = 200
	}
	if c.SendQueue == 0 {
		c.SendQueue = 256
	}
	if c.P2PMax == 0 {
		c.P2PMax = 2
	}
	if c.ResumeKey == nil {
		c.ResumeKey = make([]byte, 32)
		rand.Read(c.ResumeKey)
	}
	return c
}

// Application close codes (4000–4999 are ours by RFC 6455).
const (
	// CloseReplaced: the same participant reconnected on another socket.
	CloseReplaced websocket.StatusCode = 4000
	// CloseRemoved: the user was removed from the channel.
	CloseRemoved websocket.StatusCode = 4003
	// CloseDeleted: the channel was deleted.
	CloseDeleted websocket.StatusCode = 4004
	// CloseRevoked: the login session or access token that authenticated
	// the socket was ended (logged out, token revoked, password changed).
	CloseRevoked websocket.StatusCode = 4001
)

// revokedPrefix starts the close reason of CloseRevoked, and the message
// of ErrRevoked.
const revokedPrefix = "session ended: "

// Auth names what authenticated a connection (socket or WHIP/WHEP
// session), so that ending that credential ends the connection too
// (EndAuth). The web layer fills it in; the room only compares it.
type Auth struct {
	// UserID is the user the credential belongs to.
	UserID string
	// Credential identifies one login session or access token; it holds
	// no secret. "" = none in particular: only the end of every
	// credential of UserID ends the connection.
	Credential string
	// At is when authentication began, before the credential was looked
	// up. A credential ended after At may still have looked valid, so a
	// connection registered after such an end is refused. Zero = now (a
	// caller with no authentication step of its own, such as a test).
	At time.Time
}

// ErrRevoked: the credential that authenticated the request was ended
// (logout, revoked token, password change) while the request was being
// served. The client must authenticate again.
var ErrRevoked = errors.New("room: " + revokedPrefix + "the login or access token that authenticated this request was ended; log in again or use a valid token")

// endMemory is how long EndAuth remembers an ended credential, to refuse
// connections authenticated just before it ended but registered after.
// A connection whose authentication began longer ago than this is
// refused outright (it cannot be checked): no honest upgrade or WHIP
// offer takes that long.
const endMemory = time.Minute

// authConn is one registered connection and how to end it.
type authConn struct {
	channelID string
	auth      Auth
	// end closes the connection with a close code and reason (a WHIP/WHEP
	// session has no socket and ignores both). It must not block: it is
	// called with Manager.mu held.
	end func(code websocket.StatusCode, why string)
}

func (a Auth) matches(userID, credential string) bool {
	if credential != "" {
		return a.Credential == credential
	}
	return a.UserID == userID
}

// Manager owns every room of this server.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	postChat PostChat

	mu       sync.Mutex
	rooms    map[string]*call
	shutting bool
	sockets  sync.WaitGroup
	perUser  map[string]int         // signaling sockets and WHIP/WHEP sessions, by user
	conns    map[*authConn]struct{} // every open connection, for EndAuth
	// EndAuth's recent ends, by credential and by user (whole-user
	// ends), and Kick's and CloseRoom's, by memberKey; with when they
	// happened; pruned at most every endMemory.
	endedCreds, endedUsers, endedMembers map[string]time.Time
	prunedAt                             time.Time
}

// NewManager returns a Manager with no rooms.
func NewManager(cfg Config, log *slog.Logger, postChat PostChat) *Manager {
	return &Manager{cfg: cfg.withDefaults(), log: log, postChat: postChat, rooms: map[string]*call{}, perUser: map[string]int{},
		conns: map[*authConn]struct{}{}, endedCreds: map[string]time.Time{}, endedUsers: map[string]time.Time{}, endedMembers: map[string]time.Time{}}
}

// Reserve counts one more connection (socket or WHIP/WHEP session) of
// userID, unless the user already has max; release undoes it (call it
// once). One account cannot exhaust the server's sockets this way.
func (m *Manager) Reserve(userID string, max int) (release func(), ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.perUser[userID] >= max {
		return nil, false
	}
	m.perUser[userID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.perUser[userID]--; m.perUser[userID] <= 0 {
				delete(m.perUser, userID)
			}
		})
	}, true
}

// Serve runs one member's socket on channelID until it closes. The caller
// has authenticated user (with auth) and checked membership; mode is the
// channel's media mode (ModeAuto, ModeSFU or ModeP2P); host is the name
// the client reached the server at (for TURN URLs). When auth's
// credential ends (EndAuth), the socket is closed with CloseRevoked.
func (m *Manager) Serve(ctx context.Context, conn *websocket.Conn, channelID, mode, host string, user signaling.User, auth Auth) {
	m.serve(ctx, conn, channelID, mode, host, user, auth, 0)
}

// ServeCapped is Serve for a room whose call takes at most capacity
// participants (a quick 1:1 call: 2); a join beyond gets error code
// "full". roomID names the room like a channel id, in a namespace of the
// caller's that no channel id uses.
func (m *Manager) ServeCapped(ctx context.Context, conn *websocket.Conn, roomID, host string, user signaling.User, auth Auth, capacity int) {
	m.serve(ctx, conn, roomID, ModeAuto, host, user, auth, capacity)
}

// ServeGuest is Serve for a guest (user.Role signaling.RoleGuest) who came
// through the channel's guest link; with lobby, their join waits until a
// member admits them.
func (m *Manager) ServeGuest(ctx context.Context, conn *websocket.Conn, channelID, mode, host string, user signaling.User, auth Auth, lobby bool) {
	m.serveClient(ctx, conn, channelID, mode, host, user, auth, 0, lobby)
}

// Active reports whether roomID has a room running (anyone on its page).
func (m *Manager) Active(roomID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms[roomID] != nil
}

func (m *Manager) serve(ctx context.Context, conn *websocket.Conn, channelID, mode, host string, user signaling.User, auth Auth, capacity int) {
	m.serveClient(ctx, conn, channelID, mode, host, user, auth, capacity, false)
}

func (m *Manager) serveClient(ctx context.Context, conn *websocket.Conn, channelID, mode, host string, user signaling.User, auth Auth, capacity int, waits bool) {
	c := newSocket(conn, user, m.cfg, m.log.With("channel_id", channelID, "user_id", user.UserID))
	c.waits = waits
	m.serveSocket(ctx, c, conn, channelID, mode, host, auth, capacity)
}

// serveToken serves a socket opened with a join token (jointoken.go).
func (m *Manager) serveToken(ctx context.Context, conn *websocket.Conn, channelID, mode, host string, user signaling.User, auth Auth, tok *JoinToken) {
	c := newSocket(conn, user, m.cfg, m.log.With("channel_id", channelID, "user_id", user.UserID))
	c.tok = tok
	m.serveSocket(ctx, c, conn, channelID, mode, host, auth, 0)
}

func (m *Manager) serveSocket(ctx context.Context, c *socket, conn *websocket.Conn, channelID, mode, host string, auth Auth, capacity int) {
	c.host = host
	unregister, err := m.register(channelID, auth, c.close)
	switch {
	case errors.Is(err, ErrRemoved):
		// The channel is gone, or the user removed from it: either
		// way the socket has no call to be in.
		code, why := CloseRemoved, removedReason
		if m.channelDeleted(channelID, auth.At) {
			code, why = CloseDeleted, deletedReason
		}
		conn.Close(code, why)
		return
	case err != nil:
		conn.Close(CloseRevoked, revokedPrefix+"log in again")
		return
	}
	defer unregister()
	r := m.acquire(channelID, mode, capacity)
	if r == nil {
		conn.Close(websocket.StatusGoingAway, "server is shutting down")
		return
	}
	defer m.release(r)
	defer m.sockets.Done()
	c.serve(ctx, r, m.postChat)
}

// register records a connection to channelID authenticated by auth, which
// end closes, unless auth's credential was ended since auth.At
// (ErrRevoked), or the user was removed from the channel (or the channel
// deleted) since then (ErrRemoved): the caller checked membership after
// auth.At, so an end after it may have come too late for that check.
// unregister forgets it (call it once the connection is gone).
func (m *Manager) register(channelID string, auth Auth, end func(code websocket.StatusCode, why string)) (unregister func(), err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if auth.At.IsZero() {
		auth.At = now
	}
	m.pruneEnded(now)
	if now.Sub(auth.At) > endMemory {
		return nil, fmt.Errorf("%w (authenticated %s ago)", ErrRevoked, now.Sub(auth.At).Round(time.Second))
	}
	if at, ok := m.endedCreds[auth.Credential]; ok && auth.Credential != "" && !at.Before(auth.At) {
		return nil, ErrRevoked
	}
	if at, ok := m.endedUsers[auth.UserID]; ok && !at.Before(auth.At) {
		return nil, ErrRevoked
	}
	for _, key := range []string{memberKey(channelID, auth.UserID), memberKey(channelID, "")} {
		if at, ok := m.endedMembers[key]; ok && !at.Before(auth.At) {
			return nil, ErrRemoved
		}
	}
	ac := &authConn{channelID: channelID, auth: auth, end: end}
	m.conns[ac] = struct{}{}
	return func() {
		m.mu.Lock()
		delete(m.conns, ac)
		m.mu.Unlock()
	}, nil
}

// pruneEnded forgets ends older than endMemory, at most once per
// endMemory so that registering stays cheap. Called with m.mu held.
func (m *Manager) pruneEnded(now time.Time) {
	if now.Sub(m.prunedAt) < endMemory {
		return
	}
	m.prunedAt = now
	for _, ends := range []map[string]time.Time{m.endedCreds, m.endedUsers, m.endedMembers} {
		for k, at := range ends {
			if now.Sub(at) > endMemory {
				delete(ends, k)
			}
		}
	}
}

// EndAuth ends, within moments, every connection (signaling socket, WHIP
// publisher, WHEP viewer) authenticated by credential, or, if credential
// is "", every connection of userID: after a logout, a revoked access
// token, a password change. Sockets are closed with CloseRevoked and the
// reason "session ended: " + why; why says what happened, for the user
// ("you logged out"). Connections being set up with that credential are
// refused (ErrRevoked).
func (m *Manager) EndAuth(userID, credential, why string) {
	if userID == "" && credential == "" {
		return // would match nothing, and must not match everything
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	m.pruneEnded(now)
	if credential != "" {
		m.endedCreds[credential] = now
	} else {
		m.endedUsers[userID] = now
	}
	n := 0
	for ac := range m.conns {
		if ac.auth.matches(userID, credential) {
			ac.end(CloseRevoked, revokedPrefix+why)
			n++
		}
	}
	if n > 0 {
		m.log.Info("connections ended: their credential was ended", "user_id", userID, "connections", n, "why", why)
	}
}

// acquire returns the running room of channelID, starting it if needed, and
// counts the caller as one of its sockets.
func (m *Manager) acquire(channelID, mode string, capacity int) *call {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shutting {
		return nil
	}
	r := m.rooms[channelID]
	if r == nil {
		r = newCall(channelID, mode, m.cfg, m.log.With("channel_id", channelID))
		r.capacity = capacity
		m.rooms[channelID] = r
		go r.run()
	}
	r.refs++
	m.sockets.Add(1)
	return r
}

// release drops the caller's count; the last one out stops the room.
// Every reference posts its last message before its release, so the room
// runs them all before it stops (room.run).
func (m *Manager) release(r *call) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.refs--
	if r.refs == 0 {
		delete(m.rooms, r.channelID)
		close(r.quit)
	}
}

// tell runs f on channelID's room, if one is running. The lock is only
// held to find the room, never while posting: a room with a full queue
// must not stall every other room's sockets and the Manager's callers.
// A room that stops meanwhile drops f, which then has nothing to act on.
func (m *Manager) tell(channelID string, f func(r *call)) {
	m.mu.Lock()
	r := m.rooms[channelID]
	m.mu.Unlock()
	if r != nil {
		r.post(func() { f(r) })
	}
}

// ErrRemoved: the user was removed from the channel (or the channel was
// deleted) while the request was being served.
var ErrRemoved = errors.New("room: you were removed from this channel, or it was deleted")

// removedReason is the close reason of CloseRemoved.
const removedReason = "you were removed from this channel"

// deletedReason is the close reason of CloseDeleted.
const deletedReason = "this channel was deleted"

// channelDeleted reports whether CloseRoom ended channelID after at.
func (m *Manager) channelDeleted(channelID string, at time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	end, ok := m.endedMembers[memberKey(channelID, "")]
	return ok && !end.Before(at)
}

// memberKey names userID's membership of channelID in endedMembers; userID
// "" stands for every member (the channel was deleted).
func memberKey(channelID, userID string) string { return channelID + "\x00" + userID }

// endMembership ends every connection userID ("" = anyone) has to
// channelID, including one whose membership check passed just before the
// removal and that registers after it (register refuses it).
func (m *Manager) endMembership(channelID, userID string, code websocket.StatusCode, why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	m.pruneEnded(now)
	m.endedMembers[memberKey(channelID, userID)] = now
	for ac := range m.conns {
		if ac.channelID == channelID && (userID == "" || ac.auth.UserID == userID) {
			ac.end(code, why)
		}
	}
}

// Kick disconnects every socket and WHIP/WHEP session userID has on
// channelID (after the user was removed from the channel), and refuses
// those whose membership check raced the removal.
func (m *Manager) Kick(channelID, userID string) {
	m.endMembership(channelID, userID, CloseRemoved, removedReason)
	m.tell(channelID, func(r *call) { r.kick(userID) })
}

// Notify sends msg to every socket open on channelID (members with the
// channel open, in the call or not), as the room's own broadcast: the
// studio tells pages of its changes this way. A channel with no open
// socket has no one to tell, and msg is dropped.
func (m *Manager) Notify(channelID string, msg signaling.Message) {
	m.tell(channelID, func(r *call) { r.broadcast(nil, msg) })
}

// SetMode tells a running call that its channel's media mode changed.
func (m *Manager) SetMode(channelID, mode string) {
	m.tell(channelID, func(r *call) { r.setMode(mode) })
}

// CloseRoom disconnects everyone from channelID (after it was deleted).
func (m *Manager) CloseRoom(channelID string) {
	m.endMembership(channelID, "", CloseDeleted, deletedReason)
	m.tell(channelID, func(r *call) { r.closeAll(CloseDeleted, deletedReason) })
}

// Shutdown closes every socket with "going away" and waits until they are
// gone or ctx ends.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.shutting = true
	rooms := make([]*call, 0, len(m.rooms))
	for _, r := range m.rooms {
		rooms = append(rooms, r)
	}
	m.mu.Unlock()
	for _, r := range rooms {
		// A room whose queue is full must not hold up the others, nor
		// Shutdown past ctx.
		go r.post(func() { r.closeAll(websocket.StatusGoingAway, "server is restarting") })
	}
	done := make(chan struct{})
	go func() { m.sockets.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Counts reports the rooms, sockets and call participants on this server.
func (m *Manager) Counts() (rooms, sockets, participants int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.rooms {
		sockets += r.refs - r.sessions
		participants += int(r.joined.Load())
	}
	return len(m.rooms), sockets, participants
}

// Register adds the room gauges (rooms, sockets, participants) to reg.
func (m *Manager) Register(reg prometheus.Registerer) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_rooms", Help: "Rooms with at least one open socket."},
			func() float64 { r, _, _ := m.Counts(); return float64(r) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_sockets", Help: "Open signaling sockets."},
			func() float64 { _, s, _ := m.Counts(); return float64(s) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_participants", Help: "Participants in calls."},
			func() float64 { _, _, p := m.Counts(); return float64(p) }),
	)
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newParticipantID returns a fresh id in the shape signaling.ValidParticipantID
// accepts.
func newParticipantID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return "p_" + strings.ToLower(idEncoding.EncodeToString(b))
}

// Rooms lists the rooms running here with their participants in calls,
// by room id (a cluster node advertises them and renews their leases).
func (m *Manager) Rooms() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.rooms))
	for id, r := range m.rooms {
		out[id] = int(r.joined.Load())
	}
	return out
}

// Move closes every socket and WHIP/WHEP session of roomID with "going
// away" (1001): its call now belongs to another node, and the clients
// reconnect (through any node) to get there.
func (m *Manager) Move(roomID string) {
	m.tell(roomID, func(r *call) {
		r.closeAll(websocket.StatusGoingAway, "server is restarting: the call moved to another node, reconnect")
	})
}
