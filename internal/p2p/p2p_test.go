package p2p

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley/parley/internal/testtool"
)

const tone = "../../testdata/tone.ogg"

func testLog(t *testing.T, side string) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})).With("side", side)
}

// testWriter sends log lines to t.Log, so they show only for failures;
// pion's goroutines may still log after the test, when t.Log would panic.
type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

// syncBuffer is a bytes.Buffer safe to write from Run and read in the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type result struct {
	sum Summary
	err error
}

func start(t *testing.T, p *Peer) <-chan result {
	c := make(chan result, 1)
	go func() {
		s, err := p.Run(context.Background())
		c <- result{s, err}
	}()
	return c
}

func await(t *testing.T, what string, c <-chan result) result {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not end", what)
		return result{}
	}
}

// TestCall: a listener and a dialer in this process, on loopback, each
// sending testdata/tone.ogg (looped) and recording what it receives for
// about 3 s. Each recording must be an Opus stream that ffprobe reads as
// lasting as long as audio flowed, within 10%.
func TestCall(t *testing.T) {
	ffprobe := requireTool(t, "ffprobe")
	const dur = 3 * time.Second
	var lstatus, dstatus syncBuffer
	ldir, ddir := t.TempDir(), t.TempDir()
	listener, err := New(Config{Listen: "127.0.0.1:0", SendAudio: tone, RecordDir: ldir, Duration: dur,
		Loopback: true, Status: &lstatus}, testLog(t, "listener"))
	if err != nil {
		t.Fatal(err)
	}
	lres := start(t, listener)
	dialer, err := New(Config{Dial: listener.Addr().String(), SendAudio: tone, RecordDir: ddir, Duration: dur,
		Loopback: true, Status: &dstatus}, testLog(t, "dialer"))
	if err != nil {
		t.Fatal(err)
	}
	dres := start(t, dialer)

	for _, side := range []struct {
		name   string
		res    result
		status *syncBuffer
		dir    string
	}{
		{"listener", await(t, "listener", lres), &lstatus, ldir},
		{"dialer", await(t, "dialer", dres), &dstatus, ddir},
	} {
		s := side.res.sum
		t.Logf("%s: %+v\n%s", side.name, s, side.status)
		if side.res.err != nil {
			t.Errorf("%s: %v", side.name, side.res.err)
			continue
		}
		if s.Reason != "3s reached" && s.Reason != "the peer hung up" {
			t.Errorf("%s ended because %q", side.name, s.Reason)
		}
		if s.Sent.Packets < 100 || s.Received.Packets < 100 {
			t.Errorf("%s: sent %v, received %v; want about 150 packets each way", side.name, s.Sent, s.Received)
		}
		if out := side.status.String(); !strings.Contains(out, "p2p: connected") || !strings.Contains(out, "call ended") {
			t.Errorf("%s: no status lines or summary in:\n%s", side.name, out)
		}
		if len(s.Recordings) != 1 {
			t.Errorf("%s: %d recordings, want 1", side.name, len(s.Recordings))
			continue
		}
		r := s.Recordings[0]
		if !strings.HasPrefix(r.Path, side.dir) || !strings.Contains(r.Path, "peer-127.0.0.1-audio-") {
			t.Errorf("%s: recorded to %s", side.name, r.Path)
		}
		codec, probed := probe(t, ffprobe, r.Path)
		flowed := r.Stats.Duration().Seconds()
		t.Logf("%s: %s is %s, %.3f s; audio flowed %.3f s", side.name, r.Path, codec, probed, flowed)
		if codec != "opus" {
			t.Errorf("%s: recorded codec %q, want opus", side.name, codec)
		}
		if flowed < 2 || probed < 0.9*flowed || probed > 1.1*flowed {
			t.Errorf("%s: recording lasts %.3f s, audio flowed for %.3f s", side.name, probed, flowed)
		}
	}
}

