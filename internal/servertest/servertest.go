// Package servertest starts whole Parley servers on 127.0.0.1:0 with a
// throw-away database, for tests in other packages. The server is the real
// one (internal/server), not a stand-in.
package servertest

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/server"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
)

// Server is a running test server.
type Server struct {
	// URL is the base URL, like http://127.0.0.1:41234.
	URL string
	// Addr is the listen address, kept across Restart.
	Addr string
	// Config is what the server was started with.
	Config config.Config

	t    testing.TB
	acfg account.Config
	logw testWriter
	srv  *server.Server
	done chan error
}

// Option changes how a test server starts.
type Option func(*options)

type options struct {
	postgres bool
	turn     bool
	mutate   func(*config.Config)
	account  func(*account.Config)
	smtpURL  string
}

// WithPostgres runs the server on PostgreSQL (a fresh schema) instead of
// SQLite; the test is skipped without PARLEY_TEST_POSTGRES (or fails under
// PARLEY_REQUIRE_ALL=1).
func WithPostgres() Option { return func(o *options) { o.postgres = true } }

// WithTURN runs the embedded TURN relay on a free loopback port, allowed
// to relay to loopback peers.
func WithTURN() Option { return func(o *options) { o.turn = true } }

// WithConfig lets a test change the configuration before start.
func WithConfig(f func(*config.Config)) Option { return func(o *options) { o.mutate = f } }

// WithAccountConfig lets a test change the account settings (login and
// sign-up limits, password hashing) before start.
func WithAccountConfig(f func(*account.Config)) Option { return func(o *options) { o.account = f } }

// WithMail sends mail through the SMTP server at smtpURL (a
// mailtest.Server's URL) as parley@example.org, with links to the test
// server's own address (--public-url).
func WithMail(smtpURL string) Option { return func(o *options) { o.smtpURL = smtpURL } }

// ownAddress stands for the test server's address in --public-url until
// it is known.
const ownAddress = "http://own-address.invalid"

// Start starts a server and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	// Media on free loopback ports only: tests send nothing off this host.
	cfg.RTCUDPPort = 0
	cfg.RTCTCPPort = 0
	cfg.RTCListenIP = "127.0.0.1"
	cfg.RTCLoopbackOnly = true
	// No TURN relay unless asked for (WithTURN): direct loopback paths are
	// what most tests measure, and a relay adds candidates to every call.
	cfg.TURN = "off"
	if o.turn {
		cfg.TURN = "embedded"
		cfg.TURNAddr = "127.0.0.1:0"
		cfg.TURNAllowPrivate = true // every peer in a test is on loopback
	}
	if o.postgres {
		cfg.DatabaseURL = storetest.PostgresDSN(t)
	}
	if o.smtpURL != "" {
		cfg.SMTPURL, cfg.MailFrom = o.smtpURL, "Parley <parley@example.org>"
		cfg.PublicURL = ownAddress // replaced by the real address once listening (start)
	}
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	s := &Server{t: t, Config: cfg, acfg: AccountConfig()}
	if o.account != nil {
		o.account(&s.acfg)
	}
	s.logw = newTestWriter(t)
	s.start()
	t.Cleanup(func() { s.Stop() })
	return s
}

// AccountConfig is what test servers use: the real algorithm with light
// argon2 parameters, so that sign-ups in tests take milliseconds.
func AccountConfig() account.Config {
	return account.Config{Argon2: account.TestArgon2()}
}

