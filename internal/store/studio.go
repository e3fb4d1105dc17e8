package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Take states.
const (
	// TakeRecording: chunks are arriving (or may still arrive).
	TakeRecording = "recording"
	// TakeDone: the recorder finished the take.
	TakeDone = "done"
	// TakeInterrupted: the recorder vanished mid-take; what arrived is kept.
	TakeInterrupted = "interrupted"
)

// Song is one song of a channel's studio.
type Song struct {
	ID        string
	ChannelID string
	Name      string
	CreatedBy string
	// CreatorName is CreatedBy's display name, filled in when reading.
	CreatorName string
	CreatedAt   time.Time
}

// Track is one track (instrument, voice) of a song.
type Track struct {
	ID     string
	SongID string
	Name   string
	// Position orders the tracks of a song, smallest first.
	Position int
	// ChosenTake is the id of the take the player plays, or "".
	ChosenTake string
	CreatedAt  time.Time
}

// Take is one recording on a track. Its audio is a file the studio
// package keeps; Bytes says how much of that file was acknowledged.
type Take struct {
	ID        string
	TrackID   string
	SongID    string // filled in when reading
	ChannelID string
	UserID    string
	// UserName is UserID's display name, filled in when reading.
	UserName   string
	CreatedAt  time.Time
	OffsetMS   int64
	LatencyMS  int64
	DurationMS int64
	// MIME is audio/webm or audio/ogg once the first chunk arrived.
	MIME   string
	State  string
	Chunks int64
	Bytes  int64
}

// CreateSong stores a new song; an unknown channel or creator yields an
// error wrapping ErrNotFound.
func (db *DB) CreateSong(ctx context.Context, s Song) error {
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO studio_songs (id, channel_id, name, created_by, created_at) VALUES (?, ?, ?, ?, ?)`),
		s.ID, s.ChannelID, s.Name, s.CreatedBy, millis(s.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: create song: %w", mapErr(err))
	}
	return nil
}

// Songs returns the channel's songs, oldest first.
func (db *DB) Songs(ctx context.Context, channelID string) ([]Song, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT s.id, s.channel_id, s.name, COALESCE(s.created_by, ''), COALESCE(u.display_name, '`+DeletedAccountName+`'), s.created_at
		FROM studio_songs s LEFT JOIN users u ON u.id = s.created_by WHERE s.channel_id = ? ORDER BY s.created_at, s.id`), channelID)
	if err != nil {
		return nil, fmt.Errorf("store: songs of %q: %w", channelID, err)
	}
	defer rows.Close()
	out := []Song{}
	for rows.Next() {
		var s Song
		var at int64
		if err := rows.Scan(&s.ID, &s.ChannelID, &s.Name, &s.CreatedBy, &s.CreatorName, &at); err != nil {
			return nil, fmt.Errorf("store: songs of %q: %w", channelID, err)
		}
		s.CreatedAt = fromMillis(at)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: songs of %q: %w", channelID, err)
	}
	return out, nil
}

// RenameSong renames a song of the channel (ErrNotFound if there is none).
func (db *DB) RenameSong(ctx context.Context, channelID, songID, name string) error {
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE studio_songs SET name = ? WHERE id = ? AND channel_id = ?`), name, songID, channelID)
	if err != nil {
		return fmt.Errorf("store: rename song %q: %w", songID, mapErr(err))
	}
	return expectRow(res, "store: rename song %q", songID)
}

// DeleteSong deletes a song of the channel with its tracks and takes rows
// (ErrNotFound if there is none). The caller removes the take files.
func (db *DB) DeleteSong(ctx context.Context, channelID, songID string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM studio_takes WHERE channel_id = ? AND track_id IN (SELECT id FROM studio_tracks WHERE song_id = ?)`), channelID, songID); err != nil {
			return fmt.Errorf("store: delete song %q: %w", songID, mapErr(err))
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM studio_tracks WHERE song_id IN (SELECT id FROM studio_songs WHERE id = ? AND channel_id = ?)`), songID, channelID); err != nil {
			return fmt.Errorf("store: delete song %q: %w", songID, mapErr(err))
		}
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM studio_songs WHERE id = ? AND channel_id = ?`), songID, channelID)
		if err != nil {
			return fmt.Errorf("store: delete song %q: %w", songID, mapErr(err))
		}
		return expectRow(res, "store: delete song %q", songID)
	})
}

