package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// User is a registered account.
type User struct {
	// ID is the stable, random identifier made by the caller.
	ID string
	// Username is the login name, always lower-case once stored.
	Username string
	// DisplayName is the name shown to other people.
	DisplayName string
	// Email is the contact address given at sign-up.
	Email string
	// PasswordHash is the encoded password hash; the store never sees passwords.
	PasswordHash string
	// CreatedAt is when the account was created (millisecond precision).
	CreatedAt time.Time
	// EmailVerifiedAt is when Email was proven to be the user's by a link
	// sent to it; zero while it is not.
	EmailVerifiedAt time.Time
}

const userColumns = "id, username, display_name, email, password_hash, created_at, email_verified_at"

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

func scanUser(s scanner) (User, error) {
	var u User
	var created, verified int64
	if err := s.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Email, &u.PasswordHash, &created, &verified); err != nil {
		return User{}, err
	}
	u.CreatedAt = fromMillis(created)
	if verified != 0 {
		u.EmailVerifiedAt = fromMillis(verified)
	}
	return u, nil
}

// CreateUser stores a new user. The username is stored lower-case, so names
// differing only in case collide: that returns an error wrapping ErrConflict.
func (db *DB) CreateUser(ctx context.Context, u User) error {
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		u.ID, strings.ToLower(u.Username), u.DisplayName, u.Email, u.PasswordHash, millis(u.CreatedAt), optMillis(u.EmailVerifiedAt))
	if err != nil {
		return fmt.Errorf("store: create user %q: %w", u.Username, mapErr(err))
	}
	return nil
}

// UserByID returns the user with the given id, or an error wrapping
// ErrNotFound.
func (db *DB) UserByID(ctx context.Context, id string) (User, error) {
	u, err := scanUser(db.sql.QueryRowContext(ctx, db.q(`SELECT `+userColumns+` FROM users WHERE id = ?`), id))
	if err != nil {
		return User{}, fmt.Errorf("store: user %q: %w", id, mapErr(err))
	}
	return u, nil
}

// UserByUsername returns the user with the given username, ignoring case, or
// an error wrapping ErrNotFound.
func (db *DB) UserByUsername(ctx context.Context, username string) (User, error) {
	u, err := scanUser(db.sql.QueryRowContext(ctx, db.q(`SELECT `+userColumns+` FROM users WHERE username = ?`),
		strings.ToLower(username)))
	if err != nil {
		return User{}, fmt.Errorf("store: user %q: %w", username, mapErr(err))
	}
	return u, nil
}

// UpdatePasswordHash replaces a user's password hash, for example to upgrade
// the hashing parameters after a successful login. It returns an error
// wrapping ErrNotFound if there is no such user.
func (db *DB) UpdatePasswordHash(ctx context.Context, userID, hash string) error {
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE users SET password_hash = ? WHERE id = ?`), hash, userID)
	if err != nil {
		return fmt.Errorf("store: update password of %q: %w", userID, mapErr(err))
	}
	return expectRow(res, "store: update password of %q", userID)
}

// DeleteUser removes a user together with their sessions, memberships,
// messages and the channels they own. It returns an error wrapping
// ErrNotFound if there is no such user.
func (db *DB) DeleteUser(ctx context.Context, id string) error {
	res, err := db.sql.ExecContext(ctx, db.q(`DELETE FROM users WHERE id = ?`), id)
	if err != nil {
		return fmt.Errorf("store: delete user %q: %w", id, mapErr(err))
	}
	return expectRow(res, "store: delete user %q", id)
}
