//! The single-value rules of the field table, and the errors they report.

use std::fmt;

/// Longest text a free-form field may hold, in characters.
pub const MAX_TEXT_CHARS: usize = 255;
/// Most entries `lists` may hold.
pub const MAX_LIST_ENTRIES: usize = 100;
/// Largest `metadata` object, in bytes of compact JSON.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Why a field was refused; `as_str` is the stable code clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// `null` on a field that cannot be empty.
    Required,
    /// Empty or only white space.
    Blank,
    TooLong,
    TooMany,
    TooLarge,
    InvalidEmail,
    InvalidPhoneNumber,
    InvalidCountry,
    InvalidUsername,
    NotAnObject,
    /// `lastVisit` earlier than `firstVisit`.
    BeforeFirstVisit,
    /// `lastVerifiedCredentialId` names none of the user's credentials.
    UnknownCredential,
    /// Another user of the environment already has this value.
    Taken,
    /// The id names no record of this user.
    NotFound,
    /// Text holds U+0000, which PostgreSQL's text and jsonb cannot store.
    InvalidCharacter,
    /// REST only: the body names a field the input does not have (GraphQL
    /// refuses such a request before any rule runs).
    UnknownField,
    /// REST only: the value is not of the field's type.
    InvalidValue,
}

impl ErrorCode {
    /// The code as it appears in `FieldError.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Required => "REQUIRED",
            ErrorCode::Blank => "BLANK",
            ErrorCode::TooLong => "TOO_LONG",
            ErrorCode::TooMany => "TOO_MANY",
            ErrorCode::TooLarge => "TOO_LARGE",
            ErrorCode::InvalidEmail => "INVALID_EMAIL",
            ErrorCode::InvalidPhoneNumber => "INVALID_PHONE_NUMBER",
            ErrorCode::InvalidCountry => "INVALID_COUNTRY",
            ErrorCode::InvalidUsername => "INVALID_USERNAME",
            ErrorCode::NotAnObject => "NOT_AN_OBJECT",
            ErrorCode::BeforeFirstVisit => "BEFORE_FIRST_VISIT",
            ErrorCode::UnknownCredential => "UNKNOWN_CREDENTIAL",
            ErrorCode::Taken => "TAKEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::InvalidCharacter => "INVALID_CHARACTER",
            ErrorCode::UnknownField => "UNKNOWN_FIELD",
            ErrorCode::InvalidValue => "INVALID_VALUE",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One refused input field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The input field's name as the client wrote it (`phoneNumber`).
    pub field: &'static str,
    pub code: ErrorCode,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, code: ErrorCode, message: impl Into<String>) -> Self {
        FieldError {
            field,
            code,
            message: message.into(),
        }
    }
}

type Rule<T> = Result<T, (ErrorCode, String)>;

fn is_blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

/// Refuses the NUL character. PostgreSQL cannot store it in text or jsonb
/// while SQLite can: refusing it everywhere gives one answer on both.
fn no_nul(text: &str) -> Rule<()> {
    if text.contains('\0') {
        return Err((
            ErrorCode::InvalidCharacter,
            "must not contain the NUL character (U+0000)".into(),
        ));
    }
    Ok(())
}

/// Whether any key or string in a JSON value holds the NUL character.
fn json_has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(json_has_nul),
        serde_json::Value::Object(members) => members
            .iter()
            .any(|(key, value)| key.contains('\0') || json_has_nul(value)),
        _ => false,
    }
}

