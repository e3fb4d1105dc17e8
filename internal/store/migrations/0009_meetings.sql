-- Meetings as people expect them (issue 13): moderators, meeting codes,
-- quick 1:1 calls and guest links.

-- Members the owner made moderators of the channel's call (1) or not (0).
-- A flag on the membership, so that leaving or being removed ends it.
ALTER TABLE channel_members ADD COLUMN moderator INTEGER NOT NULL DEFAULT 0;

-- Each channel's meeting code, easy to read aloud (abc-defg-hij). Made on
-- first use, so channels from before this migration get one too; the
-- owner may replace it (the old code then stops working).
CREATE TABLE meeting_codes (
    channel_id TEXT PRIMARY KEY REFERENCES channels(id) ON DELETE CASCADE,
    code       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- Quick 1:1 calls: a room with a 6-digit code that anyone logged in may
-- join, two at a time. empty_since is when the last person left (the
-- creation time before anyone joined); a call empty for 24 hours is
-- deleted.
CREATE TABLE quick_calls (
    id          TEXT PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    created_by  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    -- 0 while someone is in the call.
    empty_since BIGINT NOT NULL
);
CREATE INDEX quick_calls_empty_since ON quick_calls(empty_since);
CREATE INDEX quick_calls_created_by ON quick_calls(created_by);

-- A channel's guest link, while the owner has it on. Turning it off
-- deletes the row, so the code stops working at once.
CREATE TABLE guest_links (
    channel_id TEXT PRIMARY KEY REFERENCES channels(id) ON DELETE CASCADE,
    -- The secret part of /g/{code}; in clear, as invite codes, because
    -- the owner's page shows the link to copy.
    code       TEXT NOT NULL UNIQUE,
    -- 1: guests wait in the lobby until a member admits them.
    lobby      INTEGER NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);
