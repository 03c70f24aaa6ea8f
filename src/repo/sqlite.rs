//! The queries compiled for SQLite, and the ones that differ. See
//! `pg.rs`.

use std::future::Future;

use chrono::{DateTime, Utc};
use diesel::{OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::demo::DemoRows;
use super::shared::{user_in_scope, UserInScope, Write};
use super::{Relation, RepoError, Scope, User, UserSnapshot};
use crate::db::models::{UserChanges, UserRow};
use crate::db::types::DbId;

pub type Conn = crate::db::SqliteConn;
pub type Backend = diesel::sqlite::Sqlite;

/// Runs `operation`, statements on a SQLite connection, to its end where
/// blocking is allowed: its statements run on the thread that polls them
/// (`db::OnCallingThread`), and a write may wait for the write lock (up to
/// the busy timeout) and for the disk at commit, a scan for its pages.
/// One hop off the async workers per operation, however many statements
/// it runs; none on a single-threaded runtime (tests, the command line),
/// which has no other work to keep going.
pub async fn off_the_workers<F: Future>(operation: F) -> F::Output {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let run = || block_on(operation);
    match Handle::try_current().map(|runtime| runtime.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
        _ => run(),
    }
}

/// Polls `future` on this thread until it is ready. A SQLite operation is
/// ready at its first poll (its statements run as they are polled); the
/// parking is for anything else it might await.
fn block_on<F: Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// Runs `f` in a transaction begun with `BEGIN IMMEDIATE` (it takes the
/// write lock at once; see `in_write_transaction!`), committed when `f`
/// returns `Ok` and rolled back otherwise. diesel-async offers this only
/// for its default, hopping connection.
pub async fn immediate_transaction<R, E, F>(c: &mut Conn, f: F) -> Result<R, E>
where
    F: AsyncFnOnce(&mut Conn) -> Result<R, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::AnsiTransactionManager;
    use diesel_async::sync_connection_wrapper::SyncTransactionManagerWrapper;
    use diesel_async::TransactionManager;
    type Manager = SyncTransactionManagerWrapper<AnsiTransactionManager>;

    c.spawn_blocking(|c| AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"))
        .await?;
    match f(c).await {
        Ok(value) => {
            Manager::commit_transaction(c).await?;
            Ok(value)
        }
        Err(e) => {
            Manager::rollback_transaction(c).await?;
            Err(e)
        }
    }
}

/// The user `query` selects, read inside a write transaction. SQLite has
/// no row locks and needs none: the transaction began with `BEGIN
/// IMMEDIATE`, which already excludes every other writer.
pub async fn user_for_write(
    c: &mut Conn,
    query: UserInScope,
) -> Result<Option<UserRow>, RepoError> {
    Ok(query
        .select(UserRow::as_select())
        .first(c)
        .await
        .optional()?)
}

/// Readies a seeding transaction (as `pg::prepare_seed`): checks the
/// environment is there.
pub async fn prepare_seed(c: &mut Conn, env: Uuid) -> Result<(), RepoError> {
    use crate::db::schema::environments;
    environments::table
        .find(DbId(env))
        .select(environments::id)
        .first::<DbId>(c)
        .await?;
    Ok(())
}

/// Sets how a seed's connection commits and checks: for the seed
/// (`seeding`, `db::SQLITE_SEEDING`), or back to every connection's way
/// after it (`db::SQLITE_SERVING`). SQLite cannot change either inside a
/// transaction, so they are set around the batches.
pub async fn seed_settings(c: &mut Conn, seeding: bool) -> Result<(), RepoError> {
    use crate::db::{SQLITE_SEEDING, SQLITE_SERVING};
    use diesel_async::SimpleAsyncConnection;
    let setting = if seeding {
        SQLITE_SEEDING
    } else {
        SQLITE_SERVING
    };
    Ok(c.batch_execute(setting).await?)
}

/// Inserts demo rows as `pg::insert_demo_rows` does. diesel builds a
/// multi-row `INSERT` for SQLite only on its synchronous connection, so
/// this runs there.
pub async fn insert_demo_rows(c: &mut Conn, rows: DemoRows) -> Result<Vec<DbId>, RepoError> {
    Ok(
        c.spawn_blocking(move |c| blocking::insert_demo_rows(c, rows))
            .await?,
    )
}

/// What runs on diesel's synchronous SQLite connection, inside one
/// `spawn_blocking` (which `db::OnCallingThread` runs where it is called).
mod blocking {
    use diesel::query_builder::InsertStatement;
    use diesel::query_dsl::methods::ExecuteDsl;
    use diesel::{
        ExpressionMethods, Insertable, OptionalExtension, QueryDsl, QueryResult, RunQueryDsl,
        SelectableHelper, SqliteConnection, Table,
    };
    use uuid::Uuid;

    use super::children::lists;
    use crate::db::models::*;
    use crate::db::schema::*;
    use crate::db::types::DbId;
    use crate::repo::demo::DemoRows;
    use crate::repo::records::decode_all;
    use crate::repo::shared::user_in_scope;
    use crate::repo::{Children, Relation, RepoError, Scope, User, UserSnapshot};

    /// The read by key of `super::user_with_children`. Run here rather than
    /// through diesel-async's wrapper, each statement is looked up among
    /// the prepared ones by its type, and its rows decoded where SQLite
    /// holds them: the wrapper renders every statement's text to look it
    /// up by, hashes it, and copies every row out first (a third of a
    /// SQLite read's instructions, docs/BENCHMARKS.md).
    pub fn user_with_children(
        c: &mut SqliteConnection,
        scope: Scope,
        id: Uuid,
        relations: Vec<Relation>,
    ) -> Result<Option<UserSnapshot>, RepoError> {
        let Some(row) = user_in_scope(scope, id)
            .select(UserRow::as_select())
            .first::<UserRow>(c)
            .optional()?
        else {
            return Ok(None);
        };
        let children = lists_of_user(c, row.id, &relations)?;
        Ok(Some(UserSnapshot {
            user: User::try_from(row)?,
            children,
            loaded: relations,
        }))
    }

    /// The nested lists `relations` of `user`, one statement each (those of
    /// `children::children_of_users` for one user); the others stay empty.
    pub fn lists_of_user(
        c: &mut SqliteConnection,
        user: DbId,
        relations: &[Relation],
    ) -> Result<Children, RepoError> {
        let mut children = Children::default();
        for relation in relations {
            match relation {
                Relation::VerifiedCredentials => {
                    children.verified_credentials = decode_all(
                        lists::verified_credentials()
                            .filter(verified_credentials::user_id.eq(user))
                            .load(c)?,
                    )?
                }
                Relation::Wallets => {
                    children.wallets =
                        decode_all(lists::wallets().filter(wallets::user_id.eq(user)).load(c)?)?
                }
                Relation::Sessions => {
                    children.sessions = decode_all(
                        lists::sessions()
                            .filter(sessions::user_id.eq(user))
                            .load(c)?,
                    )?
                }
                Relation::MfaDevices => {
                    children.mfa_devices = decode_all(
                        lists::mfa_devices()
                            .filter(mfa_devices::user_id.eq(user))
                            .load(c)?,
                    )?
                }
                Relation::OauthAccounts => {
                    children.oauth_accounts = decode_all(
                        lists::oauth_accounts()
                            .filter(oauth_accounts::user_id.eq(user))
                            .load(c)?,
                    )?
                }
                Relation::ChainalysisChecks => {
                    children.chainalysis_checks = decode_all(
                        lists::chainalysis_checks()
                            .filter(chainalysis_checks::user_id.eq(user))
                            .load(c)?,
                    )?
                }
            }
        }
        Ok(children)
    }

    /// Rows per multi-row `INSERT`. diesel gives a fixed number of rows
    /// one statement text, which SQLite then keeps prepared instead of
    /// parsing every batch's (7% of a seed's time went to parsing);
    /// the rows past the last full chunk are inserted one by one (a
    /// statement kept prepared too). A user row binds 36 values of the
    /// 32,766 SQLite allows per statement.
    const CHUNK: usize = 100;

    pub fn insert_demo_rows(
        c: &mut SqliteConnection,
        mut rows: DemoRows,
    ) -> QueryResult<Vec<DbId>> {
        let (chunks, rest) = rows.users.as_chunks::<CHUNK>();
        let mut inserted = Vec::with_capacity(rows.users.len());
        for chunk in chunks {
            inserted.extend(
                diesel::insert_into(users::table)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .returning(users::id)
                    .get_results::<DbId>(c)?,
            );
        }
        for row in rest {
            inserted.extend(
                diesel::insert_into(users::table)
                    .values(row)
                    .on_conflict_do_nothing()
                    .returning(users::id)
                    .get_result::<DbId>(c)
                    .optional()?,
            );
        }
        let inserted = rows.keep_users(&inserted);
        insert_all::<VerifiedCredentialRow, _>(c, verified_credentials::table, &rows.credentials)?;
        insert_all::<WalletRow, _>(c, wallets::table, &rows.wallets)?;
        insert_all::<SessionRow, _>(c, sessions::table, &rows.sessions)?;
        insert_all::<MfaDeviceRow, _>(c, mfa_devices::table, &rows.mfa_devices)?;
        insert_all::<OauthAccountRow, _>(c, oauth_accounts::table, &rows.oauth_accounts)?;
        insert_all::<ChainalysisCheckRow, _>(
            c,
            chainalysis_checks::table,
            &rows.chainalysis_checks,
        )?;
        Ok(inserted)
    }

    /// Inserts `rows` into `table`, `CHUNK` rows per statement.
    fn insert_all<'a, T, Tab>(
        c: &mut SqliteConnection,
        table: Tab,
        rows: &'a [T],
    ) -> QueryResult<()>
    where
        Tab: Table + Copy,
        &'a [T; CHUNK]: Insertable<Tab>,
        &'a T: Insertable<Tab>,
        InsertStatement<Tab, <&'a [T; CHUNK] as Insertable<Tab>>::Values>:
            ExecuteDsl<SqliteConnection>,
        InsertStatement<Tab, <&'a T as Insertable<Tab>>::Values>: ExecuteDsl<SqliteConnection>,
    {
        let (chunks, rest) = rows.as_chunks::<CHUNK>();
        for chunk in chunks {
            diesel::insert_into(table).values(chunk).execute(c)?;
        }
        for row in rest {
            diesel::insert_into(table).values(row).execute(c)?;
        }
        Ok(())
    }
}

