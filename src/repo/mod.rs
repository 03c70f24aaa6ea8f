//! All SQL lives here: users, their nested records, environments, tokens,
//! demo data.
//!
//! The layout (docs/DESIGN.md, "Two backends, one set of queries"):
//! - `queries/*.rs`: every query, an ordinary `async fn` taking `&mut Conn`;
//! - `pg.rs` and `sqlite.rs`: compile `queries/` once per backend, each with
//!   its own `Conn`, and hold the queries that differ (the write lock, a
//!   user with its lists in one statement, bulk inserts);
//! - `token_cache.rs`: valid tokens remembered for a bounded time;
//! - this file: the [`Repo`] the server calls, which takes a pooled
//!   connection and runs a query on its backend through `on_backend!` or
//!   `in_write_transaction!`;
//! - `records.rs`: the values the repository hands out, decoded from rows;
//! - `shared.rs`, `demo.rs`: what both backends share that needs no
//!   connection.

pub mod demo;
pub mod feed;
// Each includes `queries/*.rs`, on purpose: once per backend.
#[allow(clippy::duplicate_mod)]
mod pg;
mod records;
mod shared;
#[allow(clippy::duplicate_mod)]
mod sqlite;
mod token_cache;

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use demo::SeedPlan;
use diesel_async::AsyncConnection as _;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::models::{ApiTokenRow, EnvironmentRow, IdempotencyKeyRow, NewUser};
use crate::db::types::{DbId, DbJson, DbTime};
use crate::db::{Conn, Db, DbError};
use crate::domain::{
    next_updated_at, truncate_to_micros, UserOperation, UserPatch, REQUIRABLE_FIELDS,
};

pub use records::{
    ChainalysisCheck, ChangesSince, ChildChange, Children, Conflict, ConflictPolicy, CreateOutcome,
    DeleteOutcome, Environment, HistoryEntry, KeyClaim, MfaDevice, Node, OauthAccount, Session,
    UpdateOutcome, User, UserFilter, UserPosition, UserSnapshot, VerifiedCredential, Wallet,
};

/// Runs `[module::]function(conn, args…)` of `pg.rs` or `sqlite.rs` (and
/// the `queries/` they include) on the backend of `$conn`, a
/// `&mut db::Conn`; through a transaction-pooling PgBouncer, inside a
/// transaction (see `Db::open`).
///
/// On SQLite the whole function runs off the async workers, in one hop
/// (`sqlite::off_the_workers`), unless it is a read `by_key`: a lookup
/// through a unique index or a short list of them, which in WAL mode never
/// waits for a lock and costs less than the hop, so it runs where it is
/// asked.
macro_rules! on_backend {
    (@ $on_sqlite:path, $conn:expr, $($function:ident)::+($($arg:expr),* $(,)?)) => {
        match $conn {
            Conn::Pg(c) => pg::$($function)::+(c, $($arg),*).await,
            Conn::PgPooled(c) => {
                // Not `move`: arguments passed by reference stay borrowed.
                pg::Conn::transaction(c, async |c: &mut pg::Conn| {
                    pg::$($function)::+(c, $($arg),*).await
                })
                .await
            }
            Conn::Sqlite(c) => $on_sqlite(sqlite::$($function)::+(c, $($arg),*)).await,
        }
    };
    (by_key $conn:expr, $($function:ident)::+($($arg:expr),* $(,)?)) => {
        on_backend!(@ std::convert::identity, $conn, $($function)::+($($arg),*))
    };
    ($conn:expr, $($function:ident)::+($($arg:expr),* $(,)?)) => {
        on_backend!(@ sqlite::off_the_workers, $conn, $($function)::+($($arg),*))
    };
}

/// Like `on_backend!`, inside a write transaction that commits when the
/// function returns `Ok` and rolls back otherwise.
///
/// SQLite begins it with `BEGIN IMMEDIATE`: a deferred transaction that
/// reads and then writes fails with `SQLITE_BUSY` when another writer got
/// there first, instead of waiting its turn.
macro_rules! in_write_transaction {
    ($conn:expr, $($function:ident)::+($($arg:expr),* $(,)?)) => {
        match $conn {
            Conn::Pg(c) | Conn::PgPooled(c) => {
                pg::Conn::transaction(c, async move |c: &mut pg::Conn| {
                    pg::$($function)::+(c, $($arg),*).await
                })
                .await
            }
            Conn::Sqlite(c) => {
                sqlite::off_the_workers(sqlite::immediate_transaction(
                    c,
                    async move |c: &mut sqlite::Conn| sqlite::$($function)::+(c, $($arg),*).await,
                ))
                .await
            }
        }
    };
}

