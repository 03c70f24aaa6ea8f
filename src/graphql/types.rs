//! Object types: `User` and its nested records.

use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{Context, Interface, Lookahead, Object, Result, SimpleObject, ID};
use uuid::Uuid;

use super::enums::{
    Chain, ChainalysisRisk, CredentialFormat, MfaBackupCodeAcknowledgement, MfaDeviceKind,
};
use super::errors::repo_failure;
use super::history::{history_page, HistoryCursor, UserHistoryEntry};
use super::loaders::{EnvironmentOf, NestedOf, RequestLoader, NESTED_FIELDS};
use super::scalars::{JsonObject, Timestamp};
use crate::repo::{self, Children, Relation, UserSnapshot};

fn id(id: Uuid) -> ID {
    ID(id.to_string())
}

/// A user, with its nested lists either already read (mutation results, one
/// snapshot) or loaded on demand through the request's DataLoader.
pub struct User {
    // Boxed: a user is large, and results and `Node` hold users by value.
    user: Box<repo::User>,
    /// Nested lists read with the user, and which ones they are.
    children: Option<Arc<(Children, Vec<Relation>)>>,
}

impl User {
    /// A user whose nested lists are loaded on demand.
    pub fn new(user: impl Into<Box<repo::User>>) -> Self {
        User {
            user: user.into(),
            children: None,
        }
    }

    /// A user whose nested lists come from the same snapshot as the user
    /// (those it holds; any other is loaded on demand).
    pub fn from_snapshot(snapshot: UserSnapshot) -> Self {
        User {
            user: Box::new(snapshot.user),
            children: Some(Arc::new((snapshot.children, snapshot.loaded))),
        }
    }

    /// The nested list `pick` selects: from the snapshot, or through the loader.
    async fn nested<T: Clone>(
        &self,
        ctx: &Context<'_>,
        relation: Relation,
        pick: impl FnOnce(&Children) -> &Vec<T>,
    ) -> Result<Vec<T>> {
        if let Some((children, loaded)) = self.children.as_deref() {
            if loaded.contains(&relation) {
                return Ok(pick(children).clone());
            }
        }
        let loader = ctx.data::<RequestLoader>()?;
        let key = NestedOf {
            relation,
            user: self.user.id,
        };
        let children = loader.load_one(key).await.map_err(repo_failure)?;
        Ok(children.map(|c| pick(&c).clone()).unwrap_or_default())
    }
}

/// A field the user's environment requires and the user has left empty.
#[derive(SimpleObject)]
pub struct MissingField {
    /// The field's name, as in `User` and the input types.
    pub field: String,
}

