package store

import (
	"context"
	"fmt"
	"time"
)

// Token is a personal access token. Only a hash of the secret is stored.
type Token struct {
	ID        string
	UserID    string
	Name      string // what the user called it, e.g. "laptop CLI"
	TokenHash string
	CreatedAt time.Time
}

// CreateToken stores a token. An unknown user yields an error wrapping
// ErrNotFound; a hash already in use one wrapping ErrConflict.
func (db *DB) CreateToken(ctx context.Context, t Token) error {
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES (?, ?, ?, ?, ?)`),
		t.ID, t.UserID, t.Name, t.TokenHash, millis(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: create token: %w", mapErr(err))
	}
	return nil
}

// TokenByHash returns the token with the given hash, or an error wrapping
// ErrNotFound.
func (db *DB) TokenByHash(ctx context.Context, hash string) (Token, error) {
	var t Token
	var created int64
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT id, user_id, name, token_hash, created_at FROM api_tokens WHERE token_hash = ?`), hash).
		Scan(&t.ID, &t.UserID, &t.Name, &t.TokenHash, &created)
	if err != nil {
		return Token{}, fmt.Errorf("store: token: %w", mapErr(err))
	}
	t.CreatedAt = fromMillis(created)
	return t, nil
}

// TokensForUser lists a user's tokens, newest first.
func (db *DB) TokensForUser(ctx context.Context, userID string) ([]Token, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT id, user_id, name, token_hash, created_at FROM api_tokens WHERE user_id = ? ORDER BY created_at DESC, id`), userID)
	if err != nil {
		return nil, fmt.Errorf("store: tokens: %w", mapErr(err))
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var created int64
		if err := rows.Scan(&t.ID, &t.UserID, &t.Name, &t.TokenHash, &created); err != nil {
			return nil, fmt.Errorf("store: tokens: %w", err)
		}
		t.CreatedAt = fromMillis(created)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: tokens: %w", err)
	}
	return out, nil
}

// DeleteToken removes one of a user's tokens; a token that is not theirs,
// or does not exist, yields an error wrapping ErrNotFound.
func (db *DB) DeleteToken(ctx context.Context, userID, id string) error {
	res, err := db.sql.ExecContext(ctx, db.q(`DELETE FROM api_tokens WHERE id = ? AND user_id = ?`), id, userID)
	if err != nil {
		return fmt.Errorf("store: delete token: %w", mapErr(err))
	}
	return expectRow(res, "store: delete token %s", id)
}
