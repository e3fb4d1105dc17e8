// Package turnserver is Parley's embedded TURN relay (pion/turn) for
// clients whose networks block direct media: UDP and TCP (and TLS, turns:)
// on sockets the caller opens.
//
// Credentials are the "TURN REST API" scheme coturn's use-auth-secret
// understands: the username is "EXPIRY:USER" (unix seconds), the password
// base64(HMAC-SHA1(secret, username)). So an operator can run coturn with
// the same secret instead, and Parley hands out credentials for it.
//
// It is not an open relay: peers on loopback, private, link-local
// (including the cloud metadata address 169.254.169.254), shared
// (100.64/10), multicast and unspecified addresses are refused unless
// AllowPrivate (a LAN-only deployment); each user has a quota of
// allocations and of relayed bandwidth. Refusals are logged and counted.
//
// Relay ports are a small, shared pool: an allocation nobody refreshes
// (a closed tab, a killed client) gives its port back after
// AllocationLifetime (3 minutes, not pion's 10); one user may hold at
// most a quarter of the pool, whatever MaxAllocationsPerUser says, so a
// few users cannot starve the rest; and the pool's use is exported as
// metrics (parley_turn_relay_ports, parley_turn_relay_ports_in_use).
package turnserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pion/randutil"
	"github.com/pion/transport/v4/stdnet"
	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/time/rate"

	"github.com/parley/parley/internal/pionlog"
)

// Config is the relay's setup. Secret, RelayIP and at least one socket are
// required.
type Config struct {
	// Secret is the shared secret credentials are signed with.
	Secret string
	// Realm is the TURN realm (default "parley").
	Realm string
	// UDP, TCP and TLS are the sockets to serve TURN on; nil = off. TLS
	// is a listener that already speaks TLS (turns:).
	UDP net.PacketConn
	TCP net.Listener
	TLS net.Listener
	// RelayIP is the address relayed media appears from and clients send
	// to: the server's public address.
	RelayIP net.IP
	// RelayBind is the local address relay sockets bind to (default: all).
	RelayBind string
	// MinPort and MaxPort bound relay ports (default 49152–65535).
	MinPort, MaxPort uint16
	// AllowPrivate lets peers on private, loopback and link-local
	// addresses be relayed to (a LAN-only deployment, tests).
	AllowPrivate bool
	// MaxAllocationsPerUser (default 10, and never more than a quarter
	// of MaxAllocations) and UserBitsPerSecond (default 20 Mbit/s, both
	// directions together) limit each user.
	MaxAllocationsPerUser int
	UserBitsPerSecond     int
	// MaxAllocations bounds the relay ports held at once by everyone
	// (default and at most: every port of MinPort–MaxPort).
	MaxAllocations int
	// AllocationLifetime is how long an allocation lasts unless its client
	// refreshes it (default 3 minutes; clients refresh well before). It is
	// what an abandoned allocation holds its port for. A client may still
	// ask for a longer one, up to an hour (pion/turn's limit).
	AllocationLifetime time.Duration
	// CredentialTTL is how long handed-out credentials last (default 24h).
	CredentialTTL time.Duration
	// Allowed, if set, is asked on every authenticated request whether
	// user (the id in the credential's username) may still use the relay;
	// false refuses the request as bad credentials would. Parley refuses
	// users who are no longer a member of any channel, so their
	// credentials stop working before they expire. It must be quick.
	Allowed func(user string) bool
}

// DefaultAllocationLifetime is Config.AllocationLifetime's default.
const DefaultAllocationLifetime = 3 * time.Minute

// Server is the running relay.
type Server struct {
	cfg  Config
	log  *slog.Logger
	turn *turn.Server
	m    *metrics

	poolSize int // ports in MinPort–MaxPort
	userCap  int // MaxAllocationsPerUser as enforced

	mu       sync.Mutex
	ports    map[string]int           // relay sockets open, per user
	inUse    int                      // relay sockets open, all users
	limiters map[string]*rate.Limiter // per user, shared by their allocations
}

