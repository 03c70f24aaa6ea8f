//! Users: reads, lists, and the compare-and-set writes (create, update,
//! nested changes, delete).

use chrono::{DateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError, QueryResult};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, Insertable, OptionalExtension, QueryDsl,
    SelectableHelper,
};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::children::children_of_user;
use super::{Repo, Scope, UpdateOutcome, UserSnapshot};
use crate::db::models::{UserChanges, UserRow};
use crate::db::schema::{mfa_devices, sessions, users, verified_credentials};
use crate::db::types::{DbId, DbJson, DbTime};
use crate::db::DbError;
use crate::domain::{
    check_against_stored, next_updated_at, truncate_to_micros, ErrorCode, FieldError, Patch,
    StoredFacts, UserPatch,
};
use crate::{with_conn, write_transaction};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>);

/// Names of the unique indexes behind the `TAKEN` field errors (see migrations).
const UNIQUE_INDEXES: [(&str, &str); 2] = [
    ("users_email_unique", "email"),
    ("users_username_unique", "username"),
];

/// Reads (and on PostgreSQL locks) the user `$in_scope` selects and returns
/// from the enclosing transaction closure with `NotFound`, or with
/// `Conflict` (and the current snapshot) unless its version is `$expected`;
/// else yields the row. The lock makes the nested lists read after it, and
/// a no-op's answer, belong to that same version.
macro_rules! current_at_version {
    ($c:expr, $in_scope:expr, $expected:expr) => {{
        let Some(current) = $c.user_for_write($in_scope).await? else {
            return Ok(UpdateOutcome::NotFound);
        };
        if current.updated_at.0 != $expected {
            let children = children_of_user!($c, current.id)?;
            return Ok(UpdateOutcome::Conflict(UserSnapshot {
                user: current,
                children,
            }));
        }
        current
    }};
}

/// Reads a user inside a write transaction so that the rest of the
/// transaction sees that same version of it.
trait UserForWrite {
    /// The user `query` selects; on PostgreSQL locked (`FOR UPDATE`) until
    /// commit, so nested lists read afterwards belong to the same version.
    /// SQLite's `BEGIN IMMEDIATE` already excludes every other writer.
    async fn user_for_write(&mut self, query: UserInScope) -> QueryResult<Option<UserRow>>;
}

/// `users` filtered to one id in one environment.
type UserInScope = diesel::dsl::Filter<
    diesel::dsl::Filter<users::table, diesel::dsl::Eq<users::id, DbId>>,
    diesel::dsl::Eq<users::environment_id, DbId>,
>;

/// The user `id` if it is in the scope's environment: the filter every
/// query on one user starts from, so no query forgets the environment.
fn user_in_scope(scope: Scope, id: Uuid) -> UserInScope {
    users::table
        .filter(users::id.eq(DbId(id)))
        .filter(users::environment_id.eq(DbId(scope.environment_id)))
}

impl UserForWrite for diesel_async::AsyncPgConnection {
    async fn user_for_write(&mut self, query: UserInScope) -> QueryResult<Option<UserRow>> {
        query
            .select(UserRow::as_select())
            .for_update()
            .first(self)
            .await
            .optional()
    }
}

impl UserForWrite for crate::db::SqliteConn {
    async fn user_for_write(&mut self, query: UserInScope) -> QueryResult<Option<UserRow>> {
        query
            .select(UserRow::as_select())
            .first(self)
            .await
            .optional()
    }
}

/// The compare-and-set itself: writes `$changes` (which include the new
/// `updated_at`) only where the stored version is still `$expected`. When
/// another writer, of any process, got there first no row matches, and this
/// returns `Conflict` (or `NotFound`, if it was deleted) from the closure.
macro_rules! compare_and_set {
    ($c:expr, $in_scope:expr, $expected:expr, $changes:expr) => {{
        let updated = diesel::update($in_scope.filter(users::updated_at.eq(DbTime($expected))))
            .set($changes)
            .returning(UserRow::as_returning())
            .get_result($c)
            .await
            .optional()?;
        match updated {
            Some(user) => user,
            None => {
                return match $c.user_for_write($in_scope).await? {
                    Some(user) => {
                        let children = children_of_user!($c, user.id)?;
                        Ok(UpdateOutcome::Conflict(UserSnapshot { user, children }))
                    }
                    None => Ok(UpdateOutcome::NotFound),
                };
            }
        }
    }};
}

