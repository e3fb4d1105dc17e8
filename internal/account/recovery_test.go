package account_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/mail"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
)

// fakeMailer keeps what would have been sent.
type fakeMailer struct {
	mu   sync.Mutex
	sent []mail.Message
}

func (f *fakeMailer) Send(_ context.Context, m mail.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, m)
	return nil
}

// take returns and forgets what was sent; call s.Flush first.
func (f *fakeMailer) take() []mail.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.sent
	f.sent = nil
	return out
}

// revocations records what Config.Revoked was told.
type revocations struct {
	mu  sync.Mutex
	got []account.Revocation
}

func (r *revocations) add(rv account.Revocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rv)
}

func (r *revocations) take() []account.Revocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

var linkRE = regexp.MustCompile(`https://meet\.example\.org/(reset|verify)/([A-Za-z0-9_-]+)`)

// linkToken takes the secret out of the one link in m of kind.
func linkToken(t *testing.T, m mail.Message, kind string) string {
	t.Helper()
	for _, sm := range linkRE.FindAllStringSubmatch(m.Text, -1) {
		if sm[1] == kind {
			return sm[2]
		}
	}
	t.Fatalf("no /%s/ link in mail:\n%s", kind, m.Text)
	return ""
}

const base = "https://meet.example.org"

func oneMail(t *testing.T, s *account.Service, f *fakeMailer, to string) mail.Message {
	t.Helper()
	s.Flush()
	got := f.take()
	if len(got) != 1 || got[0].To != to {
		t.Fatalf("mails %+v, want one to %s", got, to)
	}
	return got[0]
}

// TestPasswordResetSingleUseAndEndsSessions: a reset link by username or
// email works once, sets the password, ends every session and access
// token (revoking every credential of the user), and expires after
// ResetTTL.
func TestPasswordResetSingleUseAndEndsSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := &fakeMailer{}
		rv := &revocations{}
		s, clk := newService(t, db, account.Config{Mailer: f, Revoked: rv.add})
		u := signUp(t, s, "ann")
		oneMail(t, s, f, "ann@example.com") // the sign-up verification
		_, sess, err := s.LogIn(ctx, "", "ann", goodPassword)
		if err != nil {
			t.Fatal(err)
		}
		_, secret, _ := s.CreateToken(ctx, u, "cli")

		if err := s.RequestPasswordReset(ctx, account.ResetRequest{Identifier: " ANN ", IP: "192.0.2.1", LinkBase: base}); err != nil {
			t.Fatalf("RequestPasswordReset: %v", err)
		}
		m := oneMail(t, s, f, "ann@example.com")
		token := linkToken(t, m, "reset")
		if !strings.Contains(m.Text, "1 hour") {
			t.Errorf("mail does not say how long the link works:\n%s", m.Text)
		}
		if got, err := s.CheckResetLink(ctx, token); err != nil || got.ID != u.ID {
			t.Fatalf("CheckResetLink = %v, %v", got.ID, err)
		}
		_, err = s.ResetPassword(ctx, token, "short")
		wantValidation(t, "weak new password", err, "password", "too short")
		const newPassword = "orchid-meadow-compass"
		if _, err := s.ResetPassword(ctx, token, newPassword); err != nil {
			t.Fatalf("ResetPassword: %v", err)
		}
		if got := rv.take(); len(got) != 1 || got[0].UserID != u.ID || got[0].Key != "" {
			t.Errorf("revocations %+v, want every credential of %s", got, u.ID)
		}
		_, err = s.Authenticate(ctx, sess)
		wantErr(t, "old session", err, account.ErrUnauthenticated)
		_, err = s.AuthenticateToken(ctx, secret)
		wantErr(t, "old access token", err, account.ErrUnauthenticated)
		_, _, err = s.LogIn(ctx, "", "ann", goodPassword)
		wantErr(t, "old password", err, account.ErrBadCredentials)
		if _, _, err := s.LogIn(ctx, "", "ann", newPassword); err != nil {
			t.Fatalf("log in with the new password: %v", err)
		}
		_, err = s.ResetPassword(ctx, token, "another-fine-password")
		wantErr(t, "the link a second time", err, account.ErrLinkInvalid)

		// By email address, any case; the link expires after an hour.
		if err := s.RequestPasswordReset(ctx, account.ResetRequest{Identifier: "Ann@Example.com", LinkBase: base}); err != nil {
			t.Fatal(err)
		}
		token = linkToken(t, oneMail(t, s, f, "ann@example.com"), "reset")
		clk.Advance(time.Hour)
		_, err = s.CheckResetLink(ctx, token)
		wantErr(t, "link after an hour", err, account.ErrLinkExpired)
		_, err = s.ResetPassword(ctx, token, "another-fine-password")
		wantErr(t, "reset after an hour", err, account.ErrLinkExpired)
		_, err = s.CheckResetLink(ctx, "made-up")
		wantErr(t, "made-up link", err, account.ErrLinkInvalid)
	})
}

