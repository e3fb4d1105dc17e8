package account

import (
	"strings"
	"testing"
)

// FuzzParseAPIKey: any Bearer value either splits into an id and a
// secret that make it again, or is refused; never a panic.
func FuzzParseAPIKey(f *testing.F) {
	for _, s := range []string{"pk_abc.def", "pk_.x", "pk_x.", "parley_x", "pk_a.b.c", strings.Repeat("pk_", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		id, secret, ok := ParseAPIKey(key)
		if !ok {
			return
		}
		if id == "" || secret == "" || strings.Contains(id, ".") || APIKeyPrefix+id+"."+secret != key || len(key) > 200 {
			t.Fatalf("%q parsed as %q, %q", key, id, secret)
		}
	})
}
