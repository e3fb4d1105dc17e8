// Package config holds the settings of a Parley server, their defaults and
// their validation. Flags and environment variables are mapped onto it in
// cmd/parley only.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parley/parley/internal/clientip"
	"github.com/parley/parley/internal/mail"
)

// Config is everything `parley serve` can be told.
type Config struct {
	// Addr is the HTTP(S) listen address.
	Addr string
	// DataDir holds the SQLite database and the self-signed certificate.
	DataDir string
	// DatabaseURL selects PostgreSQL (postgres://...); empty means SQLite in DataDir.
	DatabaseURL string
	// TLS is "" (plain HTTP), "files" (TLSCert/TLSKey) or "self-signed".
	TLS     string
	TLSCert string
	TLSKey  string
	// LogFormat is "text" or "json"; LogLevel is debug, info, warn or error.
	LogFormat string
	LogLevel  string
	// ICEServers are STUN/TURN URLs handed to clients (no credentials).
	ICEServers []string
	// SessionTTL is how long a login lasts.
	SessionTTL time.Duration
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// P2PMax is the largest call kept peer-to-peer; larger calls use the SFU.
	P2PMax int
	// RecordingDir holds call recordings; empty: DataDir/recordings.
	RecordingDir string
	// RecordingQuotaMB bounds what all recordings may take, in MiB; a
	// recording that reaches it stops (the call goes on). 0 = no limit.
	RecordingQuotaMB int
	// FFmpeg is the ffmpeg program for composites; empty: "ffmpeg" on
	// PATH. Without one, composites are not offered.
	FFmpeg string
	// RTCUDPPort is the one UDP port of all SFU media (ICE UDP mux); 0
	// picks a free port (tests).
	RTCUDPPort int
	// RTCTCPPort is the ICE-over-TCP fallback port; 0 picks a free port,
	// -1 disables it.
	RTCTCPPort int
	// RTCListenIP binds the media ports to one address ("" = all).
	RTCListenIP string
	// PublicIPs are announced as the SFU's host candidates when the server
	// is behind a 1:1 NAT.
	PublicIPs []string
	// RTCInterfaces limits the network interfaces used for media.
	RTCInterfaces []string
	// RTCLoopbackOnly restricts media to loopback candidates: tests, and
	// load tests whose clients run on the server's machine.
	RTCLoopbackOnly bool
	// PingInterval and PingTimeout drive dead-socket detection: a socket
	// that has not answered a ping for PingTimeout is closed.
	PingInterval time.Duration
	PingTimeout  time.Duration

	// MaxConnectionsPerUser bounds one account's signaling sockets plus
	// WHIP/WHEP sessions (several devices and tabs fit; a flood does not).
	MaxConnectionsPerUser int
	// MaxConnectionsPerIP bounds the HTTP connections one client address
	// holds open, before any login (0 = no cap). Connections upgraded to
	// WebSockets leave this count (MaxConnectionsPerUser bounds them), and
	// trusted proxies are not counted.
	MaxConnectionsPerIP int
	// APIRate is how many /api/v1 requests per second one credential
	// (API key, access token, login session) may make, in bursts of up to
	// APIBurst; beyond that the API answers 429 with Retry-After.
	APIRate  int
	APIBurst int
	// ReadTimeout bounds reading a whole request, headers and body, so a
	// client trickling a body cannot hold a connection for ever. WebSocket
	// connections are exempt once upgraded.
	ReadTimeout time.Duration
	// TrustedProxies are reverse proxies (CIDR prefixes or addresses)
	// whose X-Forwarded-For / X-Real-IP headers name the client; from
	// anyone else those headers are ignored.
	TrustedProxies []string

	// TURN is "embedded" (Parley's own relay), "external" (TURNURLs, a
	// coturn sharing TURNSecret; set by giving TURNURLs) or "off".
	TURN string
	// TURNAddr is where the embedded relay listens, UDP and TCP on the
	// same port.
	TURNAddr string
	// TURNTLSAddr, if set, serves turns: (TURN over TLS) with the HTTPS
	// certificate; it needs TLS.
	TURNTLSAddr string
	// TURNPublicIP is the address clients reach the relay at (and relayed
	// media comes from). Empty: the listen address if it is specific, else
	// the first PublicIPs, else this host's first global address; clients
	// are told the host name they reached the web server at.
	TURNPublicIP string
	// TURNRelayPorts is the relay port range, "MIN-MAX".
	TURNRelayPorts string
	// TURNSecret signs credentials; empty: one made and kept in DataDir
	// (several nodes, or an external coturn, must share one: set it).
	TURNSecret string
	// TURNURLs are an external TURN server's URLs (turn:host:3478...).
	TURNURLs []string
	// TURNAllowPrivate lets the relay reach private and loopback peers
	// (a LAN-only deployment).
	TURNAllowPrivate bool
	// TURNCredentialTTL is how long handed-out credentials last.
	TURNCredentialTTL time.Duration

	// StudioQuota bounds the bytes of recorded takes one channel's studio
	// may hold (uploads past it get 507).
	StudioQuota int64
	// StudioIdle is how long a take in progress may go without a chunk
	// before it is marked interrupted (0: the studio's default, 15 s).
	StudioIdle time.Duration
	// SMTPURL names the mail server for password reset and verification
	// links: smtp://user:pass@host:587 (STARTTLS when offered) or
	// smtps://user:pass@host:465 (implicit TLS). Empty: no mail; reset
	// links are written to the log for the operator.
	SMTPURL string
	// MailFrom is the sender of those mails, e.g. "Parley <parley@example.org>".
	MailFrom string
	// PublicURL is the address users reach Parley at
	// (https://meet.example.org), which links in mails start with. It is
	// required with SMTPURL: taken from the request's Host header, a link
	// could be pointed at another site by whoever asks for the mail.
	PublicURL string
}