func (s *Server) start() {
	t := s.t
	t.Helper()
	log := slog.New(slog.NewTextHandler(s.logw, &slog.HandlerOptions{Level: logLevel()}))
	addr := s.Addr
	if addr == "" {
		addr = s.Config.Addr
	}
	// Listen first: links in mails need the address (--public-url).
	ln, err := listen(addr)
	if err != nil {
		t.Fatalf("servertest: listen %s: %v", addr, err)
	}
	if s.Config.PublicURL == ownAddress {
		scheme := "http"
		if s.Config.TLS != "" || s.Config.TLSCert != "" {
			scheme = "https"
		}
		s.Config.PublicURL = scheme + "://" + ln.Addr().String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.New(ctx, s.Config, log, s.acfg)
	if err != nil {
		ln.Close()
		t.Fatalf("servertest: start: %v", err)
	}
	s.Addr = ln.Addr().String()
	scheme := "http"
	if srv.TLS() {
		scheme = "https"
	}
	s.URL = scheme + "://" + s.Addr
	s.srv = srv
	s.done = make(chan error, 1)
	go func() { s.done <- srv.Serve(ln) }()
}

// listen retries briefly: after Stop the kernel may hold the port for a
// moment while the old sockets close.
func listen(addr string) (net.Listener, error) {
	var lastErr error
	for range 50 {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln, nil
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	return nil, lastErr
}

// Stop stops the server at once, like a process that was killed: every
// connection is cut. It is safe to call twice.
func (s *Server) Stop() {
	if s.srv == nil {
		return
	}
	s.srv.Close()
	<-s.done
	s.srv = nil
}

// Restart starts the server again on the same address and data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Accounts is the running server's account service, for test setup.
func (s *Server) Accounts() *account.Service { return s.srv.Accounts() }

// DB is the running server's database, for what an admin command does
// beside the server (parley join-keys).
func (s *Server) DB() *store.DB { return s.srv.DB() }

// Client returns an HTTP client with its own cookie jar that does not
// follow redirects, so tests can see them.
func (s *Server) Client() *http.Client {
	jar, _ := cookiejar.New(nil)
	var rt http.RoundTripper
	if strings.HasPrefix(s.URL, "https:") {
		// The test server's certificate is self-signed.
		rt = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	return &http.Client{
		Transport: rt,
		Jar:       jar,
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// PostForm posts a same-origin form (with the Origin header a browser
// would send) and returns the response with its body read.
func (s *Server) PostForm(c *http.Client, path string, form url.Values) (*http.Response, string) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", s.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return s.Do(c, req)
}

// Get fetches path and returns the response with its body read.
func (s *Server) Get(c *http.Client, path string) (*http.Response, string) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.Do(c, req)
}

// Do sends req and reads the whole body.
func (s *Server) Do(c *http.Client, req *http.Request) (*http.Response, string) {
	s.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("read %s: %v", req.URL, err)
	}
	return resp, string(b)
}

// SignUp creates a user through the real sign-up form and returns a client
// logged in as that user. The password is Password.
func (s *Server) SignUp(username, displayName string) *http.Client {
	s.t.Helper()
	c := s.Client()
	resp, body := s.PostForm(c, "/signup", url.Values{
		"username": {username}, "display_name": {displayName},
		"email": {username + "@example.org"}, "password": {Password},
	})
	if resp.StatusCode != http.StatusSeeOther {
		s.t.Fatalf("sign up %s: status %d\n%s", username, resp.StatusCode, body)
	}
	return c
}

// Password is the password SignUp gives every user.
const Password = "correct horse battery staple"

// CreateChannel creates a channel as the client's user through the form and
// returns its id.
func (s *Server) CreateChannel(c *http.Client, name string) string {
	s.t.Helper()
	resp, body := s.PostForm(c, "/channels", url.Values{"name": {name}})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/c/") {
		s.t.Fatalf("create channel %q: status %d location %q\n%s", name, resp.StatusCode, loc, body)
	}
	return strings.TrimPrefix(loc, "/c/")
}

// AddMember adds username to the channel through the owner's form.
func (s *Server) AddMember(owner *http.Client, channelID, username string) {
	s.t.Helper()
	resp, body := s.PostForm(owner, "/c/"+channelID+"/members", url.Values{"username": {username}})
	if resp.StatusCode != http.StatusSeeOther {
		s.t.Fatalf("add member %s: status %d\n%s", username, resp.StatusCode, body)
	}
}

// SessionCookie returns the client's session cookie value for the server.
func (s *Server) SessionCookie(c *http.Client) *http.Cookie {
	u, _ := url.Parse(s.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "parley_session" {
			return ck
		}
	}
	return nil
}

func logLevel() slog.Level {
	if os.Getenv("PARLEY_TEST_LOG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// testWriter sends server logs to the test's log, shown on failure. Logs
// written after the test ended (a goroutine winding down) are dropped:
// testing panics on those.
type testWriter struct {
	t    testing.TB
	mu   *sync.Mutex
	done *bool
}

func newTestWriter(t testing.TB) testWriter {
	w := testWriter{t: t, mu: new(sync.Mutex), done: new(bool)}
	t.Cleanup(func() {
		w.mu.Lock()
		*w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !*w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// Token makes a personal access token for a user SignUp created, for
// native clients (Authorization: Bearer).
func (s *Server) Token(username string) string {
	s.t.Helper()
	ctx := context.Background()
	u, _, err := s.Accounts().LogIn(ctx, "", username, Password)
	if err != nil {
		s.t.Fatalf("log in %s for a token: %v", username, err)
	}
	_, secret, err := s.Accounts().CreateToken(ctx, u, "test")
	if err != nil {
		s.t.Fatalf("token for %s: %v", username, err)
	}
	return secret
}