// CreateTrack adds a track at the end of a song of the channel; it returns
// the track with its Position. An unknown song (or one of another channel)
// yields an error wrapping ErrNotFound.
func (db *DB) CreateTrack(ctx context.Context, channelID string, t Track) (Track, error) {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM studio_songs WHERE id = ? AND channel_id = ?`), t.SongID, channelID).Scan(&n); err != nil {
			return mapErr(err)
		}
		if n == 0 {
			return fmt.Errorf("song %q: %w", t.SongID, ErrNotFound)
		}
		if err := tx.QueryRowContext(ctx, db.q(`SELECT COALESCE(MAX(position), -1) + 1 FROM studio_tracks WHERE song_id = ?`), t.SongID).Scan(&t.Position); err != nil {
			return mapErr(err)
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO studio_tracks (id, song_id, name, position, chosen_take, created_at) VALUES (?, ?, ?, ?, '', ?)`),
			t.ID, t.SongID, t.Name, t.Position, millis(t.CreatedAt))
		return mapErr(err)
	})
	if err != nil {
		return Track{}, fmt.Errorf("store: create track: %w", err)
	}
	return t, nil
}

const trackColumns = `t.id, t.song_id, t.name, t.position, t.chosen_take, t.created_at`

func scanTrack(s scanner) (Track, error) {
	var t Track
	var at int64
	if err := s.Scan(&t.ID, &t.SongID, &t.Name, &t.Position, &t.ChosenTake, &at); err != nil {
		return Track{}, err
	}
	t.CreatedAt = fromMillis(at)
	return t, nil
}

// Tracks returns every track of the channel's songs, by song then position.
func (db *DB) Tracks(ctx context.Context, channelID string) ([]Track, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT `+trackColumns+` FROM studio_tracks t JOIN studio_songs s ON s.id = t.song_id
		WHERE s.channel_id = ? ORDER BY t.song_id, t.position, t.id`), channelID)
	if err != nil {
		return nil, fmt.Errorf("store: tracks of %q: %w", channelID, err)
	}
	defer rows.Close()
	out := []Track{}
	for rows.Next() {
		t, err := scanTrack(rows)
		if err != nil {
			return nil, fmt.Errorf("store: tracks of %q: %w", channelID, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: tracks of %q: %w", channelID, err)
	}
	return out, nil
}

// TrackOf returns a track of the channel, or an error wrapping ErrNotFound.
func (db *DB) TrackOf(ctx context.Context, channelID, trackID string) (Track, error) {
	t, err := scanTrack(db.sql.QueryRowContext(ctx, db.q(`SELECT `+trackColumns+` FROM studio_tracks t JOIN studio_songs s ON s.id = t.song_id
		WHERE t.id = ? AND s.channel_id = ?`), trackID, channelID))
	if err != nil {
		return Track{}, fmt.Errorf("store: track %q: %w", trackID, mapErr(err))
	}
	return t, nil
}

// UpdateTrack renames (name != nil) and/or moves (position != nil) a track
// of the channel.
func (db *DB) UpdateTrack(ctx context.Context, channelID, trackID string, name *string, position *int) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if name != nil {
			res, err := tx.ExecContext(ctx, db.q(`UPDATE studio_tracks SET name = ? WHERE id = ? AND song_id IN (SELECT id FROM studio_songs WHERE channel_id = ?)`), *name, trackID, channelID)
			if err != nil {
				return fmt.Errorf("store: update track %q: %w", trackID, mapErr(err))
			}
			if err := expectRow(res, "store: update track %q", trackID); err != nil {
				return err
			}
		}
		if position != nil {
			res, err := tx.ExecContext(ctx, db.q(`UPDATE studio_tracks SET position = ? WHERE id = ? AND song_id IN (SELECT id FROM studio_songs WHERE channel_id = ?)`), *position, trackID, channelID)
			if err != nil {
				return fmt.Errorf("store: update track %q: %w", trackID, mapErr(err))
			}
			if err := expectRow(res, "store: update track %q", trackID); err != nil {
				return err
			}
		}
		return nil
	})
}

// ChooseTake makes takeID (a take of the track, or "" for none) the
// track's chosen take.
func (db *DB) ChooseTake(ctx context.Context, channelID, trackID, takeID string) error {
	if takeID != "" {
		var n int
		if err := db.sql.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM studio_takes WHERE id = ? AND track_id = ? AND channel_id = ?`), takeID, trackID, channelID).Scan(&n); err != nil {
			return fmt.Errorf("store: choose take %q: %w", takeID, mapErr(err))
		}
		if n == 0 {
			return fmt.Errorf("store: choose take %q: %w", takeID, ErrNotFound)
		}
	}
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE studio_tracks SET chosen_take = ? WHERE id = ? AND song_id IN (SELECT id FROM studio_songs WHERE channel_id = ?)`), takeID, trackID, channelID)
	if err != nil {
		return fmt.Errorf("store: choose take %q: %w", takeID, mapErr(err))
	}
	return expectRow(res, "store: choose take on track %q", trackID)
}

// DeleteTrack deletes a track of the channel with its takes rows. The
// caller removes the take files.
func (db *DB) DeleteTrack(ctx context.Context, channelID, trackID string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM studio_takes WHERE track_id = ? AND channel_id = ?`), trackID, channelID); err != nil {
			return fmt.Errorf("store: delete track %q: %w", trackID, mapErr(err))
		}
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM studio_tracks WHERE id = ? AND song_id IN (SELECT id FROM studio_songs WHERE channel_id = ?)`), trackID, channelID)
		if err != nil {
			return fmt.Errorf("store: delete track %q: %w", trackID, mapErr(err))
		}
		return expectRow(res, "store: delete track %q", trackID)
	})
}

// CreateTake stores a new take on a track of the channel (ErrNotFound if
// the track is not the channel's).
func (db *DB) CreateTake(ctx context.Context, tk Take) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM studio_tracks t JOIN studio_songs s ON s.id = t.song_id WHERE t.id = ? AND s.channel_id = ?`),
			tk.TrackID, tk.ChannelID).Scan(&n); err != nil {
			return fmt.Errorf("store: create take: %w", mapErr(err))
		}
		if n == 0 {
			return fmt.Errorf("store: create take: track %q: %w", tk.TrackID, ErrNotFound)
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO studio_takes (id, track_id, channel_id, user_id, created_at, offset_ms, latency_ms, duration_ms, mime, state, chunks, bytes)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			tk.ID, tk.TrackID, tk.ChannelID, tk.UserID, millis(tk.CreatedAt), tk.OffsetMS, tk.LatencyMS, tk.DurationMS, tk.MIME, tk.State, tk.Chunks, tk.Bytes)
		if err != nil {
			return fmt.Errorf("store: create take: %w", mapErr(err))
		}
		return nil
	})
}

