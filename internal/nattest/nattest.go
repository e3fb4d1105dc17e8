// Package nattest builds small networks out of Linux network namespaces
// for NAT traversal tests: a server on a public segment, and two clients
// each behind a NAT router of its own, all joined by a "wan" namespace
// that routes between them. Nothing in them can reach the host's own
// network: the wan knows only the test's segments, the public addresses
// are from the documentation ranges (TEST-NET-1, -2 and -3) and the LANs
// behind the routers are in 10/8.
//
//	client A 10.1.0.2 ── router A 10.1.0.1 | 198.51.100.2 ──┐
//	                                                          wan ── server 203.0.113.10
//	client B 10.2.0.2 ── router B 10.2.0.1 | 192.0.2.2    ──┘
//
// The routers masquerade with random source ports, so each new
// destination gets a new public port: symmetric NATs, which STUN cannot
// see through. Options.BlockUDP makes them drop forwarded UDP as well.
//
// Building one needs root and iproute2 and iptables; without them a test
// skips loudly (fails under PARLEY_REQUIRE_ALL=1). Namespace names carry
// a random suffix, and the namespaces, their links and every process
// started in them are removed when the test ends, pass or fail. A test
// binary killed by -timeout runs no cleanups: its processes die with it
// (parent-death signal), its namespaces stay; `ip netns list | grep
// ^pnat` shows them and `ip netns del NAME` removes each.
package nattest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley/parley/internal/testtool"
)

// Addresses of the topology.
const (
	ServerIP = "203.0.113.10"
	wanIP    = "203.0.113.1" // the server's gateway
)

// Options vary the topology.
type Options struct {
	// BlockUDP makes both routers drop forwarded UDP (networks that let
	// only TCP out): only TURN over TCP can carry media.
	BlockUDP bool
}

// Host is one namespace of the topology.
type Host struct {
	// NS is the namespace's name.
	NS string
	// IP is its address: for a router the public (wan side) one.
	IP string
}

// Net is a built topology.
type Net struct {
	Server  *Host
	Routers [2]*Host
	Clients [2]*Host
	Wan     *Host
}

// Require skips t (fails it under PARLEY_REQUIRE_ALL=1) unless it can
// build namespaces: root, ip and iptables.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		msg := fmt.Sprintf("*** not root: %s NOT RUN. NAT traversal tests build network namespaces; run them as root. ***", t.Name())
		if os.Getenv("PARLEY_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	testtool.Find(t, "iproute2", "ip")
	testtool.Find(t, "iptables", "iptables")
}

