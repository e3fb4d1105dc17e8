-- Webhooks (issue 15): an account's endpoints, and the durable outbox of
-- their deliveries.

-- An endpoint an account registered. secret signs every delivery (HMAC
-- SHA-256), so it is kept in clear, like the invite codes; the owner sees
-- it once, when the webhook is made. events is a comma-separated list of
-- event types. next_seq numbers the webhook's deliveries: taking it
-- (UPDATE ... RETURNING) locks the row, so deliveries are numbered in the
-- order their transactions commit.
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    next_seq   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_user_id ON webhooks(user_id);

-- The outbox: one row per event and webhook, written in the transaction
-- of the change that caused the event (or at the moment of a call's
-- fact). state is pending, delivered or failed (gave up after the retry
-- window). A pending row is due at next_at; a worker that claims it
-- pushes next_at past its delivery timeout (a lease), so a killed worker's
-- claim expires and the row is sent again. Each webhook's rows are sent
-- in seq order, one at a time.
CREATE TABLE webhook_deliveries (
    id          TEXT PRIMARY KEY,
    webhook_id  TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    last_status INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT '',
    finished_at BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX webhook_deliveries_order ON webhook_deliveries(webhook_id, seq);
-- A webhook's oldest pending row in one seek (the worker's claim).
CREATE INDEX webhook_deliveries_head ON webhook_deliveries(webhook_id, state, seq);
-- Pruning finished rows.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries(state, finished_at);