/// A user of an environment.
#[Object]
impl User {
    /// The user's id (a UUID).
    async fn id(&self) -> ID {
        id(self.user.id)
    }
    /// The environment (tenant) the user belongs to.
    async fn project_environment_id(&self) -> ID {
        id(self.user.environment_id)
    }
    /// The credential the user last proved, one of `verifiedCredentials`.
    async fn last_verified_credential_id(&self) -> Option<String> {
        self.user
            .last_verified_credential_id
            .map(|id| id.to_string())
    }
    /// The credentials (wallets, emails, phone numbers, OAuth accounts, passkeys) the user has proved.
    async fn verified_credentials(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<repo::VerifiedCredential>> {
        self.nested(ctx, Relation::VerifiedCredentials, |c| {
            &c.verified_credentials
        })
        .await
    }
    /// The user's current session, one of `sessions`.
    async fn session_id(&self) -> Option<ID> {
        self.user.session_id.map(id)
    }
    /// The user's scope, as the application defines it.
    async fn scope(&self) -> Option<&str> {
        self.user.scope.as_deref()
    }
    /// Whether the user has not completed onboarding yet.
    async fn new_user(&self) -> bool {
        self.user.new_user
    }
    /// When the user first signed in.
    async fn first_visit(&self) -> Timestamp {
        Timestamp(self.user.first_visit)
    }
    /// When the user last signed in; never before `firstVisit`.
    async fn last_visit(&self) -> Timestamp {
        Timestamp(self.user.last_visit)
    }
    /// A name the user goes by.
    async fn alias(&self) -> Option<&str> {
        self.user.alias.as_deref()
    }
    /// The user's first name.
    async fn first_name(&self) -> Option<&str> {
        self.user.first_name.as_deref()
    }
    /// The user's last name.
    async fn last_name(&self) -> Option<&str> {
        self.user.last_name.as_deref()
    }
    /// The user's job title.
    async fn job_title(&self) -> Option<&str> {
        self.user.job_title.as_deref()
    }
    /// The user's T-shirt size.
    async fn t_shirt_size(&self) -> Option<&str> {
        self.user.t_shirt_size.as_deref()
    }
    /// The user's team.
    async fn team(&self) -> Option<&str> {
        self.user.team.as_deref()
    }
    /// ISO 3166-1 alpha-2 code.
    async fn country(&self) -> Option<&str> {
        self.user.country.as_deref()
    }
    /// The user's email address; unique within the environment, ignoring case.
    async fn email(&self) -> Option<&str> {
        self.user.email.as_deref()
    }
    /// E.164 number.
    async fn phone_number(&self) -> Option<&str> {
        self.user.phone_number.as_deref()
    }
    /// Whether the user accepted the environment's policies.
    async fn policies_consent(&self) -> Option<bool> {
        self.user.policies_consent
    }
    /// The user's username (letters, digits, `_`, `-`); unique within the environment, ignoring case.
    async fn username(&self) -> Option<&str> {
        self.user.username.as_deref()
    }
    /// Free-form data the application keeps on the user (a JSON object).
    async fn metadata(&self) -> Option<JsonObject> {
        self.user.metadata.clone().map(JsonObject)
    }
    /// Whether the user has acknowledged their MFA backup codes.
    async fn mfa_backup_code_acknowledgement(&self) -> Option<MfaBackupCodeAcknowledgement> {
        self.user.mfa_backup_code_acknowledgement.map(Into::into)
    }
    /// A Bitcoin wallet address of the user.
    async fn btc_wallet(&self) -> Option<&str> {
        self.user.btc_wallet.as_deref()
    }
    /// A Kadena wallet address of the user.
    async fn kda_wallet(&self) -> Option<&str> {
        self.user.kda_wallet.as_deref()
    }
    /// A Litecoin wallet address of the user.
    async fn ltc_wallet(&self) -> Option<&str> {
        self.user.ltc_wallet.as_deref()
    }
    /// A Nervos CKB wallet address of the user.
    async fn ckb_wallet(&self) -> Option<&str> {
        self.user.ckb_wallet.as_deref()
    }
    /// A Kaspa wallet address of the user.
    async fn kas_wallet(&self) -> Option<&str> {
        self.user.kas_wallet.as_deref()
    }
    /// A Dogecoin wallet address of the user.
    async fn doge_wallet(&self) -> Option<&str> {
        self.user.doge_wallet.as_deref()
    }
    /// Whether the user wants notifications by email.
    async fn email_notification(&self) -> Option<bool> {
        self.user.email_notification
    }
    /// Whether the user wants notifications on Discord.
    async fn discord_notification(&self) -> Option<bool> {
        self.user.discord_notification
    }
    /// Whether the user wants the newsletter.
    async fn newsletter_notification(&self) -> Option<bool> {
        self.user.newsletter_notification
    }
    /// The fields the user's environment requires that this user has left empty.
    async fn missing_fields(&self, ctx: &Context<'_>) -> Result<Vec<MissingField>> {
        let loader = ctx.data::<RequestLoader>()?;
        let environment = loader
            .load_one(EnvironmentOf(self.user.environment_id))
            .await
            .map_err(repo_failure)?;
        let required = environment.map(|e| e.required_fields).unwrap_or_default();
        Ok(required
            .into_iter()
            .filter(|field| self.user.is_empty(field))
            .map(|field| MissingField { field })
            .collect())
    }
    /// The lists (audiences, segments) the user is on.
    async fn lists(&self) -> Option<&[String]> {
        self.user.lists.as_deref()
    }
    /// The public key of the user's primary wallet.
    async fn wallet_public_key(&self) -> Option<&str> {
        self.user.wallet_public_key.as_deref()
    }
    /// The name of the user's primary wallet (the wallet software).
    async fn wallet(&self) -> Option<&str> {
        self.user.wallet.as_deref()
    }
    /// The chain of the user's primary wallet.
    async fn chain(&self) -> Option<Chain> {
        self.user.chain.map(Into::into)
    }
    /// The user's sign-in sessions, oldest first.
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<repo::Session>> {
        self.nested(ctx, Relation::Sessions, |c| &c.sessions).await
    }
    /// The wallets linked to the user, oldest first.
    async fn wallets(&self, ctx: &Context<'_>) -> Result<Vec<repo::Wallet>> {
        self.nested(ctx, Relation::Wallets, |c| &c.wallets).await
    }
    /// The chainalysis screenings of the user's wallets, oldest first.
    async fn chainalysis_checks(&self, ctx: &Context<'_>) -> Result<Vec<repo::ChainalysisCheck>> {
        self.nested(ctx, Relation::ChainalysisChecks, |c| &c.chainalysis_checks)
            .await
    }
    /// The OAuth accounts linked to the user, oldest first.
    async fn oauth_accounts(&self, ctx: &Context<'_>) -> Result<Vec<repo::OauthAccount>> {
        self.nested(ctx, Relation::OauthAccounts, |c| &c.oauth_accounts)
            .await
    }
    /// The user's second-factor devices, oldest first.
    async fn mfa_devices(&self, ctx: &Context<'_>) -> Result<Vec<repo::MfaDevice>> {
        self.nested(ctx, Relation::MfaDevices, |c| &c.mfa_devices)
            .await
    }
    /// When the user was created.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.user.created_at)
    }
    /// The version: send it back as `expectedUpdatedAt` to change this user.
    async fn updated_at(&self) -> Timestamp {
        Timestamp(self.user.updated_at)
    }
    /// The writes of this user, newest first, a page at a time (one
    /// statement per page: ask for it on one user, not on a page of users).
    #[graphql(complexity = "super::query::page_cost(first, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 0 to 100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page: start after it.")] after: Option<String>,
    ) -> Result<Connection<HistoryCursor, UserHistoryEntry>> {
        // Boxed: every field of a user is resolved in a future as large as
        // the largest field's, and this one's (a page read) was kilobytes,
        // copied for each field (docs/BENCHMARKS.md, "Statements rendered
        // once, and smaller futures").
        Box::pin(history_page(ctx, self.user.id, first, after)).await
    }
}

