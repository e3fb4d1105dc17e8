// Package storetest opens throw-away Parley databases for tests: SQLite in a
// temporary directory, and PostgreSQL in a fresh schema when the environment
// names a server.
//
// Environment:
//
//	PARLEY_TEST_POSTGRES  PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//	PARLEY_REQUIRE_ALL=1  fail, rather than skip, PostgreSQL tests when the URL is unset
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/store"
)

// Environment variables read by this package.
const (
	EnvPostgres   = "PARLEY_TEST_POSTGRES"
	EnvRequireAll = "PARLEY_REQUIRE_ALL"
)

// setupTimeout bounds database setup and teardown so a wedged server fails
// the test instead of hanging it.
const setupTimeout = 30 * time.Second

// Open returns a migrated SQLite database in a temporary directory, closed
// when the test ends. SQLite is always available, so this is the default.
func Open(t testing.TB) *store.DB {
	t.Helper()
	return OpenSQLite(t)
}

// OpenSQLite returns a migrated SQLite database in t.TempDir(), closed when
// the test ends.
func OpenSQLite(t testing.TB) *store.DB {
	t.Helper()
	return OpenSQLiteIn(t, t.TempDir())
}

// OpenSQLiteIn opens (and migrates) the SQLite database in dir, closed when
// the test ends. Opening the same dir twice reaches the same data.
func OpenSQLiteIn(t testing.TB, dir string) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	db, err := store.Open(ctx, "", dir, Logger(t))
	if err != nil {
		t.Fatalf("storetest: open sqlite in %s: %v", dir, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// OpenPostgres returns a migrated PostgreSQL database living in a schema of
// its own, dropped when the test ends, so tests can run in parallel and be
// re-run. Without PARLEY_TEST_POSTGRES the test is skipped (or fails when
// PARLEY_REQUIRE_ALL=1).
func OpenPostgres(t testing.TB) *store.DB {
	t.Helper()
	return OpenPostgresDSN(t, PostgresDSN(t))
}

// OpenPostgresDSN opens (and migrates) the PostgreSQL database at dsn, as
// returned by PostgresDSN, closed when the test ends. Opening the same dsn
// twice reaches the same data.
func OpenPostgresDSN(t testing.TB, dsn string) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	db, err := store.Open(ctx, dsn, "", Logger(t))
	if err != nil {
		t.Fatalf("storetest: open postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresDSN creates an empty schema on the server named by
// PARLEY_TEST_POSTGRES and returns a DSN whose search_path points at it. The
// schema is dropped when the test ends. Without the variable the test is
// skipped (or fails when PARLEY_REQUIRE_ALL=1).
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		msg := "storetest: " + EnvPostgres + " is not set; PostgreSQL tests NOT RUN. " +
			"Set it to e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
		if os.Getenv(EnvRequireAll) == "1" {
			t.Fatal(msg + " (" + EnvRequireAll + "=1 demands every backend)")
		}
		t.Skip(msg)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("storetest: %s must be a postgres:// URL", EnvPostgres)
	}

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("storetest: open postgres: %v", err)
	}
	schema := "t_" + randomHex(8)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("storetest: create schema %s: %v", schema, err)
	}
	// Registered before the caller opens the database, so it runs after the
	// database is closed (cleanups run last-in, first-out).
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("storetest: drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Each runs fn as a subtest against every database: "sqlite" always and
// "postgres" when available (see OpenPostgres). fn may call t.Parallel.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run(store.DialectSQLite, func(t *testing.T) {
		fn(t, OpenSQLite(t))
	})
	t.Run(store.DialectPostgres, func(t *testing.T) {
		fn(t, OpenPostgres(t))
	})
}

// Logger returns a logger that writes to the test log, so messages show up
// next to the test that caused them and only when it fails or with -v.
// Lines logged once the test is finishing are dropped: testing panics on a
// Log after the test has completed, and background goroutines may still be
// winding down.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testWriter adapts testing.TB to io.Writer for slog.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if w.t.Context().Err() != nil {
		return len(p), nil
	}
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error (Go 1.24+).
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
