//! Mutation root and its typed results.

use async_graphql::{Context, Object, Result, SimpleObject, Union, ID};

use super::errors::internal;
use super::inputs::UpdateUserInput;
use super::query::parse_id;
use super::scalars::Timestamp;
use super::types::User;
use crate::domain;
use crate::repo::{Repo, Scope, UpdateOutcome};

/// The user after a successful update.
#[derive(SimpleObject)]
pub struct UpdateUserSuccess {
    pub user: User,
}

/// The user changed since the version the client holds; nothing was written.
#[derive(SimpleObject)]
pub struct UpdateConflict {
    pub message: String,
    /// The version the client sent.
    pub expected_updated_at: Timestamp,
    /// The user as it is now; retry against its `updatedAt`.
    pub current_user: User,
}

/// No user with this id in your environment.
#[derive(SimpleObject)]
pub struct UserNotFound {
    pub message: String,
    pub id: ID,
}

/// The input broke one or more rules; nothing was written.
#[derive(SimpleObject)]
pub struct ValidationFailed {
    pub message: String,
    pub field_errors: Vec<FieldError>,
}

/// One refused input field.
#[derive(SimpleObject)]
pub struct FieldError {
    /// The input field's name, as in the input type.
    pub field: String,
    /// A stable code: REQUIRED, BLANK, TOO_LONG, TAKEN, …
    pub code: String,
    pub message: String,
}

impl From<domain::FieldError> for FieldError {
    fn from(error: domain::FieldError) -> Self {
        FieldError {
            field: error.field.to_owned(),
            code: error.code.as_str().to_owned(),
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

fn not_found(id: ID) -> UpdateUserResult {
    UpdateUserResult::UserNotFound(UserNotFound {
        message: "user not found".into(),
        id,
    })
}

/// The write operations.
pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Applies a partial update if `expectedUpdatedAt` is still the user's
    /// `updatedAt`; otherwise answers `UpdateConflict` with the current user.
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_updated_at: Timestamp,
        input: UpdateUserInput,
    ) -> Result<UpdateUserResult> {
        let Some(user_id) = parse_id(&id) else {
            return Ok(not_found(id));
        };
        let repo = ctx.data::<Repo>()?;
        let scope = ctx.data::<Scope>()?;
        let outcome = repo
            .update_user(*scope, user_id, expected_updated_at.0, input.into_patch())
            .await
            .map_err(internal)?;
        Ok(match outcome {
            UpdateOutcome::Updated(snapshot) => {
                UpdateUserResult::UpdateUserSuccess(UpdateUserSuccess {
                    user: User::from_snapshot(snapshot),
                })
            }
            UpdateOutcome::Conflict(current) => UpdateUserResult::UpdateConflict(UpdateConflict {
                message: "the user changed since the version you hold".into(),
                expected_updated_at,
                current_user: User::from_snapshot(current),
            }),
            UpdateOutcome::NotFound => not_found(id),
            UpdateOutcome::Invalid(errors) => {
                UpdateUserResult::ValidationFailed(ValidationFailed {
                    message: format!("{} field(s) failed validation", errors.len()),
                    field_errors: errors.into_iter().map(FieldError::from).collect(),
                })
            }
        })
    }
}
