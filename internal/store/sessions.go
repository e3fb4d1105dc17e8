package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Session is a login session. Only a hash of the session token is stored, so
// reading the database does not let anyone act as a user.
type Session struct {
	// TokenHash identifies the session (the caller's hash of the token).
	TokenHash string
	// UserID is the user the session belongs to.
	UserID string
	// CreatedAt is when the session started (millisecond precision).
	CreatedAt time.Time
	// ExpiresAt is when the session stops being valid (millisecond precision).
	ExpiresAt time.Time
}

// CreateSession stores a session. A hash already in use yields an error
// wrapping ErrConflict; an unknown user yields one wrapping ErrNotFound.
func (db *DB) CreateSession(ctx context.Context, s Session) error {
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`),
		s.TokenHash, s.UserID, millis(s.CreatedAt), millis(s.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store: create session: %w", mapErr(err))
	}
	return nil
}

// SessionByHash returns the session with the given token hash, expired or
// not (the caller decides what expiry means), or an error wrapping
// ErrNotFound.
func (db *DB) SessionByHash(ctx context.Context, hash string) (Session, error) {
	var s Session
	var created, expires int64
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT token_hash, user_id, created_at, expires_at FROM sessions WHERE token_hash = ?`), hash).
		Scan(&s.TokenHash, &s.UserID, &created, &expires)
	if err != nil {
		// The hash is a credential of sorts; keep it out of error text.
		return Session{}, fmt.Errorf("store: session: %w", mapErr(err))
	}
	s.CreatedAt = fromMillis(created)
	s.ExpiresAt = fromMillis(expires)
	return s, nil
}

// DeleteSession removes a session. Deleting a session that does not exist
// is not an error, so logging out twice is harmless.
func (db *DB) DeleteSession(ctx context.Context, hash string) error {
	if _, err := db.sql.ExecContext(ctx, db.q(`DELETE FROM sessions WHERE token_hash = ?`), hash); err != nil {
		return fmt.Errorf("store: delete session: %w", mapErr(err))
	}
	return nil
}

// DeleteExpiredSessions removes sessions whose expiry is at or before now and
// reports how many it removed.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.sql.ExecContext(ctx, db.q(`DELETE FROM sessions WHERE expires_at <= ?`), millis(now))
	if err != nil {
		return 0, fmt.Errorf("store: delete expired sessions: %w", mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete expired sessions: %w", err)
	}
	return n, nil
}

// expectRow turns "no row affected" into an error wrapping ErrNotFound,
// described by format and args.
func expectRow(res sql.Result, format string, args ...any) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf(format+": %w", append(args, err)...)
	}
	if n == 0 {
		return fmt.Errorf(format+": %w", append(args, ErrNotFound)...)
	}
	return nil
}
