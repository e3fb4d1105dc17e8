package store

import (
	"context"
	"fmt"
	"time"
)

// APIKey is an account's key for server-to-server use of the API. Only a
// hash of its secret is stored.
type APIKey struct {
	ID         string // public: the first part of the key
	UserID     string
	Name       string
	SecretHash string
	CreatedAt  time.Time
}

// CreateAPIKey stores a key. An unknown user yields an error wrapping
// ErrNotFound; an id already in use one wrapping ErrConflict.
func (db *DB) CreateAPIKey(ctx context.Context, k APIKey) error {
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO api_keys (id, user_id, name, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)`),
		k.ID, k.UserID, k.Name, k.SecretHash, millis(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: create api key: %w", mapErr(err))
	}
	return nil
}

// APIKeyByID returns a key, or an error wrapping ErrNotFound.
func (db *DB) APIKeyByID(ctx context.Context, id string) (APIKey, error) {
	var k APIKey
	var created int64
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT id, user_id, name, secret_hash, created_at FROM api_keys WHERE id = ?`), id).
		Scan(&k.ID, &k.UserID, &k.Name, &k.SecretHash, &created)
	if err != nil {
		return APIKey{}, fmt.Errorf("store: api key: %w", mapErr(err))
	}
	k.CreatedAt = fromMillis(created)
	return k, nil
}

// APIKeysForUser lists a user's keys, newest first.
func (db *DB) APIKeysForUser(ctx context.Context, userID string) ([]APIKey, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT id, user_id, name, secret_hash, created_at FROM api_keys WHERE user_id = ? ORDER BY created_at DESC, id`), userID)
	if err != nil {
		return nil, fmt.Errorf("store: api keys: %w", mapErr(err))
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		var k APIKey
		var created int64
		if err := rows.Scan(&k.ID, &k.UserID, &k.Name, &k.SecretHash, &created); err != nil {
			return nil, fmt.Errorf("store: api keys: %w", err)
		}
		k.CreatedAt = fromMillis(created)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: api keys: %w", err)
	}
	return out, nil
}

// DeleteAPIKey removes one of a user's keys; a key that is not theirs,
// or does not exist, yields an error wrapping ErrNotFound.
func (db *DB) DeleteAPIKey(ctx context.Context, userID, id string) error {
	res, err := db.sql.ExecContext(ctx, db.q(`DELETE FROM api_keys WHERE id = ? AND user_id = ?`), id, userID)
	if err != nil {
		return fmt.Errorf("store: delete api key: %w", mapErr(err))
	}
	return expectRow(res, "store: delete api key %s", id)
}
