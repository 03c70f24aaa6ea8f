//! The REST endpoint (`GET`/`PATCH /users/{id}`) end to end, on SQLite and
//! PostgreSQL: preconditions, problem bodies, tenancy, and agreement with
//! GraphQL.

mod common;

use common::{client_with_token, field_codes, pairs, Backend, TestApp, USER_FIELDS};
use reqwest::header::{CONTENT_TYPE, ETAG, IF_MATCH, IF_NONE_MATCH};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

fn user_url(app: &TestApp, id: &str) -> String {
    format!("http://{}/users/{id}", app.address)
}

/// The response's status, `ETag` header and JSON body (`null` if none).
async fn parts(response: Response) -> (StatusCode, Option<String>, Value) {
    let status = response.status();
    let etag = response
        .headers()
        .get(ETAG)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, etag, body)
}

/// `PATCH`es `body` to `url` with `precondition` (a header and its value).
async fn patch(
    client: &reqwest::Client,
    url: &str,
    precondition: Option<(reqwest::header::HeaderName, &str)>,
    body: Value,
) -> (StatusCode, Option<String>, Value) {
    let mut request = client.patch(url).json(&body);
    if let Some((name, value)) = precondition {
        request = request.header(name, value);
    }
    parts(request.send().await.unwrap()).await
}

async fn get(app: &TestApp, id: &str) -> (StatusCode, Option<String>, Value) {
    parts(app.client.get(user_url(app, id)).send().await.unwrap()).await
}

fn tag(user: &Value) -> String {
    format!("\"{}\"", user["updatedAt"].as_str().unwrap())
}

/// The README's walkthrough over REST: read, update with the ETag, and the
/// same ETag again is stale.
async fn patch_with_if_match_then_stale(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let (status, etag, before) = get(&app, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(etag.as_deref(), Some(tag(&before).as_str()));
    assert_eq!(before["wallets"].as_array().unwrap().len(), 2, "{before}");

    let url = user_url(&app, &id);
    let input = json!({ "firstName": "Augusta", "jobTitle": null });
    let (status, etag, after) =
        patch(&app.client, &url, Some((IF_MATCH, &tag(&before))), input).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(etag.as_deref(), Some(tag(&after).as_str()));
    assert!(after["updatedAt"].as_str() > before["updatedAt"].as_str());
    assert_eq!(after["firstName"], "Augusta");
    assert_eq!(after["jobTitle"], Value::Null);
    assert_eq!(
        after["lastName"], before["lastName"],
        "a field left out is kept"
    );
    assert_eq!(after["sessions"], before["sessions"]);
    assert_eq!(after["mfaDevices"], before["mfaDevices"]);

    let input = json!({ "firstName": "Ada" });
    let (status, etag, problem) =
        patch(&app.client, &url, Some((IF_MATCH, &tag(&before))), input).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{problem}");
    assert_eq!(problem["code"], "PRECONDITION_FAILED");
    assert_eq!(problem["status"], 412);
    assert_eq!(problem["currentUser"], after, "the current user, whole");
    assert_eq!(etag.as_deref(), Some(tag(&after).as_str()));

    // A conditional GET of the version held: not modified.
    let response = app
        .client
        .get(&url)
        .header(IF_NONE_MATCH, tag(&after))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()[ETAG].to_str().unwrap(), tag(&after));
    let response = app
        .client
        .get(&url)
        .header(IF_NONE_MATCH, tag(&before))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
per_backend!(patch_with_if_match_then_stale);

/// Without a precondition naming a version nothing is written (428); the
/// original API's bare `ETag` request header works, in any offset; a tag
/// that can name no version is stale (412).
async fn preconditions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let url = user_url(&app, &id);
    let (_, _, user) = get(&app, &id).await;
    let input = json!({ "team": "Blue" });

    for precondition in [None, Some((IF_MATCH, "*"))] {
        let (status, _, problem) = patch(&app.client, &url, precondition, input.clone()).await;
        assert_eq!(status, StatusCode::PRECONDITION_REQUIRED, "{problem}");
        assert_eq!(problem["code"], "PRECONDITION_REQUIRED");
    }
    for stale in ["W/\"2026-01-01T00:00:00Z\"", "\"not a version\""] {
        let (status, _, problem) =
            patch(&app.client, &url, Some((IF_MATCH, stale)), input.clone()).await;
        assert_eq!(
            status,
            StatusCode::PRECONDITION_FAILED,
            "{stale}: {problem}"
        );
        assert_eq!(problem["currentUser"]["id"], id.as_str());
    }
    let malformed = [(IF_MATCH, "garbage"), (ETAG, "last tuesday")];
    for precondition in malformed {
        let (status, _, problem) =
            patch(&app.client, &url, Some(precondition), input.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    }
    assert_eq!(get(&app, &id).await.2, user, "nothing was written");

    // The same instant written with an offset, as the original API's header.
    let instant: chrono::DateTime<chrono::FixedOffset> =
        user["updatedAt"].as_str().unwrap().parse().unwrap();
    let plus_two = instant
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    let (status, _, updated) =
        patch(&app.client, &url, Some((ETAG, &plus_two)), input.clone()).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["team"], "Blue");
}
per_backend!(preconditions);

