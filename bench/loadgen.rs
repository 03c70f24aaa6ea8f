//! The benchmark's load generator (`bench/run` drives it): closed-loop
//! clients against usergraph or PostGraphile, every answer checked to be a
//! GraphQL success, with the server's, PostgreSQL's and its own CPU, the
//! statements PostgreSQL ran and the server's memory over the timed window.
//!
//! ```text
//! loadgen --server usergraph|postgraphile --workload read|update|page
//!         --url URL [--token T] --ids FILE --server-pid PID --pg-url URL
//!         [--concurrency 32] [--warmup 5] [--duration 15] [--label L]
//! ```
//! Prints one JSON object. Workloads: `read` (W1) a user with wallets,
//! sessions and MFA devices by random id; `update` (W2) that read, then an
//! update of `firstName` (usergraph: `updateUser` with the version just
//! read; PostGraphile: its plain patch), conflicts counted, one pair timed
//! as one operation; `page` (W3) `users(first: 50)` with the same lists.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{json, Value};

const USERGRAPH_READ: &str = "query($id: ID!) { user(id: $id) { id email firstName lastName \
alias username phoneNumber country metadata lists emailNotification createdAt updatedAt \
wallets { id chain publicKey name provider createdAt } \
sessions { id createdAt expiresAt revokedAt ipAddress userAgent } \
mfaDevices { id type name isDefault verifiedAt createdAt } } }";

const USERGRAPH_UPDATE: &str = "mutation($id: ID!, $v: DateTime!, $name: String!) { \
updateUser(id: $id, expectedUpdatedAt: $v, input: { firstName: $name }) { __typename \
... on UpdateUserSuccess { user { id email firstName lastName alias username phoneNumber country \
metadata lists emailNotification createdAt updatedAt \
wallets { id chain publicKey name provider createdAt } \
sessions { id createdAt expiresAt revokedAt ipAddress userAgent } \
mfaDevices { id type name isDefault verifiedAt createdAt } } } } }";

const USERGRAPH_PAGE: &str = "{ users(first: 50) { edges { node { id email firstName updatedAt \
wallets { id chain publicKey } sessions { id expiresAt } mfaDevices { id type isDefault } } } } }";

const PGL_FIELDS: &str = "rowId email firstName lastName alias username phoneNumber country \
metadata lists emailNotification createdAt updatedAt \
walletsByUserId { nodes { rowId chain publicKey name provider createdAt } } \
sessionsByUserId { nodes { rowId createdAt expiresAt revokedAt ipAddress userAgent } } \
mfaDevicesByUserId { nodes { rowId kind name isDefault verifiedAt createdAt } }";

#[derive(Clone, Copy, PartialEq)]
enum Server {
    Usergraph,
    Postgraphile,
}

#[derive(Clone, Copy, PartialEq)]
enum Workload {
    Read,
    Update,
    Page,
}

struct Args {
    server: Server,
    workload: Workload,
    url: String,
    token: String,
    ids: Vec<String>,
    server_pid: u32,
    pg_url: String,
    concurrency: usize,
    warmup: u64,
    duration: u64,
    label: String,
}

fn args() -> Args {
    let mut raw = std::env::args().skip(1);
    let mut get = std::collections::HashMap::new();
    while let (Some(key), Some(value)) = (raw.next(), raw.next()) {
        get.insert(key.trim_start_matches("--").to_owned(), value);
    }
    let take = |key: &str| {
        get.get(key)
            .cloned()
            .unwrap_or_else(|| panic!("--{key} is required"))
    };
    let number = |key: &str, default: u64| get.get(key).map_or(default, |v| v.parse().unwrap());
    let server = match take("server").as_str() {
        "usergraph" => Server::Usergraph,
        "postgraphile" => Server::Postgraphile,
        other => panic!("unknown server {other}"),
    };
    let workload = match take("workload").as_str() {
        "read" => Workload::Read,
        "update" => Workload::Update,
        "page" => Workload::Page,
        other => panic!("unknown workload {other}"),
    };
    let ids = std::fs::read_to_string(take("ids")).expect("ids file");
    Args {
        server,
        workload,
        url: take("url"),
        token: get.get("token").cloned().unwrap_or_default(),
        ids: ids.lines().map(str::to_owned).collect(),
        server_pid: take("server-pid").parse().unwrap(),
        pg_url: take("pg-url"),
        concurrency: number("concurrency", 32) as usize,
        warmup: number("warmup", 5),
        duration: number("duration", 15),
        label: get.get("label").cloned().unwrap_or_default(),
    }
}

