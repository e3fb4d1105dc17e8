package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/mail/mailtest"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
)

// This file: forgotten passwords, email verification and the account page
// (issue 13, "Accounts"; docs/security.md, "Password reset and email
// verification").

// testClock is a time source the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// startWithMail starts a server that mails through a test SMTP server,
// with a clock the test can move.
func startWithMail(t *testing.T, opts ...servertest.Option) (*servertest.Server, *mailtest.Server, *testClock) {
	t.Helper()
	smtp := mailtest.Start(t)
	clk := &testClock{}
	s := servertest.Start(t, append([]servertest.Option{servertest.WithMail(smtp.URL()), servertest.WithAccountConfig(func(c *account.Config) {
		c.Clock = clk.Now
	})}, opts...)...)
	return s, smtp, clk
}

// signUpVerified signs a user up and takes the verification mail sent to
// them off the queue.
func signUpMailed(t *testing.T, s *servertest.Server, smtp *mailtest.Server, username, name string) *http.Client {
	t.Helper()
	c := s.SignUp(username, name)
	m := smtp.Next(10 * time.Second)
	if m.To[0] != username+"@example.org" || m.Link("/verify/") == "" {
		t.Fatalf("sign-up mail to %v without a verification link:\n%s", m.To, m.Text)
	}
	return c
}

func login(t *testing.T, s *servertest.Server, username, password string) (*http.Client, int) {
	t.Helper()
	c := s.Client()
	resp, _ := s.PostForm(c, "/login", url.Values{"username": {username}, "password": {password}})
	return c, resp.StatusCode
}

// path is the path of a link in a mail, which must point at the server.
func path(t *testing.T, s *servertest.Server, link string) string {
	t.Helper()
	if !strings.HasPrefix(link, s.URL+"/") {
		t.Fatalf("link %q does not point at the server %s", link, s.URL)
	}
	return strings.TrimPrefix(link, s.URL)
}

// TestPasswordResetOverSMTP: the forgotten-password form answers the same
// for an unknown name as for a known one (and mails nothing for it); the
// mailed link, sent over a real SMTP conversation, sets a new password
// once, ends every session and access token of the user, closes their
// sockets (4001) and ends their WHIP publisher.
func TestPasswordResetOverSMTP(t *testing.T) {
	s, smtp, _ := startWithMail(t)
	ann := signUpMailed(t, s, smtp, "ann", "Ann")
	bob := signUpMailed(t, s, smtp, "bob", "Bob")
	ch := s.CreateChannel(ann, "Standup")
	s.AddMember(ann, ch, "bob")
	sock := dialAs(t, s, ch, cookieHeader(s, ann))
	tok := token(t, s, ann, "obs")
	watcher := dialLobby(t, s, bob, ch)
	watcher.expect(signaling.TypeHello)
	pub := newPublisher(t)
	if resp, body := pub.post(s.URL+"/whip/"+ch, tok, pub.offer()); resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST: %d %s", resp.StatusCode, body)
	}
	whip := watcher.expect(signaling.TypeParticipantJoined).Participant

	anon := s.Client()
	if resp, body := s.Get(anon, "/login"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `href="/forgot"`) {
		t.Fatalf("login page has no forgot-password link: %d", resp.StatusCode)
	}
	respUnknown, bodyUnknown := s.PostForm(anon, "/forgot", url.Values{"identifier": {"nobody"}})
	s.Accounts().Flush()
	if n := smtp.Pending(); n != 0 {
		t.Fatalf("%d mails sent for an unknown account", n)
	}
	respKnown, bodyKnown := s.PostForm(anon, "/forgot", url.Values{"identifier": {"ann"}})
	if respKnown.StatusCode != http.StatusOK || respUnknown.StatusCode != respKnown.StatusCode || bodyKnown != bodyUnknown {
		t.Fatalf("answers differ: unknown %d, known %d\n--- unknown\n%s\n--- known\n%s", respUnknown.StatusCode, respKnown.StatusCode, bodyUnknown, bodyKnown)
	}
	if !strings.Contains(bodyKnown, "on its way") {
		t.Errorf("answer does not say a link is on its way:\n%s", bodyKnown)
	}
	m := smtp.Next(10 * time.Second)
	if m.To[0] != "ann@example.org" || m.From != "parley@example.org" {
		t.Errorf("mail from %q to %v", m.From, m.To)
	}
	link := path(t, s, m.Link("/reset/"))

	if resp, body := s.Get(anon, link); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Choose a new password") {
		t.Fatalf("GET reset link: %d", resp.StatusCode)
	}
	if resp, body := s.PostForm(anon, link, url.Values{"password": {"short"}}); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "too short") {
		t.Fatalf("weak password: %d", resp.StatusCode)
	}
	const newPassword = "orchid-meadow-compass"
	start := time.Now()
	resp, _ := s.PostForm(anon, link, url.Values{"password": {newPassword}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?done=reset" {
		t.Fatalf("reset: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, reason := sock.closedWithin(time.Second, start); code != 4001 || !strings.Contains(reason, "password was reset") {
		t.Errorf("the old session's socket closed with %d %q, want 4001 saying the password was reset", code, reason)
	}
	deadline := time.After(time.Until(start.Add(time.Second)))
	for gone := false; !gone; {
		select {
		case m, ok := <-watcher.msgs:
			if !ok {
				t.Fatal("the watching member's socket closed")
			}
			gone = m.Type == signaling.TypeParticipantLeft && m.ID == whip.ID
		case <-deadline:
			t.Fatal("ann's WHIP publisher is still in the call 1s after the reset")
		}
	}
	if resp, _ := request(t, http.MethodGet, s.URL+"/api/channels/"+ch+"/messages", tok, "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("ann's access token after the reset: %d, want 401", resp.StatusCode)
	}
	if resp, _ := s.Get(ann, "/channels"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("old session still logged in: %d", resp.StatusCode)
	}
	if _, code := login(t, s, "ann", servertest.Password); code != http.StatusUnauthorized {
		t.Errorf("old password: %d, want 401", code)
	}
	if _, code := login(t, s, "ann", newPassword); code != http.StatusSeeOther {
		t.Errorf("new password: %d, want 303", code)
	}
	if resp, body := s.PostForm(anon, link, url.Values{"password": {"another-fine-password"}}); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "already used") {
		t.Errorf("link used twice: %d", resp.StatusCode)
	}
	if resp, _ := s.Get(anon, link); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of a used link: %d, want 404", resp.StatusCode)
	}
}

