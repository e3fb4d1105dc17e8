package account_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
)

// TestRemovedMemberCannotRejoinByInvite is the regression test of issue 9
// item 1: the removed member's old link (and any new one) is refused, while
// someone else can still join through the very same link.
func TestRemovedMemberCannotRejoinByInvite(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, _ := newService(t, db, account.Config{})
		owner := signUp(t, s, "owner")
		bob := signUp(t, s, "bob")
		carol := signUp(t, s, "carol")
		c, _ := s.CreateChannel(ctx, owner, "team")
		code := firstInvite(t, s, owner, c.ID)
		if _, err := s.JoinByInvite(ctx, bob, code); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveMember(ctx, owner, c.ID, bob.ID); err != nil {
			t.Fatal(err)
		}

		// The invite page refuses, and so does submitting it (a page opened
		// before the removal submits straight to JoinByInvite).
		_, err := s.InviteChannel(ctx, bob, code)
		wantErr(t, "InviteChannel(removed bob, old link)", err, account.ErrRemovedByOwner)
		_, err = s.JoinByInvite(ctx, bob, code)
		wantErr(t, "JoinByInvite(removed bob, old link)", err, account.ErrRemovedByOwner)
		fresh, err := s.CreateInvite(ctx, owner, c.ID, account.DefaultInviteOptions)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.JoinByInvite(ctx, bob, fresh.Code)
		wantErr(t, "JoinByInvite(removed bob, new link)", err, account.ErrRemovedByOwner)
		_, err = s.Channel(ctx, bob, c.ID)
		wantErr(t, "bob after refused joins", err, account.ErrForbidden)

		// Others are not affected.
		if _, err := s.JoinByInvite(ctx, carol, code); err != nil {
			t.Errorf("carol with the old link: %v, want joined", err)
		}
		// Leaving on one's own is not a removal.
		if err := s.Leave(ctx, carol, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.JoinByInvite(ctx, carol, code); err != nil {
			t.Errorf("carol rejoining after leaving: %v, want joined", err)
		}
		// The owner adding bob back by username lifts the bar.
		if _, err := s.AddMember(ctx, owner, c.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		if err := s.Leave(ctx, bob, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.JoinByInvite(ctx, bob, code); err != nil {
			t.Errorf("bob after the owner added him back and he left: %v, want joined", err)
		}
	})
}

func TestInviteExpiryUsesAndRevocation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, clk := newService(t, db, account.Config{})
		owner := signUp(t, s, "owner")
		users := make([]store.User, 5)
		for i := range users {
			users[i] = signUp(t, s, "user"+string(rune('a'+i)))
		}
		c, _ := s.CreateChannel(ctx, owner, "team")

		// The default link expires after DefaultInviteExpiry.
		def := firstInvite(t, s, owner, c.ID)
		hour, err := s.CreateInvite(ctx, owner, c.ID, account.InviteOptions{ExpiresIn: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		never, err := s.CreateInvite(ctx, owner, c.ID, account.InviteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		once, err := s.CreateInvite(ctx, owner, c.ID, account.InviteOptions{ExpiresIn: time.Hour, MaxUses: 1})
		if err != nil {
			t.Fatal(err)
		}
		if once.MaxUses != 1 || !once.ExpiresAt.Equal(once.CreatedAt.Add(time.Hour)) || once.CreatorName != owner.DisplayName {
			t.Errorf("CreateInvite = %+v, want 1 use, an hour, by the owner", once)
		}

		// Use limit: one join, then refused (a member coming back is fine).
		if _, err := s.JoinByInvite(ctx, users[0], once.Code); err != nil {
			t.Fatal(err)
		}
		if _, err := s.JoinByInvite(ctx, users[0], once.Code); err != nil {
			t.Errorf("member reusing a used-up link: %v, want fine", err)
		}
		_, err = s.JoinByInvite(ctx, users[1], once.Code)
		wantErr(t, "JoinByInvite(used up)", err, account.ErrInviteUsedUp)
		_, err = s.InviteChannel(ctx, users[1], once.Code)
		wantErr(t, "InviteChannel(used up)", err, account.ErrInviteUsedUp)

		// Expiry.
		clk.Advance(time.Hour)
		_, err = s.JoinByInvite(ctx, users[1], hour.Code)
		wantErr(t, "JoinByInvite(expired)", err, account.ErrInviteExpired)
		_, err = s.InviteChannel(ctx, users[1], hour.Code)
		wantErr(t, "InviteChannel(expired)", err, account.ErrInviteExpired)
		if _, err := s.JoinByInvite(ctx, users[1], def); err != nil {
			t.Errorf("default link after an hour: %v, want joined", err)
		}
		clk.Advance(account.DefaultInviteExpiry)
		_, err = s.JoinByInvite(ctx, users[2], def)
		wantErr(t, "JoinByInvite(default link after 7 days)", err, account.ErrInviteExpired)

		// Revocation.
		if err := s.RevokeInvite(ctx, owner, c.ID, never.ID); err != nil {
			t.Fatal(err)
		}
		_, err = s.JoinByInvite(ctx, users[2], never.Code)
		wantErr(t, "JoinByInvite(revoked)", err, account.ErrInviteRevoked)
		wantErr(t, "RevokeInvite twice", s.RevokeInvite(ctx, owner, c.ID, never.ID), account.ErrNotFound)

		// Reset: every link dies, one new default link works.
		keep, _ := s.CreateInvite(ctx, owner, c.ID, account.InviteOptions{})
		reset, err := s.ResetInvites(ctx, owner, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.JoinByInvite(ctx, users[2], keep.Code)
		wantErr(t, "JoinByInvite(link from before reset)", err, account.ErrInviteRevoked)
		invs, err := s.Invites(ctx, owner, c.ID)
		if err != nil || len(invs) != 1 || invs[0].ID != reset.ID {
			t.Errorf("Invites after reset = %+v, %v; want only the new one", invs, err)
		}
		if _, err := s.JoinByInvite(ctx, users[3], reset.Code); err != nil {
			t.Errorf("new link after reset: %v", err)
		}
		if got, _ := s.Invites(ctx, owner, c.ID); len(got) != 1 || got[0].Uses != 1 {
			t.Errorf("Uses after one join = %+v, want 1", got)
		}
	})
}

func TestInviteManagementIsOwnerOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t, storetest.Open(t), account.Config{})
	owner := signUp(t, s, "owner")
	member := signUp(t, s, "member")
	c, _ := s.CreateChannel(ctx, owner, "team")
	if _, err := s.AddMember(ctx, owner, c.ID, "member"); err != nil {
		t.Fatal(err)
	}
	id := func() string {
		invs, _ := s.Invites(ctx, owner, c.ID)
		return invs[0].ID
	}()
	_, err := s.Invites(ctx, member, c.ID)
	wantErr(t, "member Invites", err, account.ErrForbidden)
	_, err = s.CreateInvite(ctx, member, c.ID, account.DefaultInviteOptions)
	wantErr(t, "member CreateInvite", err, account.ErrForbidden)
	wantErr(t, "member RevokeInvite", s.RevokeInvite(ctx, member, c.ID, id), account.ErrForbidden)
	_, err = s.ResetInvites(ctx, member, c.ID)
	wantErr(t, "member ResetInvites", err, account.ErrForbidden)
	_, err = s.CreateInvite(ctx, owner, c.ID, account.InviteOptions{MaxUses: -1})
	wantValidation(t, "CreateInvite(-1 uses)", err, "max_uses", "whole number")
	_, err = s.CreateInvite(ctx, owner, c.ID, account.InviteOptions{ExpiresIn: 2 * account.MaxInviteExpiry})
	wantValidation(t, "CreateInvite(2 years)", err, "expires", "Pick when")
}

