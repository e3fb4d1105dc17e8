package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/parley/parley/internal/store/storetest"
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
	l := newLimiter(10*time.Minute, time.Second, time.Minute)
	hard := rule{key: "k", limit: 3}
	for i := range 3 {
		if d := l.admit(start.Add(time.Duration(i)*time.Minute), hard); d != 0 {
			t.Fatalf("attempt %d refused (%v)", i, d)
		}
	}
	if d := l.admit(start.Add(3*time.Minute), hard); d != 7*time.Minute {
		t.Errorf("wait = %v, want 7m (oldest leaves at 10m)", d)
	}
	if d := l.admit(start.Add(3*time.Minute), rule{key: "k", limit: -1}); d != 0 {
		t.Errorf("wait with no limit = %v, want 0", d)
	}
	// A refused attempt records nothing: once the oldest left, one fits.
	if d := l.admit(start.Add(10*time.Minute), hard); d != 0 {
		t.Errorf("wait once the oldest left = %v, want 0", d)
	}
	l.clear("k")
	if d := l.admit(start.Add(10*time.Minute), rule{key: "k", limit: 1}); d != 0 {
		t.Errorf("wait after clear = %v, want 0", d)
	}
	// undo takes an attempt back.
	l.undo(start.Add(10*time.Minute), "k")
	if d := l.admit(start.Add(10*time.Minute), rule{key: "k", limit: 1}); d != 0 {
		t.Errorf("wait after undo = %v, want 0", d)
	}

	// Several rules: all or nothing.
	l.clear("k")
	if d := l.admit(start, rule{key: "a", limit: 5}, rule{key: "b", limit: 1}); d != 0 {
		t.Fatal(d)
	}
	if d := l.admit(start, rule{key: "a", limit: 5}, rule{key: "b", limit: 1}); d != 10*time.Minute {
		t.Errorf("second attempt over b's limit: wait %v, want 10m", d)
	}
	if n := len(l.attempts["a"]); n != 1 {
		t.Errorf("a refused attempt was counted on the other key: %d attempts, want 1", n)
	}

	// Many one-off keys must not pile up once their window has passed.
	l = newLimiter(10*time.Minute, time.Second, time.Minute)
	for i := range 1000 {
		l.admit(start, rule{key: fmt.Sprint("spray", i), limit: 5})
	}
	if n := l.size(); n != 1000 {
		t.Fatalf("size = %d, want 1000", n)
	}
	l.admit(start.Add(11*time.Minute), rule{key: "fresh", limit: 5})
	if n := l.size(); n != 1 {
		t.Errorf("size after prune = %d, want 1", n)
	}
}

// TestLimiterSlowsDown: past the limit a slow rule paces attempts with a
// doubling delay after the latest one, capped, instead of refusing them
// for the rest of the window.
func TestLimiterSlowsDown(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(15*time.Minute, time.Second, 8*time.Second)
	r := rule{key: "k", limit: 3, slow: true}
	for range 3 {
		if d := l.admit(now, r); d != 0 {
			t.Fatalf("free attempt refused: %v", d)
		}
	}
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		if d := l.admit(now, r); d != want {
			t.Fatalf("wait = %v, want %v", d, want)
		}
		if d := l.admit(now.Add(want-time.Millisecond), r); d != time.Millisecond {
			t.Fatalf("just before the delay: wait %v, want 1ms", d)
		}
		now = now.Add(want)
		if d := l.admit(now, r); d != 0 {
			t.Fatalf("after the delay: wait %v, want 0", d)
		}
	}
}

