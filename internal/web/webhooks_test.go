package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/testtool"
	"github.com/parley/parley/internal/webhook"
)

// TestWebhooksOnAccountPage: the account page adds a webhook (its secret
// shown once), refuses a bad URL or no event with the reason, lists the
// recent deliveries with their state, re-sends a finished one, and
// deletes the webhook; nobody else can do either to it.
func TestWebhooksOnAccountPage(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.WebhookRetryMin, c.WebhookRetryMax = 10*time.Millisecond, 50*time.Millisecond
	}))
	ann := s.SignUp("ann", "Ann")
	eve := s.SignUp("eve", "Eve")
	s.SignUp("bob", "Bob")
	var hits atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer hs.Close()

	// Loopback is refused by default (SSRF), with the reason.
	resp, body := s.PostForm(ann, "/account/webhooks", url.Values{"webhook_url": {hs.URL}, "events": {"member.added"}})
	wantStatus(t, "loopback URL", resp, body, http.StatusUnprocessableEntity, "webhook-allow-private")
	if !strings.Contains(body, `value="member.added" checked`) {
		t.Error("the refused form lost the ticked events")
	}
	resp, body = s.PostForm(ann, "/account/webhooks", url.Values{"webhook_url": {"https://example.org/h"}})
	wantStatus(t, "no events", resp, body, http.StatusUnprocessableEntity, "Choose at least one event")

	ctx := context.Background()
	s.Stop()
	s.Config.WebhookAllowPrivate = true
	s.Restart()
	resp, body = s.PostForm(ann, "/account/webhooks", url.Values{"webhook_url": {hs.URL + "/hook"}, "events": {"member.added", "member.removed"}})
	m := regexp.MustCompile(`<code id="new-webhook-secret" class="token">(whsec_[A-Za-z0-9_-]+)</code>`).FindStringSubmatch(body)
	if resp.StatusCode != http.StatusCreated || m == nil {
		t.Fatalf("create webhook: status %d, no secret shown", resp.StatusCode)
	}
	_, page := s.Get(ann, "/account")
	if strings.Contains(page, m[1]) || !strings.Contains(page, hs.URL+"/hook") || !strings.Contains(page, "member.added, member.removed") {
		t.Error("the account page shows the secret again, or does not list the webhook")
	}
	id := regexp.MustCompile(`data-webhook-id="(wh_[a-f0-9]+)"`).FindStringSubmatch(page)
	if id == nil {
		t.Fatal("webhook id not on the page")
	}

	ch := s.CreateChannel(ann, "Hooks")
	s.AddMember(ann, ch, "bob")
	u := annUser(t, s)
	testtool.Eventually(t, 10*time.Second, func() bool {
		ds, _ := s.Webhooks().Deliveries(ctx, u, id[1], 10)
		return len(ds) == 1 && ds[0].State == "delivered"
	}, "member.added delivered")
	_, page = s.Get(ann, "/account")
	dm := regexp.MustCompile(`data-delivery-id="(dlv_[a-f0-9]+)" data-state="delivered"`).FindStringSubmatch(page)
	if dm == nil || !strings.Contains(page, "member.added") || !strings.Contains(page, "last answer 200") {
		t.Fatalf("recent deliveries not shown:\n%s", page[strings.Index(page, "Recent deliveries"):])
	}
	if resp, _ := s.PostForm(eve, "/account/webhooks/deliveries/"+dm[1]+"/resend", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("eve re-sending ann's delivery: %d, want 404", resp.StatusCode)
	}
	if resp, _ := s.PostForm(ann, "/account/webhooks/deliveries/"+dm[1]+"/resend", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("re-send: %d", resp.StatusCode)
	}
	testtool.Eventually(t, 10*time.Second, func() bool { return hits.Load() == 2 }, "re-sent delivery arrived")

	if resp, _ := s.PostForm(eve, "/account/webhooks/"+id[1]+"/delete", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("eve deleting ann's webhook: %d, want 404", resp.StatusCode)
	}
	if resp, _ := s.PostForm(ann, "/account/webhooks/"+id[1]+"/delete", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if _, page := s.Get(ann, "/account?done=webhook-deleted"); !strings.Contains(page, `id="no-webhooks"`) || !strings.Contains(page, "Webhook deleted") {
		t.Error("webhook still listed after delete")
	}
}

func annUser(t *testing.T, s *servertest.Server) string {
	t.Helper()
	u, _, err := s.Accounts().LogIn(context.Background(), "", "ann", servertest.Password)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// TestStudioTakeFinishedWebhook: finishing a take writes its
// studio.take_finished event with the take (to the channel owner's
// webhook); finishing it again writes nothing more.
func TestStudioTakeFinishedWebhook(t *testing.T) {
	var bodies atomic.Value
	bodies.Store([]string{})
	var mu sync.Mutex
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies.Store(append(bodies.Load().([]string), string(b)))
		mu.Unlock()
	}))
	defer hs.Close()
	f := newStudioFixture(t, servertest.WithConfig(func(c *config.Config) { c.WebhookAllowPrivate = true }))
	ctx := context.Background()
	ann := annUser(t, f.s)
	if _, err := f.s.Webhooks().Create(ctx, ann, webhook.Input{URL: hs.URL, Events: []string{webhook.StudioTakeFinished}}); err != nil {
		t.Fatal(err)
	}
	k := f.newTake(t, f.bob, 0)
	for range 2 {
		if st := f.bob.json("POST", "/takes/"+k.ID+"/finish", map[string]int64{"durationMs": 700}, nil); st != http.StatusOK {
			t.Fatalf("finish: %d", st)
		}
	}
	testtool.Eventually(t, 10*time.Second, func() bool { return len(bodies.Load().([]string)) >= 1 }, "take_finished delivered")
	got := bodies.Load().([]string)
	if len(got) != 1 || !strings.Contains(got[0], `"takeId":"`+k.ID+`"`) || !strings.Contains(got[0], `"durationMs":700`) || !strings.Contains(got[0], `"type":"studio.take_finished"`) {
		t.Errorf("deliveries %v", got)
	}
}
