package web_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
)

// clientFrom is a test client whose connections come from local, another
// loopback address (127.0.0.2): a second client address on one machine.
func clientFrom(s *servertest.Server, local string) *http.Client {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	return &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// metricValue reads one unlabelled sample from the server's /metrics as a
// number.
func metricValue(t *testing.T, s *servertest.Server, name string) float64 {
	t.Helper()
	m := metric(t, s, name)
	if m == "" {
		t.Fatalf("/metrics has no %s", name)
	}
	v, err := strconv.ParseFloat(m, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestParallelWrongLoginsLimited: 30 wrong passwords sent at once for one
// account from one address are evaluated at most 5 times (the limit), the
// other 25 are refused with 429 before any hashing, and the right password
// right after the burst is refused too.
func TestParallelWrongLoginsLimited(t *testing.T) {
	s := servertest.Start(t, servertest.WithAccountConfig(func(c *account.Config) {
		// A hash that takes milliseconds, as a real one does (tens of
		// them), so that parallel attempts overlap.
		c.Argon2 = account.Argon2Params{Time: 2, MemoryKiB: 4 << 10, Threads: 1}
	}))
	s.SignUp("linus", "Linus")
	before := metric(t, s, "parley_password_hashes_total") // checked below, after the statuses
	const n = 30
	codes := make(chan int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.Client()
			<-start
			resp, _ := s.PostForm(c, "/login", url.Values{"username": {"linus"}, "password": {"wrong password!"}})
			codes <- resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[http.StatusUnauthorized] > 5 || count[http.StatusUnauthorized]+count[http.StatusTooManyRequests] != n {
		t.Errorf("statuses %v: want at most 5 × 401 (evaluated) and the rest 429", count)
	}
	if b, err := strconv.ParseFloat(before, 64); err != nil {
		t.Errorf("/metrics has no parley_password_hashes_total (%q)", before)
	} else if d := metricValue(t, s, "parley_password_hashes_total") - b; d > 5 {
		t.Errorf("%v password hashes for the burst, want at most 5", d)
	}
	resp, _ := s.PostForm(s.Client(), "/login", url.Values{"username": {"linus"}, "password": {servertest.Password}})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right password after the burst: status %d, want 429", resp.StatusCode)
	}
}

// TestPasswordHashingBusy: with every hashing slot taken, a login waits
// HashQueueWait, then gets 503 with Retry-After and a message saying to
// retry; the gauge shows the hash in progress.
func TestPasswordHashingBusy(t *testing.T) {
	s := servertest.Start(t, servertest.WithAccountConfig(func(c *account.Config) {
		c.MaxConcurrentHashes = 1
		c.HashQueueWait = 10 * time.Millisecond
		// Heavy enough that the one slot stays taken while the test
		// sends its second request.
		c.Argon2 = account.Argon2Params{Time: 40, MemoryKiB: 64 << 10, Threads: 1}
	}))
	slow := make(chan int, 1)
	go func() {
		resp, _ := s.PostForm(s.Client(), "/login", url.Values{"username": {"nobody"}, "password": {"whatever it is"}})
		slow <- resp.StatusCode
	}()
	deadline := time.Now().Add(20 * time.Second)
	for metricValue(t, s, "parley_password_hashes_in_progress") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first login never started hashing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, body := s.PostForm(s.Client(), "/login", url.Values{"username": {"someone"}, "password": {"whatever it is"}})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("login while the only slot is taken: status %d, want 503", resp.StatusCode)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2", ra)
	}
	if !strings.Contains(body, "busy checking other passwords") || !strings.Contains(body, `value="someone"`) {
		t.Error("the 503 page does not explain itself, or lost the username")
	}
	if got := <-slow; got != http.StatusUnauthorized {
		t.Errorf("the first login: status %d, want 401", got)
	}
	if got := metricValue(t, s, "parley_password_hash_busy_total"); got != 1 {
		t.Errorf("busy counter %v, want 1", got)
	}
}

// TestSignUpLimitedPerAddress: one address gets MaxSignUpsPerIP sign-ups,
// then 429 with Retry-After; another address still signs up.
func TestSignUpLimitedPerAddress(t *testing.T) {
	s := servertest.Start(t, servertest.WithAccountConfig(func(c *account.Config) { c.MaxSignUpsPerIP = 2 }))
	form := func(name string) url.Values {
		return url.Values{"username": {name}, "display_name": {name}, "email": {name + "@example.org"}, "password": {servertest.Password}}
	}
	s.SignUp("first", "First")
	s.SignUp("second", "Second")
	resp, body := s.PostForm(s.Client(), "/signup", form("third"))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third sign-up from one address: status %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(body, "Too many accounts were made from your network address") || !strings.Contains(body, `value="third"`) {
		t.Error("the 429 page does not explain itself, or lost the input")
	}
	if strings.Contains(body, servertest.Password) {
		t.Error("the password was echoed back into the page")
	}
	if resp, _ := s.PostForm(clientFrom(s, "127.0.0.2"), "/signup", form("fourth")); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-up from another address: status %d, want 303", resp.StatusCode)
	}
}

// TestAttackerCannotLockOutOwner: after a stranger fails on an account
// from one address, that address is refused for the account, while the
// owner from another address waits at most the slow-down pause (the
// Retry-After they are given) and gets in.
func TestAttackerCannotLockOutOwner(t *testing.T) {
	s := servertest.Start(t)
	s.SignUp("ada", "Ada")
	attacker := s.Client() // 127.0.0.1
	for range 8 {
		s.PostForm(attacker, "/login", url.Values{"username": {"ada"}, "password": {"wrong password!"}})
	}
	resp, _ := s.PostForm(attacker, "/login", url.Values{"username": {"ada"}, "password": {"another guess!"}})
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusTooManyRequests || ra < 60 {
		t.Errorf("attacker after 9 failures: status %d Retry-After %q, want 429 for the window", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	owner := clientFrom(s, "127.0.0.2")
	resp, _ = s.PostForm(owner, "/login", url.Values{"username": {"ada"}, "password": {servertest.Password}})
	if resp.StatusCode == http.StatusTooManyRequests {
		ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || ra > 1 {
			t.Fatalf("owner from another address: Retry-After %q, want a pause of at most 1 s", resp.Header.Get("Retry-After"))
		}
		time.Sleep(time.Duration(ra) * time.Second) // what the owner's browser is told to do
		resp, _ = s.PostForm(owner, "/login", url.Values{"username": {"ada"}, "password": {servertest.Password}})
	}
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("owner from another address: status %d, want 303 (logged in)", resp.StatusCode)
	}
}

// TestTrustedProxyClientAddress: behind a trusted proxy, logins are
// counted against the address in X-Forwarded-For, so one client's failures
// do not refuse another's; from a peer that is not trusted, a forged
// X-Forwarded-For changes nothing.
func TestTrustedProxyClientAddress(t *testing.T) {
	login := func(s *servertest.Server, xff, password string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/login", strings.NewReader(url.Values{"username": {"ada"}, "password": {password}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", xff)
		resp, _ := s.Do(s.Client(), req)
		return resp
	}
	t.Run("trusted", func(t *testing.T) {
		s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} }))
		s.SignUp("ada", "Ada")
		s.SignUp("bob", "Bob")
		for range 5 {
			login(s, "1.1.1.1, 198.51.100.66", "wrong password!")
		}
		if resp := login(s, "198.51.100.66", servertest.Password); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("the failing client: status %d, want 429", resp.StatusCode)
		}
		if ra := login(s, "198.51.100.66", servertest.Password).Header.Get("Retry-After"); ra == "" || ra == "1" {
			t.Errorf("the failing client: Retry-After %q, want the window", ra)
		}
		// Another client behind the same proxy is not refused for the
		// window: at most the 1 s pause.
		resp := login(s, "198.51.100.1", servertest.Password)
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "1" {
			t.Errorf("another client behind the proxy: Retry-After %q, want at most 1", resp.Header.Get("Retry-After"))
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.TrustedProxies = []string{"10.0.0.0/8"} }))
		s.SignUp("ada", "Ada")
		// A new forged address each time: all are the one peer, 127.0.0.1.
		for i := range 5 {
			login(s, fmt.Sprintf("198.51.100.%d", i), "wrong password!")
		}
		resp := login(s, "198.51.100.200", servertest.Password)
		if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusTooManyRequests || ra < 60 {
			t.Errorf("forged X-Forwarded-For from an untrusted peer: status %d Retry-After %q, want 429 for the window", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	})
}

