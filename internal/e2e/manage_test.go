package e2e_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/servertest"
)

var inviteLinkRE = regexp.MustCompile(`/invite/([A-Za-z0-9_-]+)"`)

// TestInviteSurvivesSignUpInBrowser (issue 14): Vera, who has no
// account, opens an invite link; the page offers "Log in" and "Create an
// account". She goes to log in, finds she needs an account, follows
// "Create an account", signs up, and is back at the invitation; joining
// puts her in the channel as a member. The "You joined" notice can be
// dismissed by its button. Every control is found by role and name.
func TestInviteSurvivesSignUpInBrowser(t *testing.T) {
	s := servertest.Start(t)
	owner := s.SignUp("olga", "Olga")
	ch := s.CreateChannel(owner, "Night shift")
	_, body := s.Get(owner, "/c/"+ch)
	m := inviteLinkRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the owner's page shows no invite link")
	}
	invite := "/invite/" + m[1]

	vera := newUser(t, newBrowser(t), s, "Vera")
	vera.do(chromedp.Navigate(s.URL + invite))
	vera.waitFor("the invitation", `!!document.querySelector('h1')`, 15*time.Second)
	for _, name := range []string{"Log in", "Create an account"} {
		if !vera.hasRole("link", name) {
			t.Errorf("the logged-out invitation offers no %q link (links: %q)", name, vera.roleNames("link"))
		}
	}
	vera.clickRole("link", "Log in")
	vera.waitFor("the log-in page", `location.pathname === "/login"`, 15*time.Second)
	vera.clickRole("link", "Create an account")
	vera.waitFor("the sign-up page", `location.pathname === "/signup"`, 15*time.Second)
	vera.typeRole("textbox", "Username", "vera")
	vera.typeRole("textbox", "Display name", "Vera")
	vera.typeRole("textbox", "Email", "vera@example.org")
	vera.do(fill("#password", servertest.Password)) // a password field has no role
	vera.clickRole("button", "Sign up")
	vera.waitFor("the invitation again after signing up", fmt.Sprintf(`location.pathname === %q`, invite), 15*time.Second)
	if h := vera.heading(); !strings.Contains(h, "Night shift") {
		t.Errorf("after signing up the invitation says %q, want the channel's name", h)
	}
	vera.clickRole("button", "Join channel")
	vera.waitFor("the channel's page", fmt.Sprintf(`location.pathname === "/c/%s"`, ch), 15*time.Second)
	vera.waitFor("Vera in the member list", `!!document.querySelector('#member-list li[data-username="vera"]')`, 15*time.Second)
	if _, body := s.Get(owner, "/c/"+ch); !strings.Contains(body, `data-username="vera"`) {
		t.Error("the owner's page does not list Vera as a member")
	}

	// The notice, dismissed by its button.
	vera.waitFor("the joined notice", `document.querySelector('main [role=status]')?.textContent.includes("You joined this channel.")`, 5*time.Second)
	vera.clickRole("button", "Dismiss notice")
	vera.waitFor("the notice to go", `!document.querySelector('[data-flash]')`, 5*time.Second)
	if strings.Contains(eval[string](vera, `location.search`), "done=") {
		t.Error("the address still carries the notice: a reload would repeat it")
	}
}

