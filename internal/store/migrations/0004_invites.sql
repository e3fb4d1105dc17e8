-- Invite links as records of their own (issue 9, item 1). Before this, each
-- channel had one invite code that never changed and could not be revoked,
-- so a removed member walked back in through it.
CREATE TABLE invites (
    id          TEXT PRIMARY KEY,
    channel_id  TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    -- The secret part of /invite/{code}. Kept in clear (unlike session
    -- tokens) because the owner's channel page lists each link to copy.
    code        TEXT NOT NULL UNIQUE,
    created_by  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    -- 0 means the link never expires.
    expires_at  BIGINT NOT NULL DEFAULT 0,
    -- 0 means any number of uses.
    max_uses    INTEGER NOT NULL DEFAULT 0,
    uses        INTEGER NOT NULL DEFAULT 0,
    -- 0 while the link is live; the revocation time afterwards. Revoked
    -- rows are kept so that opening the link says "revoked", not "unknown".
    revoked_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX invites_channel_id ON invites(channel_id);
CREATE INDEX invites_created_by ON invites(created_by);

-- Users the owner removed from a channel. An invite link never lets them
-- back in (old or new link alike); only the owner adding them by username
-- lifts this. Leaving on one's own does not put a user here.
CREATE TABLE channel_removals (
    channel_id TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    removed_at BIGINT NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_removals_user_id ON channel_removals(user_id);

-- Each existing channel's code becomes one link made by its owner, with no
-- expiry and no use limit: links already sent out keep working until the
-- owner revokes them, as before, but now they can be revoked.
INSERT INTO invites (id, channel_id, code, created_by, created_at, expires_at, max_uses, uses, revoked_at)
    SELECT 'legacy-' || id, id, invite_code, owner_id, created_at, 0, 0, 0, 0 FROM channels;

-- channels.invite_code stays (SQLite cannot drop a UNIQUE column) but is no
-- longer read: it now holds the channel's own id, so the old secret lives
-- only in the revocable invites row.
UPDATE channels SET invite_code = id;
