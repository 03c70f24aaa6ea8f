//! The validation rules, the instant scalar's parser and the GraphQL
//! document parser, fed hostile input in-process (no server, no database),
//! so a run can reach a million inputs where `tests/fuzz.rs`, which goes
//! through HTTP and both databases, manages 86 a second. For every input:
//! no panic; every field error names a field the input set; what the rules
//! accept is storable on both backends and within its limits; an instant
//! that parses prints and parses back to itself.
//!
//! Short form in `cargo test` (20,000 inputs). Long form, on demand:
//! `USERGRAPH_FUZZ_RULE_CASES=1000000 cargo test --release --test
//! fuzz_rules -- --nocapture`; `USERGRAPH_FUZZ_SEED` replays a run.

mod common;

use chrono::{DateTime, Utc};
use common::hostile::{hostile_text, Random, PIECES};
use serde_json::{json, Value};
use usergraph::domain::{
    check_against_stored, format_instant, parse_instant, Patch, StoredFacts, UserPatch,
};
use usergraph::graphql::limits::{nesting, MAX_NESTING};

/// Instants as clients write them, and as they should not.
const INSTANT_TEXTS: &[&str] = &[
    "2026-06-30T23:59:60Z",
    "2026-06-30T23:59:60.5+02:00",
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00.123456789+14:00",
    "2026-01-01T00:00:00.1234567Z",
    "2026-02-30T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "+10000-01-01T00:00:00Z",
    "2026-01-01t00:00:00z",
    "2026-01-01 00:00:00Z",
    "2026-01-01T00:00:00+24:00",
    "yesterday",
    "",
];

/// Mostly left out, so that some patches pass and what the rules accept
/// is checked too.
fn text_patch(random: &mut Random) -> Patch<String> {
    match random.below(12) {
        0 => Patch::Clear,
        1 | 2 => Patch::Set(hostile_text(random)),
        _ => Patch::Keep,
    }
}

fn instant(random: &mut Random) -> Option<DateTime<Utc>> {
    let text = if random.below(3) == 0 {
        hostile_text(random)
    } else {
        (*random.pick(INSTANT_TEXTS)).to_owned()
    };
    let parsed = parse_instant(&text).ok()?;
    // What the scalar accepts prints and parses back to the same instant.
    let printed = format_instant(&parsed);
    assert_eq!(parse_instant(&printed), Ok(parsed), "{text:?} → {printed}");
    Some(parsed)
}

fn json_value(random: &mut Random, depth: usize) -> Value {
    match random.below(if depth > 6 { 3 } else { 6 }) {
        0 => json!(hostile_text(random)),
        1 => json!(random.next() as f64 / 3.0),
        2 => Value::Null,
        3 => Value::Array(
            (0..random.below(4))
                .map(|_| json_value(random, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..random.below(4))
                .map(|_| (hostile_text(random), json_value(random, depth + 1)))
                .collect(),
        ),
    }
}

fn hostile_patch(random: &mut Random) -> UserPatch<String> {
    let mut patch = UserPatch::<String> {
        scope: text_patch(random),
        alias: text_patch(random),
        first_name: text_patch(random),
        last_name: text_patch(random),
        team: text_patch(random),
        country: text_patch(random),
        email: text_patch(random),
        phone_number: text_patch(random),
        username: text_patch(random),
        btc_wallet: text_patch(random),
        wallet: text_patch(random),
        last_verified_credential_id: text_patch(random),
        ..Default::default()
    };
    if let Some(at) = instant(random) {
        patch.first_visit = Patch::Set(at);
    }
    if let Some(at) = instant(random) {
        patch.last_visit = Patch::Set(at);
    }
    if random.below(4) == 0 {
        patch.metadata = Patch::Set(json_value(random, 0));
    }
    if random.below(4) == 0 {
        let entries = (0..random.below(110))
            .map(|_| hostile_text(random))
            .collect();
        patch.lists = Patch::Set(entries);
    }
    patch
}

/// Text a rule accepted: storable on both backends, and within its limit.
fn storable(field: &str, text: &str) {
    assert!(!text.contains('\0'), "{field} accepted a NUL: {text:?}");
    assert!(
        text.chars().count() <= 255,
        "{field} accepted {} characters",
        text.chars().count()
    );
}

fn check_accepted(patch: &UserPatch) {
    let texts = [
        ("scope", &patch.scope),
        ("alias", &patch.alias),
        ("firstName", &patch.first_name),
        ("lastName", &patch.last_name),
        ("team", &patch.team),
        ("country", &patch.country),
        ("email", &patch.email),
        ("phoneNumber", &patch.phone_number),
        ("username", &patch.username),
        ("btcWallet", &patch.btc_wallet),
        ("wallet", &patch.wallet),
    ];
    for (field, value) in texts {
        if let Some(text) = value.as_set() {
            storable(field, text);
            assert!(!text.trim().is_empty(), "{field} accepted blank text");
        }
    }
    if let Some(email) = patch.email.as_set() {
        assert!(
            !email.chars().any(char::is_control),
            "email accepted {email:?}"
        );
        assert!(
            !email.contains(['\u{200d}', '\u{200f}', '\u{202e}', '\u{feff}']),
            "email accepted {email:?}"
        );
    }
    if let Some(name) = patch.username.as_set() {
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "{name:?}"
        );
    }
    if let Some(entries) = patch.lists.as_set() {
        assert!(entries.len() <= 100);
        // Entries have no length rule of their own (the body limit bounds them).
        for entry in entries {
            assert!(
                !entry.contains('\0') && !entry.trim().is_empty(),
                "{entry:?}"
            );
        }
    }
    if let Some(metadata) = patch.metadata.as_set() {
        assert!(metadata.is_object());
        assert!(
            !metadata.to_string().contains("\\u0000"),
            "metadata accepted a NUL"
        );
    }
}

