//! DataLoader for the nested lists and environments of users: one batched query per relation
//! per request. A loader is created per request (see `http`), so no request
//! sees another's cached rows.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use async_graphql::{Context, Result};
use uuid::Uuid;

use crate::db::models::*;
use crate::db::DbError;
use crate::repo::Repo;

use super::errors::internal;

/// Loads nested records of users by user id.
pub struct ChildLoader {
    repo: Repo,
}

/// The loader of one request; it caches what it loaded for that request only.
pub type RequestLoader = DataLoader<ChildLoader, HashMapCache>;

/// A loader for one request.
pub fn request_loader(repo: &Repo) -> RequestLoader {
    DataLoader::with_cache(
        ChildLoader { repo: repo.clone() },
        tokio::spawn,
        HashMapCache::default(),
    )
}

/// Loads the nested lists a page of users selects, one batch per relation,
/// before the users' own resolvers ask for them (and find them cached).
///
/// Left to those resolvers alone, a page's keys reach the loader one by one
/// while its batch timer already runs on another thread; on a slow poll the
/// batch splits and the statement count grows with the page. Here each
/// relation's keys arrive in one call.
pub async fn prime_user_page(ctx: &Context<'_>, users: &[UserRow]) -> Result<()> {
    let selection = ctx.look_ahead();
    let selected = |field: &str| {
        selection.field("edges").field("node").field(field).exists()
            || selection.field("nodes").field(field).exists()
    };
    let loader = ctx.data::<RequestLoader>()?;
    let ids: Vec<Uuid> = users.iter().map(|user| user.id.0).collect();
    let mut environments: Vec<Uuid> = users.iter().map(|user| user.environment_id.0).collect();
    environments.dedup();

    macro_rules! prime {
        ($field:literal, $key:ident, $ids:expr) => {
            async {
                if selected($field) {
                    loader
                        .load_many($ids.iter().copied().map($key))
                        .await
                        .map_err(internal)?;
                }
                Ok::<(), async_graphql::Error>(())
            }
        };
    }
    futures_util::try_join!(
        prime!("verifiedCredentials", VerifiedCredentialsOf, ids),
        prime!("wallets", WalletsOf, ids),
        prime!("sessions", SessionsOf, ids),
        prime!("mfaDevices", MfaDevicesOf, ids),
        prime!("oauthAccounts", OauthAccountsOf, ids),
        prime!("chainalysisChecks", ChainalysisChecksOf, ids),
        prime!("missingFields", EnvironmentOf, environments),
    )?;
    Ok(())
}

macro_rules! child_key {
    ($(#[$doc:meta])* $key:ident => $method:ident, $row:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $key(pub Uuid);

        impl Loader<$key> for ChildLoader {
            type Value = Vec<$row>;
            type Error = Arc<DbError>;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Vec<$row>>, Self::Error> {
                let ids: Vec<Uuid> = keys.iter().map(|key| key.0).collect();
                let mut grouped = self.repo.$method(&ids).await.map_err(Arc::new)?;
                Ok(keys
                    .iter()
                    .map(|key| (*key, grouped.remove(&key.0).unwrap_or_default()))
                    .collect())
            }
        }
    };
}

child_key!(
    /// The verified credentials of a user.
    VerifiedCredentialsOf => verified_credentials_of, VerifiedCredentialRow
);
child_key!(
    /// The wallets of a user.
    WalletsOf => wallets_of, WalletRow
);
child_key!(
    /// The sessions of a user.
    SessionsOf => sessions_of, SessionRow
);
child_key!(
    /// The MFA devices of a user.
    MfaDevicesOf => mfa_devices_of, MfaDeviceRow
);
child_key!(
    /// The OAuth accounts of a user.
    OauthAccountsOf => oauth_accounts_of, OauthAccountRow
);
child_key!(
    /// The chainalysis checks of a user.
    ChainalysisChecksOf => chainalysis_checks_of, ChainalysisCheckRow
);

/// The environment with this id (for `User.missingFields`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnvironmentOf(pub Uuid);

impl Loader<EnvironmentOf> for ChildLoader {
    type Value = EnvironmentRow;
    type Error = Arc<DbError>;

    async fn load(
        &self,
        keys: &[EnvironmentOf],
    ) -> Result<HashMap<EnvironmentOf, EnvironmentRow>, Self::Error> {
        let ids: Vec<Uuid> = keys.iter().map(|key| key.0).collect();
        let rows = self.repo.environments(&ids).await.map_err(Arc::new)?;
        Ok(rows
            .into_iter()
            .map(|(id, row)| (EnvironmentOf(id), row))
            .collect())
    }
}