// TestManageDuringCallInBrowser (issue 14): Olga owns the channel and is
// in a call with Bob. From her channel page, every control found by role
// and accessible name, she adds Nell, switches the call to the server
// (SFU), makes, revokes and resets invite links, removes Nell, and gets
// a field error for a user who does not exist: none of it reloads her
// page, she stays in the call and video keeps flowing both ways. A
// success notice goes by itself; an error stays until dismissed.
func TestManageDuringCallInBrowser(t *testing.T) {
	s := servertest.Start(t)
	olgaHTTP := s.SignUp("olga", "Olga") // the same account, elsewhere
	s.SignUp("nell", "Nell")
	browser := newBrowser(t)
	olga, bob := newUser(t, browser, s, "Olga"), newUser(t, browser, s, "Bob")
	olga.logIn("olga", servertest.Password)
	olga.waitFor("the channels page", `location.pathname === "/channels"`, 15*time.Second)
	bob.signUp("bob", "Bob")
	ch := olga.createChannel("Ops")
	olga.addMember(ch, "bob")

	olga.joinCall(ch)
	bob.joinCall(ch)
	olgaID, bobID := olga.myID(), bob.myID()
	olga.waitRemoteVideos([]string{bobID}, 45*time.Second)
	bob.waitRemoteVideos([]string{olgaID}, 45*time.Second)
	eval[bool](olga, `window.__samePage = true`)
	stillInCall := func(when string) {
		t.Helper()
		if !eval[bool](olga, `window.__samePage === true`) {
			t.Fatalf("%s: Olga's page was reloaded or left", when)
		}
		if id := eval[string](olga, `window.parley?.myId || ""`); id != olgaID {
			t.Fatalf("%s: Olga is no longer in the call (id %q, was %q)", when, id, olgaID)
		}
		// Bob keeps seeing Olga while she works on the forms below the
		// call...
		bob.waitFramesRise([]string{olgaID}, 10, 15*time.Second)
		// ...and she sees him once she looks at the call again (scrolled
		// away, her page tells the server it draws his video at 0×0, and
		// the SFU pauses it: layout.js).
		eval[bool](olga, `(document.querySelector('#tiles').scrollIntoView({block: "center"}), true)`)
		olga.waitFramesRise([]string{bobID}, 10, 15*time.Second)
	}

	// In the call, the call takes the window; "Channel settings" shows
	// the channel's management with the call still running.
	olga.clickRole("button", "Channel settings")
	olga.waitFor("the settings shown", `!document.body.classList.contains("in-call")`, 5*time.Second)

	// Every management control is there for assistive technology, by
	// role and name.
	for _, c := range []struct{ role, name string }{
		{"button", "Change the code"},
		{"button", "Make moderator: Bob (@bob)"},
		{"button", "Remove Bob (@bob)"},
		{"textbox", "Add a member by username"},
		{"button", "Add member"},
		{"checkbox", "Guests wait in the lobby until a member lets them in"},
		{"button", "Turn guest link on"},
		{"combobox", "Link expires"},
		{"spinbutton", "Use limit (empty for no limit)"},
		{"button", "Create invite link"},
		{"button", "Reset invite links (revoke all, make a new one)"},
		{"combobox", "How calls carry media"},
		{"button", "Save call mode"},
		{"button", "Delete channel"},
	} {
		if !olga.hasRole(c.role, c.name) {
			t.Errorf("no %s named %q on the owner's page (%ss: %q)", c.role, c.name, c.role, olga.roleNames(c.role))
		}
	}

	// Add a member.
	olga.typeRole("textbox", "Add a member by username", "nell")
	olga.clickRole("button", "Add member")
	olga.waitFor("Nell in the member list", `!!document.querySelector('#member-list li[data-username="nell"]')`, 15*time.Second)
	olga.waitFor("the notice", `[...document.querySelectorAll('#members [role=status]')].some(n => n.textContent.includes("Member added."))`, 5*time.Second)
	if !olga.hasRole("button", "Remove Nell (@nell)") || !olga.hasRole("button", "Dismiss notice") {
		t.Errorf("after adding Nell, buttons are %q", olga.roleNames("button"))
	}
	if got := eval[string](olga, `document.activeElement?.id || ""`); got != "add-member-btn" {
		t.Errorf("focus went to %q, want back on the Add member button", got)
	}
	stillInCall("after adding Nell")

	// Change the call mode: the call moves to the server at once.
	olga.do(chromedp.SetValue("How calls carry media", "sfu", byRole("combobox", "How calls carry media")))
	olga.clickRole("button", "Save call mode")
	olga.waitFor("the mode notice", `[...document.querySelectorAll('#members [role=status]')].some(n => n.textContent.includes("Call mode saved"))`, 5*time.Second)
	olga.waitFor("Olga's call on the SFU", `window.parley.state.topology === "sfu"`, 30*time.Second)
	bob.waitFor("Bob's call on the SFU", `window.parley.state.topology === "sfu"`, 30*time.Second)
	if got := eval[string](olga, `document.querySelector('#mode').value`); got != "sfu" {
		t.Errorf("the mode shows %q after saving sfu", got)
	}
	stillInCall("after switching to the SFU")

	// Invite links: make one, revoke it, reset them all.
	countInvites := `document.querySelectorAll('#invite-list li').length`
	before := eval[int](olga, countInvites)
	olga.clickRole("button", "Create invite link")
	olga.waitFor("a new invite link", fmt.Sprintf(`%s === %d`, countInvites, before+1), 15*time.Second)
	var revoke string
	for _, n := range olga.roleNames("button") {
		if strings.HasPrefix(n, "Revoke invite link made ") {
			revoke = n
		}
	}
	if revoke == "" {
		t.Fatalf("no Revoke button among %q", olga.roleNames("button"))
	}
	olga.clickRole("button", revoke)
	olga.waitFor("one invite link fewer", fmt.Sprintf(`%s === %d`, countInvites, before), 15*time.Second)
	olga.clickRole("button", "Reset invite links (revoke all, make a new one)")
	olga.waitFor("the reset notice", `[...document.querySelectorAll('#invites [role=status]')].some(n => n.textContent.includes("All invite links revoked"))`, 15*time.Second)
	if n := eval[int](olga, countInvites); n != 1 {
		t.Errorf("after the reset %d invite links are listed, want 1", n)
	}

	// Remove a member.
	olga.clickRole("button", "Remove Nell (@nell)")
	olga.waitFor("Nell gone from the list", `!document.querySelector('#member-list li[data-username="nell"]')`, 15*time.Second)

	// A user who does not exist: the error is next to the field.
	olga.typeRole("textbox", "Add a member by username", "nobody-here")
	olga.clickRole("button", "Add member")
	olga.waitFor("the field's error", `document.querySelector('#username-error')?.textContent.includes("nobody-here") && document.querySelector('#username').getAttribute('aria-invalid') === "true"`, 15*time.Second)
	if got := eval[string](olga, `document.activeElement?.id || ""`); got != "username" {
		t.Errorf("focus went to %q, want the field in error", got)
	}
	stillInCall("after the management actions")

	// Success notices go by themselves (8 s)...
	olga.waitFor("the success notices to go", `!document.querySelector('#members [role=status]')`, 15*time.Second)
	// ...errors stay until dismissed: Nell, added again, is removed
	// elsewhere, and the Remove button on this page is then stale.
	eval[string](olga, `document.querySelector('#username').value = ""`)
	olga.typeRole("textbox", "Add a member by username", "nell")
	olga.clickRole("button", "Add member")
	if err := olga.tryWaitFor(`!!document.querySelector('#member-list li[data-username="nell"]')`, 15*time.Second); err != nil {
		t.Fatalf("Nell not back: %v\n%s\nfield %q", err, eval[string](olga, `document.querySelector('#members').innerText`), eval[string](olga, `document.querySelector('#username').value`))
	}
	action := eval[string](olga, `document.querySelector('#member-list li[data-username="nell"] form[action$="/remove"]').getAttribute('action')`)
	if resp, _ := s.PostForm(olgaHTTP, action, nil); resp.StatusCode != 303 {
		t.Fatalf("removing Nell elsewhere: status %d", resp.StatusCode)
	}
	olga.clickRole("button", "Remove Nell (@nell)")
	olga.waitFor("the error notice", `!!document.querySelector('#members [role=alert]')`, 15*time.Second)
	if olga.tryWaitFor(`!document.querySelector('#members [role=alert]')`, 9*time.Second) == nil {
		t.Error("the error notice went by itself")
	}
	olga.clickRole("button", "Dismiss notice")
	olga.waitFor("the error notice dismissed", `!document.querySelector('#members [role=alert]')`, 5*time.Second)
	stillInCall("at the end")
}