// TestBadSignaling: a listener given garbage, or a line over 64 KiB, by
// whatever connected ends its Run with an error that says so (no panic,
// no hang).
func TestBadSignaling(t *testing.T) {
	for _, c := range []struct {
		name, send, want string
	}{
		{"garbage", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not a parley p2p message"},
		{"oversized", `{"type":"offer","sdp":"` + strings.Repeat("v=0 ", 20<<10) + "\"}\n", "over the 64 KiB limit"},
		{"unknown type", `{"type":"hello"}` + "\n", `unknown signaling message type "hello"`},
		{"early close", "", "closed the connection before the call was set up"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := New(Config{Listen: "127.0.0.1:0", Loopback: true}, testLog(t, "listener"))
			if err != nil {
				t.Fatal(err)
			}
			res := start(t, p)
			conn, err := net.Dial("tcp", p.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				io.WriteString(conn, c.send) // may fail once the listener hangs up
				if c.send == "" {
					conn.Close()
				}
			}()
			defer conn.Close()
			r := await(t, "listener", res)
			if r.err == nil || !strings.Contains(r.err.Error(), c.want) {
				t.Errorf("Run returned %v, want an error saying %q", r.err, c.want)
			}
		})
	}
}

// TestReadMessage checks the framing and validation of single messages.
func TestReadMessage(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"type":"offer","sdp":"v=0"}` + "\n", ""},
		{`{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}}` + "\n", ""},
		{`{"type":"bye"}`, ""}, // the last line needs no newline
		{"", "EOF"},
		{"\x00\xff\xfe garbage\n", "not a parley p2p message"},
		{`{"type":"offer"}` + "\n", "offer without SDP"},
		{`{"type":"candidate"}` + "\n", "candidate message without a candidate"},
		{`{"type":7}` + "\n", "not a parley p2p message"},
		{strings.Repeat("x", maxMessage+10), "over the 64 KiB limit"},
		{`{"type":"bye","pad":"` + strings.Repeat("x", maxMessage-30) + `"}` + "\n", ""}, // just under the limit
	} {
		_, err := readMessage(newScanner(strings.NewReader(c.in)))
		if got := fmt.Sprint(err); (c.want == "") != (err == nil) || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%.40q: got %v, want %q", c.in, err, c.want)
		}
	}
}

// TestConfigErrors: New refuses bad configurations with messages that
// name the problem, before listening or dialing.
func TestConfigErrors(t *testing.T) {
	log := testLog(t, "config")
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "give an address"},
		{Config{Listen: ":0", Dial: "a:1"}, "not both"},
		{Config{Dial: "nohost"}, `"nohost" is not HOST:PORT`},
		{Config{Dial: ":7000"}, "is not HOST:PORT"},
		{Config{Listen: "7000"}, "is not [HOST]:PORT"},
		{Config{Listen: ":0", Duration: -time.Second}, "negative"},
		{Config{Listen: ":0", SendAudio: "-"}, "needs Stdin"},
		{Config{Listen: ":0", SendAudio: "/nonexistent/a.ogg"}, "no such file"},
		{Config{Listen: ":0", SendAudio: "../../testdata/pattern.ivf"}, "not an Ogg stream"},
		{Config{Listen: ":0", SendAudio: "-", Stdin: strings.NewReader("nope")}, "not an Ogg stream"},
	} {
		p, err := New(c.cfg, log)
		if err == nil {
			p.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.cfg, err, c.want)
		}
	}
}

// TestInterruptWhileWaiting: cancelling a listener that has no peer yet
// ends it without error.
func TestInterruptWhileWaiting(t *testing.T) {
	p, err := New(Config{Listen: "127.0.0.1:0", Loopback: true}, testLog(t, "listener"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := make(chan result, 1)
	go func() {
		s, err := p.Run(ctx)
		c <- result{s, err}
	}()
	cancel()
	if r := await(t, "listener", c); r.err != nil || !strings.Contains(r.sum.Reason, "interrupted") {
		t.Errorf("got %+v", r)
	}
}

// probe returns the codec and duration ffprobe reads from a file.
func probe(t *testing.T, ffprobe, path string) (string, float64) {
	t.Helper()
	out, err := exec.Command(ffprobe, "-v", "error", "-select_streams", "a:0", "-show_entries",
		"stream=codec_name", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	codec := strings.TrimSpace(string(out))
	out, err = exec.Command(ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe %s: duration %q: %v", path, out, err)
	}
	return codec, d
}

// requireTool finds a command the test needs (see testtool.Find).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	return testtool.Find(t, "ffmpeg", name)
}
