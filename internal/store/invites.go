package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// Invite is one invite link of a channel: /invite/{Code} lets a logged-in
// user join until it expires, is used up or is revoked. A channel may have
// several.
type Invite struct {
	// ID is the stable, random identifier made by the caller.
	ID string
	// ChannelID is the channel the link leads to.
	ChannelID string
	// Code is the secret in the link; unique across channels.
	Code string
	// CreatedBy is the id of the user who made the link.
	CreatedBy string
	// CreatorName is CreatedBy's display name, filled in when reading.
	CreatorName string
	// CreatedAt is when the link was made (millisecond precision).
	CreatedAt time.Time
	// ExpiresAt is when the link stops working; zero means never.
	ExpiresAt time.Time
	// MaxUses is how many joins the link allows; 0 means any number.
	MaxUses int
	// Uses counts the users who joined through the link.
	Uses int
	// RevokedAt is when the owner revoked the link; zero while it is live.
	RevokedAt time.Time
}

const inviteColumns = `i.id, i.channel_id, i.code, i.created_by, u.display_name, i.created_at, i.expires_at, i.max_uses, i.uses, i.revoked_at`

// inviteFrom joins the creator for their display name.
const inviteFrom = ` FROM invites i JOIN users u ON u.id = i.created_by `

func scanInvite(s scanner) (Invite, error) {
	var inv Invite
	var created, expires, revoked int64
	if err := s.Scan(&inv.ID, &inv.ChannelID, &inv.Code, &inv.CreatedBy, &inv.CreatorName,
		&created, &expires, &inv.MaxUses, &inv.Uses, &revoked); err != nil {
		return Invite{}, err
	}
	inv.CreatedAt = fromMillis(created)
	inv.ExpiresAt = fromOptMillis(expires)
	inv.RevokedAt = fromOptMillis(revoked)
	return inv, nil
}

// optMillis stores the zero time as 0 ("never" / "not yet").
func optMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return millis(t)
}

func fromOptMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return fromMillis(ms)
}

// lockChannel takes the channel row's write lock until the transaction
// ends (SQLite transactions are already exclusive). Joins through an
// invite and removals take it first, so a removal can never interleave with
// a join of the same user: the join either sees the removal or happens
// wholly before it. It returns ErrNotFound for an unknown channel.
func (db *DB) lockChannel(ctx context.Context, tx *sql.Tx, channelID string) error {
	res, err := tx.ExecContext(ctx, db.q(`UPDATE channels SET message_seq = message_seq WHERE id = ?`), channelID)
	if err != nil {
		return fmt.Errorf("lock channel: %w", mapErr(err))
	}
	return expectRow(res, "channel %q", channelID)
}

// CreateInvite stores a new invite link. A duplicate id or code yields an
// error wrapping ErrConflict; an unknown channel or creator one wrapping
// ErrNotFound.
func (db *DB) CreateInvite(ctx context.Context, inv Invite) error {
	if err := db.insertInvite(ctx, db.sql, inv); err != nil {
		return fmt.Errorf("store: create invite for channel %q: %w", inv.ChannelID, err)
	}
	return nil
}

// execer is what both *sql.DB and *sql.Tx offer.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (db *DB) insertInvite(ctx context.Context, ex execer, inv Invite) error {
	_, err := ex.ExecContext(ctx, db.q(`INSERT INTO invites (id, channel_id, code, created_by, created_at, expires_at, max_uses, uses, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0)`),
		inv.ID, inv.ChannelID, inv.Code, inv.CreatedBy, millis(inv.CreatedAt), optMillis(inv.ExpiresAt), inv.MaxUses)
	return mapErr(err)
}

// Invites returns the channel's invite links that were not revoked (expired
// and used-up ones included, so the owner sees why a link stopped working),
// newest first. It returns an empty, non-nil slice when there are none.
func (db *DB) Invites(ctx context.Context, channelID string) ([]Invite, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT `+inviteColumns+inviteFrom+`
		WHERE i.channel_id = ? AND i.revoked_at = 0
		ORDER BY i.created_at DESC, i.id DESC`), channelID)
	if err != nil {
		return nil, fmt.Errorf("store: invites of %q: %w", channelID, err)
	}
	defer rows.Close()
	out := []Invite{}
	for rows.Next() {
		inv, err := scanInvite(rows)
		if err != nil {
			return nil, fmt.Errorf("store: invites of %q: %w", channelID, err)
		}
		out = append(out, inv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: invites of %q: %w", channelID, err)
	}
	return out, nil
}

// InviteByCode returns the invite link with the given code, revoked or not,
// or an error wrapping ErrNotFound.
func (db *DB) InviteByCode(ctx context.Context, code string) (Invite, error) {
	inv, err := scanInvite(db.sql.QueryRowContext(ctx, db.q(`SELECT `+inviteColumns+inviteFrom+`WHERE i.code = ?`), code))
	if err != nil {
		// The code is a secret; keep it out of error text.
		return Invite{}, fmt.Errorf("store: invite by code: %w", mapErr(err))
	}
	return inv, nil
}

// RevokeInvite revokes one live invite link of the channel. It returns an
// error wrapping ErrNotFound if the channel has no such live link.
func (db *DB) RevokeInvite(ctx context.Context, channelID, inviteID string, at time.Time) error {
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE invites SET revoked_at = ? WHERE id = ? AND channel_id = ? AND revoked_at = 0`),
		millis(at), inviteID, channelID)
	if err != nil {
		return fmt.Errorf("store: revoke invite %q: %w", inviteID, mapErr(err))
	}
	return expectRow(res, "store: revoke invite %q", inviteID)
}

