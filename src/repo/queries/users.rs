//! Users: reads, lists, and the compare-and-set writes (create, update,
//! nested changes, delete).
//!
//! Compiled once per backend (see `repo/pg.rs` and `repo/sqlite.rs`): `Conn`
//! is that backend's connection. The writes run inside the write
//! transaction the caller began (`in_write_transaction!`).

use chrono::{DateTime, Utc};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::children::children_of_user;
use super::history;
use super::{user_for_write, Backend, Conn};
use crate::db::models::{NewUser, UserChanges, UserRow};
use crate::db::schema::{mfa_devices, sessions, users, verified_credentials};
use crate::db::types::{DbId, DbTime};
use crate::domain::{check_against_stored, next_updated_at, FieldError, StoredFacts, UserPatch};
use crate::repo::shared::{
    changed_fields, changes, conflicting, lower, unknown_child, user_in_scope, written_list,
    CheckedInput, Write,
};
use crate::repo::{
    ChildChange, Conflict, ConflictPolicy, CreateOutcome, DeleteOutcome, Relation, RepoError,
    Scope, UpdateOutcome, User, UserFilter, UserPosition, UserSnapshot,
};

/// One user of the scope's environment.
pub async fn user(c: &mut Conn, scope: Scope, id: Uuid) -> Result<Option<User>, RepoError> {
    let row = user_in_scope(scope, id)
        .select(UserRow::as_select())
        .first(c)
        .await
        .optional()?;
    row.map(User::try_from).transpose()
}

/// The users of environment `env` that `filter` selects.
fn filtered_users(env: DbId, filter: &UserFilter) -> users::BoxedQuery<'_, Backend> {
    let mut query = users::table
        .filter(users::environment_id.eq(env))
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
}

/// Up to `limit` users of the scope's environment that `filter` selects,
/// in list order (creation time, then id), starting after `after`.
pub async fn users(
    c: &mut Conn,
    scope: Scope,
    filter: &UserFilter,
    after: Option<UserPosition>,
    limit: i64,
) -> Result<Vec<User>, RepoError> {
    let mut query = filtered_users(DbId(scope.environment_id), filter);
    if let Some(after) = after {
        let at = DbTime(after.created_at);
        query = query.filter(
            users::created_at
                .gt(at)
                .or(users::created_at.eq(at).and(users::id.gt(DbId(after.id)))),
        );
    }
    let rows = query
        .order((users::created_at, users::id))
        .limit(limit)
        .select(UserRow::as_select())
        .load(c)
        .await?;
    rows.into_iter().map(User::try_from).collect()
}

/// How many users of the scope's environment `filter` selects.
pub async fn count_users(
    c: &mut Conn,
    scope: Scope,
    filter: &UserFilter,
) -> Result<i64, RepoError> {
    let env = DbId(scope.environment_id);
    Ok(filtered_users(env, filter).count().get_result(c).await?)
}

/// Whether another user of environment `env` (other than `except`) has the
/// email, and the username, that `patch` sets, ignoring case as the unique
/// indexes do (the database folds case on both sides).
async fn taken_by_others(
    c: &mut Conn,
    env: DbId,
    except: DbId,
    patch: &UserPatch,
) -> Result<(bool, bool), RepoError> {
    let others = || {
        users::table
            .filter(users::environment_id.eq(env))
            .filter(users::id.ne(except))
    };
    let email_taken = match patch.email.as_set() {
        Some(email) => {
            let same = others().filter(lower(users::email).eq(lower(Some(email.as_str()))));
            diesel::select(diesel::dsl::exists(same))
                .get_result(c)
                .await?
        }
        None => false,
    };
    let username_taken = match patch.username.as_set() {
        Some(name) => {
            let same = others().filter(lower(users::username).eq(lower(Some(name.as_str()))));
            diesel::select(diesel::dsl::exists(same))
                .get_result(c)
                .await?
        }
        None => false,
    };
    Ok((email_taken, username_taken))
}

