// Package clientip finds the address of the client behind a request: the
// TCP peer, or, when that peer is a reverse proxy the operator trusts, the
// address the proxy says it forwarded for.
//
// Headers are believed only from trusted peers, and only as far as trusted
// hops reach: X-Forwarded-For is read from the right (the hop our proxy
// appended) leftwards, skipping trusted proxies, and the first address that
// is not a trusted proxy is the client. Anything further left was written
// by that client and may be forged.
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies is a set of trusted reverse-proxy addresses. The zero value
// trusts nobody: every request's client is its TCP peer.
type Proxies struct {
	prefixes []netip.Prefix
}

// ParseProxies reads CIDR prefixes (10.0.0.0/8, fd00::/8) or single
// addresses (192.0.2.1, ::1), as given to --trusted-proxies.
func ParseProxies(list []string) (Proxies, error) {
	var p Proxies
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if pre, err := netip.ParsePrefix(s); err == nil {
			p.prefixes = append(p.prefixes, normalizePrefix(pre))
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return Proxies{}, fmt.Errorf("trusted proxy %q is neither an address nor a CIDR prefix (like 10.0.0.0/8 or 192.0.2.1)", s)
		}
		a = a.Unmap()
		p.prefixes = append(p.prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

// normalizePrefix makes ::ffff:10.0.0.0/104 match the IPv4 addresses it
// means, since addresses are unmapped before they are compared.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// Empty reports whether no proxy is trusted.
func (p Proxies) Empty() bool { return len(p.prefixes) == 0 }

// Trusted reports whether a is a trusted proxy.
func (p Proxies) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, pre := range p.prefixes {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// PeerAddr parses a RemoteAddr ("192.0.2.1:5678", "[::1]:80"), or a bare
// address; the zero Addr if it is neither.
func PeerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	if host, _, err := net.SplitHostPort(remote); err == nil {
		remote = host
	}
	a, err := netip.ParseAddr(strings.Trim(remote, "[]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}

// FromRequest returns the client address of r as a string ("" if r's
// RemoteAddr cannot be read, which a real server never gives).
func (p Proxies) FromRequest(r *http.Request) string {
	a := p.Client(r.RemoteAddr, r.Header)
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Client returns the client address of a request from remote (its
// RemoteAddr) with headers h.
//
// Unless remote is a trusted proxy the headers are ignored. From a trusted
// proxy, the rightmost X-Forwarded-For hop that is not itself a trusted
// proxy is the client; if every hop is trusted, the leftmost one is. An
// unreadable hop ends the walk at the last good one, so garbage cannot
// stand in for an address. Without X-Forwarded-For, X-Real-IP is used.
func (p Proxies) Client(remote string, h http.Header) netip.Addr {
	peer := PeerAddr(remote)
	if !peer.IsValid() || !p.Trusted(peer) {
		return peer
	}
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		// Several headers are one list, in order (RFC 9110 §5.3).
		hops := strings.Split(strings.Join(xff, ","), ",")
		client := peer
		for i := len(hops) - 1; i >= 0; i-- {
			a := parseHop(hops[i])
			if !a.IsValid() {
				break
			}
			client = a
			if !p.Trusted(a) {
				break
			}
		}
		return client
	}
	if a := parseHop(h.Get("X-Real-IP")); a.IsValid() {
		return a
	}
	return peer
}

// parseHop reads one X-Forwarded-For entry: an address, possibly with a
// port ("192.0.2.1:4711", "[2001:db8::1]:4711") as some proxies write.
func parseHop(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil && a.Zone() == "" {
		return a.Unmap()
	}
	return netip.Addr{}
}
