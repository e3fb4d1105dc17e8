package nattest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// helperEnv makes the test binary a helper instead of running tests:
// started inside a namespace, it serves STUN, probes a NAT or makes the
// server's users, where the test process itself (in the host's
// namespace) cannot reach.
const helperEnv = "PARLEY_NATTEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain(os.Args[1:]))
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// helper is the test binary running helper args inside h.
func helper(h *Host, args ...string) *exec.Cmd {
	self, _ := os.Executable()
	cmd := h.Command(self, args...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	return cmd
}

func helperMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "helper: no command")
		return 2
	}
	var err error
	switch args[0] {
	case "stun":
		err = stunServer(args[1:])
	case "probe":
		err = stunProbe(args[1:])
	case "setup":
		err = setup(args[1], args[2])
	case "get":
		err = get(args[1])
	case "listen":
		err = listenCount(args[1], args[2])
	case "relayto":
		err = relayTo(args[1], args[2], args[3], args[4])
	default:
		err = fmt.Errorf("unknown command %q", args[0])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// stunServer answers STUN binding requests on each address, printing
// "binding ADDR from SRC" for each, until killed.
func stunServer(addrs []string) error {
	errs := make(chan error, len(addrs))
	for _, a := range addrs {
		pc, err := net.ListenPacket("udp4", a)
		if err != nil {
			return err
		}
		fmt.Printf("listening %s\n", a)
		go func() {
			buf := make([]byte, 1500)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					errs <- err
					return
				}
				req := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
				if req.Decode() != nil || req.Type != stun.BindingRequest {
					continue
				}
				ua := from.(*net.UDPAddr)
				res, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
					&stun.XORMappedAddress{IP: ua.IP, Port: ua.Port}, stun.Fingerprint)
				if err != nil {
					continue
				}
				_, _ = pc.WriteTo(res.Raw, from)
				fmt.Printf("binding %s from %s\n", a, from)
			}
		}()
	}
	return <-errs
}

// stunProbe asks each STUN server, from one socket, what address it sees,
// printing "mapped SERVER IP:PORT".
func stunProbe(servers []string) error {
	pc, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		return err
	}
	defer pc.Close()
	for _, s := range servers {
		to, err := net.ResolveUDPAddr("udp4", s)
		if err != nil {
			return err
		}
		got := false
		for try := 0; try < 5 && !got; try++ {
			req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
			if _, err := pc.WriteTo(req.Raw, to); err != nil {
				return err
			}
			_ = pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			buf := make([]byte, 1500)
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				continue
			}
			res := &stun.Message{Raw: buf[:n]}
			var xa stun.XORMappedAddress
			if res.Decode() != nil || res.TransactionID != req.TransactionID || xa.GetFrom(res) != nil {
				continue
			}
			fmt.Printf("mapped %s %s\n", s, net.JoinHostPort(xa.IP.String(), strconv.Itoa(xa.Port)))
			got = true
		}
		if !got {
			return fmt.Errorf("no answer from %s", s)
		}
	}
	return nil
}

// setupResult is what setup prints: the channel both users are members
// of, pinned to peer-to-peer, and each user's personal access token.
type setupResult struct {
	Channel string    `json:"channel"`
	Tokens  [2]string `json:"tokens"`
	// BobID is Bob's user id (a member: the relay serves his TURN
	// credentials).
	BobID string `json:"bobId"`
}

// removeRE finds a member's user id in the owner's Remove button.
var removeRE = regexp.MustCompile(`/members/([A-Za-z0-9_-]+)/remove`)

var tokenRE = regexp.MustCompile(`<code id="new-token" class="token">(parley_[A-Za-z0-9_-]+)</code>`)

