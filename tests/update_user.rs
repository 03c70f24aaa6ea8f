//! updateUser end to end over HTTP, on SQLite and PostgreSQL.

mod common;

use common::{field_codes, pairs, Backend, ManualClock, TestApp};
use serde_json::{json, Value};
use usergraph::repo::Scope;

fn version(user: &Value) -> String {
    user["updatedAt"].as_str().expect("updatedAt").to_owned()
}

/// Every nested list of a user, for comparing snapshots.
fn nested(user: &Value) -> Value {
    json!({
        "verifiedCredentials": user["verifiedCredentials"],
        "wallets": user["wallets"],
        "sessions": user["sessions"],
        "mfaDevices": user["mfaDevices"],
        "oauthAccounts": user["oauthAccounts"],
        "chainalysisChecks": user["chainalysisChecks"],
    })
}

async fn read_then_update_three_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let before = app.read_user(&id).await;
    assert_eq!(before["wallets"].as_array().unwrap().len(), 2);

    let result = app
        .update(
            &id,
            &version(&before),
            json!({ "firstName": "Augusta", "jobTitle": "Analyst", "country": "fr" }),
        )
        .await;
    assert_eq!(result["__typename"], "UpdateUserSuccess", "{result}");
    let after = &result["user"];
    assert_eq!(after["firstName"], "Augusta");
    assert_eq!(after["jobTitle"], "Analyst");
    assert_eq!(after["country"], "FR");
    assert_eq!(after["lastName"], before["lastName"]);
    assert!(
        version(after) > version(&before),
        "{} !> {}",
        version(after),
        version(&before)
    );
    assert_eq!(
        nested(after),
        nested(&before),
        "nested lists come back whole"
    );
    assert!(!after["sessions"].as_array().unwrap().is_empty());
    assert!(!after["mfaDevices"].as_array().unwrap().is_empty());
    assert_eq!(
        &app.read_user(&id).await,
        after,
        "what updateUser answered is what is stored"
    );
}
per_backend!(read_then_update_three_fields);

async fn same_version_twice_conflicts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let v1 = version(&app.read_user(&id).await);

    let first = app.update(&id, &v1, json!({ "team": "Research" })).await;
    assert_eq!(first["__typename"], "UpdateUserSuccess");
    let second = app
        .update(&id, &v1, json!({ "team": "Sales", "alias": "second" }))
        .await;
    assert_eq!(second["__typename"], "UpdateConflict", "{second}");
    assert_eq!(second["expectedUpdatedAt"], v1);
    assert_eq!(
        second["currentUser"], first["user"],
        "currentUser is the state after the first call"
    );

    let stored = app.read_user(&id).await;
    assert_eq!(stored["team"], "Research");
    assert_ne!(stored["alias"], "second");
}
per_backend!(same_version_twice_conflicts);

async fn absent_null_and_value_differ(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let user = app.read_user(&id).await;
    let alias = user["alias"].clone();
    assert!(alias.is_string());

    // Absent through a declared but unprovided variable: alias stays.
    let document = "mutation($id: ID!, $version: DateTime!, $alias: String) { \
        updateUser(id: $id, expectedUpdatedAt: $version, input: { alias: $alias, team: \"Ops\" }) { \
        __typename ... on UpdateUserSuccess { user { alias team updatedAt } } } }";
    let data = app
        .gql(document, json!({ "id": id, "version": version(&user) }))
        .await;
    let result = &data["updateUser"];
    assert_eq!(result["__typename"], "UpdateUserSuccess", "{result}");
    assert_eq!(result["user"]["alias"], alias);
    assert_eq!(result["user"]["team"], "Ops");

    // Only the operation that runs is read that way: here `B` declares
    // `$alias` non-null, so leaving it out is an error, not "absent".
    let two_operations = "mutation A($id: ID!, $version: DateTime!, $alias: String) { \
        updateUser(id: $id, expectedUpdatedAt: $version, input: { alias: $alias }) { __typename } } \
        mutation B($id: ID!, $version: DateTime!, $alias: String!) { \
        updateUser(id: $id, expectedUpdatedAt: $version, input: { alias: $alias }) { __typename } }";
    let version_now = result["user"]["updatedAt"].clone();
    let (_, body) = app
        .post(json!({ "query": two_operations, "operationName": "B", "variables": { "id": id, "version": version_now } }))
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("alias"),
        "{body}"
    );
    let (_, body) = app
        .post(json!({ "query": two_operations, "operationName": "A", "variables": { "id": id, "version": version_now } }))
        .await;
    assert_eq!(
        body["data"]["updateUser"]["__typename"], "UpdateUserSuccess",
        "{body}"
    );
    assert_eq!(app.read_user(&id).await["alias"], alias);
    let result = json!({ "user": app.read_user(&id).await });

    // Absent by leaving it out of the input: alias stays.
    let result = app
        .update(
            &id,
            &version(&result["user"]),
            json!({ "jobTitle": "Lead" }),
        )
        .await;
    assert_eq!(result["user"]["alias"], alias);

    // Null clears.
    let result = app
        .update(&id, &version(&result["user"]), json!({ "alias": null }))
        .await;
    assert_eq!(result["__typename"], "UpdateUserSuccess");
    assert_eq!(result["user"]["alias"], Value::Null);

    // A value sets.
    let result = app
        .update(&id, &version(&result["user"]), json!({ "alias": "lady-a" }))
        .await;
    assert_eq!(result["user"]["alias"], "lady-a");

    // Null on a field that cannot be empty is a field error; nothing changes.
    let current = result["user"].clone();
    let result = app
        .update(
            &id,
            &version(&current),
            json!({ "newUser": null, "alias": "x" }),
        )
        .await;
    assert_eq!(result["__typename"], "ValidationFailed");
    assert_eq!(
        field_codes(&result["fieldErrors"]),
        pairs(&[("newUser", "REQUIRED")])
    );
    assert_eq!(app.read_user(&id).await, current);
}
per_backend!(absent_null_and_value_differ);

