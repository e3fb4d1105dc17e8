// Package connlimit caps how many connections one client address may hold
// open on a listener, so that a single address cannot tie up the server
// with thousands of slow or idle connections.
//
// Wrap the TCP listener (below TLS) with New. Connections over the cap are
// closed as soon as they are accepted. A connection whose place should be
// freed early, such as an HTTP connection hijacked for a WebSocket (which
// has its own per-account limit), is handed to Release.
package connlimit

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Listener is a net.Listener that refuses connections from an address
// that already holds Max of them.
type Listener struct {
	net.Listener
	max    int
	exempt func(netip.Addr) bool
	log    *slog.Logger

	refused prometheus.Counter

	mu       sync.Mutex
	perAddr  map[netip.Addr]int
	lastWarn time.Time
}

// New wraps ln. max <= 0 means no cap. exempt (may be nil) names
// addresses not counted at all: trusted reverse proxies, which carry many
// clients' connections. refused counts the connections closed over the
// cap; it is the caller's, so that one metric survives several listeners
// (a restart, or HTTP and HTTPS).
func New(ln net.Listener, max int, exempt func(netip.Addr) bool, refused prometheus.Counter, log *slog.Logger) *Listener {
	return &Listener{
		Listener: ln,
		max:      max,
		exempt:   exempt,
		log:      log,
		perAddr:  map[netip.Addr]int{},
		refused:  refused,
	}
}

// Accept returns the next connection within the cap, closing those over it.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.max <= 0 {
			return c, nil
		}
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil {
			return c, nil // not TCP/IP (a test pipe): nothing to count by
		}
		a := ap.Addr().Unmap()
		if l.exempt != nil && l.exempt(a) {
			return c, nil
		}
		if !l.take(a) {
			l.refused.Inc()
			c.Close()
			continue
		}
		return &conn{Conn: c, l: l, addr: a}, nil
	}
}

// take counts a connection from a, or reports false if a is at the cap.
func (l *Listener) take(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perAddr[a] >= l.max {
		// One line now and then, not one per refused connection: a flood
		// must not flood the log too.
		if now := time.Now(); now.Sub(l.lastWarn) > 10*time.Second {
			l.lastWarn = now
			l.log.Warn("connection refused: this address holds too many connections already", "addr", a, "max", l.max)
		}
		return false
	}
	l.perAddr[a]++
	return true
}

func (l *Listener) give(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perAddr[a] <= 1 {
		delete(l.perAddr, a)
	} else {
		l.perAddr[a]--
	}
}

// Count reports how many connections a holds now; for tests and metrics.
func (l *Listener) Count(a netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.perAddr[a]
}

// conn gives its place back once, on Close or Release.
type conn struct {
	net.Conn
	l    *Listener
	addr netip.Addr
	once sync.Once
}

func (c *conn) release() { c.once.Do(func() { c.l.give(c.addr) }) }

func (c *conn) Close() error {
	c.release()
	return c.Conn.Close()
}

type connKey struct{}

// ContextWithConn records c in ctx; give it to http.Server.ConnContext so
// that handlers can ReleaseContext.
func ContextWithConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// ReleaseContext frees the place of the connection a request arrived on
// (see ContextWithConn): a handler calls it once the client has proved
// who it is and the connection is about to become a long-lived socket
// bounded some other way. Hijacking alone is too late: the client sees
// the upgrade before the server's state hook runs.
func ReleaseContext(ctx context.Context) {
	if c, ok := ctx.Value(connKey{}).(net.Conn); ok {
		Release(c)
	}
}

// Release frees the place of c, a connection from a Listener (possibly
// inside a *tls.Conn), without closing it. Anything else is ignored.
func Release(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*conn); ok {
		lc.release()
	}
}
