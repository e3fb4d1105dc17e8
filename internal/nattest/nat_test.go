package nattest

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/turnserver"
)

// The tests run in parallel, each in a topology of its own.

// Both behind symmetric NATs with STUN but no TURN: the public ports the
// STUN server sees are not the ones the peer would have to use, so no
// candidate pair can work. Both sides must say so, in words, well before
// they leave, and receive nothing.
func TestSymmetricNATsWithoutTURNFail(t *testing.T) {
	t.Parallel()
	n := New(t, Options{})
	stunA, stunB := ServerIP+":3479", ServerIP+":3480"
	stunSrv := Start(t, "stun", helper(n.Server, "stun", stunA, stunB))
	for _, a := range []string{stunA, stunB} {
		if _, ok := stunSrv.WaitLine("listening "+a, 5*time.Second); !ok {
			t.Fatalf("the STUN helper did not start:\n%s", stunSrv.Stderr())
		}
	}

	// First, the NAT is symmetric: one socket behind router A, two
	// destinations, two different public ports.
	out, err := helper(n.Clients[0], "probe", stunA, stunB).CombinedOutput()
	if err != nil {
		t.Fatalf("STUN probe from client A: %v\n%s", err, out)
	}
	var mapped []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "mapped" {
			mapped = append(mapped, f[2])
		}
	}
	if len(mapped) != 2 {
		t.Fatalf("probe printed %q", out)
	}
	hostA, portA, _ := net.SplitHostPort(mapped[0])
	hostB, portB, _ := net.SplitHostPort(mapped[1])
	if hostA != n.Routers[0].IP || hostB != n.Routers[0].IP {
		t.Errorf("STUN saw client A as %v, want router A's public address %s", mapped, n.Routers[0].IP)
	}
	if portA == portB {
		t.Errorf("router A kept public port %s for two destinations: not a symmetric NAT", portA)
	}
	t.Logf("router A maps one client socket to %s and %s: symmetric", mapped[0], mapped[1])

	s := startServer(t, n, "--turn", "off", "--ice-server", "stun:"+stunA)
	const d = 22 * time.Second // the ICE timeouts (internal/client) fail a connection 15 s after checks begin
	rs := waitBoth(t, joinBoth(t, s, d), d)
	for i, r := range rs {
		switch {
		case r.connected >= 0:
			t.Errorf("%s connected through two symmetric NATs without TURN: %q", names[i], r.connectedText)
		case r.failed < 0:
			t.Errorf("%s never reported the connection failed within %v", names[i], d)
		default:
			t.Logf("no TURN: %s: %q at %.1f s (%.1f s after both joined)",
				names[i], r.failedText, r.failed.Seconds(), (r.failed - max(rs[0].joined, rs[1].joined)).Seconds())
			if !strings.Contains(r.failedText, "ICE failed") || !strings.Contains(r.failedText, "TURN") {
				t.Errorf("%s's failure does not say why and what would help: %q", names[i], r.failedText)
			}
		}
		if r.received != 0 {
			t.Errorf("%s received %d packets (summary %q), want 0", names[i], r.received, r.summary)
		}
	}
	// Both gathered server-reflexive candidates: STUN was there and did
	// not help.
	for i, r := range n.Routers {
		if !strings.Contains(stunSrv.Stdout(), "binding "+stunA+" from "+r.IP+":") {
			t.Errorf("the STUN server never heard from %s's router (%s): did the client use it?", names[i], r.IP)
		}
	}
}

// Both behind symmetric NATs, with the embedded TURN relay: the call
// connects through it and the tone flows both ways.
func TestSymmetricNATsConnectThroughTURN(t *testing.T) {
	t.Parallel()
	throughTURN(t, Options{}, "symmetric NATs, TURN")
}

// Both routers drop all UDP: only TURN over TCP gets out, and the call
// still connects with the tone flowing both ways.
func TestUDPBlockedConnectsThroughTURNOverTCP(t *testing.T) {
	t.Parallel()
	throughTURN(t, Options{BlockUDP: true}, "UDP blocked, TURN over TCP")
}