/// Every bad field is reported at once, with `FieldError`'s codes, and
/// nothing is written.
async fn invalid_input_reports_every_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let url = user_url(&app, &id);
    let (_, _, user) = get(&app, &id).await;
    let precondition = Some((IF_MATCH, tag(&user)));
    let precondition = precondition.as_ref().map(|(h, v)| (h.clone(), v.as_str()));

    let input = json!({ "email": "not-an-email", "country": "XX", "username": "has space", "firstName": "Ada" });
    let (status, _, problem) = patch(&app.client, &url, precondition.clone(), input).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "VALIDATION_FAILED");
    assert_eq!(
        field_codes(&problem["errors"]),
        pairs(&[
            ("country", "INVALID_COUNTRY"),
            ("email", "INVALID_EMAIL"),
            ("username", "INVALID_USERNAME")
        ])
    );

    let input = json!({ "firstName": 5, "shoeSize": 44, "chain": "NOPE", "lastVisit": "soon" });
    let (status, _, problem) = patch(&app.client, &url, precondition.clone(), input).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        field_codes(&problem["errors"]),
        pairs(&[
            ("chain", "INVALID_VALUE"),
            ("firstName", "INVALID_VALUE"),
            ("lastVisit", "INVALID_VALUE"),
            ("shoeSize", "UNKNOWN_FIELD"),
        ])
    );
    assert_eq!(get(&app, &id).await.2, user, "nothing was written");

    // Not JSON, not an object, not declared as JSON.
    let response = app
        .client
        .patch(&url)
        .header(IF_MATCH, tag(&user))
        .header(CONTENT_TYPE, "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
    let (status, _, _) = patch(&app.client, &url, precondition.clone(), json!([1])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let response = app
        .client
        .patch(&url)
        .header(IF_MATCH, tag(&user))
        .header(CONTENT_TYPE, "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
per_backend!(invalid_input_reports_every_field);

/// Another environment's user is as absent as one that never existed,
/// under `/users` and under `/environments/{id}/users`.
async fn other_environments_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let (_, _, user) = get(&app, &id).await;
    let own = usergraph::default_scope().environment_id;
    let other = app.repo.create_environment("B", &[]).await.unwrap();
    let other_token = app.repo.create_token(other, "b").await.unwrap().token;
    let outsider = client_with_token(&other_token);
    let base = format!("http://{}", app.address);

    let precondition = Some((IF_MATCH, tag(&user)));
    let precondition = precondition.as_ref().map(|(h, v)| (h.clone(), v.as_str()));
    for (client, url) in [
        (&outsider, format!("{base}/users/{id}")),
        (&outsider, format!("{base}/environments/{own}/users/{id}")),
        (
            &app.client,
            format!("{base}/environments/{other}/users/{id}"),
        ),
        (
            &app.client,
            format!("{base}/environments/not-a-uuid/users/{id}"),
        ),
        (
            &app.client,
            format!("{base}/users/{}", uuid::Uuid::new_v4()),
        ),
        (&app.client, format!("{base}/users/not-a-uuid")),
    ] {
        let (status, _, problem) =
            patch(client, &url, precondition.clone(), json!({ "team": "x" })).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{url}: {problem}");
        assert_eq!(problem["code"], "NOT_FOUND");
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{url}");
    }
    assert_eq!(get(&app, &id).await.2, user, "nothing was written");

    // The environment-scoped form of the token's own environment works.
    let url = format!("{base}/environments/{own}/users/{id}");
    let (status, _, updated) = patch(&app.client, &url, precondition, json!({ "team": "x" })).await;
    assert_eq!(status, StatusCode::OK, "{updated}");

    // And a request without a token is refused as GraphQL refuses it.
    let response = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
}
per_backend!(other_environments_are_not_found);

/// A change made over REST is the change GraphQL sees, and the reverse; a
/// REST user is GraphQL's `User`, field for field.
async fn rest_and_graphql_agree(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let (_, _, before) = get(&app, &id).await;
    let (status, _, after) = patch(
        &app.client,
        &user_url(&app, &id),
        Some((IF_MATCH, &tag(&before))),
        json!({ "team": "Red" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let seen = app.read_user(&id).await;
    for (field, value) in seen.as_object().unwrap() {
        assert_eq!(&after[field], value, "{field}");
    }
    let query = format!(
        "query($id: ID!) {{ user(id: $id) {{ {USER_FIELDS} missingFields {{ field }} }} }}"
    );
    let graphql = app.gql(&query, json!({ "id": id })).await["user"].clone();
    assert_eq!(graphql, after, "the same fields and values");

    let result = app
        .update(
            &id,
            after["updatedAt"].as_str().unwrap(),
            json!({ "team": "Green" }),
        )
        .await;
    assert_eq!(result["__typename"], "UpdateUserSuccess");
    let (_, etag, now) = get(&app, &id).await;
    assert_eq!(now["team"], "Green");
    assert_eq!(now["updatedAt"], result["user"]["updatedAt"]);
    assert_eq!(
        etag,
        Some(format!(
            "\"{}\"",
            result["user"]["updatedAt"].as_str().unwrap()
        ))
    );
}
per_backend!(rest_and_graphql_agree);

/// 32 PATCHes holding one ETag: exactly one applies.
async fn concurrent_patches_with_one_etag(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let (_, etag, _) = get(&app, &id).await;
    let (etag, url) = (etag.unwrap(), user_url(&app, &id));
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (client, url, etag) = (app.client.clone(), url.clone(), etag.clone());
            tokio::spawn(async move {
                patch(
                    &client,
                    &url,
                    Some((IF_MATCH, &etag)),
                    json!({ "team": format!("team-{i}") }),
                )
                .await
                .0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    assert_eq!(count(StatusCode::OK), 1, "{statuses:?}");
    assert_eq!(count(StatusCode::PRECONDITION_FAILED), 31, "{statuses:?}");
}
per_backend!(concurrent_patches_with_one_etag);

#[test]
fn committed_openapi_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"))
        .expect("openapi.json at the crate root");
    assert!(
        committed == usergraph::http::openapi::document_text(),
        "openapi.json is out of date: run `cargo run -- openapi > openapi.json`"
    );
}

async fn the_document_is_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let served: Value = reqwest::get(format!("http://{}/openapi.json", app.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let committed: Value =
        serde_json::from_str(&usergraph::http::openapi::document_text()).unwrap();
    assert_eq!(served, committed);
}
per_backend!(the_document_is_served);
