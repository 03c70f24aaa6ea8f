//! Abuse limits, introspection and request timeouts, on SQLite and
//! PostgreSQL.

mod common;

use common::{error_code, Backend, Setup, TestApp, USER_SUMMARY};
use diesel_async::SimpleAsyncConnection;
use reqwest::StatusCode;
use serde_json::json;
use usergraph::config::{DatabaseUrl, Limits};
use usergraph::graphql::SchemaOptions;
use usergraph::http::HttpOptions;

/// Small limits, to test each just under and just over.
fn small_limits() -> Limits {
    Limits {
        max_depth: 4,
        max_complexity: 41,
        max_aliases: 2,
        max_root_fields: 3,
        max_query_bytes: 300,
        max_body_bytes: 2_000,
        ..Limits::default()
    }
}

async fn spawn_with_small_limits(backend: Backend) -> TestApp {
    let limits = small_limits();
    TestApp::spawn_with(
        backend,
        Setup {
            schema: SchemaOptions {
                limits: limits.clone(),
                ..SchemaOptions::default()
            },
            http: HttpOptions {
                limits,
                ..HttpOptions::default()
            },
            ..Setup::default()
        },
    )
    .await
}

async fn introspection_is_on_by_default(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let data = app
        .gql("{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
}
per_backend!(introspection_is_on_by_default);

/// The introspection query GraphiQL and code generators send passes the
/// default limits.
async fn full_introspection_passes_default_limits(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let data = app.gql(INTROSPECTION_QUERY, json!({})).await;
    assert!(data["__schema"]["types"].as_array().unwrap().len() > 20);
}
per_backend!(full_introspection_passes_default_limits);

async fn introspection_can_be_switched_off(backend: Backend) {
    let setup = Setup {
        schema: SchemaOptions {
            disable_introspection: true,
            ..SchemaOptions::default()
        },
        ..Setup::default()
    };
    let app = TestApp::spawn_with(backend, setup).await;
    for query in [
        "{ __schema { queryType { name } } }",
        "{ __type(name: \"User\") { name } }",
    ] {
        let (_, body) = app.post(json!({ "query": query })).await;
        assert_eq!(error_code(&body), "INTROSPECTION_DISABLED", "{body}");
        assert!(body.get("data").is_none());
    }
    assert_eq!(
        app.gql("{ __typename }", json!({})).await["__typename"],
        "Query"
    );
}
per_backend!(introspection_can_be_switched_off);

/// Each limit just under and just over its value; refusals run no SQL
/// beyond the token lookup. Each refused query is sent twice: the second
/// time its text and validation are remembered (`graphql::Service` runs
/// such requests without the pipeline's extension), and it is refused all
/// the same.
async fn limits_hold_at_their_values(backend: Backend) {
    let app = spawn_with_small_limits(backend).await;
    let refused = |query: &str, code: &str| {
        let (app, query, code) = (&app, query.to_owned(), code.to_owned());
        async move {
            for _ in 0..2 {
                let before = app.repo.db().statements_run();
                let (status, body) = app.post(json!({ "query": query })).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(self::error_code(&body), code, "{query}: {body}");
                assert!(
                    body["errors"][0]["message"]
                        .as_str()
                        .unwrap()
                        .contains("at most"),
                    "{body}"
                );
                assert_eq!(
                    app.repo.db().statements_run() - before,
                    1,
                    "only the token lookup ran"
                );
            }
        }
    };
    let accepted = |query: &str| {
        let (app, query) = (&app, query.to_owned());
        async move {
            let (_, body) = app.post(json!({ "query": query })).await;
            assert!(body.get("errors").is_none(), "{query}: {body}");
        }
    };

    // Depth 4 passes, 5 is refused.
    accepted("{ users(first: 1) { edges { node { id } } } }").await;
    refused(
        "{ users(first: 1) { edges { node { wallets { id } } } } }",
        "DEPTH_LIMIT_EXCEEDED",
    )
    .await;
    // Cost: a page costs its size times one node (edges, node, id, email: 4),
    // plus one: 41 for ten users, 45 for eleven.
    accepted("{ users(first: 10) { edges { node { id email } } } }").await;
    refused(
        "{ users(first: 11) { edges { node { id email } } } }",
        "COMPLEXITY_LIMIT_EXCEEDED",
    )
    .await;
    // Two aliases pass, three are refused.
    accepted("{ a: __typename b: __typename }").await;
    refused(
        "{ a: __typename b: __typename c: __typename }",
        "ALIAS_LIMIT_EXCEEDED",
    )
    .await;
    // Three root fields pass, four are refused (fragments count too).
    accepted("{ __typename x: __typename ...F } fragment F on Query { __typename }").await;
    refused("{ __typename ...F } fragment F on Query { __typename users(first: 1) { totalCount } node(id: \"x\") { id } }", "ROOT_FIELD_LIMIT_EXCEEDED").await;
    // Query text: 300 bytes pass, 301 are refused.
    let padded = |len: usize| {
        let query = "{ __typename }";
        format!("{query}{}", " ".repeat(len - query.len()))
    };
    accepted(&padded(300)).await;
    refused(&padded(301), "QUERY_TOO_LARGE").await;

    // Body: 2000 bytes pass, 2001 are refused with 413.
    let body_of = |len: usize| {
        let shell = json!({ "query": "{ __typename }", "variables": { "p": "" } }).to_string();
        json!({ "query": "{ __typename }", "variables": { "p": "x".repeat(len - shell.len()) } })
            .to_string()
    };
    for (len, status) in [
        (2000, StatusCode::OK),
        (2001, StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let body = body_of(len);
        assert_eq!(body.len(), len);
        let response = app
            .client
            .post(app.endpoint())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{len} bytes");
        if status != StatusCode::OK {
            assert_eq!(
                error_code(&response.json().await.unwrap()),
                "PAYLOAD_TOO_LARGE"
            );
        }
    }

    // Batches are refused.
    let response = app
        .client
        .post(app.endpoint())
        .header("content-type", "application/json")
        .body(r#"[{"query":"{ __typename }"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        error_code(&response.json().await.unwrap()),
        "BATCHING_NOT_SUPPORTED"
    );
}
per_backend!(limits_hold_at_their_values);

/// Holds the write lock of the user's row (PostgreSQL) or of the whole
/// database (SQLite) until the returned guard's `release`.
enum WriteLock {
    Postgres(Box<diesel_async::AsyncPgConnection>),
    Sqlite(diesel::SqliteConnection),
}

impl WriteLock {
    async fn take(url: &DatabaseUrl, user: &str) -> WriteLock {
        match url {
            DatabaseUrl::Postgres(url) => {
                use diesel_async::AsyncConnection;
                let mut conn = diesel_async::AsyncPgConnection::establish(url)
                    .await
                    .unwrap();
                let lock = format!("BEGIN; SELECT id FROM users WHERE id = '{user}' FOR UPDATE;");
                conn.batch_execute(&lock).await.unwrap();
                WriteLock::Postgres(Box::new(conn))
            }
            DatabaseUrl::Sqlite(path) => {
                use diesel::connection::SimpleConnection;
                use diesel::Connection;
                let mut conn =
                    diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
                conn.batch_execute("BEGIN IMMEDIATE").unwrap();
                WriteLock::Sqlite(conn)
            }
        }
    }

    async fn release(self) {
        match self {
            WriteLock::Postgres(mut conn) => conn.batch_execute("ROLLBACK").await.unwrap(),
            WriteLock::Sqlite(mut conn) => {
                use diesel::connection::SimpleConnection;
                conn.batch_execute("ROLLBACK").unwrap()
            }
        }
    }
}

/// A request that outlives the timeout is answered with a clear error; one
/// that finishes in time is not.
async fn requests_time_out(backend: Backend) {
    let limits = Limits {
        request_timeout_ms: 500,
        ..Limits::default()
    };
    let setup = Setup {
        http: HttpOptions {
            limits,
            ..HttpOptions::default()
        },
        ..Setup::default()
    };
    let app = TestApp::spawn_with(backend, setup).await;
    let id = app.seed(1).await.remove(0);
    let version = app.read_user(&id).await["updatedAt"]
        .as_str()
        .unwrap()
        .to_owned();

    // Blocked behind another writer's lock: cut off at 500 ms.
    let lock = WriteLock::take(&app.url, &id).await;
    let update = json!({
        "query": common::update_user_document(),
        "variables": { "id": id, "version": version, "input": { "team": "late" } },
    });
    let (status, body) = app.post(update.clone()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), "REQUEST_TIMEOUT");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("500 ms"));
    // The blocked write gives up in the database at the same timeout (its
    // statement or lock wait is bounded by it), so it does not land once the
    // lock is gone: the 503 means "not written".
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    lock.release().await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let user = app.read_user(&id).await;
    assert_ne!(user["team"], "late");
    assert_eq!(user["updatedAt"], version.as_str());

    // The server keeps serving on the same pool, and the retry applies.
    let retried = app.update(&id, &version, json!({ "team": "late" })).await;
    assert_eq!(retried["__typename"], "UpdateUserSuccess", "{retried}");
}
per_backend!(requests_time_out);

