//! Input types: GraphQL's three states of a field map onto [`Patch`].

use async_graphql::{InputObject, MaybeUndefined};

use super::enums::{Chain, MfaBackupCodeAcknowledgement};
use super::scalars::{JsonObject, Timestamp};
use crate::domain::{Patch, UserPatch};

/// A partial update: leave a field out to keep it, send `null` to clear it,
/// send a value to set it. Every rule is checked and all failures are
/// reported together in `ValidationFailed`.
#[derive(InputObject, Debug, Default)]
pub struct UpdateUserInput {
    /// Must name one of the user's verified credentials.
    pub last_verified_credential_id: MaybeUndefined<String>,
    pub scope: MaybeUndefined<String>,
    /// Cannot be null.
    pub new_user: MaybeUndefined<bool>,
    /// Cannot be null.
    pub first_visit: MaybeUndefined<Timestamp>,
    /// Cannot be null; not earlier than firstVisit.
    pub last_visit: MaybeUndefined<Timestamp>,
    pub alias: MaybeUndefined<String>,
    pub first_name: MaybeUndefined<String>,
    pub last_name: MaybeUndefined<String>,
    pub job_title: MaybeUndefined<String>,
    pub t_shirt_size: MaybeUndefined<String>,
    pub team: MaybeUndefined<String>,
    /// ISO 3166-1 alpha-2 code.
    pub country: MaybeUndefined<String>,
    /// Unique within the environment, ignoring case.
    pub email: MaybeUndefined<String>,
    /// E.164: '+' then 2 to 15 digits, the first not 0.
    pub phone_number: MaybeUndefined<String>,
    pub policies_consent: MaybeUndefined<bool>,
    /// Letters, digits, '_' and '-'; unique within the environment, ignoring case.
    pub username: MaybeUndefined<String>,
    /// A JSON object of at most 16 KiB.
    pub metadata: MaybeUndefined<JsonObject>,
    pub mfa_backup_code_acknowledgement: MaybeUndefined<MfaBackupCodeAcknowledgement>,
    pub btc_wallet: MaybeUndefined<String>,
    pub kda_wallet: MaybeUndefined<String>,
    pub ltc_wallet: MaybeUndefined<String>,
    pub ckb_wallet: MaybeUndefined<String>,
    pub kas_wallet: MaybeUndefined<String>,
    pub doge_wallet: MaybeUndefined<String>,
    pub email_notification: MaybeUndefined<bool>,
    pub discord_notification: MaybeUndefined<bool>,
    pub newsletter_notification: MaybeUndefined<bool>,
    /// At most 100 entries, none blank.
    pub lists: MaybeUndefined<Vec<String>>,
    pub wallet_public_key: MaybeUndefined<String>,
    pub wallet: MaybeUndefined<String>,
    pub chain: MaybeUndefined<Chain>,
}

fn patch<T, U>(value: MaybeUndefined<T>, convert: impl FnOnce(T) -> U) -> Patch<U> {
    match value {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(value) => Patch::Set(convert(value)),
    }
}

fn same<T>(value: MaybeUndefined<T>) -> Patch<T> {
    patch(value, |v| v)
}

impl UpdateUserInput {
    /// The unvalidated patch this input asks for.
    pub fn into_patch(self) -> UserPatch<String> {
        UserPatch {
            last_verified_credential_id: same(self.last_verified_credential_id),
            scope: same(self.scope),
            new_user: same(self.new_user),
            first_visit: patch(self.first_visit, |t| t.0),
            last_visit: patch(self.last_visit, |t| t.0),
            alias: same(self.alias),
            first_name: same(self.first_name),
            last_name: same(self.last_name),
            job_title: same(self.job_title),
            t_shirt_size: same(self.t_shirt_size),
            team: same(self.team),
            country: same(self.country),
            email: same(self.email),
            phone_number: same(self.phone_number),
            policies_consent: same(self.policies_consent),
            username: same(self.username),
            metadata: patch(self.metadata, |m| m.0),
            mfa_backup_code_acknowledgement: patch(
                self.mfa_backup_code_acknowledgement,
                Into::into,
            ),
            btc_wallet: same(self.btc_wallet),
            kda_wallet: same(self.kda_wallet),
            ltc_wallet: same(self.ltc_wallet),
            ckb_wallet: same(self.ckb_wallet),
            kas_wallet: same(self.kas_wallet),
            doge_wallet: same(self.doge_wallet),
            email_notification: same(self.email_notification),
            discord_notification: same(self.discord_notification),
            newsletter_notification: same(self.newsletter_notification),
            lists: same(self.lists),
            wallet_public_key: same(self.wallet_public_key),
            wallet: same(self.wallet),
            chain: patch(self.chain, Into::into),
        }
    }
}