/// Whether another user of environment `$env` (other than `$except`) has
/// the email and the username `$patch` sets, ignoring case as the unique
/// indexes do (the database folds case on both sides).
macro_rules! taken_by_others {
    ($c:expr, $env:expr, $except:expr, $patch:expr) => {{
        let others = users::table
            .filter(users::environment_id.eq($env))
            .filter(users::id.ne($except));
        macro_rules! taken {
            ($column:expr, $value:expr) => {
                match $value.as_set() {
                    Some(value) => {
                        diesel::select(diesel::dsl::exists(
                            others.filter(lower($column).eq(lower(Some(value.as_str())))),
                        ))
                        .get_result::<bool>($c)
                        .await?
                    }
                    None => false,
                }
            };
        }
        (
            taken!(users::email, $patch.email),
            taken!(users::username, $patch.username),
        )
    }};
}

/// The users of environment `$env` that `$filter` selects, as a boxed query.
macro_rules! filtered_users {
    ($env:expr, $filter:expr) => {{
        let filter: &UserFilter = $filter;
        let mut query = users::table
            .filter(users::environment_id.eq($env))
            .into_boxed();
        if let Some(email) = &filter.email {
            query = query.filter(lower(users::email).eq(lower(Some(email.as_str()))));
        }
        if let Some(name) = &filter.username {
            query = query.filter(lower(users::username).eq(lower(Some(name.as_str()))));
        }
        if let Some(after) = filter.created_after {
            query = query.filter(users::created_at.gt(DbTime(after)));
        }
        if let Some(before) = filter.created_before {
            query = query.filter(users::created_at.lt(DbTime(before)));
        }
        query
    }};
}

/// The common lookups of `Query.users`; every set condition must hold.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Exact email, ignoring case.
    pub email: Option<String>,
    /// Exact username, ignoring case.
    pub username: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// A position in the users list, which is ordered by creation time, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserPosition {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl UserPosition {
    /// The position of `user` in the list.
    pub fn of(user: &UserRow) -> Self {
        UserPosition {
            created_at: user.created_at.0,
            id: user.id.0,
        }
    }
}

/// A change to one nested record, made under the user's compare-and-set.
#[derive(Debug, Clone, Copy)]
pub enum ChildChange {
    RevokeSession(Uuid),
    RemoveMfaDevice(Uuid),
    SetDefaultMfaDevice(Uuid),
}

/// What a compare-and-set delete did.
#[derive(Debug)]
pub enum DeleteOutcome {
    Deleted,
    /// The stored version is not the expected one; the user as it now is.
    Conflict(Box<UserSnapshot>),
    NotFound,
}

/// The columns a new user starts with before its input is applied.
#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUser {
    id: DbId,
    environment_id: DbId,
    new_user: bool,
    first_visit: DbTime,
    last_visit: DbTime,
    created_at: DbTime,
    updated_at: DbTime,
}

impl Repo {
    /// One user of the scope's environment.
    pub async fn user(&self, scope: Scope, id: Uuid) -> Result<Option<UserRow>, DbError> {
        let mut conn = self.db.conn().await?;
        let user = with_conn!(&mut conn, c => {
            user_in_scope(scope, id)
                .select(UserRow::as_select())
                .first(c)
                .await
                .optional()
        })?;
        Ok(user)
    }

    /// Up to `limit` users of the scope's environment that `filter` selects,
    /// in list order, starting after `after`.
    pub async fn users(
        &self,
        scope: Scope,
        filter: &UserFilter,
        after: Option<UserPosition>,
        limit: i64,
    ) -> Result<Vec<UserRow>, DbError> {
        let env = DbId(scope.environment_id);
        let mut conn = self.db.conn().await?;
        let rows = with_conn!(&mut conn, c => {
            let mut query = filtered_users!(env, filter);
            if let Some(after) = after {
                let at = DbTime(after.created_at);
                query = query.filter(
                    users::created_at
                        .gt(at)
                        .or(users::created_at.eq(at).and(users::id.gt(DbId(after.id)))),
                );
            }
            query
                .order((users::created_at, users::id))
                .limit(limit)
                .select(UserRow::as_select())
                .load(c)
                .await
        })?;
        Ok(rows)
    }