// setup signs Alice and Bob up through the forms; Alice makes a channel,
// adds Bob and pins it to mode (p2p or sfu); both make tokens.
func setup(base, mode string) error {
	var users [2]*http.Client
	var res setupResult
	for i, name := range []string{"Alice", "Bob"} {
		jar, _ := cookiejar.New(nil)
		users[i] = &http.Client{Jar: jar, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		lower := strings.ToLower(name)
		if _, _, err := post(users[i], base+"/signup", http.StatusSeeOther, url.Values{
			"username": {lower}, "display_name": {name}, "email": {lower + "@example.org"}, "password": {"nat traversal test password"},
		}); err != nil {
			return err
		}
	}
	loc, _, err := post(users[0], base+"/channels", http.StatusSeeOther, url.Values{"name": {"NAT test"}})
	if err != nil {
		return err
	}
	res.Channel = strings.TrimPrefix(loc, "/c/")
	ch := base + "/c/" + res.Channel
	if _, _, err := post(users[0], ch+"/members", http.StatusSeeOther, url.Values{"username": {"bob"}}); err != nil {
		return err
	}
	if _, _, err := post(users[0], ch+"/mode", http.StatusSeeOther, url.Values{"mode": {mode}}); err != nil {
		return err
	}
	page, err := users[0].Get(ch)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	m := removeRE.FindStringSubmatch(string(b))
	if m == nil {
		return errors.New("no member's Remove button on the owner's channel page")
	}
	res.BobID = m[1]
	for i, hc := range users {
		_, body, err := post(hc, base+"/account/tokens", http.StatusOK, url.Values{"name": {"nattest"}})
		if err != nil {
			return err
		}
		m := tokenRE.FindStringSubmatch(body)
		if m == nil {
			return errors.New("no token on the account page")
		}
		res.Tokens[i] = m[1]
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// post submits a form and wants status want (for 200: any 2xx).
func post(hc *http.Client, u string, want int, form url.Values) (location, body string, err error) {
	resp, err := hc.PostForm(u, form)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want && (want != http.StatusOK || resp.StatusCode/100 != 2) {
		return "", "", fmt.Errorf("POST %s: %s, want %d\n%s", u, resp.Status, want, b)
	}
	return resp.Header.Get("Location"), string(b), nil
}

func get(u string) error {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}

var (
	buildOnce sync.Once
	binDir    string // removed by TestMain
	binPath   string
	buildErr  error
)

// parleyBinary builds cmd/parley once for all tests.
func parleyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "nattest-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "parley")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/parley").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// server is `parley serve` in the server namespace, with Alice and Bob
// members of a p2p channel.
type server struct {
	n       *Net
	proc    *Proc
	base    string
	dataDir string
	setup   setupResult
}

// startServer runs the real binary on ServerIP with the embedded TURN
// relay (unless extra says --turn off) and waits until it answers.
func startServer(t *testing.T, n *Net, extra ...string) *server {
	t.Helper()
	return startServerMode(t, n, "p2p", extra...)
}

// startServerMode is startServer with the channel pinned to mode (p2p
// or sfu).
func startServerMode(t *testing.T, n *Net, mode string, extra ...string) *server {
	t.Helper()
	dataDir := t.TempDir()
	args := append([]string{"serve", "--addr", ServerIP + ":8080", "--data-dir", dataDir,
		"--rtc-udp-port", "0", "--rtc-tcp-port", "0", "--rtc-listen-ip", ServerIP,
		"--turn-addr", ServerIP + ":3478", "--turn-public-ip", ServerIP, "--log-level", "debug"}, extra...)
	s := &server{n: n, base: "http://" + ServerIP + ":8080", dataDir: dataDir}
	s.proc = Start(t, "parley serve", n.Server.Command(parleyBinary(t), args...))
	deadline := time.Now().Add(15 * time.Second)
	for {
		if out, err := helper(n.Server, "get", s.base+"/healthz").Output(); err == nil && strings.TrimSpace(string(out)) == "ok" {
			break
		}
		if s.proc.Exited() || time.Now().After(deadline) {
			t.Fatalf("the server did not come up:\n%s", tail(s.proc.Stderr(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, err := helper(n.Server, "setup", s.base, mode).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("setting up users and the channel: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("setting up users and the channel: %v", err)
	}
	if err := json.Unmarshal(out, &s.setup); err != nil {
		t.Fatalf("setup printed %q: %v", out, err)
	}
	return s
}

// metric reads one unlabelled metric from /metrics (0 if absent).
func (s *server) metric(t *testing.T, name string) float64 {
	t.Helper()
	out, err := helper(s.n.Server, "get", s.base+"/metrics").Output()
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// toneFile is the looped Opus tone both clients send (50 packets/s).
func toneFile(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../testdata/tone.ogg")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var names = [2]string{"Alice", "Bob"}

// joinBoth starts `parley join` in both client namespaces at once, Alice
// in client A's and Bob in client B's, for d.
func joinBoth(t *testing.T, s *server, d time.Duration) [2]*Proc {
	t.Helper()
	var ps [2]*Proc
	for i := range 2 {
		cmd := s.n.Clients[i].Command(parleyBinary(t), "join", s.base+"/c/"+s.setup.Channel,
			"--token", s.setup.Tokens[i], "--send-audio", toneFile(t), "--duration", d.String())
		ps[i] = Start(t, "parley join ("+names[i]+")", cmd)
	}
	return ps
}

// result is what one `parley join` showed.
type result struct {
	joined, connected, failed time.Duration // since its start; -1 = never
	connectedText, failedText string
	received                  int // -1 = no summary
	summary                   string
}

var receivedRE = regexp.MustCompile(`received (\d+) packets`)

// parse reads a finished `parley join`'s output. Events come on stderr
// between status lines (each redrawn after "\r\033[K").
func parse(p *Proc) result {
	r := result{joined: -1, connected: -1, failed: -1, received: -1}
	for _, l := range p.StderrLines() {
		parts := strings.Split(l.Text, "\r\033[K")
		text := parts[len(parts)-1]
		switch {
		case strings.HasPrefix(text, "joined the call") && r.joined < 0:
			r.joined = l.At
		case strings.HasPrefix(text, "connection with ") && strings.Contains(text, ": connected") && r.connected < 0:
			r.connected, r.connectedText = l.At, text
		case strings.HasPrefix(text, "connection with ") && strings.Contains(text, ": failed") && r.failed < 0:
			r.failed, r.failedText = l.At, text
		}
	}
	for _, l := range p.StdoutLines() {
		if m := receivedRE.FindStringSubmatch(l.Text); m != nil && strings.HasPrefix(l.Text, "in the call") {
			r.received, _ = strconv.Atoi(m[1])
			r.summary = l.Text
		}
	}
	return r
}

// waitBoth waits for both clients to end (they leave after their
// --duration) and parses what they printed.
func waitBoth(t *testing.T, ps [2]*Proc, d time.Duration) [2]result {
	t.Helper()
	var rs [2]result
	for i, p := range ps {
		if err := p.Wait(d + 15*time.Second); err != nil {
			t.Errorf("%s: %v\n%s", p.Name, err, tail(p.Stderr(), 20))
		}
		rs[i] = parse(p)
	}
	return rs
}

// iceTime is how long after both were in the call a client's connection
// was up (ICE and DTLS; both joins start together).
func iceTime(rs [2]result, i int) time.Duration {
	return rs[i].connected - max(rs[0].joined, rs[1].joined)
}

// listenCount counts UDP datagrams arriving at addr for a while and
// prints the count.
func listenCount(addr, for_ string) error {
	d, err := time.ParseDuration(for_)
	if err != nil {
		return err
	}
	c, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Println("listening") // the test waits for this line
	n := 0
	buf := make([]byte, 1500)
	deadline := time.Now().Add(d)
	for {
		_ = c.SetReadDeadline(deadline)
		if _, _, err := c.ReadFrom(buf); err != nil {
			break
		}
		n++
	}
	fmt.Println("received", n)
	return nil
}

// relayTo allocates on the TURN server with the given credentials and
// tries to send to peer through the relay, printing "refused" if the
// relay will not create the permission, else "sent".
func relayTo(server, username, password, peer string) error {
	conn, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		return err
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: server, STUNServerAddr: server,
		Username: username, Password: password, Realm: "parley", Conn: conn})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		return err
	}
	relay, err := c.Allocate()
	if err != nil {
		return fmt.Errorf("allocate: %w", err)
	}
	defer relay.Close()
	to, err := net.ResolveUDPAddr("udp4", peer)
	if err != nil {
		return err
	}
	if err := c.CreatePermission(to); err != nil {
		fmt.Println("refused")
		return nil
	}
	for range 10 {
		if _, err := relay.WriteTo([]byte("through the relay"), to); err != nil {
			fmt.Println("refused")
			return nil
		}
	}
	fmt.Println("sent")
	return nil
}
