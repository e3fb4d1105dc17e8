package store

import (
	"context"
	"log/slog"
)

// OpenUpTo opens a database migrated only up to version upTo, for tests of
// a later migration.
func OpenUpTo(ctx context.Context, dsn, dataDir string, log *slog.Logger, upTo int) (*DB, error) {
	return open(ctx, dsn, dataDir, log, upTo)
}

// Exec runs raw SQL with '?' placeholders, to set up rows an older schema
// had.
func (db *DB) Exec(ctx context.Context, query string, args ...any) error {
	_, err := db.sql.ExecContext(ctx, db.q(query), args...)
	return err
}
