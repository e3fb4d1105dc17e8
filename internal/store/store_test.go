package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
)

// t0 is a fixed, millisecond-aligned instant so stored times compare exactly.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

var idSeq atomic.Int64

func newID(prefix string) string {
	return fmt.Sprintf("%s%06d", prefix, idSeq.Add(1))
}

func mkUser(t *testing.T, db *store.DB, username, display string) store.User {
	t.Helper()
	u := store.User{
		ID:           newID("u"),
		Username:     username,
		DisplayName:  display,
		Email:        username + "@example.com",
		PasswordHash: "$argon2id$fake",
		CreatedAt:    t0,
	}
	if err := db.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", username, err)
	}
	u.Username = strings.ToLower(username)
	return u
}

func mkChannel(t *testing.T, db *store.DB, owner store.User, name string, created time.Time) store.Channel {
	t.Helper()
	c := store.Channel{ID: newID("c"), Name: name, OwnerID: owner.ID, CreatedAt: created, Mode: store.ModeAuto}
	if err := db.CreateChannel(context.Background(), c); err != nil {
		t.Fatalf("CreateChannel(%s): %v", name, err)
	}
	return c
}

func mkMessage(t *testing.T, db *store.DB, c store.Channel, u store.User, text string, at time.Time, keep int) store.Message {
	t.Helper()
	m := store.Message{ID: newID("m"), ChannelID: c.ID, UserID: u.ID, DisplayName: u.DisplayName, Username: u.Username, Text: text, CreatedAt: at}
	if err := db.AddMessage(context.Background(), m, keep); err != nil {
		t.Fatalf("AddMessage(%q): %v", text, err)
	}
	return m
}

func texts(ms []store.Message) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Text)
	}
	return strings.Join(s, ",")
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error = %v, want %v", what, err, target)
	}
}

func TestOpenSQLiteCreatesPrivateDataDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nested", "parley-data")
	db := storetest.OpenSQLiteIn(t, dir)
	if got := db.Dialect(); got != store.DialectSQLite {
		t.Errorf("Dialect() = %q, want %q", got, store.DialectSQLite)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("data dir mode = %o, want 700", perm)
	}
	if _, err := os.Stat(filepath.Join(dir, store.SQLiteFile)); err != nil {
		t.Errorf("database file: %v", err)
	}
	if err := db.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestOpenRejectsBadDSN(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := store.Open(ctx, "mysql://root:hunter2@localhost/db", t.TempDir(), nil)
	if err == nil {
		t.Fatal("Open(mysql://...) succeeded, want an error")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q leaks the DSN password", err)
	}
	if _, err := store.Open(ctx, "", "", nil); err == nil {
		t.Error(`Open("", "") succeeded, want an error asking for a data directory`)
	}
}

func TestPostgresDialect(t *testing.T) {
	t.Parallel()
	db := storetest.OpenPostgres(t)
	if got := db.Dialect(); got != store.DialectPostgres {
		t.Errorf("Dialect() = %q, want %q", got, store.DialectPostgres)
	}
}

// TestMigrationsIdempotent reopens a database: the second Open must find
// every migration applied, change nothing and keep the data.
func TestMigrationsIdempotent(t *testing.T) {
	t.Parallel()
	latest, err := store.LatestSchemaVersion()
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, open func() *store.DB) {
		ctx := context.Background()
		first := open()
		u := mkUser(t, first, "keeper", "Keeper")
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		second := open()
		v, err := second.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v != latest {
			t.Errorf("SchemaVersion = %d, want %d", v, latest)
		}
		if _, err := second.UserByID(ctx, u.ID); err != nil {
			t.Errorf("user lost across reopen: %v", err)
		}
	}
	t.Run(store.DialectSQLite, func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		check(t, func() *store.DB { return storetest.OpenSQLiteIn(t, dir) })
	})
	t.Run(store.DialectPostgres, func(t *testing.T) {
		t.Parallel()
		dsn := storetest.PostgresDSN(t)
		check(t, func() *store.DB { return storetest.OpenPostgresDSN(t, dsn) })
	})
}

