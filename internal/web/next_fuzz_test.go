package web

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzSafeNext: whatever comes in as next, what safeNext keeps is a path
// of this site to a browser too (which drops tabs and newlines and reads
// backslashes as slashes).
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/c/abc", "/invite/x?y=1#z", "//evil", "https://evil", "/\\evil", "/\t/evil", "/%2F/evil", "javascript:x", "", "/"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://parley.example/here")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got == "" {
			return
		}
		if got != next {
			t.Fatalf("safeNext(%q) = %q: it keeps or drops, never rewrites", next, got)
		}
		// As a browser reads it.
		seen := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(got)
		u, err := base.Parse(seen)
		if err != nil {
			t.Fatalf("safeNext kept %q, which does not parse: %v", got, err)
		}
		if u.Host != base.Host || u.Scheme != base.Scheme {
			t.Fatalf("safeNext kept %q, which leads to %s", got, u)
		}
	})
}
