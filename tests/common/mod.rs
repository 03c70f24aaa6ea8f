//! Test harness: a real server on a random port over a fresh database.
//!
//! Every behavioural test is an `async fn(Backend)` run on both backends
//! through [`per_backend!`]: SQLite always, PostgreSQL when
//! `TEST_DATABASE_URL` is set (each test gets its own database, dropped
//! afterwards). With `CI=true`, a missing or unreachable PostgreSQL fails
//! the test instead of skipping it.

#![allow(dead_code)]

pub mod cluster;
pub mod hostile;
pub mod process;
pub mod proxy;
pub mod ws;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use serde_json::{json, Value};
use usergraph::config::{DatabaseArgs, DatabaseUrl};
use usergraph::graphql::SchemaOptions;
use usergraph::http::HttpOptions;
use usergraph::repo::{Clock, Repo, Scope, SystemClock};
use usergraph::{default_scope, App};

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A clock the test sets by hand.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn at(text: &str) -> Arc<ManualClock> {
        Arc::new(ManualClock(Mutex::new(
            text.parse().expect("valid instant"),
        )))
    }
    pub fn set(&self, text: &str) {
        *self.0.lock().unwrap() = text.parse().expect("valid instant");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A database that exists for one test.
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs outside any runtime we may block: use a thread of its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    if let Ok(mut conn) = AsyncPgConnection::establish(&admin_url).await {
                        let _ = conn
                            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The PostgreSQL server to test against, or `None` to skip (never in CI).
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if in_ci() => panic!("CI=true but TEST_DATABASE_URL is not set"),
        _ => {
            eprintln!("skipping: TEST_DATABASE_URL is not set");
            None
        }
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

impl TestDb {
    /// A fresh, migrated, empty database.
    pub async fn create(backend: Backend) -> (TestDb, DatabaseUrl) {
        let (db, url) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = DatabaseUrl::Sqlite(dir.path().join("test.db"));
                (TestDb::Sqlite(dir), url)
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url().expect("TEST_DATABASE_URL is set");
                let name = format!("usergraph_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = AsyncPgConnection::establish(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at TEST_DATABASE_URL unreachable: {e}"));
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create database");
                let url = DatabaseUrl::Postgres(with_database(&admin_url, &name));
                (TestDb::Postgres { admin_url, name }, url)
            }
        };
        // Migrating first makes the file exist, so the server does not add demo users.
        usergraph::db::migrate(&url).await.expect("migrate");
        (db, url)
    }
}

/// A running server and a client for it that sends a token of the
/// default environment.
pub struct TestApp {
    pub backend: Backend,
    pub address: std::net::SocketAddr,
    /// Where `/metrics` is served (an address of its own, as in `serve`).
    pub metrics_address: std::net::SocketAddr,
    pub url: DatabaseUrl,
    pub repo: Repo,
    /// Sends `Authorization: Bearer <token>` with every request.
    pub client: reqwest::Client,
    /// The token `client` sends.
    pub token: String,
    /// The database, dropped with the server that created it.
    owned_db: Option<TestDb>,
}

/// How a test server is set up.
pub struct Setup {
    pub clock: Arc<dyn Clock>,
    /// `--token-cache-ms`; off by default, so statement counts are exact.
    pub token_cache_ms: u64,
    /// `--max-connections` (16).
    pub max_connections: usize,
    /// `--feed-linger-ms` (60 s).
    pub feed_linger_ms: u64,
    pub schema: SchemaOptions,
    pub http: HttpOptions,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            clock: Arc::new(SystemClock),
            token_cache_ms: 0,
            max_connections: 16,
            feed_linger_ms: 60_000,
            schema: SchemaOptions::default(),
            http: HttpOptions::default(),
        }
    }
}