/// A credential that proved the user's identity.
#[Object(name = "VerifiedCredential")]
impl repo::VerifiedCredential {
    /// The credential's id.
    async fn id(&self) -> ID {
        id(self.id)
    }
    /// What kind of credential it is.
    async fn format(&self) -> CredentialFormat {
        self.format.into()
    }
    /// The address, email, phone number or account name the credential proves.
    async fn public_identifier(&self) -> &str {
        &self.public_identifier
    }
    /// The chain, for a blockchain credential.
    async fn chain(&self) -> Option<Chain> {
        self.chain.map(Into::into)
    }
    /// The wallet software, for a blockchain credential.
    async fn wallet_name(&self) -> Option<&str> {
        self.wallet_name.as_deref()
    }
    /// When the credential was proved.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.created_at)
    }
}

/// A wallet linked to the user.
#[Object(name = "Wallet")]
impl repo::Wallet {
    /// The wallet's id.
    async fn id(&self) -> ID {
        id(self.id)
    }
    /// The wallet software (e.g. metamask).
    async fn name(&self) -> &str {
        &self.name
    }
    /// The chain the wallet is on.
    async fn chain(&self) -> Chain {
        self.chain.into()
    }
    /// The wallet's address.
    async fn public_key(&self) -> &str {
        &self.public_key
    }
    /// How the wallet is held (e.g. browserExtension, embeddedWallet).
    async fn provider(&self) -> &str {
        &self.provider
    }
    /// When the wallet was linked.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.created_at)
    }
}

