//! Database faults: PostgreSQL going away under a running server and
//! coming back (through a proxy the test cuts).

mod common;

use std::time::{Duration, Instant};

use common::proxy::{self, Proxy};
use common::{postgres_admin_url, Backend, Setup, TestApp, TestDb, USER_SUMMARY};
use reqwest::StatusCode;
use serde_json::{json, Value};
use usergraph::config::DatabaseUrl;

/// A server on a fresh PostgreSQL database reached through `proxy`.
async fn app_through(proxy: &Proxy, token_cache_ms: u64) -> TestApp {
    let (db, url) = TestDb::create(Backend::Postgres).await;
    let DatabaseUrl::Postgres(direct) = &url else {
        unreachable!("a PostgreSQL database")
    };
    let url = DatabaseUrl::Postgres(proxy::through(direct, proxy.address));
    let setup = Setup {
        token_cache_ms,
        ..Setup::default()
    };
    TestApp::spawn_on(Backend::Postgres, db, url, setup).await
}

/// The status, `Retry-After` and JSON body of a request, and how long it took.
async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Option<String>, Value, Duration) {
    let started = Instant::now();
    let response = request.send().await.expect("an answer");
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry_after, body, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn an_unreachable_database_is_a_retryable_503_and_recovery_is_automatic() {
    let Some(admin_url) = postgres_admin_url() else {
        return;
    };
    let proxy = Proxy::start(proxy::target(&admin_url)).await;
    // One server checks the token in the database on every request, the
    // other has it cached: the failure meets them at different stages.
    let uncached = app_through(&proxy, 0).await;
    let cached = app_through(&proxy, 600_000).await;
    let id = uncached.seed(1).await.remove(0);
    let other_id = cached.seed(1).await.remove(0);
    let read = |id: &str| json!({ "query": USER_SUMMARY, "variables": { "id": id } });
    let (status, body) = cached.post(read(&other_id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    proxy.cut();
    for (app, id) in [(&uncached, &id), (&cached, &other_id)] {
        let (status, retry_after, body, took) =
            send(app.client.post(app.endpoint()).json(&read(id))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(common::error_code(&body), "DATABASE_UNAVAILABLE", "{body}");
        assert!(took < Duration::from_secs(5), "failed fast: {took:?}");

        let rest = app.client.get(format!("http://{}/users/{id}", app.address));
        let (status, retry_after, problem, _) = send(rest).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(problem["code"], "DATABASE_UNAVAILABLE");

        let health = reqwest::Client::new().get(format!("http://{}/health", app.address));
        let (status, _, body, _) = send(health).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["status"], "unavailable");
    }

    proxy.restore();
    let restored = Instant::now();
    for (app, id) in [(&uncached, &id), (&cached, &other_id)] {
        loop {
            let (status, body) = app.post(read(id)).await;
            if status == StatusCode::OK && body["data"]["user"]["id"] == id.as_str() {
                break;
            }
            assert!(
                restored.elapsed() < Duration::from_secs(5),
                "still failing: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    eprintln!(
        "served again {:?} after the database came back",
        restored.elapsed()
    );
    let user = uncached.read_user(&id).await;
    let result = uncached
        .update(
            &id,
            user["updatedAt"].as_str().unwrap(),
            json!({ "team": "back" }),
        )
        .await;
    assert_eq!(result["__typename"], "UpdateUserSuccess", "{result}");
}
