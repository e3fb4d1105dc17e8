package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Channel is a group of members with its own call room and chat.
type Channel struct {
	// ID is the stable, random identifier made by the caller.
	ID string
	// Name is the human-readable channel name.
	Name string
	// OwnerID is the user who created the channel and manages its members.
	OwnerID string
	// CreatedAt is when the channel was created (millisecond precision).
	CreatedAt time.Time
	// Mode is how the call carries media: ModeAuto, ModeSFU or ModeP2P.
	Mode string
}

// Channel modes.
const (
	ModeAuto = "auto"
	ModeSFU  = "sfu"
	ModeP2P  = "p2p"
)

// channelColumns leaves out invite_code: since migration 0004 invite links
// are rows of their own (invites.go) and the column only holds the id.
const channelColumns = "id, name, owner_id, created_at, mode"

func scanChannel(s scanner) (Channel, error) {
	var c Channel
	var created int64
	if err := s.Scan(&c.ID, &c.Name, &c.OwnerID, &created, &c.Mode); err != nil {
		return Channel{}, err
	}
	c.CreatedAt = fromMillis(created)
	return c, nil
}

// CreateChannel stores a channel and makes its owner a member, atomically.
// A duplicate id yields an error wrapping ErrConflict; an unknown owner
// yields one wrapping ErrNotFound. It makes no invite link (CreateInvite).
func (db *DB) CreateChannel(ctx context.Context, c Channel) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if c.Mode == "" {
			c.Mode = ModeAuto
		}
		// invite_code is unused but NOT NULL UNIQUE: the id fills it.
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO channels (`+channelColumns+`, invite_code) VALUES (?, ?, ?, ?, ?, ?)`),
			c.ID, c.Name, c.OwnerID, millis(c.CreatedAt), c.Mode, c.ID); err != nil {
			return mapErr(err)
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES (?, ?, ?)`),
			c.ID, c.OwnerID, millis(c.CreatedAt)); err != nil {
			return mapErr(err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: create channel %q: %w", c.Name, err)
	}
	return nil
}

// ChannelByID returns the channel with the given id, or an error wrapping
// ErrNotFound.
func (db *DB) ChannelByID(ctx context.Context, id string) (Channel, error) {
	c, err := scanChannel(db.sql.QueryRowContext(ctx, db.q(`SELECT `+channelColumns+` FROM channels WHERE id = ?`), id))
	if err != nil {
		return Channel{}, fmt.Errorf("store: channel %q: %w", id, mapErr(err))
	}
	return c, nil
}

// DeleteChannel removes a channel with its members and messages. It returns
// an error wrapping ErrNotFound if there is no such channel.
func (db *DB) DeleteChannel(ctx context.Context, id string) error {
	res, err := db.sql.ExecContext(ctx, db.q(`DELETE FROM channels WHERE id = ?`), id)
	if err != nil {
		return fmt.Errorf("store: delete channel %q: %w", id, mapErr(err))
	}
	return expectRow(res, "store: delete channel %q", id)
}

