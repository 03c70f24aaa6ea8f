-- Each nested list is read oldest first (ORDER BY user_id, created_at, id,
-- src/repo/queries/children.rs): an index in that order hands the rows over
-- sorted, where the index on user_id alone left a sort to every list read.
CREATE INDEX verified_credentials_user_created ON verified_credentials (user_id, created_at, id);
DROP INDEX verified_credentials_user;
CREATE INDEX wallets_user_created ON wallets (user_id, created_at, id);
DROP INDEX wallets_user;
CREATE INDEX sessions_user_created ON sessions (user_id, created_at, id);
DROP INDEX sessions_user;
CREATE INDEX mfa_devices_user_created ON mfa_devices (user_id, created_at, id);
DROP INDEX mfa_devices_user;
CREATE INDEX oauth_accounts_user_created ON oauth_accounts (user_id, created_at, id);
DROP INDEX oauth_accounts_user;
CREATE INDEX chainalysis_checks_user_created ON chainalysis_checks (user_id, created_at, id);
DROP INDEX chainalysis_checks_user;
