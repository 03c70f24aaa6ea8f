//! The nested records of users, loaded for many users with one query per relation.

use std::collections::HashMap;

use uuid::Uuid;

use crate::db::models::*;
use crate::db::DbError;

use super::Repo;

/// Every nested list of one user.
#[derive(Debug, Clone, Default)]
pub struct Children {
    pub verified_credentials: Vec<VerifiedCredentialRow>,
    pub wallets: Vec<WalletRow>,
    pub sessions: Vec<SessionRow>,
    pub mfa_devices: Vec<MfaDeviceRow>,
    pub oauth_accounts: Vec<OauthAccountRow>,
    pub chainalysis_checks: Vec<ChainalysisCheckRow>,
}

/// Loads the rows of `$table` that belong to any of the users `$ids`
/// (a `Vec<DbId>`), oldest first; one statement.
macro_rules! rows_of_users {
    ($c:expr, $table:ident, $row:ty, $ids:expr) => {{
        use diesel::{ExpressionMethods as _, QueryDsl as _, SelectableHelper as _};
        use diesel_async::RunQueryDsl as _;
        use $crate::db::schema::$table;
        $table::table
            .filter($table::user_id.eq_any($ids))
            .order(($table::user_id, $table::created_at, $table::id))
            .select(<$row>::as_select())
            .load::<$row>($c)
            .await
    }};
}
pub(crate) use rows_of_users;

/// Loads every nested list of one user (`$id`, a `DbId`) on connection `$c`,
/// inside whatever transaction `$c` is in.
macro_rules! children_of_user {
    ($c:expr, $id:expr) => {{
        use $crate::db::models::*;
        let ids = vec![$id];
        Ok::<_, diesel::result::Error>($crate::repo::Children {
            verified_credentials: $crate::repo::children::rows_of_users!(
                $c,
                verified_credentials,
                VerifiedCredentialRow,
                ids.clone()
            )?,
            wallets: $crate::repo::children::rows_of_users!($c, wallets, WalletRow, ids.clone())?,
            sessions: $crate::repo::children::rows_of_users!(
                $c,
                sessions,
                SessionRow,
                ids.clone()
            )?,
            mfa_devices: $crate::repo::children::rows_of_users!(
                $c,
                mfa_devices,
                MfaDeviceRow,
                ids.clone()
            )?,
            oauth_accounts: $crate::repo::children::rows_of_users!(
                $c,
                oauth_accounts,
                OauthAccountRow,
                ids.clone()
            )?,
            chainalysis_checks: $crate::repo::children::rows_of_users!(
                $c,
                chainalysis_checks,
                ChainalysisCheckRow,
                ids
            )?,
        })
    }};
}
pub(crate) use children_of_user;

/// Generates `Repo::$method(user_ids)`: the rows of one relation for many
/// users at once, grouped by user (the DataLoader's batch query).
macro_rules! batch_loader {
    ($method:ident, $table:ident, $row:ty) => {
        impl Repo {
            #[doc = concat!("The `", stringify!($table), "` of each of `user_ids`, in one query.")]
            pub async fn $method(
                &self,
                user_ids: &[Uuid],
            ) -> Result<HashMap<Uuid, Vec<$row>>, DbError> {
                let ids: Vec<crate::db::types::DbId> =
                    user_ids.iter().copied().map(crate::db::types::DbId).collect();
                let mut conn = self.db.conn().await?;
                let rows = crate::with_conn!(&mut conn, c => rows_of_users!(c, $table, $row, ids.clone()))?;
                let mut grouped: HashMap<Uuid, Vec<$row>> = HashMap::new();
                for row in rows {
                    grouped.entry(row.user_id.0).or_default().push(row);
                }
                Ok(grouped)
            }
        }
    };
}

batch_loader!(
    verified_credentials_of,
    verified_credentials,
    VerifiedCredentialRow
);
batch_loader!(wallets_of, wallets, WalletRow);
batch_loader!(sessions_of, sessions, SessionRow);
batch_loader!(mfa_devices_of, mfa_devices, MfaDeviceRow);
batch_loader!(oauth_accounts_of, oauth_accounts, OauthAccountRow);
batch_loader!(
    chainalysis_checks_of,
    chainalysis_checks,
    ChainalysisCheckRow
);
