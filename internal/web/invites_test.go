package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/servertest"
)

var (
	inviteCodeRE = regexp.MustCompile(`/invite/([A-Za-z0-9_-]+)"`)
	inviteIDRE   = regexp.MustCompile(`data-invite-id="([a-z0-9]+)"`)
)

// invitesOnPage returns the codes and ids of the invite links the owner's
// channel page lists, newest first.
func invitesOnPage(t *testing.T, s *servertest.Server, owner *http.Client, ch string) (codes, ids []string, body string) {
	t.Helper()
	resp, body := s.Get(owner, "/c/"+ch)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("channel page: status %d", resp.StatusCode)
	}
	for _, m := range inviteCodeRE.FindAllStringSubmatch(body, -1) {
		codes = append(codes, m[1])
	}
	for _, m := range inviteIDRE.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	if len(codes) != len(ids) {
		t.Fatalf("page lists %d links but %d ids", len(codes), len(ids))
	}
	return codes, ids, body
}

func wantStatus(t *testing.T, what string, resp *http.Response, body string, status int, text string) {
	t.Helper()
	if resp.StatusCode != status || !strings.Contains(body, text) {
		t.Errorf("%s: status %d, want %d with %q", what, resp.StatusCode, status, text)
	}
}

// TestInviteLinks drives issue 9 item 1 through the real server: the owner
// lists, makes and revokes links; a removed member's old link, an expired
// link, a used-up link and a revoked link are each refused with a page that
// says why, while others still get in.
func TestInviteLinks(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []servertest.Option
	}{{"sqlite", nil}, {"postgres", []servertest.Option{servertest.WithPostgres()}}} {
		t.Run(tc.name, func(t *testing.T) { testInviteLinks(t, servertest.Start(t, tc.opts...)) })
	}
}

