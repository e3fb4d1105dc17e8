package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/testtool"
)

// mintJoinToken acts as the app: it mints a join token for ch with the
// owner's bearer credential (POST /api/v1/channels/{id}/join-tokens).
func mintJoinToken(t *testing.T, s *servertest.Server, bearer, ch string, body map[string]any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v1/channels/"+ch+"/join-tokens", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("mint: %d %v", resp.StatusCode, out)
	}
	return out
}

// TestJoinTokenCall (issue 15, join tokens): an app mints a 20 s token
// for one of its users with the owner's access token; Chromium opens the
// join link and joins Ada's call; both decode each other's video. The
// page receives fresh tokens over its socket and the call goes on past
// 40 s; a reload then opens the page with the fresh token and gets back
// in as the same user.
func TestJoinTokenCall(t *testing.T) {
	s := servertest.Start(t)
	browser := newBrowser(t)
	ada, zoe := newUser(t, browser, s, "Ada"), newUser(t, browser, s, "Zoe")
	ada.signUp("ada", "Ada")
	ch := ada.createChannel("Clinic")
	minted := mintJoinToken(t, s, s.Token("ada"), ch, map[string]any{
		"externalUserId": "patient-7", "displayName": "Zoe Patient", "ttlSeconds": 20,
		"grants": []string{"publish", "subscribe", "chat"},
	})
	start := time.Now()
	first := minted["token"].(string)

	zoe.do(chromedp.Navigate(s.URL + minted["joinUrl"].(string)))
	zoe.waitFor("the join-token page's socket", `document.querySelector('#signal-status')?.dataset.state === "connected"`, 15*time.Second)
	zoe.do(chromedp.Click(chromedp.CSS("#join-btn")))
	zoe.waitFor("Zoe in the call", `!!window.parley.myId`, 15*time.Second)
	ada.joinCall(ch)
	ids := []string{ada.myID(), zoe.myID()}
	ada.waitRemoteVideos(ids[1:], 45*time.Second)
	zoe.waitRemoteVideos(ids[:1], 45*time.Second)
	ada.waitFor("Zoe listed under her name", `/Zoe Patient/.test(document.querySelector('#online-list')?.textContent || "")`, 10*time.Second)

	// Past 40 s: renewed (the address holds a newer token), still in
	// the call, video still flowing both ways.
	zoe.waitFor("a renewed token in the page's address", fmt.Sprintf(`new URL(location.href).searchParams.get("token") !== %q`, first), 25*time.Second)
	for time.Since(start) < 42*time.Second {
		zoe.waitFramesRise(ids[:1], 10, 15*time.Second)
	}
	if got := zoe.myID(); got != ids[1] {
		t.Errorf("Zoe's participant id changed to %s", got)
	}
	ada.waitFramesRise(ids[1:], 10, 15*time.Second)
	zoe.waitFor("still connected", `document.querySelector('#signal-status')?.dataset.state === "connected"`, 5*time.Second)

	// A reload after the first token expired opens the page with the
	// fresh one, as the same user.
	zoe.do(chromedp.Reload())
	zoe.waitFor("the reloaded page's socket", `document.querySelector('#signal-status')?.dataset.state === "connected"`, 15*time.Second)
	if uid := eval[string](zoe, `document.querySelector('#call-app').dataset.userId`); uid != minted["userId"].(string) {
		t.Errorf("after reload the page is user %q, want %q", uid, minted["userId"])
	}
}

// childFrame is the first child frame of u's page: its URL, and the URL
// it could not load (a refused frame shows an error page instead).
func (u *user) childFrame() (url, unreachable string) {
	u.t.Helper()
	u.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		res, err := cdp.Call(ctx, t, page.GetFrameTree, cdp.Empty{})
		if err != nil {
			return err
		}
		if res.FrameTree != nil && len(res.FrameTree.ChildFrames) > 0 {
			f := res.FrameTree.ChildFrames[0].Frame
			url, unreachable = f.URL, f.UnreachableURL
		}
		return nil
	}))
	return url, unreachable
}

