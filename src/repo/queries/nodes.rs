//! Any record by id (Relay's `node`), and environments by id. Compiled once
//! per backend (see `repo/pg.rs`).

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::Conn;
use crate::db::models::*;
use crate::db::schema::{
    chainalysis_checks, environments, mfa_devices, oauth_accounts, sessions, users,
    verified_credentials, wallets,
};
use crate::db::types::DbId;
use crate::repo::records::decode_all;
use crate::repo::{Environment, Node, RepoError, Scope};

/// The record with this id, of any type, in the scope's environment.
///
/// Ids are random UUIDs, unique across tables, so the first table that has
/// the id is the record's type; users, the common case, come first. A
/// nested record is in the environment of its user.
pub async fn node(c: &mut Conn, scope: Scope, id: Uuid) -> Result<Option<Node>, RepoError> {
    let (id, env) = (DbId(id), DbId(scope.environment_id));
    let in_env = users::environment_id.eq(env);

    let user = users::table
        .filter(users::id.eq(id))
        .filter(in_env)
        .select(UserRow::as_select())
        .first(c)
        .await
        .optional()?;
    if let Some(user) = user {
        return Ok(Some(Node::User(Box::new(user.try_into()?))));
    }
    let credential = verified_credentials::table
        .inner_join(users::table)
        .filter(verified_credentials::id.eq(id))
        .filter(in_env)
        .select(VerifiedCredentialRow::as_select())
        .first(c)
        .await
        .optional()?;
    if let Some(row) = credential {
        return Ok(Some(Node::VerifiedCredential(row.try_into()?)));
    }
    let wallet = wallets::table
        .inner_join(users::table)
        .filter(wallets::id.eq(id))
        .filter(in_env)
        .select(WalletRow::as_select())
        .first(c)
        .await
        .optional()?;
    if let Some(row) = wallet {
        return Ok(Some(Node::Wallet(row.try_into()?)));
    }
    let session = sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(id))
        .filter(in_env)
        .select(SessionRow::as_select())
        .first(c)
        .await
        .optional()?;
    if let Some(row) = session {
        return Ok(Some(Node::Session(row.try_into()?)));
    }
    let device = mfa_devices::table
        .inner_join(users::table)
        .filter(mfa_devices::id.eq(id))
        .filter(in_env)
        .select(MfaDeviceRow::as_select())
        .first(c)
        .await
        .optional()?;
    if let Some(row) = device {
        return Ok(Some(Node::MfaDevice(row.try_into()?)));
    }
    let account = oauth_accounts::table
        .inner_join(users::table)
        .filter(oauth_accounts::id.eq(id))
        .filter(in_env)
        .select(OauthAccountRow::as_select())
        .first(c)
        .await
        .optional()?;
    if let Some(row) = account {
        return Ok(Some(Node::OauthAccount(row.try_into()?)));
    }
    let check = chainalysis_checks::table
        .inner_join(users::table)
        .filter(chainalysis_checks::id.eq(id))
        .filter(in_env)
        .select(ChainalysisCheckRow::as_select())
        .first(c)
        .await
        .optional()?;
    match check {
        Some(row) => Ok(Some(Node::ChainalysisCheck(row.try_into()?))),
        None => Ok(None),
    }
}

/// The environments with these ids, in one query.
pub async fn environments(c: &mut Conn, ids: &[Uuid]) -> Result<Vec<Environment>, RepoError> {
    let ids: Vec<DbId> = ids.iter().copied().map(DbId).collect();
    let rows = environments::table
        .filter(environments::id.eq_any(ids))
        .select(EnvironmentRow::as_select())
        .load(c)
        .await?;
    decode_all(rows)
}

/// Whether environment `id` exists.
pub async fn environment_exists(c: &mut Conn, id: Uuid) -> Result<bool, RepoError> {
    let environment = environments::table.filter(environments::id.eq(DbId(id)));
    Ok(diesel::select(diesel::dsl::exists(environment))
        .get_result(c)
        .await?)
}

/// Adds an environment; with `if_missing`, an existing one of the same id
/// is kept as it is.
pub async fn insert_environment(
    c: &mut Conn,
    row: EnvironmentRow,
    if_missing: bool,
) -> Result<(), RepoError> {
    let insert = diesel::insert_into(environments::table).values(&row);
    if if_missing {
        insert.on_conflict_do_nothing().execute(c).await?;
    } else {
        insert.execute(c).await?;
    }
    Ok(())
}
