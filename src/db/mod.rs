//! Pools, backend dispatch, the diesel schema, row structs and migrations.
//!
//! Both backends run the same diesel queries: [`Conn`] is an enum of pooled
//! connections, and `repo` compiles its queries once per backend and picks
//! the one for the connection at hand (see `repo/mod.rs`).

pub mod models;
pub mod schema;
pub mod types;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use diesel::connection::{CacheSize, Instrumentation, InstrumentationEvent};

use diesel::{Connection, ConnectionError, SqliteConnection};
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};
use diesel_async::{
    AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, SimpleAsyncConnection,
};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

mod url;

pub use url::DatabaseUrl;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Settings every SQLite connection needs, then how it commits and checks
/// ([`SQLITE_SERVING`]):
/// - concurrent readers with one writer (WAL), waiting instead of failing
///   on a busy writer;
/// - statement journals in memory (`temp_store`): a statement that may fail
///   half way through a transaction (any multi-row `INSERT`, any with a
///   `CHECK`) keeps the original of each page it changes, to undo itself
///   alone, and in a temporary file those copies were half of a seed's
///   writes (docs/BENCHMARKS.md);
/// - the database file read through a memory map (`mmap_size`, up to
///   SQLite's ceiling of 2 GB on Linux and macOS): a page outside SQLite's
///   small page cache was a `pread` copying it from the OS's cache, over a
///   quarter of the server's CPU per W1 read. The price is paid under
///   writes: a connection that finds the database changed since its last
///   read drops its map and faults the pages in again (W2 on SQLite about a
///   tenth slower). Each connection maps the file, so the pages a process
///   has touched count once per connection in its RSS, though they are the
///   OS's file cache, shared and reclaimable, as they were before.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
     PRAGMA temp_store = MEMORY; PRAGMA mmap_size = 2147418112;";

/// How every SQLite connection commits and checks: `synchronous = FULL`,
/// foreign keys enforced. In WAL mode, `NORMAL` survives a crash of the
/// process but may lose the last commits on a power loss or OS crash, and
/// an update acknowledged to a client must never be lost. The WAL is
/// copied back into the database every 1,000 pages (SQLite's default),
/// which keeps it, and readers' searches of it, small. Only a seed's
/// connection works otherwise ([`SQLITE_SEEDING`]), and restores this.
pub const SQLITE_SERVING: &str =
    "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 1000; PRAGMA foreign_keys = ON";

/// How a seed's connection works on SQLite: committing without waiting for
/// the disk (an fsync per batch was a tenth of a 100,000-user seed), and
/// copying the WAL back every 10,000 pages (40 MB) instead of every 1,000:
/// each copy rewrote the pages every batch touches (index roots, the right
/// edges) and ended in an fsync; 1,000,000 users took 10 s less on average
/// in four interleaved pairs (docs/BENCHMARKS.md). A crash of the machine
/// may lose its last batches, never corrupt the file; a seed is run again,
/// unlike an acknowledged update. Foreign keys go unchecked, as on
/// PostgreSQL (`pg::prepare_seed`): a seed's rows are consistent by
/// construction (`sqlite::prepare_seed` checks the environment in the
/// batch's write transaction, and a user skipped takes its rows along).
pub const SQLITE_SEEDING: &str =
    "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 10000; PRAGMA foreign_keys = OFF";

/// SQLite's wait for the write lock (`busy_timeout` in `SQLITE_PRAGMAS`).
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(5000);

/// Longest a request waits for a pooled connection, or for a new one to
/// open, before it fails instead of hanging on a stalled database.
const POOL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Key of the PostgreSQL advisory lock that serialises migrations when
/// several server processes start against one database at once.
const MIGRATION_LOCK_KEY: i64 = 0x7573_6572_6772_6170; // "usergrap"

diesel::define_sql_function! {
    /// SQL `lower()`: the case folding the unique indexes on emails and
    /// usernames use, and the queries that look them up.
    fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>
}

/// Makes SQLite's `lower()` fold all of Unicode, as PostgreSQL's does,
/// instead of ASCII only, so that both backends hold `É@x` and `é@x` for
/// the same email. Registered on every connection before any statement:
/// the unique indexes are built over `lower()`, and each connection must
/// compute it alike (the `unicode_case` migration rebuilt them with it).
/// A tool that opens the file without it (the sqlite3 shell) must not
/// write emails or usernames.
fn fold_case_like_postgres(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    lower_utils::register_impl(conn, |text: Option<String>| {
        text.map(|text| text.to_lowercase())
    })
}

/// The embedded backend's connection type.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection, OnCallingThread>;

/// Runs a SQLite connection's statements on the thread that polls them.
/// diesel-async's default hops to a blocking thread for every statement (a
/// wake-up and a thread switch each, more than a read by key costs); the
/// repository instead decides where a whole operation runs: a read by key
/// where it is asked, anything that may wait (for the write lock, for the
/// disk at commit, through a scan) in one hop (`repo/sqlite.rs`,
/// `off_the_workers`).
pub struct OnCallingThread;