/// At least one character that is not white space, at most 255 characters.
pub fn short_text(text: String) -> Rule<String> {
    no_nul(&text)?;
    if is_blank(&text) {
        return Err((ErrorCode::Blank, "must not be blank".into()));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err((
            ErrorCode::TooLong,
            format!("must be at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(text)
}

/// Control characters and characters that render as nothing (zero-width
/// spaces and joiners, direction marks and overrides, the soft hyphen, the
/// byte-order mark): in an address they make two different stored texts
/// look like one.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
        )
}

/// A syntactically valid address of at most 255 characters.
pub fn email(text: String) -> Rule<String> {
    no_nul(&text)?;
    if text.chars().any(is_invisible) {
        return Err((
            ErrorCode::InvalidCharacter,
            "must not contain control or invisible characters".into(),
        ));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err((
            ErrorCode::TooLong,
            format!("must be at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    // A bare address only: no `Name <addr>` display text and no
    // `[192.0.2.1]` domain literal (the crate accepts both by default), so
    // that the stored text is the address the uniqueness rule compares.
    let options = email_address::Options::default()
        .without_display_text()
        .without_domain_literal();
    if email_address::EmailAddress::parse_with_options(&text, options).is_err() {
        return Err((
            ErrorCode::InvalidEmail,
            "must be a valid email address".into(),
        ));
    }
    Ok(text)
}

/// E.164: `+`, then 2 to 15 digits, the first not 0.
pub fn phone_number(text: String) -> Rule<String> {
    let valid = text.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    });
    if valid {
        Ok(text)
    } else {
        Err((
            ErrorCode::InvalidPhoneNumber,
            "must be an E.164 number: '+' then 2 to 15 digits, the first not 0".into(),
        ))
    }
}

/// An ISO 3166-1 alpha-2 code, stored upper-case.
pub fn country(text: String) -> Rule<String> {
    let code = text.to_ascii_uppercase();
    if code.len() == 2 && isocountry::CountryCode::for_alpha2(&code).is_ok() {
        Ok(code)
    } else {
        Err((
            ErrorCode::InvalidCountry,
            "must be an ISO 3166-1 alpha-2 country code".into(),
        ))
    }
}

/// ASCII letters, digits, `_` and `-`; 1 to 255 characters.
///
/// ASCII only, so that "unique, ignoring case" means the same on both
/// backends (SQLite's `lower()` folds ASCII only).
pub fn username(text: String) -> Rule<String> {
    if text.is_empty() {
        return Err((ErrorCode::Blank, "must not be blank".into()));
    }
    if text.len() > MAX_TEXT_CHARS {
        return Err((
            ErrorCode::TooLong,
            format!("must be at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err((
            ErrorCode::InvalidUsername,
            "may contain only letters, digits, '_' and '-'".into(),
        ));
    }
    Ok(text)
}

/// A JSON object of at most 16 KiB serialized.
pub fn metadata(value: serde_json::Value) -> Rule<serde_json::Value> {
    if !value.is_object() {
        return Err((ErrorCode::NotAnObject, "must be a JSON object".into()));
    }
    if json_has_nul(&value) {
        return Err((
            ErrorCode::InvalidCharacter,
            "no key or string may contain the NUL character (U+0000)".into(),
        ));
    }
    let size = serde_json::to_vec(&value)
        .map(|bytes| bytes.len())
        .unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        return Err((
            ErrorCode::TooLarge,
            format!("must be at most {MAX_METADATA_BYTES} bytes as JSON"),
        ));
    }
    Ok(value)
}

/// At most 100 entries, none blank.
pub fn lists(entries: Vec<String>) -> Rule<Vec<String>> {
    if entries.len() > MAX_LIST_ENTRIES {
        return Err((
            ErrorCode::TooMany,
            format!("must have at most {MAX_LIST_ENTRIES} entries"),
        ));
    }
    if let Some(index) = entries.iter().position(|entry| is_blank(entry)) {
        return Err((ErrorCode::Blank, format!("entry {index} must not be blank")));
    }
    if let Some(index) = entries.iter().position(|entry| entry.contains('\0')) {
        return Err((
            ErrorCode::InvalidCharacter,
            format!("entry {index} must not contain the NUL character (U+0000)"),
        ));
    }
    Ok(entries)
}

/// A credential id: a UUID (anything else cannot name a credential).
pub fn credential_id(text: String) -> Rule<uuid::Uuid> {
    if is_blank(&text) {
        return Err((ErrorCode::Blank, "must not be blank".into()));
    }
    uuid::Uuid::parse_str(text.trim()).map_err(|_| unknown_credential())
}

pub(crate) fn unknown_credential() -> (ErrorCode, String) {
    (
        ErrorCode::UnknownCredential,
        "must name one of the user's verified credentials".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T: std::fmt::Debug>(rule: Rule<T>) -> ErrorCode {
        rule.expect_err("rule should refuse").0
    }

    #[test]
    fn short_text_refuses_blank_and_long() {
        assert_eq!(short_text("Ada".into()).unwrap(), "Ada");
        assert_eq!(code(short_text("".into())), ErrorCode::Blank);
        assert_eq!(code(short_text(" \t\n\u{3000}".into())), ErrorCode::Blank);
        assert!(short_text("é".repeat(255)).is_ok());
        assert_eq!(code(short_text("é".repeat(256))), ErrorCode::TooLong);
    }

    #[test]
    fn no_text_holds_nul() {
        let nul = ErrorCode::InvalidCharacter;
        assert_eq!(code(short_text("ab\0c".into())), nul);
        assert_eq!(code(email("\"a\0\"@example.com".into())), nul);
        assert_eq!(code(lists(vec!["a".into(), "b\0".into()])), nul);
        assert_eq!(code(metadata(serde_json::json!({ "k\0": 1 }))), nul);
        assert_eq!(
            code(metadata(serde_json::json!({ "k": [{ "x": "\0" }] }))),
            nul
        );
        assert!(metadata(serde_json::json!({ "k": [{ "x": "\\0" }] })).is_ok());
    }

    #[test]
    fn emails_hold_no_invisible_characters() {
        for bad in [
            "a\u{200D}@example.com",
            "a@exa\u{200F}mple.com",
            "a\u{FEFF}@x.io",
            "a\t@x.io",
        ] {
            assert_eq!(
                code(email(bad.into())),
                ErrorCode::InvalidCharacter,
                "{bad:?}"
            );
        }
        assert!(email("émile@example.com".into()).is_ok());
    }

    #[test]
    fn email_needs_an_address() {
        assert!(email("ada@example.com".into()).is_ok());
        assert_eq!(code(email("not-an-email".into())), ErrorCode::InvalidEmail);
        assert_eq!(
            code(email("Ada <ada@example.com>".into())),
            ErrorCode::InvalidEmail
        );
        assert_eq!(
            code(email("ada@[192.0.2.1]".into())),
            ErrorCode::InvalidEmail
        );
        assert_eq!(code(email("".into())), ErrorCode::InvalidEmail);
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(code(email(long)), ErrorCode::TooLong);
    }

    #[test]
    fn phone_number_is_e164() {
        assert!(phone_number("+14155550123".into()).is_ok());
        assert!(phone_number("+12".into()).is_ok());
        assert!(phone_number("+123456789012345".into()).is_ok());
        for bad in [
            "14155550123",
            "+1",
            "+0123",
            "+1234567890123456",
            "+1 415",
            "+",
            "+1a",
        ] {
            assert_eq!(
                code(phone_number(bad.into())),
                ErrorCode::InvalidPhoneNumber,
                "{bad}"
            );
        }
    }

    #[test]
    fn country_is_alpha2() {
        assert_eq!(country("DE".into()).unwrap(), "DE");
        assert_eq!(country("fr".into()).unwrap(), "FR");
        for bad in ["XX", "DEU", "", "D"] {
            assert_eq!(
                code(country(bad.into())),
                ErrorCode::InvalidCountry,
                "{bad}"
            );
        }
    }

    #[test]
    fn username_charset_and_length() {
        assert!(username("ada_lovelace-1815".into()).is_ok());
        assert_eq!(code(username("".into())), ErrorCode::Blank);
        assert_eq!(
            code(username("ada lovelace".into())),
            ErrorCode::InvalidUsername
        );
        assert_eq!(code(username("adé".into())), ErrorCode::InvalidUsername);
        assert_eq!(code(username("a".repeat(256))), ErrorCode::TooLong);
    }

    #[test]
    fn metadata_is_a_small_object() {
        assert!(metadata(serde_json::json!({"a": 1})).is_ok());
        for bad in [
            serde_json::json!([1]),
            serde_json::json!("x"),
            serde_json::json!(1),
        ] {
            assert_eq!(code(metadata(bad)), ErrorCode::NotAnObject);
        }
        let big = serde_json::json!({ "k": "x".repeat(MAX_METADATA_BYTES) });
        assert_eq!(code(metadata(big)), ErrorCode::TooLarge);
    }

    #[test]
    fn lists_entries_and_count() {
        assert!(lists(vec!["a".into(), "b".into()]).is_ok());
        assert!(lists(vec![]).is_ok());
        assert_eq!(code(lists(vec!["a".into(), " ".into()])), ErrorCode::Blank);
        assert!(lists(vec!["a".into(); 100]).is_ok());
        assert_eq!(code(lists(vec!["a".into(); 101])), ErrorCode::TooMany);
    }

    #[test]
    fn credential_id_must_be_a_uuid() {
        assert!(credential_id("0b6f0c6e-4cd4-4a64-8a8e-6b0a54b1f1f1".into()).is_ok());
        assert_eq!(code(credential_id(" ".into())), ErrorCode::Blank);
        assert_eq!(
            code(credential_id("cred-1".into())),
            ErrorCode::UnknownCredential
        );
    }
}
