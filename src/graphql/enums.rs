//! GraphQL faces of the domain's enums (same names, same values).

use async_graphql::Enum;

use crate::domain;

/// The blockchain a wallet or credential lives on.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::Chain")]
pub enum Chain {
    /// Ethereum.
    Eth,
    /// Another EVM-compatible chain.
    Evm,
    /// Flow.
    Flow,
    /// Solana.
    Sol,
    /// Algorand.
    Algo,
    /// Starknet.
    Stark,
    /// Cosmos.
    Cosmos,
    /// Bitcoin.
    Btc,
    /// Eclipse.
    Eclipse,
    /// Sui.
    Sui,
    /// Spark.
    Spark,
    /// Tron.
    Tron,
    /// Aptos.
    Aptos,
    /// TON.
    Ton,
}

/// Whether the user has acknowledged their MFA backup codes.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::MfaBackupCodeAcknowledgement")]
pub enum MfaBackupCodeAcknowledgement {
    /// Backup codes shown, not yet acknowledged.
    Pending,
    /// Backup codes acknowledged.
    Complete,
}

/// How a verified credential proves the user's identity.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::CredentialFormat")]
pub enum CredentialFormat {
    /// A wallet's signature.
    Blockchain,
    /// An email address, by a code sent to it.
    Email,
    /// An account at an OAuth provider.
    Oauth,
    /// A phone number, by a code sent to it.
    PhoneNumber,
    /// A passkey (WebAuthn).
    Passkey,
}

/// The kind of a second-factor device.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::MfaDeviceKind")]
pub enum MfaDeviceKind {
    /// An authenticator app (time-based one-time passwords).
    Totp,
    /// A passkey (WebAuthn).
    Passkey,
}

/// The risk a chainalysis screening assigned to a wallet.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::ChainalysisRisk")]
pub enum ChainalysisRisk {
    /// Low risk.
    Low,
    /// Medium risk.
    Medium,
    /// High risk.
    High,
    /// Severe risk.
    Severe,
}

/// What a write did to a user: `UserHistoryEntry.operation`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::UserOperation")]
pub enum UserOperation {
    /// `createUser`.
    Create,
    /// `updateUser`.
    Update,
    /// `revokeSession`.
    RevokeSession,
    /// `removeMfaDevice`.
    RemoveMfaDevice,
    /// `setDefaultMfaDevice`.
    SetDefaultMfaDevice,
    /// `deleteUser`.
    Delete,
}

/// What `updateUser` does when the user changed since `expectedUpdatedAt`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[graphql(remote = "crate::repo::ConflictPolicy")]
pub enum OnConflict {
    /// Answer `UpdateConflict`; nothing is written.
    #[default]
    Fail,
    /// When none of the fields the input sets or clears changed since
    /// `expectedUpdatedAt` (as the history kept shows), apply the input to
    /// the current version and answer `UpdateUserSuccess` with `merged:
    /// true`; otherwise answer `UpdateConflict`.
    MergeIfDisjoint,
}

/// Why an input field was refused: `FieldError.code`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::ErrorCode")]
pub enum FieldErrorCode {
    /// `null` on a field that cannot be empty (`newUser`, `firstVisit`, `lastVisit`).
    Required,
    /// Empty or only white space.
    Blank,
    /// Longer than the field allows (255 characters).
    TooLong,
    /// More than 100 `lists` entries.
    TooMany,
    /// `metadata` larger than 16 KiB as JSON.
    TooLarge,
    /// Not an email address.
    InvalidEmail,
    /// Not an E.164 number.
    InvalidPhoneNumber,
    /// Not an ISO 3166-1 alpha-2 code.
    InvalidCountry,
    /// A character other than letters, digits, `_` and `-`.
    InvalidUsername,
    /// `metadata` that is not a JSON object.
    NotAnObject,
    /// `lastVisit` earlier than `firstVisit`.
    BeforeFirstVisit,
    /// `lastVerifiedCredentialId` names none of the user's verified credentials.
    UnknownCredential,
    /// Another user of the environment has this email or username (ignoring case).
    Taken,
    /// The id names no record of this user.
    NotFound,
    /// U+0000 anywhere, or a control or invisible character in an email.
    InvalidCharacter,
    /// REST only: the body names a field the input does not have.
    UnknownField,
    /// REST only: the value is not of the field's type.
    InvalidValue,
}

#[cfg(test)]
mod tests {
    use async_graphql::resolver_utils::EnumType;

    use super::*;

    /// REST writes `ErrorCode::as_str`; GraphQL derives value names: one code.
    #[test]
    fn field_error_codes_have_one_spelling() {
        for item in FieldErrorCode::items() {
            assert_eq!(domain::ErrorCode::from(item.value).as_str(), item.name);
        }
    }
}
