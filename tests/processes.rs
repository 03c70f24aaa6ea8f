//! Several server processes on one database: the database, not the process,
//! decides each compare-and-set.

mod common;

use std::sync::Arc;

use common::process::{last_line, post_json, run, seeded_user_and_token, usergraph, Server};
use common::{Backend, TestDb};
use serde_json::{json, Value};

async fn two_processes_one_winner(backend: Backend) {
    let (_db, url) = TestDb::create(backend).await;
    let url = url.to_string();

    let seeded = run(usergraph(&["seed", "--users", "2"], Some(&url)));
    let ids: Vec<String> = seeded.lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 2, "seed prints one id per line");
    let id = ids[0].clone();
    let token = last_line(&run(usergraph(
        &["token", "create", "--name", "processes"],
        Some(&url),
    )));

    let serve = || Server::start(usergraph(&["serve", "--listen", "127.0.0.1:0"], Some(&url)));
    let servers = [serve(), serve()];
    let client = Arc::new(common::client_with_token(&token));
    let read = json!({ "query": "query($id: ID!) { user(id: $id) { updatedAt } }", "variables": { "id": id } });
    let user: Value = post_json(&client, &servers[0].endpoint, &read).await;
    let version = user["data"]["user"]["updatedAt"]
        .as_str()
        .expect("version")
        .to_owned();

    let mutation = "mutation($id: ID!, $v: DateTime!, $team: String) { \
        updateUser(id: $id, expectedUpdatedAt: $v, input: { team: $team }) { __typename } }";
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let client = client.clone();
            let endpoint = servers[i % 2].endpoint.clone();
            let body = json!({ "query": mutation, "variables": { "id": id, "v": version, "team": format!("t{i}") } });
            tokio::spawn(async move {
                let body: Value = post_json(&client, endpoint, &body).await;
                body["data"]["updateUser"]["__typename"].as_str().unwrap_or("error").to_owned()
            })
        })
        .collect();
    let mut kinds = Vec::new();
    for task in tasks {
        kinds.push(task.await.unwrap());
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
per_backend!(two_processes_one_winner);

/// An update acknowledged just before the process is killed (SIGKILL, no
/// shutdown) is stored: the commit precedes the answer.
async fn acknowledged_updates_survive_kill_9(backend: Backend) {
    let (_db, url) = TestDb::create(backend).await;
    let url = url.to_string();
    let (id, token) = seeded_user_and_token(&url);
    let client = common::client_with_token(&token);
    let serve = || Server::start(usergraph(&["serve", "--listen", "127.0.0.1:0"], Some(&url)));
    let read = json!({ "query": "query($id: ID!) { user(id: $id) { team updatedAt } }", "variables": { "id": id } });
    let mutation = "mutation($id: ID!, $v: DateTime!, $team: String) { \
        updateUser(id: $id, expectedUpdatedAt: $v, input: { team: $team }) { \
        ... on UpdateUserSuccess { user { team updatedAt } } } }";

    let mut acknowledged = Vec::new();
    for round in 0..3 {
        let server = serve();
        let user: Value = post_json(&client, &server.endpoint, &read).await;
        let user = &user["data"]["user"];
        if let Some(previous) = acknowledged.last() {
            assert_eq!(
                user, previous,
                "round {round}: the last acknowledged update is stored"
            );
        }
        let body = json!({ "query": mutation, "variables": { "id": id, "v": user["updatedAt"], "team": format!("round-{round}") } });
        let answer: Value = post_json(&client, &server.endpoint, &body).await;
        let written = answer["data"]["updateUser"]["user"].clone();
        assert_eq!(written["team"], format!("round-{round}"), "{answer}");
        acknowledged.push(written);
        drop(server); // SIGKILL at once
    }
    let server = serve();
    let user: Value = post_json(&client, &server.endpoint, &read).await;
    assert_eq!(&user["data"]["user"], acknowledged.last().unwrap());
}
per_backend!(acknowledged_updates_survive_kill_9);

/// SIGTERM with updates in flight: the server stops accepting, answers the
/// requests it took, and exits 0; every acknowledged update is stored.
async fn sigterm_finishes_in_flight_updates(backend: Backend) {
    let (_db, url) = TestDb::create(backend).await;
    let url = url.to_string();
    let seeded = run(usergraph(&["seed", "--users", "8"], Some(&url)));
    let ids: Vec<String> = seeded.lines().map(str::to_owned).collect();
    let token = last_line(&run(usergraph(&["token", "create"], Some(&url))));
    let client = Arc::new(common::client_with_token(&token));
    let mut server = Server::start(usergraph(&["serve", "--listen", "127.0.0.1:0"], Some(&url)));
    let endpoint = server.endpoint.clone();
    let read = "query($id: ID!) { user(id: $id) { updatedAt } }";
    let mut versions = Vec::new();
    for id in &ids {
        let body = json!({ "query": read, "variables": { "id": id } });
        let user: Value = post_json(&client, &endpoint, &body).await;
        versions.push(
            user["data"]["user"]["updatedAt"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mutation = "mutation($id: ID!, $v: DateTime!, $team: String) { \
        updateUser(id: $id, expectedUpdatedAt: $v, input: { team: $team }) { \
        ... on UpdateUserSuccess { user { team } } } }";
    let tasks: Vec<_> = ids
        .iter()
        .zip(&versions)
        .map(|(id, version)| {
            let (client, endpoint) = (client.clone(), endpoint.clone());
            let body = json!({ "query": mutation, "variables": { "id": id, "v": version, "team": "stopping" } });
            tokio::spawn(async move {
                let answer: Value = client.post(endpoint).json(&body).send().await.ok()?.json().await.ok()?;
                answer["data"]["updateUser"]["user"]["team"].as_str().map(str::to_owned)
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let status = server.terminate(std::time::Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "exited 0 within 10 s: {status:?}"
    );
    let mut acknowledged = Vec::new();
    for (task, id) in tasks.into_iter().zip(&ids) {
        if task.await.unwrap().as_deref() == Some("stopping") {
            acknowledged.push(id.clone());
        }
    }
    let server = Server::start(usergraph(&["serve", "--listen", "127.0.0.1:0"], Some(&url)));
    for id in &acknowledged {
        let body = json!({ "query": "query($id: ID!) { user(id: $id) { team } }", "variables": { "id": id } });
        let user: Value = post_json(&client, &server.endpoint, &body).await;
        assert_eq!(
            user["data"]["user"]["team"], "stopping",
            "{id} was acknowledged"
        );
    }
    eprintln!(
        "SIGTERM with {} updates in flight: {} acknowledged and stored",
        ids.len(),
        acknowledged.len()
    );
}
per_backend!(sigterm_finishes_in_flight_updates);

/// The embedded database under load: 32 clients reading and writing
/// through the server while another process (`usergraph seed`) writes to
/// the same file. SQLite has one writer at a time; every client still gets
/// a typed answer, never "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writers_wait_their_turn() {
    let (_db, url) = TestDb::create(Backend::Sqlite).await;
    let url = url.to_string();
    let seeded = run(usergraph(&["seed", "--users", "32"], Some(&url)));
    let ids: Vec<String> = seeded.lines().map(str::to_owned).collect();
    let token = last_line(&run(usergraph(&["token", "create"], Some(&url))));
    let client = Arc::new(common::client_with_token(&token));
    let server = Server::start(usergraph(&["serve", "--listen", "127.0.0.1:0"], Some(&url)));
    let mut seeder = usergraph(&["seed", "--users", "3000"], Some(&url))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start seed");

    let read = "query($id: ID!) { user(id: $id) { updatedAt } }";
    let write = "mutation($id: ID!, $v: DateTime!, $n: String) { \
        updateUser(id: $id, expectedUpdatedAt: $v, input: { team: $n }) { __typename } }";
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let (client, endpoint) = (client.clone(), server.endpoint.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                for round in 0..10 {
                    let body = json!({ "query": read, "variables": { "id": id } });
                    let user: Value = post_json(&client, &endpoint, &body).await;
                    let Some(version) = user["data"]["user"]["updatedAt"].as_str() else {
                        failures.push(user);
                        continue;
                    };
                    let body = json!({ "query": write, "variables": { "id": id, "v": version, "n": format!("r{round}") } });
                    let answer: Value = post_json(&client, &endpoint, &body).await;
                    if answer["data"]["updateUser"]["__typename"] != "UpdateUserSuccess" {
                        failures.push(answer);
                    }
                }
                failures
            })
        })
        .collect();
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await.unwrap());
    }
    let seeded = tokio::task::spawn_blocking(move || seeder.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(seeded.success(), "the seeding process was not refused");
    assert!(
        failures.is_empty(),
        "{} of 640 requests failed: {:?}",
        failures.len(),
        failures.first()
    );
}

/// On PostgreSQL the server's threads each serve from a pool of their own
/// (`shards.rs`): clients spread over them all get their answers, and the
/// process keeps to --max-connections however they are shared out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn a_threaded_server_keeps_to_its_connection_budget() {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    if common::postgres_admin_url().is_none() {
        return;
    }
    let (_db, url) = TestDb::create(Backend::Postgres).await;
    let url = url.to_string();
    let (id, token) = seeded_user_and_token(&url);
    // Three threads: one connection each, and one for the work off them.
    let server = Server::start(usergraph(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "3",
            "--max-connections",
            "4",
        ],
        Some(&url),
    ));
    let read = json!({ "query": "query($id: ID!) { user(id: $id) { id wallets { id } } }", "variables": { "id": id } });
    // A client each: 48 connections for the threads to accept.
    let tasks: Vec<_> = (0..48)
        .map(|_| {
            let client = common::client_with_token(&token);
            let (endpoint, read) = (server.endpoint.clone(), read.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for _ in 0..5 {
                    let body: Value = post_json(&client, &endpoint, &read).await;
                    answers.push(body["data"]["user"]["id"].clone());
                }
                answers
            })
        })
        .collect();
    for task in tasks {
        for answer in task.await.unwrap() {
            assert_eq!(answer, json!(id), "every read answered");
        }
    }
    let mut conn = diesel_async::AsyncPgConnection::establish(&url)
        .await
        .unwrap();
    let connections: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM pg_stat_activity \
          WHERE datname = current_database() AND pid <> pg_backend_pid())",
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    // The pools' four, and the connection that listens for changes.
    assert!(connections <= 5, "{connections} connections");
}
