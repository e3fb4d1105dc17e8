// Package room runs calls: one room per channel, holding the sockets of the
// members who have the channel open, the participants of its call, presence
// and chat fan-out, and the relay of negotiation messages between
// participants (docs/protocol.md).
//
// Each room's state is owned by one goroutine fed by an event queue; each
// socket has its own reader, writer and heartbeat goroutines that talk to
// the room only through that queue.
package room

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley/parley/internal/media"
	"github.com/parley/parley/internal/signal"
)

// PostChat stores a chat message posted by user in channelID (checking that
// the user is still a member) and returns it as broadcast. It is called from
// the poster's reader goroutine so that database latency never stalls a room.
// A *signal.Error it returns is sent to the poster as is.
type PostChat func(ctx context.Context, user signal.User, channelID, text string) (signal.ChatMessage, error)

// Config tunes the signaling limits; zero fields take the documented defaults.
type Config struct {
	// ICEServers returns the ICE servers (with TURN credentials) handed to
	// a user in hello; host is the name the client reached the server at.
	ICEServers func(userID, host string) []signal.IceServer
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
	// SFU forwards media for calls beyond P2PMax participants; nil keeps
	// every call in the mesh.
	SFU *media.SFU
	// P2PMax is the largest call kept peer-to-peer (default 2).
	P2PMax int
	// ResumeKey signs the resume tokens given in joined; nil: a random
	// one, so tokens do not survive a restart (ids then start afresh).
	ResumeKey []byte
}

func (c Config) withDefaults() Config {
	if c.ICEServers == nil {
		c.ICEServers = func(string, string) []signal.IceServer { return nil }
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
)

// Manager owns every room of this server.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	postChat PostChat

	mu       sync.Mutex
	rooms    map[string]*room
	shutting bool
	sockets  sync.WaitGroup
	perUser  map[string]int // signaling sockets and WHIP/WHEP sessions, by user
}

// NewManager returns a Manager with no rooms.
func NewManager(cfg Config, log *slog.Logger, postChat PostChat) *Manager {
	return &Manager{cfg: cfg.withDefaults(), log: log, postChat: postChat, rooms: map[string]*room{}, perUser: map[string]int{}}
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
// has authenticated user and checked membership; mode is the channel's
// media mode (ModeAuto, ModeSFU or ModeP2P); host is the name the client
// reached the server at (for TURN URLs).
func (m *Manager) Serve(ctx context.Context, conn *websocket.Conn, channelID, mode, host string, user signal.User) {
	r := m.acquire(channelID, mode)
	if r == nil {
		conn.Close(websocket.StatusGoingAway, "server is shutting down")
		return
	}
	defer m.release(r)
	defer m.sockets.Done()

	c := newClient(conn, user, m.cfg, m.log.With("channel", channelID, "user", user.UserID))
	c.host = host
	c.serve(ctx, r, m.postChat)
}

// acquire returns the running room of channelID, starting it if needed, and
// counts the caller as one of its sockets.
func (m *Manager) acquire(channelID, mode string) *room {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shutting {
		return nil
	}
	r := m.rooms[channelID]
	if r == nil {
		r = newRoom(channelID, mode, m.cfg, m.log.With("channel", channelID))
		m.rooms[channelID] = r
		go r.run()
	}
	r.refs++
	m.sockets.Add(1)
	return r
}

// release drops the caller's count; the last one out stops the room. Every
// event a socket sends is sent before its release, so closing the queue
// here cannot race with a send.
func (m *Manager) release(r *room) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.refs--
	if r.refs == 0 {
		delete(m.rooms, r.channelID)
		close(r.events)
	}
}

// tell sends an event to a running room, if there is one. Holding m.mu
// keeps the room from being stopped mid-send; the room goroutine never
// takes m.mu, so the send cannot deadlock.
func (m *Manager) tell(channelID string, ev event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.rooms[channelID]; r != nil {
		r.events <- ev
	}
}

// Kick disconnects every socket userID has on channelID (after the user was
// removed from the channel).
func (m *Manager) Kick(channelID, userID string) {
	m.tell(channelID, event{kind: evKick, userID: userID})
}

// SetMode tells a running call that its channel's media mode changed.
func (m *Manager) SetMode(channelID, mode string) {
	m.tell(channelID, event{kind: evMode, mode: mode})
}

// CloseRoom disconnects everyone from channelID (after it was deleted).
func (m *Manager) CloseRoom(channelID string) {
	m.tell(channelID, event{kind: evClose, code: CloseDeleted, reason: "this channel was deleted"})
}

// Shutdown closes every socket with "going away" and waits until they are
// gone or ctx ends.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.shutting = true
	for _, r := range m.rooms {
		r.events <- event{kind: evClose, code: websocket.StatusGoingAway, reason: "server is restarting"}
	}
	m.mu.Unlock()
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

// newParticipantID returns a fresh id in the shape signal.ValidParticipantID
// accepts.
func newParticipantID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return "p_" + strings.ToLower(idEncoding.EncodeToString(b))
}