func throughTURN(t *testing.T, opt Options, what string) {
	n := New(t, opt)
	s := startServer(t, n)
	const d = 15 * time.Second
	ps := joinBoth(t, s, d)
	for i, p := range ps {
		if _, ok := p.WaitLine(": connected", d); !ok {
			t.Errorf("%s did not connect within %v", names[i], d)
		}
	}
	if opt.BlockUDP && !t.Failed() {
		// Mid-call: each client holds a TURN connection over TCP.
		conns := n.Server.Run(t, "ss", "-Htn", "state", "established", "sport", "=", ":3478")
		for i, r := range n.Routers {
			if !strings.Contains(conns, r.IP+":") {
				t.Errorf("no TURN-over-TCP connection from %s's router %s; established on :3478:\n%s", names[i], r.IP, conns)
			}
		}
	}
	rs := waitBoth(t, ps, d)
	for i, r := range rs {
		if r.failed >= 0 {
			t.Errorf("%s: %q", names[i], r.failedText)
		}
		// 15 s of a 50 packet/s tone, less the setup.
		if r.received <= 300 {
			t.Errorf("%s received %d packets, want > 300 (summary %q)", names[i], r.received, r.summary)
		}
		if r.connected >= 0 {
			t.Logf("%s: %s connected %.2f s after both joined (%.2f s after start; %q), received %d packets",
				what, names[i], iceTime(rs, i).Seconds(), r.connected.Seconds(), r.connectedText, r.received)
		}
	}
	if b := s.metric(t, "parley_turn_relayed_bytes_total"); b == 0 {
		t.Errorf("the TURN relay relayed nothing: did media take another path?")
	} else {
		t.Logf("%s: the relay carried %.0f KiB in %.0f allocations", what, b/1024, s.metric(t, "parley_turn_allocations_total"))
	}
	if opt.BlockUDP {
		for i, r := range n.Routers {
			if dropped := udpDropped(t, r); dropped == 0 {
				t.Errorf("%s's router dropped no UDP: was UDP blocked?", names[i])
			} else {
				t.Logf("%s: %s's router dropped %d UDP packets", what, names[i], dropped)
			}
		}
	}
}

// udpDropped is the packet count of the router's UDP DROP rule.
func udpDropped(t *testing.T, r *Host) int {
	t.Helper()
	for _, l := range strings.Split(r.Run(t, "iptables", "-L", "FORWARD", "-v", "-n", "-x"), "\n") {
		// -n shows the protocol as its number (17) in newer iptables.
		if f := strings.Fields(l); len(f) > 3 && f[2] == "DROP" && (f[3] == "udp" || f[3] == "17") {
			n, _ := strconv.Atoi(f[0])
			return n
		}
	}
	return 0
}

// TestOutageRecoversByICERestart: a call through TURN loses every media
// path for longer than the ICE failure timeout (client A's router drops
// all UDP and TURN-over-TCP; signaling, on the web port, stays up); both
// sides report the failure, one restarts ICE by itself, and when the
// network is back both reconnect and the tone flows again.
func TestOutageRecoversByICERestart(t *testing.T) {
	t.Parallel()
	n := New(t, Options{})
	s := startServer(t, n)
	const d = 40 * time.Second
	ps := joinBoth(t, s, d)
	for i, p := range ps {
		if _, ok := p.WaitLine(": connected", 20*time.Second); !ok {
			t.Fatalf("%s did not connect", names[i])
		}
	}
	router := n.Routers[0]
	outage := [][]string{{"-p", "udp", "-j", "DROP"}, {"-p", "tcp", "--dport", "3478", "-j", "DROP"}}
	for _, rule := range outage {
		router.Run(t, "iptables", append([]string{"-I", "FORWARD"}, rule...)...)
	}
	cut := time.Now()
	for i, p := range ps {
		if _, ok := p.WaitLine(": failed", 25*time.Second); !ok {
			t.Fatalf("%s did not notice the outage", names[i])
		}
	}
	for _, rule := range outage {
		router.Run(t, "iptables", append([]string{"-D", "FORWARD"}, rule...)...)
	}
	healed := time.Now()
	t.Logf("outage: both sides reported failure %.1f s after the cut", healed.Sub(cut).Seconds())
	for i, p := range ps {
		if !waitSecondConnect(p, 25*time.Second) {
			t.Fatalf("%s did not reconnect after the network came back:\n%s", names[i], tail(p.Stderr(), 20))
		}
		t.Logf("%s reconnected %.1f s after the network came back", names[i], time.Since(healed).Seconds())
	}
	rs := waitBoth(t, ps, d)
	restarted := 0
	for i, r := range rs {
		if strings.Contains(ps[i].Stderr(), "restarting ICE") {
			restarted++
		}
		if r.received <= 300 {
			t.Errorf("%s received %d packets, want > 300 (summary %q)", names[i], r.received, r.summary)
		}
	}
	// One side (the impolite one) restarts; both would collide.
	if restarted != 1 {
		t.Errorf("%d sides restarted ICE, want exactly one", restarted)
	}
}

