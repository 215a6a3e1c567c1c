-- Accounts and API tokens (walt-server user add). A token is kept as the
-- SHA-256 of its secret, in hex; expires_at is NULL for a token that does
-- not expire. Version 0004 is another feature's: the runner applies each
-- missing version, so the two land in either order.
CREATE TABLE users (
	name TEXT PRIMARY KEY,
	is_admin INTEGER NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
	hash TEXT PRIMARY KEY,
	user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	created_at BIGINT NOT NULL,
	expires_at BIGINT
);

CREATE INDEX api_tokens_user ON api_tokens (user_name);