/// A sign-in session of the user.
#[Object(name = "Session")]
impl repo::Session {
    /// The session's id.
    async fn id(&self) -> ID {
        id(self.id)
    }
    /// The address the session was opened from.
    async fn ip_address(&self) -> Option<&str> {
        self.ip_address.as_deref()
    }
    /// The browser or app that opened the session.
    async fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }
    /// When the session was opened.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.created_at)
    }
    /// When the session stops being valid.
    async fn expires_at(&self) -> Timestamp {
        Timestamp(self.expires_at)
    }
    /// When the session was revoked; null while it is usable.
    async fn revoked_at(&self) -> Option<Timestamp> {
        self.revoked_at.map(Timestamp)
    }
}

/// A second-factor device of the user.
#[Object(name = "MfaDevice")]
impl repo::MfaDevice {
    /// The device's id.
    async fn id(&self) -> ID {
        id(self.id)
    }
    /// What kind of device it is.
    #[graphql(name = "type")]
    async fn kind(&self) -> MfaDeviceKind {
        self.kind.into()
    }
    /// A name the user gave the device.
    async fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// Whether this device is the one asked for first.
    async fn is_default(&self) -> bool {
        self.is_default
    }
    /// When the device was verified; null until it is.
    async fn verified_at(&self) -> Option<Timestamp> {
        self.verified_at.map(Timestamp)
    }
    /// When the device was added.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.created_at)
    }
}

/// An OAuth account linked to the user.
#[Object(name = "OAuthAccount")]
impl repo::OauthAccount {
    /// The account's id.
    async fn id(&self) -> ID {
        id(self.id)
    }
    /// The OAuth provider (e.g. google, github).
    async fn provider(&self) -> &str {
        &self.provider
    }
    /// The username at the provider.
    async fn account_username(&self) -> Option<&str> {
        self.account_username.as_deref()
    }
    /// The email address at the provider.
    async fn account_email(&self) -> Option<&str> {
        self.account_email.as_deref()
    }
    /// The display name at the provider.
    async fn display_name(&self) -> Option<&str> {
        self.display_name.as_deref()
    }
    /// When the account was linked.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.created_at)
    }
}

/// A chainalysis screening of one of the user's wallets.
#[Object(name = "ChainalysisCheck")]
impl repo::ChainalysisCheck {
    /// The check's id.
    async fn id(&self) -> ID {
        id(self.id)
    }
    /// The address of the wallet screened.
    async fn wallet_public_key(&self) -> &str {
        &self.wallet_public_key
    }
    /// The risk chainalysis assessed.
    async fn risk_level(&self) -> ChainalysisRisk {
        self.risk_level.into()
    }
    /// When the check ran.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.created_at)
    }
}

/// An object that can be fetched again by its id with `Query.node`.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Unique across all types."))]
pub enum Node {
    User(User),
    VerifiedCredential(repo::VerifiedCredential),
    Wallet(repo::Wallet),
    Session(repo::Session),
    MfaDevice(repo::MfaDevice),
    OAuthAccount(repo::OauthAccount),
    ChainalysisCheck(repo::ChainalysisCheck),
}

impl From<repo::Node> for Node {
    fn from(node: repo::Node) -> Self {
        match node {
            repo::Node::User(user) => Node::User(User::new(user)),
            repo::Node::VerifiedCredential(record) => Node::VerifiedCredential(record),
            repo::Node::Wallet(record) => Node::Wallet(record),
            repo::Node::Session(record) => Node::Session(record),
            repo::Node::MfaDevice(record) => Node::MfaDevice(record),
            repo::Node::OauthAccount(record) => Node::OAuthAccount(record),
            repo::Node::ChainalysisCheck(record) => Node::ChainalysisCheck(record),
        }
    }
}

/// The nested lists that `user`, a selection of `User` fields, asks for.
pub fn selected_relations(user: &Lookahead<'_>) -> Vec<Relation> {
    NESTED_FIELDS
        .iter()
        .filter(|(field, _)| user.field(field).exists())
        .map(|(_, relation)| *relation)
        .collect()
}