/// CPU seconds (user + system) of one process, all its threads, and of
/// its children that have exited (a PostgreSQL backend that ends inside the
/// window is counted by the postmaster).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime, stime, cutime and cstime: fields 14 to 17 of the line, 12 to
    // 15 after the name.
    (ticks(11) + ticks(12) + ticks(13) + ticks(14)) / 100.0
}

/// CPU seconds of every PostgreSQL process of the machine.
fn postgres_cpu_seconds() -> f64 {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "postgres" {
            total += cpu_seconds(pid);
        }
    }
    total
}

/// A memory figure of `/proc/PID/status`: `VmRSS` (all resident pages,
/// file pages counted once per mapping) or `RssAnon` (the process's own).
fn memory_mib(pid: u32, figure: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(figure)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Statements PostgreSQL has run so far (pg_stat_statements).
async fn statements(pg: &mut AsyncPgConnection) -> f64 {
    #[derive(diesel::QueryableByName)]
    struct Calls {
        #[diesel(sql_type = diesel::sql_types::Double)]
        calls: f64,
    }
    use diesel_async::RunQueryDsl;
    diesel::sql_query("SELECT coalesce(sum(calls), 0)::float8 AS calls FROM pg_stat_statements")
        .get_result::<Calls>(pg)
        .await
        .map_or(0.0, |c| c.calls)
}

struct Client {
    http: reqwest::Client,
    args: Arc<Args>,
}

impl Client {
    async fn post(&self, query: &str, variables: Value) -> Result<Value, String> {
        let mut request = self
            .http
            .post(&self.args.url)
            .json(&json!({ "query": query, "variables": variables }));
        if !self.args.token.is_empty() {
            request = request.bearer_auth(&self.args.token);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let mut body: Value = response.json().await.map_err(|e| e.to_string())?;
        if body.get("errors").is_some() || body["data"].is_null() {
            return Err(body.to_string());
        }
        Ok(body["data"].take())
    }

    /// User `id` with its nested lists.
    async fn read(&self, id: &str) -> Result<Value, String> {
        let data = match self.args.server {
            Server::Usergraph => self.post(USERGRAPH_READ, json!({ "id": id })).await?,
            Server::Postgraphile => {
                let query =
                    format!("query($id: UUID!) {{ userByRowId(rowId: $id) {{ {PGL_FIELDS} }} }}");
                self.post(&query, json!({ "id": id })).await?
            }
        };
        let user = data
            .get("user")
            .or(data.get("userByRowId"))
            .cloned()
            .unwrap_or(Value::Null);
        if user.is_null() {
            return Err(format!("no user {id}"));
        }
        Ok(user)
    }

    /// One operation of the workload; `Ok(true)` when it met a conflict.
    async fn operation(&self, id: &str) -> Result<bool, String> {
        let args = &self.args;
        match args.workload {
            Workload::Read => self.read(id).await.map(|_| false),
            Workload::Page => {
                let data = match args.server {
                    Server::Usergraph => self.post(USERGRAPH_PAGE, json!({})).await?,
                    Server::Postgraphile => {
                        let query =
                            "{ allUsers(first: 50) { nodes { rowId email firstName updatedAt \
                            walletsByUserId { nodes { rowId chain publicKey } } \
                            sessionsByUserId { nodes { rowId expiresAt } } \
                            mfaDevicesByUserId { nodes { rowId kind isDefault } } } } }";
                        self.post(query, json!({})).await?
                    }
                };
                let size = data["users"]["edges"]
                    .as_array()
                    .or(data["allUsers"]["nodes"].as_array())
                    .map_or(0, Vec::len);
                if size != 50 {
                    return Err(format!("a page of {size}"));
                }
                Ok(false)
            }
            Workload::Update => {
                let user = self.read(id).await?;
                let name = format!("Bench{}", std::process::id() ^ rand_u32());
                match args.server {
                    Server::Usergraph => {
                        let variables = json!({ "id": id, "v": user["updatedAt"], "name": name });
                        let data = self.post(USERGRAPH_UPDATE, variables).await?;
                        match data["updateUser"]["__typename"].as_str() {
                            Some("UpdateUserSuccess") => Ok(false),
                            Some("UpdateConflict") => Ok(true),
                            _ => Err(data.to_string()),
                        }
                    }
                    Server::Postgraphile => {
                        let query = format!(
                            "mutation($id: UUID!, $name: String!) {{ updateUserByRowId(input: \
                             {{ rowId: $id, userPatch: {{ firstName: $name }} }}) {{ user {{ {PGL_FIELDS} }} }} }}"
                        );
                        let data = self.post(&query, json!({ "id": id, "name": name })).await?;
                        if data["updateUserByRowId"]["user"].is_null() {
                            return Err(data.to_string());
                        }
                        Ok(false)
                    }
                }
            }
        }
    }
}

/// A cheap per-thread random number (xorshift), enough to pick ids.
fn rand_u32() -> u32 {
    use std::cell::Cell;
    thread_local!(static STATE: Cell<u32> = Cell::new(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.subsec_nanos() | 1)
    ));
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        state.set(x);
        x
    })
}

