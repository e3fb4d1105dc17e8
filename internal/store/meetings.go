package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SetModerator makes a member of the channel a moderator of its call, or
// not. It returns an error wrapping ErrNotFound if the user is not a
// member.
func (db *DB) SetModerator(ctx context.Context, channelID, userID string, on bool) error {
	v := 0
	if on {
		v = 1
	}
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE channel_members SET moderator = ? WHERE channel_id = ? AND user_id = ?`), v, channelID, userID)
	if err != nil {
		return fmt.Errorf("store: set moderator %q of %q: %w", userID, channelID, mapErr(err))
	}
	return expectRow(res, "store: set moderator %q of %q", userID, channelID)
}

// IsModerator reports whether the user is a member of the channel whom
// the owner made a moderator.
func (db *DB) IsModerator(ctx context.Context, channelID, userID string) (bool, error) {
	var n int
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM channel_members WHERE channel_id = ? AND user_id = ? AND moderator = 1`),
		channelID, userID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: is %q a moderator of %q: %w", userID, channelID, err)
	}
	return n > 0, nil
}

// Moderators returns the ids of the channel's moderators, as a set.
func (db *DB) Moderators(ctx context.Context, channelID string) (map[string]bool, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT user_id FROM channel_members WHERE channel_id = ? AND moderator = 1`), channelID)
	if err != nil {
		return nil, fmt.Errorf("store: moderators of %q: %w", channelID, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("store: moderators of %q: %w", channelID, err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: moderators of %q: %w", channelID, err)
	}
	return out, nil
}

// MeetingCode returns the channel's meeting code, or an error wrapping
// ErrNotFound if it has none yet.
func (db *DB) MeetingCode(ctx context.Context, channelID string) (string, error) {
	var code string
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT code FROM meeting_codes WHERE channel_id = ?`), channelID).Scan(&code)
	if err != nil {
		return "", fmt.Errorf("store: meeting code of %q: %w", channelID, mapErr(err))
	}
	return code, nil
}

// SetMeetingCode gives the channel code as its meeting code, replacing
// any it had. A code another channel holds yields an error wrapping
// ErrConflict (the caller picks another); an unknown channel, one
// wrapping ErrNotFound.
func (db *DB) SetMeetingCode(ctx context.Context, channelID, code string, at time.Time) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM meeting_codes WHERE channel_id = ?`), channelID); err != nil {
			return mapErr(err)
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO meeting_codes (channel_id, code, created_at) VALUES (?, ?, ?)`), channelID, code, millis(at))
		return mapErr(err)
	})
	if err != nil {
		return fmt.Errorf("store: set meeting code of %q: %w", channelID, err)
	}
	return nil
}

// ChannelByMeetingCode returns the channel whose meeting code is code, or
// an error wrapping ErrNotFound.
func (db *DB) ChannelByMeetingCode(ctx context.Context, code string) (Channel, error) {
	c, err := scanChannel(db.sql.QueryRowContext(ctx, db.q(`SELECT c.id, c.name, c.owner_id, c.created_at, c.mode
		FROM channels c JOIN meeting_codes m ON m.channel_id = c.id WHERE m.code = ?`), code))
	if err != nil {
		return Channel{}, fmt.Errorf("store: channel with meeting code: %w", mapErr(err))
	}
	return c, nil
}

// QuickCall is a 1:1 call reached by a 6-digit code.
type QuickCall struct {
	ID        string
	Code      string
	CreatedBy string
	CreatedAt time.Time
	// EmptySince is when the call was last left empty; zero while
	// someone is in it.
	EmptySince time.Time
}

// CreateQuickCall stores a quick call. A code in use yields an error
// wrapping ErrConflict.
func (db *DB) CreateQuickCall(ctx context.Context, q QuickCall) error {
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO quick_calls (id, code, created_by, created_at, empty_since) VALUES (?, ?, ?, ?, ?)`),
		q.ID, q.Code, q.CreatedBy, millis(q.CreatedAt), millis(q.EmptySince))
	if err != nil {
		return fmt.Errorf("store: create quick call: %w", mapErr(err))
	}
	return nil
}

// QuickCallByCode returns the quick call with code, or an error wrapping
// ErrNotFound.
func (db *DB) QuickCallByCode(ctx context.Context, code string) (QuickCall, error) {
	var q QuickCall
	var created, empty int64
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT id, code, created_by, created_at, empty_since FROM quick_calls WHERE code = ?`), code).
		Scan(&q.ID, &q.Code, &q.CreatedBy, &created, &empty)
	if err != nil {
		return QuickCall{}, fmt.Errorf("store: quick call: %w", mapErr(err))
	}
	q.CreatedAt = fromMillis(created)
	if empty != 0 {
		q.EmptySince = fromMillis(empty)
	}
	return q, nil
}

