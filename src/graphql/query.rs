//! Query root.

use async_graphql::{Context, Object, Result, ID};
use uuid::Uuid;

use super::errors::internal;
use super::types::User;
use crate::repo::{Repo, Scope};

/// Parses a client-supplied id; an id that is not a UUID names no record.
pub fn parse_id(id: &ID) -> Option<Uuid> {
    Uuid::parse_str(id.as_str()).ok()
}

/// The read operations.
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The user with this id, or null when there is none in your environment.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let Some(id) = parse_id(&id) else {
            return Ok(None);
        };
        let repo = ctx.data::<Repo>()?;
        let scope = ctx.data::<Scope>()?;
        let user = repo.user(*scope, id).await.map_err(internal)?;
        Ok(user.map(User::from_row))
    }
}