async fn every_field_error_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let before = app.read_user(&id).await;
    let result = app
        .update(
            &id,
            &version(&before),
            json!({
                "firstName": "   ",
                "email": "not-an-address",
                "phoneNumber": "0049 30 1234",
                "country": "XY",
                "lists": ["ok", " "],
                "team": "valid but must not be written",
            }),
        )
        .await;
    assert_eq!(result["__typename"], "ValidationFailed", "{result}");
    assert_eq!(
        field_codes(&result["fieldErrors"]),
        pairs(&[
            ("firstName", "BLANK"),
            ("email", "INVALID_EMAIL"),
            ("phoneNumber", "INVALID_PHONE_NUMBER"),
            ("country", "INVALID_COUNTRY"),
            ("lists", "BLANK"),
        ])
    );
    assert_eq!(app.read_user(&id).await, before, "nothing was written");

    for metadata in [json!([1, 2]), json!("text"), json!(7)] {
        let result = app
            .update(&id, &version(&before), json!({ "metadata": metadata }))
            .await;
        assert_eq!(
            field_codes(&result["fieldErrors"]),
            pairs(&[("metadata", "NOT_AN_OBJECT")]),
            "{metadata}"
        );
    }
    let result = app
        .update(
            &id,
            &version(&before),
            json!({ "metadata": { "tier": "gold" } }),
        )
        .await;
    assert_eq!(result["user"]["metadata"], json!({ "tier": "gold" }));
}
per_backend!(every_field_error_at_once);

async fn clashing_email_and_username_are_taken(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = app.seed(2).await;
    let first = app.read_user(&ids[0]).await;
    let second = app.read_user(&ids[1]).await;
    let email = first["email"].as_str().unwrap().to_uppercase();
    let username = first["username"].as_str().unwrap().to_uppercase();

    let result = app
        .update(
            &ids[1],
            &version(&second),
            json!({ "email": email, "username": username }),
        )
        .await;
    assert_eq!(result["__typename"], "ValidationFailed", "{result}");
    assert_eq!(
        field_codes(&result["fieldErrors"]),
        pairs(&[("email", "TAKEN"), ("username", "TAKEN")])
    );
    assert_eq!(app.read_user(&ids[1]).await, second);

    // A user may keep (or re-case) its own values.
    let own = second["email"].as_str().unwrap().to_uppercase();
    let result = app
        .update(&ids[1], &version(&second), json!({ "email": own }))
        .await;
    assert_eq!(result["__typename"], "UpdateUserSuccess", "{result}");

    // Another environment may use the same address.
    let other = app.repo.create_environment("other", &[]).await.unwrap();
    let theirs = app.seed_in(Scope::of_environment(other), 1).await;
    assert_eq!(theirs.len(), 1);
}
per_backend!(clashing_email_and_username_are_taken);

