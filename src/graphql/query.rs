//! Query root.

use async_graphql::connection::{Connection, CursorType, Edge};
use async_graphql::{Context, Object, Result, ID};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;

use super::errors::{bad_input, repo_failure};
use super::history::{history_page, HistoryCursor, UserHistoryEntry};
use super::inputs::UserFilter;
use super::loaders::prime_user_page;
use super::types::{selected_relations, Node, User};
use crate::domain::format_instant;
use crate::repo::{Repo, Scope, UserPosition};

/// Most users one page may hold.
pub const MAX_PAGE_SIZE: i32 = 100;
/// Page size when `first` is not given.
pub const DEFAULT_PAGE_SIZE: i32 = 20;

/// Parses a client-supplied id; an id that is not a UUID names no record.
pub fn parse_id(id: &ID) -> Option<Uuid> {
    Uuid::parse_str(id.as_str()).ok()
}

/// An opaque cursor: a user's position in the list, base64url-encoded.
pub struct UserCursor(UserPosition);

impl CursorType for UserCursor {
    type Error = &'static str;

    fn decode_cursor(text: &str) -> Result<Self, Self::Error> {
        const INVALID: &str = "invalid cursor";
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| INVALID)?;
        let text = String::from_utf8(bytes).map_err(|_| INVALID)?;
        let (created_at, id) = text.split_once('|').ok_or(INVALID)?;
        Ok(UserCursor(UserPosition {
            created_at: created_at.parse().map_err(|_| INVALID)?,
            id: id.parse().map_err(|_| INVALID)?,
        }))
    }

    fn encode_cursor(&self) -> String {
        let position = &self.0;
        URL_SAFE_NO_PAD.encode(format!(
            "{}|{}",
            format_instant(&position.created_at),
            position.id
        ))
    }
}

/// Fields of the users connection beyond edges and page info.
pub struct UsersTotal {
    scope: Scope,
    filter: crate::repo::UserFilter,
}

#[Object]
impl UsersTotal {
    /// How many users the filter selects, across all pages.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let repo = ctx.data::<Repo>()?;
        repo.count_users(self.scope, &self.filter)
            .await
            .map_err(repo_failure)
    }
}

/// The cost of a page: its size times the cost of one node, plus the
/// connection's own fields. A cost may read `Int` arguments only: the
/// validations `parse_cache.rs` remembers assume no `ID`, `String` or
/// `Boolean` argument changes one.
pub(super) fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let size = first.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
    usize::try_from(size).unwrap_or(1) * child_complexity + 1
}

/// A page's `first` (0 to 100, 20 when left out) and its `after` cursor,
/// decoded; a clear error for either out of bounds.
pub(super) fn page_arguments<C: CursorType<Error = &'static str>>(
    first: Option<i32>,
    after: Option<String>,
) -> Result<(i32, Option<C>)> {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(0..=MAX_PAGE_SIZE).contains(&first) {
        return Err(bad_input(format!(
            "first must be between 0 and {MAX_PAGE_SIZE}"
        )));
    }
    let after = after
        .map(|cursor| C::decode_cursor(&cursor).map_err(bad_input))
        .transpose()?;
    Ok((first, after))
}

/// The read operations.
pub struct QueryRoot;

/// The read operations: users of your environment, one or a page at a time.
#[Object(name = "Query")]
impl QueryRoot {
    /// The user with this id, or null when there is none in your environment.
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id; null when no user of your environment has it.")] id: ID,
    ) -> Result<Option<User>> {
        let Some(id) = parse_id(&id) else {
            super::outcome::record(ctx, super::outcome::Outcome::NotFound);
            return Ok(None);
        };
        let repo = ctx.data::<Repo>()?;
        let scope = ctx.data::<Scope>()?;
        // The user and the nested lists the query asks for, in one go.
        let relations = selected_relations(&ctx.look_ahead());
        let user = repo
            .user_with_children(*scope, id, &relations)
            .await
            .map_err(repo_failure)?;
        if user.is_none() {
            super::outcome::record(ctx, super::outcome::Outcome::NotFound);
        }
        Ok(user.map(User::from_snapshot))
    }

    /// The users of your environment, oldest first (then by id), a page at a
    /// time: pass a page's `pageInfo.endCursor` as `after` for the next.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 0 to 100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page: start after it.")] after: Option<String>,
        #[graphql(desc = "Only the users that meet every given condition.")] filter: Option<
            UserFilter,
        >,
    ) -> Result<Connection<UserCursor, User, UsersTotal>> {
        let (first, after) = page_arguments::<UserCursor>(first, after)?;
        let repo = ctx.data::<Repo>()?;
        let scope = *ctx.data::<Scope>()?;
        let filter: crate::repo::UserFilter = filter.map(Into::into).unwrap_or_default();
        let limit = i64::from(first) + 1;
        let mut rows = repo
            .users(scope, &filter, after.as_ref().map(|c| c.0), limit)
            .await
            .map_err(repo_failure)?;
        let has_next_page = rows.len() > first as usize;
        rows.truncate(first as usize);
        prime_user_page(ctx, &rows).await?;
        let mut connection = Connection::with_additional_fields(
            after.is_some(),
            has_next_page,
            UsersTotal { scope, filter },
        );
        connection.edges = rows
            .into_iter()
            .map(|user| Edge::new(UserCursor(UserPosition::of(&user)), User::new(user)))
            .collect();
        Ok(connection)
    }

    /// The writes of user `id` of your environment, newest first, a page at
    /// a time; also after the user was deleted (until retention prunes
    /// them). Empty for an id of no user of your environment.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn user_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] id: ID,
        #[graphql(desc = "Page size: 0 to 100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page: start after it.")] after: Option<String>,
    ) -> Result<Connection<HistoryCursor, UserHistoryEntry>> {
        // The nil UUID is never assigned: an id that is not a UUID has none.
        let user = parse_id(&id).unwrap_or(Uuid::nil());
        history_page(ctx, user, first, after).await
    }

    /// Any object of your environment by its id (Relay object identification).
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of a user or of one of its nested records.")] id: ID,
    ) -> Result<Option<Node>> {
        let Some(id) = parse_id(&id) else {
            return Ok(None);
        };
        let repo = ctx.data::<Repo>()?;
        let scope = ctx.data::<Scope>()?;
        let node = repo.node(*scope, id).await.map_err(repo_failure)?;
        Ok(node.map(Node::from))
    }
}
