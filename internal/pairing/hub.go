// Package pairing is the signaling of "Send to a device": a small room,
// keyed by a 6-digit code, in which a device showing the code (the
// receiver, no account) and one participant of a call (the sender, logged
// in) exchange an offer, an answer and ICE candidates, so the sender's
// page can forward the streams it receives to the device over a direct
// peer connection. No media passes through the server.
//
// A room admits exactly two: the receiver that holds the code and the
// first sender to name it. Codes expire unused after Config.TTL; wrong
// codes are limited per client address and in all (docs/security.md,
// "Sending to another device").
package pairing

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// Config sets the hub's limits; zero values take the defaults.
type Config struct {
	// TTL is how long a code waits for a sender (default 10 minutes).
	TTL time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// GuessesPerIP wrong codes from one address within GuessWindow get
	// that address 429 until the window ends (default 10); GuessesGlobal
	// wrong codes from anyone get everyone 429 (default 1000).
	GuessesPerIP  int
	GuessesGlobal int
	GuessWindow   time.Duration // default 10 minutes
	// MaxRooms bounds the codes waiting or paired at once (default
	// 10000, 1% of the code space); MaxRoomsPerIP those of one address
	// (default 10).
	MaxRooms      int
	MaxRoomsPerIP int
	// SweepEvery is how often expired codes are ended (default TTL/4,
	// at most 30 s); 0 with a custom Now: only when Sweep is called.
	SweepEvery time.Duration
	// PingEvery keeps idle sockets alive through proxies (default 25 s).
	PingEvery time.Duration
}

func (c *Config) defaults() {
	if c.TTL <= 0 {
		c.TTL = 10 * time.Minute
	}
	manualClock := c.Now != nil
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.GuessesPerIP <= 0 {
		c.GuessesPerIP = 10
	}
	if c.GuessesGlobal <= 0 {
		c.GuessesGlobal = 1000
	}
	if c.GuessWindow <= 0 {
		c.GuessWindow = 10 * time.Minute
	}
	if c.MaxRooms <= 0 {
		c.MaxRooms = 10000
	}
	if c.MaxRoomsPerIP <= 0 {
		c.MaxRoomsPerIP = 10
	}
	if c.SweepEvery <= 0 && !manualClock {
		c.SweepEvery = min(c.TTL/4, 30*time.Second)
	}
	if c.PingEvery <= 0 {
		c.PingEvery = 25 * time.Second
	}
}

// Sender is who asks to send to a code: a logged-in member of a call.
type Sender struct {
	UserID, Name, ChannelID string
	// Credential is the session or token that proved it (room.Auth's
	// key): revoking it ends the pair (EndCredential).
	Credential string
}

// Reasons the other end is given in stop.
const (
	ReasonSenderStopped = "The sender stopped"
	ReasonDeviceLeft    = "The device closed its page"
)

// Hub holds the pairing rooms. Its state is small and touched briefly
// by each socket's goroutines, so one mutex guards it; writes to a socket
// go through that socket's own writer goroutine, never under the lock.
type Hub struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	rooms   map[string]*room // by code
	perIP   map[string]int   // rooms by the receiver's address (reserved before the upgrade)
	guesses guesses
	closed  bool

	stopSweep chan struct{}
	sweepDone sync.WaitGroup

	wrongCodes prometheus.Counter
	pairs      prometheus.Counter
}

type room struct {
	code     string
	ip       string
	created  time.Time
	receiver *peer
	pending  bool  // a sender was admitted and is upgrading
	sender   *peer // nil until paired
	who      Sender
}

// New starts a hub; Close stops it.
func New(cfg Config, log *slog.Logger) *Hub {
	cfg.defaults()
	h := &Hub{cfg: cfg, log: log, rooms: map[string]*room{}, perIP: map[string]int{}, stopSweep: make(chan struct{}),
		guesses:    guesses{perIP: map[string]*window{}, span: cfg.GuessWindow, max: cfg.GuessesPerIP, maxGlob: cfg.GuessesGlobal},
		wrongCodes: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_pairing_wrong_codes_total", Help: "Send to a device: codes refused to senders (unknown, expired, malformed or taken)."}),
		pairs:      prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_pairing_pairs_total", Help: "Send to a device: senders admitted to a device's code."}),
	}
	if cfg.SweepEvery > 0 {
		h.sweepDone.Add(1)
		go h.sweeper()
	}
	return h
}

