package client_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/client"
	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/testtool"
)

// relayCall puts two native clients that may only use relay candidates in
// a peer-to-peer call on s and waits until each receives the other's audio
// and video.
func relayCall(t *testing.T, s *servertest.Server) {
	t.Helper()
	owner := s.SignUp("ada", "Ada")
	s.SignUp("bob", "Bob")
	ch := s.CreateChannel(owner, "Relayed")
	s.AddMember(owner, ch, "bob")
	// Pinned to peer-to-peer: the relay, not the SFU, carries the media.
	if resp, _ := s.PostForm(owner, "/c/"+ch+"/mode", map[string][]string{"mode": {"p2p"}}); resp.StatusCode != 303 {
		t.Fatalf("pin the channel to p2p: status %d", resp.StatusCode)
	}
	cfg := client.Config{Audio: opus, Video: vp8, RelayOnly: true}
	a := start(t, s, ch, "ada", cfg)
	b := start(t, s, ch, "bob", cfg)
	testtool.Eventually(t, 30*time.Second, func() bool {
		return a.got.kinds(nil) == 2 && b.got.kinds(nil) == 2
	}, "audio and video both ways through the relay")
	for name, r := range map[string]*running{"ada": a, "bob": b} {
		if st := r.c.Stats(); st.Relayed != 1 {
			t.Errorf("%s: %d of %d connections relayed, want the one", name, st.Relayed, st.Connections)
		}
	}
}

// TestCallThroughEmbeddedTURN: two clients restricted to relay candidates
// talk through Parley's own TURN relay.
func TestCallThroughEmbeddedTURN(t *testing.T) {
	s := servertest.Start(t, servertest.WithTURN())
	relayCall(t, s)
	_, metrics := s.Get(s.Client(), "/metrics")
	if !strings.Contains(metrics, "parley_turn_allocations_total") || strings.Contains(metrics, "parley_turn_allocations_total 0") {
		t.Error("no TURN allocation counted")
	}
}

// TestCallThroughCoturn: Parley configured with --turn-url and
// --turn-secret hands out credentials for a coturn (started here on
// loopback with use-auth-secret), and two clients restricted to relay
// candidates talk through it.
func TestCallThroughCoturn(t *testing.T) {
	turnserver := testtool.Find(t, "coturn", "turnserver")
	port := freeUDPPort(t)
	const secret = "coturn test secret"
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, turnserver, "-n", "--no-cli", "--no-tls", "--no-dtls", "--log-file=stdout", "--simple-log",
		"--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", fmt.Sprintf("--listening-port=%d", port),
		"--min-port=51000", "--max-port=51999", "--allow-loopback-peers", "--realm=parley",
		"--use-auth-secret", "--static-auth-secret="+secret, "--no-rfc5780", "--no-stun-backward-compatibility")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	ready := make(chan struct{})
	lines := make(chan string, 1000) // coturn's log, for a failure message
	go func() {
		sc := bufio.NewScanner(out)
		once := false
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
			if !once && strings.Contains(sc.Text(), "Total General servers") {
				once = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		var log strings.Builder
		for len(lines) > 0 {
			log.WriteString(<-lines + "\n")
		}
		t.Fatalf("coturn did not start:\n%s", log.String())
	}

	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.TURN = "external"
		c.TURNURLs = []string{fmt.Sprintf("turn:127.0.0.1:%d?transport=udp", port)}
		c.TURNSecret = secret
	}))
	relayCall(t, s)
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
