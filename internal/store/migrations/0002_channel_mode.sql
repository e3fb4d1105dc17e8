-- How a channel's call carries media: "auto" (peer-to-peer for two, the SFU
-- beyond), or pinned to "sfu" or "p2p".
ALTER TABLE channels ADD COLUMN mode TEXT NOT NULL DEFAULT 'auto';
