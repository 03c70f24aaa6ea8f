-- One entry per write of a user (create, update, nested-record change,
-- delete), written in the write's own transaction. Names of the changed
-- fields only, never their values: personal data stays in `users`, where a
-- deletion removes it (docs/DESIGN.md, "Change history").
-- No foreign key to `users`: a deletion's entry outlives the user until
-- retention prunes it.
CREATE TABLE user_history (
    id uuid PRIMARY KEY,
    environment_id uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    user_id uuid NOT NULL,
    -- The user's `updated_at` after the write (for a deletion: the instant it
    -- was deleted, under the same rule), and before it (none for a creation).
    version timestamptz NOT NULL,
    previous_version timestamptz,
    operation text NOT NULL CHECK (operation IN ('CREATE', 'UPDATE', 'REVOKE_SESSION', 'REMOVE_MFA_DEVICE', 'SET_DEFAULT_MFA_DEVICE', 'DELETE')),
    -- JSON array of GraphQL field names of `User`.
    changed_fields jsonb NOT NULL,
    -- The API token that made the write; none for the command line.
    token_id uuid,
    merged boolean NOT NULL,
    recorded_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX user_history_user_version ON user_history (user_id, version);
CREATE INDEX user_history_recorded ON user_history (recorded_at);

-- The first answer to each `Idempotency-Key` of a token (src/http/idempotency.rs).
CREATE TABLE idempotency_keys (
    token_id uuid NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    key text NOT NULL,
    -- SHA-256 of the request body: the same key with another body is refused.
    body_hash text NOT NULL,
    -- The answer, once there is one; none while the first request runs.
    status integer,
    response text,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (token_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
