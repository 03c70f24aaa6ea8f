-- API tokens: each belongs to one environment. Only a hash of the token is
-- kept; the token itself is shown once, when it is created.
CREATE TABLE api_tokens (
    id text PRIMARY KEY,
    environment_id text NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    name text NOT NULL,
    token_hash text NOT NULL UNIQUE,
    created_at text NOT NULL,
    revoked_at text
);
CREATE INDEX api_tokens_environment ON api_tokens (environment_id);
