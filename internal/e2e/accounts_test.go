package e2e_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/mail/mailtest"
	"github.com/parley/parley/internal/servertest"
)

// shiftedClock is time.Now moved forward by hand, to expire links.
type shiftedClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *shiftedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *shiftedClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// askForReset goes through "Forgot your password?" on the log-in page and
// returns the answer's text.
func (u *user) askForReset(ident string) string {
	u.t.Helper()
	u.do(
		chromedp.Navigate(u.s.URL+"/login"),
		chromedp.Click(chromedp.CSS("#forgot-link")),
		fill("#identifier", ident),
		chromedp.Click(chromedp.CSS("#forgot-submit")),
	)
	u.waitFor("the answer to the reset request", `!!document.querySelector('#forgot-sent')`, 15*time.Second)
	return eval[string](u, `document.querySelector('main').innerText`)
}

// logIn goes through the real log-in form.
func (u *user) logIn(username, password string) {
	u.t.Helper()
	u.do(
		chromedp.Navigate(u.s.URL+"/login"),
		fill("#username", username),
		fill("#password", password),
		chromedp.Click(chromedp.CSS(`form[action^="/login"] button[type=submit]`)),
	)
}

func (u *user) heading() string {
	return eval[string](u, `document.querySelector('h1')?.textContent || ""`)
}

// TestPasswordResetInBrowser is issue 13's first test: in Chromium, with a
// real SMTP conversation, a reset asked for on the log-in page arrives by
// mail; following its link and setting a new password logs the old
// session out (its open call socket closes) and lets the user log in with
// the new password; the link does not work twice; an expired link is
// refused; asking for an unknown user looks the same as for a known one
// and sends nothing.
func TestPasswordResetInBrowser(t *testing.T) {
	smtp := mailtest.Start(t)
	clk := &shiftedClock{}
	s := servertest.Start(t, servertest.WithMail(smtp.URL()), servertest.WithAccountConfig(func(c *account.Config) { c.Clock = clk.Now }))
	browser := newBrowser(t)

	ann := newUser(t, browser, s, "ann")
	ann.signUp("ann", "Ann")
	if m := smtp.Next(15 * time.Second); m.Link("/verify/") == "" {
		t.Fatalf("sign-up mail without a verification link:\n%s", m.Text)
	}
	ch := ann.createChannel("Standup")
	ann.joinCall(ch)

	// Ann, on another computer, has forgotten her password.
	elsewhere := newUser(t, browser, s, "ann elsewhere")
	unknown := elsewhere.askForReset("nobody-by-that-name")
	s.Accounts().Flush()
	if n := smtp.Pending(); n != 0 {
		t.Fatalf("%d mails sent for an unknown user", n)
	}
	known := elsewhere.askForReset("ann")
	if known != unknown {
		t.Errorf("the answer for a known user differs from an unknown one:\n--- unknown\n%s\n--- known\n%s", unknown, known)
	}
	if !strings.Contains(known, "on its way") {
		t.Errorf("the answer does not say a link is on its way:\n%s", known)
	}
	m := smtp.Next(15 * time.Second)
	if len(m.To) != 1 || m.To[0] != "ann@example.org" {
		t.Fatalf("reset mail went to %v", m.To)
	}
	link := m.Link("/reset/")
	if !strings.HasPrefix(link, s.URL+"/reset/") {
		t.Fatalf("reset link %q does not point at the server\n%s", link, m.Text)
	}

	const newPassword = "orchid-meadow-compass"
	elsewhere.do(
		chromedp.Navigate(link),
		fill("#password", newPassword),
		chromedp.Click(chromedp.CSS("#reset-submit")),
	)
	elsewhere.waitFor("the log-in page after the reset", `location.pathname === "/login" && document.body.innerText.includes("Log in with the new password")`, 15*time.Second)

	// The old session is gone: its call socket closed for good, and its
	// pages ask to log in.
	ann.waitFor("the call page to be signed out", `document.querySelector('#signal-status')?.dataset.state !== "connected" && document.body.innerText.includes("signed out")`, 10*time.Second)
	ann.do(chromedp.Navigate(s.URL + "/channels"))
	ann.waitFor("the old session to be sent to log in", `location.pathname === "/login"`, 15*time.Second)

	elsewhere.logIn("ann", newPassword)
	elsewhere.waitFor("the channels page after logging in with the new password", `location.pathname === "/channels"`, 15*time.Second)
	if got := eval[string](elsewhere, `document.body.innerText`); !strings.Contains(got, "Standup") {
		t.Errorf("logged in, but the channel list lacks Standup:\n%s", got)
	}

	// The link works once.
	elsewhere.do(chromedp.Navigate(link))
	elsewhere.waitFor("the used link's page", `!!document.querySelector('h1')`, 15*time.Second)
	if h := elsewhere.heading(); !strings.Contains(h, "not valid") {
		t.Errorf("the used link shows %q, want it refused", h)
	}

	// A link older than an hour is refused.
	other := newUser(t, browser, s, "someone at ann's desk")
	other.askForReset("ann@example.org")
	late := smtp.Next(15 * time.Second).Link("/reset/")
	clk.Advance(time.Hour + time.Second)
	other.do(chromedp.Navigate(late))
	other.waitFor("the expired link's page", `!!document.querySelector('h1')`, 15*time.Second)
	if h := other.heading(); !strings.Contains(h, "expired") {
		t.Errorf("the expired link shows %q, want it refused as expired", h)
	}
	if n := eval[int](other, `document.querySelectorAll('#reset-submit').length`); n != 0 {
		t.Error(fmt.Sprintf("the expired link still offers a form (%d buttons)", n))
	}
}

