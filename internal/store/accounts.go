package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// UsersByEmail returns the users whose email is email, ignoring case, at
// most limit of them, oldest first. Addresses are not unique (one person
// may hold several accounts), so a password reset asked for by email
// reaches each account.
func (db *DB) UsersByEmail(ctx context.Context, email string, limit int) ([]User, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT `+userColumns+` FROM users WHERE LOWER(email) = ? ORDER BY created_at, id LIMIT ?`),
		strings.ToLower(email), limit)
	if err != nil {
		return nil, fmt.Errorf("store: users by email: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("store: users by email: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: users by email: %w", err)
	}
	return out, nil
}

// UpdateDisplayName changes the name a user is shown by. It returns an
// error wrapping ErrNotFound if there is no such user.
func (db *DB) UpdateDisplayName(ctx context.Context, userID, name string) error {
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE users SET display_name = ? WHERE id = ?`), name, userID)
	if err != nil {
		return fmt.Errorf("store: update display name of %q: %w", userID, mapErr(err))
	}
	return expectRow(res, "store: update display name of %q", userID)
}

// SetEmail replaces a user's email address at once, verified at verifiedAt
// (zero: not verified), and drops the user's pending verification links:
// they were for an address the user no longer wants.
func (db *DB) SetEmail(ctx context.Context, userID, email string, verifiedAt time.Time) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE users SET email = ?, email_verified_at = ? WHERE id = ?`), email, optMillis(verifiedAt), userID)
		if err != nil {
			return mapErr(err)
		}
		if err := expectRow(res, "user %q", userID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`DELETE FROM email_verifications WHERE user_id = ?`), userID)
		return mapErr(err)
	})
	if err != nil {
		return fmt.Errorf("store: set email: %w", err)
	}
	return nil
}

// PasswordReset is a password reset link. Only the hash of its secret is
// stored.
type PasswordReset struct {
	TokenHash string
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreatePasswordReset stores a reset link. An unknown user yields an error
// wrapping ErrNotFound.
func (db *DB) CreatePasswordReset(ctx context.Context, r PasswordReset) error {
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`),
		r.TokenHash, r.UserID, millis(r.CreatedAt), millis(r.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store: create password reset: %w", mapErr(err))
	}
	return nil
}

// PasswordResetByHash returns the reset link with the given hash, expired
// or not, or an error wrapping ErrNotFound (never made, or already used).
func (db *DB) PasswordResetByHash(ctx context.Context, hash string) (PasswordReset, error) {
	var r PasswordReset
	var created, expires int64
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT token_hash, user_id, created_at, expires_at FROM password_resets WHERE token_hash = ?`), hash).
		Scan(&r.TokenHash, &r.UserID, &created, &expires)
	if err != nil {
		return PasswordReset{}, fmt.Errorf("store: password reset: %w", mapErr(err))
	}
	r.CreatedAt, r.ExpiresAt = fromMillis(created), fromMillis(expires)
	return r, nil
}

// ResetPassword uses the reset link tokenHash of userID, if it has not
// expired at now, to set the password hash; in the same transaction it
// deletes every session, access token and other reset link of the user, so
// whoever held the old password is out. A link that is unknown, already
// used, expired or someone else's yields an error wrapping ErrNotFound and
// changes nothing. Two requests racing with one link: one wins.
func (db *DB) ResetPassword(ctx context.Context, tokenHash, userID string, now time.Time, passwordHash string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM password_resets WHERE token_hash = ? AND user_id = ? AND expires_at > ?`),
			tokenHash, userID, millis(now))
		if err != nil {
			return mapErr(err)
		}
		if err := expectRow(res, "reset link"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE users SET password_hash = ? WHERE id = ?`), passwordHash, userID); err != nil {
			return mapErr(err)
		}
		for _, table := range []string{"sessions", "api_tokens", "api_keys", "password_resets"} {
			if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM `+table+` WHERE user_id = ?`), userID); err != nil {
				return mapErr(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: reset password: %w", err)
	}
	return nil
}

