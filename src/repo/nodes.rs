//! Any record by id (Relay's `node`), and environments by id.

use std::collections::HashMap;

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::{Repo, Scope};
use crate::db::models::*;
use crate::db::schema::{
    chainalysis_checks, environments, mfa_devices, oauth_accounts, sessions, users,
    verified_credentials, wallets,
};
use crate::db::types::DbId;
use crate::db::DbError;
use crate::with_conn;

/// A record of any type that has an id.
#[derive(Debug, Clone)]
pub enum NodeRow {
    User(Box<UserRow>),
    VerifiedCredential(VerifiedCredentialRow),
    Wallet(WalletRow),
    Session(SessionRow),
    MfaDevice(MfaDeviceRow),
    OauthAccount(OauthAccountRow),
    ChainalysisCheck(ChainalysisCheckRow),
}

/// Returns from the enclosing function with the nested record of `$table`
/// whose id is `$id` and whose user is in environment `$env`, if any.
macro_rules! return_child_if_found {
    ($c:expr, $table:ident, $row:ident, $variant:ident, $id:expr, $env:expr) => {
        let found = $table::table
            .inner_join(users::table)
            .filter($table::id.eq($id))
            .filter(users::environment_id.eq($env))
            .select($row::as_select())
            .first::<$row>($c)
            .await
            .optional()?;
        if let Some(row) = found {
            return Ok(Some(NodeRow::$variant(row)));
        }
    };
}

impl Repo {
    /// The record with this id, of any type, in the scope's environment.
    ///
    /// Ids are random UUIDs, unique across tables, so the first table that
    /// has the id is the record's type; users, the common case, come first.
    pub async fn node(&self, scope: Scope, id: Uuid) -> Result<Option<NodeRow>, DbError> {
        let mut conn = self.db.conn().await?;
        let (id, env) = (DbId(id), DbId(scope.environment_id));
        with_conn!(&mut conn, c => {
            let user = users::table
                .filter(users::id.eq(id))
                .filter(users::environment_id.eq(env))
                .select(UserRow::as_select())
                .first::<UserRow>(c)
                .await
                .optional()?;
            if let Some(user) = user {
                return Ok(Some(NodeRow::User(Box::new(user))));
            }
            return_child_if_found!(c, verified_credentials, VerifiedCredentialRow, VerifiedCredential, id, env);
            return_child_if_found!(c, wallets, WalletRow, Wallet, id, env);
            return_child_if_found!(c, sessions, SessionRow, Session, id, env);
            return_child_if_found!(c, mfa_devices, MfaDeviceRow, MfaDevice, id, env);
            return_child_if_found!(c, oauth_accounts, OauthAccountRow, OauthAccount, id, env);
            return_child_if_found!(c, chainalysis_checks, ChainalysisCheckRow, ChainalysisCheck, id, env);
            Ok(None)
        })
    }

    /// The environments with these ids, in one query.
    pub async fn environments(
        &self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, EnvironmentRow>, DbError> {
        let ids: Vec<DbId> = ids.iter().copied().map(DbId).collect();
        let mut conn = self.db.conn().await?;
        let rows = with_conn!(&mut conn, c => {
            environments::table
                .filter(environments::id.eq_any(ids))
                .select(EnvironmentRow::as_select())
                .load::<EnvironmentRow>(c)
                .await
        })?;
        Ok(rows.into_iter().map(|row| (row.id.0, row)).collect())
    }
}
