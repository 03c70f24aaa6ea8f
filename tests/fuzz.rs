//! Hostile `updateUser` inputs, the same ones on both backends: random
//! fields set to hostile text (NUL, control and invisible characters,
//! direction marks, combining marks, astral characters, over-long text),
//! wrong types, odd JSON in `metadata` and `lists`, odd instants. Every
//! answer must be typed (a result, or `BAD_USER_INPUT` for a value of the
//! wrong type), never an internal error; a refused input changes nothing;
//! an accepted one reads back as sent; and both backends give the same
//! answer to the same input.
//!
//! Short form in `cargo test` (300 inputs). Long form, on demand:
//! `USERGRAPH_FUZZ_CASES=100000 TEST_DATABASE_URL=… cargo test --release
//! --test fuzz -- --nocapture`; `USERGRAPH_FUZZ_SEED` replays a run.

mod common;

use common::hostile::{hostile_text, Random};
use common::{Backend, TestApp, USER_FIELDS};
use serde_json::{json, Map, Value};

/// Fields that take text and read back exactly as sent when accepted.
const PLAIN_TEXT: &[&str] = &[
    "scope",
    "alias",
    "firstName",
    "lastName",
    "jobTitle",
    "tShirtSize",
    "team",
    "btcWallet",
    "kdaWallet",
    "ltcWallet",
    "ckbWallet",
    "kasWallet",
    "dogeWallet",
    "walletPublicKey",
    "wallet",
];
/// Text fields with rules of their own (they may normalise what they keep).
const RULED_TEXT: &[&str] = &["email", "phoneNumber", "country", "username"];
const BOOLEANS: &[&str] = &[
    "newUser",
    "policiesConsent",
    "emailNotification",
    "discordNotification",
    "newsletterNotification",
];
const INSTANTS: &[&str] = &["firstVisit", "lastVisit"];

fn hostile_value(random: &mut Random, field: &str) -> Value {
    if random.below(8) == 0 {
        return Value::Null;
    }
    match field {
        _ if BOOLEANS.contains(&field) => match random.below(4) {
            0 => json!("true"),
            _ => json!(random.below(2) == 0),
        },
        _ if INSTANTS.contains(&field) => json!(*random.pick(&[
            "2026-06-30T23:59:60Z",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.123456789+14:00",
            "yesterday",
            "2026-02-30T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ])),
        "metadata" => match random.below(5) {
            0 => json!([1, 2]),
            1 => json!({ hostile_text(random): hostile_text(random) }),
            2 => json!({ "nested": { "deep": [hostile_text(random), null, 1.5e300] } }),
            3 => json!({ "big": "x".repeat(17 * 1024) }),
            _ => json!("not an object"),
        },
        "lists" => match random.below(4) {
            0 => json!(hostile_text(random)),
            1 => Value::Array((0..101).map(|n| json!(format!("l{n}"))).collect()),
            _ => Value::Array(
                (0..random.below(4))
                    .map(|_| json!(hostile_text(random)))
                    .collect(),
            ),
        },
        "chain" => json!(*random.pick(&["ETH", "SOL", "eth", "DOGE", ""])),
        "mfaBackupCodeAcknowledgement" => json!(*random.pick(&["PENDING", "COMPLETE", "DONE"])),
        _ => match random.below(12) {
            0 => json!(42),
            _ => json!(hostile_text(random)),
        },
    }
}

fn hostile_input(random: &mut Random) -> Map<String, Value> {
    let fields: Vec<&str> = [PLAIN_TEXT, RULED_TEXT, BOOLEANS, INSTANTS]
        .concat()
        .into_iter()
        .chain(["metadata", "lists", "chain", "mfaBackupCodeAcknowledgement"])
        .collect();
    let mut input = Map::new();
    for _ in 0..1 + random.below(4) {
        let field = *random.pick(&fields);
        input.insert(field.to_owned(), hostile_value(random, field));
    }
    input
}

const UPDATE: &str = "mutation($id: ID!, $v: DateTime!, $input: UpdateUserInput!) { \
    updateUser(id: $id, expectedUpdatedAt: $v, input: $input) { __typename \
    ... on UpdateUserSuccess { user { ...All } } \
    ... on ValidationFailed { fieldErrors { field code } } } }";

/// What an answer says, in a form both backends must agree on.
fn verdict(status: reqwest::StatusCode, body: &Value) -> String {
    assert_eq!(status, 200, "{body}");
    if let Some(errors) = body.get("errors") {
        let codes: Vec<&str> = errors
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["extensions"]["code"].as_str().unwrap_or("none"))
            .collect();
        assert!(
            codes.iter().all(|code| *code == "BAD_USER_INPUT"),
            "only a value of the wrong type is an error: {body}"
        );
        return format!("errors {codes:?}");
    }
    let result = &body["data"]["updateUser"];
    match result["__typename"].as_str() {
        Some("UpdateUserSuccess") => "success".into(),
        Some("ValidationFailed") => {
            let mut codes = common::field_codes(&result["fieldErrors"]);
            codes.dedup();
            format!("invalid {codes:?}")
        }
        _ => panic!("unexpected answer: {body}"),
    }
}

struct Target {
    app: TestApp,
    id: String,
}

impl Target {
    async fn new(backend: Backend) -> Target {
        let app = TestApp::spawn(backend).await;
        let id = app.seed(1).await.remove(0);
        Target { app, id }
    }

    /// Sends `input`; checks what the answer implies about the stored user.
    async fn apply(&self, input: &Map<String, Value>) -> String {
        let before = self.app.read_user(&self.id).await;
        let document = format!("{UPDATE} fragment All on User {{ {USER_FIELDS} }}");
        let variables = json!({ "id": self.id, "v": before["updatedAt"], "input": input });
        let (status, body) = self
            .app
            .post(json!({ "query": document, "variables": variables }))
            .await;
        let verdict = verdict(status, &body);
        let after = self.app.read_user(&self.id).await;
        if verdict == "success" {
            assert_eq!(
                body["data"]["updateUser"]["user"], after,
                "the answer is what is stored"
            );
            for (field, value) in input {
                let expected = match value {
                    // GraphQL coerces a single value to a list of one.
                    Value::String(_) if field == "lists" => json!([value]),
                    _ => value.clone(),
                };
                if PLAIN_TEXT.contains(&field.as_str()) || field == "lists" || field == "metadata" {
                    assert_eq!(after[field], expected, "{field} reads back as sent");
                }
            }
        } else {
            assert_eq!(before, after, "a refused input changes nothing: {input:?}");
        }
        verdict
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_updates_get_the_same_typed_answer_on_both_backends() {
    let cases: usize = std::env::var("USERGRAPH_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("USERGRAPH_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x5eed_cafe);
    eprintln!("fuzz: {cases} inputs, USERGRAPH_FUZZ_SEED={seed}");
    let mut random = Random(seed.max(1));
    let sqlite = Target::new(Backend::Sqlite).await;
    let postgres = match common::postgres_admin_url() {
        Some(_) => Some(Target::new(Backend::Postgres).await),
        None => None,
    };
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    for case in 0..cases {
        let input = hostile_input(&mut random);
        let on_sqlite = sqlite.apply(&input).await;
        if let Some(postgres) = &postgres {
            let on_postgres = postgres.apply(&input).await;
            assert_eq!(
                on_sqlite, on_postgres,
                "case {case}: the backends disagree on {input:?}"
            );
        }
        let kind = on_sqlite.split(' ').next().unwrap_or_default().to_owned();
        *tally.entry(kind).or_default() += 1;
    }
    eprintln!("fuzz: {tally:?}, no internal error, both backends agreed");
}
