package e2e_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/testtool"
	"github.com/parley/parley/internal/webhook"
)

// TestWebhooksInBrowser: in Chromium, the account page registers a
// webhook (two events ticked) and shows its secret once; a member added
// to the user's channel reaches the receiver signed with that secret; the
// page lists the delivery as delivered, and its Re-send button sends it
// again with the same event id.
func TestWebhooksInBrowser(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.WebhookAllowPrivate = true // the receiver is on loopback
		c.WebhookRetryMin, c.WebhookRetryMax = 10*time.Millisecond, 50*time.Millisecond
	}))
	var mu sync.Mutex
	var secret string
	var ids []string
	bad := 0
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		ids = append(ids, r.Header.Get(webhook.EventIDHeader))
	}))
	defer hs.Close()
	browser := newBrowser(t)
	ann := newUser(t, browser, s, "ann")
	ann.signUp("ann", "Ann")
	s.SignUp("bob", "Bob")

	ann.do(
		chromedp.Navigate(s.URL+"/account"),
		fill("#webhook_url", hs.URL+"/parley"),
		chromedp.Click(chromedp.CSS(`input[name=events][value="member.added"]`)),
		chromedp.Click(chromedp.CSS(`input[name=events][value="call.started"]`)),
		chromedp.Click(chromedp.CSS("#create-webhook")),
	)
	ann.waitFor("the new webhook's secret", `!!document.querySelector('#new-webhook-secret')`, 15*time.Second)
	sec := eval[string](ann, `document.querySelector('#new-webhook-secret').textContent`)
	if !strings.HasPrefix(sec, "whsec_") {
		t.Fatalf("secret %q", sec)
	}
	mu.Lock()
	secret = sec
	mu.Unlock()
	if got := eval[string](ann, `document.querySelector('#webhook-list').innerText`); !strings.Contains(got, "call.started, member.added") {
		t.Errorf("webhook list %q", got)
	}

	ctx := context.Background()
	u, _, err := s.Accounts().LogIn(ctx, "", "ann", servertest.Password)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Accounts().CreateChannel(ctx, u, "Hooks")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Accounts().AddMember(ctx, u, ch.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	// The page shows the delivery once it is delivered (reloaded until then).
	testtool.Eventually(t, 15*time.Second, func() bool {
		ann.do(chromedp.Navigate(s.URL + "/account"))
		return eval[bool](ann, `!!document.querySelector('#delivery-list li[data-state="delivered"]')`)
	}, "the delivered delivery on the account page")
	if got := eval[string](ann, `document.querySelector('#delivery-list').innerText`); !strings.Contains(got, "member.added") || !strings.Contains(got, "delivered") {
		t.Errorf("delivery list %q", got)
	}
	ann.do(chromedp.Click(chromedp.CSS(`#delivery-list li[data-state="delivered"] button`)))
	ann.waitFor("the re-sent flash", `document.body.innerText.includes('Delivery queued again')`, 15*time.Second)
	testtool.Eventually(t, 15*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ids) >= 2
	}, "the re-sent delivery")
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 2 || ids[0] != ids[1] || bad != 0 {
		t.Errorf("event ids %v (want the same twice), %d bad signatures", ids, bad)
	}
}
