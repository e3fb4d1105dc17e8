package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/testtool"
)

const testRedis = "127.0.0.1:6379"

// testPrefix skips (loudly) without Redis, or fails under
// PARLEY_REQUIRE_ALL=1, and returns a key prefix deleted after the test.
func testPrefix(t *testing.T) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", testRedis, time.Second)
	if err != nil {
		msg := "no Redis at " + testRedis + ": cluster tests NOT RUN; start redis-server"
		if os.Getenv("PARLEY_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	c.Close()
	b := make([]byte, 5)
	rand.Read(b)
	prefix := "parleytest:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: testRedis})
		defer rdb.Close()
		ctx := context.Background()
		if keys, _ := rdb.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return prefix
}

// fakeRooms stands in for a node's room manager: which rooms run.
type fakeRooms struct {
	mu    sync.Mutex
	rooms map[string]int
	lost  []string
}

func (f *fakeRooms) local() []Room {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Room
	for id, n := range f.rooms {
		out = append(out, Room{ID: id, Participants: n})
	}
	return out
}

func (f *fakeRooms) lose(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lost = append(f.lost, id)
}

func (f *fakeRooms) lostOnes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lost...)
}

func testNode(t *testing.T, prefix, id string, secret string) (*Node, *fakeRooms) {
	t.Helper()
	f := &fakeRooms{rooms: map[string]int{}}
	n, err := New(Config{RedisURL: "redis://" + testRedis + "/0", Prefix: prefix, NodeID: id, NodeURL: "http://" + id + ".invalid:8080",
		Secret: []byte(secret), LeaseTTL: time.Second}, slog.New(slog.DiscardHandler), f.local, f.lose)
	if err != nil {
		t.Fatal(err)
	}
	n.Start("http://" + id + ".invalid:8080")
	t.Cleanup(func() { n.Close() })
	return n, f
}

// TestLeases: the first node to place a room holds it; the other is sent
// there; the holder renews while the room runs, releases it when it stops
// and on drain; a node whose lease another took is told to move its call;
// a registry entry signed with another secret is not followed.
func TestLeases(t *testing.T) {
	prefix := testPrefix(t)
	const secret = "0123456789abcdef-secret"
	a, fa := testNode(t, prefix, "a", secret)
	b, _ := testNode(t, prefix, "b", secret)
	ctx := context.Background()

	local, _, err := a.Place(ctx, "room1", false, time.Second)
	if err != nil || !local {
		t.Fatalf("a places room1: local %v, %v", local, err)
	}
	fa.mu.Lock()
	fa.rooms["room1"] = 2
	fa.mu.Unlock()
	local, owner, err := b.Place(ctx, "room1", false, time.Second)
	if err != nil || local || owner.String() != "http://a.invalid:8080" {
		t.Fatalf("b places room1: local %v owner %v, %v", local, owner, err)
	}
	// a renews it past several TTLs while the room runs.
	deadline := time.Now().Add(2500 * time.Millisecond)
	testtool.Eventually(t, 5*time.Second, func() bool { return time.Now().After(deadline) }, "time passes")
	if l, o, _ := b.Place(ctx, "room1", false, time.Second); l || o == nil {
		t.Fatal("a's lease lapsed although a kept renewing it")
	}
	// The registry lists a's call.
	st, err := Status(ctx, "redis://"+testRedis+"/0", prefix)
	if err != nil || len(st) != 2 || st[0].ID != "a" || len(st[0].Calls) != 1 || st[0].Calls[0].Participants != 2 {
		t.Errorf("status: %+v, %v", st, err)
	}

	// Another node takes the lease (as after a's freeze): a is told.
	a.rdb.Set(ctx, a.leaseKey("room1"), "b", time.Minute)
	testtool.Eventually(t, 5*time.Second, func() bool { return len(fa.lostOnes()) > 0 }, "a hears its call was taken")
	a.rdb.Del(ctx, a.leaseKey("room1"))

	// The room stops on a: its lease is released, b may take it.
	fa.mu.Lock()
	delete(fa.rooms, "room1")
	fa.mu.Unlock()
	if l, _, err := a.Place(ctx, "room2", false, time.Second); !l || err != nil {
		t.Fatal("a could not place room2")
	}
	a.Drain(ctx)
	if l, _, err := b.Place(ctx, "room2", false, time.Second); !l || err != nil {
		t.Fatalf("after a drained, b could not take room2: %v", err)
	}
	if _, _, err := a.Place(ctx, "room3", false, time.Second); err != ErrDraining {
		t.Fatalf("a draining placed room3: %v", err)
	}

	// c signs with another secret: b does not forward to it.
	c, _ := testNode(t, prefix, "c", "another-secret-0123456789")
	if l, _, err := c.Place(ctx, "room4", false, time.Second); !l || err != nil {
		t.Fatal("c could not place room4")
	}
	if _, o, err := b.Place(ctx, "room4", false, time.Second); err == nil {
		t.Fatalf("b would forward to %v, registered without a valid signature", o)
	}
}