// TestParallelLoginsReserveBeforeHashing: 30 parallel wrong guesses at one
// account from one address get at most MaxFailuresPerAccount password
// hashes; the rest are refused before hashing, and the right password
// inside the burst, past the limit, is refused too.
func TestParallelLoginsReserveBeforeHashing(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	s := New(Config{Argon2: TestArgon2(), MaxConcurrentHashes: 64}, db, storetest.Logger(t), nil)
	ctx := context.Background()
	if _, err := s.SignUp(ctx, SignUpInput{Username: "alice", DisplayName: "Alice", Email: "a@example.org", Password: "violet-harbor-lantern"}); err != nil {
		t.Fatal(err)
	}
	// Hold every hash until all 30 attempts have either reached the
	// hasher or been refused, so none finishes (and is recorded) early.
	var hashed atomic.Int32
	arrived := make(chan struct{}, 64)
	release := make(chan struct{})
	s.hasher.hook = func() {
		hashed.Add(1)
		arrived <- struct{}{}
		<-release
	}
	const n = 30
	var wg sync.WaitGroup
	errs := make(chan error, n)
	refused := make(chan struct{}, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := s.LogIn(ctx, "192.0.2.1", "alice", "wrong-password")
			var rl *RateLimitedError
			if errors.As(err, &rl) {
				refused <- struct{}{}
			}
			errs <- err
		}()
	}
	// The 5 admitted attempts reach the hasher; the other 25 are refused.
	for range 5 {
		<-arrived
	}
	for range n - 5 {
		<-refused
	}
	close(release)
	wg.Wait()
	close(errs)
	var bad, limited int
	for err := range errs {
		var rl *RateLimitedError
		switch {
		case errors.Is(err, ErrBadCredentials):
			bad++
		case errors.As(err, &rl):
			limited++
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if got := hashed.Load(); got != 5 || bad != 5 || limited != n-5 {
		t.Errorf("%d hashes, %d wrong-password answers, %d refusals; want 5, 5, %d", got, bad, limited, n-5)
	}
	s.hasher.hook = nil
	var rl *RateLimitedError
	if _, _, err := s.LogIn(ctx, "192.0.2.1", "alice", "violet-harbor-lantern"); !errors.As(err, &rl) {
		t.Errorf("right password after the burst: %v, want *RateLimitedError", err)
	}
}

// TestHashConcurrencyCap: no more than MaxConcurrentHashes hashes run at
// once; an attempt that finds no slot within HashQueueWait gets ErrBusy
// and is not counted against the account; a slot that frees up in time is
// taken.
func TestHashConcurrencyCap(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	s := New(Config{Argon2: TestArgon2(), MaxConcurrentHashes: 2, HashQueueWait: 50 * time.Millisecond, MaxFailuresPerIP: -1}, db, storetest.Logger(t), nil)
	ctx := context.Background()
	var running, peak atomic.Int32
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	s.hasher.hook = func() {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		arrived <- struct{}{}
		<-release
		running.Add(-1)
	}
	done := make(chan error, 10)
	for i := range 2 {
		go func() {
			_, _, err := s.LogIn(ctx, "192.0.2.1", fmt.Sprint("holder", i), "wrong-password")
			done <- err
		}()
	}
	<-arrived
	<-arrived
	// Both slots are held: more attempts wait HashQueueWait, then give up.
	for i := range 3 {
		_, _, err := s.LogIn(ctx, "192.0.2.2", "bob", "wrong-password")
		if !errors.Is(err, ErrBusy) {
			t.Fatalf("attempt %d with every slot taken: %v, want ErrBusy", i, err)
		}
	}
	var m dto.Metric
	if err := s.hasher.busy.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 3 {
		t.Errorf("busy counter = %v, want 3", got)
	}
	// A busy refusal did not count as a failure: 5 real ones still fit
	// before bob's account slows down.
	if n := len(s.limiter.attempts["user:bob"]); n != 0 {
		t.Errorf("busy refusals were counted on the account: %d", n)
	}
	// A waiter gets a slot as soon as one frees up.
	waiter := make(chan error, 1)
	go func() {
		_, _, err := s.LogIn(ctx, "192.0.2.3", "carol", "wrong-password")
		waiter <- err
	}()
	close(release)
	for range 2 {
		if err := <-done; !errors.Is(err, ErrBadCredentials) {
			t.Errorf("holder: %v", err)
		}
	}
	if err := <-waiter; !errors.Is(err, ErrBadCredentials) && !errors.Is(err, ErrBusy) {
		t.Errorf("waiter: %v", err)
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("%d hashes ran at once, want at most 2", p)
	}
	// Sign-ups share the slots. (Everything above has finished.)
	arrived = make(chan struct{}, 10)
	release = make(chan struct{})
	for i := range 2 {
		go func() { s.LogIn(ctx, "192.0.2.1", fmt.Sprint("holder", i), "wrong-password") }()
	}
	<-arrived
	<-arrived
	_, err := s.SignUp(ctx, SignUpInput{Username: "dora", DisplayName: "Dora", Email: "d@example.org", Password: "violet-harbor-lantern", IP: "192.0.2.4"})
	if !errors.Is(err, ErrBusy) {
		t.Errorf("sign-up with every slot taken: %v, want ErrBusy", err)
	}
	close(release)
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

// TestValidationMessagesInFormOrder: a form with several wrong fields gets
// every message, in the order of the form, whatever the map's order.
func TestValidationMessagesInFormOrder(t *testing.T) {
	ve := &ValidationError{
		Fields: map[string]string{"password": "p", "zeta": "z", "username": "u", "alpha": "a", "email": "e"},
		Order:  []string{"username", "display_name", "email", "password"},
	}
	for range 20 { // map iteration order varies from run to run
		if got := strings.Join(ve.Messages(), ","); got != "u,e,p,a,z" {
			t.Fatalf("messages %q, want u,e,p,a,z", got)
		}
	}
}
