package e2e_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/testtool"
)

// browsersDir holds what the browser tests take from npm (package.json and
// its lock): puppeteer-core, which drives Firefox ESR over WebDriver BiDi,
// and axe-core. `npm ci` there installs them (.ci/run does).
const browsersDir = "_browsers"

// nodeModule returns the path of a file in an installed npm package of
// browsersDir, or skips loudly (fails under PARLEY_REQUIRE_ALL=1).
func nodeModule(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join(browsersDir, "node_modules", rel)
	if _, err := os.Stat(p); err != nil {
		skipOrFail(t, fmt.Sprintf("*** internal/e2e/%s: %s missing: this browser test NOT RUN. Run `npm ci` in internal/e2e/%s (.ci/run does). ***", p, rel, browsersDir))
	}
	return p
}

func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("PARLEY_REQUIRE_ALL") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// firefox is one headless Firefox ESR, driven by _browsers/firefox.mjs:
// one JSON command a line in, one answer a line out.
type firefox struct {
	t       *testing.T
	cmd     *exec.Cmd
	in      io.WriteCloser
	replies chan ffReply
	mu      sync.Mutex
	next    int
	version string
}

type ffReply struct {
	ID      int             `json:"id"`
	Value   json.RawMessage `json:"value"`
	Error   string          `json:"error"`
	Ready   bool            `json:"ready"`
	Version string          `json:"version"`
}

// startFirefox starts Firefox, stopped when the test ends.
func startFirefox(t *testing.T) *firefox {
	t.Helper()
	node := testtool.Find(t, "nodejs", "node")
	ffPath := testtool.Find(t, "firefox-esr", "firefox-esr", "firefox")
	nodeModule(t, filepath.Join("puppeteer-core", "package.json"))
	start := time.Now()
	cmd := exec.Command(node, "firefox.mjs")
	cmd.Dir = browsersDir
	cmd.Env = append(os.Environ(), "PARLEY_FIREFOX="+ffPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so Firefox goes with node
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start firefox driver: %v", err)
	}
	f := &firefox{t: t, cmd: cmd, in: in, replies: make(chan ffReply, 16)}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		defer close(f.replies)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
		for sc.Scan() {
			var r ffReply
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				continue // not ours (a library printing)
			}
			f.replies <- r
		}
	}()
	var logMu sync.Mutex
	var logs []string
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logs = append(logs, sc.Text())
			logMu.Unlock()
		}
	}()
	t.Cleanup(func() {
		in.Close() // the driver closes Firefox and exits
		done := make(chan error, 1)
		go func() { readers.Wait(); done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // anything it left
		logMu.Lock()
		defer logMu.Unlock()
		if len(logs) > 0 {
			t.Logf("firefox driver said:\n%s", strings.Join(logs, "\n"))
		}
	})
	select {
	case r, ok := <-f.replies:
		if !ok || !r.Ready {
			t.Fatalf("firefox driver did not start (%+v)", r)
		}
		f.version = r.Version
	case <-time.After(60 * time.Second):
		t.Fatal("firefox did not start within 60 s")
	}
	t.Logf("%s started in %s", f.version, time.Since(start).Round(time.Millisecond))
	return f
}

// do sends one command and waits for its answer.
func (f *firefox) do(cmd map[string]any, timeout time.Duration) (json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	cmd["id"] = f.next
	b, err := json.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	if _, err := f.in.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("firefox driver gone: %w", err)
	}
	deadline := time.After(timeout)
	for {
		select {
		case r, ok := <-f.replies:
			if !ok {
				return nil, errors.New("firefox driver exited")
			}
			if r.ID != f.next {
				continue // the late answer to a command that timed out
			}
			if r.Error != "" {
				return nil, errors.New(r.Error)
			}
			return r.Value, nil
		case <-deadline:
			return nil, fmt.Errorf("no answer to %s within %s", cmd["op"], timeout)
		}
	}
}

// ffUser is one person in their own Firefox window (own cookies).
type ffUser struct {
	t    *testing.T
	f    *firefox
	name string
	s    *servertest.Server
}

// newFFUser signs a user up (over HTTP) and opens a Firefox window
// logged in as them.
func newFFUser(t *testing.T, f *firefox, s *servertest.Server, username, displayName string) *ffUser {
	t.Helper()
	c := s.SignUp(username, displayName)
	ck := s.SessionCookie(c)
	u := &ffUser{t: t, f: f, name: displayName, s: s}
	u.run(map[string]any{"op": "open", "cookie": map[string]any{"name": ck.Name, "value": ck.Value, "url": s.URL}})
	return u
}

