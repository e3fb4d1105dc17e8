package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// MembersMayRecord reports whether channelID's owner allows members to
// start and stop recording its call.
func (db *DB) MembersMayRecord(ctx context.Context, channelID string) (bool, error) {
	var v int
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT members_may_record FROM channel_recording WHERE channel_id = ?`), channelID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: recording policy: %w", mapErr(err))
	}
	return v != 0, nil
}

// SetMembersMayRecord sets channelID's recording policy.
func (db *DB) SetMembersMayRecord(ctx context.Context, channelID string, allow bool) error {
	v := 0
	if allow {
		v = 1
	}
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO channel_recording (channel_id, members_may_record) VALUES (?, ?)
		ON CONFLICT (channel_id) DO UPDATE SET members_may_record = excluded.members_may_record`), channelID, v)
	if err != nil {
		return fmt.Errorf("store: set recording policy: %w", mapErr(err))
	}
	return nil
}