/// A client that sends `token` as a bearer token.
pub fn client_with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {token}").parse().expect("header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, Setup::default()).await
    }

    pub async fn spawn_with_clock(backend: Backend, clock: Arc<dyn Clock>) -> TestApp {
        TestApp::spawn_with(
            backend,
            Setup {
                clock,
                ..Setup::default()
            },
        )
        .await
    }

    pub async fn spawn_with(backend: Backend, setup: Setup) -> TestApp {
        let (db, url) = TestDb::create(backend).await;
        TestApp::spawn_on(backend, db, url, setup).await
    }

    /// A server on `url`, a database of `backend` that `db` holds (the
    /// URL may lead to it another way, e.g. through a [`proxy::Proxy`]).
    pub async fn spawn_on(backend: Backend, db: TestDb, url: DatabaseUrl, setup: Setup) -> TestApp {
        let mut app = TestApp::serve(backend, url, setup).await;
        app.owned_db = Some(db);
        app
    }

    /// Another server on this one's database, as a second process would
    /// be: it shares nothing with this one but the database.
    pub async fn another_server(&self, setup: Setup) -> TestApp {
        TestApp::serve(self.backend, self.url.clone(), setup).await
    }

    /// A server on `url`, a database that some other server owns.
    pub async fn serve(backend: Backend, url: DatabaseUrl, setup: Setup) -> TestApp {
        let args = DatabaseArgs {
            token_cache_ms: setup.token_cache_ms,
            max_connections: setup.max_connections,
            ..DatabaseArgs::for_url(url.clone())
        }
        .bounded_by(&setup.http.limits);
        let app = App::open(&args, setup.clock).await.expect("open app");
        app.repo
            .listen_for_changes(std::time::Duration::from_millis(setup.feed_linger_ms))
            .await
            .expect("listen for changes");
        let environment = default_scope().environment_id;
        let token = app
            .repo
            .create_token(environment, "test")
            .await
            .expect("token")
            .token;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let router = app.router(&setup.schema, setup.http);
        tokio::spawn(async move { axum::serve(listener, router).await });
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let metrics_address = metrics.local_addr().expect("address");
        let metrics_router = app.metrics_router();
        tokio::spawn(async move { axum::serve(metrics, metrics_router).await });
        TestApp {
            backend,
            address,
            metrics_address,
            url,
            repo: app.repo,
            client: client_with_token(&token),
            token,
            owned_db: None,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}/graphql", self.address)
    }

    /// POSTs a GraphQL request; returns the status and the JSON body.
    pub async fn post(&self, body: Value) -> (reqwest::StatusCode, Value) {
        let response = self
            .client
            .post(self.endpoint())
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json().await.expect("JSON body"))
    }

    /// Runs a query that must succeed without errors; returns `data`.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self
            .post(json!({ "query": query, "variables": variables }))
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Adds `n` demo users to the default environment.
    pub async fn seed(&self, n: usize) -> Vec<String> {
        self.seed_in(default_scope(), n).await
    }

    pub async fn seed_in(&self, scope: Scope, n: usize) -> Vec<String> {
        let ids = self.repo.seed_users(scope, n).await.expect("seed");
        ids.into_iter().map(|id| id.to_string()).collect()
    }

    /// The user as `USER_FIELDS` selects it.
    pub async fn read_user(&self, id: &str) -> Value {
        let query = format!("query($id: ID!) {{ user(id: $id) {{ {USER_FIELDS} }} }}");
        self.gql(&query, json!({ "id": id })).await["user"].clone()
    }

    /// Runs `updateUser` and returns its result object.
    pub async fn update(&self, id: &str, version: &str, input: Value) -> Value {
        let data = self
            .gql(
                &update_user_document(),
                json!({ "id": id, "version": version, "input": input }),
            )
            .await;
        data["updateUser"].clone()
    }
}

/// A query of one user's id, team and version, with variable `$id`.
pub const USER_SUMMARY: &str = "query($id: ID!) { user(id: $id) { id team updatedAt } }";

/// The `(field, code)` pairs of a list of field errors (GraphQL's
/// `fieldErrors`, REST's `errors`), sorted.
pub fn field_codes(errors: &Value) -> Vec<(String, String)> {
    let mut codes: Vec<(String, String)> = errors
        .as_array()
        .unwrap_or_else(|| panic!("a list of field errors: {errors}"))
        .iter()
        .map(|e| {
            let text = |key: &str| e[key].as_str().unwrap_or_default().to_owned();
            (text("field"), text("code"))
        })
        .collect();
    codes.sort();
    codes
}

/// `expected` in the form `field_codes` returns.
pub fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = expected
        .iter()
        .map(|(f, c)| (f.to_string(), c.to_string()))
        .collect();
    pairs.sort();
    pairs
}

/// `extensions.code` of a response's first error ("" when there is none).
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

/// POSTs a GraphQL request to `app` with `client` (its own token, or
/// none); returns the status and the JSON body (`null` if not JSON).
pub async fn post_as(
    client: &reqwest::Client,
    app: &TestApp,
    body: Value,
) -> (reqwest::StatusCode, Value) {
    let response = client
        .post(app.endpoint())
        .json(&body)
        .send()
        .await
        .expect("request");
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

/// Every field of `User`, nested lists included.
pub const USER_FIELDS: &str = "id projectEnvironmentId lastVerifiedCredentialId sessionId scope newUser \
firstVisit lastVisit alias firstName lastName jobTitle tShirtSize team country email phoneNumber \
policiesConsent username metadata mfaBackupCodeAcknowledgement btcWallet kdaWallet ltcWallet ckbWallet \
kasWallet dogeWallet emailNotification discordNotification newsletterNotification lists walletPublicKey \
wallet chain createdAt updatedAt \
verifiedCredentials { id format publicIdentifier chain walletName createdAt } \
wallets { id name chain publicKey provider createdAt } \
sessions { id ipAddress userAgent createdAt expiresAt revokedAt } \
mfaDevices { id type name isDefault verifiedAt createdAt } \
oauthAccounts { id provider accountUsername accountEmail displayName createdAt } \
chainalysisChecks { id walletPublicKey riskLevel createdAt }";

/// `updateUser` selecting every result type (needs the `All` fragment).
const UPDATE_USER: &str = concat!(
    "mutation($id: ID!, $version: DateTime!, $input: UpdateUserInput!) { ",
    "updateUser(id: $id, expectedUpdatedAt: $version, input: $input) { __typename ",
    "... on UpdateUserSuccess { user { ...All } } ",
    "... on UpdateConflict { message expectedUpdatedAt currentUser { ...All } } ",
    "... on UserNotFound { message id } ",
    "... on ValidationFailed { message fieldErrors { field code message } } } } ",
);

/// `UPDATE_USER` with the `All` fragment appended.
pub fn update_user_document() -> String {
    format!("{UPDATE_USER} fragment All on User {{ {USER_FIELDS} }}")
}

/// Makes each named `async fn NAME(backend: Backend)` a pair of tests,
/// `NAME::sqlite` and `NAME::postgres`. The PostgreSQL one is reported as
/// ignored when `TEST_DATABASE_URL` was unset at build time (`build.rs`).
#[macro_export]
macro_rules! per_backend {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario($crate::common::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(postgres_tests),
                ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
            )]
            async fn postgres() {
                if $crate::common::postgres_admin_url().is_some() {
                    super::$scenario($crate::common::Backend::Postgres).await;
                }
            }
        }
    };
}
