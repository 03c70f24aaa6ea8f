//! Command-line flags, each with an environment-variable fallback.

use std::net::SocketAddr;

pub use crate::db::DatabaseUrl;

/// The embedded default: a SQLite file in the working directory.
pub const DEFAULT_SQLITE_PATH: &str = "./usergraph.db";

/// Database flags shared by every command that opens the database.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// postgres://… (or postgresql://…) for PostgreSQL, sqlite://PATH for an
    /// embedded database. Without it: the demo mode on sqlite://./usergraph.db.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<DatabaseUrl>,

    /// Most connections the pool opens.
    #[arg(long, env = "USERGRAPH_MAX_CONNECTIONS", default_value_t = 16)]
    pub max_connections: usize,

    /// How long a valid API token is remembered, in milliseconds (0: not
    /// at all). A token revoked by another process stops working here
    /// within this time; one revoked by this process, at once.
    #[arg(long, env = "USERGRAPH_TOKEN_CACHE_MS", default_value_t = 1000)]
    pub token_cache_ms: u64,

    /// A URL that reaches the same PostgreSQL database directly, for what
    /// needs a session (migrations, listening for changes). Giving it says
    /// that --database-url leads through PgBouncer in transaction pooling
    /// mode: the pool then keeps no prepared statements and runs every
    /// statement in a transaction (docs/SCALING.md).
    #[arg(long, env = "USERGRAPH_SESSION_DATABASE_URL")]
    pub session_database_url: Option<String>,

    /// Longest a statement or lock wait may run, in milliseconds (see
    /// [`DatabaseArgs::bounded_by`]). None for commands like `seed`.
    #[arg(skip)]
    pub statement_timeout_ms: Option<u64>,
}

impl DatabaseArgs {
    /// Flags naming `url`, with the default pool size.
    pub fn for_url(url: DatabaseUrl) -> Self {
        DatabaseArgs {
            database_url: Some(url),
            max_connections: 16,
            token_cache_ms: 1000,
            session_database_url: None,
            statement_timeout_ms: None,
        }
    }

    /// These flags for a server with `limits`: no statement or lock wait
    /// outlives the request timeout, so a timed-out request's work stops in
    /// the database too instead of landing after its 503.
    pub fn bounded_by(mut self, limits: &Limits) -> Self {
        self.statement_timeout_ms = Some(limits.request_timeout_ms);
        self
    }

    /// The database to open: the given URL, else the embedded default.
    pub fn url(&self) -> DatabaseUrl {
        self.database_url
            .clone()
            .unwrap_or_else(|| DatabaseUrl::Sqlite(DEFAULT_SQLITE_PATH.into()))
    }

    /// True when no database was named: the zero-setup demo mode.
    pub fn is_demo(&self) -> bool {
        self.database_url.is_none()
    }
}

/// Abuse limits. Each refusal is a GraphQL error with a stable
/// `extensions.code`, given before any resolver runs.
#[derive(Debug, Clone, clap::Args)]
pub struct Limits {
    /// Deepest selection nesting a query may have (code DEPTH_LIMIT_EXCEEDED).
    #[arg(long, env = "USERGRAPH_MAX_DEPTH", default_value_t = 16)]
    pub max_depth: usize,

    /// Highest query cost, one per field, list fields times their page size
    /// (code COMPLEXITY_LIMIT_EXCEEDED).
    #[arg(long, env = "USERGRAPH_MAX_COMPLEXITY", default_value_t = 10_000)]
    pub max_complexity: usize,

    /// Most aliased fields in one document (code ALIAS_LIMIT_EXCEEDED).
    #[arg(long, env = "USERGRAPH_MAX_ALIASES", default_value_t = 30)]
    pub max_aliases: usize,

    /// Most fields at the root of the operation (code ROOT_FIELD_LIMIT_EXCEEDED).
    #[arg(long, env = "USERGRAPH_MAX_ROOT_FIELDS", default_value_t = 10)]
    pub max_root_fields: usize,

    /// Longest query text, in bytes (code QUERY_TOO_LARGE).
    #[arg(long, env = "USERGRAPH_MAX_QUERY_BYTES", default_value_t = 32 * 1024)]
    pub max_query_bytes: usize,

    /// Largest request body, in bytes (HTTP 413, code PAYLOAD_TOO_LARGE).
    #[arg(long, env = "USERGRAPH_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Longest a request may run, in milliseconds (HTTP 503, code REQUEST_TIMEOUT).
    #[arg(long, env = "USERGRAPH_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        use clap::Parser;
        /// Parses no arguments, so the defaults live in the attributes only.
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            limits: Limits,
        }
        Defaults::parse_from(["usergraph"]).limits
    }
}

/// Bounds of live updates: subscriptions over a WebSocket on `/graphql`
/// (graphql-transport-ws). Each refusal has a stable close code or error
/// code (docs/SECURITY.md).
#[derive(Debug, Clone, clap::Args)]
pub struct LiveLimits {
    /// How long a new WebSocket connection may take to send its
    /// `connection_init`, in milliseconds (close code 4408).
    #[arg(long, env = "USERGRAPH_WS_INIT_TIMEOUT_MS", default_value_t = 10_000)]
    pub ws_init_timeout_ms: u64,

