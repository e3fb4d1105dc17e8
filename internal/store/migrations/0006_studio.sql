-- The channel's studio (issue 11): songs, their tracks, and the takes
-- members record on them. Take audio lives in files under the data
-- directory (studio/<channel>/<take>); these rows say what each file is
-- and how much of it was acknowledged.
CREATE TABLE studio_songs (
    id          TEXT PRIMARY KEY,
    channel_id  TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    -- NULL once its maker deleted their account: the band keeps the song.
    created_by  TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX studio_songs_channel_id ON studio_songs(channel_id);

CREATE TABLE studio_tracks (
    id          TEXT PRIMARY KEY,
    song_id     TEXT NOT NULL REFERENCES studio_songs(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    -- Order of the track in its song, smallest first.
    position    INTEGER NOT NULL,
    -- The take the player plays; '' for none.
    chosen_take TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE INDEX studio_tracks_song_id ON studio_tracks(song_id);

CREATE TABLE studio_takes (
    id          TEXT PRIMARY KEY,
    track_id    TEXT NOT NULL REFERENCES studio_tracks(id) ON DELETE CASCADE,
    -- Kept here too so the channel's storage is one indexed sum.
    channel_id  TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    -- NULL once the recorder deleted their account: the take stays in the
    -- song (the channel owner may delete it).
    user_id     TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at  BIGINT NOT NULL,
    -- Where the take starts on the song's timeline, in milliseconds.
    offset_ms   BIGINT NOT NULL DEFAULT 0,
    -- The recording page's input+output latency, compensated on playback.
    latency_ms  BIGINT NOT NULL DEFAULT 0,
    duration_ms BIGINT NOT NULL DEFAULT 0,
    -- audio/webm or audio/ogg, from the first bytes; '' before any chunk.
    mime        TEXT NOT NULL DEFAULT '',
    -- recording, done or interrupted.
    state       TEXT NOT NULL,
    -- Chunks and bytes acknowledged: the file is never read past bytes.
    chunks      BIGINT NOT NULL DEFAULT 0,
    bytes       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX studio_takes_track_id ON studio_takes(track_id);
CREATE INDEX studio_takes_channel_id ON studio_takes(channel_id);
CREATE INDEX studio_takes_state ON studio_takes(state);
