package account_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
)

// TestChannelChangesReported: RemoveMember, SetChannelMode and
// DeleteChannel tell their Config callbacks, after the store changed, so
// the caller's connections follow whoever made the change; refused
// changes tell nothing. A removal also changes MembershipVersion, so the
// TURN relay's member cache cannot keep relaying for the removed user.
func TestChannelChangesReported(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var mu sync.Mutex
		var got []string
		note := func(format string, args ...any) {
			mu.Lock()
			got = append(got, fmt.Sprintf(format, args...))
			mu.Unlock()
		}
		s, _ := newService(t, db, account.Config{
			MemberRemoved:  func(ch, user string) { note("removed %s %s", ch, user) },
			ChannelDeleted: func(ch string) { note("deleted %s", ch) },
			ModeChanged:    func(ch, mode string) { note("mode %s %s", ch, mode) },
		})
		ctx := context.Background()
		ann, bob := signUp(t, s, "ann"), signUp(t, s, "bob")
		ch, err := s.CreateChannel(ctx, ann, "Standup")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddMember(ctx, ann, ch.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		// Refused: not the owner, and a bad mode.
		if err := s.RemoveMember(ctx, bob, ch.ID, ann.ID); err == nil {
			t.Fatal("bob removed the owner")
		}
		if _, err := s.SetChannelMode(ctx, ann, ch.ID, "carrier pigeon"); err == nil {
			t.Fatal("a bad mode was accepted")
		}
		v := s.MembershipVersion()
		if err := s.RemoveMember(ctx, ann, ch.ID, bob.ID); err != nil {
			t.Fatal(err)
		}
		if s.MembershipVersion() == v {
			t.Error("MembershipVersion unchanged by RemoveMember")
		}
		if _, err := s.SetChannelMode(ctx, ann, ch.ID, store.ModeSFU); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteChannel(ctx, ann, ch.ID); err != nil {
			t.Fatal(err)
		}
		want := []string{"removed " + ch.ID + " " + bob.ID, "mode " + ch.ID + " sfu", "deleted " + ch.ID}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(got, want) {
			t.Errorf("reported %q, want %q", got, want)
		}
	})
}
