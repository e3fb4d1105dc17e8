-- API keys (issue 15): an account's credentials for server-to-server use
-- of /api/v1. The key id is public (it names the key in lists and logs);
-- only the SHA-256 of the secret is stored.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX api_keys_user_id ON api_keys(user_id);
