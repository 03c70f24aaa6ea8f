//! A partial update of a user: each field absent, cleared or set.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::enums::{Chain, MfaBackupCodeAcknowledgement};
use super::rules::{self, ErrorCode, FieldError};

/// One field of a partial update.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    /// Absent from the input: leave the stored value as it is.
    #[default]
    Keep,
    /// `null` in the input: clear the stored value.
    Clear,
    /// A value in the input: store it.
    Set(T),
}

impl<T> Patch<T> {
    /// True when the field was absent from the input.
    pub fn is_keep(&self) -> bool {
        matches!(self, Patch::Keep)
    }

    /// The value being set, if any.
    pub fn as_set(&self) -> Option<&T> {
        match self {
            Patch::Set(value) => Some(value),
            _ => None,
        }
    }

    /// `None` to leave the column alone, `Some(None)` to clear it.
    pub fn into_change(self) -> Option<Option<T>> {
        match self {
            Patch::Keep => None,
            Patch::Clear => Some(None),
            Patch::Set(value) => Some(Some(value)),
        }
    }
}

/// A partial update of the updatable user fields.
///
/// `C` is how `lastVerifiedCredentialId` is held: the client's text before
/// [`UserPatch::check`], a UUID after it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPatch<C = Uuid> {
    pub last_verified_credential_id: Patch<C>,
    pub scope: Patch<String>,
    pub new_user: Patch<bool>,
    pub first_visit: Patch<DateTime<Utc>>,
    pub last_visit: Patch<DateTime<Utc>>,
    pub alias: Patch<String>,
    pub first_name: Patch<String>,
    pub last_name: Patch<String>,
    pub job_title: Patch<String>,
    pub t_shirt_size: Patch<String>,
    pub team: Patch<String>,
    pub country: Patch<String>,
    pub email: Patch<String>,
    pub phone_number: Patch<String>,
    pub policies_consent: Patch<bool>,
    pub username: Patch<String>,
    pub metadata: Patch<serde_json::Value>,
    pub mfa_backup_code_acknowledgement: Patch<MfaBackupCodeAcknowledgement>,
    pub btc_wallet: Patch<String>,
    pub kda_wallet: Patch<String>,
    pub ltc_wallet: Patch<String>,
    pub ckb_wallet: Patch<String>,
    pub kas_wallet: Patch<String>,
    pub doge_wallet: Patch<String>,
    pub email_notification: Patch<bool>,
    pub discord_notification: Patch<bool>,
    pub newsletter_notification: Patch<bool>,
    pub lists: Patch<Vec<String>>,
    pub wallet_public_key: Patch<String>,
    pub wallet: Patch<String>,
    pub chain: Patch<Chain>,
}

/// Collects the errors of every field while checking them one by one.
struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    /// Applies `rule` to a set value; `null` is allowed.
    fn nullable<T, U>(
        &mut self,
        field: &'static str,
        patch: Patch<T>,
        rule: impl FnOnce(T) -> Result<U, (ErrorCode, String)>,
    ) -> Patch<U> {
        match patch {
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
            Patch::Set(value) => match rule(value) {
                Ok(value) => Patch::Set(value),
                Err((code, message)) => {
                    self.errors.push(FieldError::new(field, code, message));
                    Patch::Keep
                }
            },
        }
    }

    /// Refuses `null`: the field cannot be empty.
    fn required<T>(&mut self, field: &'static str, patch: Patch<T>) -> Patch<T> {
        if let Patch::Clear = patch {
            self.errors.push(FieldError::new(
                field,
                ErrorCode::Required,
                "must not be null",
            ));
            return Patch::Keep;
        }
        patch
    }
}

