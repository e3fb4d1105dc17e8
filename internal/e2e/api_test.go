package e2e_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/apitest"
	"github.com/parley/parley/internal/servertest"
)

// TestAPIKeyInBrowser: in Chromium, an API key is made on the account
// page (shown once), works as a Bearer credential for /api/v1, and
// stops working once revoked there; the page itself can use /api/v1
// with its cookie (same origin).
func TestAPIKeyInBrowser(t *testing.T) {
	s := servertest.Start(t)
	doc := apitest.Load(t)
	browser := newBrowser(t)
	ann := newUser(t, browser, s, "ann")
	ann.signUp("ann", "Ann")

	ann.do(chromedp.Navigate(s.URL+"/account"),
		fill("#key_name", "billing sync"),
		chromedp.Click(chromedp.CSS(`form[action="/account/api-keys"] button`)))
	ann.waitFor("the new key", `!!document.querySelector('#new-api-key')`, 15*time.Second)
	key := strings.TrimSpace(eval[string](ann, `document.querySelector('#new-api-key').textContent`))
	if !strings.HasPrefix(key, "pk_") {
		t.Fatalf("the page shows %q", key)
	}

	me := func(want int) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.URL+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, body := apitest.Do(t, doc, http.DefaultClient, req)
		if resp.StatusCode != want {
			t.Fatalf("/api/v1/me with the key: %d %s", resp.StatusCode, body)
		}
		if want == 200 {
			var m struct{ Username, Via string }
			json.Unmarshal(body, &m)
			if m.Username != "ann" || m.Via != "apikey" {
				t.Fatalf("me = %+v", m)
			}
		}
	}
	me(200)

	// The page's own fetch with the cookie is same-origin: allowed.
	status := evalAsync[float64](ann, `fetch('/api/v1/channels', {method: 'POST', headers: {'Content-Type': 'application/json'},
		body: JSON.stringify({name: 'From the page'})}).then(r => r.status)`)
	if status != 201 {
		t.Fatalf("the page's POST /api/v1/channels: %v", status)
	}

	ann.do(chromedp.Navigate(s.URL+"/account"),
		chromedp.Click(chromedp.CSS(`li[data-api-key-id] form button`)))
	ann.waitFor("the account page after revoking", `location.search.includes("done=revoked") && !document.querySelector('li[data-api-key-id]')`, 15*time.Second)
	me(401)
}
