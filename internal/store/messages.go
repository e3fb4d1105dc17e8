package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// Message is one chat message in a channel.
type Message struct {
	// ID is the stable, random identifier made by the caller.
	ID string
	// ChannelID is the channel the message was posted to.
	ChannelID string
	// UserID is the author.
	UserID string
	// DisplayName is the author's display name when the message was posted.
	DisplayName string
	// Username is the author's username, read from their account (it is
	// not stored with the message; usernames do not change).
	Username string
	// Text is the message body.
	Text string
	// CreatedAt is when the message was posted (millisecond precision). It
	// is for display only: ordering and trimming go by the order messages
	// were stored, because a post can be stamped, wait for the database
	// behind later-stamped ones, and be stored after them.
	CreatedAt time.Time
}

// AddMessage stores a message and then deletes all but the newest keep
// messages of its channel, in one transaction; newest means stored last, so
// the message just added is always kept. keep <= 0 keeps everything.
// An unknown channel or author yields an error wrapping ErrNotFound.
func (db *DB) AddMessage(ctx context.Context, m Message, keep int) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		// Taking the next sequence number from the channel row also locks
		// that row until commit, so concurrent posts to one channel run one
		// after the other and each trim sees the previous insert.
		var seq int64
		err := tx.QueryRowContext(ctx, db.q(`UPDATE channels SET message_seq = message_seq + 1 WHERE id = ? RETURNING message_seq`),
			m.ChannelID).Scan(&seq)
		if err != nil {
			return fmt.Errorf("next sequence: %w", mapErr(err))
		}
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO messages (id, channel_id, seq, user_id, display_name, body, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`),
			m.ID, m.ChannelID, seq, m.UserID, m.DisplayName, m.Text, millis(m.CreatedAt))
		if err != nil {
			return fmt.Errorf("insert: %w", mapErr(err))
		}
		if keep <= 0 {
			return nil
		}
		// "Newest" is the order of storing (seq), never created_at: the
		// timestamp is taken before the post waits for the channel lock (and
		// the wall clock can step back), so a post stored last could carry
		// an older timestamp than 100 others and would delete itself here
		// after being acknowledged. The subquery finds the seq of the first
		// message too old to keep (NULL, deleting nothing, when there is none).
		_, err = tx.ExecContext(ctx, db.q(`DELETE FROM messages WHERE channel_id = ? AND seq <= (
			SELECT seq FROM messages WHERE channel_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)`),
			m.ChannelID, m.ChannelID, keep)
		if err != nil {
			return fmt.Errorf("trim: %w", mapErr(err))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: add message to channel %q: %w", m.ChannelID, err)
	}
	return nil
}

// Messages returns the newest limit messages of the channel, oldest first,
// in the order they were stored (the order they were broadcast in), which
// is the order AddMessage trims by. Timestamps need not be monotonic along
// it: see Message.CreatedAt. It returns an empty, non-nil slice when there
// are none or limit <= 0.
func (db *DB) Messages(ctx context.Context, channelID string, limit int) ([]Message, error) {
	out := []Message{}
	if limit <= 0 {
		return out, nil
	}
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT m.id, m.channel_id, m.user_id, m.display_name, u.username, m.body, m.created_at
		FROM messages m JOIN users u ON u.id = m.user_id WHERE m.channel_id = ?
		ORDER BY m.seq DESC LIMIT ?`), channelID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: messages of %q: %w", channelID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var m Message
		var created int64
		if err := rows.Scan(&m.ID, &m.ChannelID, &m.UserID, &m.DisplayName, &m.Username, &m.Text, &created); err != nil {
			return nil, fmt.Errorf("store: messages of %q: %w", channelID, err)
		}
		m.CreatedAt = fromMillis(created)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: messages of %q: %w", channelID, err)
	}
	// Fetched newest first so LIMIT keeps the newest; callers want reading order.
	slices.Reverse(out)
	return out, nil
}