// TestManageWithoutJavaScript (issue 14): with scripts off, the same
// forms still work as plain forms: post, 303 back to the page, the
// notice rendered by the server.
func TestManageWithoutJavaScript(t *testing.T) {
	s := servertest.Start(t)
	s.SignUp("nell", "Nell")
	olga := newUser(t, newBrowser(t), s, "Olga")
	olga.signUp("olga", "Olga")
	ch := olga.createChannel("Plain")
	olga.do(chromedp.Action[chromedp.Void](func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return chromedp.Void{}, err
	}))
	olga.do(chromedp.Navigate(s.URL + "/c/" + ch))
	olga.typeRole("textbox", "Add a member by username", "nell")
	olga.clickRole("button", "Add member")
	olga.waitFor("the page again, with Nell", `location.search === "?done=added" && !!document.querySelector('#member-list li[data-username="nell"]')`, 15*time.Second)
	// (location.search still says ?done=: no script of the page ran.)
	if !strings.Contains(eval[string](olga, `document.querySelector('[data-flash]')?.textContent || ""`), "Member added.") {
		t.Error("no server-rendered notice after the plain form")
	}
	olga.do(chromedp.SetValue("the call mode", "p2p", byRole("combobox", "How calls carry media")))
	olga.clickRole("button", "Save call mode")
	olga.waitFor("the mode saved", `location.search === "?done=mode" && document.querySelector('#mode').value === "p2p"`, 15*time.Second)
}