func testInviteLinks(t *testing.T, s *servertest.Server) {
	owner := s.SignUp("olivia", "Olivia")
	bob := s.SignUp("bob", "Bob")
	carol := s.SignUp("carol", "Carol")
	dan := s.SignUp("dan", "Dan")
	erin := s.SignUp("erin", "Erin")
	ch := s.CreateChannel(owner, "Team")

	// A new channel comes with one link, listed with its maker, expiry,
	// uses and a Revoke button.
	codes, ids, body := invitesOnPage(t, s, owner, ch)
	if len(codes) != 1 {
		t.Fatalf("new channel lists %d invite links, want 1", len(codes))
	}
	first := codes[0]
	for _, want := range []string{"by <bdi>Olivia</bdi>", "expires ", "0 uses", "/invites/" + ids[0] + "/revoke", "Reset invite links"} {
		if !strings.Contains(body, want) {
			t.Errorf("owner's invite list lacks %q", want)
		}
	}

	// Removed member: the link they joined with is refused on the page and
	// on submit; someone else still joins through the same link.
	resp, _ := s.PostForm(bob, "/invite/"+first, nil)
	wantStatus(t, "bob joins", resp, "", http.StatusSeeOther, "")
	bobID := regexp.MustCompile(`/members/([a-z0-9]+)/remove"[^>]*>\s*<button[^>]*aria-label="Remove Bob \(@bob\)"`).FindStringSubmatch(mustGet(t, s, owner, "/c/"+ch))
	if bobID == nil {
		t.Fatal("no Remove button for Bob")
	}
	resp, _ = s.PostForm(owner, "/c/"+ch+"/members/"+bobID[1]+"/remove", nil)
	wantStatus(t, "remove bob", resp, "", http.StatusSeeOther, "")
	resp, body = s.Get(bob, "/invite/"+first)
	wantStatus(t, "removed bob opens the old link", resp, body, http.StatusForbidden, "removed you")
	resp, body = s.PostForm(bob, "/invite/"+first, nil)
	wantStatus(t, "removed bob submits the old link", resp, body, http.StatusForbidden, "removed you")
	if resp, _ := s.Get(bob, "/c/"+ch); resp.StatusCode != http.StatusForbidden {
		t.Errorf("removed bob is back in: status %d", resp.StatusCode)
	}
	resp, _ = s.PostForm(carol, "/invite/"+first, nil)
	wantStatus(t, "carol with the same link", resp, "", http.StatusSeeOther, "")

	// Use limit: the owner makes a one-use link; the second person is refused.
	resp, body = s.PostForm(owner, "/c/"+ch+"/invites", url.Values{"expires": {"1d"}, "max_uses": {"x"}})
	wantStatus(t, "bad use limit", resp, body, http.StatusUnprocessableEntity, `id="max_uses-error"`)
	resp, _ = s.PostForm(owner, "/c/"+ch+"/invites", url.Values{"expires": {"1d"}, "max_uses": {"1"}})
	wantStatus(t, "create one-use link", resp, "", http.StatusSeeOther, "")
	codes, ids, _ = invitesOnPage(t, s, owner, ch)
	if len(codes) != 2 || codes[1] != first {
		t.Fatalf("after creating a link the page lists %v, want the new one then %s", codes, first)
	}
	once, onceID := codes[0], ids[0]
	resp, _ = s.PostForm(dan, "/invite/"+once, nil)
	wantStatus(t, "dan uses the one-use link", resp, "", http.StatusSeeOther, "")
	resp, body = s.PostForm(erin, "/invite/"+once, nil)
	wantStatus(t, "erin after the use limit", resp, body, http.StatusGone, "used as many times")
	if _, _, body := invitesOnPage(t, s, owner, ch); !strings.Contains(body, "1 of 1 uses") || !strings.Contains(body, "used up") {
		t.Error("owner's list does not show the one-use link as used up")
	}

	// Revoked: the owner revokes the one-use link and the first one.
	for _, id := range []string{onceID, ids[1]} {
		resp, _ = s.PostForm(owner, "/c/"+ch+"/invites/"+id+"/revoke", nil)
		wantStatus(t, "revoke", resp, "", http.StatusSeeOther, "")
	}
	resp, body = s.PostForm(erin, "/invite/"+first, nil)
	wantStatus(t, "erin with a revoked link", resp, body, http.StatusGone, "revoked")
	resp, body = s.PostForm(owner, "/c/"+ch+"/invites/"+onceID+"/revoke", nil)
	wantStatus(t, "revoke twice", resp, body, http.StatusNotFound, "already revoked")
	if codes, _, _ := invitesOnPage(t, s, owner, ch); len(codes) != 0 {
		t.Errorf("revoked links still listed: %v", codes)
	}

	// Expired: a link that lived a millisecond. The web form offers an hour
	// at least, so this one is made through the service.
	ownerUser, err := s.Accounts().Authenticate(context.Background(), s.SessionCookie(owner).Value)
	if err != nil {
		t.Fatal(err)
	}
	short, err := s.Accounts().CreateInvite(context.Background(), ownerUser, ch, account.InviteOptions{ExpiresIn: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for !time.Now().After(short.ExpiresAt) { // wait out the link's lifetime on the clock itself
		time.Sleep(time.Millisecond)
	}
	resp, body = s.PostForm(erin, "/invite/"+short.Code, nil)
	wantStatus(t, "erin with an expired link", resp, body, http.StatusGone, "expired")
	if _, _, body := invitesOnPage(t, s, owner, ch); !strings.Contains(body, "expired") {
		t.Error("owner's list does not show the expired link as expired")
	}

	// Only the owner sees and manages links.
	if _, body := s.Get(carol, "/c/"+ch); strings.Contains(body, "/invite/") || strings.Contains(body, "invite-list") {
		t.Error("a member's channel page shows invite links")
	}
	resp, _ = s.PostForm(carol, "/c/"+ch+"/invites", nil)
	wantStatus(t, "member creates a link", resp, "", http.StatusForbidden, "")
	resp, _ = s.PostForm(carol, "/c/"+ch+"/invites/reset", nil)
	wantStatus(t, "member resets links", resp, "", http.StatusForbidden, "")

	// Reset: every earlier link dies and exactly one new one works.
	resp, _ = s.PostForm(owner, "/c/"+ch+"/invites", url.Values{"expires": {"never"}})
	wantStatus(t, "create never-expiring link", resp, "", http.StatusSeeOther, "")
	before, _, _ := invitesOnPage(t, s, owner, ch)
	resp, _ = s.PostForm(owner, "/c/"+ch+"/invites/reset", nil)
	wantStatus(t, "reset", resp, "", http.StatusSeeOther, "")
	after, _, _ := invitesOnPage(t, s, owner, ch)
	if len(after) != 1 || after[0] == before[0] {
		t.Fatalf("after reset the page lists %v, want one new link", after)
	}
	resp, body = s.PostForm(erin, "/invite/"+before[0], nil)
	wantStatus(t, "erin with a link from before the reset", resp, body, http.StatusGone, "revoked")
	resp, _ = s.PostForm(erin, "/invite/"+after[0], nil)
	wantStatus(t, "erin with the new link", resp, "", http.StatusSeeOther, "")
}

func mustGet(t *testing.T, s *servertest.Server, c *http.Client, path string) string {
	t.Helper()
	resp, body := s.Get(c, path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	return body
}
