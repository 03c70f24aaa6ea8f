//! Subscription root: users' changes as they commit, from the repository's
//! change feed (`repo/feed.rs`), over the WebSocket of `http/ws.rs`.
//!
//! The guarantee, per user, per stream: each event holds the user as it is
//! when the event is sent, read after the change it announces committed;
//! versions only rise (an event older than one already sent is skipped);
//! the last committed state is always delivered. A burst of changes may
//! arrive as its latest state only. When the feed reports that changes may
//! have been lost, `userUpdated` reads the user again and sends it if it
//! moved, and `userEvents` sends `EventsMissed` (a client refetches).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, Enum, InputObject, Result, SimpleObject, Subscription, Union, ID};
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use super::mutation::{user_not_found, UserNotFound};
use super::query::parse_id;
use super::scalars::Timestamp;
use super::types::{selected_relations, User};
use crate::repo::feed::{ChangeKind, FeedEvent, FeedReceiver, UserChange};
use crate::repo::{Relation, Repo, RepoError, Scope, UserSnapshot};

/// The wait before reading a user again after the read failed (the
/// database is down): the changes meanwhile wait in the feed.
const RETRY: Duration = Duration::from_millis(500);

/// Users a `userEvents` stream remembers the last sent version of (to skip
/// repeats); past that it forgets them all, which may repeat a state but
/// never send an older one.
const REMEMBERED_USERS: usize = 10_000;

/// What changed.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UserEventKind {
    /// The user was created.
    Created,
    /// The user's fields or nested records changed.
    Updated,
    /// The user was deleted.
    Deleted,
}

impl From<ChangeKind> for UserEventKind {
    fn from(kind: ChangeKind) -> Self {
        match kind {
            ChangeKind::Created => UserEventKind::Created,
            ChangeKind::Updated => UserEventKind::Updated,
            ChangeKind::Deleted => UserEventKind::Deleted,
        }
    }
}

/// A user was created or changed (its fields or its nested records).
#[derive(SimpleObject)]
pub struct UserChanged {
    /// `CREATED` or `UPDATED`.
    pub kind: UserEventKind,
    /// The user as it is now: at least as new as the change announced.
    pub user: User,
}

/// The user was deleted.
#[derive(SimpleObject)]
pub struct UserDeleted {
    /// The id of the deleted user.
    pub id: ID,
}

/// Changes of your environment may have been lost here (the server lost
/// its database connection for a while, or this stream fell behind):
/// refetch what you show.
#[derive(SimpleObject)]
pub struct EventsMissed {
    /// What happened, for people.
    pub message: String,
}

/// An event of `userUpdated`; `UserDeleted` and `UserNotFound` end the stream.
#[derive(Union)]
// The variants are named after the GraphQL types they carry.
#[allow(clippy::enum_variant_names)]
pub enum UserUpdate {
    UserChanged(UserChanged),
    UserDeleted(UserDeleted),
    UserNotFound(UserNotFound),
}

/// An event of `userEvents`.
#[derive(Union)]
pub enum UserEvent {
    UserChanged(UserChanged),
    UserDeleted(UserDeleted),
    EventsMissed(EventsMissed),
}

/// Which events `userEvents` sends.
#[derive(InputObject, Default)]
pub struct UserEventsFilter {
    /// Only these kinds (all when absent).
    pub kinds: Option<Vec<UserEventKind>>,
    /// Only these users (all of your environment when absent).
    #[graphql(validator(max_items = 100))]
    pub ids: Option<Vec<ID>>,
}

/// The live operations.
pub struct SubscriptionRoot;