/// Checks `patch` against the stored user and environment; the input's own
/// errors (`input_errors`) come first, then these.
async fn field_errors(
    c: &mut Conn,
    current: &UserRow,
    patch: &UserPatch,
    input_errors: Vec<FieldError>,
) -> Result<Vec<FieldError>, RepoError> {
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
    let (email_taken, username_taken) =
        taken_by_others(c, current.environment_id, current.id, patch).await?;
    let facts = StoredFacts {
        first_visit: current.first_visit.0,
        last_visit: current.last_visit.0,
        credential_ids,
        email_taken,
        username_taken,
    };
    let mut errors = input_errors;
    errors.extend(check_against_stored(patch, &facts));
    Ok(errors)
}

/// A user row with its nested lists, read on `c` (in its transaction).
async fn snapshot(c: &mut Conn, row: UserRow) -> Result<UserSnapshot, RepoError> {
    let children = children_of_user(c, row.id).await?;
    Ok(UserSnapshot {
        user: User::try_from(row)?,
        children,
        loaded: Relation::ALL.to_vec(),
    })
}

/// The conflict of a write that expected version `expected` of the user
/// now at `current`, with what changed since and what of it the write
/// writes too: `written` fields, or the whole user when `None`.
async fn conflict(
    c: &mut Conn,
    scope: Scope,
    expected: DateTime<Utc>,
    current: UserRow,
    written: Option<&[&str]>,
) -> Result<Box<Conflict>, RepoError> {
    let (user, version) = (current.id.0, current.updated_at.0);
    let changes = history::changes_since(c, scope, user, expected, version).await?;
    let conflicting_fields = match written {
        Some(written) => conflicting(&changes, written),
        None => changes.fields.clone(),
    };
    Ok(Box::new(Conflict {
        current: snapshot(c, current).await?,
        changes,
        conflicting_fields,
    }))
}

/// What a write of `written` fields answers for a user that is not at the
/// version it expected: `Conflict` with the user as it is now, or
/// `NotFound`.
async fn not_at_version(
    c: &mut Conn,
    scope: Scope,
    expected: DateTime<Utc>,
    current: Option<UserRow>,
    written: &[&str],
) -> Result<UpdateOutcome, RepoError> {
    match current {
        Some(current) => Ok(UpdateOutcome::Conflict(
            conflict(c, scope, expected, current, Some(written)).await?,
        )),
        None => Ok(UpdateOutcome::NotFound),
    }
}

/// The compare-and-set itself: writes `changes` (which include the new
/// `updated_at`) only where the stored version is still `expected`. `None`
/// when another writer, of any process, got there first or deleted the user.
pub async fn compare_and_set(
    c: &mut Conn,
    scope: Scope,
    id: Uuid,
    expected: DateTime<Utc>,
    changes: UserChanges,
) -> Result<Option<UserRow>, RepoError> {
    let at_version = user_in_scope(scope, id).filter(users::updated_at.eq(DbTime(expected)));
    Ok(diesel::update(at_version)
        .set(changes)
        .returning(UserRow::as_returning())
        .get_result(c)
        .await
        .optional()?)
}

/// Creates the user `new` from `patch` under the same rules as an update of
/// a user that has no values yet.
pub async fn create_user(
    c: &mut Conn,
    new: NewUser,
    patch: UserPatch,
    input_errors: Vec<FieldError>,
    write: Write,
) -> Result<CreateOutcome, RepoError> {
    let (email_taken, username_taken) =
        taken_by_others(c, new.environment_id, new.id, &patch).await?;
    let facts = StoredFacts {
        first_visit: new.first_visit.0,
        last_visit: new.last_visit.0,
        credential_ids: Vec::new(),
        email_taken,
        username_taken,
    };
    let mut errors = input_errors;
    errors.extend(check_against_stored(&patch, &facts));
    if !errors.is_empty() {
        return Ok(CreateOutcome::Invalid(errors));
    }
    let blank = diesel::insert_into(users::table)
        .values(&new)
        .returning(UserRow::as_returning())
        .get_result(c)
        .await?;
    // The input goes through the same column mapping as an update.
    let row = diesel::update(users::table.filter(users::id.eq(new.id)))
        .set(changes(patch, new.created_at.0))
        .returning(UserRow::as_returning())
        .get_result(c)
        .await?;
    let scope = Scope {
        environment_id: new.environment_id.0,
        token_id: write.token_id,
    };
    let versions = (None, row.updated_at.0);
    let entry = write.entry(scope, row.id.0, versions, &changed_fields(&blank, &row));
    history::record(c, entry).await?;
    Ok(CreateOutcome::Created(Box::new(UserSnapshot {
        user: User::try_from(row)?,
        children: Default::default(),
        loaded: Relation::ALL.to_vec(),
    })))
}