// TestTrickledBodyCutOff: a client sending a request body a byte at a time
// is cut off once ReadTimeout has passed since the request began.
func TestTrickledBodyCutOff(t *testing.T) {
	const timeout = time.Second
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.ReadTimeout = timeout }))
	conn, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000\r\n\r\nusername=", s.Addr)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if _, err := conn.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()
	// Without the timeout the trickle would last 1000 s; give it 15.
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was still open after %v of trickling", time.Since(start).Round(time.Second))
	}
	// The server's clock starts when it begins reading, a moment before
	// or after ours: only a cut far too early is wrong.
	if took := time.Since(start); took < timeout/2 {
		t.Errorf("cut off after %v, well before the %v timeout", took, timeout)
	}
}

// TestWebSocketOutlivesReadTimeout: a signaling socket is not cut by the
// read timeout that cuts slow requests: Go clears the deadline when the
// connection is hijacked.
func TestWebSocketOutlivesReadTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.ReadTimeout = timeout }))
	ann := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(ann, "Long call")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ck := s.SessionCookie(ann)
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/c/"+ch, &websocket.DialOptions{
		HTTPHeader:   http.Header{"Origin": {s.URL}, "Cookie": {ck.Name + "=" + ck.Value}},
		Subprotocols: []string{signaling.Subprotocol},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	time.Sleep(3 * timeout) // the behaviour under test: outliving the timeout
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","ts":42}`)); err != nil {
		t.Fatal(err)
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("socket closed after %v: %v", 3*timeout, err)
		}
		if m, err := signaling.Parse(data); err == nil && m.Type == signaling.TypePong {
			return
		}
	}
}