impl SpawnBlocking for OnCallingThread {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> BoxFuture<'a, Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        futures_util::future::lazy(|_| Ok(task())).boxed()
    }

    fn get_runtime() -> Self {
        OnCallingThread
    }
}

/// Errors of the database layer; their text is for logs, never for clients.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database connection unavailable: {0}")]
    Pool(String),
    #[error("database connection failed: {0}")]
    Connect(#[from] ConnectionError),
    #[error("migration failed: {0}")]
    Migration(String),
}

/// A connection pool for one of the two backends.
#[derive(Clone)]
enum Pools {
    Pg(Pool<AsyncPgConnection>),
    Sqlite(Pool<SqliteConn>),
}

/// The database: a pool, and a count of the SQL statements it has run (the
/// server's own instrumentation, read by tests and metrics).
#[derive(Clone)]
pub struct Db {
    /// The pool of work off the shards (see `crate::shards`), or of all
    /// work when the server is not sharded.
    pools: Pools,
    /// One pool per shard, each used only by its shard's thread.
    shard_pools: Arc<[Pools]>,
    statements: Arc<AtomicU64>,
    /// The URL of a PostgreSQL database, for connections outside the pool
    /// (they need a session).
    postgres_url: Option<Arc<str>>,
    /// The pool's URL leads through a transaction-pooling PgBouncer.
    transaction_pooled: bool,
}

impl Pools {
    fn status(&self) -> PoolStatus {
        let status = match self {
            Pools::Pg(pool) => pool.status(),
            Pools::Sqlite(pool) => pool.status(),
        };
        PoolStatus {
            in_use: status.size.saturating_sub(status.available),
            idle: status.available,
            max: status.max_size,
        }
    }
}

/// A pooled connection of one of the two backends.
// A `Conn` lives on the stack for one request; boxing the larger variant
// would cost an allocation on every checkout to save a few hundred bytes.
#[allow(clippy::large_enum_variant)]
pub enum Conn {
    Pg(Object<AsyncPgConnection>),
    /// A PostgreSQL connection through a transaction-pooling PgBouncer:
    /// every statement must run inside a transaction (see [`Db::open`]).
    PgPooled(Object<AsyncPgConnection>),
    Sqlite(Object<SqliteConn>),
}

/// The pool's connections (see [`Db::pool_status`]).
#[derive(Debug, Clone, Copy)]
pub struct PoolStatus {
    pub in_use: usize,
    pub idle: usize,
    pub max: usize,
}

/// What [`Db::open`] found.
pub struct Opened {
    pub db: Db,
    /// True when this call created the embedded database file.
    pub created: bool,
    /// How many shards the server should run (see [`Db::open`]).
    pub shards: usize,
}

/// The connections of a PostgreSQL pool: counted, and bounded by the
/// statement timeout (see [`Db::open`]).
fn postgres_manager(
    url: &str,
    counter: Arc<AtomicU64>,
    transaction_pooled: bool,
    statement_timeout: Option<std::time::Duration>,
) -> AsyncDieselConnectionManager<AsyncPgConnection> {
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let counter = counter.clone();
        async move {
            let mut conn = if transaction_pooled {
                establish_pooled(url).await?
            } else {
                AsyncPgConnection::establish(url).await?
            };
            if let Some(timeout) = statement_timeout {
                let ms = timeout.as_millis();
                conn.batch_execute(&format!(
                    "SET statement_timeout = {ms}; SET lock_timeout = {ms}"
                ))
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            }
            conn.set_instrumentation(count_statements(counter));
            Ok(conn)
        }
        .boxed()
    });
    AsyncDieselConnectionManager::new_with_config(url, config)
}

/// A pool of at most `max` connections from `manager`.
fn build_pool<C>(manager: AsyncDieselConnectionManager<C>, max: usize) -> Result<Pool<C>, DbError>
where
    C: diesel_async::pooled_connection::PoolableConnection + Send + 'static,
    AsyncDieselConnectionManager<C>: deadpool::managed::Manager<Type = C>,
{
    Pool::builder(manager)
        .max_size(max)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(POOL_TIMEOUT))
        .create_timeout(Some(POOL_TIMEOUT))
        .build()
        .map_err(|e| DbError::Pool(e.to_string()))
}