/// Applies the input to the user only if its stored `updated_at` is still
/// `expected` (or, under [`ConflictPolicy::MergeIfDisjoint`], to the
/// current version when none of the fields the input writes changed since
/// `expected`), records the write in the history, and returns the user with
/// its nested lists as they are right after. The input's own errors are
/// reported with the rest.
pub async fn update_user(
    c: &mut Conn,
    scope: Scope,
    id: Uuid,
    expected: DateTime<Utc>,
    input: CheckedInput,
    write: Write,
    policy: ConflictPolicy,
) -> Result<UpdateOutcome, RepoError> {
    // Read first (and lock, on PostgreSQL): the rules need the stored user,
    // and the answer's nested lists must belong to the version it carries.
    let current = match user_for_write(c, user_in_scope(scope, id)).await? {
        None => return Ok(UpdateOutcome::NotFound),
        Some(current) => current,
    };
    if current.updated_at.0 == expected {
        return apply(c, scope, current, input, write).await;
    }
    let version = current.updated_at.0;
    let changes = history::changes_since(c, scope, id, expected, version).await?;
    let conflicting_fields = conflicting(&changes, &input.written);
    let disjoint = changes.complete && conflicting_fields.is_empty();
    if disjoint && policy == ConflictPolicy::MergeIfDisjoint {
        // `current` stays locked until this transaction ends (on SQLite the
        // whole file is), so the write below is still a compare-and-set on
        // the version the decision was made on.
        let write = Write {
            merged: true,
            ..write
        };
        return apply(c, scope, current, input, write).await;
    }
    Ok(UpdateOutcome::Conflict(Box::new(Conflict {
        current: snapshot(c, current).await?,
        changes,
        conflicting_fields,
    })))
}

/// Applies a checked input to `current`, the user as read for this write.
async fn apply(
    c: &mut Conn,
    scope: Scope,
    current: UserRow,
    CheckedInput {
        patch,
        errors,
        written,
    }: CheckedInput,
    write: Write,
) -> Result<UpdateOutcome, RepoError> {
    let answer = |snapshot| match write.merged {
        true => UpdateOutcome::Merged(snapshot),
        false => UpdateOutcome::Updated(snapshot),
    };
    let errors = field_errors(c, &current, &patch, errors).await?;
    if !errors.is_empty() {
        return Ok(UpdateOutcome::Invalid(errors));
    }
    if patch.is_empty() {
        return Ok(answer(snapshot(c, current).await?));
    }
    let (id, base) = (current.id.0, current.updated_at.0);
    let new_version = next_updated_at(write.at, base);
    let changes = changes(patch, new_version);
    let Some(updated) = compare_and_set(c, scope, id, base, changes).await? else {
        let now = user_for_write(c, user_in_scope(scope, id)).await?;
        return not_at_version(c, scope, base, now, &written).await;
    };
    history::record(c, write.update_entry(scope, &current, &updated)).await?;
    Ok(answer(snapshot(c, updated).await?))
}

/// Whether the nested record that `change` names belongs to user `user`.
async fn owns(c: &mut Conn, user: DbId, change: ChildChange) -> Result<bool, RepoError> {
    let owned = match change {
        ChildChange::RevokeSession(id) => {
            let session = sessions::table
                .filter(sessions::id.eq(DbId(id)))
                .filter(sessions::user_id.eq(user));
            diesel::select(diesel::dsl::exists(session))
                .get_result(c)
                .await?
        }
        ChildChange::RemoveMfaDevice(id) | ChildChange::SetDefaultMfaDevice(id) => {
            let device = mfa_devices::table
                .filter(mfa_devices::id.eq(DbId(id)))
                .filter(mfa_devices::user_id.eq(user));
            diesel::select(diesel::dsl::exists(device))
                .get_result(c)
                .await?
        }
    };
    Ok(owned)
}

