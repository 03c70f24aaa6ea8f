//! The change feed: which users changed, as they commit, for live updates.
//!
//! Every write of a user publishes `(environment, user, version, kind)` here
//! once it has committed. On PostgreSQL a trigger also sends it with NOTIFY
//! (migration `user_changes`), so a change made by another server process
//! arrives through [`listen`] on a connection of its own. A change made here
//! may so arrive twice; subscribers skip a version they have delivered.
//!
//! On PostgreSQL the trigger notifies only while some process has
//! subscribers: a process registers its listening connection when its first
//! subscriber arrives, and a subscription starts once that registration is
//! in place (migration `feed_listeners` says why no change slips past it).
//!
//! An event carries no values: a subscriber reads the user it is about, so
//! it always hands out the state as it is now, never an older one after a
//! newer one. When events may have been lost (the listening connection
//! dropped, or a subscriber fell more than [`CAPACITY`] events behind), the
//! subscriber receives [`FeedEvent::Gap`] and reads again what it watches.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, watch, Notify};
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
    /// Whether the changes of other processes reach this feed: always on
    /// SQLite; on PostgreSQL, while this process is registered as listening.
    hears_all: watch::Sender<bool>,
    /// Wakes the listening connection: a subscriber needs it registered,
    /// or one left.
    wake: Arc<Notify>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            sender: broadcast::channel(CAPACITY).0,
            hears_all: watch::Sender::new(true),
            wake: Arc::default(),
        }
    }
}

impl Feed {
    /// Events committed from now on, by any process: waits until this
    /// process is registered as listening. Fails, as the database being
    /// away does, when that takes longer than [`LISTENER_TIMEOUT`].
    pub async fn subscribe(&self) -> Result<FeedReceiver, super::RepoError> {
        // The receiver first: while it lives, the registration stays.
        let receiver = FeedReceiver {
            events: Some(self.sender.subscribe()),
            wake: self.wake.clone(),
        };
        let mut hears_all = self.hears_all.subscribe();
        if !*hears_all.borrow_and_update() {
            self.wake.notify_one();
            let registered = tokio::time::timeout(LISTENER_TIMEOUT, hears_all.wait_for(|h| *h));
            if !matches!(registered.await, Ok(Ok(_))) {
                return Err(crate::db::DbError::Pool("not listening for changes".into()).into());
            }
        }
        Ok(receiver)
    }

    /// How many subscribers listen.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Whether the changes other processes commit reach this feed now.
    pub fn hears_all(&self) -> bool {
        *self.hears_all.borrow()
    }

