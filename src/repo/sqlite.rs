//! The queries compiled for SQLite, and the ones that differ. See
//! `pg.rs`.

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

/// Inserts demo rows as `pg::insert_demo_rows` does. diesel builds a
/// multi-row `INSERT` for SQLite only on its synchronous connection, so
/// this runs there, on the blocking thread that connection lives on.
pub async fn insert_demo_rows(c: &mut Conn, rows: DemoRows) -> Result<Vec<DbId>, RepoError> {
    Ok(
        c.spawn_blocking(move |c| blocking::insert_demo_rows(c, rows))
            .await?,
    )
}

mod blocking {
    use diesel::{QueryResult, RunQueryDsl, SqliteConnection};

    use crate::db::schema::*;
    use crate::db::types::DbId;
    use crate::repo::demo::DemoRows;

    pub fn insert_demo_rows(
        c: &mut SqliteConnection,
        mut rows: DemoRows,
    ) -> QueryResult<Vec<DbId>> {
        let inserted: Vec<DbId> = diesel::insert_into(users::table)
            .values(&rows.users)
            .on_conflict_do_nothing()
            .returning(users::id)
            .get_results(c)?;
        let inserted = rows.keep_users(&inserted);
        diesel::insert_into(verified_credentials::table)
            .values(&rows.credentials)
            .execute(c)?;
        diesel::insert_into(wallets::table)
            .values(&rows.wallets)
            .execute(c)?;
        diesel::insert_into(sessions::table)
            .values(&rows.sessions)
            .execute(c)?;
        diesel::insert_into(mfa_devices::table)
            .values(&rows.mfa_devices)
            .execute(c)?;
        diesel::insert_into(oauth_accounts::table)
            .values(&rows.oauth_accounts)
            .execute(c)?;
        diesel::insert_into(chainalysis_checks::table)
            .values(&rows.chainalysis_checks)
            .execute(c)?;
        Ok(inserted)
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
    let Some(user) = users::user(c, scope, id).await? else {
        return Ok(None);
    };
    let mut children = children::children_of_users(c, relations, &[id]).await?;
    Ok(Some(UserSnapshot {
        user,
        children: children.remove(&id).unwrap_or_default(),
        loaded: relations.to_vec(),
    }))
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
    c.immediate_transaction(async move |c: &mut Conn| {
        let before = user_for_write(c, user_in_scope(scope, id)).await?;
        let Some(before) = before.filter(|row| row.updated_at.0 == expected) else {
            return Ok(None);
        };
        let Some(row) = users::compare_and_set(c, scope, id, expected, changes).await? else {
            return Ok(None);
        };
        history::record(c, write.update_entry(scope, &before, &row)).await?;
        let mut children = children::children_of_users(c, relations, &[id]).await?;
        Ok(Some(UserSnapshot {
            user: User::try_from(row)?,
            children: children.remove(&id).unwrap_or_default(),
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
