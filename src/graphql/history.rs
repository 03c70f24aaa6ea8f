//! `User.history` and `Query.userHistory`: the change history of a user, a
//! page at a time, newest first.

use async_graphql::connection::{Connection, CursorType, Edge};
use async_graphql::{Context, Result, SimpleObject, ID};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::enums::UserOperation;
use super::errors::repo_failure;
use super::query::page_arguments;
use super::scalars::Timestamp;
use crate::domain::format_instant;
use crate::repo::{self, Repo, Scope};

/// An opaque cursor: the version of a history entry, base64url-encoded.
pub struct HistoryCursor(DateTime<Utc>);

impl CursorType for HistoryCursor {
    type Error = &'static str;

    fn decode_cursor(text: &str) -> Result<Self, Self::Error> {
        const INVALID: &str = "invalid cursor";
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| INVALID)?;
        let text = String::from_utf8(bytes).map_err(|_| INVALID)?;
        Ok(HistoryCursor(text.parse().map_err(|_| INVALID)?))
    }

    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(format_instant(&self.0))
    }
}

/// The API token a write was made with.
#[derive(SimpleObject)]
pub struct ApiTokenRef {
    /// The token's id (its text is never shown again).
    pub id: ID,
    /// The name it was created with.
    pub name: String,
}

/// One write of a user: what it changed and who made it. Values are not
/// kept, only the names of the fields.
#[derive(SimpleObject)]
pub struct UserHistoryEntry {
    /// The user's `updatedAt` after the write (for a deletion, the instant
    /// it was deleted).
    pub version: Timestamp,
    /// The user's `updatedAt` before the write; null for the creation.
    pub previous_version: Option<Timestamp>,
    /// The mutation that wrote.
    pub operation: UserOperation,
    /// The fields and nested lists of `User` the write changed, by name,
    /// sorted: fields set to the value they already had are not listed.
    pub changed_fields: Vec<String>,
    /// The API token the write was made with; null for the command line.
    pub changed_by: Option<ApiTokenRef>,
    /// True when applied by `onConflict: MERGE_IF_DISJOINT` to a later
    /// version than the one its client expected.
    pub merged: bool,
    /// When the write was recorded.
    pub recorded_at: Timestamp,
}

impl From<repo::HistoryEntry> for UserHistoryEntry {
    fn from(entry: repo::HistoryEntry) -> Self {
        UserHistoryEntry {
            version: Timestamp(entry.version),
            previous_version: entry.previous_version.map(Timestamp),
            operation: entry.operation.into(),
            changed_fields: entry.changed_fields,
            changed_by: entry.token.map(|(id, name)| ApiTokenRef {
                id: ID(id.to_string()),
                name,
            }),
            merged: entry.merged,
            recorded_at: Timestamp(entry.recorded_at),
        }
    }
}

/// A page of the history of user `user`: `first` entries (0 to 100, 20 by
/// default) older than the cursor `after`.
pub async fn history_page(
    ctx: &Context<'_>,
    user: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<HistoryCursor, UserHistoryEntry>> {
    let (first, after) = page_arguments::<HistoryCursor>(first, after)?;
    let repo = ctx.data::<Repo>()?;
    let scope = ctx.data::<Scope>()?;
    let mut entries = repo
        .history(
            *scope,
            user,
            after.as_ref().map(|c| c.0),
            i64::from(first) + 1,
        )
        .await
        .map_err(repo_failure)?;
    let has_next_page = entries.len() > first as usize;
    entries.truncate(first as usize);
    let mut connection = Connection::new(after.is_some(), has_next_page);
    connection.edges = entries
        .into_iter()
        .map(|entry| Edge::new(HistoryCursor(entry.version), entry.into()))
        .collect();
    Ok(connection)
}