func (u *ffUser) run(cmd map[string]any) json.RawMessage {
	u.t.Helper()
	return u.runFor(cmd, 45*time.Second)
}

// runFor is run for a command that may take up to timeout.
func (u *ffUser) runFor(cmd map[string]any, timeout time.Duration) json.RawMessage {
	u.t.Helper()
	cmd["page"] = u.name
	cmd["timeoutMs"] = timeout.Milliseconds()
	v, err := u.f.do(cmd, timeout+5*time.Second)
	if err != nil {
		u.t.Fatalf("%s (firefox): %s: %v", u.name, cmd["op"], err)
	}
	return v
}

func (u *ffUser) navigate(path string) {
	u.t.Helper()
	u.run(map[string]any{"op": "goto", "url": u.s.URL + path})
}
func (u *ffUser) click(sel string) { u.t.Helper(); u.run(map[string]any{"op": "click", "sel": sel}) }
func (u *ffUser) fill(sel, text string) {
	u.t.Helper()
	u.run(map[string]any{"op": "type", "sel": sel, "text": text})
}

// closeTab closes the window, as a person closing the tab does.
func (u *ffUser) closeTab() { u.t.Helper(); u.run(map[string]any{"op": "close"}) }

// eval returns the JSON value of a JavaScript expression (awaited).
func ffEval[T any](u *ffUser, expr string) T {
	u.t.Helper()
	var v T
	if err := json.Unmarshal(u.run(map[string]any{"op": "eval", "expr": expr}), &v); err != nil {
		u.t.Fatalf("%s (firefox): eval %s: %v", u.name, expr, err)
	}
	return v
}

// waitFor waits until a JavaScript expression is truthy.
func (u *ffUser) waitFor(what, expr string, timeout time.Duration) {
	u.t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		v, err := u.f.do(map[string]any{"op": "eval", "page": u.name, "expr": "!!(" + expr + ")", "timeoutMs": 10000}, 15*time.Second)
		if err == nil && string(v) == "true" {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("%s (firefox): waited %s for %s (%s); last error: %v", u.name, timeout, what, expr, last)
		}
		<-tick.C
	}
}

func (u *ffUser) joinCall(channelID string) {
	u.t.Helper()
	u.navigate("/c/" + channelID)
	u.waitFor("signaling to connect", `document.querySelector('#signal-status')?.dataset.state === "connected"`, 15*time.Second)
	u.click("#join-btn")
	u.waitFor("to be in the call", `!!(window.parley && window.parley.myId)`, 15*time.Second)
}

func (u *ffUser) myID() string { return ffEval[string](u, `window.parley.myId`) }

// inbound is window.parley.inbound(): frames and audio energy received
// from each remote participant.
type inboundStats map[string]struct {
	Frames     float64 `json:"frames"`
	Energy     float64 `json:"energy"`
	AudioBytes float64 `json:"audioBytes"`
}

// mediaFlowing is a JavaScript expression: true once every listed remote
// participant's video decoded more than minFrames frames and their audio
// carried sound, and exactly they have tiles.
func mediaFlowing(ids []string, minFrames int) string {
	return fmt.Sprintf(`window.parley.inbound().then(f => { const want = %s;
		return Object.keys(f).length === want.length && want.every(id => f[id] && f[id].frames > %d && f[id].energy > 0); })`, jsArray(ids), minFrames)
}

// waitMedia waits until u receives video (frames still rising) and audible
// audio from each listed participant.
func (u *ffUser) waitMedia(ids []string, timeout time.Duration) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("video and audio from %v", ids), mediaFlowing(ids, 0), timeout)
	base := ffEval[inboundStats](u, `window.parley.inbound()`)
	min := 0.0
	for _, id := range ids {
		if min == 0 || base[id].Frames < min {
			min = base[id].Frames
		}
	}
	u.waitFor("frames to keep rising", mediaFlowing(ids, int(min)+10), 15*time.Second)
}

// waitMediaChromium is waitMedia for a Chromium page, through the same hook.
func (u *user) waitMedia(ids []string, timeout time.Duration) {
	u.t.Helper()
	u.waitRemoteVideos(ids, timeout)
	cond := fmt.Sprintf(`(async () => await (%s))()`, mediaFlowing(ids, 0))
	u.waitFor("audio with sound from "+strings.Join(ids, ","), cond, 15*time.Second)
}
