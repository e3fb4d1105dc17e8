package account_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
)

// clock is a fake time source the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const goodPassword = "violet-harbor-lantern"

func newService(t *testing.T, db *store.DB, cfg account.Config) (*account.Service, *clock) {
	t.Helper()
	if cfg.Argon2 == (account.Argon2Params{}) {
		cfg.Argon2 = account.TestArgon2()
	}
	c := newClock()
	return account.New(cfg, db, storetest.Logger(t), c.Now), c
}

func signUp(t *testing.T, s *account.Service, username string) store.User {
	t.Helper()
	u, err := s.SignUp(context.Background(), account.SignUpInput{
		Username: username, DisplayName: strings.ToUpper(username[:1]) + username[1:],
		Email: username + "@example.com", Password: goodPassword, LinkBase: "https://meet.example.org",
	})
	if err != nil {
		t.Fatalf("SignUp(%s): %v", username, err)
	}
	return u
}

// wantValidation checks err is a *ValidationError naming exactly field,
// whose message contains want.
func wantValidation(t *testing.T, what string, err error, field, want string) {
	t.Helper()
	var ve *account.ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("%s: error = %v, want *ValidationError on %q", what, err, field)
		return
	}
	if len(ve.Fields) != 1 {
		t.Errorf("%s: fields = %v, want only %q", what, ve.Fields, field)
	}
	msg, ok := ve.Fields[field]
	if !ok {
		t.Errorf("%s: fields = %v, want %q", what, ve.Fields, field)
		return
	}
	if !strings.Contains(msg, want) {
		t.Errorf("%s: %s message %q does not contain %q", what, field, msg, want)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error = %v, want %v", what, err, target)
	}
}

func TestSignUpValidation(t *testing.T) {
	t.Parallel()
	ok := account.SignUpInput{Username: "valid_user", DisplayName: "Val", Email: "val@example.com", Password: goodPassword}
	tests := []struct {
		name  string
		edit  func(*account.SignUpInput)
		field string
		want  string // part of the message
	}{
		{"display name right-to-left override", func(in *account.SignUpInput) { in.DisplayName = "Ann\u202egnp.exe" }, "display_name", "text-direction"},
		{"display name zero-width space", func(in *account.SignUpInput) { in.DisplayName = "A\u200bnn" }, "display_name", "text-direction"},
		{"username empty", func(in *account.SignUpInput) { in.Username = "  " }, "username", "required"},
		{"username short", func(in *account.SignUpInput) { in.Username = "ab" }, "username", "at least 3"},
		{"username long", func(in *account.SignUpInput) { in.Username = strings.Repeat("a", 33) }, "username", "at most 32"},
		{"username space", func(in *account.SignUpInput) { in.Username = "bob smith" }, "username", "only contain"},
		{"username symbol", func(in *account.SignUpInput) { in.Username = "bob!" }, "username", "only contain"},
		{"username non-ascii", func(in *account.SignUpInput) { in.Username = "jürgen" }, "username", "only contain"},
		{"username leading underscore", func(in *account.SignUpInput) { in.Username = "_bob" }, "username", "start with a letter or a digit"},
		{"username leading dot", func(in *account.SignUpInput) { in.Username = ".bob" }, "username", "start with a letter or a digit"},
		{"display name empty", func(in *account.SignUpInput) { in.DisplayName = " \t " }, "display_name", "required"},
		{"display name long", func(in *account.SignUpInput) { in.DisplayName = strings.Repeat("é", 65) }, "display_name", "at most 64"},
		{"display name control", func(in *account.SignUpInput) { in.DisplayName = "Bo\x07b" }, "display_name", "invisible"},
		{"display name newline", func(in *account.SignUpInput) { in.DisplayName = "Bo\nb" }, "display_name", "invisible"},
		{"display name bad utf8", func(in *account.SignUpInput) { in.DisplayName = "Bo\xffb" }, "display_name", "invalid"},
		{"email empty", func(in *account.SignUpInput) { in.Email = "" }, "email", "required"},
		{"email garbage", func(in *account.SignUpInput) { in.Email = "not-an-address" }, "email", "name@example.com"},
		{"email with name", func(in *account.SignUpInput) { in.Email = "Val <val@example.com>" }, "email", "name@example.com"},
		{"email no dot", func(in *account.SignUpInput) { in.Email = "val@localhost" }, "email", "full domain"},
		{"email trailing dot", func(in *account.SignUpInput) { in.Email = "val@example." }, "email", ""},
		{"email long", func(in *account.SignUpInput) { in.Email = strings.Repeat("a", 250) + "@example.com" }, "email", "at most 254"},
		{"password short", func(in *account.SignUpInput) { in.Password = "abc123xyz" }, "password", "at least 10"},
		{"password long", func(in *account.SignUpInput) { in.Password = strings.Repeat("abcdef", 43) }, "password", "at most 256"},
		{"password is username", func(in *account.SignUpInput) { in.Username = "longusername"; in.Password = "LongUserName" }, "password", "same as your username"},
		{"password few distinct", func(in *account.SignUpInput) { in.Password = "abcdabcdabcd" }, "password", "at least 5 different"},
		{"password common", func(in *account.SignUpInput) { in.Password = "Password123" }, "password", "too common"},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s, _ := newService(t, db, account.Config{})
		for _, tt := range tests {
			in := ok
			tt.edit(&in)
			_, err := s.SignUp(context.Background(), in)
			wantValidation(t, tt.name, err, tt.field, tt.want)
		}

		// Several problems are reported together, one per field.
		_, err := s.SignUp(context.Background(), account.SignUpInput{Username: "x", Email: "nope", Password: "short"})
		var ve *account.ValidationError
		if !errors.As(err, &ve) || len(ve.Fields) != 4 {
			t.Errorf("all-bad input: %v, want 4 fields", err)
		} else if got := ve.Error(); !strings.HasPrefix(got, "invalid input: display_name: ") {
			t.Errorf("Error() = %q, want fields in sorted order", got)
		}

		// Edge values that are fine.
		for _, in := range []account.SignUpInput{
			{Username: "abc", DisplayName: "A", Email: "a@b.co", Password: "abcde12345"},
			{Username: "9lives", DisplayName: strings.Repeat("é", 64), Email: "n@x.example.org", Password: strings.Repeat("abcdefgh", 32)},
			{Username: strings.Repeat("z", 32), DisplayName: "Zed", Email: "z@example.com", Password: "  spaces count too  "},
		} {
			if _, err := s.SignUp(context.Background(), in); err != nil {
				t.Errorf("SignUp(%+v): %v", in, err)
			}
		}
	})
}

