//! usergraph: a GraphQL API server for user records.
//!
//! Wiring: config → db (pool, migrations) → repo → graphql schema → http router.

pub mod config;
pub mod db;
pub mod domain;
pub mod graphql;
pub mod http;
pub mod repo;
pub mod shards;

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::{DatabaseArgs, ServeArgs};
use crate::db::Db;
use crate::graphql::SchemaOptions;
use crate::http::HttpOptions;
use crate::repo::{Clock, Repo, Scope, SystemClock, DEFAULT_ENVIRONMENT_ID};

/// How many demo users a new embedded database starts with.
pub const DEMO_USERS: usize = 5;

/// Name of the token the demo mode makes for its playground at each start.
const PLAYGROUND_TOKEN: &str = "demo playground";

/// An opened, migrated database with its repository.
pub struct App {
    pub repo: Repo,
    /// What the HTTP layer counts (`/metrics`).
    pub metrics: Arc<http::metrics::Metrics>,
    /// True when opening created the embedded database file.
    pub created: bool,
    /// How many shards serve (see `shards.rs`): none but on PostgreSQL.
    pub shards: usize,
}

impl App {
    /// Opens and migrates the database, and makes sure the default
    /// environment exists.
    pub async fn open(args: &DatabaseArgs, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        App::open_serving(args, clock, 0).await
    }

    /// [`App::open`] for a server of `threads` threads.
    pub async fn open_serving(
        args: &DatabaseArgs,
        clock: Arc<dyn Clock>,
        threads: usize,
    ) -> anyhow::Result<App> {
        let statement_timeout = args
            .statement_timeout_ms
            .map(std::time::Duration::from_millis);
        let session_url = args.session_database_url.as_deref();
        let opened = Db::open(
            &args.url(),
            args.max_connections,
            statement_timeout,
            session_url,
            threads,
        )
        .await?;
        let token_cache = std::time::Duration::from_millis(args.token_cache_ms);
        let repo = Repo::new(opened.db, clock, token_cache);
        repo.ensure_default_environment().await?;
        Ok(App {
            repo,
            metrics: Arc::default(),
            created: opened.created,
            shards: opened.shards,
        })
    }

    /// The `/metrics` service, for an address of its own.
    pub fn metrics_router(&self) -> axum::Router {
        http::metrics::router(self.metrics.clone(), self.repo.clone())
    }

    /// The HTTP service over this app's repository.
    pub fn router(&self, schema: &SchemaOptions, http: HttpOptions) -> axum::Router {
        http::router(http::AppState {
            schema: graphql::build_schema(self.repo.clone(), schema),
            repo: self.repo.clone(),
            options: Arc::new(http),
            token_subscriptions: Arc::default(),
            persisted_queries: Arc::default(),
            metrics: self.metrics.clone(),
        })
    }
}

/// The environment `seed` and `token create` use when none is named, and
/// the one the demo mode serves.
pub fn default_scope() -> Scope {
    Scope::of_environment(DEFAULT_ENVIRONMENT_ID)
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let database = args.database.clone().bounded_by(&args.limits);
    let app = App::open_serving(&database, Arc::new(SystemClock), args.threads()).await?;
    // A new embedded database starts with demo data (other commands that
    // create the file, like `seed`, add only what they print).
    let demo_users = if app.created {
        app.repo.seed_users(default_scope(), DEMO_USERS).await?
    } else {
        Vec::new()
    };
    let listener = std::net::TcpListener::bind(args.listen).map_err(|error| {
        anyhow::anyhow!(
            "cannot listen on {}: {error} (choose another address with --listen or USERGRAPH_LISTEN)",
            args.listen
        )
    })?;
    let address = listener.local_addr()?;
    // Changes other processes commit reach this one's subscribers.
    app.repo
        .listen_for_changes(std::time::Duration::from_millis(args.feed_linger_ms))
        .await?;
    tokio::spawn(prune_periodically(app.repo.clone(), args.retention.clone()));
    let demo = args.database.is_demo();
    let playground_token = if demo {
        // The token is shown once and stored hashed, so each start makes a
        // new one and retires the previous start's.
        app.repo
            .revoke_tokens_named(DEFAULT_ENVIRONMENT_ID, PLAYGROUND_TOKEN)
            .await?;
        Some(
            app.repo
                .create_token(DEFAULT_ENVIRONMENT_ID, PLAYGROUND_TOKEN)
                .await?
                .token,
        )
    } else {
        None
    };
    if !demo_users.is_empty() {
        println!("new database: added {} demo users:", demo_users.len());
        for id in &demo_users {
            println!("  {id}");
        }
    }
    if let Some(token) = &playground_token {
        println!("demo mode: API token for this run (GraphiQL already sends it):");
        println!("  Authorization: Bearer {token}");
    }
    let schema = SchemaOptions {
        limits: args.limits.clone(),
        disable_introspection: args.disable_introspection,
    };
    // On a signal, stop accepting and let in-flight requests finish, for at
    // most one request timeout: none runs longer than that anyway.
    let drain = std::time::Duration::from_millis(args.limits.request_timeout_ms);
    let shutdown = http::Shutdown::default();
    let http = HttpOptions {
        limits: args.limits,
        live: args.live,
        cors_origins: args.cors_origins,
        cors_allow_localhost: demo,
        playground_token,
        shutdown: shutdown.clone(),
    };
    if let Some(address) = args.metrics_listen {
        let metrics = TcpListener::bind(address).await.map_err(|error| {
            anyhow::anyhow!(
                "cannot listen on {address} for metrics: {error} (see --metrics-listen)"
            )
        })?;
        println!("metrics at http://{}/metrics", metrics.local_addr()?);
        let router = app.metrics_router();
        tokio::spawn(async move { axum::serve(metrics, router).await });
    }
    let stopping = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        stopping.begin();
    });
    // Tests and scripts read this line to find the port.
    println!("usergraph listening on http://{address}/graphql (GraphiQL: open it in a browser)");
    tokio::select! {
        served = shards::serve(listener, app.router(&schema, http), app.shards, shutdown.clone()) => served?,
        () = async {
            shutdown.begun().await;
            tokio::time::sleep(drain).await;
        } => {
            tracing::warn!("requests still in flight after {} ms: exiting", drain.as_millis());
        }
    }
    Ok(())
}

/// Prunes the change history and the idempotency keys now and then, as
/// `retention` says; a failed run is logged and the next one tries again.
async fn prune_periodically(repo: repo::Repo, retention: config::Retention) {
    let interval = std::time::Duration::from_secs(retention.prune_interval_seconds);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = chrono::Utc::now();
        let history_cutoff = now - chrono::Duration::days(retention.history_days.into());
        let keys_cutoff = now - http::IDEMPOTENCY_KEY_LIFETIME;
        let per_user = retention.history_per_user.into();
        let pruned = async {
            let history = repo.prune_history(history_cutoff, per_user).await?;
            let keys = repo
                .prune_idempotency_keys(keys_cutoff, http::IDEMPOTENCY_KEYS_PER_TOKEN)
                .await?;
            Ok::<_, repo::RepoError>((history, keys))
        };
        match pruned.await {
            Ok((history, keys)) => {
                tracing::debug!(history, keys, "pruned history entries and idempotency keys")
            }
            Err(error) => tracing::warn!(%error, "pruning failed; trying again later"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