// New builds the topology; it is torn down when t ends.
func New(t testing.TB, opt Options) *Net {
	t.Helper()
	Require(t)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	prefix := "pnat" + hex.EncodeToString(suffix)
	mk := func(role, ip string) *Host {
		h := &Host{NS: prefix + "-" + role, IP: ip}
		ipcmd(t, "netns", "add", h.NS)
		t.Cleanup(func() { h.remove(t) })
		ipcmd(t, "-n", h.NS, "link", "set", "lo", "up")
		return h
	}
	n := &Net{}
	n.Wan = mk("wan", wanIP)
	n.Server = mk("srv", ServerIP)
	n.Wan.forward(t)
	link(t, n.Wan, "srv", wanIP+"/24", n.Server, "wan0", ServerIP+"/24")
	ipcmd(t, "-n", n.Server.NS, "route", "add", "default", "via", wanIP)

	public := [2][2]string{{"198.51.100.2", "198.51.100.1"}, {"192.0.2.2", "192.0.2.1"}}
	for i := range 2 {
		lan := fmt.Sprintf("10.%d.0", i+1)
		r := mk(fmt.Sprintf("r%d", i+1), public[i][0])
		c := mk(fmt.Sprintf("c%d", i+1), lan+".2")
		link(t, n.Wan, fmt.Sprintf("r%d", i+1), public[i][1]+"/24", r, "wan0", public[i][0]+"/24")
		link(t, r, "lan0", lan+".1/24", c, "eth0", lan+".2/24")
		ipcmd(t, "-n", r.NS, "route", "add", "default", "via", public[i][1])
		ipcmd(t, "-n", c.NS, "route", "add", "default", "via", lan+".1")
		r.forward(t)
		// --random: a fresh random public port for every new flow, so the
		// port a STUN server sees is not the one a peer would see.
		r.Run(t, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE", "--random")
		if opt.BlockUDP {
			r.Run(t, "iptables", "-A", "FORWARD", "-p", "udp", "-j", "DROP")
		}
		n.Routers[i], n.Clients[i] = r, c
	}
	return n
}

// link joins a and b with a veth pair made inside them (the host's
// namespace never sees it) and brings both ends up.
func link(t testing.TB, a *Host, aif, aaddr string, b *Host, bif, baddr string) {
	t.Helper()
	ipcmd(t, "-n", a.NS, "link", "add", aif, "type", "veth", "peer", "name", bif, "netns", b.NS)
	ipcmd(t, "-n", a.NS, "addr", "add", aaddr, "dev", aif)
	ipcmd(t, "-n", b.NS, "addr", "add", baddr, "dev", bif)
	ipcmd(t, "-n", a.NS, "link", "set", aif, "up")
	ipcmd(t, "-n", b.NS, "link", "set", bif, "up")
}

// forward turns IPv4 forwarding on (a namespace's /proc/sys/net is its own).
func (h *Host) forward(t testing.TB) {
	t.Helper()
	h.Run(t, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
}

func ipcmd(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// remove ends whatever still runs in the namespace (only this test's
// processes can be there) and deletes it with its links.
func (h *Host) remove(t testing.TB) {
	out, _ := exec.Command("ip", "netns", "pids", h.NS).Output()
	for _, f := range strings.Fields(string(out)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for range 20 {
		out, err := exec.Command("ip", "netns", "del", h.NS).CombinedOutput()
		if err == nil {
			return
		}
		if strings.Contains(string(out), "No such file") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("could not delete network namespace %s: remove it with `ip netns del %s`", h.NS, h.NS)
}

// Command is name run inside the namespace.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Run runs name inside the namespace and returns its output; it fails t
// if the command fails.
func (h *Host) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := h.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("in %s: %s %s: %v\n%s", h.NS, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Line is one line a process printed, and when.
type Line struct {
	At   time.Duration // since the process started
	Text string
}

// Proc is a process started in a namespace, with its output kept.
type Proc struct {
	Name   string
	cmd    *exec.Cmd
	start  time.Time
	stdout lines
	stderr lines
	done   chan struct{}
	err    error // after done
}

// Start starts cmd (from Host.Command), keeping its output. It is
// stopped when t ends if it still runs; if t failed, the end of its
// stderr goes to the test log.
func Start(t testing.TB, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	p.stdout.p, p.stderr.p = p, p
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	// Its own process group, so stopping it reaches anything it started;
	// and killed with the test binary if that dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s stderr (last lines):\n%s", name, tail(p.Stderr(), 60))
		}
	})
	return p
}

// Stop ends the process: SIGTERM, then SIGKILL after 5 s.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Wait waits up to timeout for the process to end, killing it after
// that; it returns how it ended.
func (p *Proc) Wait(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		p.Stop()
		return fmt.Errorf("%s still running after %v: killed", p.Name, timeout)
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stdout is what the process printed on stdout so far.
func (p *Proc) Stdout() string { return p.stdout.String() }

// Stderr is what the process printed on stderr so far.
func (p *Proc) Stderr() string { return p.stderr.String() }

// StdoutLines are the complete stdout lines so far.
func (p *Proc) StdoutLines() []Line { return p.stdout.Lines() }

// StderrLines are the complete stderr lines so far.
func (p *Proc) StderrLines() []Line { return p.stderr.Lines() }

// WaitLine waits up to timeout for a stdout or stderr line containing
// s, and returns it.
func (p *Proc) WaitLine(s string, timeout time.Duration) (Line, bool) {
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range append(p.StdoutLines(), p.StderrLines()...) {
			if strings.Contains(l.Text, s) {
				return l, true
			}
		}
		if p.Exited() || time.Now().After(deadline) {
			return Line{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lines is an output stream, split into timestamped lines as it arrives.
type lines struct {
	p    *Proc
	mu   sync.Mutex
	all  bytes.Buffer
	part []byte
	done []Line
}

func (l *lines) Write(b []byte) (int, error) {
	at := time.Since(l.p.start)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(b)
	l.part = append(l.part, b...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		l.done = append(l.done, Line{At: at, Text: string(l.part[:i])})
		l.part = l.part[i+1:]
	}
	return len(b), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

func (l *lines) Lines() []Line {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Line(nil), l.done...)
}

func tail(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
