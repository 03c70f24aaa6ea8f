//! The first answers to `Idempotency-Key`s (see `http/idempotency.rs`).
//!
//! Compiled once per backend (see `repo/pg.rs` and `repo/sqlite.rs`).

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::Conn;
use crate::db::models::IdempotencyKeyRow;
use crate::db::schema::idempotency_keys;
use crate::db::types::{DbId, DbTime};
use crate::repo::{KeyClaim, RepoError};

use super::history::PRUNE_BATCH;

type KeyOf = diesel::dsl::Filter<
    diesel::dsl::Filter<idempotency_keys::table, diesel::dsl::Eq<idempotency_keys::token_id, DbId>>,
    diesel::dsl::Eq<idempotency_keys::key, String>,
>;

fn key_of(token: Uuid, key: &str) -> KeyOf {
    idempotency_keys::table
        .filter(idempotency_keys::token_id.eq(DbId(token)))
        .filter(idempotency_keys::key.eq(key.to_owned()))
}

/// Claims `key` of `token` for a request whose body hashes to `body_hash`,
/// unless a request already did. A claim made before `expired_before` is
/// forgotten; one still unanswered since before `abandoned_before` is
/// taken over (its process died before answering).
pub async fn claim(
    c: &mut Conn,
    row: IdempotencyKeyRow,
    expired_before: DateTime<Utc>,
    abandoned_before: DateTime<Utc>,
) -> Result<KeyClaim, RepoError> {
    let inserted = diesel::insert_into(idempotency_keys::table)
        .values(&row)
        .on_conflict_do_nothing()
        .execute(c)
        .await?;
    if inserted == 1 {
        return Ok(KeyClaim::Claimed);
    }
    let Some(first) = key_of(row.token_id.0, &row.key)
        .select(IdempotencyKeyRow::as_select())
        .first(c)
        .await
        .optional()?
    else {
        // Pruned in between: the client may simply try again.
        return Ok(KeyClaim::Running);
    };
    let expired = first.created_at.0 < expired_before;
    let abandoned = first.status.is_none() && first.created_at.0 < abandoned_before;
    if !expired && first.body_hash != row.body_hash {
        return Ok(KeyClaim::OtherBody);
    }
    if expired || abandoned {
        // Compare-and-set on the claim itself: of several takers, one wins.
        let taken = diesel::update(
            key_of(row.token_id.0, &row.key)
                .filter(idempotency_keys::created_at.eq(first.created_at)),
        )
        .set((
            idempotency_keys::body_hash.eq(&row.body_hash),
            idempotency_keys::status.eq(None::<i32>),
            idempotency_keys::response.eq(None::<String>),
            idempotency_keys::created_at.eq(row.created_at),
        ))
        .execute(c)
        .await?;
        return Ok(if taken == 1 {
            KeyClaim::Claimed
        } else {
            KeyClaim::Running
        });
    }
    Ok(match (first.status, first.response) {
        (Some(status), Some(body)) => KeyClaim::Answered { status, body },
        _ => KeyClaim::Running,
    })
}

/// Stores the answer to the request that claimed `key` of `token`.
pub async fn answer(
    c: &mut Conn,
    token: Uuid,
    key: &str,
    status: i32,
    body: String,
) -> Result<(), RepoError> {
    diesel::update(key_of(token, key))
        .set((
            idempotency_keys::status.eq(Some(status)),
            idempotency_keys::response.eq(Some(body)),
        ))
        .execute(c)
        .await?;
    Ok(())
}

/// Gives up the unanswered claim of `key` of `token`, so that a retry runs.
pub async fn release(c: &mut Conn, token: Uuid, key: &str) -> Result<(), RepoError> {
    diesel::delete(key_of(token, key).filter(idempotency_keys::status.is_null()))
        .execute(c)
        .await?;
    Ok(())
}

/// Deletes about [`PRUNE_BATCH`] of the keys claimed before `cutoff` (the
/// oldest); returns how many.
pub async fn prune_older_than(c: &mut Conn, cutoff: DateTime<Utc>) -> Result<usize, RepoError> {
    // The batch is bounded by time: the instant of the key just past it.
    let batch_end = idempotency_keys::table
        .order(idempotency_keys::created_at)
        .select(idempotency_keys::created_at)
        .offset(PRUNE_BATCH)
        .first::<DbTime>(c)
        .await
        .optional()?;
    // Inclusive, so that even a batch of equal instants makes progress.
    let deleted = match batch_end {
        Some(end) if end.0 < cutoff => {
            let batch = idempotency_keys::table.filter(idempotency_keys::created_at.le(end));
            diesel::delete(batch).execute(c).await?
        }
        _ => {
            let old =
                idempotency_keys::table.filter(idempotency_keys::created_at.lt(DbTime(cutoff)));
            diesel::delete(old).execute(c).await?
        }
    };
    Ok(deleted)
}

/// Up to [`PRUNE_BATCH`] tokens holding more than `keep` keys.
pub async fn tokens_over(c: &mut Conn, keep: i64) -> Result<Vec<Uuid>, RepoError> {
    let tokens = idempotency_keys::table
        .group_by(idempotency_keys::token_id)
        .having(diesel::dsl::count_star().gt(keep))
        .select(idempotency_keys::token_id)
        .limit(PRUNE_BATCH)
        .load::<DbId>(c)
        .await?;
    Ok(tokens.into_iter().map(|id| id.0).collect())
}

/// Deletes the keys of `token` beyond its newest `keep`; returns how many.
pub async fn prune_token_beyond(c: &mut Conn, token: Uuid, keep: i64) -> Result<usize, RepoError> {
    let of_token = || idempotency_keys::table.filter(idempotency_keys::token_id.eq(DbId(token)));
    let oldest_kept = of_token()
        .order(idempotency_keys::created_at.desc())
        .select(idempotency_keys::created_at)
        .offset(keep.max(1) - 1)
        .first::<DbTime>(c)
        .await
        .optional()?;
    let Some(oldest_kept) = oldest_kept else {
        return Ok(0);
    };
    let beyond = of_token().filter(idempotency_keys::created_at.lt(oldest_kept));
    Ok(diesel::delete(beyond).execute(c).await?)
}
