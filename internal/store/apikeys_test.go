package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
)

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		ann := mkUser(t, db, "ann", "Ann")
		bob := mkUser(t, db, "bob", "Bob")
		if ks, err := db.APIKeysForUser(ctx, ann.ID); err != nil || len(ks) != 0 {
			t.Fatalf("keys of a new user = %v, %v", ks, err)
		}
		k1 := store.APIKey{ID: newID("k"), UserID: ann.ID, Name: "one", SecretHash: "h1", CreatedAt: t0}
		k2 := store.APIKey{ID: newID("k"), UserID: ann.ID, Name: "two", SecretHash: "h2", CreatedAt: t0.Add(time.Second)}
		for _, k := range []store.APIKey{k1, k2} {
			if err := db.CreateAPIKey(ctx, k); err != nil {
				t.Fatalf("CreateAPIKey: %v", err)
			}
		}
		if err := db.CreateAPIKey(ctx, k1); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("same id again: %v, want ErrConflict", err)
		}
		if err := db.CreateAPIKey(ctx, store.APIKey{ID: newID("k"), UserID: "nobody", Name: "x", SecretHash: "h", CreatedAt: t0}); err == nil {
			t.Fatal("a key of an unknown user was stored")
		}
		got, err := db.APIKeyByID(ctx, k1.ID)
		if err != nil || got != k1 {
			t.Fatalf("APIKeyByID = %+v, %v; want %+v", got, err, k1)
		}
		if _, err := db.APIKeyByID(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown key: %v", err)
		}
		ks, err := db.APIKeysForUser(ctx, ann.ID)
		if err != nil || len(ks) != 2 || ks[0].ID != k2.ID || ks[1].ID != k1.ID {
			t.Fatalf("APIKeysForUser = %+v, %v; want newest first", ks, err)
		}
		if err := db.DeleteAPIKey(ctx, bob.ID, k1.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleting another's key: %v", err)
		}
		if err := db.DeleteAPIKey(ctx, ann.ID, k1.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteAPIKey(ctx, ann.ID, k1.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleting twice: %v", err)
		}
		// A password reset ends the account's keys with its sessions and
		// tokens.
		if err := db.CreatePasswordReset(ctx, store.PasswordReset{TokenHash: "r1", UserID: ann.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := db.ResetPassword(ctx, "r1", ann.ID, t0, "newhash"); err != nil {
			t.Fatal(err)
		}
		if ks, _ := db.APIKeysForUser(ctx, ann.ID); len(ks) != 0 {
			t.Fatalf("%d keys outlived the password reset", len(ks))
		}
		// Deleting the account deletes its keys.
		k3 := store.APIKey{ID: newID("k"), UserID: bob.ID, Name: "b", SecretHash: "h3", CreatedAt: t0}
		db.CreateAPIKey(ctx, k3)
		if _, err := db.DeleteAccount(ctx, bob.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.APIKeyByID(ctx, k3.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("key of a deleted account: %v", err)
		}
	})
}

func TestUpdateChannel(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		ann := mkUser(t, db, "ann", "Ann")
		c := mkChannel(t, db, ann, "Design", t0)
		if err := db.UpdateChannel(ctx, c, "Design team", store.ModeSFU); err != nil {
			t.Fatal(err)
		}
		got, _ := db.ChannelByID(ctx, c.ID)
		if got.Name != "Design team" || got.Mode != store.ModeSFU {
			t.Fatalf("after update: %+v", got)
		}
		// A second writer holding the old version loses.
		if err := db.UpdateChannel(ctx, c, "Lost", store.ModeP2P); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale update: %v, want ErrConflict", err)
		}
		if got2, _ := db.ChannelByID(ctx, c.ID); got2 != got {
			t.Fatalf("a stale update changed it: %+v", got2)
		}
		gone := c
		gone.ID = "nope"
		if err := db.UpdateChannel(ctx, gone, "x", store.ModeAuto); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown channel: %v", err)
		}
	})
}