/// The introspection query of GraphiQL (graphql-js `getIntrospectionQuery`).
const INTROSPECTION_QUERY: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
"#;

/// Far more concurrent requests than pooled connections: they wait their
/// turn (the pool's wait is bounded) and every one is answered.
async fn more_requests_than_connections(backend: Backend) {
    let setup = Setup {
        max_connections: 2,
        ..Setup::default()
    };
    let app = std::sync::Arc::new(TestApp::spawn_with(backend, setup).await);
    let ids = app.seed(16).await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (app, id) = (app.clone(), ids[i % ids.len()].clone());
            tokio::spawn(async move {
                let (status, body) = app
                    .post(json!({ "query": USER_SUMMARY, "variables": { "id": id } }))
                    .await;
                (status, body["data"]["user"]["id"] == id.as_str())
            })
        })
        .collect();
    for task in tasks {
        let (status, answered) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(answered);
    }
}
per_backend!(more_requests_than_connections);

/// A document nested deeper than any query needs is refused before it is
/// parsed: 10 KB of `[[[[…` used to overflow a worker's stack and abort the
/// whole process.
async fn deeply_nested_documents_are_refused_and_the_server_lives(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let lists = format!(
        "query {{ users(first: {}1{}) {{ totalCount }} }}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let selections = format!(
        "{}{}",
        "{ user(id: \"x\") ".repeat(1_500),
        "}".repeat(1_500)
    );
    let objects = format!(
        "query {{ users(filter: {}) {{ totalCount }} }}",
        "{a: ".repeat(3_000) + "1" + &"}".repeat(3_000)
    );
    for document in [lists, selections, objects] {
        let (status, body) = app.post(json!({ "query": document })).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(error_code(&body), "DEPTH_LIMIT_EXCEEDED", "{body}");
    }
    let data = app.gql(USER_SUMMARY, json!({ "id": id })).await;
    assert_eq!(data["user"]["id"], id.as_str());
}
per_backend!(deeply_nested_documents_are_refused_and_the_server_lives);

