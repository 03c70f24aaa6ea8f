//! API tokens, stored by hash. Compiled once per backend (see `repo/pg.rs`).

use super::Conn;
use crate::db::models::ApiTokenRow;
use crate::db::schema::api_tokens;
use crate::db::types::{DbId, DbTime};
use crate::repo::{RepoError, Scope, TokenRef};
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;

pub async fn insert_token(c: &mut Conn, row: ApiTokenRow) -> Result<(), RepoError> {
    diesel::insert_into(api_tokens::table)
        .values(&row)
        .execute(c)
        .await?;
    Ok(())
}

/// Revokes the unrevoked tokens `which` names; returns how many.
pub async fn revoke_tokens(
    c: &mut Conn,
    which: TokenRef<'_>,
    now: DateTime<Utc>,
) -> Result<usize, RepoError> {
    let unrevoked = api_tokens::table.filter(api_tokens::revoked_at.is_null());
    let revoke = api_tokens::revoked_at.eq(Some(DbTime(now)));
    let revoked = match which {
        TokenRef::Id(id) => {
            let token = unrevoked.filter(api_tokens::id.eq(DbId(id)));
            diesel::update(token).set(revoke).execute(c).await?
        }
        TokenRef::Hash(hash) => {
            let token = unrevoked.filter(api_tokens::token_hash.eq(hash));
            diesel::update(token).set(revoke).execute(c).await?
        }
        TokenRef::Named { environment, name } => {
            let tokens = unrevoked
                .filter(api_tokens::environment_id.eq(DbId(environment)))
                .filter(api_tokens::name.eq(name));
            diesel::update(tokens).set(revoke).execute(c).await?
        }
    };
    Ok(revoked)
}

/// The scope the unrevoked token with this hash grants.
pub async fn scope_of_token(c: &mut Conn, hash: &str) -> Result<Option<Scope>, RepoError> {
    let token = api_tokens::table
        .filter(api_tokens::token_hash.eq(hash))
        .filter(api_tokens::revoked_at.is_null())
        .select((api_tokens::id, api_tokens::environment_id))
        .first::<(DbId, DbId)>(c)
        .await
        .optional()?;
    Ok(token.map(|(id, environment)| Scope {
        environment_id: environment.0,
        token_id: Some(id.0),
    }))
}
