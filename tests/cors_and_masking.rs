//! CORS and the masking of internal failures, on SQLite and PostgreSQL.

mod common;

use common::process::{seeded_user_and_token, usergraph, Server};
use common::{client_with_token, Backend, Setup, TestApp, TestDb};
use diesel_async::SimpleAsyncConnection;
use serde_json::{json, Value};
use usergraph::config::DatabaseUrl;
use usergraph::http::HttpOptions;

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
        let app = TestApp::spawn_with(
            backend,
            Setup {
                http,
                ..Setup::default()
            },
        )
        .await;
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
per_backend!(cors_follows_the_configured_origins);

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
    let (_db, url) = TestDb::create(backend).await;
    let text = url.to_string();
    let (id, token) = seeded_user_and_token(&text);
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
per_backend!(internal_failures_leak_nothing);