// TestPasswordResetLinkExpires: after an hour the link is refused (410)
// and the password stays.
func TestPasswordResetLinkExpires(t *testing.T) {
	s, smtp, clk := startWithMail(t)
	signUpMailed(t, s, smtp, "ann", "Ann")
	anon := s.Client()
	s.PostForm(anon, "/forgot", url.Values{"identifier": {"ann@example.org"}})
	link := path(t, s, smtp.Next(10*time.Second).Link("/reset/"))
	clk.Advance(time.Hour + time.Second)
	if resp, body := s.Get(anon, link); resp.StatusCode != http.StatusGone || !strings.Contains(body, "expired") {
		t.Errorf("GET expired link: %d", resp.StatusCode)
	}
	if resp, _ := s.PostForm(anon, link, url.Values{"password": {"orchid-meadow-compass"}}); resp.StatusCode != http.StatusGone {
		t.Errorf("POST expired link: %d, want 410", resp.StatusCode)
	}
	if _, code := login(t, s, "ann", servertest.Password); code != http.StatusSeeOther {
		t.Errorf("old password after a refused reset: %d", code)
	}
}

// TestForgotWithoutMailAndRateLimit: with no mail server the page says to
// ask the operator; too many requests for one name are refused with 429,
// known or not.
func TestForgotWithoutMailAndRateLimit(t *testing.T) {
	s := servertest.Start(t, servertest.WithAccountConfig(func(c *account.Config) { c.MaxMailsPerAccount = 2 }))
	s.SignUp("ann", "Ann")
	anon := s.Client()
	for _, ident := range []string{"ann", "nobody"} {
		for range 2 {
			resp, body := s.PostForm(anon, "/forgot", url.Values{"identifier": {ident}})
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "ask the server") {
				t.Fatalf("%s: %d, want a page telling to ask the operator", ident, resp.StatusCode)
			}
		}
		resp, _ := s.PostForm(anon, "/forgot", url.Values{"identifier": {ident}})
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s, third request: %d, want 429 with Retry-After", ident, resp.StatusCode)
		}
	}
	if resp, _ := s.PostForm(anon, "/forgot", url.Values{"identifier": {""}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("empty form: %d, want 422", resp.StatusCode)
	}
}