// openSockets reads the server's parley_sockets gauge.
func openSockets(t *testing.T, s *servertest.Server) int {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^parley_sockets (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no parley_sockets in /metrics")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestJoinTokenEmbed (issue 15): the app's own page (another origin)
// frames /embed/c/{id} with a token that lists the app's origin: the call
// loads in the frame and opens its socket. With a token that lists no
// origin, Chromium refuses to frame it (frame-ancestors), and no socket
// opens.
func TestJoinTokenEmbed(t *testing.T) {
	s := servertest.Start(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Clinic</title><h1>Your appointment</h1>
<iframe id="call" src="%s" allow="camera; microphone; display-capture" width="800" height="600"></iframe>`, html.EscapeString(r.URL.Query().Get("src")))
	}))
	t.Cleanup(app.Close)
	browser := newBrowser(t)
	zoe := newUser(t, browser, s, "Zoe")
	ch := s.CreateChannel(s.SignUp("dan", "Dan"), "Clinic")
	key := s.Token("dan")
	allowed := mintJoinToken(t, s, key, ch, map[string]any{"externalUserId": "p1", "displayName": "Zoe", "embedOrigins": []string{app.URL}})
	refused := mintJoinToken(t, s, key, ch, map[string]any{"externalUserId": "p1", "displayName": "Zoe"})

	embed := s.URL + allowed["embedUrl"].(string)
	zoe.do(chromedp.Navigate(app.URL + "/?src=" + url.QueryEscape(embed)))
	testtool.Eventually(t, 15*time.Second, func() bool { return openSockets(t, s) == 1 }, "the framed call's socket")
	if u, unreachable := zoe.childFrame(); !strings.HasPrefix(u, s.URL+"/embed/c/") || unreachable != "" {
		t.Errorf("allowed frame: url %q, unreachable %q", u, unreachable)
	}

	zoe.do(chromedp.Navigate(app.URL + "/?src=" + url.QueryEscape(s.URL+refused["embedUrl"].(string))))
	testtool.Eventually(t, 15*time.Second, func() bool {
		_, unreachable := zoe.childFrame()
		return strings.HasPrefix(unreachable, s.URL+"/embed/c/")
	}, "Chromium to refuse the frame of a token without origins")
	testtool.Eventually(t, 10*time.Second, func() bool { return openSockets(t, s) == 0 }, "no socket from the refused frame")
}

// TestJoinTokenReceiveOnly: a token without publish joins without asking
// for devices; the call runs on the SFU and Vic decodes Ada's video,
// while Ada gets no media from Vic.
func TestJoinTokenReceiveOnly(t *testing.T) {
	s := servertest.Start(t)
	browser := newBrowser(t)
	ada, vic := newUser(t, browser, s, "Ada"), newUser(t, browser, s, "Vic")
	ada.signUp("ada", "Ada")
	ch := ada.createChannel("Lecture")
	minted := mintJoinToken(t, s, s.Token("ada"), ch, map[string]any{"externalUserId": "student-1", "displayName": "Vic", "grants": []string{"subscribe"}})
	ada.joinCall(ch)
	vic.do(chromedp.Navigate(s.URL + minted["joinUrl"].(string)))
	vic.waitFor("the viewer's socket", `document.querySelector('#signal-status')?.dataset.state === "connected"`, 15*time.Second)
	vic.do(chromedp.Click(chromedp.CSS("#join-btn")))
	vic.waitFor("Vic in the call", `!!window.parley.myId`, 15*time.Second)
	vic.waitRemoteVideos([]string{ada.myID()}, 45*time.Second)
	vicID := vic.myID()
	ada.waitFor("Vic listed", fmt.Sprintf(`!!document.querySelector('#online-list li[data-participant-id=%q]')`, vicID), 10*time.Second)
	if n := eval[int](vic, `document.querySelector('#tiles .tile.local video')?.srcObject?.getTracks().length ?? 0`); n != 0 {
		t.Errorf("the receive-only page captured %d tracks", n)
	}
	if frames := eval[map[string]int](ada, remoteFrames)[vicID]; frames != 0 {
		t.Errorf("Ada decoded %d frames from a receive-only participant", frames)
	}
}