/// Why the repository could not answer. The text is for logs, never for
/// clients.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("a stored value cannot be read: {0}")]
    Corrupt(String),
}

impl RepoError {
    /// Whether the database could not be reached, dropped the connection, or
    /// gave none within the pool's timeout: a failure of the moment that a
    /// retry may not meet, as opposed to a defect.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        let query_failed = |error: &Error| {
            matches!(
                error,
                Error::DatabaseError(
                    DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                    _
                )
            )
        };
        match self {
            RepoError::Db(DbError::Pool(_) | DbError::Connect(_)) => true,
            RepoError::Db(DbError::Query(error)) | RepoError::Query(error) => query_failed(error),
            RepoError::Db(DbError::Migration(_)) | RepoError::Corrupt(_) => false,
        }
    }
}

/// Where "now" comes from; tests fix it to prove the version rules.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The environment a request acts in, the scope of every read and write,
/// and the API token it acts with, which the history names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub environment_id: Uuid,
    /// None for the command line.
    pub token_id: Option<Uuid>,
}

impl Scope {
    /// The scope of the command line in `environment`: no token.
    pub const fn of_environment(environment_id: Uuid) -> Self {
        Scope {
            environment_id,
            token_id: None,
        }
    }
}

/// One nested list of users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Relation {
    VerifiedCredentials,
    Wallets,
    Sessions,
    MfaDevices,
    OauthAccounts,
    ChainalysisChecks,
}

impl Relation {
    pub const ALL: &'static [Relation] = &[
        Relation::VerifiedCredentials,
        Relation::Wallets,
        Relation::Sessions,
        Relation::MfaDevices,
        Relation::OauthAccounts,
        Relation::ChainalysisChecks,
    ];
}

/// The environment `seed` fills and the server scopes requests to until
/// tokens name one.
pub const DEFAULT_ENVIRONMENT_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0001);

/// What every token starts with, so a leaked one is easy to recognise.
const TOKEN_PREFIX: &str = "ugt_";
/// Random bytes per token (256 bits).
const TOKEN_BYTES: usize = 32;

/// A token just created: the only time its text is known.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: Uuid,
    pub token: String,
}

