package store_test

import (
	"context"
	"testing"

	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
)

// TestMembersMayRecord: a channel allows only its owner to record until
// the policy says otherwise; setting it twice updates the row; deleting
// the channel removes it (no orphan row blocks a reused id).
func TestMembersMayRecord(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		owner := mkUser(t, db, "recowner", "Rec")
		c := mkChannel(t, db, owner, "Recorded", t0)
		if ok, err := db.MembersMayRecord(ctx, c.ID); err != nil || ok {
			t.Fatalf("default: %v, %v; want false", ok, err)
		}
		for _, want := range []bool{true, false, true} {
			if err := db.SetMembersMayRecord(ctx, c.ID, want); err != nil {
				t.Fatal(err)
			}
			if ok, err := db.MembersMayRecord(ctx, c.ID); err != nil || ok != want {
				t.Fatalf("after set %v: %v, %v", want, ok, err)
			}
		}
		if err := db.DeleteChannel(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if ok, err := db.MembersMayRecord(ctx, c.ID); err != nil || ok {
			t.Fatalf("after delete: %v, %v; want false", ok, err)
		}
	})
}