// New starts serving on the sockets in cfg. reg may be nil.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if cfg.Secret == "" {
		return nil, errors.New("turnserver: no shared secret")
	}
	if cfg.RelayIP == nil {
		return nil, errors.New("turnserver: no relay IP (the server's public address)")
	}
	if cfg.UDP == nil && cfg.TCP == nil && cfg.TLS == nil {
		return nil, errors.New("turnserver: no socket to serve on")
	}
	if cfg.Realm == "" {
		cfg.Realm = "parley"
	}
	if cfg.MinPort == 0 {
		cfg.MinPort = 49152
	}
	if cfg.MaxPort == 0 {
		cfg.MaxPort = 65535
	}
	if cfg.MinPort > cfg.MaxPort {
		return nil, fmt.Errorf("turnserver: relay port range %d-%d is empty", cfg.MinPort, cfg.MaxPort)
	}
	if cfg.RelayBind == "" {
		cfg.RelayBind = "0.0.0.0"
		if cfg.RelayIP.To4() == nil {
			cfg.RelayBind = "::"
		}
	}
	if cfg.MaxAllocationsPerUser <= 0 {
		cfg.MaxAllocationsPerUser = 10
	}
	if cfg.UserBitsPerSecond <= 0 {
		cfg.UserBitsPerSecond = 20_000_000
	}
	if cfg.CredentialTTL <= 0 {
		cfg.CredentialTTL = 24 * time.Hour
	}
	if cfg.AllocationLifetime <= 0 {
		cfg.AllocationLifetime = DefaultAllocationLifetime
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pool := int(cfg.MaxPort) - int(cfg.MinPort) + 1
	if cfg.MaxAllocations <= 0 || cfg.MaxAllocations > pool {
		cfg.MaxAllocations = pool
	}
	// One user may take at most a quarter of what everyone may hold, so
	// a few users (or one with a stolen credential) cannot exhaust a
	// small port range.
	userCap := min(cfg.MaxAllocationsPerUser, max(1, cfg.MaxAllocations/4))
	if userCap < cfg.MaxAllocationsPerUser {
		log.Warn("turn: per-user allocation cap lowered to a quarter of the relay ports", "cap", userCap,
			"asked", cfg.MaxAllocationsPerUser, "relay_ports", cfg.MaxAllocations)
	}
	s := &Server{cfg: cfg, log: log, m: newMetrics(), poolSize: pool, userCap: userCap,
		ports: map[string]int{}, limiters: map[string]*rate.Limiter{}}
	if reg != nil {
		if err := s.m.register(reg, s); err != nil {
			return nil, err
		}
	}
	nw, err := stdnet.NewNet()
	if err != nil {
		return nil, fmt.Errorf("turnserver: %w", err)
	}
	gen := &relayGen{s: s, RelayAddressGeneratorPortRange: turn.RelayAddressGeneratorPortRange{
		RelayAddress: cfg.RelayIP, Address: cfg.RelayBind, MinPort: cfg.MinPort, MaxPort: cfg.MaxPort,
		MaxRetries: 20, Rand: randutil.NewMathRandomGenerator(), Net: nw,
	}}
	logs := pionlog.Factory{Log: log, Down: pionlog.Step}
	sc := turn.ServerConfig{
		Realm:         cfg.Realm,
		LoggerFactory: logs,
		AuthHandler:   s.auth(turn.LongTermTURNRESTAuthHandler(cfg.Secret, logs.NewLogger("turn-auth"))),
		QuotaHandler:  s.quota,
		// Permissions and channel bindings keep pion's defaults; they
		// hold no port.
		AllocationLifetime: cfg.AllocationLifetime,
		EventHandler: turn.EventHandler{
			// A known username with the wrong password fails here; s.auth
			// sees malformed and expired usernames.
			OnAuth: func(src, _ net.Addr, _, username, _, _ string, ok bool) {
				if !ok {
					s.refuseAuth(src, username)
				}
			},
			OnAllocationCreated: func(_, _ net.Addr, _, _, _ string, _ net.Addr, _ int) { s.allocated(1) },
			OnAllocationDeleted: func(_, _ net.Addr, _, _, _ string) { s.allocated(-1) },
		},
	}
	if cfg.UDP != nil {
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{
			PacketConn: cfg.UDP, RelayAddressGenerator: gen, PermissionHandler: s.permit})
	}
	for _, ln := range []net.Listener{cfg.TCP, cfg.TLS} {
		if ln != nil {
			sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{
				Listener: ln, RelayAddressGenerator: gen, PermissionHandler: s.permit})
		}
	}
	if s.turn, err = turn.NewServer(sc); err != nil {
		return nil, fmt.Errorf("turnserver: %w", err)
	}
	log.Info("turn relay listening", "udp", addrOf(cfg.UDP), "tcp", addrOf(cfg.TCP), "tls", addrOf(cfg.TLS),
		"relay_ip", cfg.RelayIP, "ports", fmt.Sprintf("%d-%d", cfg.MinPort, cfg.MaxPort), "allow_private", cfg.AllowPrivate,
		"max_allocations", cfg.MaxAllocations, "per_user", userCap, "allocation_lifetime", cfg.AllocationLifetime)
	return s, nil
}

func addrOf(x any) string {
	switch v := x.(type) {
	case net.PacketConn:
		if v != nil {
			return v.LocalAddr().String()
		}
	case net.Listener:
		if v != nil {
			return v.Addr().String()
		}
	}
	return "off"
}