/// A validation is remembered only where the variables' values cannot
/// change its outcome (`graphql/parse_cache.rs`): after the same text
/// passed, a value of the wrong type, or a page made larger through a
/// variable, is still refused.
async fn remembered_validations_still_check_each_requests_variables(backend: Backend) {
    let app = spawn_with_small_limits(backend).await;
    let id = app.seed(1).await.remove(0);
    let read = "query($id: ID!) { user(id: $id) { id } }";
    let send = |query: &'static str, variables: serde_json::Value| {
        let app = &app;
        async move {
            let (status, body) = app
                .post(json!({ "query": query, "variables": variables }))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    for _ in 0..2 {
        let body = send(read, json!({ "id": id })).await;
        assert_eq!(body["data"]["user"]["id"], id.as_str(), "{body}");
    }
    let body = send(read, json!({ "id": true })).await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Invalid value for argument"), "{body}");
    assert!(body["data"].is_null(), "refused before running: {body}");

    // A custom scalar's value is checked by the scalar on every request:
    // after a stale but well-formed version passed (a conflict), one that
    // is not an instant is still refused by validation, with its code.
    let update = "mutation($id: ID!, $v: DateTime!) { \
        updateUser(id: $id, expectedUpdatedAt: $v, input: { firstName: \"Ada\" }) { __typename } }";
    for _ in 0..2 {
        let body = send(update, json!({ "id": id, "v": "2000-01-01T00:00:00Z" })).await;
        assert_eq!(
            body["data"]["updateUser"]["__typename"], "UpdateConflict",
            "{body}"
        );
    }
    for bad in [json!("yesterday"), json!(5)] {
        let body = send(update, json!({ "id": id, "v": bad })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(body["data"].is_null(), "refused before running: {body}");
    }

    // The page size is read by the cost: 10 users cost 41, 11 cost 45.
    let page = "query($n: Int) { users(first: $n) { edges { node { id email } } } }";
    for _ in 0..2 {
        let body = send(page, json!({ "n": 10 })).await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    let body = send(page, json!({ "n": 11 })).await;
    assert_eq!(error_code(&body), "COMPLEXITY_LIMIT_EXCEEDED", "{body}");
}
per_backend!(remembered_validations_still_check_each_requests_variables);