// TestConnectionCapPerAddress: one address may hold MaxConnectionsPerIP
// connections; the next is closed unanswered while another address still
// gets in, a closed connection frees its place, and WebSockets do not
// count.
func TestConnectionCapPerAddress(t *testing.T) {
	const max = 3
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.MaxConnectionsPerIP = max }))
	// get sends one request on conn and reads the answer; an error means
	// the server closed the connection without answering.
	get := func(conn net.Conn) error {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", s.Addr); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	dial := func(local string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var held []net.Conn
	for i := range max {
		c := dial("127.0.0.1")
		if err := get(c); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		held = append(held, c) // kept alive, idle
	}
	if err := get(dial("127.0.0.1")); err == nil {
		t.Fatalf("connection %d from one address was answered, want it closed", max+1)
	}
	if err := get(dial("127.0.0.2")); err != nil {
		t.Errorf("another address: %v", err)
	}
	resp, err := clientFrom(s, "127.0.0.2").Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^parley_http_connections_refused_total [1-9]`).Match(body) {
		t.Error("/metrics does not count the refused connection")
	}
	// A closed connection frees its place once the server notices.
	held[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for get(dial("127.0.0.1")) != nil {
		if time.Now().After(deadline) {
			t.Fatal("a closed connection did not free its place")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebSocketsLeaveConnectionCap: upgraded signaling sockets do not count
// against MaxConnectionsPerIP (MaxConnectionsPerUser bounds them).
func TestWebSocketsLeaveConnectionCap(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.MaxConnectionsPerIP = 2 }))
	ann := s.SignUp("ann", "Ann") // its keep-alive connection holds one place
	ch := s.CreateChannel(ann, "Sockets")
	ck := s.SessionCookie(ann)
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/c/"+ch, &websocket.DialOptions{
			HTTPHeader:   http.Header{"Origin": {s.URL}, "Cookie": {ck.Name + "=" + ck.Value}},
			Subprotocols: []string{signaling.Subprotocol},
		})
		cancel()
		if err != nil {
			t.Fatalf("socket %d: %v", i, err)
		}
		defer conn.CloseNow()
	}
	if resp, _ := s.Get(s.Client(), "/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("a page request with 3 sockets open: status %d", resp.StatusCode)
	}
}

// TestHSTSOnlyOverTLS: Strict-Transport-Security is sent over HTTPS and
// not over plain HTTP.
func TestHSTSOnlyOverTLS(t *testing.T) {
	tlsSrv := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.TLS = "self-signed" }))
	resp, _ := tlsSrv.Get(tlsSrv.Client(), "/login")
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("HTTPS: Strict-Transport-Security %q, want max-age=31536000", got)
	}
	plain := servertest.Start(t)
	resp, _ = plain.Get(plain.Client(), "/login")
	if got := resp.Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("plain HTTP: Strict-Transport-Security %q, want none", got)
	}
}
