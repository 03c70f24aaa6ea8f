//! Object types: `User` and its nested records.

use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Interface, Object, Result, SimpleObject, ID};
use serde::Deserialize;

use super::enums::{
    self, Chain, ChainalysisRisk, CredentialFormat, MfaBackupCodeAcknowledgement, MfaDeviceKind,
};
use super::errors::internal;
use super::loaders::{
    ChainalysisChecksOf, ChildLoader, EnvironmentOf, MfaDevicesOf, OauthAccountsOf, RequestLoader,
    SessionsOf, VerifiedCredentialsOf, WalletsOf,
};
use super::scalars::{JsonObject, Timestamp};
use crate::db::models::*;
use crate::db::types::DbId;
use crate::domain;
use crate::repo::{Children, UserSnapshot};

fn id(id: DbId) -> ID {
    ID(id.0.to_string())
}

fn optional<D, G>(text: &Option<String>) -> Result<Option<G>>
where
    D: std::str::FromStr<Err = domain::UnknownVariant>,
    G: From<D>,
{
    text.as_deref().map(enums::stored::<D, G>).transpose()
}

/// A user, with its nested lists either already read (mutation results, one
/// snapshot) or loaded on demand through the request's DataLoader.
pub struct User {
    // Boxed: a user row is large, and results and `Node` hold users by value.
    row: Box<UserRow>,
    children: Option<Arc<Children>>,
}

impl User {
    /// A user whose nested lists are loaded on demand.
    pub fn from_row(row: impl Into<Box<UserRow>>) -> Self {
        User {
            row: row.into(),
            children: None,
        }
    }

    /// A user whose nested lists come from the same snapshot as the row.
    pub fn from_snapshot(snapshot: UserSnapshot) -> Self {
        User {
            row: Box::new(snapshot.user),
            children: Some(Arc::new(snapshot.children)),
        }
    }

    /// The nested list `pick` selects: from the snapshot, or through the loader.
    async fn nested<K, T>(
        &self,
        ctx: &Context<'_>,
        key: K,
        pick: impl FnOnce(&Children) -> &Vec<T>,
    ) -> Result<Vec<T>>
    where
        T: Clone + Send + Sync + 'static,
        K: Send + Sync + Clone + Eq + std::hash::Hash + 'static,
        ChildLoader: Loader<K, Value = Vec<T>, Error = Arc<crate::db::DbError>>,
    {
        if let Some(children) = &self.children {
            return Ok(pick(children).clone());
        }
        let loader = ctx.data::<RequestLoader>()?;
        let rows = loader.load_one(key).await.map_err(internal)?;
        Ok(rows.unwrap_or_default())
    }
}

/// A field the user's environment requires and the user has left empty.
#[derive(SimpleObject)]
pub struct MissingField {
    /// The field's name, as in `User` and the input types.
    pub field: String,
}

/// Whether the user field named `field` (one of
/// [`domain::REQUIRABLE_FIELDS`]) has no value; an empty `lists` or
/// `metadata` counts as none.
fn is_empty(user: &UserRow, field: &str) -> bool {
    match field {
        "lastVerifiedCredentialId" => user.last_verified_credential_id.is_none(),
        "scope" => user.scope.is_none(),
        "alias" => user.alias.is_none(),
        "firstName" => user.first_name.is_none(),
        "lastName" => user.last_name.is_none(),
        "jobTitle" => user.job_title.is_none(),
        "tShirtSize" => user.t_shirt_size.is_none(),
        "team" => user.team.is_none(),
        "country" => user.country.is_none(),
        "email" => user.email.is_none(),
        "phoneNumber" => user.phone_number.is_none(),
        "policiesConsent" => user.policies_consent.is_none(),
        "username" => user.username.is_none(),
        "metadata" => user
            .metadata
            .as_ref()
            .is_none_or(|m| m.0.as_object().is_some_and(|o| o.is_empty())),
        "mfaBackupCodeAcknowledgement" => user.mfa_backup_code_acknowledgement.is_none(),
        "btcWallet" => user.btc_wallet.is_none(),
        "kdaWallet" => user.kda_wallet.is_none(),
        "ltcWallet" => user.ltc_wallet.is_none(),
        "ckbWallet" => user.ckb_wallet.is_none(),
        "kasWallet" => user.kas_wallet.is_none(),
        "dogeWallet" => user.doge_wallet.is_none(),
        "emailNotification" => user.email_notification.is_none(),
        "discordNotification" => user.discord_notification.is_none(),
        "newsletterNotification" => user.newsletter_notification.is_none(),
        "lists" => user
            .lists
            .as_ref()
            .is_none_or(|l| l.0.as_array().is_some_and(|a| a.is_empty())),
        "walletPublicKey" => user.wallet_public_key.is_none(),
        "wallet" => user.wallet.is_none(),
        "chain" => user.chain.is_none(),
        _ => false,
    }
}

