// Command parley is the Parley server and its tools.
//
//	parley serve [flags]    run the server (see parley serve --help)
//	parley join URL [flags] join a call as a native participant
//	parley loadtest [flags] load-test a server (see parley loadtest --help)
//	parley p2p listen|dial  a direct call between two copies, no server
//	parley cluster status   a cluster's nodes, calls and participants
//	parley join-keys ...    list, rotate or revoke the join tokens' signing keys
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/server"
)

const usage = `Parley: self-hosted video meetings and chat in one program.

Usage:
  parley serve [flags]   run the server (parley serve --help lists the flags)
  parley join URL [flags] join a channel's call from the command line
  parley loadtest [flags] synthetic publishers and subscribers against a server
  parley p2p listen|dial  talk directly with another copy, no server (parley p2p --help)
  parley cluster status  list a cluster's nodes, their calls and participants
  parley join-keys list|rotate|revoke KID   the keys join tokens are signed with
  parley help            show this text
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "loadtest":
		return loadTest(args[1:], stdout, stderr)
	case "join":
		return join(args[1:], os.Stdin, stdout, stderr)
	case "p2p":
		return p2pCmd(args[1:], os.Stdin, stdout, stderr)
	case "cluster":
		return clusterCmd(args[1:], stdout, stderr)
	case "join-keys":
		return joinKeys(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "parley: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// envFlags binds each flag to a PARLEY_* environment variable; an explicit
// flag wins over the environment, which wins over the default.
type envFlags struct {
	fs   *flag.FlagSet
	envs map[string]string // flag name → env var
	// old maps a flag name to the env var it used to be read from; that
	// name still works, with a warning to warn, when the new one is unset.
	old  map[string]string
	warn io.Writer
}

// renamed keeps an earlier environment variable name of flag name working.
func (e *envFlags) renamed(name, oldEnv string) {
	if e.old == nil {
		e.old = map[string]string{}
	}
	e.old[name] = oldEnv
}

func (e *envFlags) string(p *string, name, env, help string) {
	e.fs.StringVar(p, name, *p, help+" (env "+env+")")
	e.envs[name] = env
}

func (e *envFlags) int(p *int, name, env, help string) {
	e.fs.IntVar(p, name, *p, help+" (env "+env+")")
	e.envs[name] = env
}

func (e *envFlags) bool(p *bool, name, env, help string) {
	e.fs.BoolVar(p, name, *p, help+" (env "+env+")")
	e.envs[name] = env
}

func (e *envFlags) duration(p *time.Duration, name, env, help string) {
	e.fs.DurationVar(p, name, *p, help+" (env "+env+")")
	e.envs[name] = env
}

// parse applies the environment to flags not given on the command line.
func (e *envFlags) parse(args []string) error {
	if err := e.fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	e.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, env := range e.envs {
		v, ok := os.LookupEnv(env)
		if old := e.old[name]; !ok && old != "" {
			if v, ok = os.LookupEnv(old); ok && e.warn != nil {
				fmt.Fprintf(e.warn, "parley: environment variable %s is deprecated; rename it %s (it matches the flag --%s)\n", old, env, name)
			}
			env = old
		}
		if ok && !set[name] {
			if err := e.fs.Set(name, v); err != nil {
				return fmt.Errorf("environment %s=%q: %w", env, v, err)
			}
		}
	}
	return nil
}

func serve(args []string, stdout, stderr io.Writer) int {
	cfg := config.Default()
	fs := flag.NewFlagSet("parley serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &envFlags{fs: fs, envs: map[string]string{}, warn: stderr}
	var iceServers string
	f.string(&cfg.Addr, "addr", "PARLEY_ADDR", "listen address, host:port")
	f.string(&cfg.DataDir, "data-dir", "PARLEY_DATA_DIR", "directory for the SQLite database and the self-signed certificate")
	f.string(&cfg.DatabaseURL, "database", "PARLEY_DATABASE_URL", "PostgreSQL URL (postgres://user:pass@host/db); empty uses SQLite in --data-dir")
	f.string(&cfg.TLS, "tls", "PARLEY_TLS", `"self-signed" makes and keeps a certificate in --data-dir, for HTTPS on a LAN`)
	f.string(&cfg.TLSCert, "tls-cert", "PARLEY_TLS_CERT", "TLS certificate file (PEM); with --tls-key serves HTTPS")
	f.string(&cfg.TLSKey, "tls-key", "PARLEY_TLS_KEY", "TLS private key file (PEM)")
	f.string(&iceServers, "ice-server", "PARLEY_ICE_SERVER", "comma-separated STUN/TURN URLs handed to clients, e.g. stun:stun.example.org:3478")
	f.renamed("ice-server", "PARLEY_ICE_SERVERS")
	f.string(&cfg.LogFormat, "log-format", "PARLEY_LOG_FORMAT", "log format: text or json")
	f.string(&cfg.LogLevel, "log-level", "PARLEY_LOG_LEVEL", "log level: debug, info, warn or error")
	f.duration(&cfg.SessionTTL, "session-ttl", "PARLEY_SESSION_TTL", "how long a login lasts")
	var publicIPs, interfaces string
	f.int(&cfg.P2PMax, "p2p-max", "PARLEY_P2P_MAX", "largest call kept peer-to-peer; larger calls go through the SFU")
	f.string(&cfg.RecordingDir, "recording-dir", "PARLEY_RECORDING_DIR", "directory for call recordings (empty = recordings in --data-dir)")
	f.int(&cfg.RecordingQuotaMB, "recording-quota", "PARLEY_RECORDING_QUOTA", "MiB all call recordings may take; a recording reaching it stops, the call goes on (0 = no limit)")
	f.string(&cfg.FFmpeg, "ffmpeg", "PARLEY_FFMPEG", "ffmpeg program for recording composites (empty = ffmpeg on PATH; none = composites not offered)")
	f.int(&cfg.RTCUDPPort, "rtc-udp-port", "PARLEY_RTC_UDP_PORT", "the one UDP port for all SFU media")
	f.int(&cfg.RTCTCPPort, "rtc-tcp-port", "PARLEY_RTC_TCP_PORT", "TCP port for media when UDP is blocked (-1 = off)")
	f.string(&cfg.RTCListenIP, "rtc-listen-ip", "PARLEY_RTC_LISTEN_IP", "bind the media ports to this address (empty = all)")
	f.string(&publicIPs, "public-ip", "PARLEY_PUBLIC_IP", "comma-separated public IPs to announce for media when behind a 1:1 NAT")
	f.string(&interfaces, "rtc-interfaces", "PARLEY_RTC_INTERFACES", "comma-separated network interfaces to use for media (empty = all)")
	f.int(&cfg.MaxConnectionsPerUser, "max-connections-per-user", "PARLEY_MAX_CONNECTIONS_PER_USER", "signaling sockets plus WHIP/WHEP sessions one account may hold (raise it for load tests)")
	f.int(&cfg.APIRate, "api-rate", "PARLEY_API_RATE", "requests per second one API key, access token or login session may make to /api/v1 (then 429 with Retry-After)")
	f.int(&cfg.APIBurst, "api-burst", "PARLEY_API_BURST", "requests one credential may make at once to /api/v1 before --api-rate applies")
	var trustedProxies string
	f.int(&cfg.MaxConnectionsPerIP, "max-connections-per-ip", "PARLEY_MAX_CONNECTIONS_PER_IP", "HTTP connections one client address may hold open (WebSockets and trusted proxies not counted; 0 = no cap)")
	f.duration(&cfg.ReadTimeout, "read-timeout", "PARLEY_READ_TIMEOUT", "longest time to read one request, headers and body (WebSockets are exempt once open)")
	f.string(&trustedProxies, "trusted-proxies", "PARLEY_TRUSTED_PROXIES", "comma-separated reverse proxy addresses or CIDRs whose X-Forwarded-For/X-Real-IP name the client, e.g. 127.0.0.1,10.0.0.0/8")
	var turnURLs string
	f.string(&cfg.TURN, "turn", "PARLEY_TURN", "TURN relay: embedded (Parley's own) or off; --turn-url uses an external one")
	f.string(&cfg.TURNAddr, "turn-addr", "PARLEY_TURN_ADDR", "embedded TURN listen address, UDP and TCP")
	f.string(&cfg.TURNTLSAddr, "turn-tls-addr", "PARLEY_TURN_TLS_ADDR", "also serve TURN over TLS (turns:) here, with the HTTPS certificate, e.g. :5349")
	f.string(&cfg.TURNPublicIP, "turn-public-ip", "PARLEY_TURN_PUBLIC_IP", "the address clients reach the relay at and relayed media comes from")
	f.string(&cfg.TURNRelayPorts, "turn-relay-ports", "PARLEY_TURN_RELAY_PORTS", "UDP port range for relayed media, MIN-MAX (open it in the firewall)")
	f.string(&cfg.TURNSecret, "turn-secret", "PARLEY_TURN_SECRET", "shared secret for TURN credentials (default: made and kept in --data-dir; set the same on every node, or your coturn's static-auth-secret)")
	f.string(&turnURLs, "turn-url", "PARLEY_TURN_URL", "comma-separated turn:/turns: URLs of an external TURN server (coturn with use-auth-secret); turns the embedded one off")
	f.renamed("turn-url", "PARLEY_TURN_URLS")
	f.bool(&cfg.TURNAllowPrivate, "turn-allow-private", "PARLEY_TURN_ALLOW_PRIVATE", "let the relay reach private and loopback addresses (LAN-only deployments)")
	f.duration(&cfg.TURNCredentialTTL, "turn-credential-ttl", "PARLEY_TURN_CREDENTIAL_TTL", "how long the TURN credentials handed to each participant last")
	studioQuota := "2GiB"
	f.string(&studioQuota, "studio-quota", "PARLEY_STUDIO_QUOTA", "storage each channel's studio may use for recorded takes, e.g. 500MiB or 10GiB (uploads past it are refused)")
	f.string(&cfg.SMTPURL, "smtp-url", "PARLEY_SMTP_URL", "mail server for password reset and verification links: smtp://user:pass@host:587 (STARTTLS when offered) or smtps://user:pass@host:465; empty logs reset links instead")
	f.string(&cfg.MailFrom, "mail-from", "PARLEY_MAIL_FROM", `sender of those mails, e.g. "Parley <parley@example.org>"`)
	f.string(&cfg.PublicURL, "public-url", "PARLEY_PUBLIC_URL", "the address users open Parley at, e.g. https://meet.example.org; links in mails start with it (required with --smtp-url)")
	f.bool(&cfg.WebhookAllowPrivate, "webhook-allow-private", "PARLEY_WEBHOOK_ALLOW_PRIVATE", "let webhooks call loopback and private addresses (tests, LAN-only servers); refused by default against SSRF")
	f.duration(&cfg.WebhookRetryMin, "webhook-retry-min", "PARLEY_WEBHOOK_RETRY_MIN", "wait before retrying a failed webhook delivery the first time; doubled after each failure, with jitter")
	f.duration(&cfg.WebhookRetryMax, "webhook-retry-max", "PARLEY_WEBHOOK_RETRY_MAX", "longest wait between two attempts of a webhook delivery (retries stop 24 h after the event)")
	f.duration(&cfg.WebhookTimeout, "webhook-timeout", "PARLEY_WEBHOOK_TIMEOUT", "longest a webhook delivery attempt may take, connection included; slower is a failure, retried")
	f.string(&cfg.RedisURL, "redis", "PARLEY_REDIS_URL", "Redis URL (redis://host:6379/0); with a PostgreSQL --database this node joins a cluster: calls are placed on nodes through Redis, rate limits counted there")
	f.string(&cfg.RedisPrefix, "redis-prefix", "PARLEY_REDIS_PREFIX", "prefix of every Redis key of this deployment (several can share one Redis)")
	f.string(&cfg.NodeID, "node-id", "PARLEY_NODE_ID", "this node's name in the cluster (default: made and kept in --data-dir)")
	f.string(&cfg.NodeURL, "node-url", "PARLEY_NODE_URL", "URL the other nodes reach this one at, e.g. http://10.0.0.2:8080 (default: http://--addr, which must then be a specific address)")
	f.duration(&cfg.LeaseTTL, "lease-ttl", "PARLEY_LEASE_TTL", "how long a call's lease on this node lasts without renewal: how soon a vanished node's calls restart elsewhere")
	var cpuProfile string
	fs.StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile (go tool pprof) to this file until the server stops")
	f.bool(&cfg.RTCLoopbackOnly, "rtc-loopback-only", "PARLEY_RTC_LOOPBACK_ONLY", "media on loopback addresses only: for load tests with clients on this machine")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: parley serve [flags]\n\nRuns the Parley server. Every flag can also be set by the environment variable named after it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "parley serve: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "parley serve: unexpected arguments %q (flags start with --)\n", fs.Args())
		return 2
	}
	cfg.ICEServers = splitList(iceServers)
	cfg.PublicIPs = splitList(publicIPs)
	cfg.RTCInterfaces = splitList(interfaces)
	cfg.TURNURLs = splitList(turnURLs)
	cfg.TrustedProxies = splitList(trustedProxies)
	quota, err := parseSize(studioQuota)
	if err != nil {
		fmt.Fprintf(stderr, "parley serve: --studio-quota %q: %v\n", studioQuota, err)
		return 2
	}
	cfg.StudioQuota = quota
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "parley serve: bad configuration:\n%v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "parley serve: --cpu-profile: %v\n", err)
			return 2
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	srv, err := server.New(ctx, cfg, log, account.Config{})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.Addr, "err", err)
		srv.Close()
		return 1
	}
	scheme := "http"
	if srv.TLS() {
		scheme = "https"
	}
	db := "sqlite in " + cfg.DataDir
	if cfg.DatabaseURL != "" {
		db = "postgres"
	}
	log.Info("parley is running", "url", scheme+"://"+displayAddr(ln.Addr()), "database", db)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if err != nil {
			log.Error("server stopped", "err", err)
			srv.Close()
			return 1
		}
	case <-ctx.Done():
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("shutdown was not clean", "err", err)
		}
		<-errc
	}
	log.Info("stopped")
	return 0
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// sizeUnits are the suffixes parseSize knows, longest first so "MiB" is
// not read as "B".
var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}

// parseSize reads a byte count such as 500MiB, 2GB or 1048576.
func parseSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, errors.New("use a size in bytes such as 500MiB, 2GiB or 1048576")
	}
	return n * mult, nil
}

// displayAddr names a wildcard listen address by something a browser can open.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
