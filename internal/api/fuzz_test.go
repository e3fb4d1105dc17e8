package api

import (
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzPageParams: any query string either gives a limit in range and a
// cursor key, or a problem; never a panic. A cursor this API made
// decodes back to its key.
func FuzzPageParams(f *testing.F) {
	for _, s := range []string{"", "limit=1", "limit=100&cursor=" + encodeCursor("k"), "cursor=%%%", "limit=-1", "cursor=djE6", "limit=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest("GET", "/api/v1/channels", nil)
		r.URL.RawQuery = q
		limit, after, err := pageParams(r)
		if err != nil {
			if _, ok := err.(*Problem); !ok {
				t.Fatalf("not a problem: %v", err)
			}
			return
		}
		if limit < 1 || limit > MaxLimit {
			t.Fatalf("limit %d", limit)
		}
		if after != "" {
			if got, err := decodeCursor(encodeCursor(after)); err != nil || got != after {
				t.Fatalf("round trip of %q: %q, %v", after, got, err)
			}
		}
		if v, err := url.ParseQuery(q); err == nil && v.Get("cursor") == "" && after != "" {
			t.Fatalf("a key %q from no cursor", after)
		}
	})
}

// FuzzIfMatch: any If-Match either matches, or is a 412/428 problem.
func FuzzIfMatch(f *testing.F) {
	f.Add(`"abc"`, `"abc"`)
	f.Add(`*`, `"x"`)
	f.Add(`"a", "b"`, `"b"`)
	f.Add(``, `"b"`)
	f.Fuzz(func(t *testing.T, header, current string) {
		r := httptest.NewRequest("PATCH", "/", nil)
		r.Header.Set("If-Match", header)
		err := checkIfMatch(r, current)
		if err == nil {
			return
		}
		p, ok := err.(*Problem)
		if !ok || (p.Status != 412 && p.Status != 428) {
			t.Fatalf("%v", err)
		}
		if p.Status == 428 && r.Header.Get("If-Match") != "" {
			t.Fatalf("428 with If-Match %q", header)
		}
	})
}