// TLSListener wraps ln for turns: with the HTTPS certificate.
func TLSListener(ln net.Listener, tc *tls.Config) net.Listener { return tls.NewListener(ln, tc) }

// Credentials returns a username and password for user, valid for the
// configured TTL, and when they expire.
func (s *Server) Credentials(user string) (username, password string, expires time.Time) {
	return Credentials(s.cfg.Secret, user, s.cfg.CredentialTTL)
}

// Credentials makes TURN REST credentials for user with secret, valid
// for ttl: for Parley's relay or an external coturn (use-auth-secret).
func Credentials(secret, user string, ttl time.Duration) (username, password string, expires time.Time) {
	// The username carries the user id after a colon; keep colons out of it.
	user = strings.ReplaceAll(user, ":", "_")
	expires = time.Now().Add(ttl).Truncate(time.Second)
	username, password, _ = turn.GenerateLongTermTURNRESTCredentials(secret, user, ttl) // HMAC-SHA1 cannot fail
	return username, password, expires
}

// Close stops the relay and its allocations.
func (s *Server) Close() error {
	if err := s.turn.Close(); err != nil {
		return fmt.Errorf("turnserver: %w", err)
	}
	return nil
}

// auth counts usernames the REST scheme refuses (malformed, expired),
// and refuses users Config.Allowed no longer lets in.
func (s *Server) auth(h turn.AuthHandler) turn.AuthHandler {
	return func(ra *turn.RequestAttributes) (string, []byte, bool) {
		user, key, ok := h(ra)
		if !ok {
			s.refuseAuth(ra.SrcAddr, ra.Username)
			return user, key, ok
		}
		if s.cfg.Allowed != nil && !s.cfg.Allowed(user) {
			s.m.refused.WithLabelValues("not_allowed").Inc()
			s.log.Info("turn: user may no longer use the relay", "from", ra.SrcAddr, "user_id", user)
			return "", nil, false
		}
		return user, key, ok
	}
}

func (s *Server) refuseAuth(from net.Addr, username string) {
	s.m.refused.WithLabelValues("auth").Inc()
	s.log.Info("turn: credentials refused", "from", from, "username", username)
}

func userOf(username string) string {
	if _, u, ok := strings.Cut(username, ":"); ok {
		return u
	}
	return username
}

// quota answers an Allocate from a user at their cap with 486
// (Allocation Quota Reached). The relay generator reserves the port
// atomically (reserve); this check only gives the clearer answer.
func (s *Server) quota(username, _ string, src net.Addr) bool {
	user := userOf(username)
	s.mu.Lock()
	n := s.ports[user]
	s.mu.Unlock()
	if n >= s.userCap {
		s.m.refused.WithLabelValues("quota").Inc()
		s.log.Warn("turn: allocation quota reached", "user_id", user, "from", src, "allocations", n)
		return false
	}
	return true
}

// Errors of reserve; pion answers them 508 (Insufficient Capacity).
var (
	errUserCap  = errors.New("turnserver: the user holds as many relay ports as allowed")
	errPoolFull = errors.New("turnserver: every relay port is taken")
)

// reserve counts one more relay port held by user, unless the user is at
// their cap or the pool is full; release gives it back (once).
func (s *Server) reserve(user string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.ports[user] >= s.userCap:
		s.m.refused.WithLabelValues("quota").Inc()
		return nil, errUserCap
	case s.inUse >= s.cfg.MaxAllocations:
		s.m.refused.WithLabelValues("capacity").Inc()
		s.log.Warn("turn: every relay port is taken", "user_id", user, "in_use", s.inUse)
		return nil, errPoolFull
	}
	s.ports[user]++
	s.inUse++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.inUse--
			if s.ports[user]--; s.ports[user] <= 0 {
				delete(s.ports, user)
				delete(s.limiters, user)
			}
		})
	}, nil
}

// PortsInUse reports the relay ports held now, and the pool's size.
func (s *Server) PortsInUse() (inUse, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inUse, s.poolSize
}

func (s *Server) allocated(delta int) {
	s.m.allocations.Add(float64(delta))
	if delta > 0 {
		s.m.allocationsTotal.Inc()
	}
}

// permit refuses peers the relay must not reach (see the package doc).
func (s *Server) permit(client net.Addr, peer net.IP) bool {
	if s.cfg.AllowPrivate {
		return true
	}
	if why := forbidden(peer); why != "" {
		s.m.refused.WithLabelValues(why).Inc()
		s.log.Warn("turn: peer address refused", "client", client, "peer", peer, "reason", why)
		return false
	}
	return true
}

var sharedNet = &net.IPNet{IP: net.IPv4(100, 64, 0, 0), Mask: net.CIDRMask(10, 32)}