impl Db {
    /// Opens a pool of at most `max_connections` and migrates the database.
    /// On PostgreSQL, a server of `threads` threads (0: none, not a server)
    /// gets a shard per thread (see `crate::shards`) while the connections
    /// allow: one pool per shard and one connection for the work off the
    /// shards.
    /// `statement_timeout` bounds every statement and lock wait of the
    /// pool's connections on PostgreSQL, and the wait for the write lock on
    /// SQLite (5 s at most).
    ///
    /// With `session_url`, `url` leads to PostgreSQL through PgBouncer in
    /// transaction pooling mode, which hands each transaction, or each
    /// exchange outside one, to any of its server connections. tokio-
    /// postgres runs every statement as a named prepared statement over two
    /// exchanges (`Parse`, then `Bind`), so the pool then keeps no
    /// statements and runs every one inside a transaction
    /// ([`Conn::PgPooled`], and [`establish_pooled`] for the connection's own
    /// setup): its `Parse`, `Bind` and `Close` reach one server connection.
    /// What needs a session (migrations, LISTEN) uses `session_url`, which
    /// reaches PostgreSQL directly. Session settings do not survive such a
    /// pooler, so the statement timeout is then the role's to set
    /// (docs/SCALING.md).
    pub async fn open(
        url: &DatabaseUrl,
        max_connections: usize,
        statement_timeout: Option<std::time::Duration>,
        session_url: Option<&str>,
        threads: usize,
    ) -> Result<Opened, DbError> {
        let statements = Arc::new(AtomicU64::new(0));
        let transaction_pooled = session_url.is_some();
        let statement_timeout = statement_timeout.filter(|_| !transaction_pooled);
        let mut shard_pools = Vec::new();
        let (pools, created) = match url {
            DatabaseUrl::Postgres(url) => {
                migrate_postgres(session_url.unwrap_or(url)).await?;
                let pool = |max| {
                    let manager = postgres_manager(
                        url,
                        statements.clone(),
                        transaction_pooled,
                        statement_timeout,
                    );
                    build_pool(manager, max).map(Pools::Pg)
                };
                let sharded = max_connections.saturating_sub(1);
                let shards = threads.min(sharded);
                if shards == 0 {
                    (pool(max_connections)?, false)
                } else {
                    for shard in 0..shards {
                        // The remainder goes to the first shards.
                        let share = sharded / shards + usize::from(shard < sharded % shards);
                        shard_pools.push(pool(share)?);
                    }
                    (pool(1)?, false)
                }
            }
            DatabaseUrl::Sqlite(path) => {
                let created = !path.exists();
                migrate_sqlite(path.clone()).await?;
                let counter = statements.clone();
                let mut config = ManagerConfig::<SqliteConn>::default();
                config.recycling_method = RecyclingMethod::Fast;
                config.custom_setup = Box::new(move |url| {
                    establish_sqlite(url.to_owned(), counter.clone(), statement_timeout).boxed()
                });
                let manager =
                    AsyncDieselConnectionManager::new_with_config(path.to_string_lossy(), config);
                (
                    Pools::Sqlite(build_pool(manager, max_connections)?),
                    created,
                )
            }
        };
        let postgres_url = match url {
            DatabaseUrl::Postgres(url) => Some(Arc::from(session_url.unwrap_or(url))),
            DatabaseUrl::Sqlite(_) => None,
        };
        Ok(Opened {
            shards: shard_pools.len(),
            db: Db {
                pools,
                shard_pools: shard_pools.into(),
                statements,
                postgres_url,
                transaction_pooled,
            },
            created,
        })
    }

    /// The database's URL when it is PostgreSQL.
    pub fn postgres_url(&self) -> Option<&str> {
        self.postgres_url.as_deref()
    }

    /// The pool of the calling thread's shard, else the one of all other
    /// work.
    fn pool(&self) -> &Pools {
        crate::shards::current()
            .and_then(|shard| self.shard_pools.get(shard))
            .unwrap_or(&self.pools)
    }

    /// Takes a connection from the pool.
    pub async fn conn(&self) -> Result<Conn, DbError> {
        match self.pool() {
            Pools::Pg(pool) if self.transaction_pooled => pool.get().await.map(Conn::PgPooled),
            Pools::Pg(pool) => pool.get().await.map(Conn::Pg),
            Pools::Sqlite(pool) => pool.get().await.map(Conn::Sqlite),
        }
        .map_err(|e| DbError::Pool(e.to_string()))
    }

    /// How many connections are open and at work, open and idle, and at
    /// most, over all pools.
    pub fn pool_status(&self) -> PoolStatus {
        let pools = std::iter::once(&self.pools).chain(self.shard_pools.iter());
        pools.map(Pools::status).fold(
            PoolStatus {
                in_use: 0,
                idle: 0,
                max: 0,
            },
            |total, pool| PoolStatus {
                in_use: total.in_use + pool.in_use,
                idle: total.idle + pool.idle,
                max: total.max + pool.max,
            },
        )
    }

    /// Whether every connection the calling thread's pool may open is open
    /// and in use: its new work waits for one (busy), which says nothing
    /// about the database being down.
    pub fn is_saturated(&self) -> bool {
        let status = self.pool().status();
        status.in_use + status.idle >= status.max && status.idle == 0
    }

