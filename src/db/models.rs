//! Row structs: one per table, read and written as they are stored.
//!
//! Rows inserted whole say `treat_none_as_default_value = false`: `None` is
//! written as NULL rather than DEFAULT (no nullable column has another
//! default), which lets SQLite take many of them in one `INSERT`. Nested
//! rows also read from JSON (PostgreSQL's `json_agg` of the row), with the
//! column names as keys.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::*;
use super::types::{DbId, DbJson, DbTime};

/// An environment (a tenant): users and their settings live in one.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = environments)]
pub struct EnvironmentRow {
    pub id: DbId,
    pub name: String,
    pub required_fields: DbJson,
    pub created_at: DbTime,
}

/// A user as stored; enum columns hold their upper-case names.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: DbId,
    pub environment_id: DbId,
    pub last_verified_credential_id: Option<DbId>,
    pub session_id: Option<DbId>,
    pub scope: Option<String>,
    pub new_user: bool,
    pub first_visit: DbTime,
    pub last_visit: DbTime,
    pub alias: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub job_title: Option<String>,
    pub t_shirt_size: Option<String>,
    pub team: Option<String>,
    pub country: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub policies_consent: Option<bool>,
    pub username: Option<String>,
    pub metadata: Option<DbJson>,
    pub mfa_backup_code_acknowledgement: Option<String>,
    pub btc_wallet: Option<String>,
    pub kda_wallet: Option<String>,
    pub ltc_wallet: Option<String>,
    pub ckb_wallet: Option<String>,
    pub kas_wallet: Option<String>,
    pub doge_wallet: Option<String>,
    pub email_notification: Option<bool>,
    pub discord_notification: Option<bool>,
    pub newsletter_notification: Option<bool>,
    pub lists: Option<DbJson>,
    pub wallet_public_key: Option<String>,
    pub wallet: Option<String>,
    pub chain: Option<String>,
    pub created_at: DbTime,
    pub updated_at: DbTime,
}

/// The columns an update writes: `None` leaves a column alone,
/// `Some(None)` clears it.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub last_verified_credential_id: Option<Option<DbId>>,
    pub scope: Option<Option<String>>,
    pub new_user: Option<bool>,
    pub first_visit: Option<DbTime>,
    pub last_visit: Option<DbTime>,
    pub alias: Option<Option<String>>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub job_title: Option<Option<String>>,
    pub t_shirt_size: Option<Option<String>>,
    pub team: Option<Option<String>>,
    pub country: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub phone_number: Option<Option<String>>,
    pub policies_consent: Option<Option<bool>>,
    pub username: Option<Option<String>>,
    pub metadata: Option<Option<DbJson>>,
    pub mfa_backup_code_acknowledgement: Option<Option<String>>,
    pub btc_wallet: Option<Option<String>>,
    pub kda_wallet: Option<Option<String>>,
    pub ltc_wallet: Option<Option<String>>,
    pub ckb_wallet: Option<Option<String>>,
    pub kas_wallet: Option<Option<String>>,
    pub doge_wallet: Option<Option<String>>,
    pub email_notification: Option<Option<bool>>,
    pub discord_notification: Option<Option<bool>>,
    pub newsletter_notification: Option<Option<bool>>,
    pub lists: Option<Option<DbJson>>,
    pub wallet_public_key: Option<Option<String>>,
    pub wallet: Option<Option<String>>,
    pub chain: Option<Option<String>>,
    pub updated_at: DbTime,
}

/// A credential that proved the user's identity (wallet, email, OAuth, …).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Deserialize, Serialize)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = verified_credentials)]
pub struct VerifiedCredentialRow {
    pub id: DbId,
    pub user_id: DbId,
    pub format: String,
    pub public_identifier: String,
    pub chain: Option<String>,
    pub wallet_name: Option<String>,
    pub created_at: DbTime,
}

/// A wallet linked to the user.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Deserialize, Serialize)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = wallets)]
pub struct WalletRow {
    pub id: DbId,
    pub user_id: DbId,
    pub name: String,
    pub chain: String,
    pub public_key: String,
    pub provider: String,
    pub created_at: DbTime,
}

/// A sign-in session of the user.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Deserialize, Serialize)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: DbId,
    pub user_id: DbId,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DbTime,
    pub expires_at: DbTime,
    pub revoked_at: Option<DbTime>,
}

/// A second-factor device of the user.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Deserialize, Serialize)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = mfa_devices)]
pub struct MfaDeviceRow {
    pub id: DbId,
    pub user_id: DbId,
    pub kind: String,
    pub name: Option<String>,
    pub is_default: bool,
    pub verified_at: Option<DbTime>,
    pub created_at: DbTime,
}

/// An OAuth account linked to the user.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Deserialize, Serialize)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = oauth_accounts)]
pub struct OauthAccountRow {
    pub id: DbId,
    pub user_id: DbId,
    pub provider: String,
    pub account_username: Option<String>,
    pub account_email: Option<String>,
    pub display_name: Option<String>,
    pub created_at: DbTime,
}

/// A chainalysis screening of one of the user's wallets.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Deserialize, Serialize)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = chainalysis_checks)]
pub struct ChainalysisCheckRow {
    pub id: DbId,
    pub user_id: DbId,
    pub wallet_public_key: String,
    pub risk_level: String,
    pub created_at: DbTime,
}

/// The columns a new user starts with before its input is applied.
#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser {
    pub id: DbId,
    pub environment_id: DbId,
    pub new_user: bool,
    pub first_visit: DbTime,
    pub last_visit: DbTime,
    pub created_at: DbTime,
    pub updated_at: DbTime,
}

/// An API token, known only by its hash.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct ApiTokenRow {
    pub id: DbId,
    pub environment_id: DbId,
    pub name: String,
    pub token_hash: String,
    pub created_at: DbTime,
    pub revoked_at: Option<DbTime>,
}

/// One entry of a user's change history.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = user_history)]
pub struct UserHistoryRow {
    pub id: DbId,
    pub environment_id: DbId,
    pub user_id: DbId,
    pub version: DbTime,
    pub previous_version: Option<DbTime>,
    pub operation: String,
    pub changed_fields: DbJson,
    pub token_id: Option<DbId>,
    pub merged: bool,
    pub recorded_at: DbTime,
}

/// The first answer to an `Idempotency-Key`, or its claim while it runs.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyKeyRow {
    pub token_id: DbId,
    pub key: String,
    pub body_hash: String,
    pub status: Option<i32>,
    pub response: Option<String>,
    pub created_at: DbTime,
}
