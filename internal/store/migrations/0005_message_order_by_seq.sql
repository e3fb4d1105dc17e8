-- Chat history is ordered and trimmed by seq alone (the order messages were
-- stored), no longer by created_at: a post stamped before it waited for the
-- channel lock, or stamped by a clock that stepped back, could sort behind
-- 100 others and be deleted by its own trim after it was acknowledged.
-- seq is handed out under the channel row lock, so it is unique per
-- channel; the unique index states that and serves both queries.
DROP INDEX messages_channel_order;
CREATE UNIQUE INDEX messages_channel_seq ON messages(channel_id, seq);