    /// How many users of the scope's environment `filter` selects.
    pub async fn count_users(&self, scope: Scope, filter: &UserFilter) -> Result<i64, DbError> {
        let env = DbId(scope.environment_id);
        let mut conn = self.db.conn().await?;
        let count = with_conn!(&mut conn, c => {
            filtered_users!(env, filter).count().get_result::<i64>(c).await
        })?;
        Ok(count)
    }

    /// Creates a user in the scope's environment from `input`, under the
    /// same rules as an update of a user that has no values yet.
    pub async fn create_user(
        &self,
        scope: Scope,
        input: UserPatch<String>,
    ) -> Result<UpdateOutcome, DbError> {
        let (patch, input_errors) = input.check();
        let now = DbTime(truncate_to_micros(self.clock.now()));
        let new = NewUser {
            id: DbId(Uuid::new_v4()),
            environment_id: DbId(scope.environment_id),
            new_user: true,
            first_visit: now,
            last_visit: now,
            created_at: now,
            updated_at: now,
        };
        let mut conn = self.db.conn().await?;
        let outcome = write_transaction!(&mut conn, c -> Result<UpdateOutcome, DbError> => {
            let (email_taken, username_taken) = taken_by_others!(c, new.environment_id, new.id, patch);
            let facts = StoredFacts {
                first_visit: now.0,
                last_visit: now.0,
                credential_ids: Vec::new(),
                email_taken,
                username_taken,
            };
            let mut errors = input_errors;
            errors.extend(check_against_stored(&patch, &facts));
            if !errors.is_empty() {
                return Ok(UpdateOutcome::Invalid(errors));
            }
            diesel::insert_into(users::table).values(&new).execute(c).await?;
            // The input goes through the same column mapping as an update.
            let user = diesel::update(users::table.filter(users::id.eq(new.id)))
                .set(changes(patch, now.0))
                .returning(UserRow::as_returning())
                .get_result(c)
                .await?;
            Ok(UpdateOutcome::Updated(UserSnapshot { user, children: Default::default() }))
        });
        taken_as_field_error(outcome)
    }

    /// Applies `input` to the user only if its stored `updated_at` is still
    /// `expected`, and returns the user with its nested lists as they are
    /// right after, read in the same transaction.
    pub async fn update_user(
        &self,
        scope: Scope,
        id: Uuid,
        expected: DateTime<Utc>,
        input: UserPatch<String>,
    ) -> Result<UpdateOutcome, DbError> {
        let (patch, input_errors) = input.check();
        let new_version = next_updated_at(self.clock.now(), expected);
        let env = DbId(scope.environment_id);
        let mut conn = self.db.conn().await?;
        let outcome = write_transaction!(&mut conn, c -> Result<UpdateOutcome, DbError> => {
            let in_scope = user_in_scope(scope, id);
            let current = current_at_version!(c, in_scope, expected);

            let credential_ids = if patch.last_verified_credential_id.is_keep() {
                Vec::new()
            } else {
                verified_credentials::table
                    .filter(verified_credentials::user_id.eq(current.id))
                    .select(verified_credentials::id)
                    .load::<DbId>(c)
                    .await?
                    .into_iter()
                    .map(|id| id.0)
                    .collect()
            };
            let (email_taken, username_taken) = taken_by_others!(c, env, current.id, patch);
            let facts = StoredFacts {
                first_visit: current.first_visit.0,
                last_visit: current.last_visit.0,
                credential_ids,
                email_taken,
                username_taken,
            };
            let mut errors = input_errors;
            errors.extend(check_against_stored(&patch, &facts));
            if !errors.is_empty() {
                return Ok(UpdateOutcome::Invalid(errors));
            }
            if patch.is_empty() {
                let children = children_of_user!(c, current.id)?;
                return Ok(UpdateOutcome::Updated(UserSnapshot { user: current, children }));
            }
            let user = compare_and_set!(c, in_scope, expected, changes(patch, new_version));
            let children = children_of_user!(c, user.id)?;
            Ok(UpdateOutcome::Updated(UserSnapshot { user, children }))
        });
        taken_as_field_error(outcome)
    }