// ChangePassword sets a user's password hash and, in the same
// transaction, deletes their sessions other than keepSession (the hash of
// the one making the change; "" keeps none) and their reset links. It
// returns the hashes of the sessions it deleted, so their connections can
// be ended. An unknown user yields an error wrapping ErrNotFound.
func (db *DB) ChangePassword(ctx context.Context, userID, passwordHash, keepSession string) ([]string, error) {
	var ended []string
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE users SET password_hash = ? WHERE id = ?`), passwordHash, userID)
		if err != nil {
			return mapErr(err)
		}
		if err := expectRow(res, "user %q", userID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, db.q(`DELETE FROM sessions WHERE user_id = ? AND token_hash <> ? RETURNING token_hash`), userID, keepSession)
		if err != nil {
			return mapErr(err)
		}
		defer rows.Close()
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				return err
			}
			ended = append(ended, h)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		_, err = tx.ExecContext(ctx, db.q(`DELETE FROM password_resets WHERE user_id = ?`), userID)
		return mapErr(err)
	})
	if err != nil {
		return nil, fmt.Errorf("store: change password: %w", err)
	}
	return ended, nil
}

// EmailVerification is a link that proves Email belongs to the user. Only
// the hash of its secret is stored.
type EmailVerification struct {
	TokenHash string
	UserID    string
	Email     string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateEmailVerification stores a verification link. An unknown user
// yields an error wrapping ErrNotFound.
func (db *DB) CreateEmailVerification(ctx context.Context, v EmailVerification) error {
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO email_verifications (token_hash, user_id, email, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`),
		v.TokenHash, v.UserID, v.Email, millis(v.CreatedAt), millis(v.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store: create email verification: %w", mapErr(err))
	}
	return nil
}

const verificationColumns = "token_hash, user_id, email, created_at, expires_at"

func scanVerification(s scanner) (EmailVerification, error) {
	var v EmailVerification
	var created, expires int64
	if err := s.Scan(&v.TokenHash, &v.UserID, &v.Email, &created, &expires); err != nil {
		return EmailVerification{}, err
	}
	v.CreatedAt, v.ExpiresAt = fromMillis(created), fromMillis(expires)
	return v, nil
}

// EmailVerificationByHash returns the verification link with the given
// hash, expired or not, or an error wrapping ErrNotFound.
func (db *DB) EmailVerificationByHash(ctx context.Context, hash string) (EmailVerification, error) {
	v, err := scanVerification(db.sql.QueryRowContext(ctx, db.q(`SELECT `+verificationColumns+` FROM email_verifications WHERE token_hash = ?`), hash))
	if err != nil {
		return EmailVerification{}, fmt.Errorf("store: email verification: %w", mapErr(err))
	}
	return v, nil
}

// PendingEmail returns the user's newest verification link still valid at
// now, or an error wrapping ErrNotFound when none is.
func (db *DB) PendingEmail(ctx context.Context, userID string, now time.Time) (EmailVerification, error) {
	v, err := scanVerification(db.sql.QueryRowContext(ctx, db.q(`SELECT `+verificationColumns+` FROM email_verifications
		WHERE user_id = ? AND expires_at > ? ORDER BY created_at DESC, token_hash LIMIT 1`), userID, millis(now)))
	if err != nil {
		return EmailVerification{}, fmt.Errorf("store: pending email: %w", mapErr(err))
	}
	return v, nil
}

