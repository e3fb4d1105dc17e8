package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
)

func mkInvite(t *testing.T, db *store.DB, c store.Channel, by store.User, at time.Time, maxUses int) store.Invite {
	t.Helper()
	inv := store.Invite{ID: newID("i"), ChannelID: c.ID, Code: newID("code"), CreatedBy: by.ID, CreatedAt: at, MaxUses: maxUses}
	if err := db.CreateInvite(context.Background(), inv); err != nil {
		t.Fatalf("CreateInvite: %v", err)
	}
	inv.CreatorName = by.DisplayName
	return inv
}

// allow is a RedeemCheck that lets everyone in.
func allow(store.Invite, bool, bool) error { return nil }

func TestInvites(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		owner := mkUser(t, db, "owner", "Owner")
		c := mkChannel(t, db, owner, "Design", t0)
		other := mkChannel(t, db, owner, "Other", t0)

		if invs, err := db.Invites(ctx, c.ID); err != nil || invs == nil || len(invs) != 0 {
			t.Fatalf("Invites of a new channel = %v, %v; want empty non-nil", invs, err)
		}
		old := mkInvite(t, db, c, owner, t0, 0)
		limited := store.Invite{ID: newID("i"), ChannelID: c.ID, Code: newID("code"), CreatedBy: owner.ID,
			CreatedAt: t0.Add(time.Second), ExpiresAt: t0.Add(time.Hour), MaxUses: 3}
		if err := db.CreateInvite(ctx, limited); err != nil {
			t.Fatal(err)
		}
		limited.CreatorName = owner.DisplayName
		mkInvite(t, db, other, owner, t0, 0)

		invs, err := db.Invites(ctx, c.ID)
		if err != nil || len(invs) != 2 || invs[0] != limited || invs[1] != old {
			t.Fatalf("Invites = %+v, %v; want newest first %+v, %+v", invs, err, limited, old)
		}
		if got, err := db.InviteByCode(ctx, limited.Code); err != nil || got != limited {
			t.Errorf("InviteByCode = %+v, %v; want %+v", got, err, limited)
		}
		_, err = db.InviteByCode(ctx, "nope")
		wantErr(t, "InviteByCode(nope)", err, store.ErrNotFound)

		dup := old
		dup.ID = newID("i")
		wantErr(t, "CreateInvite(dup code)", db.CreateInvite(ctx, dup), store.ErrConflict)
		noChannel := store.Invite{ID: newID("i"), ChannelID: "nope", Code: newID("code"), CreatedBy: owner.ID, CreatedAt: t0}
		wantErr(t, "CreateInvite(unknown channel)", db.CreateInvite(ctx, noChannel), store.ErrNotFound)

		// Revoking is per channel and once.
		wantErr(t, "RevokeInvite(other channel)", db.RevokeInvite(ctx, other.ID, old.ID, t0), store.ErrNotFound)
		if err := db.RevokeInvite(ctx, c.ID, old.ID, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "RevokeInvite twice", db.RevokeInvite(ctx, c.ID, old.ID, t0), store.ErrNotFound)
		if got, err := db.InviteByCode(ctx, old.Code); err != nil || !got.RevokedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("revoked InviteByCode = %+v, %v; want RevokedAt set", got, err)
		}
		if invs, _ := db.Invites(ctx, c.ID); len(invs) != 1 || invs[0].ID != limited.ID {
			t.Errorf("Invites after revoke = %+v, want only the live one", invs)
		}

		// Reset revokes every live link and leaves the fresh one only.
		fresh := store.Invite{ID: newID("i"), Code: newID("code"), CreatedBy: owner.ID, CreatedAt: t0.Add(2 * time.Minute)}
		n, err := db.ResetInvites(ctx, c.ID, fresh)
		if err != nil || n != 1 {
			t.Fatalf("ResetInvites = %d, %v; want 1 revoked", n, err)
		}
		if invs, _ := db.Invites(ctx, c.ID); len(invs) != 1 || invs[0].ID != fresh.ID {
			t.Errorf("Invites after reset = %+v, want only the fresh one", invs)
		}
		if invs, _ := db.Invites(ctx, other.ID); len(invs) != 1 {
			t.Errorf("reset touched another channel's links: %+v", invs)
		}
		_, err = db.ResetInvites(ctx, "nope", store.Invite{ID: newID("i"), Code: newID("code"), CreatedBy: owner.ID, CreatedAt: t0})
		wantErr(t, "ResetInvites(unknown channel)", err, store.ErrNotFound)

		// Deleting the channel takes its links along.
		if err := db.DeleteChannel(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		_, err = db.InviteByCode(ctx, fresh.Code)
		wantErr(t, "InviteByCode after DeleteChannel", err, store.ErrNotFound)
	})
}

