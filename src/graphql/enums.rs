//! GraphQL faces of the domain's enums (same names, same values).

use async_graphql::Enum;

use crate::domain;

/// The blockchain a wallet or credential lives on.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::Chain")]
pub enum Chain {
    Eth,
    Evm,
    Flow,
    Sol,
    Algo,
    Stark,
    Cosmos,
    Btc,
    Eclipse,
    Sui,
    Spark,
    Tron,
    Aptos,
    Ton,
}

/// Whether the user has acknowledged their MFA backup codes.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::MfaBackupCodeAcknowledgement")]
pub enum MfaBackupCodeAcknowledgement {
    Pending,
    Complete,
}

/// How a verified credential proves the user's identity.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::CredentialFormat")]
pub enum CredentialFormat {
    Blockchain,
    Email,
    Oauth,
    PhoneNumber,
    Passkey,
}

/// The kind of a second-factor device.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::MfaDeviceKind")]
pub enum MfaDeviceKind {
    Totp,
    Passkey,
}

/// The risk a chainalysis screening assigned to a wallet.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::ChainalysisRisk")]
pub enum ChainalysisRisk {
    Low,
    Medium,
    High,
    Severe,
}