// TestPasswordResetDoesNotRevealAccounts: asking for an unknown account
// answers exactly as for a known one and sends nothing; the limits per
// identifier and per address bite alike for both, and a third limit per
// account drops further mails silently.
func TestPasswordResetDoesNotRevealAccounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := &fakeMailer{}
		s, clk := newService(t, db, account.Config{Mailer: f, MaxMailsPerAccount: 2, MaxMailsPerIP: 4})
		signUp(t, s, "ann")
		s.Flush()
		f.take()
		for _, ident := range []string{"nobody", "ann"} {
			for i := range 2 {
				if err := s.RequestPasswordReset(ctx, account.ResetRequest{Identifier: ident, IP: "192.0.2.1", LinkBase: base}); err != nil {
					t.Fatalf("%s #%d: %v", ident, i, err)
				}
			}
			err := s.RequestPasswordReset(ctx, account.ResetRequest{Identifier: ident, IP: "192.0.2.9", LinkBase: base})
			var rl *account.RateLimitedError
			if !errors.As(err, &rl) || !rl.Mail {
				t.Errorf("%s, third request: %v, want the per-name limit", ident, err)
			}
		}
		s.Flush()
		if got := f.take(); len(got) != 2 || got[0].To != "ann@example.com" {
			t.Errorf("mails %+v, want two to ann only", got)
		}
		// Past the per-address limit, any name is refused from there.
		err := s.RequestPasswordReset(ctx, account.ResetRequest{Identifier: "x1", IP: "192.0.2.1", LinkBase: base})
		if err == nil {
			t.Error("fifth request from one address allowed")
		}
		// Through the email address the per-account limit still holds.
		clk.Advance(30 * time.Minute)
		if err := s.RequestPasswordReset(ctx, account.ResetRequest{Identifier: "ann@example.com", IP: "192.0.2.2", LinkBase: base}); err != nil {
			t.Fatal(err)
		}
		s.Flush()
		if got := f.take(); len(got) != 0 {
			t.Errorf("a third mail within the hour went to the account: %+v", got)
		}
		err = s.RequestPasswordReset(ctx, account.ResetRequest{Identifier: " ", LinkBase: base})
		wantValidation(t, "empty identifier", err, "identifier", "username or the email")
	})
}

// syncBuffer is a log sink tests can read while the service writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPasswordResetWithoutMailLogsTheLink: with no mail server the link
// goes to the log, as a warning, and still works.
func TestPasswordResetWithoutMailLogsTheLink(t *testing.T) {
	db := storetest.Open(t)
	var logs syncBuffer
	s := account.New(account.Config{Argon2: account.TestArgon2()}, db, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	if s.MailConfigured() {
		t.Fatal("MailConfigured with no mailer")
	}
	signUp(t, s, "ann")
	if err := s.RequestPasswordReset(context.Background(), account.ResetRequest{Identifier: "ann", LinkBase: base}); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	out := logs.String()
	m := linkRE.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "level=WARN") || !strings.Contains(out, "--smtp-url") {
		t.Fatalf("log has no warning with the link:\n%s", out)
	}
	if _, err := s.ResetPassword(context.Background(), m[2], "orchid-meadow-compass"); err != nil {
		t.Fatalf("the logged link: %v", err)
	}
}

