package account

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestHashAndVerifyPassword(t *testing.T) {
	t.Parallel()
	p := TestArgon2()
	h1 := hashPassword("correct horse", p)
	h2 := hashPassword("correct horse", p)
	if h1 == h2 {
		t.Error("two hashes of one password are equal: salt not random")
	}
	for _, h := range []string{h1, h2} {
		if ok, err := verifyPassword("correct horse", h); err != nil || !ok {
			t.Errorf("verify(right) = %v, %v", ok, err)
		}
		if ok, err := verifyPassword("correct horsE", h); err != nil || ok {
			t.Errorf("verify(wrong) = %v, %v", ok, err)
		}
	}
	if needsRehash(h1, p) {
		t.Error("needsRehash with the same parameters")
	}
	if !needsRehash(h1, DefaultArgon2()) {
		t.Error("needsRehash false after a parameter change")
	}

	// Known answer from the argon2 reference implementation's tests
	// (argon2id, v=19, m=65536, t=2, p=1, "password", salt "somesalt"):
	// proves the PHC encoding and parameter order match other tools.
	const reference = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	if ok, err := verifyPassword("password", reference); err != nil || !ok {
		t.Errorf("reference hash: verify = %v, %v; want true", ok, err)
	}

	for _, bad := range []string{
		"",
		"plaintext",
		"$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=64,t=0,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=64,t=1,p=1$!!!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$AAAA",
		"$argon2id$v=19$m=64,t=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	} {
		if ok, err := verifyPassword("password", bad); err == nil || ok {
			t.Errorf("verifyPassword(%q) = %v, %v; want an error", bad, ok, err)
		}
	}
}

func TestLimiterSlidingWindowAndPrune(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(10 * time.Minute)
	for i := range 3 {
		l.fail(start.Add(time.Duration(i)*time.Minute), "k")
	}
	if d := l.retryAfter("k", 3, start.Add(3*time.Minute)); d != 7*time.Minute {
		t.Errorf("retryAfter = %v, want 7m (oldest leaves at 10m)", d)
	}
	if d := l.retryAfter("k", 4, start.Add(3*time.Minute)); d != 0 {
		t.Errorf("retryAfter under the limit = %v, want 0", d)
	}
	if d := l.retryAfter("k", -1, start); d != 0 {
		t.Errorf("retryAfter with no limit = %v, want 0", d)
	}
	if d := l.retryAfter("k", 3, start.Add(10*time.Minute)); d != 0 {
		t.Errorf("retryAfter once the oldest left = %v, want 0", d)
	}
	l.clear("k")
	if d := l.retryAfter("k", 1, start.Add(10*time.Minute)); d != 0 {
		t.Errorf("retryAfter after clear = %v, want 0", d)
	}

	// Many one-off keys must not pile up once their window has passed.
	for i := range 1000 {
		l.fail(start, fmt.Sprint("spray", i))
	}
	if n := l.size(); n != 1000 {
		t.Fatalf("size = %d, want 1000", n)
	}
	l.fail(start.Add(11*time.Minute), "fresh")
	if n := l.size(); n != 1 {
		t.Errorf("size after prune = %d, want 1", n)
	}
}

func TestRandomIdentifiers(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		for _, s := range []string{newID(), newInviteCode(), newSessionToken()} {
			if seen[s] {
				t.Fatalf("duplicate %q", s)
			}
			seen[s] = true
		}
	}
	if got := len(hashToken("x")); got != 64 {
		t.Errorf("hashToken length = %d, want 64 hex characters", got)
	}
}

// TestDisplayNameRefusesBidiAndInvisible is the validation test of issue 9
// item 10: every bidi control and zero-width character the issue names is
// refused with a message saying why; ordinary names in any script are not.
func TestDisplayNameRefusesBidiAndInvisible(t *testing.T) {
	bad := []rune{
		0x202A, 0x202B, 0x202C, 0x202D, 0x202E, // embeddings and overrides
		0x2066, 0x2067, 0x2068, 0x2069, // isolates
		0x200E, 0x200F, 0x061C, // marks
		0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, // zero-width
		0x00AD, 0x180E, 0x2061, 0x2064, 0xE0041, // other format characters
		0x2028, 0x2029, // line and paragraph separators
		0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0, // blank letters
	}
	for _, r := range bad {
		for _, name := range []string{"Ann" + string(r), string(r) + "Ann", "An" + string(r) + "n"} {
			msg := checkDisplayName(name)
			if !strings.Contains(msg, "text-direction") || !strings.Contains(msg, "Remove them") {
				t.Errorf("checkDisplayName(%+q) = %q, want the invisible/text-direction message", name, msg)
			}
		}
	}
	for _, name := range []string{"Ann", "Zoë Brontë", "José María", "محمد علي", "李小龍", "Ἀριστοτέλης", "Ann (guest)", "🎸 Sam", "O'Brien-Smith"} {
		if msg := checkDisplayName(name); msg != "" {
			t.Errorf("checkDisplayName(%q) = %q, want accepted", name, msg)
		}
	}
}