// ChannelsForUser returns the channels the user is a member of, newest
// first. It returns an empty, non-nil slice when there are none.
func (db *DB) ChannelsForUser(ctx context.Context, userID string) ([]Channel, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT c.id, c.name, c.owner_id, c.created_at, c.mode
		FROM channels c JOIN channel_members m ON m.channel_id = c.id
		WHERE m.user_id = ?
		ORDER BY c.created_at DESC, c.id DESC`), userID)
	if err != nil {
		return nil, fmt.Errorf("store: channels of %q: %w", userID, err)
	}
	defer rows.Close()
	out := []Channel{}
	for rows.Next() {
		c, err := scanChannel(rows)
		if err != nil {
			return nil, fmt.Errorf("store: channels of %q: %w", userID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: channels of %q: %w", userID, err)
	}
	return out, nil
}

// AddMember makes the user a member of the channel: the owner's explicit
// add, so it also lifts a removal recorded by ExpelMember. Adding an
// existing member is not an error. An unknown channel or user yields an
// error wrapping ErrNotFound.
func (db *DB) AddMember(ctx context.Context, channelID, userID string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES (?, ?, ?)
			ON CONFLICT (channel_id, user_id) DO NOTHING`), channelID, userID, millis(time.Now())); err != nil {
			return mapErr(err)
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM channel_removals WHERE channel_id = ? AND user_id = ?`), channelID, userID); err != nil {
			return mapErr(err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: add %q to channel %q: %w", userID, channelID, err)
	}
	return nil
}

// RemoveMember takes the user out of the channel, as when they leave on
// their own; invite links still let them back in (compare ExpelMember). It
// returns an error wrapping ErrNotFound if the user was not a member.
func (db *DB) RemoveMember(ctx context.Context, channelID, userID string) error {
	res, err := db.sql.ExecContext(ctx, db.q(`DELETE FROM channel_members WHERE channel_id = ? AND user_id = ?`), channelID, userID)
	if err != nil {
		return fmt.Errorf("store: remove %q from channel %q: %w", userID, channelID, mapErr(err))
	}
	return expectRow(res, "store: remove %q from channel %q", userID, channelID)
}

// IsMember reports whether the user is a member of the channel.
func (db *DB) IsMember(ctx context.Context, channelID, userID string) (bool, error) {
	var n int
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM channel_members WHERE channel_id = ? AND user_id = ?`),
		channelID, userID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: is %q in channel %q: %w", userID, channelID, err)
	}
	return n > 0, nil
}

// Members returns the channel's members ordered by display name, ignoring
// case, then by username so the order is stable. It returns an empty,
// non-nil slice for an unknown channel.
func (db *DB) Members(ctx context.Context, channelID string) ([]User, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT u.id, u.username, u.display_name, u.email, u.password_hash, u.created_at, u.email_verified_at
		FROM users u JOIN channel_members m ON m.user_id = u.id
		WHERE m.channel_id = ?`), channelID)
	if err != nil {
		return nil, fmt.Errorf("store: members of %q: %w", channelID, err)
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("store: members of %q: %w", channelID, err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: members of %q: %w", channelID, err)
	}
	// Sorted here rather than in SQL: PostgreSQL orders text by the
	// server's locale and SQLite by bytes, and the list should not depend
	// on which database is behind it. Member lists are small.
	slices.SortFunc(out, func(a, b User) int {
		return cmp.Or(
			cmp.Compare(strings.ToLower(a.DisplayName), strings.ToLower(b.DisplayName)),
			cmp.Compare(a.Username, b.Username),
		)
	})
	return out, nil
}

// SetChannelMode changes how a channel's call carries media.
func (db *DB) SetChannelMode(ctx context.Context, id, mode string) error {
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE channels SET mode = ? WHERE id = ?`), mode, id)
	if err != nil {
		return fmt.Errorf("store: set channel mode: %w", mapErr(err))
	}
	return expectRow(res, "store: set channel mode %q", id)
}

// UpdateChannel sets a channel's name and mode if it still is as was (its
// name, mode and owner unchanged since the caller read it): a
// compare-and-set, so two writers cannot both win. A channel that changed
// yields an error wrapping ErrConflict, one that is gone ErrNotFound.
func (db *DB) UpdateChannel(ctx context.Context, was Channel, name, mode string) error {
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE channels SET name = ?, mode = ? WHERE id = ? AND name = ? AND mode = ? AND owner_id = ?`),
		name, mode, was.ID, was.Name, was.Mode, was.OwnerID)
	if err != nil {
		return fmt.Errorf("store: update channel: %w", mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: update channel: %w", err)
	}
	if n == 1 {
		return nil
	}
	if _, err := db.ChannelByID(ctx, was.ID); err != nil {
		return fmt.Errorf("store: update channel: %w", err)
	}
	return fmt.Errorf("store: update channel %q: it changed meanwhile: %w", was.ID, ErrConflict)
}