// TestChangePasswordEndsOtherSessions: the current password is required;
// the session making the change stays, every other one ends and is
// revoked by name.
func TestChangePasswordEndsOtherSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		rv := &revocations{}
		s, _ := newService(t, db, account.Config{Revoked: rv.add})
		u := signUp(t, s, "ann")
		_, here, _ := s.LogIn(ctx, "", "ann", goodPassword)
		_, there, _ := s.LogIn(ctx, "", "ann", goodPassword)
		_, thereCred, _ := s.AuthenticateSession(ctx, there)

		err := s.ChangePassword(ctx, u, here, "wrong password!", "orchid-meadow-compass")
		wantValidation(t, "wrong current password", err, "current_password", "not your current password")
		err = s.ChangePassword(ctx, u, here, goodPassword, "ann")
		wantValidation(t, "weak new password", err, "new_password", "too short")
		if err := s.ChangePassword(ctx, u, here, goodPassword, "orchid-meadow-compass"); err != nil {
			t.Fatalf("ChangePassword: %v", err)
		}
		if _, err := s.Authenticate(ctx, here); err != nil {
			t.Errorf("the session that changed the password ended: %v", err)
		}
		_, err = s.Authenticate(ctx, there)
		wantErr(t, "other session", err, account.ErrUnauthenticated)
		if got := rv.take(); len(got) != 1 || got[0].Credential != thereCred {
			t.Errorf("revocations %+v, want only %+v", got, thereCred)
		}
		if _, _, err := s.LogIn(ctx, "", "ann", "orchid-meadow-compass"); err != nil {
			t.Errorf("log in with the new password: %v", err)
		}
	})
}

func TestChangeDisplayName(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newService(t, db, account.Config{})
		u := signUp(t, s, "ann")
		_, err := s.ChangeDisplayName(ctx, u, "Ann\u202eevil")
		wantValidation(t, "bidi name", err, "display_name", "text-direction")
		_, err = s.ChangeDisplayName(ctx, u, "  ")
		wantValidation(t, "empty name", err, "display_name", "required")
		if got, err := s.ChangeDisplayName(ctx, u, "  Annie "); err != nil || got.DisplayName != "Annie" {
			t.Fatalf("ChangeDisplayName = %q, %v", got.DisplayName, err)
		}
		if got, _ := s.Authenticate(ctx, mustSession(t, s, "ann")); got.DisplayName != "Annie" {
			t.Errorf("stored name %q", got.DisplayName)
		}
	})
}

