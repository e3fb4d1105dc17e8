package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/testtool"
)

func TestSignUpValidationKeepsInput(t *testing.T) {
	s := servertest.Start(t)
	c := s.Client()
	resp, body := s.PostForm(c, "/signup", url.Values{
		"username": {"x"}, "display_name": {"Ada Lovelace"}, "email": {"not-an-email"}, "password": {"short"},
	})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", resp.StatusCode)
	}
	for _, id := range []string{`id="username-error"`, `id="email-error"`, `id="password-error"`} {
		if !strings.Contains(body, id) {
			t.Errorf("page lacks %s next to the field", id)
		}
	}
	if strings.Contains(body, `id="display_name-error"`) {
		t.Error("valid display name was flagged")
	}
	if !strings.Contains(body, `value="Ada Lovelace"`) || !strings.Contains(body, `value="not-an-email"`) {
		t.Error("the user's other input was not kept")
	}
	if strings.Contains(body, `value="short"`) {
		t.Error("the password was echoed back into the page")
	}

	// A taken username is reported on the username field.
	s.SignUp("ada", "Ada")
	resp, body = s.PostForm(s.Client(), "/signup", url.Values{
		"username": {"ADA"}, "display_name": {"Other"}, "email": {"o@example.org"}, "password": {servertest.Password},
	})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="username-error"`) {
		t.Errorf("taken username: status %d, body lacks username error", resp.StatusCode)
	}
}

func TestSignUpLogInLogOut(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []servertest.Option
	}{{"sqlite", nil}, {"postgres", []servertest.Option{servertest.WithPostgres()}}} {
		t.Run(tc.name, func(t *testing.T) {
			s := servertest.Start(t, tc.opts...)
			c := s.SignUp("grace", "Grace Hopper")
			ck := s.SessionCookie(c)
			if ck == nil {
				t.Fatal("no session cookie after sign-up")
			}
			resp, body := s.Get(c, "/channels")
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Grace Hopper") {
				t.Fatalf("dashboard: status %d", resp.StatusCode)
			}

			// Cookie attributes as sent on the wire.
			c2 := s.Client()
			resp, _ = s.PostForm(c2, "/login", url.Values{"username": {"grace"}, "password": {servertest.Password}})
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/channels" {
				t.Fatalf("login: status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			raw := resp.Header.Get("Set-Cookie")
			for _, attr := range []string{"HttpOnly", "SameSite=Lax", "Path=/"} {
				if !strings.Contains(raw, attr) {
					t.Errorf("session cookie %q lacks %s", raw, attr)
				}
			}
			if strings.Contains(raw, "Secure") {
				t.Errorf("plain-HTTP cookie marked Secure: %q", raw)
			}

			// Log out revokes the session server-side: the old cookie no
			// longer works even if replayed.
			old := s.SessionCookie(c2)
			resp, _ = s.PostForm(c2, "/logout", nil)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("logout status %d", resp.StatusCode)
			}
			replay := s.Client()
			u, _ := url.Parse(s.URL)
			replay.Jar.SetCookies(u, []*http.Cookie{old})
			resp, _ = s.Get(replay, "/channels")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
				t.Errorf("revoked session still works: status %d", resp.StatusCode)
			}
			// The first client's session is untouched.
			if resp, _ := s.Get(c, "/channels"); resp.StatusCode != http.StatusOK {
				t.Errorf("other session was revoked too: %d", resp.StatusCode)
			}
		})
	}
}

func TestLoginRateLimited(t *testing.T) {
	s := servertest.Start(t)
	s.SignUp("linus", "Linus")
	c := s.Client()
	var last *http.Response
	var body string
	for i := 0; i < 6; i++ {
		last, body = s.PostForm(c, "/login", url.Values{"username": {"linus"}, "password": {"wrong password!"}})
	}
	if last.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("6th failed login: status %d, want 429", last.StatusCode)
	}
	if last.Header.Get("Retry-After") == "" || !strings.Contains(body, "try again in") {
		t.Errorf("rate-limit response does not say when to retry (Retry-After %q)", last.Header.Get("Retry-After"))
	}
	// Even the right password is refused while the account is paused.
	resp, _ := s.PostForm(c, "/login", url.Values{"username": {"linus"}, "password": {servertest.Password}})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("correct password during lock-out: status %d, want 429", resp.StatusCode)
	}
	if !strings.Contains(body, `value="linus"`) {
		t.Error("username not kept in the login form")
	}
}

func TestLoginRedirectsOnlyWithinSite(t *testing.T) {
	s := servertest.Start(t)
	s.SignUp("nina", "Nina")
	for next, want := range map[string]string{
		"/c/abc":               "/c/abc",
		"//evil.example/x":     "/channels",
		"https://evil.example": "/channels",
		"/\\evil.example":      "/channels",
	} {
		resp, _ := s.PostForm(s.Client(), "/login?next="+url.QueryEscape(next), url.Values{"username": {"nina"}, "password": {servertest.Password}})
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("next=%q: redirected to %q, want %q", next, got, want)
		}
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	s := servertest.Start(t)
	c := s.SignUp("owner", "Owner")
	for _, h := range []map[string]string{
		{"Origin": "http://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/channels", strings.NewReader("name=Hijacked"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, _ := s.Do(c, req)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin POST with %v: status %d, want 403", h, resp.StatusCode)
		}
	}
	_, body := s.Get(c, "/channels")
	if strings.Contains(body, "Hijacked") {
		t.Error("a cross-origin POST created a channel")
	}
}

func TestChannelAuthorization(t *testing.T) {
	s := servertest.Start(t)
	owner := s.SignUp("olivia", "Olivia")
	member := s.SignUp("max", "Max")
	stranger := s.SignUp("eve", "Eve")
	ch := s.CreateChannel(owner, "Design review")
	s.AddMember(owner, ch, "max")

	// Members see the page; strangers get 403; unknown channels 404.
	if resp, body := s.Get(member, "/c/"+ch); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Design review") {
		t.Errorf("member: status %d", resp.StatusCode)
	}
	resp, body := s.Get(stranger, "/c/"+ch)
	if resp.StatusCode != http.StatusForbidden || strings.Contains(body, "Design review") || strings.Contains(body, "olivia") {
		t.Errorf("stranger: status %d, or the page leaked the channel's name or members", resp.StatusCode)
	}
	if resp, _ := s.Get(stranger, "/c/nosuchchannel"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown channel: status %d", resp.StatusCode)
	}
	if resp, _ := s.Get(s.Client(), "/c/"+ch); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("logged out: status %d, want redirect to login", resp.StatusCode)
	}

	// Chat history API.
	if resp, _ := s.Get(stranger, "/api/channels/"+ch+"/messages"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("stranger chat history: status %d", resp.StatusCode)
	}
	if resp, _ := s.Get(s.Client(), "/api/channels/"+ch+"/messages"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("logged-out chat history: status %d", resp.StatusCode)
	}
	resp, body = s.Get(member, "/api/channels/"+ch+"/messages")
	var hist struct{ Messages []any }
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &hist) != nil {
		t.Errorf("member chat history: status %d body %s", resp.StatusCode, body)
	}

	// WebSocket: refused before the upgrade.
	for name, tc := range map[string]struct {
		c    *http.Client
		path string
		want int
	}{
		"stranger":   {stranger, "/ws/c/" + ch, http.StatusForbidden},
		"logged out": {s.Client(), "/ws/c/" + ch, http.StatusUnauthorized},
		"unknown":    {member, "/ws/c/nosuch", http.StatusNotFound},
	} {
		if got := dialStatus(t, s, tc.c, tc.path, s.URL); got != tc.want {
			t.Errorf("websocket %s: status %d, want %d", name, got, tc.want)
		}
	}
	if got := dialStatus(t, s, member, "/ws/c/"+ch, "http://evil.example"); got != http.StatusForbidden {
		t.Errorf("websocket from another origin: status %d, want 403", got)
	}
	if got := dialStatus(t, s, member, "/ws/c/"+ch, s.URL); got != http.StatusSwitchingProtocols {
		t.Errorf("member websocket: status %d, want 101", got)
	}

	// Only the owner manages members.
	resp, _ = s.PostForm(member, "/c/"+ch+"/members", url.Values{"username": {"eve"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("non-owner adding a member: status %d", resp.StatusCode)
	}
	resp, _ = s.PostForm(member, "/c/"+ch+"/delete", nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("non-owner deleting: status %d", resp.StatusCode)
	}
}

func TestMembersAndInvites(t *testing.T) {
	s := servertest.Start(t)
	owner := s.SignUp("olivia", "Olivia")
	s.SignUp("max", "Max")
	guest := s.SignUp("gus", "Gus")
	ch := s.CreateChannel(owner, "Team")

	resp, body := s.PostForm(owner, "/c/"+ch+"/members", url.Values{"username": {"nobody"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="username-error"`) || !strings.Contains(body, "nobody") {
		t.Errorf("unknown user: status %d, no clear error", resp.StatusCode)
	}

	// The invite link is shown to the owner; opening it asks first, and a
	// POST joins.
	_, body = s.Get(owner, "/c/"+ch)
	i := strings.Index(body, "/invite/")
	if i < 0 {
		t.Fatal("owner's channel page shows no invite link")
	}
	code := body[i+len("/invite/"):]
	code = code[:strings.IndexByte(code, '"')]
	resp, body = s.Get(guest, "/invite/"+code)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Team") {
		t.Fatalf("invite page: status %d", resp.StatusCode)
	}
	if resp, _ := s.Get(guest, "/c/"+ch); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("opening the invite page alone made a member: %d", resp.StatusCode)
	}
	resp, _ = s.PostForm(guest, "/invite/"+code, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("accept invite: status %d", resp.StatusCode)
	}
	if resp, _ := s.Get(guest, "/c/"+ch); resp.StatusCode != http.StatusOK {
		t.Errorf("after accepting the invite: status %d", resp.StatusCode)
	}
	if resp, _ := s.Get(guest, "/invite/badcode"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("bad invite code: status %d", resp.StatusCode)
	}

	// Removing a member takes their access away.
	_, body = s.Get(owner, "/c/"+ch)
	j := strings.Index(body, "/members/")
	if j < 0 {
		t.Fatal("no remove button")
	}
	uid := body[j+len("/members/"):]
	uid = uid[:strings.IndexByte(uid, '/')]
	resp, _ = s.PostForm(owner, "/c/"+ch+"/members/"+uid+"/remove", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: status %d", resp.StatusCode)
	}
	if resp, _ := s.Get(guest, "/c/"+ch); resp.StatusCode != http.StatusForbidden {
		t.Errorf("removed member still has access: %d", resp.StatusCode)
	}
	// ... and the invite link they joined with does not bring them back
	// (issue 9 item 1).
	if resp, _ := s.PostForm(guest, "/invite/"+code, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("removed member's old invite link: status %d, want 403", resp.StatusCode)
	}
	if resp, _ := s.Get(guest, "/c/"+ch); resp.StatusCode != http.StatusForbidden {
		t.Errorf("removed member walked back in through the old invite link: %d", resp.StatusCode)
	}

	// Deleting the channel.
	resp, _ = s.PostForm(owner, "/c/"+ch+"/delete", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: status %d", resp.StatusCode)
	}
	if resp, _ := s.Get(owner, "/c/"+ch); resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleted channel: status %d", resp.StatusCode)
	}
}

