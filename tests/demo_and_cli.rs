//! The command line and the demo mode.

mod common;

use common::process::{last_line, run, usergraph, Server};
use common::{client_with_token, Backend, TestDb};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Environments, tokens and seeding from the command line.
async fn command_line_manages_environments_and_tokens(backend: Backend) {
    let (_db, url) = TestDb::create(backend).await;
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

    // Revoked by another process: refused once the server's token cache
    // (default 1 s, `--token-cache-ms`) has let go of it.
    run(usergraph(&["token", "revoke", &token], Some(&url)));
    let revoked_at = std::time::Instant::now();
    loop {
        let response = client
            .post(&server.endpoint)
            .json(&list)
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            revoked_at.elapsed() < std::time::Duration::from_millis(1500),
            "a revoked token still works after the cache's time to live"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let missing = usergraph(&["token", "revoke", &token], Some(&url))
        .output()
        .unwrap();
    assert!(
        !missing.status.success(),
        "revoking twice reports that nothing matched"
    );
}
per_backend!(command_line_manages_environments_and_tokens);

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

    let page = reqwest::Client::new()
        .get(&server.endpoint)
        .header("accept", "text/html")
        .send()
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
        .header("accept", "text/html")
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
    let page = reqwest::Client::new()
        .get(&server.endpoint)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Bearer"));
}
