//! The nested records of users: each relation of many users in one
//! statement, oldest first. Compiled once per backend (see `repo/pg.rs`).

use std::collections::HashMap;

use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::{Backend, Conn};
use crate::db::schema::{
    chainalysis_checks, mfa_devices, oauth_accounts, sessions, verified_credentials, wallets,
};
use crate::db::types::DbId;
use crate::repo::records::decode_all;
use crate::repo::{Children, Relation, RepoError};

/// The statement of each nested list, before it is narrowed to its users:
/// the list's columns, each user's records oldest first. Their types are
/// spelled out so SQLite's synchronous read (`repo/sqlite.rs`) runs the
/// same statements.
pub mod lists {
    use diesel::dsl::{AsSelect, Order, Select};
    use diesel::{QueryDsl, SelectableHelper};

    use super::Backend;
    use crate::db::models::*;
    use crate::db::schema::{
        chainalysis_checks, mfa_devices, oauth_accounts, sessions, verified_credentials, wallets,
    };

    /// The rows `R` of `table`, ordered by user, creation and id.
    type Ordered<Table, User, Created, Id, R> =
        Select<Order<Table, (User, Created, Id)>, AsSelect<R, Backend>>;

    pub fn verified_credentials() -> Ordered<
        verified_credentials::table,
        verified_credentials::user_id,
        verified_credentials::created_at,
        verified_credentials::id,
        VerifiedCredentialRow,
    > {
        use verified_credentials::*;
        table
            .order((user_id, created_at, id))
            .select(VerifiedCredentialRow::as_select())
    }

    pub fn wallets(
    ) -> Ordered<wallets::table, wallets::user_id, wallets::created_at, wallets::id, WalletRow>
    {
        use wallets::*;
        table
            .order((user_id, created_at, id))
            .select(WalletRow::as_select())
    }

    pub fn sessions(
    ) -> Ordered<sessions::table, sessions::user_id, sessions::created_at, sessions::id, SessionRow>
    {
        use sessions::*;
        table
            .order((user_id, created_at, id))
            .select(SessionRow::as_select())
    }

    pub fn mfa_devices() -> Ordered<
        mfa_devices::table,
        mfa_devices::user_id,
        mfa_devices::created_at,
        mfa_devices::id,
        MfaDeviceRow,
    > {
        use mfa_devices::*;
        table
            .order((user_id, created_at, id))
            .select(MfaDeviceRow::as_select())
    }

    pub fn oauth_accounts() -> Ordered<
        oauth_accounts::table,
        oauth_accounts::user_id,
        oauth_accounts::created_at,
        oauth_accounts::id,
        OauthAccountRow,
    > {
        use oauth_accounts::*;
        table
            .order((user_id, created_at, id))
            .select(OauthAccountRow::as_select())
    }

    pub fn chainalysis_checks() -> Ordered<
        chainalysis_checks::table,
        chainalysis_checks::user_id,
        chainalysis_checks::created_at,
        chainalysis_checks::id,
        ChainalysisCheckRow,
    > {
        use chainalysis_checks::*;
        table
            .order((user_id, created_at, id))
            .select(ChainalysisCheckRow::as_select())
    }
}

/// `$query`, a select of records of users, for `$users` only, loaded on
/// `$c`: by `$user_id = ` for one user, `IN` (SQLite) or `= ANY`
/// (PostgreSQL) for more. The query of one user keeps one text, so SQLite
/// keeps it prepared; diesel prepares an `IN` list anew every time, since
/// its length varies.
macro_rules! of_users {
    ($c:expr, $users:expr, $user_id:path, $query:expr) => {
        match $users {
            [user] => $query.filter($user_id.eq(user)).load($c).await?,
            users => $query.filter($user_id.eq_any(users)).load($c).await?,
        }
    };
}

/// The rows of `relation` of each of `users`, added to their `Children`.
async fn load_relation(
    c: &mut Conn,
    relation: Relation,
    users: &[DbId],
    into: &mut HashMap<Uuid, Children>,
) -> Result<(), RepoError> {
    fn add<T>(
        into: &mut HashMap<Uuid, Children>,
        list: fn(&mut Children) -> &mut Vec<T>,
        records: Vec<T>,
        user: fn(&T) -> Uuid,
    ) {
        for record in records {
            list(into.entry(user(&record)).or_default()).push(record);
        }
    }
    match relation {
        Relation::VerifiedCredentials => {
            let rows = of_users!(
                c,
                users,
                verified_credentials::user_id,
                lists::verified_credentials()
            );
            add(
                into,
                |c| &mut c.verified_credentials,
                decode_all(rows)?,
                |r| r.user_id,
            );
        }
        Relation::Wallets => {
            let rows = of_users!(c, users, wallets::user_id, lists::wallets());
            add(into, |c| &mut c.wallets, decode_all(rows)?, |r| r.user_id);
        }
        Relation::Sessions => {
            let rows = of_users!(c, users, sessions::user_id, lists::sessions());
            add(into, |c| &mut c.sessions, decode_all(rows)?, |r| r.user_id);
        }
        Relation::MfaDevices => {
            let rows = of_users!(c, users, mfa_devices::user_id, lists::mfa_devices());
            add(
                into,
                |c| &mut c.mfa_devices,
                decode_all(rows)?,
                |r| r.user_id,
            );
        }
        Relation::OauthAccounts => {
            let rows = of_users!(c, users, oauth_accounts::user_id, lists::oauth_accounts());
            add(
                into,
                |c| &mut c.oauth_accounts,
                decode_all(rows)?,
                |r| r.user_id,
            );
        }
        Relation::ChainalysisChecks => {
            let rows = of_users!(
                c,
                users,
                chainalysis_checks::user_id,
                lists::chainalysis_checks()
            );
            add(
                into,
                |c| &mut c.chainalysis_checks,
                decode_all(rows)?,
                |r| r.user_id,
            );
        }
    }
    Ok(())
}

/// The nested lists `relations` of each of `users`, one statement per
/// relation; the other lists stay empty. Users without rows are absent.
pub async fn children_of_users(
    c: &mut Conn,
    relations: &[Relation],
    users: &[Uuid],
) -> Result<HashMap<Uuid, Children>, RepoError> {
    let ids: Vec<DbId> = users.iter().copied().map(DbId).collect();
    let mut children = HashMap::new();
    for relation in relations {
        load_relation(c, *relation, &ids, &mut children).await?;
    }
    Ok(children)
}

/// Every nested list of one user, read on `c` (inside whatever transaction
/// `c` is in).
pub async fn children_of_user(c: &mut Conn, user: DbId) -> Result<Children, RepoError> {
    let mut children = children_of_users(c, Relation::ALL, &[user.0]).await?;
    Ok(children.remove(&user.0).unwrap_or_default())
}