// TestAccountPageInBrowser: in Chromium, the address is confirmed through
// the mailed link; then deleting the account from the account page (which
// first says what happens to each channel) hands the shared channel to
// its other member, deletes the channel no one else is in, and signs out
// the user's open call.
func TestAccountPageInBrowser(t *testing.T) {
	smtp := mailtest.Start(t)
	s := servertest.Start(t, servertest.WithMail(smtp.URL()))
	browser := newBrowser(t)

	ann := newUser(t, browser, s, "ann")
	ann.signUp("ann", "Ann")
	verify := smtp.Next(15 * time.Second).Link("/verify/")
	bob := newUser(t, browser, s, "bob")
	bob.signUp("bob", "Bob")
	smtp.Next(15 * time.Second)

	ann.do(chromedp.Navigate(verify), chromedp.Click(chromedp.CSS("#verify-submit")))
	ann.waitFor("the confirmation", `!!document.querySelector('#verify-done')`, 15*time.Second)
	ann.do(chromedp.Navigate(s.URL + "/account"))
	ann.waitFor("the account page to say the address is confirmed", `document.querySelector('#email-status')?.textContent === "(confirmed)"`, 15*time.Second)

	shared := ann.createChannel("Shared")
	ann.addMember(shared, "bob")
	alone := ann.createChannel("Alone")
	inCall := newUser(t, browser, s, "ann in a call")
	inCall.logIn("ann", servertest.Password)
	inCall.waitFor("the channels page", `location.pathname === "/channels"`, 15*time.Second)
	inCall.joinCall(shared)

	ann.do(chromedp.Navigate(s.URL + "/account"))
	plan := eval[string](ann, `(document.querySelector('#deletion-plan')?.textContent || "").replace(/\s+/g, " ")`)
	if !strings.Contains(plan, "Shared goes to Bob (@bob)") || !strings.Contains(plan, "Alone is deleted") {
		t.Fatalf("the page does not explain what happens to the channels:\n%s", plan)
	}
	ann.do(
		fill("#password", servertest.Password),
		chromedp.Click(chromedp.CSS("#delete-account-btn")),
	)
	ann.waitFor("the log-in page saying the account is gone", `location.pathname === "/login" && document.body.innerText.includes("Your account was deleted")`, 15*time.Second)
	inCall.waitFor("ann's call to be signed out", `document.querySelector('#signal-status')?.dataset.state !== "connected" && document.body.innerText.includes("signed out")`, 10*time.Second)

	bob.do(chromedp.Navigate(s.URL + "/c/" + shared))
	bob.waitFor("bob to own the shared channel (its delete button)", `!!document.querySelector('form[action$="/delete"]')`, 15*time.Second)
	bob.do(chromedp.Navigate(s.URL + "/c/" + alone))
	bob.waitFor("the lone channel's page", `!!document.querySelector('h1')`, 15*time.Second)
	if h := bob.heading(); !strings.Contains(h, "not found") {
		t.Errorf("the channel no one else was in shows %q, want it gone", h)
	}
}
