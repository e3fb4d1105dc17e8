package apitest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// checkFails reports whether CheckBody fails the test for this answer.
func checkFails(t *testing.T, status int, ct, body string) bool {
	doc := Load(t)
	req := httptest.NewRequest("GET", "/api/v1/me", nil)
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	rec := &testing.T{}
	done := make(chan bool)
	go func() {
		defer func() { done <- rec.Failed() }()
		CheckBody(rec, doc, req, status, h, []byte(body))
	}()
	return <-done
}

// TestCheckCatchesMismatches proves the validator is not a rubber stamp:
// answers the document does not allow fail.
func TestCheckCatchesMismatches(t *testing.T) {
	ok := `{"id":"u","username":"ann","displayName":"Ann","createdAt":"2026-12-02T09:00:00Z","via":"token"}`
	if checkFails(t, 200, "application/json", ok) {
		t.Fatal("a valid answer failed")
	}
	for name, c := range map[string]struct {
		status   int
		ct, body string
	}{
		"missing member":       {200, "application/json", `{"id":"u","username":"ann","displayName":"Ann","via":"token"}`},
		"unknown member":       {200, "application/json", `{"id":"u","username":"ann","displayName":"Ann","createdAt":"2026-12-02T09:00:00Z","via":"token","x":1}`},
		"bad enum":             {200, "application/json", `{"id":"u","username":"ann","displayName":"Ann","createdAt":"2026-12-02T09:00:00Z","via":"magic"}`},
		"undocumented status":  {404, "application/problem+json", `{"type":"about:blank","title":"Not Found","status":404}`},
		"problem without type": {401, "application/problem+json", `{"title":"Unauthorized","status":401}`},
		"wrong content type":   {401, "text/plain", `nope`},
	} {
		if !checkFails(t, c.status, c.ct, c.body) {
			t.Errorf("%s: passed", name)
		}
	}
}
