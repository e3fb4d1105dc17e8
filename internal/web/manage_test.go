package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/parley/parley/internal/servertest"
)

// TestSignUpFollowsNext (issue 14): an invite opened before having an
// account survives the log-in page, its "Create an account" link and the
// sign-up form, and sign-up ends there; targets off the site are refused.
func TestSignUpFollowsNext(t *testing.T) {
	s := servertest.Start(t)
	owner := s.SignUp("olga", "Olga")
	ch := s.CreateChannel(owner, "Secret plans")
	_, ids, body := invitesOnPage(t, s, owner, ch)
	code := inviteCodeRE.FindStringSubmatch(body)[1]
	if len(ids) != 1 {
		t.Fatalf("%d invites on the new channel", len(ids))
	}
	invite := "/invite/" + code
	// As html/template writes it into an address.
	escaped := strings.ReplaceAll(url.QueryEscape(invite), "%2F", "%2f")

	// The invite page, logged out: both ways in carry next, and it says
	// nothing about the channel.
	visitor := s.Client()
	resp, body := s.Get(visitor, invite)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logged-out invite page: status %d", resp.StatusCode)
	}
	for _, want := range []string{`href="/login?next=` + escaped + `"`, `href="/signup?next=` + escaped + `"`, ">Log in<", ">Create an account<"} {
		if !strings.Contains(body, want) {
			t.Errorf("logged-out invite page lacks %s", want)
		}
	}
	if strings.Contains(body, "Secret plans") {
		t.Error("the logged-out invite page names the channel")
	}
	// Not even whether the link works.
	if resp, _ := s.Get(visitor, "/invite/nonsense"); resp.StatusCode != http.StatusOK {
		t.Errorf("logged-out page of a bad link: status %d, want the same 200", resp.StatusCode)
	}

	// Log-in page → sign-up link → sign-up form, next all along.
	_, body = s.Get(visitor, "/login?next="+escaped)
	if !strings.Contains(body, `href="/signup?next=`+escaped+`" id="signup-link"`) {
		t.Error("the log-in page's Create an account link drops next")
	}
	_, body = s.Get(visitor, "/signup?next="+escaped)
	for _, want := range []string{`action="/signup?next=` + escaped + `"`, `href="/login?next=` + escaped + `"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the sign-up page lacks %s", want)
		}
	}
	// A refused form keeps it.
	resp, body = s.PostForm(visitor, "/signup?next="+url.QueryEscape(invite), url.Values{"username": {"x"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `action="/signup?next=`+escaped+`"`) {
		t.Errorf("refused sign-up: status %d, next kept %v", resp.StatusCode, strings.Contains(body, escaped))
	}
	resp, _ = s.PostForm(visitor, "/signup?next="+url.QueryEscape(invite), url.Values{
		"username": {"vera"}, "display_name": {"Vera"}, "email": {"vera@example.org"}, "password": {servertest.Password},
	})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != invite {
		t.Fatalf("sign-up with next: status %d to %q, want 303 to %q", resp.StatusCode, loc, invite)
	}
	// Logged in now: the same address asks to join, and joining works.
	if _, body := s.Get(visitor, invite); !strings.Contains(body, "Secret plans") || !strings.Contains(body, `id="accept-invite-btn"`) {
		t.Error("after sign-up the invite page does not offer to join the channel")
	}
	if resp, _ := s.PostForm(visitor, invite, nil); resp.Header.Get("Location") != "/c/"+ch+"?done=joined" {
		t.Errorf("joining: status %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A signed-in visitor of /signup?next= goes straight on.
	if resp, _ := s.Get(visitor, "/signup?next="+url.QueryEscape("/c/"+ch)); resp.Header.Get("Location") != "/c/"+ch {
		t.Errorf("signed-in /signup?next: to %q", resp.Header.Get("Location"))
	}

	// Off-site targets are dropped everywhere.
	for i, next := range []string{"//evil.example/x", "https://evil.example", "/\\evil.example", "/\t/evil.example", "/%09/evil.example\\", "javascript:alert(1)", "evil", "/" + strings.Repeat("a", 2000)} {
		c := s.Client()
		_, body := s.Get(c, "/signup?next="+url.QueryEscape(next))
		if strings.Contains(body, "evil") {
			t.Errorf("next=%q reached the sign-up page", next)
		}
		name := "user" + string(rune('a'+i))
		resp, _ := s.PostForm(c, "/signup?next="+url.QueryEscape(next), url.Values{
			"username": {name}, "display_name": {name}, "email": {name + "@example.org"}, "password": {servertest.Password},
		})
		if loc := resp.Header.Get("Location"); loc != "/channels" {
			t.Errorf("sign-up with next=%q: redirected to %q, want /channels", next, loc)
		}
	}
}

// postJSON posts a form as manage.js does.
func postJSON(t *testing.T, s *servertest.Server, c *http.Client, path string, form url.Values, headers ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Origin", s.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, body := s.Do(c, req)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("POST %s: Content-Type %q, want JSON\n%s", path, ct, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("POST %s: %v\n%s", path, err, body)
	}
	return resp.StatusCode, m
}

func html(m map[string]any, id string) string {
	h, _ := m["html"].(map[string]any)
	s, _ := h[id].(string)
	return s
}

// TestManageAnswersJSON (issue 14): the channel page's management forms
// answer JSON when asked (the notice, the re-rendered cards; per-field
// errors with 422), through the same handlers and so the same checks:
// owner only, logged in, same origin. The plain form still redirects.
func TestManageAnswersJSON(t *testing.T) {
	s := servertest.Start(t)
	owner := s.SignUp("olga", "Olga")
	member := s.SignUp("mark", "Mark")
	s.SignUp("nell", "Nell")
	ch := s.CreateChannel(owner, "Ops")
	s.AddMember(owner, ch, "mark")

	st, m := postJSON(t, s, owner, "/c/"+ch+"/members", url.Values{"username": {"nell"}})
	if st != http.StatusOK || m["notice"] != "Member added." || !strings.Contains(html(m, "members"), `data-username="nell"`) {
		t.Fatalf("add member: %d %v", st, m)
	}
	if !strings.HasPrefix(html(m, "members"), "\n<section class=\"card\" id=\"members\">") || !strings.Contains(html(m, "meeting-code-card"), `id="meeting-code"`) {
		t.Errorf("the answer's cards are not the page's:\n%s", html(m, "members"))
	}
	st, m = postJSON(t, s, owner, "/c/"+ch+"/members", url.Values{"username": {"nobody"}})
	if f, _ := m["fields"].(map[string]any); st != http.StatusUnprocessableEntity || f["username"] == nil || m["error"] == "" {
		t.Errorf("unknown username: %d %v, want 422 with a username error", st, m)
	}
	st, m = postJSON(t, s, owner, "/c/"+ch+"/mode", url.Values{"mode": {"sfu"}})
	if st != http.StatusOK || !strings.Contains(html(m, "members"), `value="sfu" selected`) {
		t.Errorf("set mode: %d %v", st, m)
	}
	st, m = postJSON(t, s, owner, "/c/"+ch+"/mode", url.Values{"mode": {"carrier-pigeon"}})
	if f, _ := m["fields"].(map[string]any); st != http.StatusUnprocessableEntity || f["mode"] == nil {
		t.Errorf("bad mode: %d %v", st, m)
	}
	st, m = postJSON(t, s, owner, "/c/"+ch+"/invites", url.Values{"expires": {"1d"}, "max_uses": {"3"}})
	if st != http.StatusOK || strings.Count(html(m, "members"), "data-invite-id=") != 2 {
		t.Errorf("create invite: %d, %d invites listed", st, strings.Count(html(m, "members"), "data-invite-id="))
	}
	st, m = postJSON(t, s, owner, "/c/"+ch+"/invites", url.Values{"max_uses": {"lots"}})
	if f, _ := m["fields"].(map[string]any); st != http.StatusUnprocessableEntity || f["max_uses"] == nil {
		t.Errorf("bad use limit: %d %v", st, m)
	}
	_, body := s.Get(owner, "/c/"+ch)
	id := inviteIDRE.FindStringSubmatch(body)[1]
	st, m = postJSON(t, s, owner, "/c/"+ch+"/invites/"+id+"/revoke", nil)
	if st != http.StatusOK || strings.Contains(html(m, "members"), `data-invite-id="`+id+`"`) {
		t.Errorf("revoke invite: %d, still listed", st)
	}
	if st, m = postJSON(t, s, owner, "/c/"+ch+"/invites/"+id+"/revoke", nil); st != http.StatusNotFound || m["error"] == "" {
		t.Errorf("revoke twice: %d %v, want 404", st, m)
	}
	if st, m = postJSON(t, s, owner, "/c/"+ch+"/invites/reset", nil); st != http.StatusOK || strings.Count(html(m, "members"), "data-invite-id=") != 1 {
		t.Errorf("reset invites: %d %v", st, m)
	}
	var markID string
	for _, part := range strings.Split(html(m, "members"), `action="/c/`+ch+`/members/`) {
		if strings.Contains(part, `/remove"><button class="btn btn-small btn-danger" type="submit" aria-label="Remove Mark`) {
			markID, _, _ = strings.Cut(part, "/")
		}
	}
	if st, m = postJSON(t, s, owner, "/c/"+ch+"/members/"+markID+"/moderator", url.Values{"on": {"1"}}); st != http.StatusOK || !strings.Contains(html(m, "members"), "Unmake moderator: Mark (@mark)") {
		t.Errorf("make moderator: %d %v", st, m)
	}
	if st, m = postJSON(t, s, owner, "/c/"+ch+"/guests", url.Values{"lobby": {"1"}}); st != http.StatusOK || !strings.Contains(html(m, "members"), `id="guest-url"`) {
		t.Errorf("guest link on: %d %v", st, m)
	}
	if st, m = postJSON(t, s, owner, "/c/"+ch+"/guests/off", nil); st != http.StatusOK || strings.Contains(html(m, "members"), `id="guest-url"`) {
		t.Errorf("guest link off: %d %v", st, m)
	}
	if st, m = postJSON(t, s, owner, "/c/"+ch+"/members/"+markID+"/remove", nil); st != http.StatusOK || strings.Contains(html(m, "members"), `data-username="mark"`) {
		t.Errorf("remove member %q: %d, still listed", markID, st)
	}
	// Removing the owner: a message for no field of the form.
	_, page := s.Get(owner, "/c/"+ch)
	_, rest, _ := strings.Cut(page, `data-user-id="`)
	ownerID, _, _ := strings.Cut(rest, `"`)
	st, m = postJSON(t, s, owner, "/c/"+ch+"/members/"+ownerID+"/remove", nil)
	if f, _ := m["fields"].(map[string]any); st != http.StatusUnprocessableEntity || f["user"] == nil {
		t.Errorf("removing the owner: %d %v, want 422 with a user error", st, m)
	}
	if st, m = postJSON(t, s, owner, "/c/"+ch+"/code", nil); st != http.StatusOK || m["notice"] == "" {
		t.Errorf("new code: %d %v", st, m)
	}

	// The same checks as the plain forms.
	if st, m = postJSON(t, s, member, "/c/"+ch+"/mode", url.Values{"mode": {"p2p"}}); st != http.StatusForbidden && st != http.StatusNotFound {
		t.Errorf("a removed member's change: %d %v", st, m)
	}
	if st, _ = postJSON(t, s, s.Client(), "/c/"+ch+"/mode", url.Values{"mode": {"p2p"}}); st != http.StatusUnauthorized {
		t.Errorf("logged out: %d, want 401", st)
	}
	if st, _ = postJSON(t, s, owner, "/c/"+ch+"/mode", url.Values{"mode": {"p2p"}}, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"); st != http.StatusForbidden {
		t.Errorf("cross-origin: %d, want 403", st)
	}
	if _, body := s.Get(owner, "/c/"+ch); !strings.Contains(body, `value="sfu" selected`) {
		t.Error("a refused change changed the mode")
	}
	// Plain forms: 303 back to the page, errors in the page.
	resp, _ := s.PostForm(owner, "/c/"+ch+"/mode", url.Values{"mode": {"p2p"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/c/"+ch+"?done=mode#mode-form" {
		t.Errorf("plain form: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = s.PostForm(owner, "/c/"+ch+"/members", url.Values{"username": {"nobody"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="username-error"`) {
		t.Errorf("plain form with an error: %d", resp.StatusCode)
	}
}
