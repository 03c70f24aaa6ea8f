//! Input types: GraphQL's three states of a field map onto [`Patch`].

use async_graphql::{InputObject, MaybeUndefined};

use super::enums::{Chain, MfaBackupCodeAcknowledgement};
use super::scalars::{JsonObject, Timestamp};
use crate::domain::{Patch, UserPatch};

/// Declares a user input type: the given leading fields, then every field a
/// client may set on a user, with `into_patch` mapping all of them onto a
/// [`UserPatch`] (`$credential` supplies `lastVerifiedCredentialId`).
macro_rules! user_input {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$field_meta:meta])* $field:ident: $ty:ty,)* }
        |$input:ident| credential: $credential:expr
    ) => {
        $(#[$meta])*
        #[derive(InputObject, Debug, Default)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
            /// The user's scope, as the application defines it; at most 255 characters, not blank.
            pub scope: MaybeUndefined<String>,
            /// Cannot be null.
            pub new_user: MaybeUndefined<bool>,
            /// Cannot be null.
            pub first_visit: MaybeUndefined<Timestamp>,
            /// Cannot be null; not earlier than firstVisit.
            pub last_visit: MaybeUndefined<Timestamp>,
            /// A name the user goes by; at most 255 characters, not blank.
            pub alias: MaybeUndefined<String>,
            /// The user's first name; at most 255 characters, not blank.
            pub first_name: MaybeUndefined<String>,
            /// The user's last name; at most 255 characters, not blank.
            pub last_name: MaybeUndefined<String>,
            /// The user's job title; at most 255 characters, not blank.
            pub job_title: MaybeUndefined<String>,
            /// The user's T-shirt size; at most 255 characters, not blank.
            pub t_shirt_size: MaybeUndefined<String>,
            /// The user's team; at most 255 characters, not blank.
            pub team: MaybeUndefined<String>,
            /// ISO 3166-1 alpha-2 code.
            pub country: MaybeUndefined<String>,
            /// Unique within the environment, ignoring case.
            pub email: MaybeUndefined<String>,
            /// E.164: '+' then 2 to 15 digits, the first not 0.
            pub phone_number: MaybeUndefined<String>,
            /// Whether the user accepted the environment's policies.
            pub policies_consent: MaybeUndefined<bool>,
            /// Letters, digits, '_' and '-'; unique within the environment, ignoring case.
            pub username: MaybeUndefined<String>,
            /// A JSON object of at most 16 KiB.
            pub metadata: MaybeUndefined<JsonObject>,
            /// Whether the user has acknowledged their MFA backup codes.
            pub mfa_backup_code_acknowledgement: MaybeUndefined<MfaBackupCodeAcknowledgement>,
            /// A Bitcoin wallet address; at most 255 characters, not blank.
            pub btc_wallet: MaybeUndefined<String>,
            /// A Kadena wallet address; at most 255 characters, not blank.
            pub kda_wallet: MaybeUndefined<String>,
            /// A Litecoin wallet address; at most 255 characters, not blank.
            pub ltc_wallet: MaybeUndefined<String>,
            /// A Nervos CKB wallet address; at most 255 characters, not blank.
            pub ckb_wallet: MaybeUndefined<String>,
            /// A Kaspa wallet address; at most 255 characters, not blank.
            pub kas_wallet: MaybeUndefined<String>,
            /// A Dogecoin wallet address; at most 255 characters, not blank.
            pub doge_wallet: MaybeUndefined<String>,
            /// Whether the user wants notifications by email.
            pub email_notification: MaybeUndefined<bool>,
            /// Whether the user wants notifications on Discord.
            pub discord_notification: MaybeUndefined<bool>,
            /// Whether the user wants the newsletter.
            pub newsletter_notification: MaybeUndefined<bool>,
            /// At most 100 entries, none blank.
            pub lists: MaybeUndefined<Vec<String>>,
            /// The public key of the user's primary wallet; at most 255 characters, not blank.
            pub wallet_public_key: MaybeUndefined<String>,
            /// The name of the user's primary wallet; at most 255 characters, not blank.
            pub wallet: MaybeUndefined<String>,
            /// The chain of the user's primary wallet.
            pub chain: MaybeUndefined<Chain>,
        }

        impl $name {
            /// The unvalidated patch this input asks for.
            pub fn into_patch(self) -> UserPatch<String> {
                let $input = self;
                UserPatch {
                    last_verified_credential_id: $credential,
                    scope: same($input.scope),
                    new_user: same($input.new_user),
                    first_visit: patch($input.first_visit, |t| t.0),
                    last_visit: patch($input.last_visit, |t| t.0),
                    alias: same($input.alias),
                    first_name: same($input.first_name),
                    last_name: same($input.last_name),
                    job_title: same($input.job_title),
                    t_shirt_size: same($input.t_shirt_size),
                    team: same($input.team),
                    country: same($input.country),
                    email: same($input.email),
                    phone_number: same($input.phone_number),
                    policies_consent: same($input.policies_consent),
                    username: same($input.username),
                    metadata: patch($input.metadata, |m| m.0),
                    mfa_backup_code_acknowledgement: patch(
                        $input.mfa_backup_code_acknowledgement,
                        Into::into,
                    ),
                    btc_wallet: same($input.btc_wallet),
                    kda_wallet: same($input.kda_wallet),
                    ltc_wallet: same($input.ltc_wallet),
                    ckb_wallet: same($input.ckb_wallet),
                    kas_wallet: same($input.kas_wallet),
                    doge_wallet: same($input.doge_wallet),
                    email_notification: same($input.email_notification),
                    discord_notification: same($input.discord_notification),
                    newsletter_notification: same($input.newsletter_notification),
                    lists: same($input.lists),
                    wallet_public_key: same($input.wallet_public_key),
                    wallet: same($input.wallet),
                    chain: patch($input.chain, Into::into),
                }
            }
        }
    };
}

user_input!(
    /// A partial update: leave a field out to keep it, send `null` to clear it,
    /// send a value to set it. Every rule is checked and all failures are
    /// reported together in `ValidationFailed`.
    UpdateUserInput {
        /// Must name one of the user's verified credentials.
        last_verified_credential_id: MaybeUndefined<String>,
    }
    |input| credential: same(input.last_verified_credential_id)
);

user_input!(
    /// A new user: every field is optional; `newUser` defaults to true and
    /// `firstVisit`/`lastVisit` to now. The rules are those of `updateUser`.
    CreateUserInput {}
    |input| credential: Patch::Keep
);

/// Selects users; every given condition must hold.
#[derive(InputObject, Debug, Default)]
pub struct UserFilter {
    /// Exact email, ignoring case.
    pub email: Option<String>,
    /// Exact username, ignoring case.
    pub username: Option<String>,
    /// Created strictly after this instant.
    pub created_after: Option<Timestamp>,
    /// Created strictly before this instant.
    pub created_before: Option<Timestamp>,
}

impl From<UserFilter> for crate::repo::UserFilter {
    fn from(filter: UserFilter) -> Self {
        crate::repo::UserFilter {
            email: filter.email,
            username: filter.username,
            created_after: filter.created_after.map(|t| t.0),
            created_before: filter.created_before.map(|t| t.0),
        }
    }
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
