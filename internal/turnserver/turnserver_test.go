package turnserver_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley/parley/internal/testtool"
	"github.com/parley/parley/internal/turnserver"
)

const secret = "test secret"

func start(t *testing.T, allowPrivate bool, mod func(*turnserver.Config)) (*turnserver.Server, string) {
	t.Helper()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := turnserver.Config{Secret: secret, UDP: udp, RelayIP: net.IPv4(127, 0, 0, 1), RelayBind: "127.0.0.1",
		AllowPrivate: allowPrivate}
	if mod != nil {
		mod(&cfg)
	}
	s, err := turnserver.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, udp.LocalAddr().String()
}

// client allocates a relay on the server as user, with the credentials
// Parley hands out.
func client(t *testing.T, s *turnserver.Server, addr, user string) (*turn.Client, net.PacketConn, error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	username, password, _ := s.Credentials(user)
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr,
		Username: username, Password: password, Realm: "parley", Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err == nil {
		t.Cleanup(func() { relay.Close() })
	}
	return c, relay, err
}

func peer(t *testing.T) *net.UDPConn {
	t.Helper()
	p, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestRelay: a client with REST credentials allocates and relays data to
// a peer and back (peers on loopback allowed, as on a LAN deployment).
func TestRelay(t *testing.T) {
	s, addr := start(t, true, nil)
	_, relay, err := client(t, s, addr, "alice")
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	p := peer(t)
	if _, err := relay.WriteTo([]byte("hello peer"), p.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	_ = p.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := p.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello peer" {
		t.Fatalf("peer got %q, %v", buf[:n], err)
	}
	if from.String() != relay.LocalAddr().String() {
		t.Errorf("data came from %v, want the relay address %v", from, relay.LocalAddr())
	}
	if _, err := p.WriteTo([]byte("hello client"), from); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err = relay.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello client" || from.String() != p.LocalAddr().String() {
		t.Fatalf("client got %q from %v, %v", buf[:n], from, err)
	}
}

// TestBadCredentials: a wrong password or an expired credential gets no
// allocation, and is counted.
func TestBadCredentials(t *testing.T) {
	s, addr := start(t, true, nil)
	for name, creds := range map[string][2]string{
		"wrong password":  {mustUser(s, "bob"), "not the password"},
		"expired":         expired("bob"),
		"not REST-shaped": {"bob", "whatever"},
	} {
		conn, _ := net.ListenPacket("udp4", "127.0.0.1:0")
		c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr,
			Username: creds[0], Password: creds[1], Realm: "parley", Conn: conn})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Listen(); err != nil {
			t.Fatal(err)
		}
		if relay, err := c.Allocate(); err == nil {
			relay.Close()
			t.Errorf("%s: allocation granted", name)
		}
		c.Close()
		conn.Close()
	}
	if n := s.Refused("auth"); n < 3 {
		t.Errorf("%v auth refusals counted, want 3", n)
	}
}

func mustUser(s *turnserver.Server, user string) string {
	u, _, _ := s.Credentials(user)
	return u
}

func expired(user string) [2]string {
	u, p, _ := turnserver.Credentials(secret, user, -time.Hour)
	return [2]string{u, p}
}

// TestNotAnOpenRelay: by default the relay refuses loopback, private,
// link-local (cloud metadata) and multicast peers; the refusal is counted
// and nothing reaches the loopback peer. The non-loopback addresses are
// only asked for permission (CreatePermission), never sent to, so nothing
// could leave this machine even if the check failed.
func TestNotAnOpenRelay(t *testing.T) {
	s, addr := start(t, false, nil)
	c, relay, err := client(t, s, addr, "mallory")
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	p := peer(t)
	_, _ = relay.WriteTo([]byte("let me in"), p.LocalAddr()) // the permission request is refused
	_ = p.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, _, err := p.ReadFrom(make([]byte, 100)); err == nil {
		t.Fatalf("the loopback peer received %d bytes through the relay", n)
	}
	for ip, reason := range map[string]string{
		"10.203.0.2": "private", "192.168.1.10": "private", "169.254.169.254": "link_local",
		"224.0.0.251": "multicast", "100.64.1.1": "shared",
	} {
		before := s.Refused(reason)
		if err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP(ip), Port: 9}); err == nil {
			t.Errorf("permission to %s granted", ip)
		}
		if s.Refused(reason) <= before {
			t.Errorf("refusing %s not counted as %q", ip, reason)
		}
	}
	if s.Refused("loopback") == 0 {
		t.Error("the loopback refusal was not counted")
	}
	// A public address is fine (permission only: nothing is sent).
	if err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP("203.0.113.7"), Port: 9}); err != nil {
		t.Errorf("permission to a public address refused: %v", err)
	}
}