async fn unknown_or_foreign_user_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let user = app.read_user(&id).await;
    for unknown in ["8a1c1d84-0bb6-4b5f-9d8f-52d6d0f1b3c1", "not-a-uuid"] {
        let result = app
            .update(unknown, &version(&user), json!({ "team": "x" }))
            .await;
        assert_eq!(result["__typename"], "UserNotFound");
        assert_eq!(result["id"], unknown);
        let data = app
            .gql(
                "query($id: ID!) { user(id: $id) { id } }",
                json!({ "id": unknown }),
            )
            .await;
        assert_eq!(data["user"], Value::Null);
    }

    let other = app.repo.create_environment("other", &[]).await.unwrap();
    let foreign = app.seed_in(Scope::of_environment(other), 1).await.remove(0);
    let result = app
        .update(&foreign, &version(&user), json!({ "team": "x" }))
        .await;
    assert_eq!(result["__typename"], "UserNotFound");
    let data = app
        .gql(
            "query($id: ID!) { user(id: $id) { id } }",
            json!({ "id": foreign }),
        )
        .await;
    assert_eq!(data["user"], Value::Null);
}
per_backend!(unknown_or_foreign_user_is_not_found);

async fn empty_input_is_a_checked_no_op(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let user = app.read_user(&id).await;
    let result = app.update(&id, &version(&user), json!({})).await;
    assert_eq!(result["__typename"], "UpdateUserSuccess");
    assert_eq!(result["user"], user, "updatedAt does not move");

    let stale = "2020-01-01T00:00:00.000000Z";
    let result = app.update(&id, stale, json!({})).await;
    assert_eq!(result["__typename"], "UpdateConflict");
}
per_backend!(empty_input_is_a_checked_no_op);

async fn cross_field_and_credential_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let user = app.read_user(&id).await;
    let v = version(&user);
    let result = app
        .update(&id, &v, json!({ "lastVisit": "2000-01-01T00:00:00Z", "lastVerifiedCredentialId": "7c8e4ad4-3ef1-4f3e-9a52-8c8b7f3c4e11" }))
        .await;
    assert_eq!(
        field_codes(&result["fieldErrors"]),
        pairs(&[
            ("lastVisit", "BEFORE_FIRST_VISIT"),
            ("lastVerifiedCredentialId", "UNKNOWN_CREDENTIAL")
        ])
    );
    let credential = user["verifiedCredentials"][1]["id"].as_str().unwrap();
    let result = app
        .update(&id, &v, json!({ "lastVerifiedCredentialId": credential }))
        .await;
    assert_eq!(result["__typename"], "UpdateUserSuccess", "{result}");
    assert_eq!(result["user"]["lastVerifiedCredentialId"], credential);
}
per_backend!(cross_field_and_credential_rules);

async fn concurrent_updates_with_one_version(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let v = version(&app.read_user(&id).await);
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (app, id, v) = (app.clone(), id.clone(), v.clone());
            tokio::spawn(async move {
                app.update(&id, &v, json!({ "team": format!("team-{i}") }))
                    .await
            })
        })
        .collect();
    let mut kinds = Vec::new();
    for task in tasks {
        kinds.push(
            task.await.unwrap()["__typename"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        kinds.iter().filter(|k| *k == "UpdateUserSuccess").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "UpdateConflict").count(),
        31,
        "{kinds:?}"
    );
}
per_backend!(concurrent_updates_with_one_version);

