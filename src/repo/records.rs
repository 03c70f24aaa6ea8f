//! What the repository hands out: users and their nested records as values
//! (ids, instants, JSON, the domain's enums), decoded from the stored rows.
//!
//! Decoding happens here, once, so no layer above reads stored text. The
//! stored enum columns carry CHECK constraints and JSON columns are written
//! only by this crate, so a value that does not decode is a corrupt row: an
//! internal error, never a client's.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{Relation, RepoError};
use crate::db::models::*;
use crate::db::types::{DbJson, DbTime};
use crate::domain::{
    Chain, ChainalysisRisk, CredentialFormat, MfaBackupCodeAcknowledgement, MfaDeviceKind,
    UserOperation,
};

fn corrupt(what: impl std::fmt::Display) -> RepoError {
    RepoError::Corrupt(what.to_string())
}

fn parse<T>(text: &str) -> Result<T, RepoError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.parse().map_err(corrupt)
}

fn parse_optional<T>(text: Option<String>) -> Result<Option<T>, RepoError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.as_deref().map(parse).transpose()
}

fn time(t: DbTime) -> DateTime<Utc> {
    t.0
}

/// An environment (a tenant) and the user fields it requires.
#[derive(Debug, Clone)]
pub struct Environment {
    pub id: Uuid,
    pub name: String,
    /// GraphQL names of user fields (from [`crate::domain::REQUIRABLE_FIELDS`]).
    pub required_fields: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<EnvironmentRow> for Environment {
    type Error = RepoError;
    fn try_from(row: EnvironmentRow) -> Result<Self, RepoError> {
        Ok(Environment {
            id: row.id.0,
            name: row.name,
            required_fields: serde_json::from_value(row.required_fields.0).map_err(corrupt)?,
            created_at: time(row.created_at),
        })
    }
}

/// A user of an environment, without its nested lists.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub environment_id: Uuid,
    pub last_verified_credential_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub scope: Option<String>,
    pub new_user: bool,
    pub first_visit: DateTime<Utc>,
    pub last_visit: DateTime<Utc>,
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
    /// A JSON object.
    pub metadata: Option<Value>,
    pub mfa_backup_code_acknowledgement: Option<MfaBackupCodeAcknowledgement>,
    pub btc_wallet: Option<String>,
    pub kda_wallet: Option<String>,
    pub ltc_wallet: Option<String>,
    pub ckb_wallet: Option<String>,
    pub kas_wallet: Option<String>,
    pub doge_wallet: Option<String>,
    pub email_notification: Option<bool>,
    pub discord_notification: Option<bool>,
    pub newsletter_notification: Option<bool>,
    pub lists: Option<Vec<String>>,
    pub wallet_public_key: Option<String>,
    pub wallet: Option<String>,
    pub chain: Option<Chain>,
    pub created_at: DateTime<Utc>,
    /// The version: a write names it to be applied.
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = RepoError;
    fn try_from(row: UserRow) -> Result<Self, RepoError> {
        Ok(User {
            id: row.id.0,
            environment_id: row.environment_id.0,
            last_verified_credential_id: row.last_verified_credential_id.map(|id| id.0),
            session_id: row.session_id.map(|id| id.0),
            scope: row.scope,
            new_user: row.new_user,
            first_visit: time(row.first_visit),
            last_visit: time(row.last_visit),
            alias: row.alias,
            first_name: row.first_name,
            last_name: row.last_name,
            job_title: row.job_title,
            t_shirt_size: row.t_shirt_size,
            team: row.team,
            country: row.country,
            email: row.email,
            phone_number: row.phone_number,
            policies_consent: row.policies_consent,
            username: row.username,
            metadata: row.metadata.map(|m| m.0),
            mfa_backup_code_acknowledgement: parse_optional(row.mfa_backup_code_acknowledgement)?,
            btc_wallet: row.btc_wallet,
            kda_wallet: row.kda_wallet,
            ltc_wallet: row.ltc_wallet,
            ckb_wallet: row.ckb_wallet,
            kas_wallet: row.kas_wallet,
            doge_wallet: row.doge_wallet,
            email_notification: row.email_notification,
            discord_notification: row.discord_notification,
            newsletter_notification: row.newsletter_notification,
            lists: row
                .lists
                .map(|DbJson(lists)| serde_json::from_value(lists).map_err(corrupt))
                .transpose()?,
            wallet_public_key: row.wallet_public_key,
            wallet: row.wallet,
            chain: parse_optional(row.chain)?,
            created_at: time(row.created_at),
            updated_at: time(row.updated_at),
        })
    }
}