func mustSession(t *testing.T, s *account.Service, username string) string {
	t.Helper()
	_, tok, err := s.LogIn(context.Background(), "", username, goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestEmailVerification: sign-up mails a link that verifies the address;
// a change of address keeps the old one until the new one is verified;
// without mail the change is immediate and unverified.
func TestEmailVerification(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := &fakeMailer{}
		s, clk := newService(t, db, account.Config{Mailer: f})
		u := signUp(t, s, "ann")
		if !u.EmailVerifiedAt.IsZero() {
			t.Fatal("verified before the link was used")
		}
		tok := linkToken(t, oneMail(t, s, f, "ann@example.com"), "verify")
		u, err := s.VerifyEmail(ctx, tok)
		if err != nil || u.EmailVerifiedAt.IsZero() || u.Email != "ann@example.com" {
			t.Fatalf("VerifyEmail = %+v, %v", u, err)
		}
		_, err = s.VerifyEmail(ctx, tok)
		wantErr(t, "verify twice", err, account.ErrLinkInvalid)

		pending, err := s.ChangeEmail(ctx, u, "ann@new.example.com", base)
		if err != nil || !pending {
			t.Fatalf("ChangeEmail = %v, %v; want pending", pending, err)
		}
		tok = linkToken(t, oneMail(t, s, f, "ann@new.example.com"), "verify")
		if got, _ := s.Authenticate(ctx, mustSession(t, s, "ann")); got.Email != "ann@example.com" {
			t.Errorf("address changed before verification: %q", got.Email)
		}
		if p, _ := s.PendingEmail(ctx, u); p != "ann@new.example.com" {
			t.Errorf("PendingEmail = %q", p)
		}
		if u, err = s.VerifyEmail(ctx, tok); err != nil || u.Email != "ann@new.example.com" || u.EmailVerifiedAt.IsZero() {
			t.Fatalf("after verifying the new address: %+v, %v", u, err)
		}
		_, err = s.ChangeEmail(ctx, u, "not an address", base)
		wantValidation(t, "bad address", err, "email", "look like an address")

		if _, err := s.ChangeEmail(ctx, u, "late@example.com", base); err != nil {
			t.Fatal(err)
		}
		tok = linkToken(t, oneMail(t, s, f, "late@example.com"), "verify")
		clk.Advance(24 * time.Hour)
		_, err = s.VerifyEmail(ctx, tok)
		wantErr(t, "expired verification", err, account.ErrLinkExpired)

		plain, _ := newService(t, db, account.Config{})
		v := signUp(t, plain, "bob")
		if pending, err := plain.ChangeEmail(ctx, v, "bob@new.example.com", base); err != nil || pending {
			t.Fatalf("ChangeEmail without mail = %v, %v", pending, err)
		}
		if got, _ := plain.Authenticate(ctx, mustSession(t, plain, "bob")); got.Email != "bob@new.example.com" || !got.EmailVerifiedAt.IsZero() {
			t.Errorf("without mail: %q verified %v", got.Email, got.EmailVerifiedAt)
		}
	})
}

// TestDeleteAccount: the password confirms; owned channels go to the
// longest-standing member or are deleted; every credential is revoked.
func TestDeleteAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		rv := &revocations{}
		s, _ := newService(t, db, account.Config{Revoked: rv.add})
		ann := signUp(t, s, "ann")
		bob := signUp(t, s, "bob")
		shared, _ := s.CreateChannel(ctx, ann, "shared")
		alone, _ := s.CreateChannel(ctx, ann, "alone")
		if _, err := s.AddMember(ctx, ann, shared.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		plan, err := s.DeletionPlan(ctx, ann)
		if err != nil || len(plan) != 2 {
			t.Fatalf("DeletionPlan = %+v, %v", plan, err)
		}
		for _, f := range plan {
			switch f.Channel.ID {
			case shared.ID:
				if f.Heir == nil || f.Heir.ID != bob.ID {
					t.Errorf("shared goes to %+v, want bob", f.Heir)
				}
			case alone.ID:
				if f.Heir != nil {
					t.Errorf("alone goes to %+v, want deleted", f.Heir)
				}
			}
		}
		_, err = s.DeleteAccount(ctx, ann, "wrong password!")
		wantValidation(t, "wrong password", err, "password", "not your current password")
		d, err := s.DeleteAccount(ctx, ann, goodPassword)
		if err != nil {
			t.Fatalf("DeleteAccount: %v", err)
		}
		if len(d.HandedOver) != 1 || d.HandedOver[0].NewOwnerID != bob.ID || len(d.DeletedChannels) != 1 || d.DeletedChannels[0] != alone.ID {
			t.Errorf("deletion %+v", d)
		}
		if ch, err := s.Channel(ctx, bob, shared.ID); err != nil || ch.OwnerID != bob.ID {
			t.Errorf("bob's view of shared: %+v, %v", ch, err)
		}
		if got := rv.take(); len(got) != 1 || got[0].UserID != ann.ID || got[0].Key != "" {
			t.Errorf("revocations %+v, want every credential of ann", got)
		}
		_, _, err = s.LogIn(ctx, "", "ann", goodPassword)
		wantErr(t, "log in after deletion", err, account.ErrBadCredentials)
	})
}