    /// How often the server pings each WebSocket connection and checks its
    /// token again, in milliseconds. A connection that sends nothing, not
    /// even a pong, for two of these is closed (3008); one whose token was
    /// revoked, too (4403).
    #[arg(long, env = "USERGRAPH_WS_KEEPALIVE_MS", default_value_t = 10_000)]
    pub ws_keepalive_ms: u64,

    /// Most subscriptions one connection may hold at once (more are refused
    /// with TOO_MANY_SUBSCRIPTIONS).
    #[arg(
        long,
        env = "USERGRAPH_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        default_value_t = 50
    )]
    pub max_subscriptions_per_connection: usize,

    /// Most subscriptions one API token may hold at once on this process,
    /// over all its connections (TOO_MANY_SUBSCRIPTIONS).
    #[arg(
        long,
        env = "USERGRAPH_MAX_SUBSCRIPTIONS_PER_TOKEN",
        default_value_t = 500
    )]
    pub max_subscriptions_per_token: usize,
}

impl Default for LiveLimits {
    fn default() -> Self {
        use clap::Parser;
        /// Parses no arguments, so the defaults live in the attributes only.
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            live: LiveLimits,
        }
        Defaults::parse_from(["usergraph"]).live
    }
}

/// How log lines are written (to stderr).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    #[default]
    Text,
    /// One JSON object per event, its fields as keys (request_id included).
    Json,
}

/// How long the change history is kept. Pruning runs in the background of
/// every serving process, in batches, so writers never wait long on it.
#[derive(Debug, Clone, clap::Args)]
pub struct Retention {
    /// Days a user's history entry is kept.
    #[arg(long, env = "USERGRAPH_HISTORY_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub history_days: u32,

    /// Most history entries kept per user (its newest).
    #[arg(long, env = "USERGRAPH_HISTORY_PER_USER", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub history_per_user: u32,

    /// Seconds between two pruning runs (of the history and of
    /// idempotency keys older than 24 hours).
    #[arg(long, env = "USERGRAPH_PRUNE_INTERVAL_SECONDS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub prune_interval_seconds: u64,
}

/// Flags of `usergraph serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "USERGRAPH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub limits: Limits,

    #[command(flatten)]
    pub live: LiveLimits,

    #[command(flatten)]
    pub retention: Retention,

    /// Browser origins allowed to call the API (CORS), comma-separated;
    /// `*` allows any origin (never with credentials). The demo mode also
    /// allows http://localhost and http://127.0.0.1 on any port.
    #[arg(
        long = "cors-origin",
        env = "USERGRAPH_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// On PostgreSQL, how long this process stays registered for change
    /// notifications after its last live-update subscriber left, in
    /// milliseconds. Each registration briefly holds back every write of
    /// the database, so a client that comes and goes should not register
    /// each time (docs/DESIGN.md, "Live updates").
    #[arg(long, env = "USERGRAPH_FEED_LINGER_MS", default_value_t = 60_000)]
    pub feed_linger_ms: u64,

    /// Serve `/metrics` (Prometheus text format) on this address, apart
    /// from the API (off when not given).
    #[arg(long, env = "USERGRAPH_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Answer introspection queries with an error (on by default: clients
    /// and code generators need them).
    #[arg(long, env = "USERGRAPH_DISABLE_INTROSPECTION")]
    pub disable_introspection: bool,

    /// How many threads serve requests (default: one per core). On
    /// PostgreSQL each has its own share of --max-connections, less one
    /// for background work (docs/DESIGN.md, "Threads").
    #[arg(long, env = "USERGRAPH_THREADS")]
    pub threads: Option<std::num::NonZeroUsize>,
}

impl ServeArgs {
    /// How many threads serve requests.
    pub fn threads(&self) -> usize {
        self.threads
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, std::num::NonZeroUsize::get)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn parses_database_urls() {
        assert_eq!(
            "sqlite://./usergraph.db".parse(),
            Ok(DatabaseUrl::Sqlite(PathBuf::from("./usergraph.db")))
        );
        assert_eq!(
            "sqlite:///var/lib/usergraph/db.sqlite".parse(),
            Ok(DatabaseUrl::Sqlite(PathBuf::from(
                "/var/lib/usergraph/db.sqlite"
            )))
        );
        assert!(matches!(
            "postgresql://h/db".parse(),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!("mysql://h/db".parse::<DatabaseUrl>().is_err());
        assert!("sqlite://".parse::<DatabaseUrl>().is_err());
        assert!("sqlite://:memory:".parse::<DatabaseUrl>().is_err());
        assert!("sqlite://file:x?mode=memory"
            .parse::<DatabaseUrl>()
            .is_err());
    }
}