impl User {
    /// Whether the field named `field` (GraphQL name, one of
    /// [`crate::domain::REQUIRABLE_FIELDS`]) has no value; an empty `lists`
    /// or `metadata` counts as none.
    pub fn is_empty(&self, field: &str) -> bool {
        match field {
            "lastVerifiedCredentialId" => self.last_verified_credential_id.is_none(),
            "scope" => self.scope.is_none(),
            "alias" => self.alias.is_none(),
            "firstName" => self.first_name.is_none(),
            "lastName" => self.last_name.is_none(),
            "jobTitle" => self.job_title.is_none(),
            "tShirtSize" => self.t_shirt_size.is_none(),
            "team" => self.team.is_none(),
            "country" => self.country.is_none(),
            "email" => self.email.is_none(),
            "phoneNumber" => self.phone_number.is_none(),
            "policiesConsent" => self.policies_consent.is_none(),
            "username" => self.username.is_none(),
            "metadata" => self
                .metadata
                .as_ref()
                .is_none_or(|m| m.as_object().is_some_and(|o| o.is_empty())),
            "mfaBackupCodeAcknowledgement" => self.mfa_backup_code_acknowledgement.is_none(),
            "btcWallet" => self.btc_wallet.is_none(),
            "kdaWallet" => self.kda_wallet.is_none(),
            "ltcWallet" => self.ltc_wallet.is_none(),
            "ckbWallet" => self.ckb_wallet.is_none(),
            "kasWallet" => self.kas_wallet.is_none(),
            "dogeWallet" => self.doge_wallet.is_none(),
            "emailNotification" => self.email_notification.is_none(),
            "discordNotification" => self.discord_notification.is_none(),
            "newsletterNotification" => self.newsletter_notification.is_none(),
            "lists" => self.lists.as_ref().is_none_or(Vec::is_empty),
            "walletPublicKey" => self.wallet_public_key.is_none(),
            "wallet" => self.wallet.is_none(),
            "chain" => self.chain.is_none(),
            _ => false,
        }
    }
}

/// A credential that proved the user's identity (wallet, email, OAuth, …).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCredential {
    pub id: Uuid,
    pub user_id: Uuid,
    pub format: CredentialFormat,
    pub public_identifier: String,
    pub chain: Option<Chain>,
    pub wallet_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<VerifiedCredentialRow> for VerifiedCredential {
    type Error = RepoError;
    fn try_from(row: VerifiedCredentialRow) -> Result<Self, RepoError> {
        Ok(VerifiedCredential {
            id: row.id.0,
            user_id: row.user_id.0,
            format: parse(&row.format)?,
            public_identifier: row.public_identifier,
            chain: parse_optional(row.chain)?,
            wallet_name: row.wallet_name,
            created_at: time(row.created_at),
        })
    }
}

/// A wallet linked to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Wallet {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub chain: Chain,
    pub public_key: String,
    pub provider: String,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<WalletRow> for Wallet {
    type Error = RepoError;
    fn try_from(row: WalletRow) -> Result<Self, RepoError> {
        Ok(Wallet {
            id: row.id.0,
            user_id: row.user_id.0,
            name: row.name,
            chain: parse(&row.chain)?,
            public_key: row.public_key,
            provider: row.provider,
            created_at: time(row.created_at),
        })
    }
}

/// A sign-in session of the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<SessionRow> for Session {
    type Error = RepoError;
    fn try_from(row: SessionRow) -> Result<Self, RepoError> {
        Ok(Session {
            id: row.id.0,
            user_id: row.user_id.0,
            ip_address: row.ip_address,
            user_agent: row.user_agent,
            created_at: time(row.created_at),
            expires_at: time(row.expires_at),
            revoked_at: row.revoked_at.map(time),
        })
    }
}