    /// Changes one nested record of the user, and moves the user's version,
    /// only if its stored `updated_at` is still `expected`: a client holding
    /// an older version learns that the user changed.
    pub async fn change_child(
        &self,
        scope: Scope,
        user_id: Uuid,
        expected: DateTime<Utc>,
        change: ChildChange,
    ) -> Result<UpdateOutcome, DbError> {
        let now = self.clock.now();
        let new_version = next_updated_at(now, expected);
        let mut conn = self.db.conn().await?;
        write_transaction!(&mut conn, c -> Result<UpdateOutcome, DbError> => {
            let in_scope = user_in_scope(scope, user_id);
            let current = current_at_version!(c, in_scope, expected);
            let owned = match change {
                ChildChange::RevokeSession(id) => {
                    diesel::select(diesel::dsl::exists(
                        sessions::table
                            .filter(sessions::id.eq(DbId(id)))
                            .filter(sessions::user_id.eq(current.id)),
                    ))
                    .get_result::<bool>(c)
                    .await?
                }
                ChildChange::RemoveMfaDevice(id) | ChildChange::SetDefaultMfaDevice(id) => {
                    diesel::select(diesel::dsl::exists(
                        mfa_devices::table
                            .filter(mfa_devices::id.eq(DbId(id)))
                            .filter(mfa_devices::user_id.eq(current.id)),
                    ))
                    .get_result::<bool>(c)
                    .await?
                }
            };
            if !owned {
                return Ok(UpdateOutcome::Invalid(vec![unknown_child(change)]));
            }
            let user = compare_and_set!(c, in_scope, expected, users::updated_at.eq(DbTime(new_version)));
            match change {
                ChildChange::RevokeSession(id) => {
                    diesel::update(sessions::table.filter(sessions::id.eq(DbId(id))))
                        .filter(sessions::revoked_at.is_null())
                        .set(sessions::revoked_at.eq(Some(DbTime(truncate_to_micros(now)))))
                        .execute(c)
                        .await?;
                }
                ChildChange::RemoveMfaDevice(id) => {
                    diesel::delete(mfa_devices::table.filter(mfa_devices::id.eq(DbId(id))))
                        .execute(c)
                        .await?;
                    // Keep one default device while any remain: the oldest.
                    let has_default = diesel::select(diesel::dsl::exists(
                        mfa_devices::table
                            .filter(mfa_devices::user_id.eq(user.id))
                            .filter(mfa_devices::is_default.eq(true)),
                    ))
                    .get_result::<bool>(c)
                    .await?;
                    if !has_default {
                        let oldest = mfa_devices::table
                            .filter(mfa_devices::user_id.eq(user.id))
                            .order((mfa_devices::created_at, mfa_devices::id))
                            .select(mfa_devices::id)
                            .first::<DbId>(c)
                            .await
                            .optional()?;
                        if let Some(oldest) = oldest {
                            diesel::update(mfa_devices::table.filter(mfa_devices::id.eq(oldest)))
                                .set(mfa_devices::is_default.eq(true))
                                .execute(c)
                                .await?;
                        }
                    }
                }
                ChildChange::SetDefaultMfaDevice(id) => {
                    diesel::update(mfa_devices::table.filter(mfa_devices::user_id.eq(user.id)))
                        .set(mfa_devices::is_default.eq(mfa_devices::id.eq(DbId(id))))
                        .execute(c)
                        .await?;
                }
            }
            let children = children_of_user!(c, user.id)?;
            Ok(UpdateOutcome::Updated(UserSnapshot { user, children }))
        })
    }

    /// Deletes the user and its nested records only if its stored
    /// `updated_at` is still `expected`.
    pub async fn delete_user(
        &self,
        scope: Scope,
        id: Uuid,
        expected: DateTime<Utc>,
    ) -> Result<DeleteOutcome, DbError> {
        let mut conn = self.db.conn().await?;
        write_transaction!(&mut conn, c -> Result<DeleteOutcome, DbError> => {
            let in_scope = user_in_scope(scope, id);
            // Nested rows go with the user through ON DELETE CASCADE.
            let deleted = diesel::delete(in_scope.filter(users::updated_at.eq(DbTime(expected))))
                .execute(c)
                .await?;
            if deleted == 1 {
                return Ok(DeleteOutcome::Deleted);
            }
            match c.user_for_write(in_scope).await? {
                Some(user) => {
                    let children = children_of_user!(c, user.id)?;
                    Ok(DeleteOutcome::Conflict(Box::new(UserSnapshot { user, children })))
                }
                None => Ok(DeleteOutcome::NotFound),
            }
        })
    }
}