impl UserPatch<String> {
    /// Checks every field on its own and returns the patch of the fields
    /// that passed, with every failure.
    ///
    /// The patch holds normalised values (country codes in upper case,
    /// credential ids parsed), so the rules that depend on the stored user
    /// ([`check_against_stored`]) can still run on the valid fields and the
    /// client learns of every error at once.
    pub fn check(self) -> (UserPatch, Vec<FieldError>) {
        let mut c = Checker { errors: Vec::new() };
        let text = rules::short_text;
        let patch = UserPatch {
            last_verified_credential_id: c.nullable(
                "lastVerifiedCredentialId",
                self.last_verified_credential_id,
                rules::credential_id,
            ),
            scope: c.nullable("scope", self.scope, text),
            new_user: c.required("newUser", self.new_user),
            first_visit: c.required("firstVisit", self.first_visit),
            last_visit: c.required("lastVisit", self.last_visit),
            alias: c.nullable("alias", self.alias, text),
            first_name: c.nullable("firstName", self.first_name, text),
            last_name: c.nullable("lastName", self.last_name, text),
            job_title: c.nullable("jobTitle", self.job_title, text),
            t_shirt_size: c.nullable("tShirtSize", self.t_shirt_size, text),
            team: c.nullable("team", self.team, text),
            country: c.nullable("country", self.country, rules::country),
            email: c.nullable("email", self.email, rules::email),
            phone_number: c.nullable("phoneNumber", self.phone_number, rules::phone_number),
            policies_consent: self.policies_consent,
            username: c.nullable("username", self.username, rules::username),
            metadata: c.nullable("metadata", self.metadata, rules::metadata),
            mfa_backup_code_acknowledgement: self.mfa_backup_code_acknowledgement,
            btc_wallet: c.nullable("btcWallet", self.btc_wallet, text),
            kda_wallet: c.nullable("kdaWallet", self.kda_wallet, text),
            ltc_wallet: c.nullable("ltcWallet", self.ltc_wallet, text),
            ckb_wallet: c.nullable("ckbWallet", self.ckb_wallet, text),
            kas_wallet: c.nullable("kasWallet", self.kas_wallet, text),
            doge_wallet: c.nullable("dogeWallet", self.doge_wallet, text),
            email_notification: self.email_notification,
            discord_notification: self.discord_notification,
            newsletter_notification: self.newsletter_notification,
            lists: c.nullable("lists", self.lists, rules::lists),
            wallet_public_key: c.nullable("walletPublicKey", self.wallet_public_key, text),
            wallet: c.nullable("wallet", self.wallet, text),
            chain: self.chain,
        };
        (patch, c.errors)
    }
}

impl UserPatch {
    /// True when the input named no field at all (a valid no-op).
    pub fn is_empty(&self) -> bool {
        *self == UserPatch::default()
    }
}

/// What the rules that span fields or users need to know of the stored state.
#[derive(Debug, Clone)]
pub struct StoredFacts {
    pub first_visit: DateTime<Utc>,
    pub last_visit: DateTime<Utc>,
    /// Ids of the user's verified credentials.
    pub credential_ids: Vec<Uuid>,
    /// Another user of the environment has the email being set (ignoring case).
    pub email_taken: bool,
    /// Another user of the environment has the username being set (ignoring case).
    pub username_taken: bool,
}

impl UserPatch {
    /// Whether [`check_against_stored`] can refuse this patch: only then
    /// must a write read the stored user (and other users) before it.
    pub fn needs_stored_facts(&self) -> bool {
        !self.first_visit.is_keep()
            || !self.last_visit.is_keep()
            || self.last_verified_credential_id.as_set().is_some()
            || self.email.as_set().is_some()
            || self.username.as_set().is_some()
    }
}