func TestRedeemInviteAndExpel(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		owner := mkUser(t, db, "owner", "Owner")
		bob := mkUser(t, db, "bob", "Bob")
		c := mkChannel(t, db, owner, "Design", t0)
		inv := mkInvite(t, db, c, owner, t0, 0)

		_, _, err := db.RedeemInvite(ctx, "nope", bob.ID, allow)
		wantErr(t, "RedeemInvite(unknown code)", err, store.ErrNotFound)

		refuse := errors.New("refused")
		var seen struct{ removed, member bool }
		spy := func(err error) store.RedeemCheck {
			return func(_ store.Invite, removed, member bool) error {
				seen.removed, seen.member = removed, member
				return err
			}
		}
		if _, _, err := db.RedeemInvite(ctx, inv.Code, bob.ID, spy(refuse)); !errors.Is(err, refuse) {
			t.Fatalf("refused RedeemInvite = %v, want the check's error", err)
		}
		if ok, _ := db.IsMember(ctx, c.ID, bob.ID); ok || seen.removed || seen.member {
			t.Fatalf("after a refused redeem: member %v, check saw %+v; want nothing changed, neither", ok, seen)
		}

		got, joined, err := db.RedeemInvite(ctx, inv.Code, bob.ID, allow)
		if err != nil || !joined || got.ID != inv.ID || got.Uses != 0 {
			t.Fatalf("RedeemInvite = %+v, %v, %v; want joined with the link as it was", got, joined, err)
		}
		if _, joined, err := db.RedeemInvite(ctx, inv.Code, bob.ID, spy(nil)); err != nil || joined || !seen.member {
			t.Errorf("second RedeemInvite = %v, %v (check saw %+v); want no-op seen as member", joined, err, seen)
		}
		if got, _ := db.InviteByCode(ctx, inv.Code); got.Uses != 1 {
			t.Errorf("Uses = %d, want 1 (a member coming back uses nothing)", got.Uses)
		}

		// Expelled: the check is told, and stays told until the owner adds
		// the user again; leaving on one's own (RemoveMember) is not a removal.
		if err := db.ExpelMember(ctx, c.ID, bob.ID, t0); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "ExpelMember twice", db.ExpelMember(ctx, c.ID, bob.ID, t0), store.ErrNotFound)
		if ok, _ := db.IsMember(ctx, c.ID, bob.ID); ok {
			t.Error("bob still a member after ExpelMember")
		}
		if removed, err := db.IsRemoved(ctx, c.ID, bob.ID); err != nil || !removed {
			t.Errorf("IsRemoved = %v, %v; want true", removed, err)
		}
		if _, _, err := db.RedeemInvite(ctx, inv.Code, bob.ID, spy(refuse)); !errors.Is(err, refuse) || !seen.removed || seen.member {
			t.Errorf("RedeemInvite after removal: %v, check saw %+v; want removed, not member", err, seen)
		}
		if err := db.AddMember(ctx, c.ID, bob.ID); err != nil {
			t.Fatal(err)
		}
		if removed, _ := db.IsRemoved(ctx, c.ID, bob.ID); removed {
			t.Error("IsRemoved after the owner added bob again = true, want false")
		}
		if err := db.RemoveMember(ctx, c.ID, bob.ID); err != nil {
			t.Fatal(err)
		}
		if removed, _ := db.IsRemoved(ctx, c.ID, bob.ID); removed {
			t.Error("IsRemoved after leaving = true, want false")
		}
	})
}