// TestOpenConcurrently starts several nodes on one fresh database at once,
// as a multi-node deployment might; migrations must apply exactly once.
func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, dsn, dir string) {
		const n = 4
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				db, err := store.Open(context.Background(), dsn, dir, nil)
				if err == nil {
					err = db.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Open #%d: %v", i, err)
			}
		}
	}
	t.Run(store.DialectSQLite, func(t *testing.T) {
		t.Parallel()
		run(t, "", t.TempDir())
	})
	t.Run(store.DialectPostgres, func(t *testing.T) {
		t.Parallel()
		run(t, storetest.PostgresDSN(t), "")
	})
}

func TestUsers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		u := store.User{
			ID: newID("u"), Username: "Alice", DisplayName: "Alice A.", Email: "alice@example.com",
			PasswordHash: "$argon2id$v=19$x", CreatedAt: t0.Add(123 * time.Microsecond),
		}
		if err := db.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}

		got, err := db.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := u
		want.Username = "alice"
		want.CreatedAt = t0 // stored to the millisecond
		if got != want {
			t.Errorf("UserByID = %+v, want %+v", got, want)
		}

		for _, name := range []string{"alice", "ALICE", "aLiCe"} {
			got, err := db.UserByUsername(ctx, name)
			if err != nil {
				t.Errorf("UserByUsername(%q): %v", name, err)
			} else if got.ID != u.ID {
				t.Errorf("UserByUsername(%q) = %s, want %s", name, got.ID, u.ID)
			}
		}

		dup := u
		dup.ID = newID("u")
		dup.Username = "ALICE"
		wantErr(t, "CreateUser(ALICE)", db.CreateUser(ctx, dup), store.ErrConflict)
		dup.Username = "alice2"
		dup.ID = u.ID
		wantErr(t, "CreateUser(same id)", db.CreateUser(ctx, dup), store.ErrConflict)

		_, err = db.UserByID(ctx, "nobody")
		wantErr(t, "UserByID(nobody)", err, store.ErrNotFound)
		_, err = db.UserByUsername(ctx, "nobody")
		wantErr(t, "UserByUsername(nobody)", err, store.ErrNotFound)

		if err := db.UpdatePasswordHash(ctx, u.ID, "$new"); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.UserByID(ctx, u.ID); got.PasswordHash != "$new" {
			t.Errorf("PasswordHash after update = %q, want $new", got.PasswordHash)
		}
		wantErr(t, "UpdatePasswordHash(nobody)", db.UpdatePasswordHash(ctx, "nobody", "x"), store.ErrNotFound)
	})
}

