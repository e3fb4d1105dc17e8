-- Join tokens (issue 15): how other apps let their users into a channel's
-- call. See docs/api.md "Join tokens" and docs/security.md.

-- The keys join tokens are signed with (HMAC-SHA256, JWT "kid"). Exactly
-- one has retired_at = 0: it signs new tokens. A retired key still
-- verifies the tokens it signed until last_expiry, the latest "exp" it
-- ever put in a token; after that nothing it signed is valid and it is
-- deleted. A revoked key (revoked_at > 0) verifies nothing.
CREATE TABLE join_token_keys (
    kid         TEXT PRIMARY KEY,
    -- The HMAC key, base64url. Whoever reads this table can mint tokens:
    -- it is as secret as the database itself.
    secret      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT NOT NULL DEFAULT 0,
    revoked_at  BIGINT NOT NULL DEFAULT 0,
    last_expiry BIGINT NOT NULL DEFAULT 0
);

-- One Parley identity per person of an app: the issuer (the channel owner
-- whose credential minted the token) and the app's own id for them. The
-- same external id from the same issuer is always the same identity, and
-- the same user: user_id is a users row made for it (username "ext-…",
-- no e-mail, a password hash no password matches), so its chat messages
-- have an author like anyone's. It cannot log in.
CREATE TABLE external_identities (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    issuer_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    external_id  TEXT NOT NULL,
    display_name TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (issuer_id, external_id)
);

-- Each minted token (its "jti"): the server refreshes a token under the
-- same jti, so revoking the jti ends the original and every refresh.
CREATE TABLE join_tokens (
    jti           TEXT PRIMARY KEY,
    channel_id    TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    identity_id   TEXT NOT NULL REFERENCES external_identities(id) ON DELETE CASCADE,
    issuer_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- The credential (access token or API key id) that minted it.
    minted_by     TEXT NOT NULL,
    -- Comma-separated: publish, subscribe, chat, moderate, record.
    grants        TEXT NOT NULL,
    ttl_seconds   INTEGER NOT NULL,
    -- Space-separated origins that may frame /embed/c/{id} with it.
    embed_origins TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    -- The latest "exp" given out under this jti (refreshes move it).
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX join_tokens_issuer_id ON join_tokens(issuer_id);
CREATE INDEX join_tokens_expires_at ON join_tokens(expires_at);
