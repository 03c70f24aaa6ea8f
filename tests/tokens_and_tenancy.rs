//! API tokens and tenant isolation, on SQLite and PostgreSQL.

mod common;

use common::{client_with_token, error_code, post_as, Backend, Setup, TestApp, USER_SUMMARY};
use reqwest::StatusCode;
use serde_json::{json, Value};
use usergraph::repo::Scope;

async fn requests_need_a_valid_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let body = json!({ "query": USER_SUMMARY, "variables": { "id": id } });
    let anonymous = reqwest::Client::new();
    let wrong = client_with_token("ugt_not-a-real-token");
    let revoked_token = app
        .repo
        .create_token(usergraph::default_scope().environment_id, "old")
        .await
        .unwrap();
    assert!(app.repo.revoke_token(&revoked_token.token).await.unwrap());
    let revoked = client_with_token(&revoked_token.token);
    let by_id = app
        .repo
        .create_token(usergraph::default_scope().environment_id, "by-id")
        .await
        .unwrap();
    assert!(app.repo.revoke_token(&by_id.id.to_string()).await.unwrap());
    let revoked_by_id = client_with_token(&by_id.token);

    for client in [&anonymous, &wrong, &revoked, &revoked_by_id] {
        let response = client
            .post(app.endpoint())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
        assert!(body.get("data").is_none());
    }
    let (status, body) = post_as(&app.client, &app, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["user"]["id"], id.as_str());

    // The playground page and the health check need no token.
    assert_eq!(
        anonymous
            .get(app.endpoint())
            .header("accept", "text/html")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let health = anonymous
        .get(format!("http://{}/health", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}
per_backend!(requests_need_a_valid_token);

async fn another_environment_is_invisible(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let other = app.repo.create_environment("B", &[]).await.unwrap();
    let theirs = app.seed_in(Scope::of_environment(other), 1).await.remove(0);
    let ours = app.seed(1).await.remove(0);
    let b_token = app.repo.create_token(other, "b").await.unwrap().token;
    let b = client_with_token(&b_token);
    let before: Value = post_as(&b, &app, json!({ "query": format!("query($id: ID!) {{ user(id: $id) {{ {} }} }}", common::USER_FIELDS), "variables": { "id": theirs } })).await.1;
    let version = before["data"]["user"]["updatedAt"].clone();
    let wallet = before["data"]["user"]["wallets"][0]["id"].clone();
    let session = before["data"]["user"]["sessions"][0]["id"].clone();

    // A's token: B's user does not exist, whatever A tries.
    assert_eq!(
        app.gql(USER_SUMMARY, json!({ "id": theirs })).await["user"],
        Value::Null
    );
    assert_eq!(
        app.gql(
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": wallet })
        )
        .await["node"],
        Value::Null
    );
    let result = app
        .update(
            &theirs,
            version.as_str().unwrap(),
            json!({ "team": "A was here" }),
        )
        .await;
    assert_eq!(result["__typename"], "UserNotFound");
    let deleted = app
        .gql("mutation($id: ID!, $v: DateTime!) { deleteUser(id: $id, expectedUpdatedAt: $v) { __typename } }", json!({ "id": theirs, "v": version }))
        .await;
    assert_eq!(deleted["deleteUser"]["__typename"], "UserNotFound");
    let revoked = app
        .gql("mutation($u: ID!, $v: DateTime!, $s: ID!) { revokeSession(userId: $u, expectedUpdatedAt: $v, sessionId: $s) { __typename } }", json!({ "u": theirs, "v": version, "s": session }))
        .await;
    assert_eq!(revoked["revokeSession"]["__typename"], "UserNotFound");
    let listed = app
        .gql(
            "{ users(first: 100) { totalCount edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["users"]["totalCount"], 1);
    assert_eq!(listed["users"]["edges"][0]["node"]["id"], ours.as_str());

    // B's user is untouched, and B sees only B.
    let after: Value = post_as(&b, &app, json!({ "query": format!("query($id: ID!) {{ user(id: $id) {{ {} }} }}", common::USER_FIELDS), "variables": { "id": theirs } })).await.1;
    assert_eq!(after, before);
    let (_, mine) = post_as(
        &b,
        &app,
        json!({ "query": USER_SUMMARY, "variables": { "id": ours } }),
    )
    .await;
    assert_eq!(mine["data"]["user"], Value::Null);
}
per_backend!(another_environment_is_invisible);

/// A valid token is looked up once, then remembered; revoking it in the
/// same process takes effect at once.
async fn token_lookups_are_remembered_until_revoked(backend: Backend) {
    let setup = Setup {
        token_cache_ms: 60_000,
        ..Setup::default()
    };
    let app = TestApp::spawn_with(backend, setup).await;
    let statements = || app.repo.db().statements_run();
    let query = json!({ "query": "{ __typename }" });
    let before = statements();
    assert_eq!(app.post(query.clone()).await.0, StatusCode::OK);
    assert_eq!(
        statements() - before,
        1,
        "the first request looks the token up"
    );
    let before = statements();
    assert_eq!(app.post(query.clone()).await.0, StatusCode::OK);
    assert_eq!(statements() - before, 0, "the second finds it remembered");
    assert!(app.repo.revoke_token(&app.token).await.unwrap());
    assert_eq!(app.post(query).await.0, StatusCode::UNAUTHORIZED);
}
per_backend!(token_lookups_are_remembered_until_revoked);