func TestSessions(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		u := mkUser(t, db, "sam", "Sam")
		live := store.Session{TokenHash: "live", UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		old := store.Session{TokenHash: "old", UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(-time.Minute)}
		edge := store.Session{TokenHash: "edge", UserID: u.ID, CreatedAt: t0, ExpiresAt: t0}
		for _, s := range []store.Session{live, old, edge} {
			if err := db.CreateSession(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		wantErr(t, "CreateSession(dup)", db.CreateSession(ctx, live), store.ErrConflict)
		wantErr(t, "CreateSession(unknown user)",
			db.CreateSession(ctx, store.Session{TokenHash: "x", UserID: "nobody", CreatedAt: t0, ExpiresAt: t0}), store.ErrNotFound)

		got, err := db.SessionByHash(ctx, "live")
		if err != nil {
			t.Fatal(err)
		}
		if got != live {
			t.Errorf("SessionByHash = %+v, want %+v", got, live)
		}

		n, err := db.DeleteExpiredSessions(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("DeleteExpiredSessions = %d, want 2 (expired before and exactly at now)", n)
		}
		_, err = db.SessionByHash(ctx, "old")
		wantErr(t, "SessionByHash(old)", err, store.ErrNotFound)

		if err := db.DeleteSession(ctx, "live"); err != nil {
			t.Fatal(err)
		}
		_, err = db.SessionByHash(ctx, "live")
		wantErr(t, "SessionByHash after delete", err, store.ErrNotFound)
		if err := db.DeleteSession(ctx, "live"); err != nil {
			t.Errorf("second DeleteSession: %v, want nil", err)
		}
	})
}

func TestChannelsAndMembers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		owner := mkUser(t, db, "owner", "zed Owner")
		bob := mkUser(t, db, "bob", "Bob")
		amy := mkUser(t, db, "amy", "amy")
		c := mkChannel(t, db, owner, "Design", t0)

		got, err := db.ChannelByID(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got != c {
			t.Errorf("ChannelByID = %+v, want %+v", got, c)
		}
		_, err = db.ChannelByID(ctx, "nope")
		wantErr(t, "ChannelByID(nope)", err, store.ErrNotFound)

		dupID := store.Channel{ID: c.ID, Name: "x", OwnerID: owner.ID, CreatedAt: t0}
		wantErr(t, "CreateChannel(dup id)", db.CreateChannel(ctx, dupID), store.ErrConflict)
		noOwner := store.Channel{ID: newID("c"), Name: "x", OwnerID: "nobody", CreatedAt: t0}
		wantErr(t, "CreateChannel(unknown owner)", db.CreateChannel(ctx, noOwner), store.ErrNotFound)
		_, err = db.ChannelByID(ctx, noOwner.ID)
		wantErr(t, "failed CreateChannel left a channel", err, store.ErrNotFound)

		if ok, err := db.IsMember(ctx, c.ID, owner.ID); err != nil || !ok {
			t.Errorf("owner IsMember = %v, %v; want true", ok, err)
		}
		if ok, err := db.IsMember(ctx, c.ID, bob.ID); err != nil || ok {
			t.Errorf("bob IsMember before add = %v, %v; want false", ok, err)
		}
		for range 2 { // idempotent
			if err := db.AddMember(ctx, c.ID, bob.ID); err != nil {
				t.Fatalf("AddMember(bob): %v", err)
			}
		}
		if err := db.AddMember(ctx, c.ID, amy.ID); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "AddMember(unknown user)", db.AddMember(ctx, c.ID, "nobody"), store.ErrNotFound)
		wantErr(t, "AddMember(unknown channel)", db.AddMember(ctx, "nope", bob.ID), store.ErrNotFound)

		members, err := db.Members(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range members {
			names = append(names, m.DisplayName)
		}
		if got, want := strings.Join(names, ","), "amy,Bob,zed Owner"; got != want {
			t.Errorf("Members = %s, want %s (by display name, ignoring case)", got, want)
		}
		if none, err := db.Members(ctx, "nope"); err != nil || none == nil || len(none) != 0 {
			t.Errorf("Members(nope) = %v, %v; want empty non-nil", none, err)
		}

		if err := db.RemoveMember(ctx, c.ID, bob.ID); err != nil {
			t.Fatal(err)
		}
		if ok, _ := db.IsMember(ctx, c.ID, bob.ID); ok {
			t.Error("bob still a member after RemoveMember")
		}
		wantErr(t, "RemoveMember twice", db.RemoveMember(ctx, c.ID, bob.ID), store.ErrNotFound)
	})
}

func TestChannelsForUserNewestFirst(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		a := mkUser(t, db, "ann", "Ann")
		b := mkUser(t, db, "ben", "Ben")
		mkChannel(t, db, a, "old", t0)
		mkChannel(t, db, a, "new", t0.Add(2*time.Hour))
		mkChannel(t, db, a, "mid", t0.Add(time.Hour))
		other := mkChannel(t, db, b, "bens", t0.Add(3*time.Hour))

		got, err := db.ChannelsForUser(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range got {
			names = append(names, c.Name)
		}
		if got, want := strings.Join(names, ","), "new,mid,old"; got != want {
			t.Errorf("ChannelsForUser = %s, want %s", got, want)
		}

		if err := db.AddMember(ctx, other.ID, a.ID); err != nil {
			t.Fatal(err)
		}
		got, _ = db.ChannelsForUser(ctx, a.ID)
		if len(got) != 4 || got[0].ID != other.ID {
			t.Errorf("after joining bens: %+v, want bens first of 4", got)
		}
		none, err := db.ChannelsForUser(ctx, "nobody")
		if err != nil || none == nil || len(none) != 0 {
			t.Errorf("ChannelsForUser(nobody) = %v, %v; want empty non-nil", none, err)
		}
	})
}