/// A GraphQL document with hostile pieces spliced in, or nested deeply.
fn hostile_document(random: &mut Random) -> String {
    const VALID: &str = "mutation($id: ID!, $v: DateTime!) { updateUser(id: $id, expectedUpdatedAt: $v, \
        input: { team: \"x\", lists: [\"a\"] }) { __typename ... on UpdateUserSuccess { user { id } } } }";
    match random.below(4) {
        0 => {
            let depth = 1 + random.below(2_000);
            format!(
                "{}{}",
                "{ user(id: \"x\") ".repeat(depth),
                "}".repeat(random.below(depth + 1))
            )
        }
        1 => {
            let depth = random.below(500);
            format!(
                "query {{ f(a: {}1{}) }}",
                "[".repeat(depth),
                "]".repeat(depth)
            )
        }
        _ => {
            let mut document: Vec<char> = VALID.chars().collect();
            for _ in 0..1 + random.below(5) {
                let at = random.below(document.len() + 1);
                match random.below(3) {
                    0 if at < document.len() => {
                        document.remove(at);
                    }
                    _ => {
                        let piece = random.pick(PIECES);
                        document.splice(at..at, piece.chars());
                    }
                }
            }
            document.into_iter().collect()
        }
    }
}

#[test]
fn rules_scalars_and_parser_survive_hostile_input() {
    let cases: usize = std::env::var("USERGRAPH_FUZZ_RULE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("USERGRAPH_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x5eed_cafe);
    eprintln!("fuzz_rules: {cases} inputs, USERGRAPH_FUZZ_SEED={seed}");
    let mut random = Random(seed.max(1));
    let started = std::time::Instant::now();
    let (mut refused, mut parsed, mut too_deep) = (0usize, 0usize, 0usize);
    for _ in 0..cases {
        let input = hostile_patch(&mut random);
        let written = [
            ("scope", !input.scope.is_keep()),
            ("email", !input.email.is_keep()),
            ("username", !input.username.is_keep()),
        ];
        let (patch, errors) = input.check();
        for error in &errors {
            if let Some((_, set)) = written.iter().find(|(field, _)| *field == error.field) {
                assert!(
                    set,
                    "an error on {} that the input did not set",
                    error.field
                );
            }
        }
        check_accepted(&patch);
        let facts = StoredFacts {
            first_visit: instant(&mut random).unwrap_or(DateTime::UNIX_EPOCH),
            last_visit: instant(&mut random).unwrap_or(DateTime::UNIX_EPOCH),
            credential_ids: vec![uuid::Uuid::new_v4()],
            email_taken: random.below(2) == 0,
            username_taken: random.below(2) == 0,
        };
        let stored_errors = check_against_stored(&patch, &facts);
        if !errors.is_empty() || !stored_errors.is_empty() {
            refused += 1;
        }
        // As the server does: a document nested too deep is refused before
        // the parser, which recurses per level, can overflow its stack.
        let document = hostile_document(&mut random);
        if nesting(&document) > MAX_NESTING {
            too_deep += 1;
        } else if async_graphql::parser::parse_query(document).is_ok() {
            parsed += 1;
        }
    }
    eprintln!(
        "fuzz_rules: {cases} inputs in {:.1} s, no panic; {refused} patches refused, \
         {} accepted; {parsed} documents parsed, {too_deep} refused as too deep, {} \
         refused by the parser",
        started.elapsed().as_secs_f64(),
        cases - refused,
        cases - parsed - too_deep
    );
}
