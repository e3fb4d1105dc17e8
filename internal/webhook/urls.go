package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// MaxURLLength bounds a webhook's URL.
const MaxURLLength = 2000

// ErrPrivateAddress: the URL leads to a loopback, private, link-local or
// otherwise internal address, which webhooks may not reach unless the
// operator allowed it (--webhook-allow-private).
var ErrPrivateAddress = errors.New("webhook: private or loopback address")

// blocked are address ranges besides those netip classifies (loopback,
// private, link-local, multicast, unspecified) that a webhook must not
// reach: carrier-grade NAT, IETF protocol assignments, benchmarking,
// reserved, IPv4/IPv6 translation, discard-only and documentation.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
}

// PrivateAddr reports whether a is an address webhooks may not reach by
// default.
func PrivateAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range blocked {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseURL checks a webhook URL typed by a user: absolute http or https,
// a host, no user name or password (the signature authenticates Parley),
// no fragment, at most MaxURLLength bytes. A literal address, or the name
// localhost, that is private is refused unless allowPrivate; names are
// checked again, after resolving, at every connection.
func ParseURL(raw string, allowPrivate bool) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("the URL is required")
	}
	if len(raw) > MaxURLLength {
		return nil, fmt.Errorf("the URL is longer than %d characters", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("this is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("the URL must start with https:// (or http://)")
	}
	if u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return nil, errors.New("the URL needs a host name, as in https://example.org/hooks/parley")
	}
	if u.User != nil {
		return nil, errors.New("the URL must not hold a user name or password: check the Parley-Signature header instead")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, errors.New("the URL must not have a #fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := netip.ParseAddrPort("127.0.0.1:" + p); err != nil || n.Port() == 0 {
			return nil, errors.New("the URL's port is not valid")
		}
	}
	if !allowPrivate {
		host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			return nil, fmt.Errorf("%w: webhooks may not call this server's own machine", ErrPrivateAddress)
		}
		if a, err := netip.ParseAddr(host); err == nil && PrivateAddr(a) {
			return nil, fmt.Errorf("%w: %s is not on the public internet", ErrPrivateAddress, a)
		}
	}
	return u, nil
}

// guardedDialer connects only to public addresses (unless allowPrivate).
// The check runs on the address actually dialled, after DNS, so a name
// that resolves (or is rebound) to an internal address is refused too.
func guardedDialer(allowPrivate bool, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot check %q", ErrPrivateAddress, address)
			}
			if PrivateAddr(ap.Addr()) {
				return fmt.Errorf("%w: %s", ErrPrivateAddress, ap.Addr())
			}
			return nil
		}
	}
	return d.DialContext
}