func TestDeleteChannelCascades(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		owner := mkUser(t, db, "olga", "Olga")
		bob := mkUser(t, db, "bob", "Bob")
		c := mkChannel(t, db, owner, "doomed", t0)
		keep := mkChannel(t, db, owner, "kept", t0)
		if err := db.AddMember(ctx, c.ID, bob.ID); err != nil {
			t.Fatal(err)
		}
		mkMessage(t, db, c, bob, "hi", t0, 0)
		mkMessage(t, db, keep, owner, "stay", t0, 0)

		if err := db.DeleteChannel(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		_, err := db.ChannelByID(ctx, c.ID)
		wantErr(t, "ChannelByID after delete", err, store.ErrNotFound)
		if ok, _ := db.IsMember(ctx, c.ID, bob.ID); ok {
			t.Error("membership survived channel deletion")
		}
		if ms, _ := db.Messages(ctx, c.ID, 10); len(ms) != 0 {
			t.Errorf("messages survived channel deletion: %v", texts(ms))
		}
		if ms, _ := db.Messages(ctx, keep.ID, 10); texts(ms) != "stay" {
			t.Errorf("other channel's messages = %q, want stay", texts(ms))
		}
		wantErr(t, "DeleteChannel twice", db.DeleteChannel(ctx, c.ID), store.ErrNotFound)
	})
}

func TestDeleteUserCascades(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		gone := mkUser(t, db, "gone", "Gone")
		stay := mkUser(t, db, "stay", "Stay")
		owned := mkChannel(t, db, gone, "owned", t0)
		shared := mkChannel(t, db, stay, "shared", t0)
		if err := db.AddMember(ctx, shared.ID, gone.ID); err != nil {
			t.Fatal(err)
		}
		mkMessage(t, db, shared, gone, "bye", t0, 0)
		mkMessage(t, db, shared, stay, "hello", t0, 0)
		if err := db.CreateSession(ctx, store.Session{TokenHash: "h", UserID: gone.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}

		if err := db.DeleteUser(ctx, gone.ID); err != nil {
			t.Fatal(err)
		}
		_, err := db.SessionByHash(ctx, "h")
		wantErr(t, "session of deleted user", err, store.ErrNotFound)
		_, err = db.ChannelByID(ctx, owned.ID)
		wantErr(t, "channel owned by deleted user", err, store.ErrNotFound)
		if ok, _ := db.IsMember(ctx, shared.ID, gone.ID); ok {
			t.Error("membership of deleted user survived")
		}
		if ms, _ := db.Messages(ctx, shared.ID, 10); texts(ms) != "hello" {
			t.Errorf("messages = %q, want only hello", texts(ms))
		}
		wantErr(t, "DeleteUser twice", db.DeleteUser(ctx, gone.ID), store.ErrNotFound)
	})
}

func TestMessagesTrimToKeep(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		u := mkUser(t, db, "tim", "Tim")
		c := mkChannel(t, db, u, "trim", t0)
		other := mkChannel(t, db, u, "other", t0)
		mkMessage(t, db, other, u, "x", t0, 0)
		for i := range 6 {
			mkMessage(t, db, c, u, fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second), 3)
		}
		ms, err := db.Messages(ctx, c.ID, 100)
		if err != nil {
			t.Fatal(err)
		}
		if got := texts(ms); got != "3,4,5" {
			t.Errorf("after trimming to 3: %s, want 3,4,5", got)
		}
		if ms, _ := db.Messages(ctx, other.ID, 100); texts(ms) != "x" {
			t.Errorf("trim touched another channel: %q", texts(ms))
		}
		mkMessage(t, db, c, u, "6", t0.Add(time.Minute), 0)
		if ms, _ := db.Messages(ctx, c.ID, 100); texts(ms) != "3,4,5,6" {
			t.Errorf("keep=0 trimmed: %q, want 3,4,5,6", texts(ms))
		}
	})
}

