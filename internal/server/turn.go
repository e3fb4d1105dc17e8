package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/turnserver"
)

// turnSecretFile keeps the embedded relay's secret across restarts.
const turnSecretFile = "turn-secret"

// turnSecret is --turn-secret, or the secret kept in the data directory
// (made on first start).
func (s *Server) turnSecret() (string, error) {
	if s.cfg.TURNSecret != "" {
		return s.cfg.TURNSecret, nil
	}
	path := filepath.Join(s.cfg.DataDir, turnSecretFile)
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the TURN secret: %w", err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	hexed := hex.EncodeToString(secret)
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("keep the TURN secret: %w", err)
	}
	if err := os.WriteFile(path, []byte(hexed+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep the TURN secret: %w", err)
	}
	s.log.Info("made a TURN secret", "file", path)
	return hexed, nil
}

// derivedKey is a key for one purpose made from the server's secret, so
// that no two uses share a key.
func derivedKey(secret, purpose string) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(purpose))
	return mac.Sum(nil)
}

// startTURN opens the embedded relay's sockets and starts it. The turns:
// listener uses the HTTPS certificate, so it comes after the TLS setup.
func (s *Server) startTURN(reg prometheus.Registerer) error {
	cfg := s.cfg
	secret, err := s.turnSecret()
	if err != nil {
		return err
	}
	s.turnSecretValue = secret
	if cfg.TURN != "embedded" {
		return nil
	}
	udp, err := net.ListenPacket("udp", cfg.TURNAddr)
	if err != nil {
		return fmt.Errorf("TURN on udp %s: %w (--turn-addr; --turn off to go without)", cfg.TURNAddr, err)
	}
	// TCP on the same port as UDP, as clients expect.
	tcpAddr := net.JoinHostPort(hostOf(cfg.TURNAddr), strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port))
	tcp, err := net.Listen("tcp", tcpAddr)
	if err != nil {
		udp.Close()
		return fmt.Errorf("TURN on tcp %s: %w", tcpAddr, err)
	}
	tc := turnserver.Config{
		Secret: secret, UDP: udp, TCP: tcp, AllowPrivate: cfg.TURNAllowPrivate,
		RelayIP: s.relayIP(), CredentialTTL: cfg.TURNCredentialTTL,
		Allowed: s.hasChannel,
	}
	if h := hostOf(cfg.TURNAddr); h != "" {
		tc.RelayBind = h
	}
	tc.MinPort, tc.MaxPort = cfg.RelayPorts()
	if cfg.TURNTLSAddr != "" {
		ln, err := net.Listen("tcp", cfg.TURNTLSAddr)
		if err != nil {
			udp.Close()
			tcp.Close()
			return fmt.Errorf("TURN over TLS on %s: %w", cfg.TURNTLSAddr, err)
		}
		tc.TLS = turnserver.TLSListener(ln, s.tls)
	}
	if s.turn, err = turnserver.New(tc, s.log.With("part", "turn"), reg); err != nil {
		udp.Close()
		tcp.Close()
		if tc.TLS != nil {
			tc.TLS.Close()
		}
		return err
	}
	s.turnPorts = turnPorts{udp: udp.LocalAddr().(*net.UDPAddr).Port}
	if tc.TLS != nil {
		s.turnPorts.tls = tc.TLS.Addr().(*net.TCPAddr).Port
	}
	return nil
}

type turnPorts struct{ udp, tls int }

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}

// relayIP is where relayed media comes from: --turn-public-ip, the listen
// address if it is specific, the SFU's first --public-ip, else this host's
// first global unicast address.
func (s *Server) relayIP() net.IP {
	cfg := s.cfg
	if ip := net.ParseIP(cfg.TURNPublicIP); ip != nil {
		return ip
	}
	if ip := net.ParseIP(hostOf(cfg.TURNAddr)); ip != nil && !ip.IsUnspecified() {
		return ip
	}
	if len(cfg.PublicIPs) > 0 {
		if ip := net.ParseIP(cfg.PublicIPs[0]); ip != nil {
			return ip
		}
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.IsGlobalUnicast() && n.IP.To4() != nil {
			return n.IP
		}
	}
	return net.IPv4(127, 0, 0, 1)
}