/// A second-factor device of the user.
#[derive(Debug, Clone, PartialEq)]
pub struct MfaDevice {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: MfaDeviceKind,
    pub name: Option<String>,
    pub is_default: bool,
    pub verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<MfaDeviceRow> for MfaDevice {
    type Error = RepoError;
    fn try_from(row: MfaDeviceRow) -> Result<Self, RepoError> {
        Ok(MfaDevice {
            id: row.id.0,
            user_id: row.user_id.0,
            kind: parse(&row.kind)?,
            name: row.name,
            is_default: row.is_default,
            verified_at: row.verified_at.map(time),
            created_at: time(row.created_at),
        })
    }
}

/// An OAuth account linked to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct OauthAccount {
    pub id: Uuid,
    pub user_id: Uuid,
    pub provider: String,
    pub account_username: Option<String>,
    pub account_email: Option<String>,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<OauthAccountRow> for OauthAccount {
    type Error = RepoError;
    fn try_from(row: OauthAccountRow) -> Result<Self, RepoError> {
        Ok(OauthAccount {
            id: row.id.0,
            user_id: row.user_id.0,
            provider: row.provider,
            account_username: row.account_username,
            account_email: row.account_email,
            display_name: row.display_name,
            created_at: time(row.created_at),
        })
    }
}

/// A chainalysis screening of one of the user's wallets.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainalysisCheck {
    pub id: Uuid,
    pub user_id: Uuid,
    pub wallet_public_key: String,
    pub risk_level: ChainalysisRisk,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<ChainalysisCheckRow> for ChainalysisCheck {
    type Error = RepoError;
    fn try_from(row: ChainalysisCheckRow) -> Result<Self, RepoError> {
        Ok(ChainalysisCheck {
            id: row.id.0,
            user_id: row.user_id.0,
            wallet_public_key: row.wallet_public_key,
            risk_level: parse(&row.risk_level)?,
            created_at: time(row.created_at),
        })
    }
}

/// Decodes every row of a list.
pub(crate) fn decode_all<R, T>(rows: Vec<R>) -> Result<Vec<T>, RepoError>
where
    T: TryFrom<R, Error = RepoError>,
{
    rows.into_iter().map(T::try_from).collect()
}

/// Every nested list of one user.
#[derive(Debug, Clone, Default)]
pub struct Children {
    pub verified_credentials: Vec<VerifiedCredential>,
    pub wallets: Vec<Wallet>,
    pub sessions: Vec<Session>,
    pub mfa_devices: Vec<MfaDevice>,
    pub oauth_accounts: Vec<OauthAccount>,
    pub chainalysis_checks: Vec<ChainalysisCheck>,
}

/// A user with its nested records, read in one transaction.
#[derive(Debug, Clone)]
pub struct UserSnapshot {
    pub user: User,
    pub children: Children,
    /// The lists `children` holds; the others were not read.
    pub loaded: Vec<Relation>,
}

/// A record of any type that has an id (Relay's `node`).
#[derive(Debug, Clone)]
pub enum Node {
    User(Box<User>),
    VerifiedCredential(VerifiedCredential),
    Wallet(Wallet),
    Session(Session),
    MfaDevice(MfaDevice),
    OauthAccount(OauthAccount),
    ChainalysisCheck(ChainalysisCheck),
}

/// The common lookups of `Query.users`; every set condition must hold.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Exact email, ignoring case.
    pub email: Option<String>,
    /// Exact username, ignoring case.
    pub username: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// A position in the users list, which is ordered by creation time, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserPosition {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl UserPosition {
    /// The position of `user` in the list.
    pub fn of(user: &User) -> Self {
        UserPosition {
            created_at: user.created_at,
            id: user.id,
        }
    }
}

/// A change to one nested record, made under the user's compare-and-set.
#[derive(Debug, Clone, Copy)]
pub enum ChildChange {
    RevokeSession(Uuid),
    RemoveMfaDevice(Uuid),
    SetDefaultMfaDevice(Uuid),
}

