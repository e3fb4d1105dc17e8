// Package store keeps Parley's durable state (users, sessions, channels,
// members and chat history) in SQLite or PostgreSQL through database/sql.
//
// Queries are written once with "?" placeholders and rebound to "$n" for
// PostgreSQL; the schema is created by embedded, versioned migrations whose
// SQL is shared by both dialects.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is returned (wrapped) when the requested row does not exist, or
// when a write refers to a user or channel that does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned (wrapped) when a write would break a uniqueness
// rule, such as a username that is already taken.
var ErrConflict = errors.New("already exists")

// Dialect names returned by DB.Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// SQLiteFile is the database file name Open uses inside the data directory.
const SQLiteFile = "parley.db"

// sqliteParams are appended to the SQLite file name. WAL lets readers run
// while one connection writes; busy_timeout makes a writer wait for the lock
// instead of failing at once; _txlock=immediate takes the write lock when a
// transaction begins, so a transaction never has to upgrade a read lock (an
// upgrade can fail with SQLITE_BUSY without waiting).
const sqliteParams = "_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"

// sqliteMaxConns bounds the SQLite pool. SQLite runs one writer at a time
// whatever the pool size, so a few connections are enough for concurrent
// readers; more would only queue on the write lock.
const sqliteMaxConns = 4

// DB is a handle on the Parley database. It is safe for concurrent use.
type DB struct {
	sql     *sql.DB
	dialect string
	log     *slog.Logger
}

// Open opens the database and applies any pending migrations.
//
// An empty dsn selects SQLite in dataDir/parley.db (dataDir is created with
// mode 0700 if missing). A dsn starting with postgres:// or postgresql://
// selects PostgreSQL through pgx. Any other dsn is an error. A nil log
// discards log output.
func Open(ctx context.Context, dsn, dataDir string, log *slog.Logger) (*DB, error) {
	return open(ctx, dsn, dataDir, log, 0)
}

// open is Open applying migrations up to version upTo only (0: all), so a
// test can fill an older schema and watch a migration convert it.
func open(ctx context.Context, dsn, dataDir string, log *slog.Logger, upTo int) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		sqlDB   *sql.DB
		dialect string
		err     error
	)
	switch {
	case dsn == "":
		dialect = DialectSQLite
		sqlDB, err = openSQLite(dataDir)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		dialect = DialectPostgres
		sqlDB, err = openPostgres(dsn)
	default:
		// Do not echo the DSN: it may hold a password.
		return nil, errors.New("store: unsupported database DSN: use an empty DSN for SQLite or a postgres:// URL")
	}
	if err != nil {
		return nil, err
	}
	db := &DB{sql: sqlDB, dialect: dialect, log: log.With("component", "store", "dialect", dialect)}
	if err := db.connect(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", dialect, err)
	}
	if err := db.migrate(ctx, upTo); err != nil {
		sqlDB.Close()
		return nil, err
	}
	return db, nil
}

func openSQLite(dataDir string) (*sql.DB, error) {
	if dataDir == "" {
		return nil, errors.New("store: a data directory is needed for SQLite")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data directory: %w", err)
	}
	path := filepath.Join(dataDir, SQLiteFile)
	// The driver splits the DSN at the first '?', so such a path would be
	// misread rather than opened.
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store: data directory %q must not contain '?' or '#'", dataDir)
	}
	sqlDB, err := sql.Open("sqlite", "file:"+path+"?"+sqliteParams)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	sqlDB.SetMaxOpenConns(sqliteMaxConns)
	sqlDB.SetMaxIdleConns(sqliteMaxConns)
	// Connections carry the pragmas set at open; keeping them avoids
	// re-running those on every burst of traffic.
	sqlDB.SetConnMaxIdleTime(0)
	return sqlDB, nil
}

func openPostgres(dsn string) (*sql.DB, error) {
	sqlDB, err := sql.Open("pgx", dsn)
	if err != nil {
		// pgx error messages can quote the DSN; keep them out of the text.
		return nil, errors.New("store: open postgres: invalid DSN")
	}
	sqlDB.SetMaxOpenConns(20)
	sqlDB.SetMaxIdleConns(5)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	return sqlDB, nil
}

// Close closes the database. Calls in flight may fail afterwards.
func (db *DB) Close() error {
	return db.sql.Close()
}

// Dialect reports which database is in use: "sqlite" or "postgres".
func (db *DB) Dialect() string {
	return db.dialect
}

// connect pings until the database answers. Two servers (or tests)
// opening one new SQLite file at once both switch it to WAL, and the
// loser is answered SQLITE_BUSY at once, without the busy handler: wait
// and try again for as long as busy_timeout would have waited.
func (db *DB) connect(ctx context.Context) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := db.Ping(ctx)
		var liteErr *sqlite.Error
		if err == nil || !errors.As(err, &liteErr) || liteErr.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Ping checks that the database answers; it suits a health check.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.sql.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// q adapts a query written with '?' placeholders to the dialect in use.
func (db *DB) q(query string) string {
	if db.dialect == DialectPostgres {
		return rebind(query)
	}
	return query
}

// rebind turns '?' placeholders into PostgreSQL's $1..$n. Question marks
// inside single-quoted literals, double-quoted identifiers and comments are
// left alone.
func rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			// Copy through the closing quote; a doubled quote is an escape
			// and simply closes and reopens the literal, which this handles.
			j := strings.IndexByte(query[i+1:], c)
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+2])
			i += j + 1
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+1])
			i += j
		case c == '?':
			n++
			fmt.Fprintf(&b, "$%d", n)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// mapErr turns driver-specific constraint errors into ErrConflict or
// ErrNotFound (a foreign key that points nowhere), keeping the driver error
// in the chain for logs.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", ErrConflict, err)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return err
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
	}
	return err
}

// inTx runs fn in a transaction, committing if fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		// The rollback error adds nothing: fn's error says what went wrong,
		// and a failed rollback leaves nothing committed anyway.
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	return nil
}

// millis converts a time to the BIGINT unix milliseconds stored in the database.
func millis(t time.Time) int64 {
	return t.UnixMilli()
}

// fromMillis converts stored unix milliseconds back to a UTC time.
func fromMillis(ms int64) time.Time {
	return time.UnixMilli(ms).UTC()
}