/// Removes MFA device `device` of `user`; if it was the default, the
/// oldest remaining device becomes the default.
async fn remove_mfa_device(c: &mut Conn, user: DbId, device: DbId) -> Result<(), RepoError> {
    diesel::delete(mfa_devices::table.filter(mfa_devices::id.eq(device)))
        .execute(c)
        .await?;
    let of_user = mfa_devices::table.filter(mfa_devices::user_id.eq(user));
    let has_default = diesel::select(diesel::dsl::exists(
        of_user.filter(mfa_devices::is_default.eq(true)),
    ))
    .get_result::<bool>(c)
    .await?;
    if has_default {
        return Ok(());
    }
    let oldest = of_user
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
    Ok(())
}

/// Changes one nested record of the user, and moves the user's version,
/// only if its stored `updated_at` is still `expected`: a client holding an
/// older version learns that the user changed.
pub async fn change_child(
    c: &mut Conn,
    scope: Scope,
    user_id: Uuid,
    expected: DateTime<Utc>,
    change: ChildChange,
    write: Write,
) -> Result<UpdateOutcome, RepoError> {
    let written = [written_list(change)];
    let current = match user_for_write(c, user_in_scope(scope, user_id)).await? {
        Some(current) if current.updated_at.0 == expected => current,
        other => return not_at_version(c, scope, expected, other, &written).await,
    };
    if !owns(c, current.id, change).await? {
        return Ok(UpdateOutcome::Invalid(vec![unknown_child(change)]));
    }
    let new_version = next_updated_at(write.at, expected);
    let version_only = changes(UserPatch::default(), new_version);
    let Some(user) = compare_and_set(c, scope, user_id, expected, version_only).await? else {
        let current = user_for_write(c, user_in_scope(scope, user_id)).await?;
        return not_at_version(c, scope, expected, current, &written).await;
    };
    let now = write.at;
    match change {
        ChildChange::RevokeSession(id) => {
            diesel::update(sessions::table.filter(sessions::id.eq(DbId(id))))
                .filter(sessions::revoked_at.is_null())
                .set(sessions::revoked_at.eq(Some(DbTime(now))))
                .execute(c)
                .await?;
        }
        ChildChange::RemoveMfaDevice(id) => remove_mfa_device(c, user.id, DbId(id)).await?,
        ChildChange::SetDefaultMfaDevice(id) => {
            diesel::update(mfa_devices::table.filter(mfa_devices::user_id.eq(user.id)))
                .set(mfa_devices::is_default.eq(mfa_devices::id.eq(DbId(id))))
                .execute(c)
                .await?;
        }
    }
    let entry = write.entry(scope, user_id, (Some(expected), new_version), &written);
    history::record(c, entry).await?;
    Ok(UpdateOutcome::Updated(snapshot(c, user).await?))
}

/// Deletes the user and its nested records only if its stored `updated_at`
/// is still `expected`. The history keeps the deletion, as a version after
/// the last one.
pub async fn delete_user(
    c: &mut Conn,
    scope: Scope,
    id: Uuid,
    expected: DateTime<Utc>,
    write: Write,
) -> Result<DeleteOutcome, RepoError> {
    // Nested rows go with the user through ON DELETE CASCADE.
    let at_version = user_in_scope(scope, id).filter(users::updated_at.eq(DbTime(expected)));
    let deleted = diesel::delete(at_version).execute(c).await?;
    if deleted == 1 {
        let versions = (Some(expected), next_updated_at(write.at, expected));
        history::record(c, write.entry(scope, id, versions, &[])).await?;
        return Ok(DeleteOutcome::Deleted);
    }
    match user_for_write(c, user_in_scope(scope, id)).await? {
        Some(current) => Ok(DeleteOutcome::Conflict(
            conflict(c, scope, expected, current, None).await?,
        )),
        None => Ok(DeleteOutcome::NotFound),
    }
}
