-- Accounts as people expect them (issue 13): forgotten passwords, verified
-- email addresses. Like sessions, only the SHA-256 of each link's secret is
-- stored, so reading the database hands out no working link.

-- When the user's current email address was proven theirs by a link sent
-- to it; 0 while it is not (every address given before this migration, and
-- every address on a server without mail).
ALTER TABLE users ADD COLUMN email_verified_at BIGINT NOT NULL DEFAULT 0;

-- "Forgot your password?" finds accounts by address, ignoring case.
CREATE INDEX users_email_lower ON users(LOWER(email));

-- Password reset links. A row is deleted when its link is used (single
-- use) and with every other row of the user when the password changes.
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX password_resets_user_id ON password_resets(user_id);
CREATE INDEX password_resets_expires_at ON password_resets(expires_at);

-- Email verification links. email is the address the link was sent to:
-- for a change of address it is the new one, which replaces users.email
-- only once verified (the old address stays until then).
CREATE TABLE email_verifications (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX email_verifications_user_id ON email_verifications(user_id);
CREATE INDEX email_verifications_expires_at ON email_verifications(expires_at);
