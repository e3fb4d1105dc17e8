package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/store/storetest"
)

// pageMember is a participant in headless Chromium (fake camera and
// microphone) on the real call page, reached through the load balancer.
type pageMember struct {
	t   *testing.T
	ctx context.Context
}

// joinPage logs name in through base's login form, opens the channel and
// joins its call. Without Chromium it returns nil (the test goes on with
// the Go clients, saying so), or fails under PARLEY_REQUIRE_ALL=1.
func joinPage(t *testing.T, base, channelID, name string) *pageMember {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv(storetest.EnvRequireAll) == "1" {
			t.Fatal("chromium not found: the browser participant of the cluster test cannot run")
		}
		t.Log("chromium not found: the browser participant is NOT RUN; install chromium")
		return nil
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.WindowSize(800, 600),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run opens the tab and ties its life to its context: the
	// long-lived one, not a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	p := &pageMember{t: t, ctx: ctx}
	p.do(
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), name),
		chromedp.SendKeys(chromedp.CSS("#password"), "correct horse battery staple"),
		chromedp.Click(chromedp.CSS(`form[action^="/login"] button[type=submit]`)),
	)
	p.waitFor("the channels page after logging in", `location.pathname === "/channels"`, 20*time.Second)
	p.do(chromedp.Navigate(base + "/c/" + channelID))
	p.waitFor("signaling to connect", `document.querySelector('#signal-status')?.dataset.state === "connected"`, 30*time.Second)
	p.do(chromedp.Click(chromedp.CSS("#join-btn")))
	p.waitFor("to be in the call", `!!(window.parley && window.parley.myId)`, 30*time.Second)
	return p
}

func (p *pageMember) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

// waitFor polls a JavaScript expression until it is truthy.
func (p *pageMember) waitFor(what, expr string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		<-time.After(100 * time.Millisecond)
	}
	p.t.Fatalf("browser: waited %v for %s: %v", timeout, what, last)
}

// hearing counts the publishers whose audio bytes grew since the previous
// call (through the SFU; the page's own stats).
func (p *pageMember) hearing() int {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(async () => {
		const now = await window.parley.sfuAudio();
		const prev = window.__clusterPrev || {};
		window.__clusterPrev = now;
		return Object.keys(now).filter(id => prev[id] && now[id].bytes > prev[id].bytes).length;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return 0
	}
	return n
}