func TestChannelNameValidation(t *testing.T) {
	s := servertest.Start(t)
	c := s.SignUp("val", "Val")
	resp, body := s.PostForm(c, "/channels", url.Values{"name": {"   "}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="name-error"`) {
		t.Errorf("empty channel name: status %d", resp.StatusCode)
	}
}

func TestFormBodyLimit(t *testing.T) {
	s := servertest.Start(t)
	resp, _ := s.PostForm(s.Client(), "/signup", url.Values{"username": {strings.Repeat("a", 100<<10)}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("oversized form: status %d, want 400", resp.StatusCode)
	}
}

// dialStatus opens a signaling socket as c's user and returns the HTTP
// status of the handshake.
func dialStatus(t *testing.T, s *servertest.Server, c *http.Client, path, origin string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{"Origin": {origin}}
	if ck := s.SessionCookie(c); ck != nil {
		h.Set("Cookie", ck.Name+"="+ck.Value)
	}
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+path, &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		conn.Close(websocket.StatusNormalClosure, "")
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	return resp.StatusCode
}

func TestSelfSignedTLS(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.TLS = "self-signed" }))
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("URL %s is not https", s.URL)
	}
	c := s.Client()
	resp, _ := s.PostForm(c, "/signup", url.Values{
		"username": {"tess"}, "display_name": {"Tess"}, "email": {"t@example.org"}, "password": {servertest.Password},
	})
	if raw := resp.Header.Get("Set-Cookie"); !strings.Contains(raw, "Secure") {
		t.Errorf("cookie under TLS is not Secure: %q", raw)
	}
	first := resp.TLS.PeerCertificates[0]
	if err := first.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("certificate does not cover 127.0.0.1: %v", err)
	}
	// The certificate is kept in the data dir and reused after a restart,
	// so browsers that accepted it once keep accepting it.
	s.Restart()
	resp, _ = s.Get(s.Client(), "/healthz")
	if !resp.TLS.PeerCertificates[0].Equal(first) {
		t.Error("a new certificate was made on restart")
	}
}

func TestChannelModeForm(t *testing.T) {
	s := servertest.Start(t)
	owner := s.SignUp("olga", "Olga")
	member := s.SignUp("mia", "Mia")
	ch := s.CreateChannel(owner, "Modes")
	s.AddMember(owner, ch, "mia")

	if _, body := s.Get(member, "/c/"+ch); strings.Contains(body, `id="mode-form"`) {
		t.Error("a member who is not the owner sees the call-mode form")
	}
	if resp, _ := s.PostForm(member, "/c/"+ch+"/mode", url.Values{"mode": {"sfu"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("non-owner setting the mode: status %d", resp.StatusCode)
	}
	resp, body := s.PostForm(owner, "/c/"+ch+"/mode", url.Values{"mode": {"warp"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="mode-error"`) {
		t.Errorf("bad mode: status %d", resp.StatusCode)
	}
	if resp, _ := s.PostForm(owner, "/c/"+ch+"/mode", url.Values{"mode": {"sfu"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set mode: status %d", resp.StatusCode)
	}
	if _, body := s.Get(owner, "/c/"+ch); !strings.Contains(body, `value="sfu" selected`) {
		t.Error("saved mode not shown as selected")
	}
}

func TestMetricsAndHealth(t *testing.T) {
	s := servertest.Start(t)
	resp, body := s.Get(s.Client(), "/healthz")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
	resp, body = s.Get(s.Client(), "/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	for _, name := range []string{"parley_rooms", "parley_participants", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

// TestAccessTokens: a token made on the account page is shown once, lets a
// program act as its owner with Authorization: Bearer, and stops working
// when revoked; only its owner can revoke it.
func TestAccessTokens(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	eve := s.SignUp("eve", "Eve")
	ch := s.CreateChannel(ann, "Bots")

	if resp, body := s.PostForm(ann, "/account/tokens", url.Values{"name": {"  "}}); resp.StatusCode != http.StatusUnprocessableEntity ||
		!strings.Contains(body, "Token name is required") {
		t.Errorf("empty token name: status %d", resp.StatusCode)
	}
	resp, body := s.PostForm(ann, "/account/tokens", url.Values{"name": {"recorder"}})
	m := regexp.MustCompile(`<code id="new-token" class="token">(parley_[A-Za-z0-9_-]+)</code>`).FindStringSubmatch(body)
	if resp.StatusCode != http.StatusCreated || m == nil {
		t.Fatalf("create token: status %d, no token shown", resp.StatusCode)
	}
	token := m[1]
	if _, page := s.Get(ann, "/account"); strings.Contains(page, token) || !strings.Contains(page, "recorder") {
		t.Error("the account page shows the secret again, or does not list the token")
	}

	bearer := func(tok, path string) int {
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, _ := s.Do(s.Client(), req)
		return resp.StatusCode
	}
	if got := bearer(token, "/api/channels/"+ch+"/messages"); got != http.StatusOK {
		t.Errorf("bearer token on the API: status %d, want 200", got)
	}
	if got := bearer("parley_forged", "/api/channels/"+ch+"/messages"); got != http.StatusUnauthorized {
		t.Errorf("forged token: status %d, want 401", got)
	}

	// Eve cannot revoke Ann's token (and learns nothing about it).
	id := regexp.MustCompile(`data-token-id="([a-z0-9]+)"`).FindStringSubmatch(body)
	if id == nil {
		t.Fatal("token id not on the page")
	}
	if resp, _ := s.PostForm(eve, "/account/tokens/"+id[1]+"/revoke", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("revoking someone else's token: status %d, want 404", resp.StatusCode)
	}
	if got := bearer(token, "/api/channels/"+ch+"/messages"); got != http.StatusOK {
		t.Errorf("token stopped working after a refused revoke: status %d", got)
	}
	if resp, _ := s.PostForm(ann, "/account/tokens/"+id[1]+"/revoke", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: status %d", resp.StatusCode)
	}
	if got := bearer(token, "/api/channels/"+ch+"/messages"); got != http.StatusUnauthorized {
		t.Errorf("revoked token: status %d, want 401", got)
	}
}

// TestConnectionLimitPerUser: one account may hold MaxConnectionsPerUser
// signaling sockets; one more is refused with 429 and a reason, and a
// closed socket frees its place.
func TestConnectionLimitPerUser(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.MaxConnectionsPerUser = 2 }))
	ann := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(ann, "Tabs")
	dial := func() (*websocket.Conn, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ck := s.SessionCookie(ann)
		conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/c/"+ch, &websocket.DialOptions{
			HTTPHeader: http.Header{"Origin": {s.URL}, "Cookie": {ck.Name + "=" + ck.Value}}})
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return nil, resp.StatusCode
		}
		return conn, resp.StatusCode
	}
	first, _ := dial()
	second, _ := dial()
	if first == nil || second == nil {
		t.Fatal("the first two sockets were refused")
	}
	defer second.CloseNow()
	if c, status := dial(); c != nil || status != http.StatusTooManyRequests {
		t.Fatalf("third socket: status %d, want 429", status)
	}
	first.Close(websocket.StatusNormalClosure, "")
	testtool.Eventually(t, 5*time.Second, func() bool {
		c, _ := dial()
		if c != nil {
			c.CloseNow()
		}
		return c != nil
	}, "the closed socket to free its place")
}
