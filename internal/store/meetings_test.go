package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
)

// TestModerators: the moderator flag lives on the membership: set and
// unset by the owner, gone with the membership.
func TestModerators(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		owner, bob, cat := mkUser(t, db, "owner", "Owner"), mkUser(t, db, "bob", "Bob"), mkUser(t, db, "cat", "Cat")
		c := mkChannel(t, db, owner, "Design", t0)
		if err := db.AddMember(ctx, c.ID, bob.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.SetModerator(ctx, c.ID, bob.ID, true); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "SetModerator(non-member)", db.SetModerator(ctx, c.ID, cat.ID, true), store.ErrNotFound)
		if ok, err := db.IsModerator(ctx, c.ID, bob.ID); err != nil || !ok {
			t.Errorf("IsModerator(bob) = %t, %v; want true", ok, err)
		}
		if ok, err := db.IsModerator(ctx, c.ID, owner.ID); err != nil || ok {
			t.Errorf("IsModerator(owner) = %t, %v; want false (the owner's role comes from owning)", ok, err)
		}
		if ms, err := db.Moderators(ctx, c.ID); err != nil || len(ms) != 1 || !ms[bob.ID] {
			t.Errorf("Moderators = %v, %v; want bob only", ms, err)
		}
		if err := db.SetModerator(ctx, c.ID, bob.ID, false); err != nil {
			t.Fatal(err)
		}
		if ok, _ := db.IsModerator(ctx, c.ID, bob.ID); ok {
			t.Error("bob still a moderator after SetModerator(false)")
		}
		// Leaving ends it: back as a plain member.
		db.SetModerator(ctx, c.ID, bob.ID, true)
		if err := db.RemoveMember(ctx, c.ID, bob.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.AddMember(ctx, c.ID, bob.ID); err != nil {
			t.Fatal(err)
		}
		if ok, _ := db.IsModerator(ctx, c.ID, bob.ID); ok {
			t.Error("bob a moderator again after leaving and coming back")
		}
	})
}

// TestMeetingCodes: one code per channel, unique across channels,
// replaced by rotation, gone with the channel.
func TestMeetingCodes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		owner := mkUser(t, db, "owner", "Owner")
		c, d := mkChannel(t, db, owner, "Design", t0), mkChannel(t, db, owner, "Ops", t0)
		_, err := db.MeetingCode(ctx, c.ID)
		wantErr(t, "MeetingCode before any", err, store.ErrNotFound)
		if err := db.SetMeetingCode(ctx, c.ID, "abc-defg-hij", t0); err != nil {
			t.Fatal(err)
		}
		if code, err := db.MeetingCode(ctx, c.ID); err != nil || code != "abc-defg-hij" {
			t.Errorf("MeetingCode = %q, %v", code, err)
		}
		if got, err := db.ChannelByMeetingCode(ctx, "abc-defg-hij"); err != nil || got.ID != c.ID {
			t.Errorf("ChannelByMeetingCode = %+v, %v; want %s", got, err, c.ID)
		}
		wantErr(t, "SetMeetingCode(taken)", db.SetMeetingCode(ctx, d.ID, "abc-defg-hij", t0), store.ErrConflict)
		wantErr(t, "SetMeetingCode(unknown channel)", db.SetMeetingCode(ctx, "nope", "zzz-zzzz-zzz", t0), store.ErrNotFound)
		// Rotation: the old code stops working.
		if err := db.SetMeetingCode(ctx, c.ID, "klm-nopq-rst", t0); err != nil {
			t.Fatal(err)
		}
		_, err = db.ChannelByMeetingCode(ctx, "abc-defg-hij")
		wantErr(t, "ChannelByMeetingCode(old code)", err, store.ErrNotFound)
		if err := db.DeleteChannel(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		_, err = db.ChannelByMeetingCode(ctx, "klm-nopq-rst")
		wantErr(t, "ChannelByMeetingCode after DeleteChannel", err, store.ErrNotFound)
	})
}