/// Live updates, over a WebSocket on `/graphql` (graphql-transport-ws).
#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every committed change of the user (see `UserUpdate`), in commit
    /// order; a burst of changes may arrive as its latest state. Pass
    /// `after` (the `updatedAt` you hold) to receive the current state first
    /// if the user changed since.
    async fn user_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] id: ID,
        #[graphql(desc = "The version you hold: a newer current state is sent at once.")]
        after: Option<Timestamp>,
    ) -> Result<BoxStream<'static, UserUpdate>> {
        let reader = Reader::new(ctx)?;
        // Listening before the first read: a change committed in between is
        // in the feed, and skipped if the read already saw it.
        let feed = reader
            .repo
            .feed()
            .subscribe()
            .await
            .map_err(super::errors::repo_failure)?;
        let user = parse_id(&id);
        let current = match user {
            Some(user) => reader
                .read(user)
                .await
                .map_err(super::errors::repo_failure)?,
            None => None,
        };
        let (Some(user), Some(current)) = (user, current) else {
            let not_found = UserUpdate::UserNotFound(user_not_found(id));
            return Ok(futures_util::stream::once(async move { not_found }).boxed());
        };
        let version = current.user.updated_at;
        let first = after
            .filter(|after| version > after.0)
            .map(|_| changed(UserEventKind::Updated, current));
        Ok(WatchedUser {
            reader,
            feed,
            user,
            sent: version,
            first,
            ended: false,
        }
        .stream()
        .boxed())
    }

    /// Every committed change of the users of your environment that the
    /// filter selects, in commit order per user.
    async fn user_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which events to send (all when absent).")] filter: Option<
            UserEventsFilter,
        >,
    ) -> Result<impl Stream<Item = UserEvent>> {
        let reader = Reader::new(ctx)?;
        let filter = filter.unwrap_or_default();
        let watched = WatchedEnvironment {
            feed: reader
                .repo
                .feed()
                .subscribe()
                .await
                .map_err(super::errors::repo_failure)?,
            reader,
            kinds: filter.kinds,
            // An id that is no UUID names no user: it selects nothing.
            users: filter
                .ids
                .map(|ids| ids.iter().filter_map(parse_id).collect()),
            sent: HashMap::new(),
            pending: None,
        };
        Ok(watched.stream())
    }
}

fn changed(kind: UserEventKind, snapshot: UserSnapshot) -> UserChanged {
    UserChanged {
        kind,
        user: User::from_snapshot(snapshot),
    }
}

/// Reads the users a stream sends, with the nested lists its selection asks for.
struct Reader {
    repo: Repo,
    scope: Scope,
    relations: Arc<[Relation]>,
}

impl Reader {
    fn new(ctx: &Context<'_>) -> Result<Self> {
        Ok(Reader {
            repo: ctx.data::<Repo>()?.clone(),
            scope: *ctx.data::<Scope>()?,
            relations: selected_relations(&ctx.look_ahead().field("user")).into(),
        })
    }

    /// The user as it is now. The read runs as a task of its own, which a
    /// client going away cannot cancel halfway (see `http::detached`).
    async fn read(&self, user: Uuid) -> Result<Option<UserSnapshot>, RepoError> {
        let (repo, scope, relations) = (self.repo.clone(), self.scope, self.relations.clone());
        let read =
            tokio::spawn(async move { repo.user_with_children(scope, user, &relations).await });
        read.await
            .unwrap_or_else(|error| Err(RepoError::Corrupt(format!("read task failed: {error}"))))
    }

