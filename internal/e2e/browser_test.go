package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/testtool"
)

// chromiumPath finds Debian's chromium, or skips the test loudly (fails it
// when PARLEY_REQUIRE_ALL=1, as in CI).
func chromiumPath(t *testing.T) string {
	t.Helper()
	return testtool.Find(t, "chromium", "chromium", "chromium-browser", "google-chrome")
}

// requireTool finds a command the test needs (ffprobe is in ffmpeg).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	return testtool.Find(t, "ffmpeg", name)
}

// newBrowser starts one headless Chromium with a fake camera and
// microphone, closed when the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	return newBrowserWith(t)
}

// newBrowserWith is newBrowser with extra command-line options (they come
// last, so they can override the defaults).
func newBrowserWith(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Several users share this browser, each in its own window; keep
		// the ones not in front from being throttled like background tabs.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		// getDisplayMedia picks a screen without a picker.
		chromedp.Flag("auto-select-desktop-capture-source", "Entire screen"),
		chromedp.WindowSize(1280, 800),
	}
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// user is one person at their own browser window, with their own cookies.
type user struct {
	t    *testing.T
	name string
	ctx  context.Context
	s    *servertest.Server
}

func newUser(t *testing.T, browser context.Context, s *servertest.Server, name string) *user {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first run on a context opens its tab and ties the tab's life to
	// that run's context: it must be the long-lived one, not a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a window for %s: %v", name, err)
	}
	u := &user{t: t, name: name, ctx: ctx, s: s}
	u.do(chromedp.Navigate(s.URL + "/"))
	return u
}

// do runs browser actions, failing the test after a minute.
func (u *user) do(actions ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		u.t.Fatalf("%s: %v", u.name, err)
	}
}

// eval returns the value of a JavaScript expression in u's page.
func eval[T any](u *user, expr string) T {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		u.t.Fatalf("%s: eval %s: %v", u.name, expr, err)
	}
	return v
}

// evalAsync is eval for an expression that returns a promise.
func evalAsync[T any](u *user, expr string) T {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		u.t.Fatalf("%s: eval %s: %v", u.name, expr, err)
	}
	return v
}

// waitFor waits until a JavaScript expression is truthy in u's page.
func (u *user) waitFor(what, expr string, timeout time.Duration) {
	u.t.Helper()
	if err := u.tryWaitFor(expr, timeout); err != nil {
		u.t.Fatalf("%s: waited %s for %s (%s): %v\npage state: %s", u.name, timeout, what, expr, err, u.debugState())
	}
}

// tryWaitFor evaluates expr every 50 ms until it is (or its promise
// resolves to) truthy. Evaluation
// errors (the page is navigating, say) count as "not yet".
func (u *user) tryWaitFor(expr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(u.ctx, 5*time.Second)
		// A promise counts by what it resolves to, not as a truthy object.
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Promise.resolve(("+expr+"\n)).then(v => !!v)", chromedp.EvalAwaitPromise))
		cancel()
		if err == nil && ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) {
			if lastErr != nil {
				return fmt.Errorf("still false; last evaluation error: %w", lastErr)
			}
			return errors.New("still false")
		}
		<-tick.C
	}
}

