//! The change feed: which users changed, as they commit, for live updates.
//!
//! Every write of a user publishes `(environment, user, version, kind)` here
//! once it has committed. On PostgreSQL a trigger also sends it with NOTIFY
//! (migration `user_changes`), so a change made by another server process
//! arrives through [`listen`] on a connection of its own. A change made here
//! may so arrive twice; subscribers skip a version they have delivered.
//!
//! An event carries no values: a subscriber reads the user it is about, so
//! it always hands out the state as it is now, never an older one after a
//! newer one. When events may have been lost (the listening connection
//! dropped, or a subscriber fell more than [`CAPACITY`] events behind), the
//! subscriber receives [`FeedEvent::Gap`] and reads again what it watches.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::db::Db;

/// Events a process keeps for its slowest subscriber; one further behind is
/// told of a gap instead.
pub const CAPACITY: usize = 1024;

/// The NOTIFY channel of the `user_changes` trigger.
const CHANNEL: &str = "usergraph_user_changes";

/// How long the listening connection may stay silent before it is checked.
const LISTENER_CHECK: Duration = Duration::from_secs(10);
/// How long that check, or a reconnection, may take.
const LISTENER_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait before reconnecting after a failure.
const LISTENER_BACKOFF: Duration = Duration::from_millis(250);

/// What happened to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

/// One committed change of one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserChange {
    pub kind: ChangeKind,
    pub environment_id: Uuid,
    pub user_id: Uuid,
    /// The user's `updated_at` after the change (before it, for a delete).
    pub version: DateTime<Utc>,
}

/// What a subscriber receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedEvent {
    Change(UserChange),
    /// Changes may have been lost here: read again what you watch.
    Gap,
}

