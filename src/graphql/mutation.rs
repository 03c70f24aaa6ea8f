//! Mutation root and its typed results.

use async_graphql::{Context, Object, Result, SimpleObject, Union, ID};
use uuid::Uuid;

use super::enums::{FieldErrorCode, OnConflict};
use super::errors::repo_failure;
use super::inputs::{CreateUserInput, UpdateUserInput};
use super::outcome::{record, Outcome};
use super::query::parse_id;
use super::scalars::Timestamp;
use super::types::{selected_relations, User};
use crate::domain;
use crate::repo::{
    ChildChange, Conflict, CreateOutcome, DeleteOutcome, Repo, Scope, UpdateOutcome,
};

/// The user after a successful update.
#[derive(SimpleObject)]
pub struct UpdateUserSuccess {
    /// The user as written, with its nested records.
    pub user: User,
    /// True when the user had changed since `expectedUpdatedAt` and the
    /// input was applied to the current version (`onConflict:
    /// MERGE_IF_DISJOINT`); false for a plain compare-and-set.
    pub merged: bool,
}

/// The user changed since the version the client holds; nothing was written.
#[derive(SimpleObject)]
pub struct UpdateConflict {
    /// What happened, for people.
    pub message: String,
    /// The version the client sent.
    pub expected_updated_at: Timestamp,
    /// The user as it is now; retry against its `updatedAt`.
    pub current_user: User,
    /// The fields and nested lists of `User` changed since
    /// `expectedUpdatedAt`, by name, sorted.
    pub changed_fields: Vec<String>,
    /// Those of `changedFields` that this write sets or clears too: the
    /// ones to reconcile before retrying. Every changed field for
    /// `deleteUser`.
    pub conflicting_fields: Vec<String>,
    /// False when the history kept does not reach back to
    /// `expectedUpdatedAt` (it was pruned, or never was a version of this
    /// user): `changedFields` then lists only the changes still kept, and
    /// `MERGE_IF_DISJOINT` does not merge.
    pub changed_fields_complete: bool,
}

/// No user with this id in your environment.
#[derive(SimpleObject)]
pub struct UserNotFound {
    /// What happened, for people.
    pub message: String,
    /// The id asked for.
    pub id: ID,
}

/// The input broke one or more rules; nothing was written.
#[derive(SimpleObject)]
pub struct ValidationFailed {
    /// How many fields were refused, for people.
    pub message: String,
    /// Every refused field, each with its reason.
    pub field_errors: Vec<FieldError>,
}

/// One refused input field.
#[derive(SimpleObject)]
pub struct FieldError {
    /// The input field's name, as in the input type.
    pub field: String,
    /// Why it was refused; a stable code to switch on.
    pub code: FieldErrorCode,
    /// The reason, for people.
    pub message: String,
}

impl From<domain::FieldError> for FieldError {
    fn from(error: domain::FieldError) -> Self {
        FieldError {
            field: error.field.to_owned(),
            code: error.code.into(),
            message: error.message,
        }
    }
}

/// What `updateUser` did.
#[derive(Union)]
pub enum UpdateUserResult {
    UpdateUserSuccess(UpdateUserSuccess),
    UpdateConflict(UpdateConflict),
    UserNotFound(UserNotFound),
    ValidationFailed(ValidationFailed),
}

/// The user was created.
#[derive(SimpleObject)]
pub struct CreateUserSuccess {
    /// The new user.
    pub user: User,
}

/// What `createUser` did.
#[derive(Union)]
pub enum CreateUserResult {
    CreateUserSuccess(CreateUserSuccess),
    ValidationFailed(ValidationFailed),
}

/// The user and its nested records were deleted.
#[derive(SimpleObject)]
pub struct DeleteUserSuccess {
    /// The id of the deleted user.
    pub id: ID,
}

/// What `deleteUser` did.
#[derive(Union)]
pub enum DeleteUserResult {
    DeleteUserSuccess(DeleteUserSuccess),
    UpdateConflict(UpdateConflict),
    UserNotFound(UserNotFound),
}

pub(super) fn user_not_found(id: ID) -> UserNotFound {
    UserNotFound {
        message: "user not found".into(),
        id,
    }
}