    /// How many SQL statements this pool's connections have run so far.
    pub fn statements_run(&self) -> u64 {
        AtomicU64::load(&self.statements, Ordering::Relaxed)
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DbError> {
        // A simple query: no prepared statement, so any pooler passes it.
        match &mut self.conn().await? {
            Conn::Pg(c) | Conn::PgPooled(c) => c.batch_execute("SELECT 1").await?,
            Conn::Sqlite(c) => c.batch_execute("SELECT 1").await?,
        };
        Ok(())
    }
}

/// A connection through a transaction-pooling PgBouncer (see [`Db::open`]),
/// keeping no prepared statements. diesel-async sets the connection up with
/// two prepared statements (`SET TIME ZONE`, `SET CLIENT_ENCODING`); they
/// run inside a transaction begun by hand, so that they reach one server
/// connection. (The settings then stay on whichever server connection that
/// was: harmless, they are what every usergraph connection sets.)
async fn establish_pooled(url: &str) -> diesel::ConnectionResult<AsyncPgConnection> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "pooled PostgreSQL connection ended");
        }
    });
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
    let mut conn = AsyncPgConnection::try_from(client).await?;
    conn.set_prepared_statement_cache_size(CacheSize::Disabled);
    conn.batch_execute("COMMIT")
        .await
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Instrumentation that counts every statement a connection starts.
fn count_statements(counter: Arc<AtomicU64>) -> impl Instrumentation {
    move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { .. } = event {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn establish_sqlite(
    path: String,
    statements: Arc<AtomicU64>,
    statement_timeout: Option<std::time::Duration>,
) -> diesel::ConnectionResult<SqliteConn> {
    tokio::task::spawn_blocking(move || {
        use diesel::connection::SimpleConnection;
        let mut conn = SqliteConnection::establish(&path)?;
        fold_case_like_postgres(&mut conn).map_err(ConnectionError::CouldntSetupConfiguration)?;
        let setup = |conn: &mut SqliteConnection, sql: &str| {
            conn.batch_execute(sql)
                .map_err(ConnectionError::CouldntSetupConfiguration)
        };
        setup(&mut conn, SQLITE_PRAGMAS)?;
        setup(&mut conn, SQLITE_SERVING)?;
        // SQLite cannot cancel a running statement; what a request can wait
        // on is the write lock, so that wait is bounded like PostgreSQL's.
        if let Some(timeout) = statement_timeout.filter(|t| *t < SQLITE_BUSY_TIMEOUT) {
            setup(
                &mut conn,
                &format!("PRAGMA busy_timeout = {}", timeout.as_millis()),
            )?;
        }
        conn.set_instrumentation(count_statements(statements));
        Ok(SyncConnectionWrapper::new(conn))
    })
    .await
    .map_err(|error| ConnectionError::BadConnection(error.to_string()))?
}

/// Applies pending migrations to a PostgreSQL database, one process at a time.
pub async fn migrate_postgres(url: &str) -> Result<(), DbError> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    let lock = format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})");
    conn.batch_execute(&lock).await?;
    let mut harness = AsyncMigrationHarness::new(conn);
    // The harness drives the async connection from sync diesel code and so
    // needs the multi-thread runtime (it uses `block_in_place`).
    let outcome = harness
        .run_pending_migrations(PG_MIGRATIONS)
        .map(|_| ())
        .map_err(|e| DbError::Migration(e.to_string()));
    let mut conn = harness.into_inner();
    let unlock = format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})");
    conn.batch_execute(&unlock).await?;
    outcome
}

/// Creates the SQLite file if needed and applies pending migrations.
pub async fn migrate_sqlite(path: PathBuf) -> Result<(), DbError> {
    tokio::task::spawn_blocking(move || {
        create_parent_dir(&path)?;
        let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
        fold_case_like_postgres(&mut conn)?;
        for settings in [SQLITE_PRAGMAS, SQLITE_SERVING] {
            diesel::connection::SimpleConnection::batch_execute(&mut conn, settings)?;
        }
        conn.run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|_| ())
            .map_err(|e| DbError::Migration(e.to_string()))
    })
    .await
    .map_err(|e| DbError::Migration(e.to_string()))?
}

fn create_parent_dir(path: &Path) -> Result<(), DbError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|e| DbError::Migration(format!("cannot create {}: {e}", dir.display()))),
        _ => Ok(()),
    }
}

/// Applies pending migrations for whichever backend `url` names.
pub async fn migrate(url: &DatabaseUrl) -> Result<(), DbError> {
    match url {
        DatabaseUrl::Postgres(url) => migrate_postgres(url).await,
        DatabaseUrl::Sqlite(path) => migrate_sqlite(path.clone()).await,
    }
}
