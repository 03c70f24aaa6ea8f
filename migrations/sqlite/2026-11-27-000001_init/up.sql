CREATE TABLE environments (
    id text PRIMARY KEY,
    name text NOT NULL,
    -- Names of user fields this environment requires (drives User.missingFields).
    required_fields text NOT NULL DEFAULT '[]',
    created_at text NOT NULL
);

CREATE TABLE users (
    id text PRIMARY KEY,
    environment_id text NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    -- No foreign key: the credential rows point back at the user, and the
    -- rule "must be one of the user's credentials" is checked on write.
    last_verified_credential_id text,
    session_id text,
    scope text,
    new_user integer NOT NULL,
    first_visit text NOT NULL,
    last_visit text NOT NULL,
    alias text,
    first_name text,
    last_name text,
    job_title text,
    t_shirt_size text,
    team text,
    country text,
    email text,
    phone_number text,
    policies_consent integer,
    username text,
    metadata text,
    mfa_backup_code_acknowledgement text CHECK (mfa_backup_code_acknowledgement IN ('PENDING', 'COMPLETE')),
    btc_wallet text,
    kda_wallet text,
    ltc_wallet text,
    ckb_wallet text,
    kas_wallet text,
    doge_wallet text,
    email_notification integer,
    discord_notification integer,
    newsletter_notification integer,
    lists text,
    wallet_public_key text,
    wallet text,
    chain text CHECK (chain IN ('ETH', 'EVM', 'FLOW', 'SOL', 'ALGO', 'STARK', 'COSMOS', 'BTC', 'ECLIPSE', 'SUI', 'SPARK', 'TRON', 'APTOS', 'TON')),
    created_at text NOT NULL,
    updated_at text NOT NULL
);
CREATE INDEX users_environment_created ON users (environment_id, created_at, id);
CREATE UNIQUE INDEX users_email_unique ON users (environment_id, lower(email));
CREATE UNIQUE INDEX users_username_unique ON users (environment_id, lower(username));

CREATE TABLE verified_credentials (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    format text NOT NULL CHECK (format IN ('BLOCKCHAIN', 'EMAIL', 'OAUTH', 'PHONE_NUMBER', 'PASSKEY')),
    public_identifier text NOT NULL,
    chain text CHECK (chain IN ('ETH', 'EVM', 'FLOW', 'SOL', 'ALGO', 'STARK', 'COSMOS', 'BTC', 'ECLIPSE', 'SUI', 'SPARK', 'TRON', 'APTOS', 'TON')),
    wallet_name text,
    created_at text NOT NULL
);
CREATE INDEX verified_credentials_user ON verified_credentials (user_id);

CREATE TABLE wallets (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    chain text NOT NULL CHECK (chain IN ('ETH', 'EVM', 'FLOW', 'SOL', 'ALGO', 'STARK', 'COSMOS', 'BTC', 'ECLIPSE', 'SUI', 'SPARK', 'TRON', 'APTOS', 'TON')),
    public_key text NOT NULL,
    provider text NOT NULL,
    created_at text NOT NULL
);
CREATE INDEX wallets_user ON wallets (user_id);

CREATE TABLE sessions (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ip_address text,
    user_agent text,
    created_at text NOT NULL,
    expires_at text NOT NULL,
    revoked_at text
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE mfa_devices (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('TOTP', 'PASSKEY')),
    name text,
    is_default integer NOT NULL,
    verified_at text,
    created_at text NOT NULL
);
CREATE INDEX mfa_devices_user ON mfa_devices (user_id);

CREATE TABLE oauth_accounts (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider text NOT NULL,
    account_username text,
    account_email text,
    display_name text,
    created_at text NOT NULL
);
CREATE INDEX oauth_accounts_user ON oauth_accounts (user_id);

CREATE TABLE chainalysis_checks (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    wallet_public_key text NOT NULL,
    risk_level text NOT NULL CHECK (risk_level IN ('LOW', 'MEDIUM', 'HIGH', 'SEVERE')),
    created_at text NOT NULL
);
CREATE INDEX chainalysis_checks_user ON chainalysis_checks (user_id);