/// Why a token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no environment with id {0}")]
    UnknownEnvironment(Uuid),
    #[error("the system's random source failed: {0}")]
    Random(String),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Why an environment could not be created.
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    #[error(
        "{0:?} is not a field an environment can require; these are: {fields}",
        fields = REQUIRABLE_FIELDS.join(", ")
    )]
    UnknownField(String),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Which tokens a revocation names.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TokenRef<'a> {
    Id(Uuid),
    Hash(&'a str),
    Named { environment: Uuid, name: &'a str },
}

/// The stored form of a token. The token carries 256 random bits, so a
/// plain SHA-256 is enough: there is nothing to brute-force.
fn token_hash(token: &str) -> String {
    sha256_hex(token)
}

/// SHA-256 of `bytes`, in lower-case hex. Every request's token goes
/// through it: a `format!` per byte was three quarters of the lookup's cost.
pub(crate) fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes.as_ref());
    let mut hex = String::with_capacity(2 * digest.len());
    for byte in digest {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Runs `batch`, a pruning statement, until it deletes less than a full
/// batch; returns how many rows it deleted in all.
async fn in_batches<F, Fut>(mut batch: F) -> Result<usize, RepoError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, RepoError>>,
{
    let full = usize::try_from(pg::history::PRUNE_BATCH).unwrap_or(usize::MAX);
    let mut pruned = 0;
    loop {
        let deleted = batch().await?;
        pruned += deleted;
        if deleted < full {
            return Ok(pruned);
        }
    }
}

/// Turns a unique-index refusal into the `TAKEN` field error it stands for.
fn taken_as_field_error<T>(
    outcome: Result<T, RepoError>,
    invalid: fn(Vec<crate::domain::FieldError>) -> T,
) -> Result<T, RepoError> {
    match outcome {
        Err(error) => match shared::taken_field(&error) {
            Some(field) => Ok(invalid(vec![shared::taken(field)])),
            None => Err(error),
        },
        outcome => outcome,
    }
}

/// The repository: every query the server runs.
#[derive(Clone)]
pub struct Repo {
    db: Db,
    clock: Arc<dyn Clock>,
    tokens: Arc<token_cache::TokenCache>,
    feed: Arc<feed::Feed>,
}

impl Repo {
    /// A repository over `db` that remembers valid tokens for
    /// `token_cache_ttl` (zero: never; see `repo/token_cache.rs`).
    pub fn new(db: Db, clock: Arc<dyn Clock>, token_cache_ttl: std::time::Duration) -> Self {
        Repo {
            db,
            clock,
            tokens: Arc::new(token_cache::TokenCache::new(token_cache_ttl)),
            feed: Arc::default(),
        }
    }

    /// The changes of users as they commit (see `repo/feed.rs`).
    pub fn feed(&self) -> &feed::Feed {
        &self.feed
    }

    /// Starts delivering to [`Repo::feed`] the changes other processes
    /// commit (PostgreSQL only); returns once it listens. The process stays
    /// registered for notifications for `linger` after its last subscriber.
    pub async fn listen_for_changes(&self, linger: std::time::Duration) -> Result<(), RepoError> {
        feed::listen(&self.db, self.feed.clone(), linger).await
    }

    /// Tells the feed that `user` of `scope` now is at `version`.
    fn published(&self, kind: feed::ChangeKind, scope: Scope, user: Uuid, version: DateTime<Utc>) {
        self.feed.publish(feed::UserChange {
            kind,
            environment_id: scope.environment_id,
            user_id: user,
            version,
        });
    }

    /// [`Repo::published`] for an update that wrote.
    fn published_update(&self, scope: Scope, outcome: &UpdateOutcome) {
        if let UpdateOutcome::Updated(snapshot) | UpdateOutcome::Merged(snapshot) = outcome {
            let user = &snapshot.user;
            self.published(feed::ChangeKind::Updated, scope, user.id, user.updated_at);
        }
    }

    /// The pool this repository queries.
    pub fn db(&self) -> &Db {
        &self.db
    }

    fn now(&self) -> DateTime<Utc> {
        truncate_to_micros(self.clock.now())
    }

    /// A write of `operation` made now in `scope`.
    fn write(&self, scope: Scope, operation: UserOperation) -> shared::Write {
        shared::Write {
            operation,
            token_id: scope.token_id,
            merged: false,
            at: self.now(),
        }
    }

    async fn conn(&self) -> Result<Conn, RepoError> {
        Ok(self.db.conn().await?)
    }

    /// One user of the scope's environment.
    pub async fn user(&self, scope: Scope, id: Uuid) -> Result<Option<User>, RepoError> {
        on_backend!(by_key &mut self.conn().await?, users::user(scope, id))
    }

    /// One user of the scope's environment with its nested lists
    /// `relations`; on PostgreSQL in one statement.
    pub async fn user_with_children(
        &self,
        scope: Scope,
        id: Uuid,
        relations: &[Relation],
    ) -> Result<Option<UserSnapshot>, RepoError> {
        on_backend!(
            by_key &mut self.conn().await?,
            user_with_children(scope, id, relations)
        )
    }

    /// Up to `limit` users of the scope's environment that `filter` selects,
    /// in list order, starting after `after`.
    pub async fn users(
        &self,
        scope: Scope,
        filter: &UserFilter,
        after: Option<UserPosition>,
        limit: i64,
    ) -> Result<Vec<User>, RepoError> {
        on_backend!(
            &mut self.conn().await?,
            users::users(scope, filter, after, limit)
        )
    }

    /// How many users of the scope's environment `filter` selects.
    pub async fn count_users(&self, scope: Scope, filter: &UserFilter) -> Result<i64, RepoError> {
        on_backend!(&mut self.conn().await?, users::count_users(scope, filter))
    }

    /// The nested lists `relations` of each of `users`, one statement per
    /// relation; the other lists are left empty.
    pub async fn children(
        &self,
        relations: &[Relation],
        users: &[Uuid],
    ) -> Result<HashMap<Uuid, Children>, RepoError> {
        on_backend!(
            by_key &mut self.conn().await?,
            children::children_of_users(relations, users)
        )
    }

    /// The record with this id, of any type, in the scope's environment.
    pub async fn node(&self, scope: Scope, id: Uuid) -> Result<Option<Node>, RepoError> {
        on_backend!(by_key &mut self.conn().await?, nodes::node(scope, id))
    }

    /// The environments with these ids, in one query.
    pub async fn environments(&self, ids: &[Uuid]) -> Result<Vec<Environment>, RepoError> {
        on_backend!(by_key &mut self.conn().await?, nodes::environments(ids))
    }

    /// Creates a user in the scope's environment from `input`, under the
    /// same rules as an update of a user that has no values yet.
    pub async fn create_user(
        &self,
        scope: Scope,
        input: UserPatch<String>,
    ) -> Result<CreateOutcome, RepoError> {
        let (patch, input_errors) = input.check();
        let write = self.write(scope, UserOperation::Create);
        let now = DbTime(write.at);
        let new = NewUser {
            id: DbId(Uuid::new_v4()),
            environment_id: DbId(scope.environment_id),
            new_user: true,
            first_visit: now,
            last_visit: now,
            created_at: now,
            updated_at: now,
        };
        let mut conn = self.conn().await?;
        let outcome = in_write_transaction!(
            &mut conn,
            users::create_user(new, patch, input_errors, write)
        );
        let outcome = taken_as_field_error(outcome, CreateOutcome::Invalid)?;
        if let CreateOutcome::Created(snapshot) = &outcome {
            let user = &snapshot.user;
            self.published(feed::ChangeKind::Created, scope, user.id, user.updated_at);
        }
        Ok(outcome)
    }

    /// Applies `input` to the user only if its stored `updated_at` is still
    /// `expected` (or as `policy` allows), and returns the user with its
    /// nested lists as they are right after, read in the same transaction:
    /// at least `relations`, which a write that needs no stored facts reads
    /// alone.
    pub async fn update_user(
        &self,
        scope: Scope,
        id: Uuid,
        expected: DateTime<Utc>,
        input: UserPatch<String>,
        relations: &[Relation],
        policy: ConflictPolicy,
    ) -> Result<UpdateOutcome, RepoError> {
        let input = shared::CheckedInput::new(input);
        let write = self.write(scope, UserOperation::Update);
        let mut conn = self.conn().await?;
        let patch = &input.patch;
        if input.errors.is_empty() && !patch.is_empty() && !patch.needs_stored_facts() {
            // The common case: nothing to read before writing. A user not at
            // the expected version falls through to the checked path, which
            // tells a conflict from a missing user and may merge.
            let changes = shared::changes(patch.clone(), next_updated_at(write.at, expected));
            let written = on_backend!(
                &mut conn,
                update_returning_children(scope, id, expected, changes, relations, write)
            )?;
            if let Some(snapshot) = written {
                let outcome = UpdateOutcome::Updated(snapshot);
                self.published_update(scope, &outcome);
                return Ok(outcome);
            }
        }
        let outcome = in_write_transaction!(
            &mut conn,
            users::update_user(scope, id, expected, input, write, policy)
        );
        let outcome = taken_as_field_error(outcome, UpdateOutcome::Invalid)?;
        self.published_update(scope, &outcome);
        Ok(outcome)
    }

    /// Changes one nested record of the user, and moves the user's version,
    /// only if its stored `updated_at` is still `expected`.
    pub async fn change_child(
        &self,
        scope: Scope,
        user_id: Uuid,
        expected: DateTime<Utc>,
        change: ChildChange,
    ) -> Result<UpdateOutcome, RepoError> {
        let write = self.write(scope, UserOperation::of_child_change(change));
        let mut conn = self.conn().await?;
        let outcome = in_write_transaction!(
            &mut conn,
            users::change_child(scope, user_id, expected, change, write)
        )?;
        self.published_update(scope, &outcome);
        Ok(outcome)
    }

    /// Deletes the user and its nested records only if its stored
    /// `updated_at` is still `expected`.
    pub async fn delete_user(
        &self,
        scope: Scope,
        id: Uuid,
        expected: DateTime<Utc>,
    ) -> Result<DeleteOutcome, RepoError> {
        let write = self.write(scope, UserOperation::Delete);
        let mut conn = self.conn().await?;
        let outcome =
            in_write_transaction!(&mut conn, users::delete_user(scope, id, expected, write))?;
        if let DeleteOutcome::Deleted = outcome {
            self.published(feed::ChangeKind::Deleted, scope, id, expected);
        }
        Ok(outcome)
    }

    /// Up to `limit` entries of the change history of user `id` of the
    /// scope's environment (deleted or not), newest first, older than
    /// version `before`.
    pub async fn history(
        &self,
        scope: Scope,
        id: Uuid,
        before: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>, RepoError> {
        on_backend!(
            &mut self.conn().await?,
            history::history(scope, id, before, limit)
        )
    }

    /// Deletes history entries recorded before `cutoff`, and those of each
    /// user beyond its newest `keep_per_user`, a batch per statement so
    /// that writers never wait long; returns how many.
    pub async fn prune_history(
        &self,
        cutoff: DateTime<Utc>,
        keep_per_user: i64,
    ) -> Result<usize, RepoError> {
        let mut pruned = in_batches(|| async {
            on_backend!(&mut self.conn().await?, history::prune_older_than(cutoff))
        })
        .await?;
        let users = on_backend!(&mut self.conn().await?, history::users_over(keep_per_user))?;
        for user in users {
            pruned += on_backend!(
                &mut self.conn().await?,
                history::prune_user_beyond(user, keep_per_user)
            )?;
        }
        Ok(pruned)
    }

    /// Claims `key` of the scope's token for a request whose body hashes
    /// to `body_hash` (see `http/idempotency.rs`): keys live `lifetime`, and
    /// an unanswered claim older than `abandon_after` is taken over.
    pub async fn claim_idempotency_key(
        &self,
        token: Uuid,
        key: &str,
        body_hash: &str,
        (lifetime, abandon_after): (chrono::Duration, chrono::Duration),
    ) -> Result<KeyClaim, RepoError> {
        let now = self.now();
        let row = IdempotencyKeyRow {
            token_id: DbId(token),
            key: key.to_owned(),
            body_hash: body_hash.to_owned(),
            status: None,
            response: None,
            created_at: DbTime(now),
        };
        let (expired, abandoned) = (now - lifetime, now - abandon_after);
        on_backend!(
            &mut self.conn().await?,
            idempotency::claim(row, expired, abandoned)
        )
    }

    /// Stores the answer of the request that claimed `key` of `token`.
    pub async fn answer_idempotency_key(
        &self,
        token: Uuid,
        key: &str,
        status: i32,
        body: String,
    ) -> Result<(), RepoError> {
        on_backend!(
            &mut self.conn().await?,
            idempotency::answer(token, key, status, body)
        )
    }

    /// Gives up the unanswered claim of `key` of `token`.
    pub async fn release_idempotency_key(&self, token: Uuid, key: &str) -> Result<(), RepoError> {
        on_backend!(&mut self.conn().await?, idempotency::release(token, key))
    }

    /// Deletes the idempotency keys claimed before `cutoff`, and those of
    /// each token beyond its newest `keep_per_token`; returns how many.
    pub async fn prune_idempotency_keys(
        &self,
        cutoff: DateTime<Utc>,
        keep_per_token: i64,
    ) -> Result<usize, RepoError> {
        let mut pruned = in_batches(|| async {
            on_backend!(
                &mut self.conn().await?,
                idempotency::prune_older_than(cutoff)
            )
        })
        .await?;
        let tokens = on_backend!(
            &mut self.conn().await?,
            idempotency::tokens_over(keep_per_token)
        )?;
        for token in tokens {
            pruned += on_backend!(
                &mut self.conn().await?,
                idempotency::prune_token_beyond(token, keep_per_token)
            )?;
        }
        Ok(pruned)
    }

    /// Creates a token for an environment; returns it, to be shown once.
    pub async fn create_token(
        &self,
        environment: Uuid,
        name: &str,
    ) -> Result<NewToken, TokenError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
        let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let row = ApiTokenRow {
            id: DbId(Uuid::new_v4()),
            environment_id: DbId(environment),
            name: name.to_owned(),
            token_hash: token_hash(&token),
            created_at: DbTime(self.now()),
            revoked_at: None,
        };
        let id = row.id.0;
        let mut conn = self.conn().await?;
        if !on_backend!(by_key &mut conn, nodes::environment_exists(environment))? {
            return Err(TokenError::UnknownEnvironment(environment));
        }
        on_backend!(&mut conn, tokens::insert_token(row))?;
        Ok(NewToken { id, token })
    }

    /// Revokes a token, named by its text or its id; false if there was no
    /// such unrevoked token.
    pub async fn revoke_token(&self, token_or_id: &str) -> Result<bool, RepoError> {
        let hash;
        let which = match Uuid::parse_str(token_or_id) {
            Ok(id) => TokenRef::Id(id),
            Err(_) => {
                hash = token_hash(token_or_id);
                TokenRef::Hash(&hash)
            }
        };
        let now = self.now();
        let revoked = on_backend!(&mut self.conn().await?, tokens::revoke_tokens(which, now))?;
        self.tokens.clear();
        Ok(revoked > 0)
    }

    /// Revokes every unrevoked token of `environment` named `name`.
    pub async fn revoke_tokens_named(
        &self,
        environment: Uuid,
        name: &str,
    ) -> Result<usize, RepoError> {
        let which = TokenRef::Named { environment, name };
        let now = self.now();
        let revoked = on_backend!(&mut self.conn().await?, tokens::revoke_tokens(which, now))?;
        self.tokens.clear();
        Ok(revoked)
    }

    /// The scope a bearer token grants, or `None` for an unknown or revoked token.
    pub async fn scope_for_token(&self, token: &str) -> Result<Option<Scope>, RepoError> {
        let hash = token_hash(token);
        if let Some(scope) = self.tokens.get(&hash) {
            return Ok(Some(scope));
        }
        let scope = on_backend!(by_key &mut self.conn().await?, tokens::scope_of_token(&hash))?;
        if let Some(scope) = scope {
            self.tokens.put(&hash, scope);
        }
        Ok(scope)
    }

    /// Creates the default environment unless it exists.
    pub async fn ensure_default_environment(&self) -> Result<(), RepoError> {
        let row = EnvironmentRow {
            id: DbId(DEFAULT_ENVIRONMENT_ID),
            name: "default".into(),
            required_fields: DbJson(serde_json::json!(["email"])),
            created_at: DbTime(self.now()),
        };
        on_backend!(
            &mut self.conn().await?,
            nodes::insert_environment(row, true)
        )
    }

    /// Creates an environment whose users must fill `required_fields`
    /// (names from [`REQUIRABLE_FIELDS`]); returns its id.
    pub async fn create_environment(
        &self,
        name: &str,
        required_fields: &[String],
    ) -> Result<Uuid, EnvironmentError> {
        if let Some(unknown) = required_fields
            .iter()
            .find(|field| !REQUIRABLE_FIELDS.contains(&field.as_str()))
        {
            return Err(EnvironmentError::UnknownField(unknown.clone()));
        }
        let row = EnvironmentRow {
            id: DbId(Uuid::new_v4()),
            name: name.to_owned(),
            required_fields: DbJson(serde_json::json!(required_fields)),
            created_at: DbTime(self.now()),
        };
        let id = row.id.0;
        on_backend!(
            &mut self.conn().await?,
            nodes::insert_environment(row, false)
        )?;
        Ok(id)
    }

    /// Adds `count` demo users, each with every kind of nested record, to
    /// the scope's environment (see `queries/seed.rs`), in batches each
    /// committed on its own. Returns their ids.
    pub async fn seed_users(&self, scope: Scope, count: usize) -> Result<Vec<Uuid>, RepoError> {
        self.seed_users_reporting(scope, count, &|_| ()).await
    }

    /// [`Repo::seed_users`], calling `progress` with the number added so far
    /// after each batch.
    pub async fn seed_users_reporting(
        &self,
        scope: Scope,
        count: usize,
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<Vec<Uuid>, RepoError> {
        let env = scope.environment_id;
        let mut first = self.conn().await?;
        let existing = on_backend!(&mut first, seed::users_in(env))?;
        // PostgreSQL inserts a batch on one connection while the next is
        // built and sent on another; SQLite has one writer.
        let workers = if matches!(first, Conn::Sqlite(_)) {
            1
        } else {
            2
        };
        let plan = SeedPlan::new(env, self.clock.now(), count, existing, progress);
        let mut conns = vec![first];
        while conns.len() < workers {
            conns.push(self.conn().await?);
        }
        let plan_ref = &plan;
        let results = futures_util::future::join_all(conns.iter_mut().map(|conn| async move {
            on_backend!(&mut *conn, seed_settings(true))?;
            // A transaction per batch: a running server's writers wait for
            // one batch at most (SQLite has a single writer), and an
            // interrupted seed keeps the batches it finished.
            let mut outcome = Ok(());
            while let Some((first, rows)) = plan_ref.next_batch() {
                let size = rows.users.len();
                match in_write_transaction!(&mut *conn, seed::seed_batch(env, rows)) {
                    Ok(added) => plan_ref.batch_done(first, size, added),
                    Err(e) => {
                        plan_ref.fail();
                        outcome = Err(e);
                        break;
                    }
                }
            }
            // The connection goes back to the pool committing as every other
            // does. Should that fail, the seed fails, and its callers (the
            // command line, the demo's start-up) end the process with it.
            on_backend!(&mut *conn, seed_settings(false))?;
            outcome
        }))
        .await;
        results.into_iter().collect::<Result<(), RepoError>>()?;
        Ok(plan.into_ids())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
