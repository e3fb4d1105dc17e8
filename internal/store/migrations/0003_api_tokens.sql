-- Personal access tokens for the command-line client, WHIP/WHEP and
-- scripts. Like sessions, only the SHA-256 of a token is stored.
CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE INDEX api_tokens_user_id ON api_tokens(user_id);
