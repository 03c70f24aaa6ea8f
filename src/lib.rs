//! usergraph: a GraphQL API server for user records.
//!
//! Wiring: config → db (pool, migrations) → repo → graphql schema → http router.

pub mod config;
pub mod db;
pub mod domain;
pub mod graphql;
pub mod http;
pub mod repo;

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::{DatabaseArgs, ServeArgs};
use crate::db::Db;
use crate::repo::{Clock, Repo, Scope, SystemClock, DEFAULT_ENVIRONMENT_ID};

/// How many demo users a new embedded database starts with.
pub const DEMO_USERS: usize = 5;

/// An opened, migrated database with its repository.
pub struct App {
    pub repo: Repo,
    /// Ids of the demo users this start added to a new embedded database.
    pub demo_users: Vec<uuid::Uuid>,
}

impl App {
    /// Opens and migrates the database; a new embedded database gets demo data.
    pub async fn open(args: &DatabaseArgs, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        let opened = Db::open(&args.database_url, args.max_connections).await?;
        let repo = Repo::new(opened.db, clock);
        repo.ensure_default_environment().await?;
        let demo_users = if opened.created {
            repo.seed_users(default_scope(), DEMO_USERS).await?
        } else {
            Vec::new()
        };
        Ok(App { repo, demo_users })
    }

    /// The HTTP service over this app's repository.
    pub fn router(&self) -> axum::Router {
        http::router(http::AppState {
            schema: graphql::build_schema(self.repo.clone()),
            repo: self.repo.clone(),
            scope: default_scope(),
        })
    }
}

/// The environment requests act in until API tokens select one.
pub fn default_scope() -> Scope {
    Scope {
        environment_id: DEFAULT_ENVIRONMENT_ID,
    }
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let app = App::open(&args.database, Arc::new(SystemClock)).await?;
    let listener = TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    if !app.demo_users.is_empty() {
        println!("new database: added {} demo users:", app.demo_users.len());
        for id in &app.demo_users {
            println!("  {id}");
        }
    }
    // Tests and scripts read this line to find the port.
    println!("usergraph listening on http://{address}/graphql (GraphiQL: open it in a browser)");
    axum::serve(listener, app.router())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
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
