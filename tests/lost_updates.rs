//! The lost-update checker: many clients, spread over several server
//! processes on one database, each repeatedly read a user, append a marker
//! of their own to its `lists` and write it back with the version they
//! read, retrying on `UpdateConflict`. At the end:
//! - every acknowledged marker is in the user's `lists` exactly once, and
//!   no refused one is (a marker whose answer was an error may be either);
//! - per user, the successful writes form one chain: the first expected the
//!   seeded version, each next one expected the version its predecessor
//!   wrote, every version strictly later than the one before, and the
//!   stored list is the markers in that order;
//! - the user's change history holds every acknowledged write, each
//!   naming the version it was applied to.
//!
//! With merging on, the clients send `onConflict: MERGE_IF_DISJOINT`, and
//! bystanders keep setting `jobTitle` on versions they read a while ago,
//! which merge. A `lists` write merges too when only bystanders wrote since
//! its read, and must conflict when another `lists` write did: a wrong
//! merge would drop the other write's marker, which the checks above see.
//! The history tells the version each merge was applied to, so the chain
//! still holds.
//!
//! Short form (in `cargo test`): 600 writes. Long form, on demand:
//! `USERGRAPH_CHECK_WRITES=100000 cargo test --release --test lost_updates -- --nocapture`
//! (see docs/RELIABILITY.md). PostgreSQL: three processes; SQLite: one.
//! On PostgreSQL the run is repeated with the database dropping out for a
//! second in the middle (the processes reach it through a proxy the test
//! cuts), and again with PostgreSQL itself stopped and started (a cluster
//! of the test's own): answers may then be errors, but no acknowledged
//! write is lost. While it is stopped, requests fail fast with
//! `DATABASE_UNAVAILABLE` and `/health` says 503; within 5 s of its return
//! every process serves again.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::cluster::Cluster;
use common::process::{last_line, run, usergraph, Server};
use common::proxy::{self, Proxy};
use common::{postgres_admin_url, Backend, TestDb};
use serde_json::{json, Value};
use usergraph::config::DatabaseUrl;

/// Clients writing at once.
const CLIENTS: usize = 12;
/// Users written at once: every client contends for the same few.
const HOT_USERS: usize = 4;
/// Markers per user (`lists` holds at most 100 entries).
const MARKERS_PER_USER: usize = 90;

const READ: &str = "query($id: ID!) { user(id: $id) { lists updatedAt } }";
const WRITE: &str = "mutation($id: ID!, $v: DateTime!, $lists: [String!], \
    $policy: OnConflict!) { \
    updateUser(id: $id, expectedUpdatedAt: $v, input: { lists: $lists }, onConflict: $policy) { \
      __typename ... on UpdateUserSuccess { merged user { updatedAt } } } }";
const SET_JOB_TITLE: &str = "mutation($id: ID!, $v: DateTime!, $title: String!) { \
    updateUser(id: $id, expectedUpdatedAt: $v, input: { jobTitle: $title }, \
      onConflict: MERGE_IF_DISJOINT) { \
      __typename ... on UpdateUserSuccess { merged user { updatedAt } } } }";
const HISTORY: &str =
    "query($id: ID!, $after: String) { userHistory(id: $id, first: 100, after: $after) { \
    pageInfo { hasNextPage endCursor } edges { node { version previousVersion merged } } } }";

/// Bystanders setting `jobTitle` on stale versions, with merging on.
const BYSTANDERS: usize = 2;

/// How one write attempt ended.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// Written: the version it expected and the one it wrote.
    Acknowledged { expected: String, written: String },
    /// Refused with `UpdateConflict`: must not be stored.
    Conflict,
    /// No typed answer (transport or server error): may be stored or not.
    Unknown,
}

/// How an `updateUser` that expected version `expected` ended, from the
/// `data` of its answer (none: no typed answer).
fn answer(data: Option<Value>, expected: String) -> Answer {
    match data.as_ref().map(|data| &data["updateUser"]) {
        Some(result) if result["__typename"] == "UpdateUserSuccess" => Answer::Acknowledged {
            expected,
            written: result["user"]["updatedAt"]
                .as_str()
                .expect("updatedAt")
                .to_owned(),
        },
        Some(result) if result["__typename"] == "UpdateConflict" => Answer::Conflict,
        _ => Answer::Unknown,
    }
}