/// Versions sent back verbatim match, also with trailing zeros in the
/// microseconds and when written with another offset.
async fn versions_round_trip(backend: Backend) {
    let clock = ManualClock::at("2026-03-01T10:00:00.120000Z");
    let app = TestApp::spawn_with_clock(backend, clock.clone()).await;
    let id = app.seed(1).await.remove(0);
    let user = app.read_user(&id).await;
    assert_eq!(version(&user), "2026-03-01T10:00:00.120000Z");

    let result = app
        .update(&id, &version(&user), json!({ "team": "a" }))
        .await;
    assert_eq!(result["__typename"], "UpdateUserSuccess", "{result}");
    assert_eq!(version(&result["user"]), "2026-03-01T10:00:00.120001Z");

    // The same instant with another offset.
    let result = app
        .update(
            &id,
            "2026-03-01T12:00:00.120001+02:00",
            json!({ "team": "b" }),
        )
        .await;
    assert_eq!(result["__typename"], "UpdateUserSuccess", "{result}");

    // A version on a whole second: emitted with six zeros, matched verbatim
    // and matched without the zeros.
    clock.set("2026-03-01T11:00:00Z");
    let result = app
        .update(&id, &version(&result["user"]), json!({ "team": "c" }))
        .await;
    assert_eq!(version(&result["user"]), "2026-03-01T11:00:00.000000Z");
    let result = app
        .update(&id, "2026-03-01T11:00:00.000000Z", json!({ "team": "d" }))
        .await;
    assert_eq!(result["__typename"], "UpdateUserSuccess", "{result}");
    clock.set("2026-03-01T11:30:00.5Z");
    let result = app
        .update(&id, &version(&result["user"]), json!({ "team": "e" }))
        .await;
    assert_eq!(version(&result["user"]), "2026-03-01T11:30:00.500000Z");
    let result = app
        .update(&id, "2026-03-01T11:30:00.5Z", json!({ "team": "f" }))
        .await;
    assert_eq!(result["__typename"], "UpdateUserSuccess", "{result}");

    // More precise than a microsecond: refused as bad input (a request
    // error, before anything runs), not reported as a mismatch.
    let (_, body) = app
        .post(json!({
            "query": common::update_user_document(),
            "variables": { "id": id, "version": "2026-03-01T11:30:00.500000001Z", "input": {} }
        }))
        .await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("expectedUpdatedAt") && message.contains("DateTime"),
        "{body}"
    );
    assert!(body.get("data").is_none(), "{body}");
}
per_backend!(versions_round_trip);

/// U+0000 is refused in every text, list entry and metadata key or string,
/// with the same typed answer on both backends (PostgreSQL cannot store it).
async fn nul_characters_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let before = app.read_user(&id).await;
    let input = json!({
        "lastName": "ab\u{0}c",
        "lists": ["ok", "x\u{0}"],
        "metadata": { "k\u{0}": "v" },
        "email": "a\u{0}@example.com",
    });
    let result = app.update(&id, &version(&before), input).await;
    assert_eq!(result["__typename"], "ValidationFailed", "{result}");
    assert_eq!(
        field_codes(&result["fieldErrors"]),
        pairs(&[
            ("email", "INVALID_CHARACTER"),
            ("lastName", "INVALID_CHARACTER"),
            ("lists", "INVALID_CHARACTER"),
            ("metadata", "INVALID_CHARACTER"),
        ])
    );
    assert_eq!(app.read_user(&id).await, before, "nothing was written");
}
per_backend!(nul_characters_are_refused);

/// A leap second is stored as the next minute's first instant on both
/// backends, and an email with an invisible character is refused on both.
async fn one_meaning_on_both_backends(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let before = app.read_user(&id).await;
    let input = json!({ "lastVisit": "2099-06-30T23:59:60Z" });
    let result = app.update(&id, &version(&before), input).await;
    assert_eq!(result["__typename"], "UpdateUserSuccess", "{result}");
    assert_eq!(result["user"]["lastVisit"], "2099-07-01T00:00:00.000000Z");
    let after = app.read_user(&id).await;
    assert_eq!(after["lastVisit"], "2099-07-01T00:00:00.000000Z");

    let input = json!({ "email": "ada\u{200D}@example.com" });
    let result = app.update(&id, &version(&after), input).await;
    assert_eq!(
        field_codes(&result["fieldErrors"]),
        pairs(&[("email", "INVALID_CHARACTER")])
    );
}
per_backend!(one_meaning_on_both_backends);

/// Case folding covers all of Unicode, on both backends: `É` and `é` make
/// one email (usernames are ASCII).
async fn unicode_case_variants_are_taken(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = app.seed(2).await;
    let first = app.read_user(&ids[0]).await;
    let result = app
        .update(
            &ids[0],
            &version(&first),
            json!({ "email": "élodie@exämple.org" }),
        )
        .await;
    assert_eq!(result["__typename"], "UpdateUserSuccess", "{result}");
    let second = app.read_user(&ids[1]).await;
    let result = app
        .update(
            &ids[1],
            &version(&second),
            json!({ "email": "ÉLODIE@EXÄMPLE.ORG" }),
        )
        .await;
    assert_eq!(result["__typename"], "ValidationFailed", "{result}");
    assert_eq!(
        field_codes(&result["fieldErrors"]),
        pairs(&[("email", "TAKEN")])
    );
}
per_backend!(unicode_case_variants_are_taken);