func TestSignUpNormalizesAndDetectsDuplicates(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, clk := newService(t, db, account.Config{})
		u, err := s.SignUp(ctx, account.SignUpInput{
			Username: "  Alice.B-1 ", DisplayName: "  Alice B  ", Email: " alice@example.com ", Password: goodPassword,
		})
		if err != nil {
			t.Fatal(err)
		}
		if u.Username != "alice.b-1" || u.DisplayName != "Alice B" || u.Email != "alice@example.com" {
			t.Errorf("SignUp stored %+v; want lower-case username, trimmed name and email", u)
		}
		if !u.CreatedAt.Equal(clk.Now()) {
			t.Errorf("CreatedAt = %v, want the injected clock %v", u.CreatedAt, clk.Now())
		}
		if ok, _ := regexp.MatchString(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`, u.PasswordHash); !ok {
			t.Errorf("PasswordHash = %q, want PHC argon2id with 16-byte salt and 32-byte key", u.PasswordHash)
		}
		if ok, _ := regexp.MatchString(`^[a-z2-7]{20}$`, u.ID); !ok {
			t.Errorf("ID = %q, want 20 lower-case base32 characters", u.ID)
		}
		stored, err := db.UserByID(ctx, u.ID)
		if err != nil || stored != u {
			t.Errorf("stored user = %+v, %v; want %+v", stored, err, u)
		}

		_, err = s.SignUp(ctx, account.SignUpInput{Username: "ALICE.B-1", DisplayName: "Other", Email: "o@example.com", Password: goodPassword})
		wantValidation(t, "duplicate username", err, "username", "Username is taken. Pick another one.")
	})
}

func TestLogIn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, _ := newService(t, db, account.Config{})
		alice := signUp(t, s, "alice")

		u, token, err := s.LogIn(ctx, "10.0.0.1", " ALICE ", goodPassword)
		if err != nil {
			t.Fatal(err)
		}
		if u.ID != alice.ID {
			t.Errorf("LogIn user = %s, want %s", u.ID, alice.ID)
		}
		if ok, _ := regexp.MatchString(`^[A-Za-z0-9_-]{43}$`, token); !ok {
			t.Errorf("token = %q, want 32 bytes of unpadded base64url", token)
		}
		if got, err := s.Authenticate(ctx, token); err != nil || got.ID != alice.ID {
			t.Errorf("Authenticate(new token) = %s, %v", got.ID, err)
		}

		_, _, err = s.LogIn(ctx, "10.0.0.1", "alice", goodPassword+"x")
		wantErr(t, "wrong password", err, account.ErrBadCredentials)
		_, _, err = s.LogIn(ctx, "10.0.0.1", "nobody", goodPassword)
		wantErr(t, "unknown user", err, account.ErrBadCredentials)
		_, _, err = s.LogIn(ctx, "10.0.0.1", "", "")
		wantErr(t, "empty input", err, account.ErrBadCredentials)

		// Every login gets its own session.
		_, token2, err := s.LogIn(ctx, "10.0.0.1", "alice", goodPassword)
		if err != nil || token2 == token {
			t.Errorf("second LogIn: token reused or error %v", err)
		}
	})
}

// TestLogInRateLimitPerAccount: past MaxFailuresPerAccount failures from
// anywhere, attempts on the account are slowed down (1 s after the last,
// doubling), not refused for the whole window; a success forgives them.
func TestLogInRateLimitPerAccount(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, clk := newService(t, db, account.Config{})
		signUp(t, s, "alice")

		// Five failures from different addresses: the account count must
		// not depend on the address.
		for i := range 5 {
			_, _, err := s.LogIn(ctx, fmt.Sprintf("10.0.0.%d", i), "alice", "wrong-password")
			wantErr(t, fmt.Sprintf("failure %d", i), err, account.ErrBadCredentials)
		}
		// The next attempt, even with the right password, waits a second,
		// without the password being checked.
		_, _, err := s.LogIn(ctx, "10.9.9.9", "Alice", goodPassword)
		var rl *account.RateLimitedError
		if !errors.As(err, &rl) || rl.RetryAfter != time.Second {
			t.Fatalf("6th attempt: %v, want *RateLimitedError with RetryAfter 1s", err)
		}
		if !strings.Contains(rl.Error(), "1s") {
			t.Errorf("Error() = %q, want the wait", rl.Error())
		}
		// Each further failure doubles the pause.
		clk.Advance(time.Second)
		_, _, err = s.LogIn(ctx, "10.0.0.9", "alice", "wrong-password")
		wantErr(t, "failure after the pause", err, account.ErrBadCredentials)
		if _, _, err = s.LogIn(ctx, "10.9.9.9", "alice", goodPassword); !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
			t.Fatalf("after 6 failures: %v, want RetryAfter 2s", err)
		}
		// Another account is unaffected.
		signUp(t, s, "bob")
		if _, _, err := s.LogIn(ctx, "10.9.9.9", "bob", goodPassword); err != nil {
			t.Errorf("bob: %v", err)
		}

		clk.Advance(2 * time.Second)
		if _, _, err := s.LogIn(ctx, "10.9.9.9", "alice", goodPassword); err != nil {
			t.Fatalf("after the pause: %v", err)
		}
		// Success cleared the account's failures: five more are free.
		for i := range 5 {
			_, _, err := s.LogIn(ctx, "10.0.1.1", "alice", "wrong-password")
			wantErr(t, fmt.Sprintf("failure after success %d", i), err, account.ErrBadCredentials)
		}
		// That address is now refused for alice until its failures leave
		// the 15 minute window...
		if _, _, err = s.LogIn(ctx, "10.0.1.1", "alice", goodPassword); !errors.As(err, &rl) || rl.RetryAfter != 15*time.Minute {
			t.Errorf("failing address after 5 fresh failures: %v, want RetryAfter 15m", err)
		}
		// ...while any other address only waits the pause.
		if _, _, err = s.LogIn(ctx, "10.0.2.2", "alice", goodPassword); !errors.As(err, &rl) || rl.RetryAfter != time.Second {
			t.Errorf("other address after 5 fresh failures: %v, want RetryAfter 1s", err)
		}
	})
}

// TestLogInAttackerCannotLockOutOwner: a stranger failing on an account
// from one address is refused there for the window, but the owner, from
// another address, waits at most the slow-down pause; the stranger's
// refused attempts do not lengthen it.
func TestLogInAttackerCannotLockOutOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clk := newService(t, storetest.OpenSQLite(t), account.Config{})
	signUp(t, s, "alice")
	for i := range 5 {
		_, _, err := s.LogIn(ctx, "192.0.2.66", "alice", "wrong-password")
		wantErr(t, fmt.Sprintf("attacker failure %d", i), err, account.ErrBadCredentials)
	}
	var rl *account.RateLimitedError
	for i := range 100 {
		_, _, err := s.LogIn(ctx, "192.0.2.66", "alice", fmt.Sprint("guess", i))
		if !errors.As(err, &rl) || rl.RetryAfter < 14*time.Minute {
			t.Fatalf("attacker attempt %d: %v, want refused for the window", i, err)
		}
		clk.Advance(100 * time.Millisecond)
	}
	// 10 s have passed: the owner's pause (1 s) is long over.
	if _, _, err := s.LogIn(ctx, "198.51.100.1", "alice", goodPassword); err != nil {
		t.Errorf("owner from another address: %v, want logged in", err)
	}
	// Even at once after the attacker's failures the owner waits only the
	// pause.
	signUp(t, s, "carol")
	for range 5 {
		s.LogIn(ctx, "192.0.2.66", "carol", "wrong-password")
	}
	_, _, err := s.LogIn(ctx, "198.51.100.2", "carol", goodPassword)
	if !errors.As(err, &rl) || rl.RetryAfter > time.Second {
		t.Fatalf("owner right after the attack: %v, want a pause of at most 1s", err)
	}
	clk.Advance(rl.RetryAfter)
	if _, _, err := s.LogIn(ctx, "198.51.100.2", "carol", goodPassword); err != nil {
		t.Errorf("owner after the pause: %v", err)
	}
}

// TestSignUpRateLimitPerIP: one address may make MaxSignUpsPerIP sign-ups
// (taken usernames count: they cost a hash too; invalid forms do not) in
// SignUpWindow; others are not affected.
func TestSignUpRateLimitPerIP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clk := newService(t, storetest.OpenSQLite(t), account.Config{MaxSignUpsPerIP: 3})
	in := func(name, ip string) account.SignUpInput {
		return account.SignUpInput{Username: name, DisplayName: name, Email: name + "@example.org", Password: goodPassword, IP: ip}
	}
	if _, err := s.SignUp(ctx, account.SignUpInput{Username: "x", IP: "192.0.2.1"}); err == nil {
		t.Fatal("invalid sign-up accepted")
	}
	for _, name := range []string{"user1", "user2", "user2"} {
		s.SignUp(ctx, in(name, "192.0.2.1"))
		clk.Advance(time.Minute)
	}
	_, err := s.SignUp(ctx, in("user4", "192.0.2.1"))
	var rl *account.RateLimitedError
	if !errors.As(err, &rl) || !rl.SignUp || rl.RetryAfter != 57*time.Minute {
		t.Fatalf("4th sign-up from one address: %v, want *RateLimitedError for sign-ups with RetryAfter 57m", err)
	}
	if !strings.Contains(err.Error(), "sign-ups") {
		t.Errorf("error %q does not say what was limited", err)
	}
	if _, err := s.SignUp(ctx, in("user5", "192.0.2.2")); err != nil {
		t.Errorf("another address: %v", err)
	}
	clk.Advance(57 * time.Minute)
	if _, err := s.SignUp(ctx, in("user6", "192.0.2.1")); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

func TestLogInRateLimitPerIP(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, clk := newService(t, db, account.Config{MaxFailuresPerIP: 20})
		signUp(t, s, "alice")

		// Password spraying: one guess each at many usernames.
		for i := range 20 {
			_, _, err := s.LogIn(ctx, "192.0.2.7", fmt.Sprintf("user%d", i), "wrong-password")
			wantErr(t, fmt.Sprintf("spray %d", i), err, account.ErrBadCredentials)
			clk.Advance(10 * time.Second)
		}
		_, _, err := s.LogIn(ctx, "192.0.2.7", "alice", goodPassword)
		var rl *account.RateLimitedError
		if !errors.As(err, &rl) {
			t.Fatalf("21st attempt from one address: %v, want *RateLimitedError", err)
		}
		if want := 15*time.Minute - 200*time.Second; rl.RetryAfter != want {
			t.Errorf("RetryAfter = %v, want %v", rl.RetryAfter, want)
		}
		// Another address is fine, and so is the same account from it.
		if _, _, err := s.LogIn(ctx, "192.0.2.8", "alice", goodPassword); err != nil {
			t.Errorf("other address: %v", err)
		}
		// A success does not clear the address's failures.
		_, _, err = s.LogIn(ctx, "192.0.2.7", "alice", goodPassword)
		if !errors.As(err, &rl) {
			t.Errorf("same address after a success elsewhere: %v, want still limited", err)
		}
		clk.Advance(rl.RetryAfter)
		if _, _, err := s.LogIn(ctx, "192.0.2.7", "alice", goodPassword); err != nil {
			t.Errorf("after the window: %v", err)
		}
	})
}

func TestAuthenticateLogOutAndExpiry(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, clk := newService(t, db, account.Config{SessionTTL: time.Hour})
		alice := signUp(t, s, "alice")
		if s.SessionTTL() != time.Hour {
			t.Errorf("SessionTTL() = %v, want 1h", s.SessionTTL())
		}

		for _, tok := range []string{"", "garbage", strings.Repeat("A", 43)} {
			_, err := s.Authenticate(ctx, tok)
			wantErr(t, fmt.Sprintf("Authenticate(%q)", tok), err, account.ErrUnauthenticated)
		}

		_, token, err := s.LogIn(ctx, "", "alice", goodPassword)
		if err != nil {
			t.Fatal(err)
		}
		// The store holds a hash, never the token.
		if _, err := db.SessionByHash(ctx, token); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token stored in the clear (err %v)", err)
		}
		if err := s.LogOut(ctx, token); err != nil {
			t.Fatal(err)
		}
		_, err = s.Authenticate(ctx, token)
		wantErr(t, "after LogOut", err, account.ErrUnauthenticated)
		if err := s.LogOut(ctx, token); err != nil {
			t.Errorf("second LogOut: %v", err)
		}
		if err := s.LogOut(ctx, ""); err != nil {
			t.Errorf("LogOut(\"\"): %v", err)
		}

		token, err = s.StartSession(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour - time.Millisecond)
		if u, err := s.Authenticate(ctx, token); err != nil || u.ID != alice.ID {
			t.Errorf("just before expiry: %s, %v", u.ID, err)
		}
		other, _ := s.StartSession(ctx, alice)
		clk.Advance(time.Millisecond)
		_, err = s.Authenticate(ctx, token)
		wantErr(t, "at expiry", err, account.ErrUnauthenticated)

		clk.Advance(time.Hour)
		n, err := s.PruneSessions(ctx)
		if err != nil || n != 1 {
			t.Errorf("PruneSessions = %d, %v; want 1 (the other expired session)", n, err)
		}
		_, err = s.Authenticate(ctx, other)
		wantErr(t, "pruned session", err, account.ErrUnauthenticated)
	})
}

func TestPasswordHashUpgradeOnLogIn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		weak, _ := newService(t, db, account.Config{})
		alice := signUp(t, weak, "alice")

		stronger := account.Argon2Params{Time: 2, MemoryKiB: 128, Threads: 2}
		s, _ := newService(t, db, account.Config{Argon2: stronger})
		if _, _, err := s.LogIn(ctx, "", "alice", goodPassword); err != nil {
			t.Fatalf("old hash must still verify: %v", err)
		}
		u, err := db.UserByID(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=128,t=2,p=2$") {
			t.Errorf("hash after login = %q, want upgraded parameters", u.PasswordHash)
		}
		if _, _, err := s.LogIn(ctx, "", "alice", goodPassword); err != nil {
			t.Errorf("upgraded hash: %v", err)
		}
		_, _, err = s.LogIn(ctx, "", "alice", "wrong-password")
		wantErr(t, "wrong password after upgrade", err, account.ErrBadCredentials)
	})
}

func TestChannelAuthorization(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, _ := newService(t, db, account.Config{})
		owner := signUp(t, s, "owner")
		member := signUp(t, s, "member")
		stranger := signUp(t, s, "stranger")

		c, err := s.CreateChannel(ctx, owner, "  Design team  ")
		if err != nil {
			t.Fatal(err)
		}
		if c.Name != "Design team" || c.OwnerID != owner.ID {
			t.Errorf("CreateChannel = %+v, want trimmed name and owner", c)
		}
		invs, err := s.Invites(ctx, owner, c.ID)
		if err != nil || len(invs) != 1 {
			t.Fatalf("new channel's Invites = %+v, %v; want one link", invs, err)
		}
		if ok, _ := regexp.MatchString(`^[A-Za-z0-9_-]{22}$`, invs[0].Code); !ok {
			t.Errorf("invite Code = %q, want 16 bytes of unpadded base64url", invs[0].Code)
		}
		if got, err := s.Channel(ctx, owner, c.ID); err != nil || got != c {
			t.Errorf("owner Channel = %+v, %v; want %+v", got, err, c)
		}

		added, err := s.AddMember(ctx, owner, c.ID, "  MEMBER ")
		if err != nil || added.ID != member.ID {
			t.Fatalf("AddMember = %+v, %v", added, err)
		}

		// A stranger sees nothing.
		_, err = s.Channel(ctx, stranger, c.ID)
		wantErr(t, "stranger Channel", err, account.ErrForbidden)
		_, err = s.Members(ctx, stranger, c.ID)
		wantErr(t, "stranger Members", err, account.ErrForbidden)
		_, err = s.History(ctx, stranger, c.ID)
		wantErr(t, "stranger History", err, account.ErrForbidden)
		_, err = s.PostMessage(ctx, stranger, c.ID, "hi")
		wantErr(t, "stranger PostMessage", err, account.ErrForbidden)
		err = s.Leave(ctx, stranger, c.ID)
		wantErr(t, "stranger Leave", err, account.ErrForbidden)

		// An unknown channel is not found, for anyone.
		_, err = s.Channel(ctx, owner, "nope")
		wantErr(t, "unknown Channel", err, account.ErrNotFound)
		_, err = s.AddMember(ctx, owner, "nope", "stranger")
		wantErr(t, "AddMember unknown channel", err, account.ErrNotFound)
		err = s.DeleteChannel(ctx, owner, "nope")
		wantErr(t, "DeleteChannel unknown", err, account.ErrNotFound)

		// A member may look but not manage.
		if _, err := s.Channel(ctx, member, c.ID); err != nil {
			t.Errorf("member Channel: %v", err)
		}
		members, err := s.Members(ctx, member, c.ID)
		if err != nil || len(members) != 2 || members[0].ID != member.ID || members[1].ID != owner.ID {
			t.Errorf("Members = %+v, %v; want Member, Owner", members, err)
		}
		_, err = s.AddMember(ctx, member, c.ID, "stranger")
		wantErr(t, "member AddMember", err, account.ErrForbidden)
		err = s.RemoveMember(ctx, member, c.ID, owner.ID)
		wantErr(t, "member RemoveMember", err, account.ErrForbidden)
		err = s.DeleteChannel(ctx, member, c.ID)
		wantErr(t, "member DeleteChannel", err, account.ErrForbidden)
		err = s.DeleteChannel(ctx, stranger, c.ID)
		wantErr(t, "stranger DeleteChannel", err, account.ErrForbidden)

		// The owner gets helpful validation errors.
		_, err = s.AddMember(ctx, owner, c.ID, "ghost")
		wantValidation(t, "AddMember unknown user", err, "username", `No user called "ghost". Check the spelling.`)
		_, err = s.AddMember(ctx, owner, c.ID, "member")
		wantValidation(t, "AddMember twice", err, "username", "already a member")
		_, err = s.AddMember(ctx, owner, c.ID, " ")
		wantValidation(t, "AddMember empty", err, "username", "required")
		err = s.RemoveMember(ctx, owner, c.ID, owner.ID)
		wantValidation(t, "owner removes self", err, "user", "Delete the channel")
		err = s.Leave(ctx, owner, c.ID)
		wantValidation(t, "owner leaves", err, "user", "Delete the channel")
		err = s.RemoveMember(ctx, owner, c.ID, stranger.ID)
		wantErr(t, "RemoveMember non-member", err, account.ErrNotFound)

		if err := s.RemoveMember(ctx, owner, c.ID, member.ID); err != nil {
			t.Fatal(err)
		}
		_, err = s.Channel(ctx, member, c.ID)
		wantErr(t, "removed member Channel", err, account.ErrForbidden)

		if err := s.DeleteChannel(ctx, owner, c.ID); err != nil {
			t.Fatal(err)
		}
		_, err = s.Channel(ctx, owner, c.ID)
		wantErr(t, "deleted channel", err, account.ErrNotFound)
	})
}

func TestCreateChannelValidation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, _ := newService(t, db, account.Config{})
		owner := signUp(t, s, "owner")
		for name, want := range map[string]string{
			"":                       "required",
			"   ":                    "required",
			strings.Repeat("x", 65):  "at most 64",
			"tab\there":              "invisible",
			"bad\xffutf8":            "invalid",
			strings.Repeat("ü", 100): "at most 64",
		} {
			_, err := s.CreateChannel(ctx, owner, name)
			wantValidation(t, fmt.Sprintf("CreateChannel(%q)", name), err, "name", want)
		}
		if _, err := s.CreateChannel(ctx, owner, strings.Repeat("ü", 64)); err != nil {
			t.Errorf("64-character name: %v", err)
		}
		cs, err := s.Channels(ctx, owner)
		if err != nil || len(cs) != 1 {
			t.Errorf("Channels = %v, %v; want the one valid channel", cs, err)
		}
	})
}

func TestJoinByInviteAndLeave(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, clk := newService(t, db, account.Config{})
		owner := signUp(t, s, "owner")
		guest := signUp(t, s, "guest")
		first, _ := s.CreateChannel(ctx, owner, "first")
		clk.Advance(time.Second)
		c, _ := s.CreateChannel(ctx, owner, "second")

		for _, code := range []string{"", "  ", "no-such-code"} {
			_, err := s.JoinByInvite(ctx, guest, code)
			wantErr(t, fmt.Sprintf("JoinByInvite(%q)", code), err, account.ErrNotFound)
		}
		code := firstInvite(t, s, owner, c.ID)
		for range 2 { // joining twice is harmless
			got, err := s.JoinByInvite(ctx, guest, code)
			if err != nil || got.ID != c.ID {
				t.Fatalf("JoinByInvite = %+v, %v", got, err)
			}
		}
		if _, err := s.Channel(ctx, guest, c.ID); err != nil {
			t.Errorf("guest after joining: %v", err)
		}
		cs, err := s.Channels(ctx, guest)
		if err != nil || len(cs) != 1 || cs[0].ID != c.ID {
			t.Errorf("guest Channels = %+v, %v; want only %s", cs, err, c.ID)
		}
		cs, _ = s.Channels(ctx, owner)
		if len(cs) != 2 || cs[0].ID != c.ID || cs[1].ID != first.ID {
			t.Errorf("owner Channels = %+v, want second, first", cs)
		}

		if err := s.Leave(ctx, guest, c.ID); err != nil {
			t.Fatal(err)
		}
		_, err = s.Channel(ctx, guest, c.ID)
		wantErr(t, "after Leave", err, account.ErrForbidden)
	})
}

// firstInvite returns the code of the newest live invite link of a channel.
func firstInvite(t *testing.T, s *account.Service, owner store.User, channelID string) string {
	t.Helper()
	invs, err := s.Invites(context.Background(), owner, channelID)
	if err != nil || len(invs) == 0 {
		t.Fatalf("Invites = %+v, %v; want at least one", invs, err)
	}
	return invs[0].Code
}

func TestMessages(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, clk := newService(t, db, account.Config{})
		owner := signUp(t, s, "owner")
		c, err := s.CreateChannel(ctx, owner, "chat")
		if err != nil {
			t.Fatal(err)
		}

		for text, want := range map[string]string{
			"":                                  "empty",
			" \n\t ":                            "empty",
			strings.Repeat("a", 2001):           "too long (2001 characters)",
			strings.Repeat("ü", 2001):           "too long (2001 characters)",
			"nul\x00byte":                       "invisible",
			"bell\x07":                          "invisible",
			"bad \xff utf8":                     "invalid",
			"  " + strings.Repeat("b", 2001):    "Shorten it to 2000",
			strings.Repeat("x", 1000) + "\x1b[": "invisible",
		} {
			_, err := s.PostMessage(ctx, owner, c.ID, text)
			wantValidation(t, fmt.Sprintf("PostMessage(%.20q)", text), err, "text", want)
		}
		long := strings.Repeat("ü", 2000)
		m, err := s.PostMessage(ctx, owner, c.ID, "  "+long+"\n ")
		if err != nil {
			t.Fatalf("2000 characters: %v", err)
		}
		if m.Text != long || m.DisplayName != owner.DisplayName || m.UserID != owner.ID || m.ChannelID != c.ID {
			t.Errorf("PostMessage = %+v, want trimmed text and author", m)
		}
		if _, err := s.PostMessage(ctx, owner, c.ID, "line one\nline\ttwo"); err != nil {
			t.Errorf("newlines and tabs: %v", err)
		}
		_, err = s.PostMessage(ctx, owner, "nope", "hi")
		wantErr(t, "PostMessage unknown channel", err, account.ErrNotFound)

		// The channel keeps its newest 100 messages, returned oldest first.
		for i := range 105 {
			if _, err := s.PostMessage(ctx, owner, c.ID, fmt.Sprintf("m%03d", i)); err != nil {
				t.Fatal(err)
			}
			if i%2 == 0 { // some share a timestamp; order must hold anyway
				clk.Advance(time.Millisecond)
			}
		}
		hist, err := s.History(ctx, owner, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != account.HistorySize {
			t.Fatalf("History has %d messages, want %d", len(hist), account.HistorySize)
		}
		for i, m := range hist {
			if want := fmt.Sprintf("m%03d", i+5); m.Text != want {
				t.Fatalf("History[%d] = %q, want %q", i, m.Text, want)
			}
		}
		last, err := s.PostMessage(ctx, owner, c.ID, "last")
		if err != nil {
			t.Fatal(err)
		}
		hist, _ = s.History(ctx, owner, c.ID)
		if got := hist[len(hist)-1]; got != last {
			t.Errorf("History last = %+v, want what PostMessage returned %+v", got, last)
		}
		if kept, _ := db.Messages(ctx, c.ID, 1000); len(kept) != account.HistorySize {
			t.Errorf("store keeps %d messages, want %d", len(kept), account.HistorySize)
		}
	})
}

func TestRateLimitedErrorRoundsUp(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]int{
		0:                              1,
		time.Millisecond:               1,
		time.Second:                    1,
		time.Second + time.Millisecond: 2,
		15 * time.Minute:               900,
	} {
		if got := account.RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
	err := &account.RateLimitedError{RetryAfter: 1500 * time.Millisecond}
	if got := err.Error(); !strings.Contains(got, "2s") {
		t.Errorf("Error() = %q, want it to say 2s", got)
	}
}

func TestSetChannelMode(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, _ := newService(t, db, account.Config{})
		ctx := context.Background()
		owner, other := signUp(t, s, "modeowner"), signUp(t, s, "modeother")
		c, err := s.CreateChannel(ctx, owner, "Modes")
		if err != nil {
			t.Fatal(err)
		}
		if c.Mode != store.ModeAuto {
			t.Errorf("new channel mode %q, want auto", c.Mode)
		}
		if _, err := s.SetChannelMode(ctx, other, c.ID, store.ModeSFU); !errors.Is(err, account.ErrForbidden) {
			t.Errorf("non-owner: %v", err)
		}
		wantValidation(t, "bad mode", func() error { _, err := s.SetChannelMode(ctx, owner, c.ID, "fast"); return err }(), "mode", "automatic")
		if got, err := s.SetChannelMode(ctx, owner, c.ID, store.ModeP2P); err != nil || got.Mode != store.ModeP2P {
			t.Errorf("set p2p: %+v %v", got, err)
		}
	})
}
