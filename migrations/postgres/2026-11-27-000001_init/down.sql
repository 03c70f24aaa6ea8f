DROP TABLE chainalysis_checks;
DROP TABLE oauth_accounts;
DROP TABLE mfa_devices;
DROP TABLE sessions;
DROP TABLE wallets;
DROP TABLE verified_credentials;
DROP TABLE users;
DROP TABLE environments;
