-- Per-channel recording policy: whether members other than the owner may
-- start and stop recording the call. A channel without a row allows the
-- owner only. (The recordings themselves live on disk with a manifest
-- each: see internal/recording.)
CREATE TABLE channel_recording (
    channel_id         TEXT PRIMARY KEY REFERENCES channels(id) ON DELETE CASCADE,
    members_may_record INTEGER NOT NULL DEFAULT 0
);
