//! Tokens, tenant isolation, abuse limits, CORS, error masking and the demo
//! mode, on SQLite and PostgreSQL.

mod common;

use common::process::{last_line, run, usergraph, Server};
use common::{client_with_token, Backend, Setup, TestApp, TestDb};
use diesel_async::SimpleAsyncConnection;
use reqwest::StatusCode;
use serde_json::{json, Value};
use usergraph::config::{DatabaseUrl, Limits};
use usergraph::graphql::SchemaOptions;
use usergraph::http::HttpOptions;
use usergraph::repo::Scope;

const USER: &str = "query($id: ID!) { user(id: $id) { id team updatedAt } }";

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

async fn post_as(client: &reqwest::Client, app: &TestApp, body: Value) -> (StatusCode, Value) {
    let response = client
        .post(app.endpoint())
        .json(&body)
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

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

async fn spawn_with_small_limits(backend: Backend) -> Option<TestApp> {
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

both_backends! {
    async fn requests_need_a_valid_token(app: TestApp) {
        let id = app.seed(1).await.remove(0);
        let body = json!({ "query": USER, "variables": { "id": id } });
        let anonymous = reqwest::Client::new();
        let wrong = client_with_token("ugt_not-a-real-token");
        let revoked_token = app.repo.create_token(usergraph::default_scope().environment_id, "old").await.unwrap();
        assert!(app.repo.revoke_token(&revoked_token.token).await.unwrap());
        let revoked = client_with_token(&revoked_token.token);
        let by_id = app.repo.create_token(usergraph::default_scope().environment_id, "by-id").await.unwrap();
        assert!(app.repo.revoke_token(&by_id.id.to_string()).await.unwrap());
        let revoked_by_id = client_with_token(&by_id.token);

        for client in [&anonymous, &wrong, &revoked, &revoked_by_id] {
            let response = client.post(app.endpoint()).json(&body).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: Value = response.json().await.unwrap();
            assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
            assert!(body.get("data").is_none());
        }
        let (status, body) = post_as(&app.client, &app, body).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["data"]["user"]["id"], id.as_str());

        // The playground page and the health check need no token.
        assert_eq!(anonymous.get(app.endpoint()).send().await.unwrap().status(), StatusCode::OK);
        let health = anonymous.get(format!("http://{}/health", app.address)).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
    }

    async fn another_environment_is_invisible(app: TestApp) {
        let other = app.repo.create_environment("B", &[]).await.unwrap();
        let theirs = app.seed_in(Scope { environment_id: other }, 1).await.remove(0);
        let ours = app.seed(1).await.remove(0);
        let b_token = app.repo.create_token(other, "b").await.unwrap().token;
        let b = client_with_token(&b_token);
        let before: Value = post_as(&b, &app, json!({ "query": format!("query($id: ID!) {{ user(id: $id) {{ {} }} }}", common::USER_FIELDS), "variables": { "id": theirs } })).await.1;
        let version = before["data"]["user"]["updatedAt"].clone();
        let wallet = before["data"]["user"]["wallets"][0]["id"].clone();
        let session = before["data"]["user"]["sessions"][0]["id"].clone();

        // A's token: B's user does not exist, whatever A tries.
        assert_eq!(app.gql(USER, json!({ "id": theirs })).await["user"], Value::Null);
        assert_eq!(app.gql("query($id: ID!) { node(id: $id) { id } }", json!({ "id": wallet })).await["node"], Value::Null);
        let result = app.update(&theirs, version.as_str().unwrap(), json!({ "team": "A was here" })).await;
        assert_eq!(result["__typename"], "UserNotFound");
        let deleted = app
            .gql("mutation($id: ID!, $v: DateTime!) { deleteUser(id: $id, expectedUpdatedAt: $v) { __typename } }", json!({ "id": theirs, "v": version }))
            .await;
        assert_eq!(deleted["deleteUser"]["__typename"], "UserNotFound");
        let revoked = app
            .gql("mutation($u: ID!, $v: DateTime!, $s: ID!) { revokeSession(userId: $u, expectedUpdatedAt: $v, sessionId: $s) { __typename } }", json!({ "u": theirs, "v": version, "s": session }))
            .await;
        assert_eq!(revoked["revokeSession"]["__typename"], "UserNotFound");
        let listed = app.gql("{ users(first: 100) { totalCount edges { node { id } } } }", json!({})).await;
        assert_eq!(listed["users"]["totalCount"], 1);
        assert_eq!(listed["users"]["edges"][0]["node"]["id"], ours.as_str());

        // B's user is untouched, and B sees only B.
        let after: Value = post_as(&b, &app, json!({ "query": format!("query($id: ID!) {{ user(id: $id) {{ {} }} }}", common::USER_FIELDS), "variables": { "id": theirs } })).await.1;
        assert_eq!(after, before);
        let (_, mine) = post_as(&b, &app, json!({ "query": USER, "variables": { "id": ours } })).await;
        assert_eq!(mine["data"]["user"], Value::Null);
    }

    async fn introspection_is_on_by_default(app: TestApp) {
        let data = app.gql("{ __schema { queryType { name } } }", json!({})).await;
        assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    }
}

/// The introspection query GraphiQL and code generators send passes the
/// default limits.
async fn full_introspection_passes_default_limits(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let data = app.gql(INTROSPECTION_QUERY, json!({})).await;
    assert!(data["__schema"]["types"].as_array().unwrap().len() > 20);
}
per_backend!(
    full_introspection_passes_default_limits_test,
    super::full_introspection_passes_default_limits
);

async fn introspection_can_be_switched_off(backend: Backend) {
    let setup = Setup {
        schema: SchemaOptions {
            disable_introspection: true,
            ..SchemaOptions::default()
        },
        ..Setup::default()
    };
    let Some(app) = TestApp::spawn_with(backend, setup).await else {
        return;
    };
    for query in [
        "{ __schema { queryType { name } } }",
        "{ __type(name: \"User\") { name } }",
    ] {
        let (_, body) = app.post(json!({ "query": query })).await;
        assert_eq!(code(&body), "INTROSPECTION_DISABLED", "{body}");
        assert!(body.get("data").is_none());
    }
    assert_eq!(
        app.gql("{ __typename }", json!({})).await["__typename"],
        "Query"
    );
}
per_backend!(
    introspection_can_be_switched_off_test,
    super::introspection_can_be_switched_off
);

/// Each limit just under and just over its value; refusals run no SQL
/// beyond the token lookup.
async fn limits_hold_at_their_values(backend: Backend) {
    let Some(app) = spawn_with_small_limits(backend).await else {
        return;
    };
    let refused = |query: &str, code: &str| {
        let (app, query, code) = (&app, query.to_owned(), code.to_owned());
        async move {
            let before = app.repo.db().statements_run();
            let (status, body) = app.post(json!({ "query": query })).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(self::code(&body), code, "{query}: {body}");
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
            assert_eq!(code(&response.json().await.unwrap()), "PAYLOAD_TOO_LARGE");
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
        code(&response.json().await.unwrap()),
        "BATCHING_NOT_SUPPORTED"
    );
}
per_backend!(
    limits_hold_at_their_values_test,
    super::limits_hold_at_their_values
);

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
    let Some(app) = TestApp::spawn_with(backend, setup).await else {
        return;
    };
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
    assert_eq!(code(&body), "REQUEST_TIMEOUT");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("500 ms"));
    lock.release().await;

    // Not cancelled halfway: once the lock is gone the operation completes
    // (a retry with the old version learns it through a conflict), and the
    // server keeps serving on the same pool.
    let mut team = Value::Null;
    for _ in 0..50 {
        team = app.read_user(&id).await["team"].clone();
        if team == "late" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(team, "late");
    let retried = app.update(&id, &version, json!({ "team": "late" })).await;
    assert_eq!(retried["__typename"], "UpdateConflict");
    let current = retried["currentUser"]["updatedAt"]
        .as_str()
        .unwrap()
        .to_owned();
    let in_time = app
        .update(&id, &current, json!({ "team": "on time" }))
        .await;
    assert_eq!(in_time["__typename"], "UpdateUserSuccess");
}
per_backend!(requests_time_out_test, super::requests_time_out);

/// CORS: listed origins get answers to real preflights, others do not;
/// credentials are never allowed.
async fn cors_follows_the_configured_origins(backend: Backend) {
    for (origins, localhost, origin, allowed) in [
        (
            vec!["https://app.example.com"],
            false,
            "https://app.example.com",
            Some("https://app.example.com"),
        ),
        (
            vec!["https://app.example.com"],
            false,
            "https://evil.example.com",
            None,
        ),
        (vec!["*"], false, "https://anywhere.example.com", Some("*")),
        (
            vec![],
            true,
            "http://localhost:5173",
            Some("http://localhost:5173"),
        ),
        (vec![], true, "https://localhost.example.com", None),
        (vec![], false, "http://localhost:5173", None),
    ] {
        let http = HttpOptions {
            cors_origins: origins.iter().map(|o| o.to_string()).collect(),
            cors_allow_localhost: localhost,
            ..HttpOptions::default()
        };
        let Some(app) = TestApp::spawn_with(
            backend,
            Setup {
                http,
                ..Setup::default()
            },
        )
        .await
        else {
            return;
        };
        let preflight = reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, app.endpoint())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap();
        let headers = preflight.headers();
        assert_eq!(
            headers
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            allowed,
            "{origins:?} {origin}"
        );
        assert!(headers.get("access-control-allow-credentials").is_none());
        if let Some(allowed) = allowed {
            assert!(preflight.status().is_success());
            let methods = headers["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(methods.contains("POST"), "{methods}");
            let allowed_headers = headers["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .to_lowercase();
            assert!(
                allowed_headers.contains("authorization"),
                "{allowed_headers}"
            );
            let response = app
                .client
                .post(app.endpoint())
                .header("origin", origin)
                .json(&json!({ "query": "{ __typename }" }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.headers()["access-control-allow-origin"], allowed);
        }
    }
}
per_backend!(
    cors_follows_the_configured_origins_test,
    super::cors_follows_the_configured_origins
);

/// Drops a table under a running server.
async fn break_database(url: &DatabaseUrl) {
    match url {
        DatabaseUrl::Postgres(url) => {
            use diesel_async::AsyncConnection;
            let mut conn = diesel_async::AsyncPgConnection::establish(url)
                .await
                .unwrap();
            conn.batch_execute("DROP TABLE chainalysis_checks")
                .await
                .unwrap();
        }
        DatabaseUrl::Sqlite(path) => {
            use diesel::connection::SimpleConnection;
            use diesel::Connection;
            let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
            conn.batch_execute("DROP TABLE chainalysis_checks").unwrap();
        }
    }
}

/// A database failure answers INTERNAL_SERVER_ERROR with a request id and
/// nothing internal; the server's log has the details under the same id.
async fn internal_failures_leak_nothing(backend: Backend) {
    let Some((_db, url)) = TestDb::create(backend).await else {
        return;
    };
    let text = url.to_string();
    let id = last_line(&run(usergraph(&["seed", "--users", "1"], Some(&text))));
    let token = last_line(&run(usergraph(&["token", "create"], Some(&text))));
    let server = Server::start(usergraph(
        &["serve", "--listen", "127.0.0.1:0"],
        Some(&text),
    ));
    break_database(&url).await;

    let query = json!({ "query": "query($id: ID!) { user(id: $id) { id chainalysisChecks { id } } }", "variables": { "id": id } });
    let response = client_with_token(&token)
        .post(&server.endpoint)
        .json(&query)
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    let error = &body["errors"][0];
    assert_eq!(error["message"], "internal server error");
    assert_eq!(error["extensions"]["code"], "INTERNAL_SERVER_ERROR");
    assert_eq!(error["extensions"]["requestId"], request_id.as_str());
    // (`chainalysisChecks` in `path` is the client's own field name.)
    for leak in [
        "chainalysis_checks",
        "no such table",
        "does not exist",
        "relation",
        "sql",
        "diesel",
        "database",
    ] {
        assert!(
            !text.to_lowercase().contains(&leak.to_lowercase()),
            "response leaks {leak:?}: {text}"
        );
    }
    let line = server.log_line(&request_id);
    assert!(
        line.contains("chainalysis_checks"),
        "the log has the details: {line}"
    );
}
per_backend!(
    internal_failures_leak_nothing_test,
    super::internal_failures_leak_nothing
);

/// Environments, tokens and seeding from the command line.
async fn command_line_manages_environments_and_tokens(backend: Backend) {
    let Some((_db, url)) = TestDb::create(backend).await else {
        return;
    };
    let url = url.to_string();
    let environment = last_line(&run(usergraph(
        &[
            "environment",
            "create",
            "--name",
            "shop",
            "--require",
            "email,phoneNumber",
        ],
        Some(&url),
    )));
    let seeded = run(usergraph(
        &["seed", "--users", "2", "--environment", &environment],
        Some(&url),
    ));
    let token = last_line(&run(usergraph(
        &[
            "token",
            "create",
            "--environment",
            &environment,
            "--name",
            "ci",
        ],
        Some(&url),
    )));
    assert!(token.starts_with("ugt_") && token.len() >= 40, "{token}");
    let server = Server::start(usergraph(&["serve", "--listen", "127.0.0.1:0"], Some(&url)));
    let client = client_with_token(&token);
    let list = json!({ "query": "{ users(first: 10) { edges { node { id projectEnvironmentId missingFields { field } } } } }" });
    let body: Value = client
        .post(&server.endpoint)
        .json(&list)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = body["data"]["users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, seeded.lines().collect::<Vec<_>>());
    assert_eq!(
        body["data"]["users"]["edges"][0]["node"]["projectEnvironmentId"],
        environment.as_str()
    );
    // Demo users have both fields the environment requires.
    assert_eq!(
        body["data"]["users"]["edges"][0]["node"]["missingFields"],
        json!([])
    );

    run(usergraph(&["token", "revoke", &token], Some(&url)));
    let response = client
        .post(&server.endpoint)
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let missing = usergraph(&["token", "revoke", &token], Some(&url))
        .output()
        .unwrap();
    assert!(
        !missing.status.success(),
        "revoking twice reports that nothing matched"
    );
}
per_backend!(
    command_line_manages_environments_and_tokens_test,
    super::command_line_manages_environments_and_tokens
);

/// The demo mode (no database named) prints a token that works and that
/// GraphiQL sends; naming a database turns all of that off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_prints_a_token_for_the_playground() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = usergraph(&["--listen", "127.0.0.1:0"], None);
    demo.current_dir(dir.path());
    let server = Server::start(demo);
    let banner = server.banner.join("\n");
    let token_line = server
        .banner
        .iter()
        .find(|line| line.contains("Bearer "))
        .unwrap_or_else(|| panic!("{banner}"));
    let token = token_line
        .split("Bearer ")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(
        server
            .banner
            .iter()
            .filter(|line| line.trim().len() == 36)
            .count(),
        usergraph::DEMO_USERS,
        "{banner}"
    );

    let page = reqwest::get(&server.endpoint)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("Bearer {token}")),
        "GraphiQL sends the demo token"
    );
    // Not to a page that names another host (another machine, DNS rebinding).
    let foreign = reqwest::Client::new()
        .get(&server.endpoint)
        .header("host", "rebound.example.com")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(foreign.contains("graphiql") && !foreign.contains("Bearer"));
    let body: Value = client_with_token(&token)
        .post(&server.endpoint)
        .json(&json!({ "query": "{ users { totalCount } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["users"]["totalCount"], usergraph::DEMO_USERS);
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, &server.endpoint)
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    drop(server);

    // A restart makes a new token and retires the old one.
    let mut again = usergraph(&["--listen", "127.0.0.1:0"], None);
    again.current_dir(dir.path());
    let server = Server::start(again);
    let response = client_with_token(&token)
        .post(&server.endpoint)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    drop(server);

    // With a database URL: no demo token, no token in the playground.
    let url = format!("sqlite://{}", dir.path().join("usergraph.db").display());
    let server = Server::start(usergraph(&["serve", "--listen", "127.0.0.1:0"], Some(&url)));
    assert!(
        !server.banner.join("\n").contains("Bearer"),
        "{:?}",
        server.banner
    );
    let page = reqwest::get(&server.endpoint)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Bearer"));
}

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
