package e2e_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/servertest"
)

// joinWithCode types code under "Join with a code" on the channels page.
func (u *user) joinWithCode(code string) {
	u.t.Helper()
	u.do(
		chromedp.Navigate(u.s.URL+"/channels"),
		fill("#code", code),
		chromedp.Click(chromedp.CSS("#join-code-btn")),
	)
}

// TestMeetingAndQuickCodes (issue 13, meeting codes and 1:1 calls): Bob
// joins Ada's channel call with its meeting code, typed as people type
// it; after Ada changes the code the old one no longer works. Ada starts a
// 1:1 call; Bob joins it with its 6-digit code and they see each other;
// Cyd, third, is told the call is full.
func TestMeetingAndQuickCodes(t *testing.T) {
	s := servertest.Start(t)
	browser := newBrowser(t)
	ada, bob, cyd := newUser(t, browser, s, "Ada"), newUser(t, browser, s, "Bob"), newUser(t, browser, s, "Cyd")
	ada.signUp("ada", "Ada")
	bob.signUp("bob", "Bob")
	cyd.signUp("cyd", "Cyd")
	ch := ada.createChannel("Coded")
	ada.addMember(ch, "bob")
	code := eval[string](ada, `document.querySelector('#meeting-code').textContent`)

	// Upper case, spaces for dashes: still the code.
	bob.joinWithCode(" " + upper(code[:3]) + " " + code[4:8] + " " + code[9:] + " ")
	bob.waitFor("Bob in the channel's call", `location.pathname === "/c/`+ch+`" && !!(window.parley && window.parley.myId)`, 20*time.Second)

	// Ada changes the code: the old one is refused, the new one works.
	ada.do(chromedp.Navigate(s.URL+"/c/"+ch), chromedp.Click(chromedp.CSS("#rotate-code-btn")))
	ada.waitFor("the new code", `!!document.querySelector('#meeting-code') && document.querySelector('#meeting-code').textContent !== "`+code+`"`, 10*time.Second)
	fresh := eval[string](ada, `document.querySelector('#meeting-code').textContent`)
	bob.joinWithCode(code)
	bob.waitFor("the old code refused", `/No call you can join has this code/.test(document.querySelector('#code-error')?.textContent || "")`, 10*time.Second)
	bob.joinWithCode(fresh)
	bob.waitFor("Bob in the call with the new code", `location.pathname === "/c/`+ch+`" && !!(window.parley && window.parley.myId)`, 20*time.Second)
	bob.do(chromedp.Click(chromedp.CSS("#hangup-btn")))

	// A 1:1 call.
	ada.do(chromedp.Navigate(s.URL+"/channels"), chromedp.Click(chromedp.CSS("#new-quick-call-btn")))
	ada.waitFor("Ada in her 1:1 call", `location.pathname.startsWith("/q/") && !!(window.parley && window.parley.myId)`, 20*time.Second)
	quick := eval[string](ada, `document.querySelector('#quick-code').textContent`)
	if len(quick) != 6 {
		t.Fatalf("1:1 code %q, want 6 digits", quick)
	}
	bob.joinWithCode(quick)
	bob.waitFor("Bob in the 1:1 call", `location.pathname === "/q/`+quick+`" && !!(window.parley && window.parley.myId)`, 20*time.Second)
	ids := []string{ada.myID(), bob.myID()}
	ada.waitRemoteVideos(ids[1:], 45*time.Second)
	bob.waitRemoteVideos(ids[:1], 45*time.Second)

	cyd.joinWithCode(quick)
	cyd.waitFor("Cyd told the call is full", `(() => { const t = document.querySelector('#toast');
		return !!t && !t.hidden && /this call is full/.test(t.textContent); })()`, 20*time.Second)
	if st := cyd.pageState(); st.Topology == "sfu" {
		t.Error("Cyd's page is in the call")
	}
	if got := eval[bool](cyd, `!!window.parley.myId`); got {
		t.Error("Cyd got a participant id in a full 1:1 call")
	}
	// Ada and Bob still see each other.
	ada.waitFramesRise(ids[1:], 10, 10*time.Second)
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