fn conflict(expected_updated_at: Timestamp, conflict: Conflict) -> UpdateConflict {
    UpdateConflict {
        message: "the user changed since the version you hold".into(),
        expected_updated_at,
        current_user: User::from_snapshot(conflict.current),
        changed_fields: conflict.changes.fields,
        conflicting_fields: conflict.conflicting_fields,
        changed_fields_complete: conflict.changes.complete,
    }
}

fn validation_failed(errors: Vec<domain::FieldError>) -> ValidationFailed {
    ValidationFailed {
        message: format!("{} field(s) failed validation", errors.len()),
        field_errors: errors.into_iter().map(FieldError::from).collect(),
    }
}

/// The GraphQL result of a compare-and-set write on user `id`.
fn update_result(
    ctx: &Context<'_>,
    id: ID,
    expected: Timestamp,
    outcome: UpdateOutcome,
) -> UpdateUserResult {
    record(
        ctx,
        match &outcome {
            UpdateOutcome::Updated(_) | UpdateOutcome::Merged(_) => Outcome::Success,
            UpdateOutcome::Conflict(_) => Outcome::Conflict,
            UpdateOutcome::NotFound => Outcome::NotFound,
            UpdateOutcome::Invalid(_) => Outcome::ValidationFailed,
        },
    );
    match outcome {
        UpdateOutcome::Updated(snapshot) => {
            UpdateUserResult::UpdateUserSuccess(UpdateUserSuccess {
                user: User::from_snapshot(snapshot),
                merged: false,
            })
        }
        UpdateOutcome::Merged(snapshot) => UpdateUserResult::UpdateUserSuccess(UpdateUserSuccess {
            user: User::from_snapshot(snapshot),
            merged: true,
        }),
        UpdateOutcome::Conflict(current) => {
            UpdateUserResult::UpdateConflict(conflict(expected, *current))
        }
        UpdateOutcome::NotFound => UpdateUserResult::UserNotFound(user_not_found(id)),
        UpdateOutcome::Invalid(errors) => {
            UpdateUserResult::ValidationFailed(validation_failed(errors))
        }
    }
}

/// Runs a nested-record change on user `user_id` (see `Repo::change_child`).
async fn change_child(
    ctx: &Context<'_>,
    user_id: ID,
    expected: Timestamp,
    child_id: &ID,
    change: fn(Uuid) -> ChildChange,
) -> Result<UpdateUserResult> {
    let Some(user) = parse_id(&user_id) else {
        record(ctx, Outcome::NotFound);
        return Ok(UpdateUserResult::UserNotFound(user_not_found(user_id)));
    };
    // The nil UUID is never assigned (ids are random v4), so an id that is
    // not a UUID is reported like any id of no record of this user.
    let child = parse_id(child_id).unwrap_or(Uuid::nil());
    let repo = ctx.data::<Repo>()?;
    let scope = ctx.data::<Scope>()?;
    let outcome = repo
        .change_child(*scope, user, expected.0, change(child))
        .await
        .map_err(repo_failure)?;
    Ok(update_result(ctx, user_id, expected, outcome))
}

/// The write operations.
pub struct MutationRoot;