// Default returns the settings `parley serve` uses when told nothing.
func Default() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		DataDir:         "./parley-data",
		LogFormat:       "text",
		LogLevel:        "info",
		SessionTTL:      30 * 24 * time.Hour,
		ShutdownTimeout: 10 * time.Second,
		PingInterval:    5 * time.Second,
		P2PMax:          2,
		RTCUDPPort:      7882,
		RTCTCPPort:      7881,
		PingTimeout:     10 * time.Second,

		MaxConnectionsPerUser: 50,
		MaxConnectionsPerIP:   100,
		APIRate:               20,
		APIBurst:              40,
		ReadTimeout:           30 * time.Second,

		TURN:              "embedded",
		TURNAddr:          ":3478",
		TURNRelayPorts:    "49152-65535",
		TURNCredentialTTL: 24 * time.Hour,

		StudioQuota: 2 << 30,
	}
}

// RelayPorts parses TURNRelayPorts (Validate has checked it).
func (c *Config) RelayPorts() (lo, hi uint16) {
	a, b, _ := strings.Cut(c.TURNRelayPorts, "-")
	x, _ := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	y, _ := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	return uint16(x), uint16(y)
}

// Validate reports every problem with c at once, each saying how to fix it.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr %q is not host:port (for example 127.0.0.1:8080 or :8443): %w", c.Addr, err))
	}
	if c.DatabaseURL == "" && c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is empty: name a directory for the SQLite database, or set --database to a PostgreSQL URL"))
	}
	if c.DatabaseURL != "" {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			errs = append(errs, fmt.Errorf("--database must be a PostgreSQL URL like postgres://user:pass@host:5432/db?sslmode=disable"))
		}
	}
	switch c.TLS {
	case "", "self-signed":
		if c.TLSCert != "" || c.TLSKey != "" {
			if c.TLS == "self-signed" {
				errs = append(errs, errors.New("--tls self-signed and --tls-cert/--tls-key exclude each other: pick one"))
			} else {
				c.TLS = "files"
			}
		}
	case "files":
	default:
		errs = append(errs, fmt.Errorf("--tls %q: the only value is self-signed (or give --tls-cert and --tls-key)", c.TLS))
	}
	if c.TLS == "files" && (c.TLSCert == "" || c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together: give both files"))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: use text or json", c.LogFormat))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level %q: use debug, info, warn or error", c.LogLevel))
	}
	for _, s := range c.ICEServers {
		if !strings.HasPrefix(s, "stun:") && !strings.HasPrefix(s, "turn:") && !strings.HasPrefix(s, "turns:") {
			errs = append(errs, fmt.Errorf("--ice-server %q must start with stun:, turn: or turns:", s))
		}
	}
	if c.StudioQuota < 0 {
		errs = append(errs, fmt.Errorf("--studio-quota %d: use a size of 0 or more bytes (0 = the default, 2GiB)", c.StudioQuota))
	}
	if c.RecordingQuotaMB < 0 {
		errs = append(errs, fmt.Errorf("--recording-quota %d: use 0 (no limit) or a size in MiB", c.RecordingQuotaMB))
	}
	if c.P2PMax < 1 {
		errs = append(errs, fmt.Errorf("--p2p-max %d: use 1 or more (2 keeps two-person calls peer-to-peer)", c.P2PMax))
	}
	if c.RTCUDPPort < 0 || c.RTCUDPPort > 65535 {
		errs = append(errs, fmt.Errorf("--rtc-udp-port %d: use a port from 1 to 65535", c.RTCUDPPort))
	}
	if c.RTCTCPPort < -1 || c.RTCTCPPort > 65535 {
		errs = append(errs, fmt.Errorf("--rtc-tcp-port %d: use a port from 1 to 65535, or -1 to turn ICE over TCP off", c.RTCTCPPort))
	}
	for _, ip := range c.PublicIPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("--public-ip %q is not an IP address", ip))
		}
	}
	if c.RTCListenIP != "" && net.ParseIP(c.RTCListenIP) == nil {
		errs = append(errs, fmt.Errorf("--rtc-listen-ip %q is not an IP address", c.RTCListenIP))
	}
	if len(c.TURNURLs) > 0 && c.TURN == "embedded" {
		c.TURN = "external"
	}
	switch c.TURN {
	case "off":
	case "external":
		if len(c.TURNURLs) == 0 {
			errs = append(errs, errors.New("--turn external needs --turn-url (your TURN server's turn: URLs)"))
		}
		if c.TURNSecret == "" {
			errs = append(errs, errors.New("--turn-url needs --turn-secret: the static-auth-secret of your coturn (use-auth-secret)"))
		}
		for _, u := range c.TURNURLs {
			if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
				errs = append(errs, fmt.Errorf("--turn-url %q must start with turn: or turns:", u))
			}
		}
	case "embedded":
		if _, _, err := net.SplitHostPort(c.TURNAddr); err != nil {
			errs = append(errs, fmt.Errorf("--turn-addr %q: use host:port, e.g. :3478", c.TURNAddr))
		}
		if c.TURNTLSAddr != "" {
			if _, _, err := net.SplitHostPort(c.TURNTLSAddr); err != nil {
				errs = append(errs, fmt.Errorf("--turn-tls-addr %q: use host:port, e.g. :5349", c.TURNTLSAddr))
			}
			if c.TLS == "" && c.TLSCert == "" {
				errs = append(errs, errors.New("--turn-tls-addr needs a certificate: give --tls self-signed or --tls-cert/--tls-key"))
			}
		}
		if c.TURNPublicIP != "" && net.ParseIP(c.TURNPublicIP) == nil {
			errs = append(errs, fmt.Errorf("--turn-public-ip %q is not an IP address", c.TURNPublicIP))
		}
		if lo, hi := c.RelayPorts(); lo == 0 || hi < lo || strings.Count(c.TURNRelayPorts, "-") != 1 {
			errs = append(errs, fmt.Errorf("--turn-relay-ports %q: use MIN-MAX, e.g. 49152-65535", c.TURNRelayPorts))
		}
	default:
		errs = append(errs, fmt.Errorf("--turn %q: use embedded, off, or give --turn-url for an external server", c.TURN))
	}
	if c.TURN != "off" && c.TURNCredentialTTL < time.Minute {
		errs = append(errs, fmt.Errorf("--turn-credential-ttl %s is too short: use at least 1m", c.TURNCredentialTTL))
	}
	if c.MaxConnectionsPerUser < 1 {
		errs = append(errs, fmt.Errorf("--max-connections-per-user %d: use 1 or more", c.MaxConnectionsPerUser))
	}
	if c.APIRate < 1 || c.APIBurst < 1 {
		errs = append(errs, fmt.Errorf("--api-rate %d, --api-burst %d: use 1 or more", c.APIRate, c.APIBurst))
	}
	if c.MaxConnectionsPerIP < 0 {
		errs = append(errs, fmt.Errorf("--max-connections-per-ip %d: use 1 or more, or 0 for no cap", c.MaxConnectionsPerIP))
	}
	if c.ReadTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--read-timeout %s: use a positive duration such as 30s", c.ReadTimeout))
	}
	if _, err := clientip.ParseProxies(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("--trusted-proxies: %w", err))
	}
	if c.SMTPURL != "" {
		if _, err := mail.ParseURL(c.SMTPURL); err != nil {
			errs = append(errs, fmt.Errorf("--smtp-url: %w", err))
		}
		if c.MailFrom == "" {
			errs = append(errs, errors.New("--smtp-url needs --mail-from: the sender address, e.g. \"Parley <parley@example.org>\""))
		}
		if c.PublicURL == "" {
			errs = append(errs, errors.New("--smtp-url needs --public-url: the address users open Parley at (e.g. https://meet.example.org), which links in mails start with"))
		}
	}
	if c.MailFrom != "" {
		if c.SMTPURL == "" {
			errs = append(errs, errors.New("--mail-from needs --smtp-url: the mail server to send through"))
		}
		if err := mail.ParseFrom(c.MailFrom); err != nil {
			errs = append(errs, fmt.Errorf("--mail-from: %w", err))
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("--public-url %q: use the scheme and host users open Parley at, like https://meet.example.org", c.PublicURL))
		}
	}
	if c.SessionTTL < time.Minute {
		errs = append(errs, fmt.Errorf("--session-ttl %s is too short: use at least 1m", c.SessionTTL))
	}
	return errors.Join(errs...)
}

// Secure reports whether the server speaks HTTPS (and so sets Secure cookies).
func (c *Config) Secure() bool { return c.TLS != "" }