func TestMessagesOrder(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		u := mkUser(t, db, "olly", "Olly")
		c := mkChannel(t, db, u, "order", t0)
		// History is in the order messages were stored, whatever their
		// timestamps: equal ones keep insertion order, and an earlier
		// timestamp stored later (a post that waited for the database)
		// comes later, where the live chat showed it.
		mkMessage(t, db, c, u, "b1", t0, 0)
		mkMessage(t, db, c, u, "b2", t0, 0)
		mkMessage(t, db, c, u, "b3", t0, 0)
		mkMessage(t, db, c, u, "a", t0.Add(-time.Second), 0)
		want := mkMessage(t, db, c, u, "c", t0.Add(time.Second), 0)

		ms, err := db.Messages(ctx, c.ID, 100)
		if err != nil {
			t.Fatal(err)
		}
		if got := texts(ms); got != "b1,b2,b3,a,c" {
			t.Errorf("Messages = %s, want b1,b2,b3,a,c", got)
		}
		if last := ms[len(ms)-1]; last != want {
			t.Errorf("last message = %+v, want %+v", last, want)
		}
		if ms, _ := db.Messages(ctx, c.ID, 2); texts(ms) != "a,c" {
			t.Errorf("Messages(limit 2) = %s, want a,c (newest, oldest first)", texts(ms))
		}
		if ms, err := db.Messages(ctx, c.ID, 0); err != nil || ms == nil || len(ms) != 0 {
			t.Errorf("Messages(limit 0) = %v, %v; want empty non-nil", ms, err)
		}
	})
}

// TestTrimKeepsMessageStoredLast pins the cause of a lost acknowledged
// chat message (docs/security.md, "Durability of chat"): the server stamps
// a post, then waits for the channel lock while other posts, stamped
// later, are stored. Trimming by timestamp made the post stored last the
// oldest, so its own trim deleted it although AddMessage succeeded and the
// sender got its echo. A wall clock stepping back does the same to every
// post until it catches up. Trimming must keep what was stored last.
func TestTrimKeepsMessageStoredLast(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		u := mkUser(t, db, "stella", "Stella")
		c := mkChannel(t, db, u, "late", t0)
		const keep = 3
		for i := 1; i <= keep; i++ {
			mkMessage(t, db, c, u, fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second), keep)
		}
		late := mkMessage(t, db, c, u, "late", t0, keep)
		ms, err := db.Messages(ctx, c.ID, 100)
		if err != nil {
			t.Fatal(err)
		}
		if got := texts(ms); got != "2,3,late" {
			t.Fatalf("after a post stamped before the kept ones: %s, want 2,3,late (the oldest stored trimmed, the one just stored kept)", got)
		}
		if ms[len(ms)-1] != late {
			t.Errorf("newest = %+v, want %+v", ms[len(ms)-1], late)
		}

		// The clock steps back a minute: every new post keeps its place.
		back := t0.Add(-time.Minute)
		for i := range 2 * keep {
			mkMessage(t, db, c, u, fmt.Sprint("b", i), back.Add(time.Duration(i)*time.Millisecond), keep)
		}
		if ms, _ := db.Messages(ctx, c.ID, 100); texts(ms) != "b3,b4,b5" {
			t.Errorf("after the clock stepped back: %s, want b3,b4,b5", texts(ms))
		}

		// Tied timestamps: the newest stored are kept, in storing order.
		for i := range 2 * keep {
			mkMessage(t, db, c, u, fmt.Sprint("t", i), t0, keep)
		}
		if ms, _ := db.Messages(ctx, c.ID, 100); texts(ms) != "t3,t4,t5" {
			t.Errorf("with tied timestamps: %s, want t3,t4,t5", texts(ms))
		}
	})
}

func TestAddMessageUnknownRefs(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		u := mkUser(t, db, "ursula", "Ursula")
		c := mkChannel(t, db, u, "refs", t0)
		err := db.AddMessage(ctx, store.Message{ID: newID("m"), ChannelID: "nope", UserID: u.ID, Text: "x", CreatedAt: t0}, 10)
		wantErr(t, "AddMessage(unknown channel)", err, store.ErrNotFound)
		err = db.AddMessage(ctx, store.Message{ID: newID("m"), ChannelID: c.ID, UserID: "nobody", Text: "x", CreatedAt: t0}, 10)
		wantErr(t, "AddMessage(unknown user)", err, store.ErrNotFound)
		m := mkMessage(t, db, c, u, "once", t0, 10)
		err = db.AddMessage(ctx, m, 10)
		wantErr(t, "AddMessage(same id)", err, store.ErrConflict)
	})
}

