package clientip

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func mustProxies(t testing.TB, list ...string) Proxies {
	t.Helper()
	p, err := ParseProxies(list)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClientAddress: headers count only from a trusted peer, and only as
// far as trusted hops reach; a spoofed X-Forwarded-For from anyone else is
// ignored.
func TestClientAddress(t *testing.T) {
	p := mustProxies(t, "10.0.0.0/8", "192.0.2.1", "::1")
	for _, tc := range []struct {
		name, remote, xff, realIP, want string
	}{
		{"no proxy headers", "203.0.113.5:4000", "", "", "203.0.113.5"},
		{"spoofed XFF from an untrusted peer", "203.0.113.5:4000", "198.51.100.1", "", "203.0.113.5"},
		{"spoofed X-Real-IP from an untrusted peer", "203.0.113.5:4000", "", "198.51.100.1", "203.0.113.5"},
		{"trusted proxy", "10.1.2.3:5000", "198.51.100.7", "", "198.51.100.7"},
		{"trusted proxy, client spoofs a hop", "10.1.2.3:5000", "1.1.1.1, 198.51.100.7", "", "198.51.100.7"},
		{"two trusted proxies", "10.1.2.3:5000", "1.1.1.1, 198.51.100.7, 192.0.2.1", "", "198.51.100.7"},
		{"every hop trusted", "10.1.2.3:5000", "10.9.9.9, 192.0.2.1", "", "10.9.9.9"},
		{"garbage hop ends the walk", "10.1.2.3:5000", "198.51.100.7, bogus, 10.0.0.9", "", "10.0.0.9"},
		{"empty XFF from a trusted proxy", "10.1.2.3:5000", " ", "", "10.1.2.3"},
		{"hop with a port", "10.1.2.3:5000", "198.51.100.7:4711", "", "198.51.100.7"},
		{"IPv6 hop with a port", "10.1.2.3:5000", "[2001:db8::7]:4711", "", "2001:db8::7"},
		{"X-Real-IP from a trusted proxy", "10.1.2.3:5000", "", "198.51.100.8", "198.51.100.8"},
		{"XFF wins over X-Real-IP", "10.1.2.3:5000", "198.51.100.7", "198.51.100.8", "198.51.100.7"},
		{"bad X-Real-IP", "10.1.2.3:5000", "", "nonsense", "10.1.2.3"},
		{"IPv6 loopback proxy", "[::1]:5000", "2001:db8::1", "", "2001:db8::1"},
		{"IPv4-mapped peer", "[::ffff:10.1.2.3]:5000", "198.51.100.7", "", "198.51.100.7"},
		{"IPv4-mapped hop", "10.1.2.3:5000", "::ffff:198.51.100.7", "", "198.51.100.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.xff != "" {
				h.Set("X-Forwarded-For", tc.xff)
			}
			if tc.realIP != "" {
				h.Set("X-Real-IP", tc.realIP)
			}
			if got := p.Client(tc.remote, h).String(); got != tc.want {
				t.Errorf("Client(%q, XFF %q, X-Real-IP %q) = %s, want %s", tc.remote, tc.xff, tc.realIP, got, tc.want)
			}
		})
	}

	// Several X-Forwarded-For headers are one list, in order.
	h := http.Header{"X-Forwarded-For": {"1.1.1.1", "198.51.100.7, 10.0.0.1"}}
	if got := p.Client("10.1.2.3:5000", h).String(); got != "198.51.100.7" {
		t.Errorf("split header: %s, want 198.51.100.7", got)
	}
	// Nobody trusted: headers never matter.
	if got := (Proxies{}).Client("10.1.2.3:5000", http.Header{"X-Forwarded-For": {"1.1.1.1"}}).String(); got != "10.1.2.3" {
		t.Errorf("no trusted proxies: %s, want the peer", got)
	}
}

func TestParseProxies(t *testing.T) {
	p := mustProxies(t, " 10.0.0.0/8 ", "", "2001:db8::/32", "192.0.2.1", "::ffff:172.16.0.0/108")
	for addr, want := range map[string]bool{
		"10.200.0.1": true, "11.0.0.1": false, "2001:db8::5": true, "2001:db9::5": false,
		"192.0.2.1": true, "192.0.2.2": false, "172.16.5.5": true, "::ffff:10.0.0.1": true,
	} {
		if got := p.Trusted(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Trusted(%s) = %v, want %v", addr, got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.org", "10.0.0.1-10.0.0.9"} {
		_, err := ParseProxies([]string{bad})
		if err == nil || !strings.Contains(err.Error(), "CIDR") {
			t.Errorf("ParseProxies(%q) = %v, want an error that says what to write", bad, err)
		}
	}
}

// FuzzClient: whatever the headers, the result is the peer or one of the
// forwarded hops, a peer that is not trusted is always the answer, and the
// answer is never a hop left of the first untrusted one from the right.
func FuzzClient(f *testing.F) {
	f.Add("10.1.2.3:5000", "1.1.1.1, 198.51.100.7, 10.0.0.1", "")
	f.Add("203.0.113.5:1", "198.51.100.1", "198.51.100.2")
	f.Add("[::1]:5000", "[2001:db8::7]:4711,,", "x")
	f.Add("10.0.0.1:1", "", "198.51.100.8")
	p := mustProxies(f, "10.0.0.0/8", "::1")
	f.Fuzz(func(t *testing.T, remote, xff, realIP string) {
		h := http.Header{"X-Forwarded-For": {xff}, "X-Real-IP": {realIP}}
		got := p.Client(remote, h)
		peer := PeerAddr(remote)
		if !p.Trusted(peer) {
			if got != peer {
				t.Fatalf("untrusted peer %v: got %v", peer, got)
			}
			return
		}
		if got == peer {
			return
		}
		if got == parseHop(realIP) {
			return
		}
		hops := strings.Split(xff, ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a := parseHop(hops[i])
			if a == got {
				return
			}
			if !a.IsValid() || !p.Trusted(a) {
				t.Fatalf("XFF %q from %v: got %v, beyond the first untrusted hop", xff, peer, got)
			}
		}
		t.Fatalf("XFF %q from %v: got %v, which is neither the peer nor a hop", xff, peer, got)
	})
}