// TestQuickCalls: codes are unique; a call left empty long enough is
// deleted, one in use or emptied recently is not.
func TestQuickCalls(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		u := mkUser(t, db, "ann", "Ann")
		old := store.QuickCall{ID: newID("q"), Code: "123456", CreatedBy: u.ID, CreatedAt: t0, EmptySince: t0}
		busy := store.QuickCall{ID: newID("q"), Code: "234567", CreatedBy: u.ID, CreatedAt: t0, EmptySince: t0}
		recent := store.QuickCall{ID: newID("q"), Code: "345678", CreatedBy: u.ID, CreatedAt: t0, EmptySince: t0.Add(23 * time.Hour)}
		for _, q := range []store.QuickCall{old, busy, recent} {
			if err := db.CreateQuickCall(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		dup := old
		dup.ID = newID("q")
		wantErr(t, "CreateQuickCall(dup code)", db.CreateQuickCall(ctx, dup), store.ErrConflict)
		if got, err := db.QuickCallByCode(ctx, "123456"); err != nil || got != old {
			t.Errorf("QuickCallByCode = %+v, %v; want %+v", got, err, old)
		}
		_, err := db.QuickCallByCode(ctx, "999999")
		wantErr(t, "QuickCallByCode(unknown)", err, store.ErrNotFound)
		if err := db.SetQuickCallEmpty(ctx, busy.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "SetQuickCallEmpty(unknown)", db.SetQuickCallEmpty(ctx, "nope", t0), store.ErrNotFound)
		// Now is t0+25h: empty since before t0+1h means empty for 24 hours.
		ids, err := db.DeleteEmptyQuickCalls(ctx, t0.Add(time.Hour))
		if err != nil || !slices.Equal(ids, []string{old.ID}) {
			t.Fatalf("DeleteEmptyQuickCalls = %v, %v; want %s only", ids, err, old.ID)
		}
		for code, want := range map[string]bool{"123456": false, "234567": true, "345678": true} {
			_, err := db.QuickCallByCode(ctx, code)
			if (err == nil) != want {
				t.Errorf("QuickCallByCode(%s) after the sweep: %v; want kept %t", code, err, want)
			}
		}
	})
}

// TestGuestLinks: on, replaced, found by code, off.
func TestGuestLinks(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		owner := mkUser(t, db, "owner", "Owner")
		c, d := mkChannel(t, db, owner, "Design", t0), mkChannel(t, db, owner, "Ops", t0)
		_, err := db.GuestLink(ctx, c.ID)
		wantErr(t, "GuestLink while off", err, store.ErrNotFound)
		g := store.GuestLink{ChannelID: c.ID, Code: "g-secret-1", Lobby: true, CreatedAt: t0}
		if err := db.SetGuestLink(ctx, g); err != nil {
			t.Fatal(err)
		}
		if got, err := db.GuestLinkByCode(ctx, g.Code); err != nil || got != g {
			t.Errorf("GuestLinkByCode = %+v, %v; want %+v", got, err, g)
		}
		wantErr(t, "SetGuestLink(code taken)", db.SetGuestLink(ctx, store.GuestLink{ChannelID: d.ID, Code: g.Code, CreatedAt: t0}), store.ErrConflict)
		wantErr(t, "SetGuestLink(unknown channel)", db.SetGuestLink(ctx, store.GuestLink{ChannelID: "nope", Code: "x", CreatedAt: t0}), store.ErrNotFound)
		g2 := store.GuestLink{ChannelID: c.ID, Code: "g-secret-2", CreatedAt: t0}
		if err := db.SetGuestLink(ctx, g2); err != nil {
			t.Fatal(err)
		}
		if got, err := db.GuestLink(ctx, c.ID); err != nil || got != g2 {
			t.Errorf("GuestLink after replace = %+v, %v; want %+v", got, err, g2)
		}
		_, err = db.GuestLinkByCode(ctx, g.Code)
		wantErr(t, "GuestLinkByCode(replaced)", err, store.ErrNotFound)
		if err := db.DeleteGuestLink(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "DeleteGuestLink twice", db.DeleteGuestLink(ctx, c.ID), store.ErrNotFound)
		_, err = db.GuestLinkByCode(ctx, g2.Code)
		wantErr(t, "GuestLinkByCode after off", err, store.ErrNotFound)
	})
}
