//! DataLoader for what users' resolvers fetch beyond the user row: their
//! nested lists and their environments, one batched query per relation per
//! request. A loader is created per request (see `http`), so no request sees
//! another's cached rows.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use async_graphql::{Context, Result};
use uuid::Uuid;

use crate::repo::{Children, Environment, Relation, Repo, RepoError, User};

use super::errors::repo_failure;
use super::types::selected_relations;

/// Loads the nested lists and the environments of users.
pub struct UserRecordsLoader {
    repo: Repo,
}

/// The loader of one request; it caches what it loaded for that request only.
pub type RequestLoader = DataLoader<UserRecordsLoader, HashMapCache>;

/// A loader for one request.
pub fn request_loader(repo: &Repo) -> RequestLoader {
    DataLoader::with_cache(
        UserRecordsLoader { repo: repo.clone() },
        tokio::spawn,
        HashMapCache::default(),
    )
}

/// One nested list of one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NestedOf {
    pub relation: Relation,
    pub user: Uuid,
}

impl Loader<NestedOf> for UserRecordsLoader {
    /// The user's lists that the key's batch loaded: the key's relation,
    /// and any other asked for in the same batch.
    type Value = Arc<Children>;
    type Error = Arc<RepoError>;

    async fn load(
        &self,
        keys: &[NestedOf],
    ) -> Result<HashMap<NestedOf, Arc<Children>>, Self::Error> {
        let mut relations: Vec<Relation> = keys.iter().map(|key| key.relation).collect();
        relations.sort();
        relations.dedup();
        let mut users: Vec<Uuid> = keys.iter().map(|key| key.user).collect();
        users.sort_unstable();
        users.dedup();
        let children = self
            .repo
            .children(&relations, &users)
            .await
            .map_err(Arc::new)?;
        let children: HashMap<Uuid, Arc<Children>> = children
            .into_iter()
            .map(|(user, children)| (user, Arc::new(children)))
            .collect();
        let none = Arc::new(Children::default());
        Ok(keys
            .iter()
            .map(|key| (*key, children.get(&key.user).unwrap_or(&none).clone()))
            .collect())
    }
}

/// The environment with this id (for `User.missingFields`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnvironmentOf(pub Uuid);

impl Loader<EnvironmentOf> for UserRecordsLoader {
    type Value = Environment;
    type Error = Arc<RepoError>;

    async fn load(
        &self,
        keys: &[EnvironmentOf],
    ) -> Result<HashMap<EnvironmentOf, Environment>, Self::Error> {
        let ids: Vec<Uuid> = keys.iter().map(|key| key.0).collect();
        let environments = self.repo.environments(&ids).await.map_err(Arc::new)?;
        Ok(environments
            .into_iter()
            .map(|environment| (EnvironmentOf(environment.id), environment))
            .collect())
    }
}

/// The GraphQL field of `User` that selects each nested list.
pub const NESTED_FIELDS: [(&str, Relation); 6] = [
    ("verifiedCredentials", Relation::VerifiedCredentials),
    ("wallets", Relation::Wallets),
    ("sessions", Relation::Sessions),
    ("mfaDevices", Relation::MfaDevices),
    ("oauthAccounts", Relation::OauthAccounts),
    ("chainalysisChecks", Relation::ChainalysisChecks),
];

/// Loads the nested lists and environments a page of users selects, in one
/// batch, before the users' own resolvers ask for them (and find them
/// cached).
///
/// Left to those resolvers alone, a page's keys reach the loader one by one
/// while its batch timer already runs on another thread; on a slow poll the
/// batch splits and the statement count grows with the page. Here every key
/// arrives in one call.
pub async fn prime_user_page(ctx: &Context<'_>, users: &[User]) -> Result<()> {
    let selection = ctx.look_ahead();
    let node = [
        selection.field("edges").field("node"),
        selection.field("nodes"),
    ];
    let mut relations: Vec<Relation> = node.iter().flat_map(|n| selected_relations(n)).collect();
    relations.sort();
    relations.dedup();
    let loader = ctx.data::<RequestLoader>()?;
    let keys: Vec<NestedOf> = relations
        .iter()
        .flat_map(|relation| {
            users.iter().map(|user| NestedOf {
                relation: *relation,
                user: user.id,
            })
        })
        .collect();
    let mut environments: Vec<EnvironmentOf> = users
        .iter()
        .map(|user| EnvironmentOf(user.environment_id))
        .collect();
    environments.dedup();
    if !node.iter().any(|n| n.field("missingFields").exists()) {
        environments.clear();
    }
    futures_util::try_join!(loader.load_many(keys), loader.load_many(environments))
        .map_err(repo_failure)?;
    Ok(())
}
