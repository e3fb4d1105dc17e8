package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
)

func outboxEvent(typ, channelID string, at time.Time) store.OutboxEvent {
	id := newID("evt")
	return store.OutboxEvent{ID: id, Type: typ, ChannelID: channelID, Payload: []byte(`{"id":"` + id + `"}`), CreatedAt: at, ExpiresAt: at.Add(24 * time.Hour)}
}

func mkWebhook(t *testing.T, db *store.DB, owner store.User, events ...string) store.Webhook {
	t.Helper()
	w := store.Webhook{ID: newID("wh"), UserID: owner.ID, URL: "https://example.org/" + owner.Username, Events: events, Secret: "s3cret", CreatedAt: t0}
	if err := db.CreateWebhook(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestWebhookOutbox: membership changes write their events in their own
// transaction (and none when the change does not happen), only to the
// channel owner's webhooks that chose the event; claims hand out each
// webhook's oldest pending row only, leased, so a failing event blocks
// the later ones until it succeeds or is given up.
func TestWebhookOutbox(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ann := mkUser(t, db, "ann", "Ann")
		bob := mkUser(t, db, "bob", "Bob")
		c := mkChannel(t, db, ann, "hooks", t0)
		w1 := mkWebhook(t, db, ann, "member.added", "member.removed", "call.started")
		w2 := mkWebhook(t, db, ann, "call.started")
		wb := mkWebhook(t, db, bob, "member.added", "call.started") // bob does not own c

		now := time.Now()
		added := outboxEvent("member.added", c.ID, now)
		if err := db.AddMember(ctx, c.ID, bob.ID, added); err != nil {
			t.Fatal(err)
		}
		// Already a member: nothing changes, nothing is written.
		if err := db.AddMember(ctx, c.ID, bob.ID, outboxEvent("member.added", c.ID, now)); err != nil {
			t.Fatal(err)
		}
		// A removal that fails (not a member) writes no event either.
		carl := mkUser(t, db, "carl", "Carl")
		if err := db.ExpelMember(ctx, c.ID, carl.ID, now, outboxEvent("member.removed", c.ID, now)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expel a non-member: %v", err)
		}
		started := outboxEvent("call.started", c.ID, now)
		if err := db.Enqueue(ctx, started); err != nil {
			t.Fatal(err)
		}
		removed := outboxEvent("member.removed", c.ID, now)
		if err := db.ExpelMember(ctx, c.ID, bob.ID, now, removed); err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{w1.ID: {added.ID, started.ID, removed.ID}, w2.ID: {started.ID}, wb.ID: nil}
		for wid, ids := range want {
			ds, err := db.WebhookDeliveries(ctx, wid)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, d := range ds {
				got = append(got, d.EventID)
				if d.Seq != int64(i+1) || d.State != store.DeliveryPending {
					t.Errorf("delivery %d of %s: seq %d state %s", i, wid, d.Seq, d.State)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(ids) {
				t.Errorf("webhook %s has events %v, want %v", wid, got, ids)
			}
		}

		lease := time.Minute
		claim := func(at time.Time) map[string]store.Delivery {
			t.Helper()
			ds, err := db.ClaimDeliveries(ctx, at, lease, 10)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]store.Delivery{}
			for _, d := range ds {
				if _, dup := out[d.WebhookID]; dup {
					t.Fatalf("two deliveries of webhook %s claimed at once", d.WebhookID)
				}
				out[d.WebhookID] = d
			}
			return out
		}
		got := claim(now)
		if len(got) != 2 || got[w1.ID].EventID != added.ID || got[w2.ID].EventID != started.ID {
			t.Fatalf("first claim: %+v", got)
		}
		if got[w1.ID].URL != w1.URL || got[w1.ID].Secret != "s3cret" || got[w1.ID].Attempts != 1 {
			t.Errorf("claimed row lacks its webhook: %+v", got[w1.ID])
		}
		if again := claim(now.Add(time.Second)); len(again) != 0 {
			t.Fatalf("leased rows claimed again: %+v", again)
		}
		// The first event of w1 fails: it stays the head, the next waits.
		if err := db.DeliveryFailed(ctx, got[w1.ID].ID, 500, "answered 500", now.Add(2*time.Second), false, now); err != nil {
			t.Fatal(err)
		}
		if err := db.DeliverySucceeded(ctx, got[w2.ID].ID, 204, now); err != nil {
			t.Fatal(err)
		}
		if early := claim(now.Add(time.Second)); len(early) != 0 {
			t.Fatalf("claimed before the retry time: %+v", early)
		}
		got = claim(now.Add(3 * time.Second))
		if len(got) != 1 || got[w1.ID].EventID != added.ID || got[w1.ID].Attempts != 2 {
			t.Fatalf("retry claim: %+v", got)
		}
		if err := db.DeliverySucceeded(ctx, got[w1.ID].ID, 200, now); err != nil {
			t.Fatal(err)
		}
		got = claim(now.Add(3 * time.Second))
		if len(got) != 1 || got[w1.ID].EventID != started.ID {
			t.Fatalf("after success, the next event: %+v", got)
		}
		// Given up: the row is failed and the next one is free to go.
		if err := db.DeliveryFailed(ctx, got[w1.ID].ID, 0, "connection refused", now, true, now); err != nil {
			t.Fatal(err)
		}
		got = claim(now.Add(3 * time.Second))
		if len(got) != 1 || got[w1.ID].EventID != removed.ID {
			t.Fatalf("after giving up, the next event: %+v", got)
		}
		pendingID := got[w1.ID].ID

		recent, err := db.RecentDeliveries(ctx, ann.ID, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(recent) != 4 || recent[0].Secret != "" {
			t.Fatalf("recent deliveries: %d, secret %q", len(recent), recent[0].Secret)
		}
		states := map[string]string{}
		var failedID string
		for _, d := range recent {
			states[d.EventID+"@"+d.WebhookID] = d.State
			if d.State == store.DeliveryFailed {
				failedID = d.ID
			}
		}
		if states[started.ID+"@"+w1.ID] != store.DeliveryFailed || states[added.ID+"@"+w1.ID] != store.DeliveryDelivered {
			t.Errorf("states %v", states)
		}
		if only, err := db.RecentDeliveries(ctx, ann.ID, w2.ID, 10); err != nil || len(only) != 1 {
			t.Errorf("w2's deliveries: %d %v", len(only), err)
		}
		// Re-send: a pending row cannot be; another user's cannot be; a
		// failed one is pending again and, being older, goes first.
		if err := db.ResendDelivery(ctx, ann.ID, "", pendingID, now, now.Add(time.Hour)); !errors.Is(err, store.ErrConflict) {
			t.Errorf("resend a pending delivery: %v", err)
		}
		if err := db.ResendDelivery(ctx, bob.ID, "", failedID, now, now.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("resend someone else's delivery: %v", err)
		}
		if err := db.ResendDelivery(ctx, ann.ID, w2.ID, failedID, now, now.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("resend through the wrong webhook: %v", err)
		}
		if err := db.ResendDelivery(ctx, ann.ID, w1.ID, failedID, now, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := db.DeliverySucceeded(ctx, pendingID, 200, now); err != nil {
			t.Fatal(err)
		}
		got = claim(now.Add(time.Hour))
		if len(got) != 1 || got[w1.ID].ID != failedID || got[w1.ID].Attempts != 1 {
			t.Fatalf("re-sent delivery not claimed: %+v", got)
		}
		if err := db.DeliverySucceeded(ctx, failedID, 200, now); err != nil {
			t.Fatal(err)
		}
		if n, err := db.PruneDeliveries(ctx, now.Add(time.Second)); err != nil || n != 4 {
			t.Errorf("pruned %d (%v), want 4", n, err)
		}
		// Deleting a webhook deletes its queue.
		if err := db.Enqueue(ctx, outboxEvent("call.started", c.ID, now)); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteWebhook(ctx, bob.ID, w1.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("bob deleted ann's webhook: %v", err)
		}
		if err := db.DeleteWebhook(ctx, ann.ID, w1.ID); err != nil {
			t.Fatal(err)
		}
		if ds, _ := db.WebhookDeliveries(ctx, w1.ID); len(ds) != 0 {
			t.Errorf("%d deliveries outlived their webhook", len(ds))
		}
	})
}

// TestWebhookClaimsConcurrent: workers claiming at once (PostgreSQL: FOR
// UPDATE SKIP LOCKED; SQLite: one writer) never take the same row.
func TestWebhookClaimsConcurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ann := mkUser(t, db, "ann", "Ann")
		c := mkChannel(t, db, ann, "busy", t0)
		const hooks = 12
		for range hooks {
			mkWebhook(t, db, ann, "call.started")
		}
		now := time.Now()
		for range 3 {
			if err := db.Enqueue(ctx, outboxEvent("call.started", c.ID, now)); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					ds, err := db.ClaimDeliveries(ctx, now, time.Hour, 3)
					if err != nil {
						t.Error(err)
						return
					}
					if len(ds) == 0 {
						return
					}
					mu.Lock()
					for _, d := range ds {
						seen[d.ID]++
					}
					mu.Unlock()
					for _, d := range ds {
						if err := db.DeliverySucceeded(ctx, d.ID, 200, now); err != nil {
							t.Error(err)
						}
					}
				}
			})
		}
		wg.Wait()
		if len(seen) != hooks*3 {
			t.Errorf("%d deliveries claimed, want %d", len(seen), hooks*3)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("delivery %s claimed %d times", id, n)
			}
		}
	})
}
