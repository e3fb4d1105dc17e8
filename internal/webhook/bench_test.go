package webhook_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
	"github.com/parley/parley/internal/webhook"
)

// benchDeliver writes b.N events for each of hooks webhooks on SQLite,
// then times the worker until a loopback receiver has them all: claim,
// sign, POST and record, per event.
func benchDeliver(b *testing.B, hooks int) {
	db := storetest.OpenSQLite(b)
	ctx := context.Background()
	owner := store.User{ID: "u_ann", Username: "ann", DisplayName: "Ann", Email: "ann@example.com", PasswordHash: "x", CreatedAt: time.Now()}
	if err := db.CreateUser(ctx, owner); err != nil {
		b.Fatal(err)
	}
	if err := db.CreateChannel(ctx, store.Channel{ID: "c_1", Name: "c", OwnerID: owner.ID, CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer hs.Close()
	svc := webhook.New(webhook.Config{AllowPrivate: true, Poll: time.Millisecond}, db, nil)
	for range hooks {
		if _, err := svc.Create(ctx, owner.ID, webhook.Input{URL: hs.URL, Events: []string{webhook.CallStarted}}); err != nil {
			b.Fatal(err)
		}
	}
	for range b.N {
		if err := svc.Emit(ctx, webhook.CallStarted, "c_1", webhook.CallData{CallID: "call_x"}); err != nil {
			b.Fatal(err)
		}
	}
	want := int64(b.N * hooks)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	b.ResetTimer()
	go func() { svc.Run(runCtx); close(done) }()
	for got.Load() < want {
		time.Sleep(time.Millisecond) // a benchmark's wait, not a test's synchronisation
	}
	b.StopTimer()
	stop()
	<-done
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(want), "µs/delivery")
}

func BenchmarkDeliverOneWebhook(b *testing.B)  { benchDeliver(b, 1) }
func BenchmarkDeliverTenWebhooks(b *testing.B) { benchDeliver(b, 10) }

// BenchmarkPostFloor is the floor: one bare POST of the same size to the
// same kind of receiver, with a kept-alive connection.
func BenchmarkPostFloor(b *testing.B) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer hs.Close()
	body := bytes.Repeat([]byte("x"), 250)
	c := hs.Client()
	for b.Loop() {
		resp, err := c.Post(hs.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}