// VerifyEmail uses the verification link tokenHash, if it has not expired
// at now: the user's email becomes the link's address, verified at now,
// and the user's other verification links are deleted. It returns the
// link. An unknown, used or expired link yields an error wrapping
// ErrNotFound and changes nothing.
func (db *DB) VerifyEmail(ctx context.Context, tokenHash string, now time.Time) (EmailVerification, error) {
	var v EmailVerification
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		v, err = scanVerification(tx.QueryRowContext(ctx, db.q(`DELETE FROM email_verifications WHERE token_hash = ? AND expires_at > ?
			RETURNING `+verificationColumns), tokenHash, millis(now)))
		if err != nil {
			return mapErr(err)
		}
		// UserID cascades, so the row of a link is gone with its user.
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE users SET email = ?, email_verified_at = ? WHERE id = ?`), v.Email, millis(now), v.UserID); err != nil {
			return mapErr(err)
		}
		_, err = tx.ExecContext(ctx, db.q(`DELETE FROM email_verifications WHERE user_id = ?`), v.UserID)
		return mapErr(err)
	})
	if err != nil {
		return EmailVerification{}, fmt.Errorf("store: verify email: %w", err)
	}
	return v, nil
}

// DeleteExpiredLinks removes reset and verification links whose expiry is
// at or before now and reports how many it removed.
func (db *DB) DeleteExpiredLinks(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, table := range []string{"password_resets", "email_verifications"} {
		res, err := db.sql.ExecContext(ctx, db.q(`DELETE FROM `+table+` WHERE expires_at <= ?`), millis(now))
		if err != nil {
			return total, fmt.Errorf("store: delete expired %s: %w", table, mapErr(err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("store: delete expired %s: %w", table, err)
		}
		total += n
	}
	return total, nil
}

// Handover is a channel that changed owner because its owner's account
// was deleted.
type Handover struct {
	ChannelID  string
	NewOwnerID string
}

// AccountDeletion is what DeleteAccount did to the user's channels.
type AccountDeletion struct {
	// HandedOver are the channels now owned by their longest-standing
	// other member.
	HandedOver []Handover
	// DeletedChannels are the channels that had no other member left.
	DeletedChannels []string
}

// DeleteAccount deletes a user in one transaction. Each channel the user
// owns goes to its longest-standing other member (earliest joined, then
// lowest id), or is deleted when there is none; then the user goes with
// their sessions, tokens, memberships and messages (DeleteUser). An
// unknown user yields an error wrapping ErrNotFound.
func (db *DB) DeleteAccount(ctx context.Context, userID string) (AccountDeletion, error) {
	var out AccountDeletion
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		out = AccountDeletion{}
		// The identities the user's apps made (join tokens) go first, so
		// none of them inherits a channel.
		if err := db.deleteExternalUsers(ctx, tx, userID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, db.q(`SELECT id FROM channels WHERE owner_id = ? ORDER BY created_at, id`), userID)
		if err != nil {
			return mapErr(err)
		}
		var owned []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			owned = append(owned, id)
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return err
		}
		rows.Close()
		for _, ch := range owned {
			var heir string
			err := tx.QueryRowContext(ctx, db.q(`SELECT user_id FROM channel_members WHERE channel_id = ? AND user_id <> ?
				ORDER BY joined_at, user_id LIMIT 1`), ch, userID).Scan(&heir)
			switch {
			case err == sql.ErrNoRows:
				if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM channels WHERE id = ?`), ch); err != nil {
					return mapErr(err)
				}
				out.DeletedChannels = append(out.DeletedChannels, ch)
			case err != nil:
				return mapErr(err)
			default:
				if _, err := tx.ExecContext(ctx, db.q(`UPDATE channels SET owner_id = ? WHERE id = ?`), heir, ch); err != nil {
					return mapErr(err)
				}
				out.HandedOver = append(out.HandedOver, Handover{ChannelID: ch, NewOwnerID: heir})
			}
		}
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM users WHERE id = ?`), userID)
		if err != nil {
			return mapErr(err)
		}
		return expectRow(res, "user %q", userID)
	})
	if err != nil {
		return AccountDeletion{}, fmt.Errorf("store: delete account: %w", err)
	}
	return out, nil
}

// ChannelHeir returns who would own channelID if exceptUserID left it:
// its longest-standing other member (as DeleteAccount picks), or an error
// wrapping ErrNotFound when there is none.
func (db *DB) ChannelHeir(ctx context.Context, channelID, exceptUserID string) (User, error) {
	u, err := scanUser(db.sql.QueryRowContext(ctx, db.q(`SELECT u.id, u.username, u.display_name, u.email, u.password_hash, u.created_at, u.email_verified_at
		FROM channel_members m JOIN users u ON u.id = m.user_id
		WHERE m.channel_id = ? AND m.user_id <> ? ORDER BY m.joined_at, m.user_id LIMIT 1`), channelID, exceptUserID))
	if err != nil {
		return User{}, fmt.Errorf("store: heir of %q: %w", channelID, mapErr(err))
	}
	return u, nil
}
