package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// JoinKey is a key join tokens are signed with (join_token_keys).
type JoinKey struct {
	KID    string
	Secret string // base64url HMAC key
	// CreatedAt, RetiredAt (zero: the current signing key), RevokedAt
	// (zero: not revoked) and LastExpiry (the latest exp of a token it
	// signed; zero: none yet).
	CreatedAt, RetiredAt, RevokedAt, LastExpiry time.Time
}

// ExternalIdentity is the one Parley identity of an app's user: issuer
// (the channel owner whose credential minted the token) and the app's id.
type ExternalIdentity struct {
	ID          string
	UserID      string // the users row made for it
	IssuerID    string
	ExternalID  string
	DisplayName string
	CreatedAt   time.Time
}

// JoinToken is one minted join token (its jti) and what it allows.
type JoinToken struct {
	JTI          string
	ChannelID    string
	IdentityID   string
	IssuerID     string
	MintedBy     string
	Grants       string // comma-separated
	TTLSeconds   int
	EmbedOrigins string // space-separated
	CreatedAt    time.Time
	ExpiresAt    time.Time
	RevokedAt    time.Time // zero: live
}

const joinKeyColumns = `kid, secret, created_at, retired_at, revoked_at, last_expiry`

func scanJoinKey(s scanner) (JoinKey, error) {
	var k JoinKey
	var created, retired, revoked, last int64
	if err := s.Scan(&k.KID, &k.Secret, &created, &retired, &revoked, &last); err != nil {
		return JoinKey{}, err
	}
	k.CreatedAt, k.RetiredAt, k.RevokedAt, k.LastExpiry = fromMillis(created), fromOptMillis(retired), fromOptMillis(revoked), fromOptMillis(last)
	return k, nil
}

// JoinKeys lists the keys that may still verify a token at now (not
// revoked, and current or with a token unexpired), newest first. Keys
// past their use are deleted on the way.
func (db *DB) JoinKeys(ctx context.Context, now time.Time) ([]JoinKey, error) {
	if _, err := db.sql.ExecContext(ctx, db.q(`DELETE FROM join_token_keys WHERE retired_at > 0 AND (revoked_at > 0 OR last_expiry < ?)`), millis(now)); err != nil {
		return nil, fmt.Errorf("store: prune join keys: %w", mapErr(err))
	}
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT `+joinKeyColumns+` FROM join_token_keys WHERE revoked_at = 0 ORDER BY created_at DESC, kid`))
	if err != nil {
		return nil, fmt.Errorf("store: join keys: %w", mapErr(err))
	}
	defer rows.Close()
	out := []JoinKey{}
	for rows.Next() {
		k, err := scanJoinKey(rows)
		if err != nil {
			return nil, fmt.Errorf("store: join keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: join keys: %w", err)
	}
	return out, nil
}

// RotateJoinKey makes k the current signing key and retires the one
// before it, which keeps verifying what it signed until that expires. A
// kid already in use yields an error wrapping ErrConflict.
func (db *DB) RotateJoinKey(ctx context.Context, k JoinKey) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE join_token_keys SET retired_at = ? WHERE retired_at = 0`), millis(k.CreatedAt)); err != nil {
			return fmt.Errorf("store: retire join key: %w", mapErr(err))
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO join_token_keys (kid, secret, created_at) VALUES (?, ?, ?)`), k.KID, k.Secret, millis(k.CreatedAt)); err != nil {
			return fmt.Errorf("store: add join key: %w", mapErr(err))
		}
		return nil
	})
}

// RevokeJoinKey makes kid verify nothing from now on (retiring it if it
// was the current key); an unknown kid yields ErrNotFound.
func (db *DB) RevokeJoinKey(ctx context.Context, kid string, at time.Time) error {
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE join_token_keys SET revoked_at = ?, retired_at = CASE WHEN retired_at = 0 THEN ? ELSE retired_at END WHERE kid = ? AND revoked_at = 0`), millis(at), millis(at), kid)
	if err != nil {
		return fmt.Errorf("store: revoke join key: %w", mapErr(err))
	}
	return expectRow(res, "store: join key %s", kid)
}