func (h *Hub) sweeper() {
	defer h.sweepDone.Done()
	t := time.NewTicker(h.cfg.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-h.stopSweep:
			return
		case <-t.C:
			h.Sweep()
		}
	}
}

// Close ends every pairing socket ("going away") and the sweeper.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	var peers []*peer
	for _, rm := range h.rooms {
		peers = append(peers, rm.receiver)
		if rm.sender != nil {
			peers = append(peers, rm.sender)
		}
	}
	h.mu.Unlock()
	close(h.stopSweep)
	h.sweepDone.Wait()
	for _, p := range peers {
		p.end(websocket.StatusGoingAway, "the server is stopping")
	}
}

// Sweep ends the codes that waited TTL without a sender: their receivers
// are told expired (and fetch a new code).
func (h *Hub) Sweep() {
	now := h.cfg.Now()
	var gone []*room
	h.mu.Lock()
	for code, rm := range h.rooms {
		if h.expiredLocked(rm, now) {
			h.dropLocked(code, rm)
			gone = append(gone, rm)
		}
	}
	h.mu.Unlock()
	for _, rm := range gone {
		rm.receiver.send(encode(Message{Type: TypeExpired}))
		rm.receiver.end(websocket.StatusNormalClosure, "the code expired")
	}
}

func (h *Hub) expiredLocked(rm *room, now time.Time) bool {
	return rm.sender == nil && !rm.pending && now.Sub(rm.created) >= h.cfg.TTL
}

// dropLocked forgets a room (once).
func (h *Hub) dropLocked(code string, rm *room) {
	if h.rooms[code] != rm {
		return
	}
	delete(h.rooms, code)
	h.releaseIPLocked(rm.ip)
}

func (h *Hub) releaseIPLocked(ip string) {
	if h.perIP[ip]--; h.perIP[ip] <= 0 {
		delete(h.perIP, ip)
	}
}

// Register adds the hub's metrics to reg.
func (h *Hub) Register(reg prometheus.Registerer) {
	reg.MustRegister(h.wrongCodes, h.pairs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "parley_pairing_codes", Help: "Send to a device: codes open (waiting for a sender, or paired).",
	}, func() float64 { return float64(h.Waiting()) }))
}

// Waiting is how many codes are open (waiting or paired); for tests and
// metrics.
func (h *Hub) Waiting() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.rooms)
}

// newCodeLocked draws an unused code, uniformly from 000000…999999.
func (h *Hub) newCodeLocked() (string, error) {
	for range 100 {
		n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
		if err != nil {
			return "", fmt.Errorf("draw a pairing code: %w", err)
		}
		code := fmt.Sprintf("%06d", n.Int64())
		if _, taken := h.rooms[code]; !taken {
			return code, nil
		}
	}
	return "", fmt.Errorf("draw a pairing code: no free code in 100 draws")
}

