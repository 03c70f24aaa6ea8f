//! Closed sets of values, stored as their upper-case names.

/// A stored enum text that names no variant (a corrupt row, never user input).
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} value {value:?}")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and GraphQL) name of this variant.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownVariant { kind: stringify!($name), value: text.to_owned() }),
                }
            }
        }
    };
}

text_enum!(
    /// The blockchain a wallet or credential lives on.
    Chain {
        Eth = "ETH", Evm = "EVM", Flow = "FLOW", Sol = "SOL", Algo = "ALGO", Stark = "STARK",
        Cosmos = "COSMOS", Btc = "BTC", Eclipse = "ECLIPSE", Sui = "SUI", Spark = "SPARK",
        Tron = "TRON", Aptos = "APTOS", Ton = "TON",
    }
);

text_enum!(
    /// Whether the user has acknowledged their MFA backup codes.
    MfaBackupCodeAcknowledgement { Pending = "PENDING", Complete = "COMPLETE" }
);

text_enum!(
    /// How a verified credential proves the user's identity.
    CredentialFormat {
        Blockchain = "BLOCKCHAIN", Email = "EMAIL", Oauth = "OAUTH",
        PhoneNumber = "PHONE_NUMBER", Passkey = "PASSKEY",
    }
);

text_enum!(
    /// The kind of a second-factor device.
    MfaDeviceKind { Totp = "TOTP", Passkey = "PASSKEY" }
);

text_enum!(
    /// The risk a chainalysis screening assigned to a wallet.
    ChainalysisRisk { Low = "LOW", Medium = "MEDIUM", High = "HIGH", Severe = "SEVERE" }
);

text_enum!(
    /// What a write did to a user, as its history entry names it.
    UserOperation {
        Create = "CREATE", Update = "UPDATE", RevokeSession = "REVOKE_SESSION",
        RemoveMfaDevice = "REMOVE_MFA_DEVICE", SetDefaultMfaDevice = "SET_DEFAULT_MFA_DEVICE",
        Delete = "DELETE",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_through_its_text() {
        for chain in Chain::ALL {
            assert_eq!(chain.as_str().parse::<Chain>().unwrap(), *chain);
        }
        assert!("eth".parse::<Chain>().is_err());
    }
}