// NoteJoinKeyUse records that kid signed a token expiring at exp.
func (db *DB) NoteJoinKeyUse(ctx context.Context, kid string, exp time.Time) error {
	_, err := db.sql.ExecContext(ctx, db.q(`UPDATE join_token_keys SET last_expiry = CASE WHEN last_expiry < ? THEN ? ELSE last_expiry END WHERE kid = ?`), millis(exp), millis(exp), kid)
	if err != nil {
		return fmt.Errorf("store: note join key use: %w", mapErr(err))
	}
	return nil
}

// ExternalIdentity returns the identity of issuerID's externalID, making
// it the first time (with id, and newUser as its users row); a later call
// updates the display name (identity and user). The same pair always
// yields the same identity and user.
func (db *DB) ExternalIdentity(ctx context.Context, issuerID, externalID, id string, newUser User) (ExternalIdentity, error) {
	var e ExternalIdentity
	for attempt := 0; ; attempt++ {
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			var created int64
			err := tx.QueryRowContext(ctx, db.q(`SELECT id, user_id, issuer_id, external_id, display_name, created_at FROM external_identities WHERE issuer_id = ? AND external_id = ?`), issuerID, externalID).
				Scan(&e.ID, &e.UserID, &e.IssuerID, &e.ExternalID, &e.DisplayName, &created)
			switch {
			case err == nil:
				e.CreatedAt = fromMillis(created)
				if e.DisplayName == newUser.DisplayName {
					return nil
				}
				e.DisplayName = newUser.DisplayName
				if _, err := tx.ExecContext(ctx, db.q(`UPDATE external_identities SET display_name = ? WHERE id = ?`), e.DisplayName, e.ID); err != nil {
					return fmt.Errorf("store: rename external identity: %w", mapErr(err))
				}
				if _, err := tx.ExecContext(ctx, db.q(`UPDATE users SET display_name = ? WHERE id = ?`), e.DisplayName, e.UserID); err != nil {
					return fmt.Errorf("store: rename external identity: %w", mapErr(err))
				}
				return nil
			case !errors.Is(mapErr(err), ErrNotFound):
				return fmt.Errorf("store: external identity: %w", mapErr(err))
			}
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`),
				newUser.ID, strings.ToLower(newUser.Username), newUser.DisplayName, newUser.Email, newUser.PasswordHash, millis(newUser.CreatedAt), 0); err != nil {
				return fmt.Errorf("store: external identity's user: %w", mapErr(err))
			}
			e = ExternalIdentity{ID: id, UserID: newUser.ID, IssuerID: issuerID, ExternalID: externalID, DisplayName: newUser.DisplayName, CreatedAt: fromMillis(millis(newUser.CreatedAt))}
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO external_identities (id, user_id, issuer_id, external_id, display_name, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
				e.ID, e.UserID, issuerID, externalID, e.DisplayName, millis(newUser.CreatedAt)); err != nil {
				return fmt.Errorf("store: external identity: %w", mapErr(err))
			}
			return nil
		})
		// Two first mints of the same pair at once: the loser finds the
		// winner's identity on its second try.
		if errors.Is(err, ErrConflict) && attempt == 0 {
			continue
		}
		return e, err
	}
}

// deleteExternalUsers deletes the users made for issuerID's external
// identities (with their identities, messages and memberships): they
// exist only through that issuer.
func (db *DB) deleteExternalUsers(ctx context.Context, tx *sql.Tx, issuerID string) error {
	if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM users WHERE id IN (SELECT user_id FROM external_identities WHERE issuer_id = ?)`), issuerID); err != nil {
		return fmt.Errorf("delete external identities' users: %w", mapErr(err))
	}
	return nil
}

