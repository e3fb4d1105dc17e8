-- Initial schema. The same SQL runs on SQLite and PostgreSQL, so it sticks to
-- TEXT, BIGINT and INTEGER. Timestamps are unix milliseconds; ids are made in Go.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    -- Always stored lower-case, which makes UNIQUE case-insensitive on both
    -- dialects without collations or expression indexes.
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    -- SHA-256 of the token: a leaked database does not hand out live sessions.
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions(user_id);
CREATE INDEX sessions_expires_at ON sessions(expires_at);

CREATE TABLE channels (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    owner_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    invite_code TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    -- Last message sequence number handed out. Bumping it locks the channel
    -- row, which serialises concurrent posts to one channel on both dialects
    -- and gives messages with equal timestamps a stable order.
    message_seq BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX channels_owner_id ON channels(owner_id);

CREATE TABLE channel_members (
    channel_id TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    joined_at  BIGINT NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_members_user_id ON channel_members(user_id);

CREATE TABLE messages (
    id           TEXT PRIMARY KEY,
    channel_id   TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- Copied at post time so history shows the name the author had then.
    display_name TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX messages_channel_order ON messages(channel_id, created_at, seq);
CREATE INDEX messages_user_id ON messages(user_id);