// The load generator shares the two cores with the servers it measures:
// the less of them it takes, the more it measures the servers (glibc's
// malloc was a sixth of its CPU, thread hand-offs another share).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Arc::new(args());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .unwrap();
    let client = Arc::new(Client {
        http,
        args: args.clone(),
    });
    // Every answer of a smoke run must be a success before anything is timed.
    client
        .operation(&args.ids[0])
        .await
        .unwrap_or_else(|e| panic!("smoke request failed: {e}"));

    let mut pg = AsyncPgConnection::establish(&args.pg_url)
        .await
        .expect("pg");
    let recording = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (errors, conflicts) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, recording, stop) = (client.clone(), recording.clone(), stop.clone());
        let (errors, conflicts) = (errors.clone(), conflicts.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let ids = &client.args.ids;
                let id = &ids[rand_u32() as usize % ids.len()];
                let started = Instant::now();
                let outcome = client.operation(id).await;
                if !recording.load(Ordering::Relaxed) {
                    continue;
                }
                latencies.push(started.elapsed().as_micros() as u32);
                match outcome {
                    Ok(true) => {
                        conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(false) => {}
                    Err(error) => {
                        if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("first error: {error}");
                        }
                    }
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let (server0, pg0, client0, statements0) = (
        cpu_seconds(args.server_pid),
        postgres_cpu_seconds(),
        cpu_seconds(std::process::id()),
        statements(&mut pg).await,
    );
    let started = Instant::now();
    recording.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    recording.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let (server1, pg1, client1, statements1) = (
        cpu_seconds(args.server_pid),
        postgres_cpu_seconds(),
        cpu_seconds(std::process::id()),
        statements(&mut pg).await,
    );
    let rss = memory_mib(args.server_pid, "VmRSS");
    let anonymous = memory_mib(args.server_pid, "RssAnon");
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    latencies.sort_unstable();
    let n = latencies.len().max(1);
    let percentile = |p: f64| latencies[((n as f64 * p) as usize).min(n - 1)] as f64 / 1000.0;
    let operations = latencies.len() as f64;
    // Our own statement count query runs twice; it is not the server's.
    let statements = (statements1 - statements0 - 1.0).max(0.0);
    println!(
        "{}",
        json!({
            "label": args.label,
            "operations": latencies.len(),
            "errors": errors.load(Ordering::Relaxed),
            "conflicts": conflicts.load(Ordering::Relaxed),
            "ops_per_s": (operations / elapsed).round(),
            "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99),
            "server_cpu_us_per_op": ((server1 - server0) / operations * 1e6).round(),
            "postgres_cpu_us_per_op": ((pg1 - pg0) / operations * 1e6).round(),
            // This load generator's own share of the two cores.
            "client_cpu_us_per_op": ((client1 - client0) / operations * 1e6).round(),
            "statements_per_op": ((statements / operations) * 100.0).round() / 100.0,
            "server_rss_mib": rss.round(),
            // Without the files it maps (SQLite's database, once per
            // connection): its heap and stacks.
            "server_anon_mib": anonymous.round(),
        })
    );
}
