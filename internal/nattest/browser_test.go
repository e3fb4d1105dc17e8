package nattest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/testtool"
)

// TestBrowserBehindNATThroughTURN: a headless Chromium inside client A's
// namespace (behind a symmetric NAT) logs in through the real pages and
// joins a peer-to-peer call; `parley join` in client B's namespace (behind
// another) joins with a tone and a test pattern. The browser decodes B's
// video, B receives the browser's audio and video, and the relay carried
// it: no direct path exists between the two NATs.
func TestBrowserBehindNATThroughTURN(t *testing.T) {
	t.Parallel()
	chromium := testtool.Find(t, "chromium", "chromium", "chromium-browser")
	n := New(t, Options{})
	s := startServer(t, n)

	// chromedp talks to Chromium over a pipe (fds 3 and 4), which `ip
	// netns exec` passes on: a wrapper runs the browser inside client A's
	// namespace.
	wrapper := filepath.Join(t.TempDir(), "chromium-in-netns")
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", n.Clients[0].NS, chromium)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(wrapper),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// getUserMedia needs a secure context; the test server is plain HTTP.
		chromedp.Flag("unsafely-treat-insecure-origin-as-secure", s.base),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	if _, err := chromedp.Run(ctx, chromedp.Steps()); err != nil {
		t.Fatalf("start chromium in %s: %v", n.Clients[0].NS, err)
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if _, err := chromedp.Run(c, chromedp.Steps(actions...)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	waitFor := func(what, expr string, timeout time.Duration) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			v, err := chromedp.Run(c, chromedp.Evaluate[bool](expr))
			cancel()
			if err == nil && v {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s (last error %v)", timeout, what, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	fill := func(sel, value string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), value))
	}
	do("log in as Alice", chromedp.Navigate(s.base+"/login"), fill("#username", "alice"), fill("#password", password),
		chromedp.Click(chromedp.CSS(`form[action^="/login"] button[type=submit]`)))
	waitFor("the channels page", `location.pathname === "/channels"`, 20*time.Second)
	do("open the channel", chromedp.Navigate(s.base+"/c/"+s.setup.Channel))
	waitFor("signaling", `document.querySelector('#signal-status')?.dataset.state === "connected"`, 20*time.Second)
	do("join the call", chromedp.Click(chromedp.CSS("#join-btn")))
	waitFor("being in the call", `!!(window.parley && window.parley.myId)`, 20*time.Second)

	const d = 25 * time.Second
	bob := Start(t, "parley join (Bob)", n.Clients[1].Command(parleyBinary(t), "join", s.base+"/c/"+s.setup.Channel,
		"--token", s.setup.Tokens[1], "--send-audio", toneFile(t), "--send-video", patternFile(t), "--duration", d.String()))
	start := time.Now()
	const remoteFrames = `(() => { const v = document.querySelector('#tiles .tile[data-participant-id]:not(.local):not(.screen) video');
		return v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0; })()`
	waitFor("Bob's video decoding in the browser", remoteFrames+" > 30", d)
	t.Logf("browser behind a symmetric NAT: Bob's video decoding %.1f s after he started", time.Since(start).Seconds())

	if err := bob.Wait(d + 15*time.Second); err != nil {
		t.Fatalf("parley join (Bob): %v\n%s", err, tail(bob.Stderr(), 30))
	}
	r := parse(bob)
	if r.received <= 300 {
		t.Errorf("Bob received %d packets from the browser, want > 300 (summary %q)", r.received, r.summary)
	}
	if r.connected >= 0 {
		t.Logf("Bob's side: %q", r.connectedText)
	}
	if b := s.metric(t, "parley_turn_relayed_bytes_total"); b == 0 {
		t.Error("the TURN relay relayed nothing: did media take another path?")
	}
}

// password is the one setup gives Alice and Bob.
const password = "nat traversal test password"

// patternFile is testdata's VP8 test pattern, by absolute path (the
// client runs in a namespace but in this working directory).
func patternFile(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "testdata", "pattern.ivf"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}
