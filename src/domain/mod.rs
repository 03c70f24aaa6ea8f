//! The user patch and its validation rules, free of GraphQL and SQL.
//!
//! Every rule of the field table in docs/DESIGN.md lives here, once: the GraphQL
//! layer only converts its input into a [`UserPatch`], and the repository
//! only supplies the stored facts that [`check_against_stored`] needs.

mod enums;
mod patch;
mod rules;
mod time;

pub use enums::{
    Chain, ChainalysisRisk, CredentialFormat, MfaBackupCodeAcknowledgement, MfaDeviceKind,
    UnknownVariant, UserOperation,
};
pub use patch::{check_against_stored, Patch, StoredFacts, UserPatch};
pub use rules::{ErrorCode, FieldError};
pub use time::{
    format_instant, next_updated_at, parse_instant, truncate_to_micros, INSTANT_EXPECTED,
};

/// The user fields an environment may require (GraphQL names): every
/// optional field a client can set. `User.missingFields` reports those of
/// them an environment requires and a user has left empty.
pub const REQUIRABLE_FIELDS: &[&str] = &[
    "lastVerifiedCredentialId",
    "scope",
    "alias",
    "firstName",
    "lastName",
    "jobTitle",
    "tShirtSize",
    "team",
    "country",
    "email",
    "phoneNumber",
    "policiesConsent",
    "username",
    "metadata",
    "mfaBackupCodeAcknowledgement",
    "btcWallet",
    "kdaWallet",
    "ltcWallet",
    "ckbWallet",
    "kasWallet",
    "dogeWallet",
    "emailNotification",
    "discordNotification",
    "newsletterNotification",
    "lists",
    "walletPublicKey",
    "wallet",
    "chain",
];