// CreateJoinToken stores a minted token, first deleting tokens of the
// same issuer that expired a day or more before t.CreatedAt. An unknown
// channel, identity or issuer yields an error wrapping ErrNotFound.
func (db *DB) CreateJoinToken(ctx context.Context, t JoinToken) error {
	if _, err := db.sql.ExecContext(ctx, db.q(`DELETE FROM join_tokens WHERE issuer_id = ? AND expires_at < ?`), t.IssuerID, millis(t.CreatedAt.Add(-24*time.Hour))); err != nil {
		return fmt.Errorf("store: prune join tokens: %w", mapErr(err))
	}
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO join_tokens (jti, channel_id, identity_id, issuer_id, minted_by, grants, ttl_seconds, embed_origins, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		t.JTI, t.ChannelID, t.IdentityID, t.IssuerID, t.MintedBy, t.Grants, t.TTLSeconds, t.EmbedOrigins, millis(t.CreatedAt), millis(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store: create join token: %w", mapErr(err))
	}
	return nil
}

// LiveJoinTokens counts issuerID's tokens not revoked and not expired at now.
func (db *DB) LiveJoinTokens(ctx context.Context, issuerID string, now time.Time) (int, error) {
	var n int
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM join_tokens WHERE issuer_id = ? AND revoked_at = 0 AND expires_at > ?`), issuerID, millis(now)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count join tokens: %w", mapErr(err))
	}
	return n, nil
}

// JoinTokenWithIdentity returns the token jti and its identity, or an
// error wrapping ErrNotFound.
func (db *DB) JoinTokenWithIdentity(ctx context.Context, jti string) (JoinToken, ExternalIdentity, error) {
	var t JoinToken
	var e ExternalIdentity
	var created, expires, revoked, ecreated int64
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT t.jti, t.channel_id, t.identity_id, t.issuer_id, t.minted_by, t.grants, t.ttl_seconds, t.embed_origins, t.created_at, t.expires_at, t.revoked_at,
		e.id, e.user_id, e.issuer_id, e.external_id, e.display_name, e.created_at
		FROM join_tokens t JOIN external_identities e ON e.id = t.identity_id WHERE t.jti = ?`), jti).
		Scan(&t.JTI, &t.ChannelID, &t.IdentityID, &t.IssuerID, &t.MintedBy, &t.Grants, &t.TTLSeconds, &t.EmbedOrigins, &created, &expires, &revoked,
			&e.ID, &e.UserID, &e.IssuerID, &e.ExternalID, &e.DisplayName, &ecreated)
	if err != nil {
		return JoinToken{}, ExternalIdentity{}, fmt.Errorf("store: join token: %w", mapErr(err))
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = fromMillis(created), fromMillis(expires), fromOptMillis(revoked)
	e.CreatedAt = fromMillis(ecreated)
	return t, e, nil
}

// ExtendJoinToken records that jti was refreshed up to exp (never moving
// it back). A revoked or unknown jti yields ErrNotFound.
func (db *DB) ExtendJoinToken(ctx context.Context, jti string, exp time.Time) error {
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE join_tokens SET expires_at = CASE WHEN expires_at < ? THEN ? ELSE expires_at END WHERE jti = ? AND revoked_at = 0`), millis(exp), millis(exp), jti)
	if err != nil {
		return fmt.Errorf("store: extend join token: %w", mapErr(err))
	}
	return expectRow(res, "store: join token %s", jti)
}

// RevokeJoinToken revokes jti, which issuerID must have minted; an
// unknown jti, or another issuer's, yields ErrNotFound. Revoking twice is
// not an error.
func (db *DB) RevokeJoinToken(ctx context.Context, issuerID, jti string, at time.Time) error {
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE join_tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE jti = ? AND issuer_id = ?`), millis(at), jti, issuerID)
	if err != nil {
		return fmt.Errorf("store: revoke join token: %w", mapErr(err))
	}
	return expectRow(res, "store: join token %s", jti)
}

// RevokeJoinTokensMintedBy revokes every live token minted with the
// credential mintedBy (an access token or API key that was revoked) and
// returns their jtis.
func (db *DB) RevokeJoinTokensMintedBy(ctx context.Context, mintedBy string, at time.Time) ([]string, error) {
	var jtis []string
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, db.q(`SELECT jti FROM join_tokens WHERE minted_by = ? AND revoked_at = 0 AND expires_at > ?`), mintedBy, millis(at))
		if err != nil {
			return fmt.Errorf("store: join tokens minted by: %w", mapErr(err))
		}
		for rows.Next() {
			var j string
			if err := rows.Scan(&j); err != nil {
				rows.Close()
				return fmt.Errorf("store: join tokens minted by: %w", err)
			}
			jtis = append(jtis, j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: join tokens minted by: %w", err)
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE join_tokens SET revoked_at = ? WHERE minted_by = ? AND revoked_at = 0`), millis(at), mintedBy); err != nil {
			return fmt.Errorf("store: revoke join tokens: %w", mapErr(err))
		}
		return nil
	})
	return jtis, err
}