/// A user of an environment.
#[Object]
impl User {
    async fn id(&self) -> ID {
        id(self.row.id)
    }
    async fn project_environment_id(&self) -> ID {
        id(self.row.environment_id)
    }
    async fn last_verified_credential_id(&self) -> Option<String> {
        self.row
            .last_verified_credential_id
            .map(|id| id.0.to_string())
    }
    async fn verified_credentials(&self, ctx: &Context<'_>) -> Result<Vec<VerifiedCredentialRow>> {
        let key = VerifiedCredentialsOf(self.row.id.0);
        self.nested(ctx, key, |c| &c.verified_credentials).await
    }
    async fn session_id(&self) -> Option<ID> {
        self.row.session_id.map(id)
    }
    async fn scope(&self) -> Option<&str> {
        self.row.scope.as_deref()
    }
    async fn new_user(&self) -> bool {
        self.row.new_user
    }
    async fn first_visit(&self) -> Timestamp {
        Timestamp(self.row.first_visit.0)
    }
    async fn last_visit(&self) -> Timestamp {
        Timestamp(self.row.last_visit.0)
    }
    async fn alias(&self) -> Option<&str> {
        self.row.alias.as_deref()
    }
    async fn first_name(&self) -> Option<&str> {
        self.row.first_name.as_deref()
    }
    async fn last_name(&self) -> Option<&str> {
        self.row.last_name.as_deref()
    }
    async fn job_title(&self) -> Option<&str> {
        self.row.job_title.as_deref()
    }
    async fn t_shirt_size(&self) -> Option<&str> {
        self.row.t_shirt_size.as_deref()
    }
    async fn team(&self) -> Option<&str> {
        self.row.team.as_deref()
    }
    /// ISO 3166-1 alpha-2 code.
    async fn country(&self) -> Option<&str> {
        self.row.country.as_deref()
    }
    async fn email(&self) -> Option<&str> {
        self.row.email.as_deref()
    }
    /// E.164 number.
    async fn phone_number(&self) -> Option<&str> {
        self.row.phone_number.as_deref()
    }
    async fn policies_consent(&self) -> Option<bool> {
        self.row.policies_consent
    }
    async fn username(&self) -> Option<&str> {
        self.row.username.as_deref()
    }
    async fn metadata(&self) -> Option<JsonObject> {
        self.row.metadata.as_ref().map(|m| JsonObject(m.0.clone()))
    }
    async fn mfa_backup_code_acknowledgement(
        &self,
    ) -> Result<Option<MfaBackupCodeAcknowledgement>> {
        optional::<domain::MfaBackupCodeAcknowledgement, _>(
            &self.row.mfa_backup_code_acknowledgement,
        )
    }
    async fn btc_wallet(&self) -> Option<&str> {
        self.row.btc_wallet.as_deref()
    }
    async fn kda_wallet(&self) -> Option<&str> {
        self.row.kda_wallet.as_deref()
    }
    async fn ltc_wallet(&self) -> Option<&str> {
        self.row.ltc_wallet.as_deref()
    }
    async fn ckb_wallet(&self) -> Option<&str> {
        self.row.ckb_wallet.as_deref()
    }
    async fn kas_wallet(&self) -> Option<&str> {
        self.row.kas_wallet.as_deref()
    }
    async fn doge_wallet(&self) -> Option<&str> {
        self.row.doge_wallet.as_deref()
    }
    async fn email_notification(&self) -> Option<bool> {
        self.row.email_notification
    }
    async fn discord_notification(&self) -> Option<bool> {
        self.row.discord_notification
    }
    async fn newsletter_notification(&self) -> Option<bool> {
        self.row.newsletter_notification
    }
    /// The fields the user's environment requires that this user has left empty.
    async fn missing_fields(&self, ctx: &Context<'_>) -> Result<Vec<MissingField>> {
        let loader = ctx.data::<RequestLoader>()?;
        let environment = loader
            .load_one(EnvironmentOf(self.row.environment_id.0))
            .await
            .map_err(internal)?;
        let required: Vec<String> = match environment {
            Some(environment) => {
                serde_json::from_value(environment.required_fields.0).map_err(internal)?
            }
            None => Vec::new(),
        };
        Ok(required
            .into_iter()
            .filter(|field| is_empty(&self.row, field))
            .map(|field| MissingField { field })
            .collect())
    }
    async fn lists(&self) -> Result<Option<Vec<String>>> {
        self.row
            .lists
            .as_ref()
            .map(|lists| Vec::<String>::deserialize(&lists.0).map_err(internal))
            .transpose()
    }
    async fn wallet_public_key(&self) -> Option<&str> {
        self.row.wallet_public_key.as_deref()
    }
    async fn wallet(&self) -> Option<&str> {
        self.row.wallet.as_deref()
    }
    async fn chain(&self) -> Result<Option<Chain>> {
        optional::<domain::Chain, _>(&self.row.chain)
    }
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<SessionRow>> {
        self.nested(ctx, SessionsOf(self.row.id.0), |c| &c.sessions)
            .await
    }
    async fn wallets(&self, ctx: &Context<'_>) -> Result<Vec<WalletRow>> {
        self.nested(ctx, WalletsOf(self.row.id.0), |c| &c.wallets)
            .await
    }
    async fn chainalysis_checks(&self, ctx: &Context<'_>) -> Result<Vec<ChainalysisCheckRow>> {
        let key = ChainalysisChecksOf(self.row.id.0);
        self.nested(ctx, key, |c| &c.chainalysis_checks).await
    }
    async fn oauth_accounts(&self, ctx: &Context<'_>) -> Result<Vec<OauthAccountRow>> {
        self.nested(ctx, OauthAccountsOf(self.row.id.0), |c| &c.oauth_accounts)
            .await
    }
    async fn mfa_devices(&self, ctx: &Context<'_>) -> Result<Vec<MfaDeviceRow>> {
        self.nested(ctx, MfaDevicesOf(self.row.id.0), |c| &c.mfa_devices)
            .await
    }
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.row.created_at.0)
    }
    /// The version: send it back as `expectedUpdatedAt` to change this user.
    async fn updated_at(&self) -> Timestamp {
        Timestamp(self.row.updated_at.0)
    }
}

