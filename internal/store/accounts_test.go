package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
)

func mkSession(t *testing.T, db *store.DB, u store.User, hash string) {
	t.Helper()
	if err := db.CreateSession(context.Background(), store.Session{TokenHash: hash, UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

func TestPasswordResetsAreSingleUseAndExpire(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ann := mkUser(t, db, "ann", "Ann")
		bob := mkUser(t, db, "bob", "Bob")
		mkSession(t, db, ann, "s1")
		mkSession(t, db, ann, "s2")
		mkSession(t, db, bob, "sb")
		if err := db.CreateToken(ctx, store.Token{ID: newID("t"), UserID: ann.ID, Name: "cli", TokenHash: "th", CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"r1", "r2"} {
			if err := db.CreatePasswordReset(ctx, store.PasswordReset{TokenHash: h, UserID: ann.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
				t.Fatalf("CreatePasswordReset: %v", err)
			}
		}
		wantErr(t, "reset for unknown user", db.CreatePasswordReset(ctx, store.PasswordReset{TokenHash: "rx", UserID: "nobody", CreatedAt: t0, ExpiresAt: t0}), store.ErrNotFound)
		got, err := db.PasswordResetByHash(ctx, "r1")
		if err != nil || got.UserID != ann.ID || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("PasswordResetByHash = %+v, %v", got, err)
		}
		wantErr(t, "expired link", db.ResetPassword(ctx, "r1", ann.ID, t0.Add(time.Hour), "new"), store.ErrNotFound)
		wantErr(t, "someone else's link", db.ResetPassword(ctx, "r1", bob.ID, t0, "new"), store.ErrNotFound)
		if u, _ := db.UserByID(ctx, ann.ID); u.PasswordHash != "$argon2id$fake" {
			t.Fatalf("a refused reset changed the password: %q", u.PasswordHash)
		}
		if err := db.ResetPassword(ctx, "r1", ann.ID, t0.Add(time.Hour-time.Millisecond), "new"); err != nil {
			t.Fatalf("ResetPassword: %v", err)
		}
		if u, _ := db.UserByID(ctx, ann.ID); u.PasswordHash != "new" {
			t.Errorf("password hash = %q, want new", u.PasswordHash)
		}
		wantErr(t, "the link again", db.ResetPassword(ctx, "r1", ann.ID, t0, "newer"), store.ErrNotFound)
		_, err = db.PasswordResetByHash(ctx, "r2")
		wantErr(t, "the user's other link", err, store.ErrNotFound)
		for _, h := range []string{"s1", "s2"} {
			_, err := db.SessionByHash(ctx, h)
			wantErr(t, "session "+h+" after reset", err, store.ErrNotFound)
		}
		if _, err := db.SessionByHash(ctx, "sb"); err != nil {
			t.Errorf("another user's session went too: %v", err)
		}
		if ts, _ := db.TokensForUser(ctx, ann.ID); len(ts) != 0 {
			t.Errorf("access tokens after reset: %d, want 0", len(ts))
		}

		if err := db.CreatePasswordReset(ctx, store.PasswordReset{TokenHash: "old", UserID: bob.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if n, err := db.DeleteExpiredLinks(ctx, t0.Add(time.Minute)); err != nil || n != 1 {
			t.Errorf("DeleteExpiredLinks = %d, %v; want 1", n, err)
		}
	})
}

func TestChangePasswordKeepsOnlyTheCurrentSession(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ann := mkUser(t, db, "ann", "Ann")
		for _, h := range []string{"keep", "a", "b"} {
			mkSession(t, db, ann, h)
		}
		if err := db.CreatePasswordReset(ctx, store.PasswordReset{TokenHash: "r", UserID: ann.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		ended, err := db.ChangePassword(ctx, ann.ID, "new", "keep")
		if err != nil {
			t.Fatalf("ChangePassword: %v", err)
		}
		slices.Sort(ended)
		if !slices.Equal(ended, []string{"a", "b"}) {
			t.Errorf("ended = %v, want [a b]", ended)
		}
		if _, err := db.SessionByHash(ctx, "keep"); err != nil {
			t.Errorf("current session ended: %v", err)
		}
		_, err = db.PasswordResetByHash(ctx, "r")
		wantErr(t, "reset link after a change", err, store.ErrNotFound)
		_, err = db.ChangePassword(ctx, "nobody", "x", "")
		wantErr(t, "unknown user", err, store.ErrNotFound)
	})
}

func TestEmailVerificationAndChange(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ann := mkUser(t, db, "ann", "Ann")
		if !ann.EmailVerifiedAt.IsZero() {
			t.Fatal("a new user is verified")
		}
		mk := func(hash, email string, at time.Time) {
			t.Helper()
			if err := db.CreateEmailVerification(ctx, store.EmailVerification{TokenHash: hash, UserID: ann.ID, Email: email, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}); err != nil {
				t.Fatalf("CreateEmailVerification: %v", err)
			}
		}
		mk("v1", "new@example.com", t0)
		mk("v2", "newer@example.com", t0.Add(time.Second))
		p, err := db.PendingEmail(ctx, ann.ID, t0.Add(time.Minute))
		if err != nil || p.Email != "newer@example.com" {
			t.Fatalf("PendingEmail = %+v, %v; want the newest", p, err)
		}
		_, err = db.PendingEmail(ctx, ann.ID, t0.Add(2*time.Hour))
		wantErr(t, "pending after expiry", err, store.ErrNotFound)
		if u, _ := db.UserByID(ctx, ann.ID); u.Email != "ann@example.com" {
			t.Errorf("email changed before verification: %q", u.Email)
		}
		_, err = db.VerifyEmail(ctx, "v1", t0.Add(time.Hour))
		wantErr(t, "expired verification", err, store.ErrNotFound)
		v, err := db.VerifyEmail(ctx, "v1", t0.Add(time.Minute))
		if err != nil || v.Email != "new@example.com" {
			t.Fatalf("VerifyEmail = %+v, %v", v, err)
		}
		u, _ := db.UserByID(ctx, ann.ID)
		if u.Email != "new@example.com" || !u.EmailVerifiedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("after verify: email %q verified %v", u.Email, u.EmailVerifiedAt)
		}
		_, err = db.VerifyEmail(ctx, "v2", t0.Add(time.Minute))
		wantErr(t, "the other pending link", err, store.ErrNotFound)
		_, err = db.VerifyEmail(ctx, "v1", t0.Add(time.Minute))
		wantErr(t, "the link again", err, store.ErrNotFound)

		mk("v3", "x@example.com", t0)
		if err := db.SetEmail(ctx, ann.ID, "direct@example.com", time.Time{}); err != nil {
			t.Fatalf("SetEmail: %v", err)
		}
		u, _ = db.UserByID(ctx, ann.ID)
		if u.Email != "direct@example.com" || !u.EmailVerifiedAt.IsZero() {
			t.Errorf("after SetEmail: %q verified %v", u.Email, u.EmailVerifiedAt)
		}
		_, err = db.EmailVerificationByHash(ctx, "v3")
		wantErr(t, "pending link after SetEmail", err, store.ErrNotFound)

		mkUser(t, db, "ann2", "Ann again") // ann2@example.com
		if err := db.SetEmail(ctx, ann.ID, "Ann2@Example.com", time.Time{}); err != nil {
			t.Fatal(err)
		}
		us, err := db.UsersByEmail(ctx, "ANN2@example.COM", 5)
		if err != nil || len(us) != 2 || us[0].ID != ann.ID {
			t.Errorf("UsersByEmail = %v, %v; want both accounts, oldest first", us, err)
		}
		if err := db.UpdateDisplayName(ctx, ann.ID, "Annie"); err != nil {
			t.Fatal(err)
		}
		if u, _ := db.UserByID(ctx, ann.ID); u.DisplayName != "Annie" {
			t.Errorf("display name = %q", u.DisplayName)
		}
		wantErr(t, "rename unknown", db.UpdateDisplayName(ctx, "nobody", "x"), store.ErrNotFound)
	})
}

func TestDeleteAccountHandsChannelsOver(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ann := mkUser(t, db, "ann", "Ann")
		bob := mkUser(t, db, "bob", "Bob")
		cat := mkUser(t, db, "cat", "Cat")
		shared := mkChannel(t, db, ann, "shared", t0)
		alone := mkChannel(t, db, ann, "alone", t0.Add(time.Second))
		bobs := mkChannel(t, db, bob, "bob's", t0)
		// cat joins first, then bob: cat has stood longest.
		if err := db.AddMember(ctx, shared.ID, cat.ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // joined_at is the wall clock, in ms
		if err := db.AddMember(ctx, shared.ID, bob.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.AddMember(ctx, bobs.ID, ann.ID); err != nil {
			t.Fatal(err)
		}
		got, err := db.DeleteAccount(ctx, ann.ID)
		if err != nil {
			t.Fatalf("DeleteAccount: %v", err)
		}
		if want := []store.Handover{{ChannelID: shared.ID, NewOwnerID: cat.ID}}; !slices.Equal(got.HandedOver, want) {
			t.Errorf("handed over %v, want %v", got.HandedOver, want)
		}
		if !slices.Equal(got.DeletedChannels, []string{alone.ID}) {
			t.Errorf("deleted %v, want [%s]", got.DeletedChannels, alone.ID)
		}
		if c, err := db.ChannelByID(ctx, shared.ID); err != nil || c.OwnerID != cat.ID {
			t.Errorf("shared channel: %+v, %v", c, err)
		}
		_, err = db.ChannelByID(ctx, alone.ID)
		wantErr(t, "channel with no one left", err, store.ErrNotFound)
		if ms, _ := db.Members(ctx, bobs.ID); len(ms) != 1 || ms[0].ID != bob.ID {
			t.Errorf("bob's channel members: %v", ms)
		}
		_, err = db.UserByID(ctx, ann.ID)
		wantErr(t, "deleted user", err, store.ErrNotFound)
		_, err = db.DeleteAccount(ctx, ann.ID)
		wantErr(t, "deleting twice", err, store.ErrNotFound)
	})
}