/// What a compare-and-set update (or nested-record change) did.
#[derive(Debug)]
pub enum UpdateOutcome {
    /// The change was written (or the input was empty); the user as it now is.
    Updated(UserSnapshot),
    /// The user had moved on, but none of the fields the input sets had
    /// changed since the expected version, so the input was applied to the
    /// current version (on request: [`ConflictPolicy::MergeIfDisjoint`]).
    Merged(UserSnapshot),
    /// The stored version is not the expected one.
    Conflict(Box<Conflict>),
    /// No such user in this environment.
    NotFound,
    /// The input broke these rules; nothing was written.
    Invalid(Vec<crate::domain::FieldError>),
}

/// What `create_user` did.
#[derive(Debug)]
pub enum CreateOutcome {
    /// The new user, with its (empty) nested lists.
    Created(Box<UserSnapshot>),
    /// The input broke these rules; nothing was written.
    Invalid(Vec<crate::domain::FieldError>),
}

/// What a compare-and-set delete did.
#[derive(Debug)]
pub enum DeleteOutcome {
    Deleted,
    /// The stored version is not the expected one.
    Conflict(Box<Conflict>),
    NotFound,
}

/// What a write does when the user is no longer at the version it expects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// Answer with a conflict.
    #[default]
    Fail,
    /// Apply the input to the current version when none of the fields it
    /// sets changed since the expected one, as the history shows; answer
    /// with a conflict otherwise.
    MergeIfDisjoint,
}

/// A write refused because the user moved on from the expected version.
#[derive(Debug)]
pub struct Conflict {
    /// The user as it is now.
    pub current: UserSnapshot,
    /// What changed since the expected version.
    pub changes: ChangesSince,
    /// Those of `changes.fields` that the refused write sets too.
    pub conflicting_fields: Vec<String>,
}

/// The fields (and nested lists) that changed between two versions of a
/// user, by GraphQL name of `User`, sorted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangesSince {
    pub fields: Vec<String>,
    /// False when the history kept does not reach back to the earlier
    /// version (pruned, or never a version of this user): `fields` then
    /// holds only the changes still kept.
    pub complete: bool,
}

impl UserOperation {
    /// The operation of a nested-record change.
    pub fn of_child_change(change: ChildChange) -> Self {
        match change {
            ChildChange::RevokeSession(_) => UserOperation::RevokeSession,
            ChildChange::RemoveMfaDevice(_) => UserOperation::RemoveMfaDevice,
            ChildChange::SetDefaultMfaDevice(_) => UserOperation::SetDefaultMfaDevice,
        }
    }
}

/// One entry of a user's change history: which write moved the user from
/// one version to the next, what it changed, and who made it.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub id: Uuid,
    pub user_id: Uuid,
    pub version: DateTime<Utc>,
    /// None for the creation.
    pub previous_version: Option<DateTime<Utc>>,
    pub operation: UserOperation,
    /// GraphQL names of `User` fields and nested lists, sorted.
    pub changed_fields: Vec<String>,
    /// The API token that made the write (its id and name); none when the
    /// command line did.
    pub token: Option<(Uuid, String)>,
    /// Applied to a later version than the one its client expected.
    pub merged: bool,
    pub recorded_at: DateTime<Utc>,
}

impl TryFrom<(UserHistoryRow, Option<String>)> for HistoryEntry {
    type Error = RepoError;
    fn try_from((row, token_name): (UserHistoryRow, Option<String>)) -> Result<Self, RepoError> {
        Ok(HistoryEntry {
            id: row.id.0,
            user_id: row.user_id.0,
            version: time(row.version),
            previous_version: row.previous_version.map(time),
            operation: parse(&row.operation)?,
            changed_fields: serde_json::from_value(row.changed_fields.0).map_err(corrupt)?,
            token: row
                .token_id
                .map(|id| (id.0, token_name.unwrap_or_default())),
            merged: row.merged,
            recorded_at: time(row.recorded_at),
        })
    }
}

/// Where an `Idempotency-Key` stands when a request names it.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyClaim {
    /// This request runs; its answer is to be stored.
    Claimed,
    /// The first request was answered so: replay it.
    Answered { status: i32, body: String },
    /// The first request is still running.
    Running,
    /// The key was used with another request body.
    OtherBody,
}