// forbidden names why peer may not be relayed to, "" if it may.
func forbidden(peer net.IP) string {
	switch {
	case peer == nil, peer.IsUnspecified():
		return "unspecified"
	case peer.IsLoopback():
		return "loopback"
	case peer.IsPrivate(): // includes fd00:ec2::254, a cloud metadata address
		return "private"
	case peer.IsLinkLocalUnicast(): // includes 169.254.169.254, the cloud metadata address
		return "link_local"
	case peer.IsMulticast(), peer.IsLinkLocalMulticast(), peer.IsInterfaceLocalMulticast():
		return "multicast"
	case peer.To4() != nil && sharedNet.Contains(peer):
		return "shared"
	case peer.To4() != nil && peer.To4()[0] == 0:
		return "unspecified"
	}
	return ""
}

// limiter is user's relayed-bandwidth budget.
func (s *Server) limiter(user string) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.limiters[user]
	if l == nil {
		bytesPerSec := s.cfg.UserBitsPerSecond / 8
		l = rate.NewLimiter(rate.Limit(bytesPerSec), max(bytesPerSec/2, 64<<10)) // half a second of burst
		s.limiters[user] = l
	}
	return l
}

// relayGen makes relay sockets that charge their user's bandwidth budget.
type relayGen struct {
	turn.RelayAddressGeneratorPortRange
	s *Server
}

func (g *relayGen) AllocatePacketConn(c turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	release, err := g.s.reserve(c.UserID)
	if err != nil {
		return nil, nil, err
	}
	conn, addr, err := g.RelayAddressGeneratorPortRange.AllocatePacketConn(c)
	if err != nil {
		release()
		return nil, nil, err
	}
	return &limitedConn{PacketConn: conn, lim: g.s.limiter(c.UserID), m: g.s.m, release: release}, addr, nil
}

// AllocateListener makes the relay of a TCP allocation (RFC 6062); it
// holds a port too.
func (g *relayGen) AllocateListener(c turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	release, err := g.s.reserve(c.UserID)
	if err != nil {
		return nil, nil, err
	}
	ln, addr, err := g.RelayAddressGeneratorPortRange.AllocateListener(c)
	if err != nil {
		release()
		return nil, nil, err
	}
	return &countedListener{Listener: ln, release: release}, addr, nil
}

// countedListener gives its port back to the pool when closed.
type countedListener struct {
	net.Listener
	release func()
}

func (l *countedListener) Close() error {
	l.release()
	return l.Listener.Close()
}

// limitedConn drops relayed packets beyond the user's budget, both ways,
// and gives its port back to the pool when closed.
type limitedConn struct {
	net.PacketConn
	lim     *rate.Limiter
	m       *metrics
	release func()
}

func (c *limitedConn) Close() error {
	c.release()
	return c.PacketConn.Close()
}

func (c *limitedConn) allow(n int) bool {
	if c.lim.AllowN(time.Now(), n) {
		c.m.relayedBytes.Add(float64(n))
		return true
	}
	c.m.refused.WithLabelValues("bandwidth").Inc()
	return false
}

func (c *limitedConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.allow(len(p)) {
		return len(p), nil // over budget: lost, as on a full link
	}
	return c.PacketConn.WriteTo(p, addr)
}

func (c *limitedConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.allow(n) {
			return n, addr, err
		}
	}
}

type metrics struct {
	allocations      prometheus.Gauge
	allocationsTotal prometheus.Counter
	refused          *prometheus.CounterVec
	relayedBytes     prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		allocations: prometheus.NewGauge(prometheus.GaugeOpts{Name: "parley_turn_allocations",
			Help: "TURN allocations open now."}),
		allocationsTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_turn_allocations_total",
			Help: "TURN allocations made."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_turn_refused_total",
			Help: "TURN requests and packets refused, by reason (auth, not_allowed, quota, capacity, bandwidth, or the kind of peer address)."}, []string{"reason"}),
		relayedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_turn_relayed_bytes_total",
			Help: "Bytes relayed between clients and peers (UDP relays)."}),
	}
}

func (m *metrics) register(reg prometheus.Registerer, s *Server) error {
	inUse := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_turn_relay_ports_in_use",
		Help: "Relay ports held by TURN allocations now."}, func() float64 { n, _ := s.PortsInUse(); return float64(n) })
	total := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_turn_relay_ports",
		Help: "Relay ports in the configured range (--turn-relay-ports)."}, func() float64 { return float64(s.poolSize) })
	for _, c := range []prometheus.Collector{m.allocations, m.allocationsTotal, m.refused, m.relayedBytes, inUse, total} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("turnserver: metrics: %w", err)
		}
	}
	return nil
}

// Refused returns how many refusals were counted for reason (tests).
func (s *Server) Refused(reason string) float64 {
	c, err := s.m.refused.GetMetricWithLabelValues(reason)
	if err != nil {
		return 0
	}
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
