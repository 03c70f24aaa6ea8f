//! Several server processes on one database: the database, not the process,
//! decides each compare-and-set.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use common::{Backend, TestDb};
use serde_json::{json, Value};

/// A `usergraph serve` child process, killed when dropped.
struct Server {
    child: Child,
    endpoint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn usergraph(args: &[&str], database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_usergraph"));
    command
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn");
    command
}

fn start_server(database_url: &str) -> Server {
    let mut child = usergraph(&["serve", "--listen", "127.0.0.1:0"], database_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start usergraph serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let endpoint = loop {
        let line = lines
            .next()
            .expect("server printed its address")
            .expect("read stdout");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
    };
    Server { child, endpoint }
}

async fn two_processes_one_winner(backend: Backend) {
    let Some((_db, url)) = TestDb::create(backend).await else {
        return;
    };
    let url = url.to_string();

    let seeded = usergraph(&["seed", "--users", "2"], &url)
        .output()
        .expect("run seed");
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let ids: Vec<String> = String::from_utf8(seeded.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), 2, "seed prints one id per line");
    let id = ids[0].clone();

    let created = usergraph(&["token", "create", "--name", "processes"], &url)
        .output()
        .expect("run token create");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let stdout = String::from_utf8(created.stdout).unwrap();
    let token = stdout.lines().last().expect("token on the last line");

    let servers = [start_server(&url), start_server(&url)];
    let client = common::client_with_token(token);
    let read = json!({ "query": "query($id: ID!) { user(id: $id) { updatedAt } }", "variables": { "id": id } });
    let user: Value = client
        .post(&servers[0].endpoint)
        .json(&read)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let version = user["data"]["user"]["updatedAt"]
        .as_str()
        .expect("version")
        .to_owned();

    let mutation = "mutation($id: ID!, $v: DateTime!, $team: String) { updateUser(id: $id, expectedUpdatedAt: $v, input: { team: $team }) { __typename } }";
    let client = Arc::new(client);
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let client = client.clone();
            let endpoint = servers[i % 2].endpoint.clone();
            let body = json!({ "query": mutation, "variables": { "id": id, "v": version, "team": format!("t{i}") } });
            tokio::spawn(async move {
                let body: Value = client.post(endpoint).json(&body).send().await.unwrap().json().await.unwrap();
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
per_backend!(
    two_server_processes_one_winner,
    super::two_processes_one_winner
);