// TestQuota: a user gets MaxAllocationsPerUser allocations, then 486.
func TestQuota(t *testing.T) {
	s, addr := start(t, true, func(c *turnserver.Config) { c.MaxAllocationsPerUser = 2 })
	for i := range 2 {
		if _, _, err := client(t, s, addr, "greedy"); err != nil {
			t.Fatalf("allocation %d: %v", i+1, err)
		}
	}
	if _, _, err := client(t, s, addr, "greedy"); err == nil || !strings.Contains(err.Error(), "486") {
		t.Errorf("third allocation: %v, want quota reached (486)", err)
	}
	if _, _, err := client(t, s, addr, "someone-else"); err != nil {
		t.Errorf("another user's allocation: %v", err)
	}
	if s.Refused("quota") != 1 {
		t.Errorf("quota refusals %v, want 1", s.Refused("quota"))
	}
}

// TestBandwidthLimit: relayed data beyond the user's budget is dropped.
func TestBandwidthLimit(t *testing.T) {
	s, addr := start(t, true, func(c *turnserver.Config) { c.UserBitsPerSecond = 8 * 100_000 }) // 100 kB/s, 64 kB burst
	_, relay, err := client(t, s, addr, "streamer")
	if err != nil {
		t.Fatal(err)
	}
	p := peer(t)
	_ = p.SetReadBuffer(4 << 20)
	msg := make([]byte, 1000)
	for range 300 { // 300 kB at once: far over the burst
		if _, err := relay.WriteTo(msg, p.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	buf := make([]byte, 2000)
	for {
		_ = p.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, _, err := p.ReadFrom(buf); err != nil {
			break
		}
		got++
	}
	if got == 0 || got > 150 {
		t.Errorf("peer received %d of 300 packets; want some, but no more than the burst allows", got)
	}
	if s.Refused("bandwidth") == 0 {
		t.Error("bandwidth drops not counted")
	}
}

func TestConfigErrors(t *testing.T) {
	udp, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	defer udp.Close()
	for name, cfg := range map[string]turnserver.Config{
		"no secret":   {UDP: udp, RelayIP: net.IPv4(127, 0, 0, 1)},
		"no relay IP": {Secret: "x", UDP: udp},
		"no socket":   {Secret: "x", RelayIP: net.IPv4(127, 0, 0, 1)},
		"bad ports":   {Secret: "x", UDP: udp, RelayIP: net.IPv4(127, 0, 0, 1), MinPort: 5000, MaxPort: 4000},
	} {
		if _, err := turnserver.New(cfg, nil, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestCoturnClient: coturn's own test client, turnutils_uclient, with the
// shared secret (TURN REST credentials, as coturn's use-auth-secret), makes
// allocations on Parley's relay and relays data between them without loss,
// over UDP and over TCP.
func TestCoturnClient(t *testing.T) {
	uclient := testtool.Find(t, "coturn", "turnutils_uclient")
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, addr := start(t, true, func(c *turnserver.Config) { c.TCP = ln })
	_, udpPort, _ := net.SplitHostPort(addr)
	_, tcpPort, _ := net.SplitHostPort(ln.Addr().String())
	for _, transport := range []string{"udp", "tcp"} {
		args := []string{"-W", secret, "-p", udpPort, "-y", "-n", "20", "-m", "2"}
		if transport == "tcp" {
			args = []string{"-W", secret, "-p", tcpPort, "-y", "-n", "20", "-m", "2", "-t"}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, uclient, append(args, "127.0.0.1")...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s: turnutils_uclient: %v\n%s", transport, err, out)
		}
		m := regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`).FindAllStringSubmatch(string(out), -1)
		if len(m) == 0 || !strings.Contains(string(out), "Total lost packets 0 (") {
			t.Fatalf("%s: turnutils_uclient did not relay everything:\n%s", transport, out)
		}
		last := m[len(m)-1]
		if last[1] == "0" || last[1] != last[2] {
			t.Errorf("%s: sent %s, received %s messages through the relay", transport, last[1], last[2])
		}
		t.Logf("%s: turnutils_uclient sent %s and received %s messages through Parley's relay", transport, last[1], last[2])
	}
}

// freeRange returns n consecutive UDP ports on loopback that were free a
// moment ago, for a relay port range of exactly that size.
func freeRange(t *testing.T, n int) (lo, hi uint16) {
	t.Helper()
	for base := 41000; base < 60000; base += 97 {
		var held []net.PacketConn
		for p := base; p < base+n; p++ {
			c, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				break
			}
			held = append(held, c)
		}
		for _, c := range held {
			c.Close()
		}
		if len(held) == n {
			return uint16(base), uint16(base + n - 1)
		}
	}
	t.Fatalf("no %d consecutive free UDP ports", n)
	return 0, 0
}

// gauge reads one gauge of reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestPortPoolLeavesRoomForOthers: on a small relay port range (8 ports),
// one user cannot take more than a quarter of it, however high
// MaxAllocationsPerUser is, while another user still gets a port; the
// pool's metrics count the ports held, and a released allocation gives
// its port back.
func TestPortPoolLeavesRoomForOthers(t *testing.T) {
	lo, hi := freeRange(t, 8)
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := turnserver.New(turnserver.Config{Secret: secret, UDP: udp, RelayIP: net.IPv4(127, 0, 0, 1), RelayBind: "127.0.0.1",
		AllowPrivate: true, MinPort: lo, MaxPort: hi, MaxAllocationsPerUser: 10}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	addr := udp.LocalAddr().String()
	if got := gauge(t, reg, "parley_turn_relay_ports"); got != 8 {
		t.Errorf("parley_turn_relay_ports = %v, want 8", got)
	}

	var relays []net.PacketConn
	for i := range 2 {
		_, relay, err := client(t, s, addr, "greedy")
		if err != nil {
			t.Fatalf("greedy's allocation %d: %v", i+1, err)
		}
		relays = append(relays, relay)
	}
	if _, _, err := client(t, s, addr, "greedy"); err == nil || !strings.Contains(err.Error(), "486") {
		t.Errorf("greedy's third allocation of 8 ports: %v, want quota reached (486)", err)
	}
	if _, _, err := client(t, s, addr, "modest"); err != nil {
		t.Errorf("another user's allocation while greedy is at their cap: %v", err)
	}
	if got := gauge(t, reg, "parley_turn_relay_ports_in_use"); got != 3 {
		t.Errorf("parley_turn_relay_ports_in_use = %v with 3 allocations, want 3", got)
	}
	if got := gauge(t, reg, "parley_turn_allocations"); got != 3 {
		t.Errorf("parley_turn_allocations = %v, want 3", got)
	}
	// Closing a relay deallocates it (Refresh with lifetime 0, which
	// pion's client sends without waiting for the answer).
	if err := relays[0].Close(); err != nil {
		t.Fatal(err)
	}
	portsHeld(t, s, 2, 5*time.Second)
	if got := gauge(t, reg, "parley_turn_relay_ports_in_use"); got != 2 {
		t.Errorf("parley_turn_relay_ports_in_use = %v after one deallocation, want 2", got)
	}
	if _, _, err := client(t, s, addr, "greedy"); err != nil {
		t.Errorf("greedy's allocation after giving one back: %v", err)
	}
}

// TestAbandonedAllocationFreesPort: an allocation whose client vanished
// without deallocating gives its port back once its lifetime runs out
// unrefreshed.
func TestAbandonedAllocationFreesPort(t *testing.T) {
	s, addr := start(t, true, func(c *turnserver.Config) { c.AllocationLifetime = time.Second })
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	username, password, _ := s.Credentials("gone")
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr,
		Username: username, Password: password, Realm: "parley", Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Allocate(); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.PortsInUse(); n != 1 {
		t.Fatalf("%d ports in use after one allocation", n)
	}
	// The client vanishes: no refresh, no deallocation.
	c.Close()
	conn.Close()
	portsHeld(t, s, 0, 5*time.Second)
}

// portsHeld waits until the server holds want relay ports: it frees them
// on its own timers, which the test cannot await otherwise.
func portsHeld(t *testing.T, s *turnserver.Server, want int, within time.Duration) {
	t.Helper()
	testtool.Eventually(t, within, func() bool {
		n, _ := s.PortsInUse()
		return n == want
	}, fmt.Sprintf("the relay to hold %d ports", want))
}

// TestAllowed: a user Config.Allowed refuses (no longer in any channel)
// gets no allocation with otherwise valid credentials, and is counted.
func TestAllowed(t *testing.T) {
	s, addr := start(t, true, func(c *turnserver.Config) { c.Allowed = func(user string) bool { return user != "removed" } })
	if _, _, err := client(t, s, addr, "removed"); err == nil {
		t.Error("allocation granted to a user Allowed refuses")
	}
	if _, _, err := client(t, s, addr, "member"); err != nil {
		t.Errorf("allocation of an allowed user: %v", err)
	}
	if s.Refused("not_allowed") == 0 {
		t.Error("the refusal was not counted")
	}
}