// ResetInvites revokes every live invite link of the channel and stores
// fresh as its only live one, atomically, and returns how many it revoked.
// An unknown channel yields an error wrapping ErrNotFound.
func (db *DB) ResetInvites(ctx context.Context, channelID string, fresh Invite) (int, error) {
	var n int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.lockChannel(ctx, tx, channelID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, db.q(`UPDATE invites SET revoked_at = ? WHERE channel_id = ? AND revoked_at = 0`),
			millis(fresh.CreatedAt), channelID)
		if err != nil {
			return mapErr(err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		fresh.ChannelID = channelID
		return db.insertInvite(ctx, tx, fresh)
	})
	if err != nil {
		return 0, fmt.Errorf("store: reset invites of %q: %w", channelID, err)
	}
	return int(n), nil
}

// RedeemCheck decides, inside RedeemInvite's transaction, whether user may
// join through inv. removed says the owner removed them from the channel
// (ExpelMember) and has not added them back; member says they are a member
// already. A non-nil error refuses the join and is returned as is.
type RedeemCheck func(inv Invite, removed, member bool) error

// RedeemInvite joins the user to the channel of the invite link with the
// given code if check allows it, counting one use of the link, and returns
// the link (Uses as before this join) and whether the user was newly added.
// A member already in the channel is not added again and uses nothing.
//
// The check and the join run in one transaction that holds the channel's
// lock, so a concurrent ExpelMember either happens first (check sees
// removed) or after (and removes the user again), and two joins cannot
// both take the last use of a limited link. An unknown code yields an error
// wrapping ErrNotFound.
//
// events go to the webhook outbox in the same transaction, if the user
// joins; those for another channel than the link's are dropped.
func (db *DB) RedeemInvite(ctx context.Context, code, userID string, check RedeemCheck, events ...OutboxEvent) (Invite, bool, error) {
	var (
		inv    Invite
		joined bool
	)
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		get := func() error {
			var err error
			inv, err = scanInvite(tx.QueryRowContext(ctx, db.q(`SELECT `+inviteColumns+inviteFrom+`WHERE i.code = ?`), code))
			return mapErr(err)
		}
		if err := get(); err != nil {
			return fmt.Errorf("invite by code: %w", err)
		}
		if err := db.lockChannel(ctx, tx, inv.ChannelID); err != nil {
			return err
		}
		// Read again under the lock: uses or revocation may have changed
		// while this transaction waited for it.
		if err := get(); err != nil {
			return fmt.Errorf("invite by code: %w", err)
		}
		var removed, member int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM channel_removals WHERE channel_id = ? AND user_id = ?`),
			inv.ChannelID, userID).Scan(&removed); err != nil {
			return fmt.Errorf("removal: %w", err)
		}
		if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM channel_members WHERE channel_id = ? AND user_id = ?`),
			inv.ChannelID, userID).Scan(&member); err != nil {
			return fmt.Errorf("membership: %w", err)
		}
		if err := check(inv, removed > 0, member > 0); err != nil {
			return err
		}
		if member > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE invites SET uses = uses + 1 WHERE id = ?`), inv.ID); err != nil {
			return fmt.Errorf("count use: %w", mapErr(err))
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES (?, ?, ?)`),
			inv.ChannelID, userID, millis(time.Now())); err != nil {
			return fmt.Errorf("add member: %w", mapErr(err))
		}
		joined = true
		mine := slices.DeleteFunc(slices.Clone(events), func(ev OutboxEvent) bool { return ev.ChannelID != inv.ChannelID })
		return db.enqueue(ctx, tx, mine)
	})
	if err != nil {
		return Invite{}, false, fmt.Errorf("store: redeem invite: %w", err)
	}
	return inv, joined, nil
}

// ExpelMember takes the user out of the channel and records that the owner
// removed them, so no invite link lets them back in until AddMember. It
// returns an error wrapping ErrNotFound if the user was not a member.
// events go to the webhook outbox in the same transaction.
func (db *DB) ExpelMember(ctx context.Context, channelID, userID string, at time.Time, events ...OutboxEvent) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.lockChannel(ctx, tx, channelID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM channel_members WHERE channel_id = ? AND user_id = ?`), channelID, userID)
		if err != nil {
			return mapErr(err)
		}
		if err := expectRow(res, "member %q", userID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO channel_removals (channel_id, user_id, removed_at) VALUES (?, ?, ?)
			ON CONFLICT (channel_id, user_id) DO UPDATE SET removed_at = excluded.removed_at`), channelID, userID, millis(at))
		if err != nil {
			return mapErr(err)
		}
		return db.enqueue(ctx, tx, events)
	})
	if err != nil {
		return fmt.Errorf("store: remove %q from channel %q: %w", userID, channelID, err)
	}
	return nil
}

// IsRemoved reports whether the owner removed the user from the channel
// (ExpelMember) and has not added them back.
func (db *DB) IsRemoved(ctx context.Context, channelID, userID string) (bool, error) {
	var n int
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM channel_removals WHERE channel_id = ? AND user_id = ?`),
		channelID, userID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: was %q removed from channel %q: %w", userID, channelID, err)
	}
	return n > 0, nil
}
