//! Demo data in bulk. Compiled once per backend (see `repo/pg.rs`).

use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::{insert_demo_rows, prepare_seed, Conn};
use crate::db::schema::users;
use crate::db::types::DbId;
use crate::repo::demo::DemoRows;
use crate::repo::RepoError;

/// The number of users already in environment `env`: seeded users are
/// numbered on from there.
pub async fn users_in(c: &mut Conn, env: Uuid) -> Result<i64, RepoError> {
    Ok(users::table
        .filter(users::environment_id.eq(DbId(env)))
        .count()
        .get_result(c)
        .await?)
}

/// Inserts one batch of demo users of environment `env` (in the write
/// transaction of its own the caller opens); returns the ids of those added.
pub async fn seed_batch(c: &mut Conn, env: Uuid, rows: DemoRows) -> Result<Vec<DbId>, RepoError> {
    prepare_seed(c, env).await?;
    insert_demo_rows(c, rows).await
}