// ValidCode reports whether s is six ASCII digits.
func ValidCode(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ServeReceive opens a receiver's socket (GET /ws/receive): it draws a
// code, sends it, and relays until the pair ends. ip is the client's
// address (per-address limits). The WebSocket's Origin must match the
// Host (websocket.Accept's check).
func (h *Hub) ServeReceive(w http.ResponseWriter, r *http.Request, ip string) {
	h.mu.Lock()
	switch {
	case h.closed:
		h.mu.Unlock()
		http.Error(w, "the server is stopping; try again in a moment", http.StatusServiceUnavailable)
		return
	case len(h.rooms) >= h.cfg.MaxRooms:
		h.mu.Unlock()
		w.Header().Set("Retry-After", "60")
		http.Error(w, "too many devices are waiting for a sender; try again in a few minutes", http.StatusServiceUnavailable)
		return
	case h.perIP[ip] >= h.cfg.MaxRoomsPerIP:
		h.mu.Unlock()
		w.Header().Set("Retry-After", "60")
		http.Error(w, fmt.Sprintf("this address already has %d devices waiting for a sender: close some of those pages", h.cfg.MaxRoomsPerIP), http.StatusTooManyRequests)
		return
	}
	h.perIP[ip]++ // reserved; the room takes it over
	h.mu.Unlock()

	conn := h.accept(w, r)
	if conn == nil {
		h.mu.Lock()
		h.releaseIPLocked(ip)
		h.mu.Unlock()
		return
	}
	p := newPeer(conn, h.cfg.PingEvery)
	h.mu.Lock()
	code, err := h.newCodeLocked()
	if err != nil || h.closed {
		h.releaseIPLocked(ip)
		h.mu.Unlock()
		if err != nil {
			h.log.Error("pairing: no code", "err", err)
			p.end(websocket.StatusInternalError, "no code available; reload the page")
		}
		p.end(websocket.StatusGoingAway, "the server is stopping")
		p.wait()
		return
	}
	rm := &room{code: code, ip: ip, created: h.cfg.Now(), receiver: p}
	h.rooms[code] = rm
	h.mu.Unlock()
	p.send(encode(Message{Type: TypeCode, Code: code, ExpiresIn: int(h.cfg.TTL / time.Second)}))
	h.run(rm, p, RoleReceiver)
}

// ServeSend admits a sender to the code in the query (GET
// /ws/send?code=…) and relays until the pair ends. The caller has
// authenticated who; ip is the client's address. Refusals come before
// the upgrade: 400 (not six digits), 404 (no such code, or it expired),
// 409 (the code already has its sender), 429 (too many wrong codes) —
// each but 429 counts as a wrong code.
func (h *Hub) ServeSend(w http.ResponseWriter, r *http.Request, ip string, who Sender) {
	code := r.URL.Query().Get("code")
	now := h.cfg.Now()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		http.Error(w, "the server is stopping; try again in a moment", http.StatusServiceUnavailable)
		return
	}
	if wait, blocked := h.guesses.blocked(ip, now); blocked {
		h.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		http.Error(w, "too many wrong codes: wait a few minutes, then type the code the device shows", http.StatusTooManyRequests)
		return
	}
	rm := h.rooms[code]
	var status int
	var why string
	switch {
	case !ValidCode(code):
		status, why = http.StatusBadRequest, "a pairing code is the 6 digits the device shows"
	case rm == nil || h.expiredLocked(rm, now):
		status, why = http.StatusNotFound, "no device is waiting with this code: check the 6 digits on the device (a code lasts 10 minutes)"
	case rm.pending || rm.sender != nil:
		status, why = http.StatusConflict, "this code already has a sender: the device shows a new code once that one stops"
	}
	if status != 0 {
		h.guesses.fail(ip, now)
		h.mu.Unlock()
		h.wrongCodes.Inc()
		h.log.Info("pairing: code refused", "user_id", who.UserID, "status", status)
		http.Error(w, why, status)
		return
	}
	rm.pending = true
	h.mu.Unlock()

	conn := h.accept(w, r)
	if conn == nil {
		h.mu.Lock()
		rm.pending = false
		h.mu.Unlock()
		return
	}
	p := newPeer(conn, h.cfg.PingEvery)
	h.mu.Lock()
	rm.pending = false
	if h.rooms[code] != rm || h.closed { // the device left meanwhile
		h.mu.Unlock()
		p.send(encode(Message{Type: TypeStop, Reason: ReasonDeviceLeft}))
		p.end(websocket.StatusNormalClosure, "the device left")
		p.wait()
		return
	}
	rm.sender, rm.who = p, who
	recv := rm.receiver
	h.mu.Unlock()
	h.pairs.Inc()
	h.log.Info("pairing: paired", "user_id", who.UserID, "channel_id", who.ChannelID)
	p.send(encode(Message{Type: TypePaired}))
	recv.send(encode(Message{Type: TypePaired, Name: who.Name}))
	h.run(rm, p, RoleSender)
}

// accept upgrades with the pairing subprotocol, or answers and returns nil.
func (h *Hub) accept(w http.ResponseWriter, r *http.Request) *websocket.Conn {
	// Accept refuses (403) an Origin that does not match the Host.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{Subprotocol}})
	if err != nil {
		h.log.Warn("pairing: websocket upgrade refused", "origin", r.Header.Get("Origin"), "err", err)
		return nil
	}
	if conn.Subprotocol() != Subprotocol {
		conn.Close(websocket.StatusPolicyViolation, "use the subprotocol "+Subprotocol)
		return nil
	}
	conn.SetReadLimit(MaxMessageBytes)
	return conn
}

// maxInvalid invalid messages end a socket.
const maxInvalid = 10