/// The changes of this process's database, fanned out to its subscribers.
pub struct Feed {
    sender: broadcast::Sender<FeedEvent>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Feed {
    /// Events from now on.
    pub fn subscribe(&self) -> FeedReceiver {
        FeedReceiver(self.sender.subscribe())
    }

    /// How many subscribers listen.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Tells the subscribers of a committed change.
    pub fn publish(&self, change: UserChange) {
        // No subscriber is no error.
        let _ = self.sender.send(FeedEvent::Change(change));
    }

    fn gap(&self) {
        let _ = self.sender.send(FeedEvent::Gap);
    }
}

/// One subscriber's end of the feed.
pub struct FeedReceiver(broadcast::Receiver<FeedEvent>);

impl FeedReceiver {
    /// The next event; a subscriber that fell behind gets a gap.
    /// `None` once the feed is gone.
    pub async fn recv(&mut self) -> Option<FeedEvent> {
        match self.0.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(FeedEvent::Gap),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// The change a notification of the trigger names, if it is well formed.
fn parse_notification(payload: &str) -> Option<UserChange> {
    let mut parts = payload.split(' ');
    let kind = match parts.next()? {
        "I" => ChangeKind::Created,
        "U" => ChangeKind::Updated,
        "D" => ChangeKind::Deleted,
        _ => return None,
    };
    let environment_id = parts.next()?.parse().ok()?;
    let user_id = parts.next()?.parse().ok()?;
    let version = DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?;
    parts.next().is_none().then_some(UserChange {
        kind,
        environment_id,
        user_id,
        version,
    })
}

/// On PostgreSQL, starts listening for the changes every process commits
/// and publishes them to `feed`, reconnecting for as long as the process
/// runs; returns once the first LISTEN is in place, so that no change
/// committed after it is missed. Does nothing on SQLite, where this process
/// is the only writer and its own writes are all there is.
pub async fn listen(db: &Db, feed: std::sync::Arc<Feed>) -> Result<(), super::RepoError> {
    let Some(url) = db.postgres_url() else {
        return Ok(());
    };
    let url = url.to_owned();
    let first = postgres::listen(&url).await?;
    tokio::spawn(async move {
        let mut conn = Some(first);
        loop {
            if let Some(conn) = conn.take() {
                postgres::forward(conn, &feed).await;
            }
            tokio::time::sleep(LISTENER_BACKOFF).await;
            match tokio::time::timeout(LISTENER_TIMEOUT, postgres::listen(&url)).await {
                Ok(Ok(listening)) => {
                    tracing::info!("listening for changes again");
                    // What committed while no one listened is unknown.
                    feed.gap();
                    conn = Some(listening);
                }
                Ok(Err(error)) => tracing::warn!(%error, "cannot listen for changes"),
                Err(_) => tracing::warn!("cannot listen for changes: no answer"),
            }
        }
    });
    Ok(())
}

mod postgres {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    use futures_util::StreamExt;

    use super::{parse_notification, Feed, CHANNEL, LISTENER_CHECK, LISTENER_TIMEOUT};
    use crate::repo::RepoError;

    /// A connection of its own (not the pool's) listening on the channel.
    pub(super) async fn listen(url: &str) -> Result<AsyncPgConnection, RepoError> {
        let mut conn = AsyncPgConnection::establish(url)
            .await
            .map_err(crate::db::DbError::from)?;
        conn.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        Ok(conn)
    }

    /// Publishes the connection's notifications until it fails.
    pub(super) async fn forward(mut conn: AsyncPgConnection, feed: &Feed) {
        loop {
            let next = {
                let notifications = conn.notifications_stream();
                futures_util::pin_mut!(notifications);
                tokio::time::timeout(LISTENER_CHECK, notifications.next()).await
            };
            match next {
                Ok(Some(Ok(notification))) => match parse_notification(&notification.payload) {
                    Some(change) => feed.publish(change),
                    None => {
                        tracing::warn!(payload = %notification.payload, "unknown change notification")
                    }
                },
                Ok(Some(Err(error))) => {
                    tracing::warn!(%error, "the connection listening for changes failed");
                    return;
                }
                Ok(None) => {
                    tracing::warn!("the connection listening for changes closed");
                    return;
                }
                // Quiet: make sure the connection is alive, since a dead
                // peer can look like silence.
                Err(_) => {
                    let check =
                        tokio::time::timeout(LISTENER_TIMEOUT, conn.batch_execute("SELECT 1"));
                    if !matches!(check.await, Ok(Ok(()))) {
                        tracing::warn!("the connection listening for changes stopped answering");
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told() {
        let feed = Feed::default();
        let mut receiver = feed.subscribe();
        let change = UserChange {
            kind: ChangeKind::Updated,
            environment_id: Uuid::nil(),
            user_id: Uuid::nil(),
            version: DateTime::UNIX_EPOCH,
        };
        feed.publish(change);
        assert_eq!(receiver.recv().await, Some(FeedEvent::Change(change)));
        for _ in 0..=CAPACITY {
            feed.publish(change);
        }
        assert_eq!(receiver.recv().await, Some(FeedEvent::Gap));
        assert_eq!(receiver.recv().await, Some(FeedEvent::Change(change)));
    }

    #[test]
    fn notifications() {
        let environment = Uuid::new_v4();
        let user = Uuid::new_v4();
        let change = parse_notification(&format!("U {environment} {user} 1764324000123456"));
        assert_eq!(
            change,
            Some(UserChange {
                kind: ChangeKind::Updated,
                environment_id: environment,
                user_id: user,
                version: "2025-11-28T10:00:00.123456Z".parse().unwrap(),
            })
        );
        assert_eq!(
            parse_notification(&format!("D {environment} {user} 0")).map(|c| c.kind),
            Some(ChangeKind::Deleted)
        );
        for bad in [
            "",
            "U",
            "X a b 1",
            &format!("U {environment} {user}"),
            &format!("U {environment} {user} 1 2"),
        ] {
            assert_eq!(parse_notification(bad), None, "{bad}");
        }
    }
}