fn unknown_child(change: ChildChange) -> FieldError {
    let (field, what) = match change {
        ChildChange::RevokeSession(_) => ("sessionId", "session"),
        ChildChange::RemoveMfaDevice(_) | ChildChange::SetDefaultMfaDevice(_) => {
            ("deviceId", "MFA device")
        }
    };
    FieldError::new(
        field,
        ErrorCode::NotFound,
        format!("is not a {what} of this user"),
    )
}

/// Turns a unique-index refusal into the `TAKEN` field error it stands for.
fn taken_as_field_error(outcome: Result<UpdateOutcome, DbError>) -> Result<UpdateOutcome, DbError> {
    match outcome {
        Err(DbError::Query(error)) => match taken_field(&error) {
            Some(field) => Ok(UpdateOutcome::Invalid(vec![taken(field)])),
            None => Err(DbError::Query(error)),
        },
        outcome => outcome,
    }
}

fn taken(field: &'static str) -> FieldError {
    FieldError::new(field, ErrorCode::Taken, "is already used by another user")
}

/// The field whose uniqueness a concurrent writer won: the pre-check saw the
/// value free, then the unique index refused it.
fn taken_field(error: &DieselError) -> Option<&'static str> {
    let DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = error else {
        return None;
    };
    // PostgreSQL names the constraint; SQLite names the index in its message.
    let name = info.constraint_name().unwrap_or(info.message());
    UNIQUE_INDEXES
        .iter()
        .find(|(index, _)| name.contains(index))
        .map(|(_, field)| *field)
}

/// The columns a validated patch writes, with the new version.
fn changes(patch: UserPatch, updated_at: DateTime<Utc>) -> UserChanges {
    fn text<T: Into<String>>(p: Patch<T>) -> Option<Option<String>> {
        p.into_change().map(|v| v.map(Into::into))
    }
    // Validation refuses `null` on these, so a clear never reaches here.
    fn required<T, U>(p: Patch<T>, f: impl FnOnce(T) -> U) -> Option<U> {
        p.into_change().flatten().map(f)
    }
    UserChanges {
        last_verified_credential_id: patch
            .last_verified_credential_id
            .into_change()
            .map(|v| v.map(DbId)),
        scope: text(patch.scope),
        new_user: required(patch.new_user, |v| v),
        first_visit: required(patch.first_visit, DbTime),
        last_visit: required(patch.last_visit, DbTime),
        alias: text(patch.alias),
        first_name: text(patch.first_name),
        last_name: text(patch.last_name),
        job_title: text(patch.job_title),
        t_shirt_size: text(patch.t_shirt_size),
        team: text(patch.team),
        country: text(patch.country),
        email: text(patch.email),
        phone_number: text(patch.phone_number),
        policies_consent: patch.policies_consent.into_change(),
        username: text(patch.username),
        metadata: patch.metadata.into_change().map(|v| v.map(DbJson)),
        mfa_backup_code_acknowledgement: patch
            .mfa_backup_code_acknowledgement
            .into_change()
            .map(|v| v.map(|ack| ack.as_str().to_owned())),
        btc_wallet: text(patch.btc_wallet),
        kda_wallet: text(patch.kda_wallet),
        ltc_wallet: text(patch.ltc_wallet),
        ckb_wallet: text(patch.ckb_wallet),
        kas_wallet: text(patch.kas_wallet),
        doge_wallet: text(patch.doge_wallet),
        email_notification: patch.email_notification.into_change(),
        discord_notification: patch.discord_notification.into_change(),
        newsletter_notification: patch.newsletter_notification.into_change(),
        lists: patch
            .lists
            .into_change()
            .map(|v| v.map(|l| DbJson(l.into()))),
        wallet_public_key: text(patch.wallet_public_key),
        wallet: text(patch.wallet),
        chain: patch
            .chain
            .into_change()
            .map(|v| v.map(|chain| chain.as_str().to_owned())),
        updated_at: DbTime(updated_at),
    }
}