/// The write operations: each changes a user only if it is still at the
/// version the client holds.
#[Object(name = "Mutation")]
impl MutationRoot {
    /// Applies a partial update if `expectedUpdatedAt` is still the user's
    /// `updatedAt`; otherwise answers `UpdateConflict` with the current user
    /// and what changed (or merges, on request: see `onConflict`).
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] id: ID,
        #[graphql(
            desc = "The user's `updatedAt` as you last read it: the version this write expects."
        )]
        expected_updated_at: Timestamp,
        #[graphql(desc = "The fields to change: absent keeps, null clears, a value sets.")]
        input: UpdateUserInput,
        #[graphql(
            desc = "What to do when the user changed since `expectedUpdatedAt`.",
            default
        )]
        on_conflict: OnConflict,
    ) -> Result<UpdateUserResult> {
        let Some(user_id) = parse_id(&id) else {
            record(ctx, Outcome::NotFound);
            return Ok(UpdateUserResult::UserNotFound(user_not_found(id)));
        };
        let repo = ctx.data::<Repo>()?;
        let scope = ctx.data::<Scope>()?;
        let outcome = repo
            .update_user(
                *scope,
                user_id,
                expected_updated_at.0,
                input.into_patch(),
                &selected_relations(&ctx.look_ahead().field("user")),
                on_conflict.into(),
            )
            .await
            .map_err(repo_failure)?;
        Ok(update_result(ctx, id, expected_updated_at, outcome))
    }

    /// Creates a user in your environment.
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new user's fields.")] input: CreateUserInput,
    ) -> Result<CreateUserResult> {
        let repo = ctx.data::<Repo>()?;
        let scope = ctx.data::<Scope>()?;
        let outcome = repo
            .create_user(*scope, input.into_patch())
            .await
            .map_err(repo_failure)?;
        record(
            ctx,
            match &outcome {
                CreateOutcome::Created(_) => Outcome::Success,
                CreateOutcome::Invalid(_) => Outcome::ValidationFailed,
            },
        );
        Ok(match outcome {
            CreateOutcome::Created(snapshot) => {
                CreateUserResult::CreateUserSuccess(CreateUserSuccess {
                    user: User::from_snapshot(*snapshot),
                })
            }
            CreateOutcome::Invalid(errors) => {
                CreateUserResult::ValidationFailed(validation_failed(errors))
            }
        })
    }

    /// Deletes the user and its nested records if `expectedUpdatedAt` is
    /// still the user's `updatedAt`.
    async fn delete_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] id: ID,
        #[graphql(
            desc = "The user's `updatedAt` as you last read it: the version this write expects."
        )]
        expected_updated_at: Timestamp,
    ) -> Result<DeleteUserResult> {
        let Some(user_id) = parse_id(&id) else {
            record(ctx, Outcome::NotFound);
            return Ok(DeleteUserResult::UserNotFound(user_not_found(id)));
        };
        let repo = ctx.data::<Repo>()?;
        let scope = ctx.data::<Scope>()?;
        let outcome = repo
            .delete_user(*scope, user_id, expected_updated_at.0)
            .await
            .map_err(repo_failure)?;
        record(
            ctx,
            match &outcome {
                DeleteOutcome::Deleted => Outcome::Success,
                DeleteOutcome::Conflict(_) => Outcome::Conflict,
                DeleteOutcome::NotFound => Outcome::NotFound,
            },
        );
        Ok(match outcome {
            DeleteOutcome::Deleted => DeleteUserResult::DeleteUserSuccess(DeleteUserSuccess { id }),
            DeleteOutcome::Conflict(current) => {
                DeleteUserResult::UpdateConflict(conflict(expected_updated_at, *current))
            }
            DeleteOutcome::NotFound => DeleteUserResult::UserNotFound(user_not_found(id)),
        })
    }

    /// Revokes one of the user's sessions; moves the user's `updatedAt`.
    async fn revoke_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] user_id: ID,
        #[graphql(
            desc = "The user's `updatedAt` as you last read it: the version this write expects."
        )]
        expected_updated_at: Timestamp,
        #[graphql(desc = "The session to revoke.")] session_id: ID,
    ) -> Result<UpdateUserResult> {
        change_child(
            ctx,
            user_id,
            expected_updated_at,
            &session_id,
            ChildChange::RevokeSession,
        )
        .await
    }

    /// Removes one of the user's MFA devices (the oldest remaining one
    /// becomes the default if this was it); moves the user's `updatedAt`.
    async fn remove_mfa_device(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] user_id: ID,
        #[graphql(
            desc = "The user's `updatedAt` as you last read it: the version this write expects."
        )]
        expected_updated_at: Timestamp,
        #[graphql(desc = "The MFA device.")] device_id: ID,
    ) -> Result<UpdateUserResult> {
        change_child(
            ctx,
            user_id,
            expected_updated_at,
            &device_id,
            ChildChange::RemoveMfaDevice,
        )
        .await
    }

    /// Makes one of the user's MFA devices its default; moves the user's `updatedAt`.
    async fn set_default_mfa_device(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] user_id: ID,
        #[graphql(
            desc = "The user's `updatedAt` as you last read it: the version this write expects."
        )]
        expected_updated_at: Timestamp,
        #[graphql(desc = "The MFA device.")] device_id: ID,
    ) -> Result<UpdateUserResult> {
        change_child(
            ctx,
            user_id,
            expected_updated_at,
            &device_id,
            ChildChange::SetDefaultMfaDevice,
        )
        .await
    }
}