func (u *user) debugState() string {
	ctx, cancel := context.WithTimeout(u.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({url: location.href,
		signal: document.querySelector('#signal-status')?.dataset.state,
		tiles: [...document.querySelectorAll('#tiles .tile')].map(t => ({id: t.dataset.participantId, cls: t.className, ...t.dataset})),
		notice: document.querySelector('#call-notice')?.textContent,
		toast: document.querySelector('#toast')?.textContent})`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	return s
}

// fill types into an empty form field, as a person would.
func fill(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.SendKeys(chromedp.CSS(sel), value),
	)
}

// signUp goes through the real sign-up form.
func (u *user) signUp(username, displayName string) {
	u.t.Helper()
	u.do(
		chromedp.Navigate(u.s.URL+"/signup"),
		fill("#username", username),
		fill("#display_name", displayName),
		fill("#email", username+"@example.org"),
		fill("#password", servertest.Password),
		chromedp.Click(chromedp.CSS(`form[action="/signup"] button[type=submit]`)),
	)
	u.waitFor("the channels page after sign-up", `location.pathname === "/channels"`, 15*time.Second)
}

// createChannel goes through the dashboard form and returns the channel id.
func (u *user) createChannel(name string) string {
	u.t.Helper()
	u.do(
		chromedp.Navigate(u.s.URL+"/channels"),
		fill("#name", name),
		chromedp.Click(chromedp.CSS(`form[action="/channels"] button[type=submit]`)),
	)
	u.waitFor("the new channel's page", `location.pathname.startsWith("/c/")`, 15*time.Second)
	return eval[string](u, `location.pathname.slice(3)`)
}

// addMember adds a member through the channel page's form.
func (u *user) addMember(channelID, username string) {
	u.t.Helper()
	u.do(
		chromedp.Navigate(u.s.URL+"/c/"+channelID),
		fill("#username", username),
		chromedp.Click(chromedp.CSS("#add-member-btn")),
	)
	u.waitFor(username+" in the member list", fmt.Sprintf(`!!document.querySelector('#member-list li[data-username=%q]')`, username), 15*time.Second)
}

// joinCall opens the channel and joins its call.
func (u *user) joinCall(channelID string) {
	u.t.Helper()
	u.do(chromedp.Navigate(u.s.URL + "/c/" + channelID))
	u.waitFor("signaling to connect", `document.querySelector('#signal-status')?.dataset.state === "connected"`, 15*time.Second)
	u.do(chromedp.Click(chromedp.CSS("#join-btn")))
	u.waitFor("to be in the call", `!!(window.parley && window.parley.myId)`, 15*time.Second)
}

func (u *user) myID() string { return eval[string](u, `window.parley.myId`) }

// remoteFrames is a JavaScript expression: decoded frame counts of the
// remote camera videos, keyed by participant id.
const remoteFrames = `Object.fromEntries([...document.querySelectorAll('#tiles .tile[data-participant-id]:not(.local):not(.screen)')].map(t => {
	const v = t.querySelector('video');
	return [t.dataset.participantId, v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0];
}))`

// waitRemoteVideos waits until u's page shows exactly the given remote
// participants, each with video whose decoded frame count keeps rising.
func (u *user) waitRemoteVideos(ids []string, timeout time.Duration) {
	u.t.Helper()
	cond := fmt.Sprintf(`(() => { const f = %s; const want = %s;
		return Object.keys(f).length === want.length && want.every(id => f[id] > 0); })()`, remoteFrames, jsArray(ids))
	u.waitFor(fmt.Sprintf("%d remote videos decoding frames", len(ids)), cond, timeout)
	u.waitFramesRise(ids, 10, 10*time.Second)
}

// waitFramesRise waits until every listed video decoded at least n more
// frames than it had when called.
func (u *user) waitFramesRise(ids []string, n int, timeout time.Duration) {
	u.t.Helper()
	base := eval[map[string]int](u, remoteFrames)
	cond := fmt.Sprintf(`(() => { const f = %s; const base = %s;
		return %s.every(id => f[id] >= (base[id] || 0) + %d); })()`, remoteFrames, jsObject(base), jsArray(ids), n)
	u.waitFor(fmt.Sprintf("frames to keep rising (base %v)", base), cond, timeout)
}

func jsArray(ss []string) string {
	out := "["
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += fmt.Sprintf("%q", s)
	}
	return out + "]"
}

func jsObject(m map[string]int) string {
	out := "{"
	first := true
	for k, v := range m {
		if !first {
			out += ","
		}
		first = false
		out += fmt.Sprintf("%q:%d", k, v)
	}
	return out + "}"
}

// byRole is a query option that finds elements by their ARIA role and
// accessible name as Chromium computes them for assistive technology
// (Accessibility.queryAXTree), the way a screen-reader user finds a
// control: chromedp.Click("Add member", byRole("button", "Add member")).
// The selector string is only a label for errors. Elements the
// accessibility tree ignores (hidden ones) do not count. Role names are
// the computed ones: a <select> is a "combobox", an <input type=text>
// a "textbox", a <p role=status> a "status".
func byRole(role, name string) chromedp.QueryOption {
	return chromedp.ByFunc(func(ctx context.Context, t *chromedp.Target, n *chromedp.Node) ([]cdp.NodeID, error) {
		return axQuery(ctx, t, n.BackendNodeID, role, name)
	})
}

// axQuery returns the DOM nodes under root with the role and name ("":
// any name).
func axQuery(ctx context.Context, t *chromedp.Target, root cdp.BackendNodeID, role, name string) ([]cdp.NodeID, error) {
	nodes, err := axNodes(ctx, t, root, role, name)
	if err != nil || len(nodes) == 0 {
		return nil, err
	}
	ids := make([]cdp.BackendNodeID, len(nodes))
	for i, n := range nodes {
		ids[i] = n.BackendDOMNodeID
	}
	res, err := cdp.Call(ctx, t, dom.PushNodesByBackendIDsToFrontend, dom.PushNodesByBackendIDsToFrontendParams{BackendNodeIDs: ids})
	return res.NodeIDs, err
}

func axNodes(ctx context.Context, t *chromedp.Target, root cdp.BackendNodeID, role, name string) ([]*accessibility.Node, error) {
	res, err := cdp.Call(ctx, t, accessibility.QueryAXTree, accessibility.QueryAXTreeParams{BackendNodeID: root, Role: role, AccessibleName: name})
	if err != nil {
		return nil, fmt.Errorf("query the accessibility tree for %s %q: %w", role, name, err)
	}
	var out []*accessibility.Node
	for _, n := range res.Nodes {
		if !n.Ignored && n.BackendDOMNodeID != 0 {
			out = append(out, n)
		}
	}
	return out, nil
}

// roleNames lists the accessible names of the elements with the role on
// u's page now (not waiting), in document order.
func (u *user) roleNames(role string) []string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	// The root as chromedp knows it: DOM.getDocument would renumber the
	// nodes behind chromedp's back and break its later queries.
	roots, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS("html")))
	if err != nil {
		u.t.Fatalf("%s: the page's root: %v", u.name, err)
	}
	names, err := chromedp.Run(ctx, chromedp.Action[[]string](func(ctx context.Context, t *chromedp.Target) ([]string, error) {
		nodes, err := axNodes(ctx, t, roots[0].BackendNodeID, role, "")
		if err != nil {
			return nil, err
		}
		out := make([]string, 0, len(nodes))
		for _, n := range nodes {
			var s string
			if n.Name != nil && len(n.Name.Value) > 0 {
				if err := json.Unmarshal(n.Name.Value, &s); err != nil {
					return nil, fmt.Errorf("accessible name %s: %w", n.Name.Value, err)
				}
			}
			out = append(out, s)
		}
		return out, nil
	}))
	if err != nil {
		u.t.Fatalf("%s: the names of the %ss: %v", u.name, role, err)
	}
	return names
}

// hasRole reports whether u's page has an element with the role and
// name now (not waiting).
func (u *user) hasRole(role, name string) bool {
	u.t.Helper()
	for _, n := range u.roleNames(role) {
		if n == name {
			return true
		}
	}
	return false
}

// clickRole clicks the element with the role and accessible name,
// waiting for it to be there and visible.
func (u *user) clickRole(role, name string) {
	u.t.Helper()
	u.do(chromedp.Click(role+" "+name, byRole(role, name)))
}

// typeRole types into the field with the role and accessible name.
func (u *user) typeRole(role, name, text string) {
	u.t.Helper()
	u.do(chromedp.SendKeys(role+" "+name, text, byRole(role, name)))
}
