//! The queries compiled for PostgreSQL, and the one query that differs.
//!
//! `queries/*.rs` are written once against `super::Conn` and compiled here
//! with PostgreSQL's connection (and again in `sqlite.rs` with SQLite's),
//! so every query is type-checked against both backends.

use diesel::{OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::demo::DemoRows;
use super::shared::UserInScope;
use super::RepoError;
use crate::db::models::UserRow;
use crate::db::schema;
use crate::db::types::DbId;

pub type Conn = diesel_async::AsyncPgConnection;
pub type Backend = diesel::pg::Pg;

/// The user `query` selects, read inside a write transaction and locked
/// (`FOR UPDATE`) until it ends, so that nested lists read afterwards, and
/// a no-op's or a conflict's answer, belong to that same version.
pub async fn user_for_write(
    c: &mut Conn,
    query: UserInScope,
) -> Result<Option<UserRow>, RepoError> {
    Ok(query
        .select(UserRow::as_select())
        .for_update()
        .first(c)
        .await
        .optional()?)
}

/// Inserts demo rows, one multi-row `INSERT` per table, leaving out the
/// users a unique index refuses (and their nested rows); returns the ids
/// of the users inserted.
pub async fn insert_demo_rows(c: &mut Conn, mut rows: DemoRows) -> Result<Vec<DbId>, RepoError> {
    let inserted: Vec<DbId> = diesel::insert_into(schema::users::table)
        .values(&rows.users)
        .on_conflict_do_nothing()
        .returning(schema::users::id)
        .get_results(c)
        .await?;
    let inserted = rows.keep_users(&inserted);
    diesel::insert_into(schema::verified_credentials::table)
        .values(&rows.credentials)
        .execute(c)
        .await?;
    diesel::insert_into(schema::wallets::table)
        .values(&rows.wallets)
        .execute(c)
        .await?;
    diesel::insert_into(schema::sessions::table)
        .values(&rows.sessions)
        .execute(c)
        .await?;
    diesel::insert_into(schema::mfa_devices::table)
        .values(&rows.mfa_devices)
        .execute(c)
        .await?;
    diesel::insert_into(schema::oauth_accounts::table)
        .values(&rows.oauth_accounts)
        .execute(c)
        .await?;
    diesel::insert_into(schema::chainalysis_checks::table)
        .values(&rows.chainalysis_checks)
        .execute(c)
        .await?;
    Ok(inserted)
}

/// Tells the planner how big `users` has grown inside a bulk load. The
/// foreign-key checks of nested rows run cached plans, and a plan made
/// while the table looked empty scans it whole: a seed would turn
/// quadratic. `ANALYZE` sees the transaction's own rows and invalidates
/// those plans.
pub async fn refresh_planner_statistics(c: &mut Conn) -> Result<(), RepoError> {
    diesel::sql_query("ANALYZE users").execute(c).await?;
    Ok(())
}

#[path = "queries/children.rs"]
pub mod children;
#[path = "queries/nodes.rs"]
pub mod nodes;
#[path = "queries/seed.rs"]
pub mod seed;
#[path = "queries/tokens.rs"]
pub mod tokens;
#[path = "queries/users.rs"]
pub mod users;
