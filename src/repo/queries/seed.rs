//! Demo data in bulk. Compiled once per backend (see `repo/pg.rs`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::{insert_demo_rows, Conn};
use crate::db::schema::users;
use crate::db::types::DbId;
use crate::repo::demo::{demo_user, DemoRows};
use crate::repo::shared::lower;
use crate::repo::RepoError;

/// Demo users per batch: one multi-row `INSERT` per table each. A user row
/// binds 36 values, and SQLite allows 32,766 per statement.
const BATCH: usize = 500;

/// The lower-cased usernames among `candidates` that users of `env` have.
/// One statement, and it uses the `(environment_id, lower(username))`
/// unique index.
async fn taken_usernames(
    c: &mut Conn,
    env: DbId,
    candidates: Vec<String>,
) -> Result<HashSet<String>, RepoError> {
    let taken: Vec<Option<String>> = users::table
        .filter(users::environment_id.eq(env))
        .filter(lower(users::username).eq_any(candidates))
        .select(lower(users::username))
        .load(c)
        .await?;
    Ok(taken.into_iter().flatten().collect())
}

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
        let candidates: Vec<DemoRows> = (1..=size as i64)
            .map(|i| demo_user(env, n + i, now))
            .collect();
        n += size as i64;
        // Numbers freed by deletions are behind us, but a number may still
        // be taken (by a user created by hand, or a concurrent seed): skip
        // it (its username and email go together).
        let handles = candidates.iter().map(DemoRows::handle).collect();
        let taken = taken_usernames(c, DbId(env), handles).await?;
        let batch: Vec<DemoRows> = candidates
            .into_iter()
            .filter(|demo| !taken.contains(&demo.handle()))
            .collect();
        let mut rows = DemoRows::default();
        for demo in batch {
            ids.push(demo.users[0].id.0);
            rows.append(demo);
        }
        insert_demo_rows(c, rows).await?;
        progress(ids.len());
    }
    Ok(ids)
}