/// User `id` with its nested lists `relations` (as `pg::user_with_children`
/// answers; on SQLite a statement costs no round trip, so one per list).
pub async fn user_with_children(
    c: &mut Conn,
    scope: Scope,
    id: Uuid,
    relations: &[Relation],
) -> Result<Option<UserSnapshot>, RepoError> {
    let relations = relations.to_vec();
    // The wrapper's own error is diesel's; the read's is the repository's.
    c.spawn_blocking(move |c| Ok(blocking::user_with_children(c, scope, id, relations)))
        .await?
}

/// The compare-and-set of a patch that needs no stored facts, answering
/// with the user and its nested lists `relations` and recording it (as
/// `pg::update_returning_children`), in a write transaction of its own.
pub async fn update_returning_children(
    c: &mut Conn,
    scope: Scope,
    id: Uuid,
    expected: DateTime<Utc>,
    changes: UserChanges,
    relations: &[Relation],
    write: Write,
) -> Result<Option<UserSnapshot>, RepoError> {
    immediate_transaction(c, async move |c: &mut Conn| {
        let before = user_for_write(c, user_in_scope(scope, id)).await?;
        let Some(before) = before.filter(|row| row.updated_at.0 == expected) else {
            return Ok(None);
        };
        let Some(row) = users::compare_and_set(c, scope, id, expected, changes).await? else {
            return Ok(None);
        };
        history::record(c, write.update_entry(scope, &before, &row)).await?;
        let loaded = relations.to_vec();
        let children = c
            .spawn_blocking(move |c| Ok(blocking::lists_of_user(c, DbId(id), &loaded)))
            .await??;
        Ok(Some(UserSnapshot {
            user: User::try_from(row)?,
            children,
            loaded: relations.to_vec(),
        }))
    })
    .await
}

#[path = "queries/children.rs"]
pub mod children;
#[path = "queries/history.rs"]
pub mod history;
#[path = "queries/idempotency.rs"]
pub mod idempotency;
#[path = "queries/nodes.rs"]
pub mod nodes;
#[path = "queries/seed.rs"]
pub mod seed;
#[path = "queries/tokens.rs"]
pub mod tokens;
#[path = "queries/users.rs"]
pub mod users;
