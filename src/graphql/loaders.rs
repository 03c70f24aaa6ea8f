//! DataLoader for the nested lists and environments of users: one batched query per relation
//! per request. A loader is created per request (see `http`), so no request
//! sees another's cached rows.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use uuid::Uuid;

use crate::db::models::*;
use crate::db::DbError;
use crate::repo::Repo;

/// Loads nested records of users by user id.
pub struct ChildLoader {
    repo: Repo,
}

/// A loader for one request.
pub fn request_loader(repo: &Repo) -> DataLoader<ChildLoader> {
    DataLoader::new(ChildLoader { repo: repo.clone() }, tokio::spawn)
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
