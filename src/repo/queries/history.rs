//! The change history of users: written in each write's transaction, read
//! by `User.history` and by conflicts, pruned in the background.
//!
//! Compiled once per backend (see `repo/pg.rs` and `repo/sqlite.rs`).

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, NullableExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::Conn;
use crate::db::models::UserHistoryRow;
use crate::db::schema::{api_tokens, user_history};
use crate::db::types::{DbId, DbJson, DbTime};
use crate::repo::shared::changes_since as chain;
use crate::repo::{ChangesSince, HistoryEntry, RepoError, Scope};

/// About how many rows one pruning statement deletes: each holds its locks (on
/// SQLite, the whole file) only briefly, so writers wait at most that long.
pub const PRUNE_BATCH: i64 = 1_000;

/// Records a history entry, in the caller's transaction.
pub async fn record(c: &mut Conn, entry: UserHistoryRow) -> Result<(), RepoError> {
    diesel::insert_into(user_history::table)
        .values(&entry)
        .execute(c)
        .await?;
    Ok(())
}

/// What changed on user `user` of the scope's environment after version
/// `expected`, up to version `current`.
pub async fn changes_since(
    c: &mut Conn,
    scope: Scope,
    user: Uuid,
    expected: DateTime<Utc>,
    current: DateTime<Utc>,
) -> Result<ChangesSince, RepoError> {
    let entries = user_history::table
        .filter(user_history::user_id.eq(DbId(user)))
        .filter(user_history::environment_id.eq(DbId(scope.environment_id)))
        .filter(user_history::version.gt(DbTime(expected)))
        .filter(user_history::version.le(DbTime(current)))
        .order(user_history::version)
        .select((user_history::previous_version, user_history::changed_fields))
        .load::<(Option<DbTime>, DbJson)>(c)
        .await?;
    chain(expected, entries)
}

/// Up to `limit` history entries of user `user` of the scope's
/// environment, newest first, older than version `before`.
pub async fn history(
    c: &mut Conn,
    scope: Scope,
    user: Uuid,
    before: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<HistoryEntry>, RepoError> {
    let mut query = user_history::table
        .left_join(api_tokens::table)
        .filter(user_history::user_id.eq(DbId(user)))
        .filter(user_history::environment_id.eq(DbId(scope.environment_id)))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(user_history::version.lt(DbTime(before)));
    }
    let rows = query
        .order(user_history::version.desc())
        .limit(limit)
        .select((UserHistoryRow::as_select(), api_tokens::name.nullable()))
        .load::<(UserHistoryRow, Option<String>)>(c)
        .await?;
    rows.into_iter().map(HistoryEntry::try_from).collect()
}

/// Deletes about [`PRUNE_BATCH`] of the entries recorded before `cutoff`
/// (the oldest); returns how many.
pub async fn prune_older_than(c: &mut Conn, cutoff: DateTime<Utc>) -> Result<usize, RepoError> {
    // The batch is bounded by time: the instant of the entry just past it.
    let batch_end = user_history::table
        .order(user_history::recorded_at)
        .select(user_history::recorded_at)
        .offset(PRUNE_BATCH)
        .first::<DbTime>(c)
        .await
        .optional()?;
    // Inclusive, so that even a batch of equal instants makes progress.
    let deleted = match batch_end {
        Some(end) if end.0 < cutoff => {
            let batch = user_history::table.filter(user_history::recorded_at.le(end));
            diesel::delete(batch).execute(c).await?
        }
        _ => {
            let old = user_history::table.filter(user_history::recorded_at.lt(DbTime(cutoff)));
            diesel::delete(old).execute(c).await?
        }
    };
    Ok(deleted)
}

/// Up to [`PRUNE_BATCH`] users with more than `keep` entries.
pub async fn users_over(c: &mut Conn, keep: i64) -> Result<Vec<Uuid>, RepoError> {
    let users = user_history::table
        .group_by(user_history::user_id)
        .having(diesel::dsl::count_star().gt(keep))
        .select(user_history::user_id)
        .limit(PRUNE_BATCH)
        .load::<DbId>(c)
        .await?;
    Ok(users.into_iter().map(|id| id.0).collect())
}

/// Deletes the entries of user `user` beyond its newest `keep`; returns
/// how many.
pub async fn prune_user_beyond(c: &mut Conn, user: Uuid, keep: i64) -> Result<usize, RepoError> {
    let of_user = || user_history::table.filter(user_history::user_id.eq(DbId(user)));
    let oldest_kept = of_user()
        .order(user_history::version.desc())
        .select(user_history::version)
        .offset(keep.max(1) - 1)
        .first::<DbTime>(c)
        .await
        .optional()?;
    let Some(oldest_kept) = oldest_kept else {
        return Ok(0);
    };
    let beyond = of_user().filter(user_history::version.lt(oldest_kept));
    Ok(diesel::delete(beyond).execute(c).await?)
}