/// A credential that proved the user's identity.
#[Object(name = "VerifiedCredential")]
impl VerifiedCredentialRow {
    async fn id(&self) -> ID {
        id(self.id)
    }
    async fn format(&self) -> Result<CredentialFormat> {
        enums::stored::<domain::CredentialFormat, _>(&self.format)
    }
    /// The address, email, phone number or account name the credential proves.
    async fn public_identifier(&self) -> &str {
        &self.public_identifier
    }
    async fn chain(&self) -> Result<Option<Chain>> {
        optional::<domain::Chain, _>(&self.chain)
    }
    async fn wallet_name(&self) -> Option<&str> {
        self.wallet_name.as_deref()
    }
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.created_at.0)
    }
}

/// A wallet linked to the user.
#[Object(name = "Wallet")]
impl WalletRow {
    async fn id(&self) -> ID {
        id(self.id)
    }
    async fn name(&self) -> &str {
        &self.name
    }
    async fn chain(&self) -> Result<Chain> {
        enums::stored::<domain::Chain, _>(&self.chain)
    }
    async fn public_key(&self) -> &str {
        &self.public_key
    }
    async fn provider(&self) -> &str {
        &self.provider
    }
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.created_at.0)
    }
}

/// A sign-in session of the user.
#[Object(name = "Session")]
impl SessionRow {
    async fn id(&self) -> ID {
        id(self.id)
    }
    async fn ip_address(&self) -> Option<&str> {
        self.ip_address.as_deref()
    }
    async fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.created_at.0)
    }
    async fn expires_at(&self) -> Timestamp {
        Timestamp(self.expires_at.0)
    }
    /// When the session was revoked; null while it is usable.
    async fn revoked_at(&self) -> Option<Timestamp> {
        self.revoked_at.map(|t| Timestamp(t.0))
    }
}