// iceServers are what a participant gets in hello: the --ice-server URLs,
// and the TURN relay (embedded or external) with credentials of its own.
func (s *Server) iceServers(userID, host string) []signaling.IceServer {
	out := []signaling.IceServer{}
	if len(s.cfg.ICEServers) > 0 {
		out = append(out, signaling.IceServer{URLs: s.cfg.ICEServers})
	}
	var urls []string
	switch s.cfg.TURN {
	case "external":
		urls = s.cfg.TURNURLs
	case "embedded":
		if s.turn == nil {
			return out
		}
		if s.cfg.TURNPublicIP != "" {
			host = s.cfg.TURNPublicIP
		}
		if host == "" {
			host = s.relayIP().String()
		}
		h := host
		if strings.Contains(h, ":") {
			h = "[" + h + "]" // an IPv6 address
		}
		p := strconv.Itoa(s.turnPorts.udp)
		urls = []string{"turn:" + h + ":" + p + "?transport=udp", "turn:" + h + ":" + p + "?transport=tcp"}
		if s.turnPorts.tls != 0 {
			urls = append(urls, "turns:"+h+":"+strconv.Itoa(s.turnPorts.tls)+"?transport=tcp")
		}
	default:
		return out
	}
	if !s.memberOf(userID, true) {
		// Removed from every channel (a socket the removal did not reach):
		// no fresh credentials, so the last ones lapse with their TTL.
		return out
	}
	username, password, _ := turnserver.Credentials(s.turnSecretValue, userID, s.cfg.TURNCredentialTTL)
	return append(out, signaling.IceServer{URLs: urls, Username: username, Credential: password})
}

// Member answers are cached because the relay asks on every
// authenticated request from pion's read loop, which also carries the
// relayed media: it must rarely wait for the database. A removal anywhere
// on this server (account.MembershipVersion) empties the cache.
const (
	memberTTL    = 30 * time.Second // "is a member" answers
	nonMemberTTL = 5 * time.Second  // "is not": a user re-added waits at most this
	memberCap    = 4096             // entries; beyond, the cache starts afresh
)

type memberAnswer struct {
	ok bool
	at time.Time
}

// memberCache is hasChannel's memory; its own lock.
type memberCache struct {
	mu      sync.Mutex
	version uint64
	m       map[string]memberAnswer
}

// hasChannel reports whether userID is still a member of a channel: only
// members get TURN credentials, and the embedded relay serves only them
// (turnserver.Config.Allowed), so a user removed from every channel loses
// the relay at their next TURN request, not when their credentials
// expire. A database error answers yes (logged, and remembered like an
// answer, so a failing database is not asked on every packet): it must
// not cut calls that are running.
func (s *Server) hasChannel(userID string) bool { return s.memberOf(userID, false) }

// memberOf is hasChannel; fresh skips a remembered "no" (hello and its
// refreshes: a re-added user must not wait for their next refresh).
func (s *Server) memberOf(userID string, fresh bool) bool {
	now := time.Now()
	v := s.accounts.MembershipVersion()
	c := &s.members
	c.mu.Lock()
	if c.m == nil || c.version != v || len(c.m) >= memberCap {
		c.m, c.version = map[string]memberAnswer{}, v
	}
	a, ok := c.m[userID]
	c.mu.Unlock()
	if ok && (a.ok && now.Sub(a.at) < memberTTL || !a.ok && !fresh && now.Sub(a.at) < nonMemberTTL) {
		return a.ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cs, err := s.accounts.Channels(ctx, store.User{ID: userID})
	member := err != nil || len(cs) > 0
	if err != nil {
		s.log.Warn("turn: could not check the user's channels; allowing", "user_id", userID, "err", err)
	}
	c.mu.Lock()
	if c.version == v && s.accounts.MembershipVersion() == v { // no removal raced the query
		c.m[userID] = memberAnswer{ok: member, at: now}
	}
	c.mu.Unlock()
	return member
}

// iceRefresh is how often participants get fresh TURN credentials: at
// half their lifetime, so no connection ever holds expired ones.
func iceRefresh(cfg config.Config) time.Duration {
	if cfg.TURN == "off" {
		return 0
	}
	return cfg.TURNCredentialTTL / 2
}
