//! Demo data in bulk. Compiled once per backend (see `repo/pg.rs`).

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::{insert_demo_rows, Conn};
use crate::db::schema::users;
use crate::db::types::DbId;
use crate::repo::demo::{demo_user, DemoRows};
use crate::repo::RepoError;

/// Demo users per batch: one multi-row `INSERT` per table each. A user row
/// binds 36 values; SQLite allows 32,766 per statement.
const BATCH: usize = 500;

/// Adds `count` demo users to environment `env`, numbering on from the
/// users already there and skipping numbers whose username is taken, so
/// that emails and usernames stay unique. Calls `progress` with the number
/// added so far after each batch. Returns the new ids in order.
pub async fn seed_users(
    c: &mut Conn,
    env: Uuid,
    count: usize,
    now: DateTime<Utc>,
    progress: &(dyn Fn(usize) + Send + Sync),
) -> Result<Vec<Uuid>, RepoError> {
    let existing: i64 = users::table
        .filter(users::environment_id.eq(DbId(env)))
        .count()
        .get_result(c)
        .await?;
    let mut ids = Vec::with_capacity(count);
    let mut n = existing;
    while ids.len() < count {
        let size = BATCH.min(count - ids.len());
        let mut rows = DemoRows::default();
        for _ in 0..size {
            n += 1;
            rows.append(demo_user(env, n, now));
        }
        // Numbers freed by deletions are behind us, but a number may still
        // be taken (by a user created by hand, or a concurrent seed): the
        // unique indexes skip its user (username and email go together),
        // and the next batch numbers on.
        let inserted = insert_demo_rows(c, rows).await?;
        ids.extend(inserted.into_iter().map(|id| id.0));
        progress(ids.len());
    }
    Ok(ids)
}
