package connlimit

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCapReleaseAndExempt: the connection over the cap is closed at once;
// Close, Release (also through a *tls.Conn) and ReleaseContext free a
// place once; exempt addresses are never counted.
func TestCapReleaseAndExempt(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := prometheus.NewCounter(prometheus.CounterOpts{Name: "refused"})
	exempt := netip.MustParseAddr("127.0.0.3")
	l := New(raw, 2, func(a netip.Addr) bool { return a == exempt }, refused, slog.New(slog.DiscardHandler))
	defer l.Close()
	lo := netip.MustParseAddr("127.0.0.1")

	dial := func(local string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial("127.0.0.1")
	a := <-accepted
	dial("127.0.0.1")
	b := <-accepted
	if n := l.Count(lo); n != 2 {
		t.Fatalf("count %d, want 2", n)
	}
	over := dial("127.0.0.1")
	over.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("connection over the cap: read %v, want EOF (closed by the server)", err)
	}
	// Exempt addresses pass and are not counted.
	dial("127.0.0.3")
	<-accepted
	if n := l.Count(exempt); n != 0 {
		t.Errorf("exempt address counted: %d", n)
	}

	Release(tls.Server(a, &tls.Config{})) // as the HTTP server hijacking a TLS connection
	Release(a)                            // twice is once
	if n := l.Count(lo); n != 1 {
		t.Errorf("after Release: count %d, want 1", n)
	}
	a.Close()
	if n := l.Count(lo); n != 1 {
		t.Errorf("Close after Release freed a second place: count %d, want 1", n)
	}
	ReleaseContext(ContextWithConn(context.Background(), b))
	if n := l.Count(lo); n != 0 {
		t.Errorf("after ReleaseContext: count %d, want 0", n)
	}
	ReleaseContext(context.Background()) // no connection: nothing happens
}