    /// Stops hearing other processes if no one subscribes, in one step with
    /// the count, so that a subscriber arriving meanwhile either sees the
    /// feed deaf (and asks again) or keeps it hearing.
    fn stop_hearing_if_unwatched(&self) -> bool {
        self.hears_all.send_if_modified(|hears_all| {
            let stop = *hears_all && self.subscribers() == 0;
            if stop {
                *hears_all = false;
            }
            stop
        })
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
pub struct FeedReceiver {
    /// Taken only when dropped, so that the count is down before the
    /// listening connection is woken to read it.
    events: Option<broadcast::Receiver<FeedEvent>>,
    wake: Arc<Notify>,
}

impl FeedReceiver {
    /// The next event; a subscriber that fell behind gets a gap.
    /// `None` once the feed is gone.
    pub async fn recv(&mut self) -> Option<FeedEvent> {
        match self.events.as_mut()?.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(FeedEvent::Gap),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl Drop for FeedReceiver {
    /// The listening connection counts the subscribers left, and when none
    /// is, deregisters after its linger.
    fn drop(&mut self) {
        self.events = None;
        self.wake.notify_one();
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
/// runs; returns once the first LISTEN is in place. From then on the
/// connection registers this process whenever it has subscribers, until it
/// has had none for `linger`. Does
/// nothing on SQLite, where this process is the only writer and its own
/// writes are all there is.
pub async fn listen(db: &Db, feed: Arc<Feed>, linger: Duration) -> Result<(), super::RepoError> {
    let Some(url) = db.postgres_url() else {
        return Ok(());
    };
    let url = url.to_owned();
    let first = postgres::listen(&url).await?;
    feed.hears_all.send_replace(false);
    tokio::spawn(async move {
        let mut conn = Some(first);
        let mut resumed = false;
        loop {
            if let Some(conn) = conn.take() {
                postgres::forward(conn, &feed, resumed, linger).await;
                feed.hears_all.send_replace(false);
            }
            tokio::time::sleep(LISTENER_BACKOFF).await;
            match tokio::time::timeout(LISTENER_TIMEOUT, postgres::listen(&url)).await {
                Ok(Ok(listening)) => {
                    tracing::info!("listening for changes again");
                    conn = Some(listening);
                    resumed = true;
                }
                Ok(Err(error)) => tracing::warn!(%error, "cannot listen for changes"),
                Err(_) => tracing::warn!("cannot listen for changes: no answer"),
            }
        }
    });
    Ok(())
}

mod postgres {
    use std::time::{Duration, Instant};

    use diesel::pg::PgNotification;
    use diesel::QueryResult;
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

    /// Makes the trigger notify: see migration `feed_listeners` for why a
    /// write either ends before this commits or notifies. The lock waits at
    /// most a second, since every write waits behind it meanwhile; rows of
    /// connections that are gone are cleared on the way.
    const REGISTER: &str = "BEGIN;
        SET LOCAL lock_timeout = '1s';
        LOCK TABLE usergraph_listeners IN ACCESS EXCLUSIVE MODE;
        DELETE FROM usergraph_listeners WHERE pid NOT IN (SELECT pid FROM pg_stat_activity);
        INSERT INTO usergraph_listeners (pid) VALUES (pg_backend_pid()) ON CONFLICT DO NOTHING;
        COMMIT";
    const DEREGISTER: &str = "DELETE FROM usergraph_listeners WHERE pid = pg_backend_pid()";

    /// What woke the listening connection.
    enum Woken {
        Notification(Option<QueryResult<PgNotification>>),
        Wake,
        Quiet,
    }

    /// Publishes the connection's notifications until it fails, registered
    /// while the process has subscribers (and for `linger` after). A
    /// `resumed` connection follows one that failed: once it hears all
    /// changes again, the subscribers are told of a gap.
    pub(super) async fn forward(
        mut conn: AsyncPgConnection,
        feed: &Feed,
        mut resumed: bool,
        linger: Duration,
    ) {
        let mut registered = false;
        let mut unwatched_since = None;
        loop {
            if feed.subscribers() > 0 {
                unwatched_since = None;
                if !registered {
                    if !answered(conn.batch_execute(REGISTER), "register").await {
                        return;
                    }
                    registered = true;
                    feed.hears_all.send_replace(true);
                }
            } else if registered {
                let since = *unwatched_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= linger && feed.stop_hearing_if_unwatched() {
                    if !answered(conn.batch_execute(DEREGISTER), "deregister").await {
                        return;
                    }
                    registered = false;
                    unwatched_since = None;
                }
            }
            if resumed && (registered || feed.subscribers() == 0) {
                // What committed while no one listened is unknown.
                feed.gap();
                resumed = false;
            }
            // Registered with no one watching: wake when the linger ends.
            let quiet = match unwatched_since {
                Some(since) if registered => linger.saturating_sub(since.elapsed()),
                _ => LISTENER_CHECK,
            };
            let woken = {
                let notifications = conn.notifications_stream();
                futures_util::pin_mut!(notifications);
                tokio::select! {
                    next = notifications.next() => Woken::Notification(next),
                    () = feed.wake.notified() => Woken::Wake,
                    () = tokio::time::sleep(quiet.min(LISTENER_CHECK)) => Woken::Quiet,
                }
            };
            match woken {
                Woken::Notification(Some(Ok(notification))) => {
                    match parse_notification(&notification.payload) {
                        Some(change) => feed.publish(change),
                        None => {
                            tracing::warn!(payload = %notification.payload, "unknown change notification")
                        }
                    }
                }
                Woken::Notification(Some(Err(error))) => {
                    tracing::warn!(%error, "the connection listening for changes failed");
                    return;
                }
                Woken::Notification(None) => {
                    tracing::warn!("the connection listening for changes closed");
                    return;
                }
                Woken::Wake => {}
                // Quiet: make sure the connection is alive, since a dead
                // peer can look like silence.
                Woken::Quiet => {
                    if !answered(conn.batch_execute("SELECT 1"), "check").await {
                        return;
                    }
                }
            }
        }
    }

    /// Whether `statement` succeeded within [`LISTENER_TIMEOUT`]; says why not.
    async fn answered(
        statement: impl std::future::Future<Output = QueryResult<()>>,
        what: &str,
    ) -> bool {
        match tokio::time::timeout(LISTENER_TIMEOUT, statement).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::warn!(%error, "the connection listening for changes failed to {what}");
                false
            }
            Err(_) => {
                tracing::warn!("the connection listening for changes stopped answering ({what})");
                false
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
        let mut receiver = feed.subscribe().await.unwrap();
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

    #[tokio::test]
    async fn a_subscriber_waits_for_the_registration_and_keeps_it() {
        let feed = Arc::new(Feed::default());
        feed.hears_all.send_replace(false);
        let subscribing = tokio::spawn({
            let feed = feed.clone();
            async move { feed.subscribe().await.is_ok() }
        });
        // The listening connection is asked, and registers.
        feed.wake.notified().await;
        assert!(!subscribing.is_finished());
        feed.hears_all.send_replace(true);
        assert!(subscribing.await.unwrap());

        let receiver = feed.subscribe().await.unwrap();
        assert!(!feed.stop_hearing_if_unwatched());
        assert!(feed.hears_all());
        drop(receiver);
        assert!(feed.stop_hearing_if_unwatched());
        assert!(!feed.hears_all());
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