// waitSecondConnect waits for a "connected" event after the first one.
func waitSecondConnect(p *Proc, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n := 0
		for _, l := range p.StderrLines() {
			if strings.Contains(l.Text, ": connected") {
				n++
			}
		}
		if n >= 2 {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// TestRelayRefusesPrivatePeer: Parley's relay (default policy) will not
// relay to a private address: a client behind router B asks it to reach
// client A's LAN address 10.1.0.2, a namespace this test made, so nothing
// could leave the machine even if the check failed. The permission is
// refused, counted in /metrics, and the listener there gets nothing; a
// public peer (the server's own address) is allowed.
func TestRelayRefusesPrivatePeer(t *testing.T) {
	t.Parallel()
	n := New(t, Options{})
	s := startServer(t, n)
	secret, err := os.ReadFile(filepath.Join(s.dataDir, "turn-secret"))
	if err != nil {
		t.Fatal(err)
	}
	// A member's credentials: the relay serves only users in a channel.
	user, pass, _ := turnserver.Credentials(strings.TrimSpace(string(secret)), s.setup.BobID, time.Hour)
	const peerAddr = "10.1.0.2:40000"
	listener := Start(t, "listener (client A)", helper(n.Clients[0], "listen", peerAddr, "6s"))
	if _, ok := listener.WaitLine("listening", 10*time.Second); !ok {
		t.Fatalf("listener did not start:\n%s", listener.Stderr())
	}
	turnAddr := ServerIP + ":3478"
	out, err := helper(n.Clients[1], "relayto", turnAddr, user, pass, peerAddr).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "refused" {
		t.Fatalf("relaying to %s: %q, %v; want refused", peerAddr, out, err)
	}
	if err := listener.Wait(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(listener.Stdout(), "received 0") {
		t.Errorf("the private peer got packets through the relay: %q", listener.Stdout())
	}
	if m := labelled(t, s, `parley_turn_refused_total{reason="private"}`); m < 1 {
		t.Errorf("refusal not counted: parley_turn_refused_total{reason=\"private\"} = %v", m)
	}
	out, err = helper(n.Clients[1], "relayto", turnAddr, user, pass, ServerIP+":9").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "sent" {
		t.Errorf("relaying to a public address: %q, %v; want sent", out, err)
	}
}

// labelled reads one labelled sample from the server's /metrics.
func labelled(t *testing.T, s *server, sample string) float64 {
	t.Helper()
	out, err := helper(s.n.Server, "get", s.base+"/metrics").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// TestSFUOutageRecovers: the same outage in a call pinned to the SFU. The
// server notices its connections with client A failed, makes new ones and
// tells A to start again (sfu-restart); once the network is back, A's
// media reaches B again through the SFU.
func TestSFUOutageRecovers(t *testing.T) {
	t.Parallel()
	n := New(t, Options{})
	s := startServerMode(t, n, "sfu")
	const d = 50 * time.Second
	ps := joinBoth(t, s, d)
	for i, p := range ps {
		if _, ok := p.WaitLine("media server connection (sub): connected", 20*time.Second); !ok {
			t.Fatalf("%s did not connect to the SFU:\n%s", names[i], tail(p.Stderr(), 20))
		}
	}
	router := n.Routers[0]
	// Everything but the web port (signaling) is dropped: the SFU's UDP
	// and ICE-TCP ports, and TURN. Inserted in this order, the ACCEPTs
	// end up above the DROP.
	outage := [][]string{{"-j", "DROP"}, {"-p", "tcp", "--sport", "8080", "-j", "ACCEPT"}, {"-p", "tcp", "--dport", "8080", "-j", "ACCEPT"}}
	for _, rule := range outage {
		router.Run(t, "iptables", append([]string{"-I", "FORWARD"}, rule...)...)
	}
	if _, ok := ps[0].WaitLine("the media server connection is starting again", 30*time.Second); !ok {
		t.Fatalf("Alice was never told to start her SFU connections again:\n%s", tail(ps[0].Stderr(), 20))
	}
	if r := inRate(ps[1]); r >= 10 {
		t.Fatalf("Bob still receives %d kbit/s during the outage: the outage did not cut the media", r)
	}
	for _, rule := range outage {
		router.Run(t, "iptables", append([]string{"-D", "FORWARD"}, rule...)...)
	}
	healed := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for inRate(ps[1]) < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("Bob receives nothing after the network came back:\n%s", tail(ps[0].Stderr(), 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("SFU outage: Alice's media reached Bob again %.1f s after the network came back", time.Since(healed).Seconds())
}

var inRE = regexp.MustCompile(`in (\d+) kbit/s`)

// inRate is the receive bitrate on p's latest status line (kbit/s).
func inRate(p *Proc) int {
	segs := strings.Split(p.Stderr(), "\r\033[K")
	for i := len(segs) - 1; i >= 0; i-- {
		if m := inRE.FindStringSubmatch(segs[i]); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	return 0
}