/// The rules that depend on the stored user and its environment.
pub fn check_against_stored(patch: &UserPatch, stored: &StoredFacts) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let first_visit = patch.first_visit.as_set().unwrap_or(&stored.first_visit);
    let last_visit = patch.last_visit.as_set().unwrap_or(&stored.last_visit);
    if last_visit < first_visit {
        // Blame the field the client changed; with both changed, lastVisit.
        let field = if patch.last_visit.is_keep() {
            "firstVisit"
        } else {
            "lastVisit"
        };
        errors.push(FieldError::new(
            field,
            ErrorCode::BeforeFirstVisit,
            "lastVisit must not be earlier than firstVisit",
        ));
    }
    if let Some(id) = patch.last_verified_credential_id.as_set() {
        if !stored.credential_ids.contains(id) {
            let (code, message) = rules::unknown_credential();
            errors.push(FieldError::new("lastVerifiedCredentialId", code, message));
        }
    }
    if stored.email_taken {
        errors.push(FieldError::new(
            "email",
            ErrorCode::Taken,
            "is already used by another user",
        ));
    }
    if stored.username_taken {
        errors.push(FieldError::new(
            "username",
            ErrorCode::Taken,
            "is already used by another user",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> UserPatch<String> {
        UserPatch::default()
    }

    impl UserPatch<String> {
        fn validate(self) -> Result<UserPatch, Vec<FieldError>> {
            match self.check() {
                (patch, errors) if errors.is_empty() => Ok(patch),
                (_, errors) => Err(errors),
            }
        }
    }

    fn codes(errors: &[FieldError]) -> Vec<(&'static str, &'static str)> {
        errors.iter().map(|e| (e.field, e.code.as_str())).collect()
    }

    fn facts() -> StoredFacts {
        StoredFacts {
            first_visit: "2026-01-01T00:00:00Z".parse().unwrap(),
            last_visit: "2026-02-01T00:00:00Z".parse().unwrap(),
            credential_ids: vec![Uuid::from_u128(7)],
            email_taken: false,
            username_taken: false,
        }
    }

    #[test]
    fn empty_input_is_a_valid_no_op() {
        assert!(input().validate().unwrap().is_empty());
    }

    #[test]
    fn null_on_a_required_field_is_refused() {
        let patch = UserPatch {
            new_user: Patch::Clear,
            first_visit: Patch::Clear,
            last_visit: Patch::Clear,
            ..input()
        };
        assert_eq!(
            codes(&patch.validate().unwrap_err()),
            [
                ("newUser", "REQUIRED"),
                ("firstVisit", "REQUIRED"),
                ("lastVisit", "REQUIRED")
            ]
        );
    }

    #[test]
    fn null_clears_nullable_fields() {
        let patch = UserPatch {
            first_name: Patch::Clear,
            metadata: Patch::Clear,
            ..input()
        };
        let valid = patch.validate().unwrap();
        assert_eq!(valid.first_name, Patch::Clear);
        assert_eq!(valid.metadata, Patch::Clear);
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let patch = UserPatch {
            first_name: Patch::Set("  ".into()),
            email: Patch::Set("nope".into()),
            phone_number: Patch::Set("12345".into()),
            country: Patch::Set("ZZ".into()),
            lists: Patch::Set(vec!["ok".into(), "".into()]),
            metadata: Patch::Set(serde_json::json!([1, 2])),
            username: Patch::Set("a b".into()),
            ..input()
        };
        assert_eq!(
            codes(&patch.validate().unwrap_err()),
            [
                ("firstName", "BLANK"),
                ("country", "INVALID_COUNTRY"),
                ("email", "INVALID_EMAIL"),
                ("phoneNumber", "INVALID_PHONE_NUMBER"),
                ("username", "INVALID_USERNAME"),
                ("metadata", "NOT_AN_OBJECT"),
                ("lists", "BLANK"),
            ]
        );
    }

    #[test]
    fn values_are_normalised() {
        let patch = UserPatch {
            country: Patch::Set("de".into()),
            last_verified_credential_id: Patch::Set(Uuid::from_u128(7).to_string()),
            ..input()
        };
        let valid = patch.validate().unwrap();
        assert_eq!(valid.country, Patch::Set("DE".into()));
        assert_eq!(
            valid.last_verified_credential_id,
            Patch::Set(Uuid::from_u128(7))
        );
    }

    #[test]
    fn last_visit_must_not_precede_first_visit() {
        let early = "2025-12-31T00:00:00Z".parse().unwrap();
        let patch = UserPatch {
            last_visit: Patch::Set(early),
            ..UserPatch::default()
        };
        assert_eq!(
            codes(&check_against_stored(&patch, &facts())),
            [("lastVisit", "BEFORE_FIRST_VISIT")]
        );

        let late = "2026-03-01T00:00:00Z".parse().unwrap();
        let patch = UserPatch {
            first_visit: Patch::Set(late),
            ..UserPatch::default()
        };
        assert_eq!(
            codes(&check_against_stored(&patch, &facts())),
            [("firstVisit", "BEFORE_FIRST_VISIT")]
        );

        let patch = UserPatch {
            first_visit: Patch::Set(late),
            last_visit: Patch::Set(late),
            ..UserPatch::default()
        };
        assert!(check_against_stored(&patch, &facts()).is_empty());
    }

    #[test]
    fn credential_must_be_the_users() {
        let patch = UserPatch {
            last_verified_credential_id: Patch::Set(Uuid::from_u128(8)),
            ..UserPatch::default()
        };
        assert_eq!(
            codes(&check_against_stored(&patch, &facts())),
            [("lastVerifiedCredentialId", "UNKNOWN_CREDENTIAL")]
        );
        let patch = UserPatch {
            last_verified_credential_id: Patch::Set(Uuid::from_u128(7)),
            ..UserPatch::default()
        };
        assert!(check_against_stored(&patch, &facts()).is_empty());
    }

    #[test]
    fn taken_email_and_username_are_field_errors() {
        let stored = StoredFacts {
            email_taken: true,
            username_taken: true,
            ..facts()
        };
        assert_eq!(
            codes(&check_against_stored(&UserPatch::default(), &stored)),
            [("email", "TAKEN"), ("username", "TAKEN")]
        );
    }

    /// A write may skip reading the stored user exactly when no rule of
    /// `check_against_stored` can refuse the patch.
    #[test]
    fn stored_facts_are_needed_only_for_the_rules_that_read_them() {
        fn set(change: impl FnOnce(&mut UserPatch)) -> bool {
            let mut patch = UserPatch::default();
            change(&mut patch);
            patch.needs_stored_facts()
        }
        assert!(!set(|p| p.team = Patch::Set("Research".into())));
        assert!(!set(|p| p.metadata = Patch::Clear));
        // Clearing a unique field or the credential cannot break a rule.
        assert!(!set(|p| p.email = Patch::Clear));
        assert!(!set(|p| p.last_verified_credential_id = Patch::Clear));
        assert!(set(|p| p.email = Patch::Set("a@example.com".into())));
        assert!(set(|p| p.username = Patch::Set("ada".into())));
        assert!(set(
            |p| p.last_verified_credential_id = Patch::Set(Uuid::nil())
        ));
        let now = Utc::now();
        assert!(set(|p| p.first_visit = Patch::Set(now)));
        assert!(set(|p| p.last_visit = Patch::Set(now)));
    }
}