/// A second-factor device of the user.
#[Object(name = "MfaDevice")]
impl MfaDeviceRow {
    async fn id(&self) -> ID {
        id(self.id)
    }
    #[graphql(name = "type")]
    async fn kind(&self) -> Result<MfaDeviceKind> {
        enums::stored::<domain::MfaDeviceKind, _>(&self.kind)
    }
    async fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// Whether this device is the one asked for first.
    async fn is_default(&self) -> bool {
        self.is_default
    }
    async fn verified_at(&self) -> Option<Timestamp> {
        self.verified_at.map(|t| Timestamp(t.0))
    }
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.created_at.0)
    }
}

/// An OAuth account linked to the user.
#[Object(name = "OAuthAccount")]
impl OauthAccountRow {
    async fn id(&self) -> ID {
        id(self.id)
    }
    async fn provider(&self) -> &str {
        &self.provider
    }
    async fn account_username(&self) -> Option<&str> {
        self.account_username.as_deref()
    }
    async fn account_email(&self) -> Option<&str> {
        self.account_email.as_deref()
    }
    async fn display_name(&self) -> Option<&str> {
        self.display_name.as_deref()
    }
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.created_at.0)
    }
}

/// A chainalysis screening of one of the user's wallets.
#[Object(name = "ChainalysisCheck")]
impl ChainalysisCheckRow {
    async fn id(&self) -> ID {
        id(self.id)
    }
    async fn wallet_public_key(&self) -> &str {
        &self.wallet_public_key
    }
    async fn risk_level(&self) -> Result<ChainalysisRisk> {
        enums::stored::<domain::ChainalysisRisk, _>(&self.risk_level)
    }
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.created_at.0)
    }
}

/// An object that can be fetched again by its id with `Query.node`.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Unique across all types."))]
pub enum Node {
    User(User),
    VerifiedCredential(VerifiedCredentialRow),
    Wallet(WalletRow),
    Session(SessionRow),
    MfaDevice(MfaDeviceRow),
    OAuthAccount(OauthAccountRow),
    ChainalysisCheck(ChainalysisCheckRow),
}

impl From<crate::repo::NodeRow> for Node {
    fn from(row: crate::repo::NodeRow) -> Self {
        use crate::repo::NodeRow;
        match row {
            NodeRow::User(row) => Node::User(User::from_row(row)),
            NodeRow::VerifiedCredential(row) => Node::VerifiedCredential(row),
            NodeRow::Wallet(row) => Node::Wallet(row),
            NodeRow::Session(row) => Node::Session(row),
            NodeRow::MfaDevice(row) => Node::MfaDevice(row),
            NodeRow::OauthAccount(row) => Node::OAuthAccount(row),
            NodeRow::ChainalysisCheck(row) => Node::ChainalysisCheck(row),
        }
    }
}
