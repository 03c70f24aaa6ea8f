//! API tokens: random, shown once, stored as a hash, scoped to one environment.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Repo, Scope};
use crate::db::models::ApiTokenRow;
use crate::db::schema::{api_tokens, environments};
use crate::db::types::{DbId, DbTime};
use crate::db::DbError;
use crate::domain::truncate_to_micros;
use crate::with_conn;

/// What every token starts with, so a leaked one is easy to recognise.
const TOKEN_PREFIX: &str = "ugt_";
/// Random bytes per token (256 bits).
const TOKEN_BYTES: usize = 32;

/// A token just created: the only time its text is known.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: Uuid,
    pub token: String,
}

/// Why a token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no environment with id {0}")]
    UnknownEnvironment(Uuid),
    #[error("the system's random source failed: {0}")]
    Random(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The stored form of a token. The token carries 256 random bits, so a
/// plain SHA-256 is enough: there is nothing to brute-force.
fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl Repo {
    /// Creates a token for an environment; returns it, to be shown once.
    pub async fn create_token(
        &self,
        environment: Uuid,
        name: &str,
    ) -> Result<NewToken, TokenError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
        let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let row = ApiTokenRow {
            id: DbId(Uuid::new_v4()),
            environment_id: DbId(environment),
            name: name.to_owned(),
            token_hash: token_hash(&token),
            created_at: DbTime(truncate_to_micros(self.clock.now())),
            revoked_at: None,
        };
        let mut conn = self.db.conn().await?;
        let exists = with_conn!(&mut conn, c => {
            diesel::select(diesel::dsl::exists(
                environments::table.filter(environments::id.eq(DbId(environment))),
            ))
            .get_result::<bool>(c)
            .await
        })
        .map_err(DbError::from)?;
        if !exists {
            return Err(TokenError::UnknownEnvironment(environment));
        }
        with_conn!(&mut conn, c => {
            diesel::insert_into(api_tokens::table).values(&row).execute(c).await
        })
        .map_err(DbError::from)?;
        Ok(NewToken {
            id: row.id.0,
            token,
        })
    }

    /// Revokes a token, named by its text or its id; false if there was no
    /// such unrevoked token.
    pub async fn revoke_token(&self, token_or_id: &str) -> Result<bool, DbError> {
        let now = DbTime(truncate_to_micros(self.clock.now()));
        let mut conn = self.db.conn().await?;
        let revoked = match Uuid::parse_str(token_or_id) {
            Ok(id) => with_conn!(&mut conn, c => {
                diesel::update(api_tokens::table.filter(api_tokens::id.eq(DbId(id))))
                    .filter(api_tokens::revoked_at.is_null())
                    .set(api_tokens::revoked_at.eq(Some(now)))
                    .execute(c)
                    .await
            })?,
            Err(_) => {
                let hash = token_hash(token_or_id);
                with_conn!(&mut conn, c => {
                    diesel::update(api_tokens::table.filter(api_tokens::token_hash.eq(&hash)))
                        .filter(api_tokens::revoked_at.is_null())
                        .set(api_tokens::revoked_at.eq(Some(now)))
                        .execute(c)
                        .await
                })?
            }
        };
        Ok(revoked > 0)
    }

    /// The scope a bearer token grants, or `None` for an unknown or revoked token.
    pub async fn scope_for_token(&self, token: &str) -> Result<Option<Scope>, DbError> {
        let hash = token_hash(token);
        let mut conn = self.db.conn().await?;
        let environment = with_conn!(&mut conn, c => {
            api_tokens::table
                .filter(api_tokens::token_hash.eq(&hash))
                .filter(api_tokens::revoked_at.is_null())
                .select(api_tokens::environment_id)
                .first::<DbId>(c)
                .await
                .optional()
        })?;
        Ok(environment.map(|id| Scope {
            environment_id: id.0,
        }))
    }

    /// Revokes every unrevoked token of `environment` named `name`.
    pub async fn revoke_tokens_named(
        &self,
        environment: Uuid,
        name: &str,
    ) -> Result<usize, DbError> {
        let now = DbTime(truncate_to_micros(self.clock.now()));
        let mut conn = self.db.conn().await?;
        let revoked = with_conn!(&mut conn, c => {
            diesel::update(
                api_tokens::table
                    .filter(api_tokens::environment_id.eq(DbId(environment)))
                    .filter(api_tokens::name.eq(name))
                    .filter(api_tokens::revoked_at.is_null()),
            )
            .set(api_tokens::revoked_at.eq(Some(now)))
            .execute(c)
            .await
        })?;
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
