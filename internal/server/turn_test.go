package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/parley/parley/internal/client"
	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/servertest"
)

// hello dials the channel's socket as a native client and returns the
// ICE servers the server handed out.
func iceServers(t *testing.T, s *servertest.Server) (string, []string, string, string) {
	t.Helper()
	owner := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(owner, "Relay")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{URL: s.URL + "/c/" + ch, Token: s.Token("ann"), LoopbackOnly: true,
		InsecureTLS: strings.HasPrefix(s.URL, "https:")}, nil) // a self-signed test certificate
	if err != nil {
		t.Fatal(err)
	}
	for _, ice := range c.ICEServers() {
		if len(ice.URLs) > 0 && strings.HasPrefix(ice.URLs[0], "turn") {
			cred, _ := ice.Credential.(string)
			return c.User().UserID, ice.URLs, ice.Username, cred
		}
	}
	t.Fatalf("no TURN server in hello: %+v", c.ICEServers())
	return "", nil, "", ""
}

// TestEmbeddedTURNCredentials: every participant gets the embedded relay
// (UDP and TCP URLs) with credentials of its own that expire in a day and
// that the relay accepts for an allocation.
func TestEmbeddedTURNCredentials(t *testing.T) {
	s := servertest.Start(t, servertest.WithTURN())
	userID, urls, username, password := iceServers(t, s)
	if len(urls) != 2 || !strings.HasSuffix(urls[0], "?transport=udp") || !strings.HasSuffix(urls[1], "?transport=tcp") {
		t.Fatalf("TURN URLs %q, want udp and tcp", urls)
	}
	expiry, user, ok := strings.Cut(username, ":")
	exp, err := strconv.ParseInt(expiry, 10, 64)
	if !ok || err != nil || user != userID {
		t.Fatalf("username %q, want EXPIRY:%s", username, userID)
	}
	if d := time.Until(time.Unix(exp, 0)); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("credentials expire in %v, want about 24h", d)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(urls[0], "turn:"), "?transport=udp")
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := allocate(addr, conn, username, password); err != nil {
		t.Fatalf("the relay refused the credentials it handed out: %v", err)
	}
	_, metrics := s.Get(s.Client(), "/metrics")
	if !strings.Contains(metrics, "parley_turn_allocations_total 1") {
		t.Errorf("/metrics does not count the allocation")
	}
}

// TestExternalTURN: with --turn-url and --turn-secret, participants get
// those URLs with credentials a coturn using the same static-auth-secret
// accepts: password = base64(HMAC-SHA1(secret, username)).
func TestExternalTURN(t *testing.T) {
	const secret = "coturn shared secret"
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.TURNURLs = []string{"turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349?transport=tcp"}
		c.TURN = "external"
		c.TURNSecret = secret
	}))
	_, urls, username, password := iceServers(t, s)
	if len(urls) != 2 || urls[0] != "turn:turn.example.org:3478?transport=udp" {
		t.Errorf("URLs %q, want the configured ones", urls)
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); password != want {
		t.Errorf("password %q, want HMAC-SHA1 of %q: %q", password, username, want)
	}
}

// TestTURNSecretKept: the embedded relay's secret is made once and kept in
// the data directory, so credentials stay valid across a restart.
func TestTURNSecretKept(t *testing.T) {
	s := servertest.Start(t, servertest.WithTURN())
	_, _, username, password := iceServers(t, s)
	s.Restart()
	mac := hmac.New(sha1.New, []byte(readSecret(t, s.Config.DataDir)))
	mac.Write([]byte(username))
	if base64.StdEncoding.EncodeToString(mac.Sum(nil)) != password {
		t.Error("the credentials handed out before the restart do not match the kept secret")
	}
}

func readSecret(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "turn-secret"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestTURNOverTLS: with --turn-tls-addr the relay also speaks turns: with
// the HTTPS certificate; participants get a turns: URL, and a client
// allocates over TLS with its credentials.
func TestTURNOverTLS(t *testing.T) {
	s := servertest.Start(t, servertest.WithTURN(), servertest.WithConfig(func(c *config.Config) {
		c.TLS = "self-signed"
		c.TURNTLSAddr = "127.0.0.1:0"
	}))
	_, urls, username, password := iceServers(t, s)
	var turns string
	for _, u := range urls {
		if strings.HasPrefix(u, "turns:") {
			turns = u
		}
	}
	if turns == "" {
		t.Fatalf("no turns: URL in %q", urls)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(turns, "turns:"), "?transport=tcp")
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the self-signed certificate
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer conn.Close()
	if err := allocate(addr, turn.NewSTUNConn(conn), username, password); err != nil {
		t.Fatalf("allocation over TLS: %v", err)
	}
}

// allocate makes (and ends) one TURN allocation over conn.
func allocate(addr string, conn net.PacketConn, username, password string) error {
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr, Username: username,
		Password: password, Realm: "parley", Conn: conn})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		return err
	}
	relay, err := c.Allocate()
	if err != nil {
		return err
	}
	return relay.Close()
}

// TestTURNRefusesUserWithoutChannel: TURN credentials handed to a member
// stop working on the embedded relay once the user is removed from their
// last channel, although they have not expired; a member's keep working.
func TestTURNRefusesUserWithoutChannel(t *testing.T) {
	s := servertest.Start(t, servertest.WithTURN())
	_, urls, annUser, annPass := iceServers(t, s) // Ann, who owns a channel
	addr := strings.TrimSuffix(strings.TrimPrefix(urls[0], "turn:"), "?transport=udp")
	ann := s.Client()
	if resp, _ := s.PostForm(ann, "/login", url.Values{"username": {"ann"}, "password": {servertest.Password}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("log in: %d", resp.StatusCode)
	}
	s.SignUp("bob", "Bob")
	ch := s.CreateChannel(ann, "Bob's only channel")
	s.AddMember(ann, ch, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bob, err := client.Dial(ctx, client.Config{URL: s.URL + "/c/" + ch, Token: s.Token("bob"), LoopbackOnly: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var bobUser, bobPass string
	for _, ice := range bob.ICEServers() {
		if len(ice.URLs) > 0 && strings.HasPrefix(ice.URLs[0], "turn") {
			bobUser = ice.Username
			bobPass, _ = ice.Credential.(string)
		}
	}
	if bobUser == "" {
		t.Fatal("no TURN credentials for a member")
	}
	try := func(username, password string) error {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return allocate(addr, conn, username, password)
	}
	if err := try(bobUser, bobPass); err != nil {
		t.Fatalf("a member's credentials refused: %v", err)
	}
	if resp, _ := s.PostForm(ann, "/c/"+ch+"/members/"+bob.User().UserID+"/remove", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove Bob: %d", resp.StatusCode)
	}
	if err := try(bobUser, bobPass); err == nil {
		t.Error("the relay still serves a user removed from every channel")
	}
	if err := try(annUser, annPass); err != nil {
		t.Errorf("a member's credentials refused: %v", err)
	}
}