// TestRedeemInviteLastUseOnce races many users for a link with 3 uses:
// exactly 3 get in, and the link counts 3.
func TestRedeemInviteLastUseOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		owner := mkUser(t, db, "owner", "Owner")
		c := mkChannel(t, db, owner, "Design", t0)
		inv := mkInvite(t, db, c, owner, t0, 3)
		const n = 12
		users := make([]store.User, n)
		for i := range users {
			users[i] = mkUser(t, db, newID("user"), "U")
		}
		usedUp := errors.New("used up")
		check := func(inv store.Invite, _, _ bool) error {
			if inv.Uses >= inv.MaxUses {
				return usedUp
			}
			return nil
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		joined := 0
		for _, u := range users {
			wg.Go(func() {
				_, ok, err := db.RedeemInvite(ctx, inv.Code, u.ID, check)
				if err != nil && !errors.Is(err, usedUp) {
					t.Errorf("RedeemInvite: %v", err)
				}
				mu.Lock()
				defer mu.Unlock()
				if ok {
					joined++
				}
			})
		}
		wg.Wait()
		got, _ := db.InviteByCode(ctx, inv.Code)
		if joined != 3 || got.Uses != 3 {
			t.Errorf("%d joined, link counts %d uses; want 3 and 3", joined, got.Uses)
		}
	})
}

// TestMigrationInvitesKeepsLegacyCode fills a schema from before migration
// 0004 and checks each channel's old code became one live link of its owner,
// no longer readable from the channel row.
func TestMigrationInvitesKeepsLegacyCode(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, dsn, dir string) {
		ctx := context.Background()
		old, err := store.OpenUpTo(ctx, dsn, dir, storetest.Logger(t), 3)
		if err != nil {
			t.Fatal(err)
		}
		if err := old.Exec(ctx, `INSERT INTO users (id, username, display_name, email, password_hash, created_at) VALUES ('u1', 'ann', 'Ann', 'a@example.com', 'x', 1)`); err != nil {
			t.Fatal(err)
		}
		if err := old.Exec(ctx, `INSERT INTO channels (id, name, owner_id, invite_code, created_at) VALUES ('c1', 'Old', 'u1', 'legacy-secret', ?)`, t0.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		old.Close()

		db, err := store.Open(ctx, dsn, dir, storetest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		inv, err := db.InviteByCode(ctx, "legacy-secret")
		if err != nil {
			t.Fatalf("legacy code after migration: %v", err)
		}
		if inv.ChannelID != "c1" || inv.CreatedBy != "u1" || !inv.ExpiresAt.IsZero() || inv.MaxUses != 0 || !inv.RevokedAt.IsZero() || !inv.CreatedAt.Equal(t0) {
			t.Errorf("migrated link = %+v, want c1's, by u1, no expiry, no limit, live", inv)
		}
		if err := db.RevokeInvite(ctx, "c1", inv.ID, t0); err != nil {
			t.Errorf("revoking the migrated link: %v", err)
		}
		if _, _, err := db.RedeemInvite(ctx, "legacy-secret", "u1", func(inv store.Invite, _, _ bool) error {
			if !inv.RevokedAt.IsZero() {
				return store.ErrConflict
			}
			return nil
		}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("redeeming the revoked legacy link: %v, want the check to see it revoked", err)
		}
	}
	t.Run(store.DialectSQLite, func(t *testing.T) {
		t.Parallel()
		check(t, "", t.TempDir())
	})
	t.Run(store.DialectPostgres, func(t *testing.T) {
		t.Parallel()
		check(t, storetest.PostgresDSN(t), "")
	})
}