// SetQuickCallEmpty records that the quick call id was left empty at at
// (zero: someone is in it again). An unknown id yields an error wrapping
// ErrNotFound.
func (db *DB) SetQuickCallEmpty(ctx context.Context, id string, at time.Time) error {
	var v int64
	if !at.IsZero() {
		v = millis(at)
	}
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE quick_calls SET empty_since = ? WHERE id = ?`), v, id)
	if err != nil {
		return fmt.Errorf("store: quick call %q empty: %w", id, mapErr(err))
	}
	return expectRow(res, "store: quick call %q empty", id)
}

// DeleteEmptyQuickCalls deletes the quick calls left empty before
// before, and returns their ids.
func (db *DB) DeleteEmptyQuickCalls(ctx context.Context, before time.Time) ([]string, error) {
	var ids []string
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, db.q(`SELECT id FROM quick_calls WHERE empty_since <> 0 AND empty_since < ?`), millis(before))
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM quick_calls WHERE id = ?`), id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: delete empty quick calls: %w", mapErr(err))
	}
	return ids, nil
}

// GuestLink is a channel's guest link, while it is on.
type GuestLink struct {
	ChannelID string
	Code      string
	// Lobby: guests wait until a member admits them.
	Lobby     bool
	CreatedAt time.Time
}

// SetGuestLink turns the channel's guest link on (or replaces it). A code
// in use yields an error wrapping ErrConflict; an unknown channel, one
// wrapping ErrNotFound.
func (db *DB) SetGuestLink(ctx context.Context, g GuestLink) error {
	lobby := 0
	if g.Lobby {
		lobby = 1
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM guest_links WHERE channel_id = ?`), g.ChannelID); err != nil {
			return mapErr(err)
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO guest_links (channel_id, code, lobby, created_at) VALUES (?, ?, ?, ?)`),
			g.ChannelID, g.Code, lobby, millis(g.CreatedAt))
		return mapErr(err)
	})
	if err != nil {
		return fmt.Errorf("store: set guest link of %q: %w", g.ChannelID, err)
	}
	return nil
}

func scanGuestLink(s scanner) (GuestLink, error) {
	var g GuestLink
	var lobby int
	var created int64
	if err := s.Scan(&g.ChannelID, &g.Code, &lobby, &created); err != nil {
		return GuestLink{}, mapErr(err)
	}
	g.Lobby = lobby != 0
	g.CreatedAt = fromMillis(created)
	return g, nil
}

// GuestLink returns the channel's guest link, or an error wrapping
// ErrNotFound while it is off.
func (db *DB) GuestLink(ctx context.Context, channelID string) (GuestLink, error) {
	g, err := scanGuestLink(db.sql.QueryRowContext(ctx, db.q(`SELECT channel_id, code, lobby, created_at FROM guest_links WHERE channel_id = ?`), channelID))
	if err != nil {
		return GuestLink{}, fmt.Errorf("store: guest link of %q: %w", channelID, err)
	}
	return g, nil
}

// GuestLinkByCode returns the guest link with code, or an error wrapping
// ErrNotFound.
func (db *DB) GuestLinkByCode(ctx context.Context, code string) (GuestLink, error) {
	g, err := scanGuestLink(db.sql.QueryRowContext(ctx, db.q(`SELECT channel_id, code, lobby, created_at FROM guest_links WHERE code = ?`), code))
	if err != nil {
		return GuestLink{}, fmt.Errorf("store: guest link: %w", err)
	}
	return g, nil
}

// DeleteGuestLink turns the channel's guest link off. It returns an error
// wrapping ErrNotFound if it was off.
func (db *DB) DeleteGuestLink(ctx context.Context, channelID string) error {
	res, err := db.sql.ExecContext(ctx, db.q(`DELETE FROM guest_links WHERE channel_id = ?`), channelID)
	if err != nil {
		return fmt.Errorf("store: delete guest link of %q: %w", channelID, mapErr(err))
	}
	return expectRow(res, "store: delete guest link of %q", channelID)
}