/// One attempt: the user, its marker, and how it ended.
struct Attempt {
    user: usize,
    marker: String,
    answer: Answer,
    /// A bystander's `jobTitle` write rather than a `lists` one.
    bystander: bool,
}

async fn post(
    client: &reqwest::Client,
    endpoint: &str,
    query: &str,
    variables: Value,
) -> Option<Value> {
    let body = json!({ "query": query, "variables": variables });
    let response = client.post(endpoint).json(&body).send().await.ok()?;
    let body: Value = response.json().await.ok()?;
    body.get("errors").is_none().then(|| body["data"].clone())
}

/// Writes until the shared ticket counter runs out. Ticket `t` is one marker
/// for user `(t / (HOT_USERS * MARKERS_PER_USER)) * HOT_USERS + t % HOT_USERS`:
/// the clients fill a window of `HOT_USERS` users together, then the next.
#[allow(clippy::too_many_arguments)]
async fn client(
    index: usize,
    http: reqwest::Client,
    endpoint: String,
    ids: Arc<Vec<String>>,
    tickets: Arc<AtomicUsize>,
    total: usize,
    log: Arc<Mutex<Vec<Attempt>>>,
    policy: &'static str,
) {
    loop {
        let ticket = tickets.fetch_add(1, Ordering::Relaxed);
        if ticket >= total {
            return;
        }
        let window = ticket / (HOT_USERS * MARKERS_PER_USER);
        let user = window * HOT_USERS + ticket % HOT_USERS;
        let id = &ids[user];
        for attempt in 0.. {
            assert!(attempt < 10_000, "ticket {ticket} never got written");
            let marker = format!("c{index}-t{ticket}-a{attempt}");
            let Some(data) = post(&http, &endpoint, READ, json!({ "id": id })).await else {
                // The database is away: wait as `Retry-After` asks.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let version = data["user"]["updatedAt"]
                .as_str()
                .expect("updatedAt")
                .to_owned();
            let mut lists: Vec<Value> = data["user"]["lists"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            lists.push(Value::from(marker.clone()));
            let variables = json!({ "id": id, "v": version, "lists": lists, "policy": policy });
            let result = post(&http, &endpoint, WRITE, variables).await;
            let answer = answer(result, version);
            let done = matches!(answer, Answer::Acknowledged { .. });
            log.lock().unwrap().push(Attempt {
                user,
                marker,
                answer,
                bystander: false,
            });
            if done {
                break;
            }
        }
    }
}

/// Until `stop`, reads a user the clients are writing, waits a while so
/// that the version read goes stale, and sets its `jobTitle` on that
/// version with merging on.
async fn bystander(
    index: usize,
    http: reqwest::Client,
    endpoint: String,
    ids: Arc<Vec<String>>,
    tickets: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<Attempt>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let ticket = tickets.load(Ordering::Relaxed) + n;
        let window = ticket / (HOT_USERS * MARKERS_PER_USER);
        let user = (window * HOT_USERS + ticket % HOT_USERS).min(ids.len() - 1);
        let id = &ids[user];
        let Some(data) = post(&http, &endpoint, READ, json!({ "id": id })).await else {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let version = data["user"]["updatedAt"]
            .as_str()
            .expect("updatedAt")
            .to_owned();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let marker = format!("b{index}-{n}");
        let variables = json!({ "id": id, "v": version, "title": marker });
        let result = post(&http, &endpoint, SET_JOB_TITLE, variables).await;
        let answer = answer(result, version);
        log.lock().unwrap().push(Attempt {
            user,
            marker,
            answer,
            bystander: true,
        });
    }
}

/// Every history entry of user `id`, by version: (previous version, merged).
async fn history(
    http: &reqwest::Client,
    endpoint: &str,
    id: &str,
) -> HashMap<String, (String, bool)> {
    let mut entries = HashMap::new();
    let mut after = Value::Null;
    loop {
        let variables = json!({ "id": id, "after": after });
        let data = post(http, endpoint, HISTORY, variables)
            .await
            .expect("history");
        let page = &data["userHistory"];
        for edge in page["edges"].as_array().expect("edges") {
            let node = &edge["node"];
            let text = |key: &str| node[key].as_str().unwrap_or_default().to_owned();
            entries.insert(
                text("version"),
                (text("previousVersion"), node["merged"] == true),
            );
        }
        if page["pageInfo"]["hasNextPage"] != true {
            return entries;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

async fn no_update_is_lost(backend: Backend) {
    check(backend, None, false).await;
}
per_backend!(no_update_is_lost);

async fn no_update_is_lost_with_merging_on(backend: Backend) {
    check(backend, None, true).await;
}
per_backend!(no_update_is_lost_with_merging_on);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn no_update_is_lost_when_the_database_drops_out() {
    let Some(admin_url) = postgres_admin_url() else {
        return;
    };
    let proxy = Proxy::start(proxy::target(&admin_url)).await;
    check(Backend::Postgres, Some(Fault::Cut(&proxy)), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn no_update_is_lost_when_postgresql_stops() {
    if postgres_admin_url().is_none() {
        return;
    }
    let cluster = Cluster::create().expect("PostgreSQL's server programs");
    check(Backend::Postgres, Some(Fault::Stop(&cluster)), false).await;
}

/// The checker with three processes reaching PostgreSQL through PgBouncer
/// in transaction pooling mode, at the address in `USERGRAPH_TEST_PGBOUNCER`
/// (`tests/pgbouncer/run` starts one and sets it; without it there is
/// nothing to run against and the test says so and passes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn no_update_is_lost_through_pgbouncer() {
    let Ok(pgbouncer) = std::env::var("USERGRAPH_TEST_PGBOUNCER") else {
        eprintln!("no PgBouncer to run through: tests/pgbouncer/run starts one");
        return;
    };
    if postgres_admin_url().is_none() {
        return;
    }
    let pgbouncer = pgbouncer
        .parse()
        .expect("USERGRAPH_TEST_PGBOUNCER: host:port");
    check_through(Backend::Postgres, None, false, Some(pgbouncer)).await;
    check_through(Backend::Postgres, None, true, Some(pgbouncer)).await;
}

/// What goes wrong once a third of the writes are in.
#[derive(Clone, Copy)]
enum Fault<'a> {
    /// The servers reach the database through this proxy, cut for a second.
    Cut(&'a Proxy),
    /// The database is this cluster, stopped for a second.
    Stop(&'a Cluster),
}

/// While PostgreSQL is stopped: a request to each server fails fast with
/// `DATABASE_UNAVAILABLE` (503) and `/health` says 503. Returns the
/// longest such answer took.
async fn answers_while_down(
    http: &reqwest::Client,
    servers: &[Server],
    id: &str,
) -> std::time::Duration {
    let mut slowest = std::time::Duration::ZERO;
    for server in servers {
        let started = std::time::Instant::now();
        let body = json!({ "query": READ, "variables": { "id": id } });
        let response = http
            .post(&server.endpoint)
            .json(&body)
            .send()
            .await
            .expect("answer");
        slowest = slowest.max(started.elapsed());
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "DATABASE_UNAVAILABLE",
            "{body}"
        );
        let health = server.endpoint.replace("/graphql", "/health");
        let health = http.get(health).send().await.expect("health");
        assert_eq!(health.status(), 503);
    }
    slowest
}

/// Once PostgreSQL is back: how long until every server answers a read.
async fn time_to_serve_again(
    http: &reqwest::Client,
    servers: &[Server],
    id: &str,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    for server in servers {
        while post(http, &server.endpoint, READ, json!({ "id": id }))
            .await
            .is_none()
        {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "not serving 5 s after PostgreSQL returned"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    started.elapsed()
}

/// Runs the checker, with `fault` once a third of the writes are in, and
/// with `merging` as the module says.
async fn check(backend: Backend, fault: Option<Fault<'_>>, merging: bool) {
    check_through(backend, fault, merging, None).await;
}

/// [`check`], with the processes reaching PostgreSQL through the
/// transaction-pooling PgBouncer at `pgbouncer` when given (and directly
/// for what needs a session: `--session-database-url`).
async fn check_through(
    backend: Backend,
    fault: Option<Fault<'_>>,
    merging: bool,
    pgbouncer: Option<std::net::SocketAddr>,
) {
    let writes: usize = std::env::var("USERGRAPH_CHECK_WRITES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(600);
    let processes = match backend {
        Backend::Postgres => 3,
        // One process owns an embedded database file.
        Backend::Sqlite => 1,
    };
    let (_db, url) = match fault {
        Some(Fault::Stop(cluster)) => (None, cluster.url()),
        _ => {
            let (db, url) = TestDb::create(backend).await;
            let url = match (&url, fault) {
                (DatabaseUrl::Postgres(direct), Some(Fault::Cut(proxy))) => {
                    proxy::through(direct, proxy.address)
                }
                _ => url.to_string(),
            };
            (Some(db), url)
        }
    };
    let (url, session_url) = match pgbouncer {
        Some(pgbouncer) => (proxy::through(&url, pgbouncer), Some(url)),
        None => (url, None),
    };
    let usergraph = |args: &[&str]| {
        let mut command = usergraph(args, Some(&url));
        if let Some(session_url) = &session_url {
            command.env("USERGRAPH_SESSION_DATABASE_URL", session_url);
        }
        command
    };
    let users = writes.div_ceil(HOT_USERS * MARKERS_PER_USER) * HOT_USERS;
    let seeded = run(usergraph(&["seed", "--users", &users.to_string()]));
    let ids: Arc<Vec<String>> = Arc::new(seeded.lines().map(str::to_owned).collect());
    let token = last_line(&run(usergraph(&["token", "create", "--name", "checker"])));
    let servers: Vec<Server> = (0..processes)
        .map(|_| Server::start(usergraph(&["serve", "--listen", "127.0.0.1:0"])))
        .collect();
    let http = common::client_with_token(&token);

    // The versions and lists the seed left.
    let mut initial = Vec::new();
    for id in ids.iter() {
        let data = post(&http, &servers[0].endpoint, READ, json!({ "id": id }))
            .await
            .expect("read");
        initial.push(data["user"].clone());
    }

    let started = std::time::Instant::now();
    let tickets = Arc::new(AtomicUsize::new(0));
    let log = Arc::new(Mutex::new(Vec::new()));
    let policy = if merging { "MERGE_IF_DISJOINT" } else { "FAIL" };
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|index| {
            let endpoint = servers[index % processes].endpoint.clone();
            let task = client(
                index,
                http.clone(),
                endpoint,
                ids.clone(),
                tickets.clone(),
                writes,
                log.clone(),
                policy,
            );
            tokio::spawn(task)
        })
        .collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bystanders: Vec<_> = (0..if merging { BYSTANDERS } else { 0 })
        .map(|index| {
            let endpoint = servers[index % processes].endpoint.clone();
            let (ids, tickets, log) = (ids.clone(), tickets.clone(), log.clone());
            let task = bystander(
                index,
                http.clone(),
                endpoint,
                ids,
                tickets,
                log,
                stop.clone(),
            );
            tokio::spawn(task)
        })
        .collect();
    let mut outage = String::new();
    if let Some(fault) = fault {
        while tickets.load(Ordering::Relaxed) < writes / 3 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        match fault {
            Fault::Cut(proxy) => {
                proxy.cut();
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                proxy.restore();
            }
            Fault::Stop(cluster) => {
                cluster.stop();
                let slowest = answers_while_down(&http, &servers, &ids[0]).await;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                cluster.start();
                let back = time_to_serve_again(&http, &servers, &ids[0]).await;
                outage = format!(
                    " (while down, answers in at most {} ms; serving again {} ms after the restart)",
                    slowest.as_millis(),
                    back.as_millis()
                );
            }
        }
    }
    for task in tasks {
        task.await.expect("client");
    }
    stop.store(true, Ordering::Relaxed);
    for task in bystanders {
        task.await.expect("bystander");
    }
    let elapsed = started.elapsed();
    let log = std::mem::take(&mut *log.lock().unwrap());

    let mut problems = Vec::new();
    let mut merged_lists_writes = 0;
    for (user, id) in ids.iter().enumerate() {
        let stored = post(&http, &servers[0].endpoint, READ, json!({ "id": id }))
            .await
            .expect("read")["user"]
            .clone();
        let stored_lists: Vec<String> =
            serde_json::from_value(stored["lists"].clone()).unwrap_or_default();
        let seeded_lists: Vec<String> =
            serde_json::from_value(initial[user]["lists"].clone()).unwrap_or_default();
        let attempts: Vec<&Attempt> = log.iter().filter(|a| a.user == user).collect();
        let recorded = history(&http, &servers[0].endpoint, id).await;

        // The successes, chained by the version each was applied to: the
        // one it expected, or for a merge the one the history names.
        let mut by_base: HashMap<&str, (&str, Option<&str>)> = HashMap::new();
        for attempt in &attempts {
            if let Answer::Acknowledged { expected, written } = &attempt.answer {
                if written <= expected {
                    problems.push(format!(
                        "{id}: {} wrote {written}, not after {expected}",
                        attempt.marker
                    ));
                }
                let Some((base, merged)) = recorded.get(written) else {
                    problems.push(format!("{id}: {} is not in the history", attempt.marker));
                    continue;
                };
                if *merged != (base != expected) {
                    problems.push(format!(
                        "{id}: {} expected {expected}, was applied to {base}, merged: {merged}",
                        attempt.marker
                    ));
                }
                if *merged && !attempt.bystander {
                    merged_lists_writes += 1;
                }
                let marker = (!attempt.bystander).then_some(attempt.marker.as_str());
                if by_base.insert(base, (written, marker)).is_some() {
                    problems.push(format!("{id}: two writes acknowledged on version {base}"));
                }
            }
        }
        let mut chain = seeded_lists.clone();
        let mut version = initial[user]["updatedAt"].as_str().unwrap_or_default();
        while let Some((written, marker)) = by_base.remove(version) {
            chain.extend(marker.map(str::to_owned));
            version = written;
        }
        let by_expected = by_base;
        // A write with no answer may have landed, and then the chain passes
        // through a version nobody was told of: only the markers are checked.
        let answered = attempts.iter().all(|a| a.answer != Answer::Unknown);
        if answered {
            if !by_expected.is_empty() {
                problems.push(format!(
                    "{id}: {} acknowledged writes are off the version chain",
                    by_expected.len()
                ));
            }
            if stored["updatedAt"].as_str() != Some(version) {
                problems.push(format!(
                    "{id}: stored version {} is not the last acknowledged {version}",
                    stored["updatedAt"]
                ));
            }
            if stored_lists != chain {
                problems.push(format!(
                    "{id}: stored lists are not the acknowledged markers in version order"
                ));
            }
        }
        let count = |marker: &str| stored_lists.iter().filter(|m| *m == marker).count();
        for attempt in attempts.iter().filter(|a| !a.bystander) {
            match (&attempt.answer, count(&attempt.marker)) {
                (Answer::Acknowledged { .. }, 1)
                | (Answer::Conflict, 0)
                | (Answer::Unknown, 0 | 1) => {}
                (answer, n) => problems.push(format!(
                    "{id}: marker {} ({answer:?}) stored {n} times",
                    attempt.marker
                )),
            }
        }
    }

    let merges = log
        .iter()
        .filter(|a| a.bystander && matches!(a.answer, Answer::Acknowledged { .. }))
        .count();
    let log: Vec<Attempt> = log.into_iter().filter(|a| !a.bystander).collect();
    let count = |wanted: fn(&Answer) -> bool| log.iter().filter(|a| wanted(&a.answer)).count();
    let successes = count(|a| matches!(a, Answer::Acknowledged { .. }));
    let conflicts = count(|a| *a == Answer::Conflict);
    let unknown = count(|a| *a == Answer::Unknown);
    let verdict = if problems.is_empty() {
        "no update lost"
    } else {
        "UPDATES LOST"
    };
    let faults = match fault {
        Some(Fault::Cut(_)) => ", database cut for 1 s",
        Some(Fault::Stop(_)) => ", PostgreSQL stopped for 1 s",
        None if pgbouncer.is_some() => ", through PgBouncer in transaction mode",
        None => "",
    };
    let merging = if merging {
        format!(
            ", merging on: {merges} bystander writes, {merged_lists_writes} lists writes merged"
        )
    } else {
        String::new()
    };
    eprintln!(
        "lost-update checker ({backend:?}, {processes} process(es), {CLIENTS} clients, {users} users{faults}{merging}): \
         {} attempts, {conflicts} conflicts, {successes} successes, {unknown} unknown, \
         {:.1} s: {verdict}{outage}",
        log.len(),
        elapsed.as_secs_f64()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(successes, writes, "every ticket was acknowledged once");
}