// run reads p's messages and relays them to the other end until p ends;
// then the other end is stopped too and the room forgotten.
func (h *Hub) run(rm *room, p *peer, role Role) {
	bad := 0
	for {
		_, data, err := p.conn.Read(context.Background())
		if err != nil {
			break
		}
		m, err := Decode(data, role)
		if err != nil {
			bad++
			p.send(encode(Message{Type: TypeError, Message: err.Error()}))
			if bad >= maxInvalid {
				p.end(websocket.StatusPolicyViolation, "too many invalid messages")
				break
			}
			continue
		}
		if m.Type == TypeStop {
			break
		}
		h.mu.Lock()
		other := rm.sender
		if role == RoleSender {
			other = rm.receiver
		}
		h.mu.Unlock()
		if other == nil {
			p.send(encode(Message{Type: TypeError, Message: "no sender yet: " + m.Type + " is relayed once a sender types this code"}))
			continue
		}
		other.send(encode(m))
	}
	h.mu.Lock()
	h.dropLocked(rm.code, rm)
	other := rm.sender
	reason := ReasonDeviceLeft
	if role == RoleSender {
		other, reason = rm.receiver, ReasonSenderStopped
	}
	h.mu.Unlock()
	p.end(websocket.StatusNormalClosure, "")
	if other != nil {
		other.send(encode(Message{Type: TypeStop, Reason: reason}))
		other.end(websocket.StatusNormalClosure, reason)
	}
	p.wait()
}

// EndCredential stops every pair whose sender proved itself with
// credential of userID (logged out, token revoked); an empty credential
// means all of userID's (password changed).
func (h *Hub) EndCredential(userID, credential string) {
	h.endSenders(func(s Sender) bool { return s.UserID == userID && (credential == "" || s.Credential == credential) })
}

// Kick stops every pair userID sends from channelID (removed from it).
func (h *Hub) Kick(channelID, userID string) {
	h.endSenders(func(s Sender) bool { return s.UserID == userID && s.ChannelID == channelID })
}

func (h *Hub) endSenders(match func(Sender) bool) {
	var ps []*peer
	h.mu.Lock()
	for _, rm := range h.rooms {
		if rm.sender != nil && match(rm.who) {
			ps = append(ps, rm.sender)
		}
	}
	h.mu.Unlock()
	for _, p := range ps {
		p.end(websocket.StatusPolicyViolation, "no longer allowed to send")
	}
}

// peer is one socket: its reader is the handler's goroutine (run), its
// writer the goroutine newPeer starts, which sends queued messages, pings,
// and closes the socket once end is called.
type peer struct {
	conn     *websocket.Conn
	out      chan []byte
	done     chan struct{} // closed by end
	finished chan struct{} // closed when the writer has closed the socket
	once     sync.Once
	code     websocket.StatusCode
	reason   string
}

func newPeer(conn *websocket.Conn, ping time.Duration) *peer {
	p := &peer{conn: conn, out: make(chan []byte, 64), done: make(chan struct{}), finished: make(chan struct{})}
	go p.writer(ping)
	return p
}

// send queues a message; a peer that lets 64 pile up is ended.
func (p *peer) send(b []byte) {
	select {
	case <-p.done:
		return
	default:
	}
	select {
	case p.out <- b:
	default:
		p.end(websocket.StatusPolicyViolation, "too slow: messages piled up")
	}
}

// end closes the socket after what is queued (once; the first reason wins).
func (p *peer) end(code websocket.StatusCode, reason string) {
	p.once.Do(func() {
		p.code, p.reason = code, reason
		close(p.done)
	})
}

// wait returns once the socket is closed.
func (p *peer) wait() { <-p.finished }

func (p *peer) write(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.conn.Write(ctx, websocket.MessageText, b)
}

func (p *peer) writer(ping time.Duration) {
	defer close(p.finished)
	t := time.NewTicker(ping)
	defer t.Stop()
	for {
		select {
		case b := <-p.out:
			if err := p.write(b); err != nil {
				p.end(websocket.StatusGoingAway, "")
				p.conn.CloseNow()
				return
			}
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := p.conn.Ping(ctx)
			cancel()
			if err != nil {
				p.end(websocket.StatusGoingAway, "")
				p.conn.CloseNow()
				return
			}
		case <-p.done:
			for {
				select {
				case b := <-p.out:
					if p.write(b) == nil {
						continue
					}
				default:
				}
				break
			}
			p.conn.Close(p.code, p.reason)
			return
		}
	}
}