// TestPlaceWithoutRedis: an unreachable Redis makes Place fail after its
// wait, unless the room runs here.
func TestPlaceWithoutRedis(t *testing.T) {
	n, err := New(Config{RedisURL: "redis://127.0.0.1:1/0", NodeID: "x", Secret: []byte("0123456789abcdef")}, slog.New(slog.DiscardHandler),
		func() []Room { return nil }, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, _, err := n.Place(context.Background(), "r", false, 300*time.Millisecond); err == nil {
		t.Fatal("placed a room with no Redis")
	}
	if l, _, err := n.Place(context.Background(), "r", true, 300*time.Millisecond); !l || err != nil {
		t.Fatalf("a room running here must stay here without Redis: %v %v", l, err)
	}
}

// TestLimiterShared: two limiters on one prefix count together, in a
// window; Undo takes an attempt back; Clear forgets.
func TestLimiterShared(t *testing.T) {
	prefix := testPrefix(t)
	const secret = "0123456789abcdef-secret"
	a, _ := testNode(t, prefix, "a", secret)
	b, _ := testNode(t, prefix, "b", secret)
	p := account.LimiterParams{Name: "logins", Window: time.Minute, Delay: time.Second, MaxDelay: 8 * time.Second}
	la, lb := a.NewLimiter(p), b.NewLimiter(p)
	ctx := context.Background()
	now := time.Now()
	rules := []account.Rule{{Key: "pair:x", Limit: 3}}
	var ats []time.Time
	for i := range 3 {
		l := la
		if i%2 == 1 {
			l = lb
		}
		at := now.Add(time.Duration(i) * time.Millisecond)
		if w, err := l.Admit(ctx, at, rules); w != 0 || err != nil {
			t.Fatalf("attempt %d refused: %v %v", i, w, err)
		}
		ats = append(ats, at)
	}
	w, err := lb.Admit(ctx, now.Add(10*time.Millisecond), rules)
	if err != nil || w <= 50*time.Second || w > time.Minute {
		t.Fatalf("fourth attempt: wait %v, %v; want about a minute", w, err)
	}
	if err := la.Undo(ctx, ats[2], []string{"pair:x"}); err != nil {
		t.Fatal(err)
	}
	if w, _ := lb.Admit(ctx, now.Add(20*time.Millisecond), rules); w != 0 {
		t.Fatalf("after an undo: wait %v", w)
	}
	// Slow rules pace attempts past the limit instead.
	slow := []account.Rule{{Key: "user:y", Limit: 1, Slow: true}}
	la.Admit(ctx, now, slow)
	if w, _ := lb.Admit(ctx, now.Add(100*time.Millisecond), slow); w != 900*time.Millisecond {
		t.Fatalf("slow rule: wait %v, want 900ms", w)
	}
	if err := la.Clear(ctx, []string{"user:y", "pair:x"}); err != nil {
		t.Fatal(err)
	}
	if w, _ := lb.Admit(ctx, now.Add(200*time.Millisecond), rules); w != 0 {
		t.Fatalf("after clear: wait %v", w)
	}
	// The window passes.
	if w, _ := lb.Admit(ctx, now.Add(2*time.Minute), []account.Rule{{Key: "pair:x", Limit: 1}}); w != 0 {
		t.Fatalf("after the window: wait %v", w)
	}
}
