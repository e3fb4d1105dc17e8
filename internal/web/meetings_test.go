package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/parley/parley/internal/servertest"
)

var meetingCodeRE = regexp.MustCompile(`id="meeting-code" class="meeting-code">([a-z-]+)<`)

// TestMeetingCodeJoin: a member's code takes them to the call; for a
// non-member the code looks exactly like an unknown one (no way to learn
// which codes exist); only the owner changes the code, and the old one
// then stops working.
func TestMeetingCodeJoin(t *testing.T) {
	s := servertest.Start(t)
	owner := s.SignUp("olga", "Olga")
	member := s.SignUp("mia", "Mia")
	stranger := s.SignUp("sam", "Sam")
	ch := s.CreateChannel(owner, "Codes")
	s.AddMember(owner, ch, "mia")
	_, body := s.Get(member, "/c/"+ch)
	m := meetingCodeRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("channel page shows no meeting code")
	}
	code := m[1]
	resp, _ := s.Get(member, "/join?code="+url.QueryEscape(strings.ToUpper(code)))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/c/"+ch+"?join=1" {
		t.Errorf("member with the code: %d to %q, want 303 to the call", resp.StatusCode, resp.Header.Get("Location"))
	}
	r1, b1 := s.Get(stranger, "/join?code="+code)
	r2, b2 := s.Get(stranger, "/join?code=zzz-zzzz-zzz")
	if r1.StatusCode != http.StatusNotFound || r2.StatusCode != http.StatusNotFound || !strings.Contains(b1, "No call you can join has this code") {
		t.Errorf("non-member's code: %d; unknown code: %d; want both 404 with the same message", r1.StatusCode, r2.StatusCode)
	}
	if strings.Contains(b1, "Codes") != strings.Contains(b2, "Codes") {
		t.Error("a non-member's page for a real code differs from an unknown code's (names the channel)")
	}
	if resp, _ := s.PostForm(member, "/c/"+ch+"/code", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a member changing the code: %d, want 403", resp.StatusCode)
	}
	if resp, _ := s.PostForm(owner, "/c/"+ch+"/code", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner changing the code: %d", resp.StatusCode)
	}
	if resp, _ := s.Get(member, "/join?code="+code); resp.StatusCode != http.StatusNotFound {
		t.Errorf("old code after the change: %d, want 404", resp.StatusCode)
	}
}

// TestQuickCallPages: only logged-in people reach a 1:1 call; an unknown
// code is a clear 404.
func TestQuickCallPages(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	resp, _ := s.PostForm(ann, "/calls", nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/q/") || !strings.HasSuffix(loc, "?join=1") {
		t.Fatalf("new 1:1 call: %d to %q", resp.StatusCode, loc)
	}
	code := strings.TrimSuffix(strings.TrimPrefix(loc, "/q/"), "?join=1")
	if r, body := s.Get(ann, "/q/"+code); r.StatusCode != http.StatusOK || !strings.Contains(body, `data-socket-path="/ws/q/`+code+`"`) {
		t.Errorf("1:1 call page: %d", r.StatusCode)
	}
	if ok, _ := regexp.MatchString(`^[0-9]{6}$`, code); !ok {
		t.Fatalf("1:1 code %q, want 6 digits", code)
	}
	if r, body := s.Get(ann, "/q/000000x"); r.StatusCode != http.StatusNotFound || !strings.Contains(body, "No 1:1 call has this code") {
		t.Errorf("unknown 1:1 code: %d", r.StatusCode)
	}
	if r, _ := s.Get(s.Client(), "/q/"+code); !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Errorf("logged out: %d to %q, want the login page", r.StatusCode, r.Header.Get("Location"))
	}
	if st := dialStatus(t, s, s.Client(), "/ws/q/"+code, s.URL); st != http.StatusUnauthorized {
		t.Errorf("logged-out socket: %d, want 401", st)
	}
}