// DeletedAccountName stands in for the name of a song's maker or a take's
// recorder who deleted their account: what they made stays with the band.
const DeletedAccountName = "a deleted account"

const takeColumns = `k.id, k.track_id, t.song_id, k.channel_id, COALESCE(k.user_id, ''), COALESCE(u.display_name, '` + DeletedAccountName + `'), k.created_at, k.offset_ms, k.latency_ms, k.duration_ms, k.mime, k.state, k.chunks, k.bytes`
const takeFrom = ` FROM studio_takes k JOIN studio_tracks t ON t.id = k.track_id LEFT JOIN users u ON u.id = k.user_id `

func scanTake(s scanner) (Take, error) {
	var k Take
	var at int64
	if err := s.Scan(&k.ID, &k.TrackID, &k.SongID, &k.ChannelID, &k.UserID, &k.UserName, &at, &k.OffsetMS, &k.LatencyMS, &k.DurationMS, &k.MIME, &k.State, &k.Chunks, &k.Bytes); err != nil {
		return Take{}, err
	}
	k.CreatedAt = fromMillis(at)
	return k, nil
}

func (db *DB) queryTakes(ctx context.Context, where string, args ...any) ([]Take, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT `+takeColumns+takeFrom+where+` ORDER BY k.created_at, k.id`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Take{}
	for rows.Next() {
		k, err := scanTake(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Takes returns every take of the channel, oldest first.
func (db *DB) Takes(ctx context.Context, channelID string) ([]Take, error) {
	out, err := db.queryTakes(ctx, `WHERE k.channel_id = ?`, channelID)
	if err != nil {
		return nil, fmt.Errorf("store: takes of %q: %w", channelID, err)
	}
	return out, nil
}

// TakesInState returns every take, of any channel, in the given state
// (the studio resumes its watch over recording takes after a restart).
func (db *DB) TakesInState(ctx context.Context, state string) ([]Take, error) {
	out, err := db.queryTakes(ctx, `WHERE k.state = ?`, state)
	if err != nil {
		return nil, fmt.Errorf("store: takes in state %q: %w", state, err)
	}
	return out, nil
}

// TakesOfTrack returns the takes of a track of the channel.
func (db *DB) TakesOfTrack(ctx context.Context, channelID, trackID string) ([]Take, error) {
	out, err := db.queryTakes(ctx, `WHERE k.channel_id = ? AND k.track_id = ?`, channelID, trackID)
	if err != nil {
		return nil, fmt.Errorf("store: takes of track %q: %w", trackID, err)
	}
	return out, nil
}

// TakesOfSong returns the takes of a song of the channel.
func (db *DB) TakesOfSong(ctx context.Context, channelID, songID string) ([]Take, error) {
	out, err := db.queryTakes(ctx, `WHERE k.channel_id = ? AND t.song_id = ?`, channelID, songID)
	if err != nil {
		return nil, fmt.Errorf("store: takes of song %q: %w", songID, err)
	}
	return out, nil
}

// TakeOf returns a take of the channel, or an error wrapping ErrNotFound.
func (db *DB) TakeOf(ctx context.Context, channelID, takeID string) (Take, error) {
	k, err := scanTake(db.sql.QueryRowContext(ctx, db.q(`SELECT `+takeColumns+takeFrom+`WHERE k.id = ? AND k.channel_id = ?`), takeID, channelID))
	if err != nil {
		return Take{}, fmt.Errorf("store: take %q: %w", takeID, mapErr(err))
	}
	return k, nil
}

// AckChunk records that chunk number chunks-1 of a take is on disk: the
// take now has chunks chunks and bytes bytes, lasts durationMS and, if
// mime is not "", has that type. A take that was interrupted is recording
// again. It returns ErrNotFound for an unknown take.
func (db *DB) AckChunk(ctx context.Context, takeID string, chunks, bytes, durationMS int64, mime string) error {
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE studio_takes SET chunks = ?, bytes = ?, duration_ms = CASE WHEN duration_ms > CAST(? AS BIGINT) THEN duration_ms ELSE CAST(? AS BIGINT) END,
		mime = CASE WHEN CAST(? AS TEXT) = '' THEN mime ELSE CAST(? AS TEXT) END, state = ? WHERE id = ?`),
		chunks, bytes, durationMS, durationMS, mime, mime, TakeRecording, takeID)
	if err != nil {
		return fmt.Errorf("store: acknowledge chunk of take %q: %w", takeID, mapErr(err))
	}
	return expectRow(res, "store: acknowledge chunk of take %q", takeID)
}

