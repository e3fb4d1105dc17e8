package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/servertest"
)

// fetchStatus is the HTTP status u's page gets for path (same origin,
// its cookies), without following redirects.
func (u *user) fetchStatus(path string) int {
	u.t.Helper()
	return evalAsync[int](u, fmt.Sprintf(`fetch(%q, {redirect: "manual", credentials: "same-origin"}).then(r => r.status)`, path))
}

// TestGuestThroughLobby (issue 13, guests and the lobby): Ada turns the
// guest link on; Gus, with no account, opens it, gives a name and asks to
// join; he waits until Bob, in the call, admits him; all three decode
// each other's video. Gus is labelled a guest, gets 403 on the members'
// pages, and is disconnected when Ada turns guests off.
func TestGuestThroughLobby(t *testing.T) {
	s := servertest.Start(t)
	browser := newBrowser(t)
	ada, bob, gus := newUser(t, browser, s, "Ada"), newUser(t, browser, s, "Bob"), newUser(t, browser, s, "Gus")
	ada.signUp("ada", "Ada")
	bob.signUp("bob", "Bob")
	ch := ada.createChannel("Open house")
	ada.addMember(ch, "bob")
	ada.do(chromedp.Navigate(s.URL+"/c/"+ch), chromedp.Click(chromedp.CSS("#guests-on-btn")))
	ada.waitFor("the guest link", `!!document.querySelector('#guest-url')`, 10*time.Second)
	link := eval[string](ada, `document.querySelector('#guest-url').value`)

	ada.joinCall(ch)
	bob.joinCall(ch)
	ids := []string{ada.myID(), bob.myID()}

	gus.do(chromedp.Navigate(link), fill("#name", "Gus Guest"), chromedp.Click(chromedp.CSS("#guest-enter-btn")))
	gus.waitFor("the guest's call page", `document.querySelector('#signal-status')?.dataset.state === "connected"`, 15*time.Second)
	gus.do(chromedp.Click(chromedp.CSS("#join-btn")))
	gus.waitFor("Gus told he waits", `/Waiting for someone in the call to let you in/.test(document.querySelector('#moderation-status').textContent)`, 15*time.Second)
	if eval[bool](gus, `!!window.parley.myId`) {
		t.Fatal("Gus is in the call before anyone let him in")
	}
	bob.waitFor("1 waiting on Bob's page", `(() => { const w = document.querySelector('#waiting');
		return !!w && !w.hidden && /1 waiting/.test(w.textContent) && /Gus Guest/.test(w.textContent) && /guest/.test(w.textContent); })()`, 10*time.Second)
	bob.waitFor("the arrival announced", `/Gus Guest \(guest\) is waiting to join/.test(document.querySelector('#moderation-status').textContent)`, 5*time.Second)
	bob.do(chromedp.Click(chromedp.CSS("#waiting .admit-btn")))
	gus.waitFor("Gus in the call", `!!window.parley.myId`, 15*time.Second)
	gus.waitFor("Gus told who let him in", `/Bob let you in/.test(document.querySelector('#moderation-status').textContent)`, 5*time.Second)
	ids = append(ids, gus.myID())

	for i, u := range []*user{ada, bob, gus} {
		var others []string
		for j, id := range ids {
			if j != i {
				others = append(others, id)
			}
		}
		u.waitRemoteVideos(others, 45*time.Second)
	}
	ada.waitFor("Gus labelled a guest", fmt.Sprintf(`/guest/.test(document.querySelector('#online-list li[data-participant-id=%q]')?.textContent || "")`, ids[2]), 10*time.Second)

	// Guests have the call and its chat only.
	for _, path := range []string{"/c/" + ch, "/channels", "/account", "/api/channels/" + ch + "/messages",
		"/c/" + ch + "/studio", "/api/channels/" + ch + "/studio", "/c/" + ch + "/recordings", "/api/channels/" + ch + "/recordings"} {
		if st := gus.fetchStatus(path); st != 403 {
			t.Errorf("guest GET %s: %d, want 403", path, st)
		}
	}
	if st := gus.fetchStatus("/api/g/" + link[len(link)-22:] + "/messages"); st != 200 {
		t.Errorf("guest's chat history: %d, want 200", st)
	}

	// Guests off: Gus's socket closes and the page says why; the link is dead.
	ada.do(chromedp.Navigate(s.URL+"/c/"+ch), chromedp.Click(chromedp.CSS("#guests-off-btn")))
	gus.waitFor("Gus disconnected", `/turned off guest access/.test(document.querySelector('#signal-status').textContent)`, 15*time.Second)
	if st := gus.fetchStatus(link[len(s.URL):]); st != 404 {
		t.Errorf("guest link after turning guests off: %d, want 404", st)
	}
}