// TestVerifyEmailOverSMTP: the sign-up link confirms the address (after a
// POST: opening the link alone changes nothing); a new address replaces
// the old one only once its own link is used.
func TestVerifyEmailOverSMTP(t *testing.T) {
	s, smtp, _ := startWithMail(t)
	ann := s.SignUp("ann", "Ann")
	link := path(t, s, smtp.Next(10*time.Second).Link("/verify/"))
	if _, body := s.Get(ann, "/account"); !strings.Contains(body, "not confirmed yet") {
		t.Error("account page does not say the address is unconfirmed")
	}
	if resp, _ := s.Get(ann, link); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET verify link: %d", resp.StatusCode)
	}
	if _, body := s.Get(ann, "/account"); !strings.Contains(body, "not confirmed yet") {
		t.Error("opening the link confirmed without the button")
	}
	if resp, body := s.PostForm(ann, link, nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "ann@example.org") {
		t.Fatalf("POST verify link: %d", resp.StatusCode)
	}
	if _, body := s.Get(ann, "/account"); !strings.Contains(body, "(confirmed)") {
		t.Error("account page does not say the address is confirmed")
	}

	resp, _ := s.PostForm(ann, "/account/email", url.Values{"email": {"ann@new.example.org"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "email-pending") {
		t.Fatalf("change email: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	m := smtp.Next(10 * time.Second)
	if m.To[0] != "ann@new.example.org" {
		t.Fatalf("confirmation mail went to %v", m.To)
	}
	_, body := s.Get(ann, "/account")
	if !strings.Contains(body, `id="current-email">ann@example.org<`) || !strings.Contains(body, "ann@new.example.org") {
		t.Error("account page does not show the old address as current and the new one as pending")
	}
	if resp, _ := s.PostForm(s.Client(), path(t, s, m.Link("/verify/")), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("verify the new address: %d", resp.StatusCode)
	}
	if _, body := s.Get(ann, "/account"); !strings.Contains(body, `id="current-email">ann@new.example.org<`) {
		t.Error("the new address is not current after its link was used")
	}
	if resp, _ := s.PostForm(ann, "/account/email", url.Values{"email": {"nope"}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("bad address: %d, want 422", resp.StatusCode)
	}
}

// TestAccountNameAndPassword: the display name follows the sign-up rules;
// changing the password needs the current one and logs out every other
// session, closing its sockets, while this one stays.
func TestAccountNameAndPassword(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(ann, "Standup")
	other, _ := login(t, s, "ann", servertest.Password)
	here := dialAs(t, s, ch, cookieHeader(s, ann))
	there := dialAs(t, s, ch, cookieHeader(s, other))

	if resp, body := s.PostForm(ann, "/account/name", url.Values{"display_name": {"Ann\u200b"}}); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "invisible") {
		t.Errorf("invisible character in name: %d", resp.StatusCode)
	}
	if resp, _ := s.PostForm(ann, "/account/name", url.Values{"display_name": {"Annie"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("rename: %d", resp.StatusCode)
	}
	if _, body := s.Get(ann, "/account"); !strings.Contains(body, `value="Annie"`) {
		t.Error("new name not shown")
	}

	if resp, body := s.PostForm(ann, "/account/password", url.Values{"current_password": {"wrong password!"}, "new_password": {"orchid-meadow-compass"}}); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "not your current password") {
		t.Errorf("wrong current password: %d", resp.StatusCode)
	}
	start := time.Now()
	resp, _ := s.PostForm(ann, "/account/password", url.Values{"current_password": {servertest.Password}, "new_password": {"orchid-meadow-compass"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("change password: %d", resp.StatusCode)
	}
	if code, reason := there.closedWithin(time.Second, start); code != 4001 || !strings.Contains(reason, "password was changed") {
		t.Errorf("other session's socket closed with %d %q", code, reason)
	}
	here.alive("this session's socket")
	if resp, _ := s.Get(other, "/channels"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("other session still logged in: %d", resp.StatusCode)
	}
	if resp, _ := s.Get(ann, "/channels"); resp.StatusCode != http.StatusOK {
		t.Errorf("this session logged out: %d", resp.StatusCode)
	}
}

// TestDeleteAccount: the page says what happens to each owned channel;
// the password confirms; the channel goes to its longest-standing member,
// the one without others is deleted, and the user's sockets close.
func TestDeleteAccount(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	cat := s.SignUp("cat", "Cat")
	s.SignUp("bob", "Bob")
	shared := s.CreateChannel(ann, "Shared")
	alone := s.CreateChannel(ann, "Alone")
	s.AddMember(ann, shared, "cat")
	time.Sleep(5 * time.Millisecond) // joined_at has millisecond precision
	s.AddMember(ann, shared, "bob")
	sock := dialAs(t, s, shared, cookieHeader(s, ann))

	_, body := s.Get(ann, "/account")
	if !strings.Contains(body, "<strong>Shared</strong> goes to Cat (@cat)") || !strings.Contains(body, "<strong>Alone</strong> is deleted") {
		t.Fatalf("account page does not explain what happens to the channels:\n%s", body)
	}
	if resp, _ := s.PostForm(ann, "/account/delete", url.Values{"password": {"wrong password!"}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("wrong password: %d, want 422", resp.StatusCode)
	}
	start := time.Now()
	resp, _ := s.PostForm(ann, "/account/delete", url.Values{"password": {servertest.Password}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?done=deleted" {
		t.Fatalf("delete: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, reason := sock.closedWithin(time.Second, start); code != 4001 || !strings.Contains(reason, "deleted") {
		t.Errorf("socket closed with %d %q", code, reason)
	}
	if _, code := login(t, s, "ann", servertest.Password); code != http.StatusUnauthorized {
		t.Errorf("log in after deletion: %d", code)
	}
	_, body = s.Get(cat, "/c/"+shared)
	if !strings.Contains(body, "/c/"+shared+"/delete") {
		t.Error("cat does not own the shared channel (no delete control)")
	}
	if resp, _ := s.Get(cat, "/c/"+alone); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the channel with no one left: %d, want 404", resp.StatusCode)
	}
}