// EndTake sets a take's final state (TakeDone or TakeInterrupted) and,
// when durationMS > 0, its duration.
//
// events go to the webhook outbox in the same transaction.
func (db *DB) EndTake(ctx context.Context, takeID, state string, durationMS int64, events ...OutboxEvent) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE studio_takes SET state = ?, duration_ms = CASE WHEN CAST(? AS BIGINT) > 0 THEN CAST(? AS BIGINT) ELSE duration_ms END WHERE id = ?`),
			state, durationMS, durationMS, takeID)
		if err != nil {
			return fmt.Errorf("store: end take %q: %w", takeID, mapErr(err))
		}
		if err := expectRow(res, "store: end take %q", takeID); err != nil {
			return err
		}
		if err := db.enqueue(ctx, tx, events); err != nil {
			return fmt.Errorf("store: end take %q: %w", takeID, err)
		}
		return nil
	})
}

// DeleteTake deletes a take of the channel and unchooses it. The caller
// removes the file.
func (db *DB) DeleteTake(ctx context.Context, channelID, takeID string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM studio_takes WHERE id = ? AND channel_id = ?`), takeID, channelID)
		if err != nil {
			return fmt.Errorf("store: delete take %q: %w", takeID, mapErr(err))
		}
		if err := expectRow(res, "store: delete take %q", takeID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE studio_tracks SET chosen_take = '' WHERE chosen_take = ?`), takeID); err != nil {
			return fmt.Errorf("store: delete take %q: %w", takeID, mapErr(err))
		}
		return nil
	})
}

// StudioBytes is the storage the channel's takes use, in acknowledged bytes.
func (db *DB) StudioBytes(ctx context.Context, channelID string) (int64, error) {
	var n int64
	if err := db.sql.QueryRowContext(ctx, db.q(`SELECT COALESCE(SUM(bytes), 0) FROM studio_takes WHERE channel_id = ?`), channelID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: studio storage of %q: %w", channelID, err)
	}
	return n, nil
}