    /// [`Reader::read`], again after a pause for as long as it fails.
    async fn read_until_read(&self, user: Uuid) -> Option<UserSnapshot> {
        loop {
            match self.read(user).await {
                Ok(snapshot) => return snapshot,
                Err(error) => {
                    tracing::warn!(%error, "a subscription cannot read a changed user yet");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    fn is_ours(&self, change: &UserChange) -> bool {
        change.environment_id == self.scope.environment_id
    }
}

/// The state of a `userUpdated` stream.
struct WatchedUser {
    reader: Reader,
    feed: FeedReceiver,
    user: Uuid,
    /// The version last sent (or read when the stream began).
    sent: DateTime<Utc>,
    /// An event to send before any other.
    first: Option<UserChanged>,
    ended: bool,
}

impl WatchedUser {
    fn stream(self) -> impl Stream<Item = UserUpdate> {
        futures_util::stream::unfold(self, |mut watched| async move {
            let event = watched.next().await?;
            Some((event, watched))
        })
    }

    async fn next(&mut self) -> Option<UserUpdate> {
        if self.ended {
            return None;
        }
        if let Some(first) = self.first.take() {
            return Some(UserUpdate::UserChanged(first));
        }
        loop {
            match self.feed.recv().await? {
                FeedEvent::Change(change)
                    if self.reader.is_ours(&change) && change.user_id == self.user =>
                {
                    if change.kind == ChangeKind::Deleted {
                        return Some(self.deleted());
                    }
                    if change.version <= self.sent {
                        continue;
                    }
                }
                FeedEvent::Change(_) => continue,
                FeedEvent::Gap => {}
            }
            let Some(snapshot) = self.reader.read_until_read(self.user).await else {
                return Some(self.deleted());
            };
            if snapshot.user.updated_at > self.sent {
                self.sent = snapshot.user.updated_at;
                return Some(UserUpdate::UserChanged(changed(
                    UserEventKind::Updated,
                    snapshot,
                )));
            }
        }
    }

    fn deleted(&mut self) -> UserUpdate {
        self.ended = true;
        UserUpdate::UserDeleted(UserDeleted {
            id: ID(self.user.to_string()),
        })
    }
}

/// What a `userEvents` stream last sent of a user.
enum Sent {
    Version(DateTime<Utc>),
    Deleted,
}

/// The state of a `userEvents` stream.
struct WatchedEnvironment {
    reader: Reader,
    feed: FeedReceiver,
    kinds: Option<Vec<UserEventKind>>,
    users: Option<Vec<Uuid>>,
    sent: HashMap<Uuid, Sent>,
    /// A change whose user could not be read yet.
    pending: Option<UserChange>,
}

impl WatchedEnvironment {
    fn stream(self) -> impl Stream<Item = UserEvent> {
        futures_util::stream::unfold(self, |mut watched| async move {
            let event = watched.next().await?;
            Some((event, watched))
        })
    }

    fn wants(&self, kind: UserEventKind) -> bool {
        self.kinds
            .as_ref()
            .is_none_or(|kinds| kinds.contains(&kind))
    }

    fn watches(&self, change: &UserChange) -> bool {
        self.reader.is_ours(change)
            && self
                .users
                .as_ref()
                .is_none_or(|users| users.contains(&change.user_id))
    }

    async fn next(&mut self) -> Option<UserEvent> {
        loop {
            let change = match self.pending.take() {
                Some(change) => change,
                None => match self.feed.recv().await? {
                    FeedEvent::Change(change) if self.watches(&change) => change,
                    FeedEvent::Change(_) => continue,
                    FeedEvent::Gap => {
                        return Some(UserEvent::EventsMissed(EventsMissed {
                            message: "changes may have been missed: refetch the users you show"
                                .into(),
                        }))
                    }
                },
            };
            if let Some(event) = self.event(change).await {
                return Some(event);
            }
        }
    }

    /// The event `change` gives, if any is to be sent.
    async fn event(&mut self, change: UserChange) -> Option<UserEvent> {
        let user = change.user_id;
        match self.sent.get(&user) {
            Some(Sent::Deleted) => return None,
            Some(Sent::Version(sent))
                if change.kind != ChangeKind::Deleted && change.version <= *sent =>
            {
                return None
            }
            _ => {}
        }
        let kind = UserEventKind::from(change.kind);
        if change.kind == ChangeKind::Deleted {
            return self.deleted(user);
        }
        if !self.wants(kind) {
            return None;
        }
        let snapshot = match self.reader.read(user).await {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => return self.deleted(user),
            Err(error) => {
                tracing::warn!(%error, "a subscription cannot read a changed user yet");
                tokio::time::sleep(RETRY).await;
                self.pending = Some(change);
                return None;
            }
        };
        let version = snapshot.user.updated_at;
        if matches!(self.sent.get(&user), Some(Sent::Version(sent)) if version <= *sent) {
            return None;
        }
        self.remember(user, Sent::Version(version));
        Some(UserEvent::UserChanged(changed(kind, snapshot)))
    }

    fn deleted(&mut self, user: Uuid) -> Option<UserEvent> {
        self.remember(user, Sent::Deleted);
        self.wants(UserEventKind::Deleted).then(|| {
            UserEvent::UserDeleted(UserDeleted {
                id: ID(user.to_string()),
            })
        })
    }

    fn remember(&mut self, user: Uuid, sent: Sent) {
        if self.sent.len() >= REMEMBERED_USERS {
            self.sent.clear();
        }
        self.sent.insert(user, sent);
    }
}