func TestParseInviteOptions(t *testing.T) {
	t.Parallel()
	good := map[[2]string]account.InviteOptions{
		{"", ""}:       account.DefaultInviteOptions,
		{"1h", "5"}:    {ExpiresIn: time.Hour, MaxUses: 5},
		{"never", "0"}: {},
		{"30d", " "}:   {ExpiresIn: 30 * 24 * time.Hour},
	}
	for in, want := range good {
		if got, err := account.ParseInviteOptions(in[0], in[1]); err != nil || got != want {
			t.Errorf("ParseInviteOptions(%q, %q) = %+v, %v; want %+v", in[0], in[1], got, err, want)
		}
	}
	_, err := account.ParseInviteOptions("2w", "")
	wantValidation(t, "expires 2w", err, "expires", "Pick when")
	for _, bad := range []string{"-1", "x", "1.5", "10001"} {
		_, err := account.ParseInviteOptions("", bad)
		wantValidation(t, "max_uses "+bad, err, "max_uses", "whole number")
	}
}

// FuzzParseInviteOptions: whatever a form sends, the options are either a
// ValidationError or within the documented bounds.
func FuzzParseInviteOptions(f *testing.F) {
	for _, s := range [][2]string{{"", ""}, {"7d", "5"}, {"never", "0"}, {"1h", "-1"}, {"x", "1e9"}, {"30d", "99999999999999999999"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, expires, maxUses string) {
		opts, err := account.ParseInviteOptions(expires, maxUses)
		if err != nil {
			var ve *account.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) != 1 {
				t.Fatalf("error %v is not a one-field ValidationError", err)
			}
			return
		}
		if opts.ExpiresIn < 0 || opts.ExpiresIn > account.MaxInviteExpiry || opts.MaxUses < 0 || opts.MaxUses > account.MaxInviteUses {
			t.Fatalf("ParseInviteOptions(%q, %q) = %+v, out of bounds", expires, maxUses, opts)
		}
	})
}