// TestConcurrentMessages posts from several goroutines at once: no post may
// fail (SQLite must wait for its write lock, not give up) and trimming must
// leave exactly keep messages.
func TestConcurrentMessages(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		u := mkUser(t, db, "cora", "Cora")
		c := mkChannel(t, db, u, "busy", t0)
		const writers, each, keep = 8, 10, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					m := store.Message{ID: newID("m"), ChannelID: c.ID, UserID: u.ID, DisplayName: "Cora",
						Text: fmt.Sprintf("%d-%d", w, i), CreatedAt: t0}
					if err := db.AddMessage(ctx, m, keep); err != nil {
						errs <- err
					}
					// Readers run alongside the writers.
					if _, err := db.Messages(ctx, c.ID, keep); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		ms, err := db.Messages(ctx, c.ID, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != keep {
			t.Errorf("%d messages left, want %d", len(ms), keep)
		}
	})
}

func TestChannelMode(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		owner := mkUser(t, db, "moder", "Mo")
		c := mkChannel(t, db, owner, "Modes", t0)
		if err := db.SetChannelMode(ctx, c.ID, store.ModeSFU); err != nil {
			t.Fatal(err)
		}
		got, err := db.ChannelByID(ctx, c.ID)
		if err != nil || got.Mode != store.ModeSFU {
			t.Fatalf("mode %q, err %v", got.Mode, err)
		}
		if err := db.SetChannelMode(ctx, "nochannel", store.ModeP2P); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown channel: %v", err)
		}
	})
}

func TestTokens(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		ann := mkUser(t, db, "ann", "Ann")
		bo := mkUser(t, db, "bo", "Bo")
		older := store.Token{ID: newID("t"), UserID: ann.ID, Name: "laptop", TokenHash: newID("h"), CreatedAt: t0}
		newer := store.Token{ID: newID("t"), UserID: ann.ID, Name: "bot", TokenHash: newID("h"), CreatedAt: t0.Add(time.Minute)}
		for _, tk := range []store.Token{older, newer} {
			if err := db.CreateToken(ctx, tk); err != nil {
				t.Fatal(err)
			}
		}
		dup := newer
		dup.ID = newID("t")
		wantErr(t, "token with a hash in use", db.CreateToken(ctx, dup), store.ErrConflict)
		ghost := store.Token{ID: newID("t"), UserID: "nobody", Name: "x", TokenHash: newID("h"), CreatedAt: t0}
		wantErr(t, "token of an unknown user", db.CreateToken(ctx, ghost), store.ErrNotFound)

		got, err := db.TokenByHash(ctx, older.TokenHash)
		if err != nil || got != older {
			t.Fatalf("TokenByHash = %+v, %v; want %+v", got, err, older)
		}
		list, err := db.TokensForUser(ctx, ann.ID)
		if err != nil || len(list) != 2 || list[0].ID != newer.ID || list[1].ID != older.ID {
			t.Fatalf("TokensForUser = %+v, %v; want newest first", list, err)
		}
		wantErr(t, "deleting another user's token", db.DeleteToken(ctx, bo.ID, older.ID), store.ErrNotFound)
		if err := db.DeleteToken(ctx, ann.ID, older.ID); err != nil {
			t.Fatal(err)
		}
		_, err = db.TokenByHash(ctx, older.TokenHash)
		wantErr(t, "revoked token", err, store.ErrNotFound)

		// Deleting the user deletes the tokens.
		if err := db.DeleteUser(ctx, ann.ID); err != nil {
			t.Fatal(err)
		}
		_, err = db.TokenByHash(ctx, newer.TokenHash)
		wantErr(t, "token of a deleted user", err, store.ErrNotFound)
	})
}
