//! Users: read one, and the compare-and-set update.

use chrono::{DateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::children::children_of_user;
use super::{Repo, Scope, UpdateOutcome, UserSnapshot};
use crate::db::models::{UserChanges, UserRow};
use crate::db::schema::{users, verified_credentials};
use crate::db::types::{DbId, DbJson, DbTime};
use crate::db::DbError;
use crate::domain::{
    check_against_stored, next_updated_at, ErrorCode, FieldError, Patch, StoredFacts, UserPatch,
};
use crate::{with_conn, write_transaction};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>);

/// Names of the unique indexes behind the `TAKEN` field errors (see migrations).
const UNIQUE_INDEXES: [(&str, &str); 2] = [
    ("users_email_unique", "email"),
    ("users_username_unique", "username"),
];

impl Repo {
    /// One user of the scope's environment.
    pub async fn user(&self, scope: Scope, id: Uuid) -> Result<Option<UserRow>, DbError> {
        let mut conn = self.db.conn().await?;
        let user = with_conn!(&mut conn, c => {
            users::table
                .filter(users::id.eq(DbId(id)))
                .filter(users::environment_id.eq(DbId(scope.environment_id)))
                .select(UserRow::as_select())
                .first(c)
                .await
                .optional()
        })?;
        Ok(user)
    }

    /// Applies `input` to the user only if its stored `updated_at` is still
    /// `expected`, and returns the user with its nested lists as they are
    /// right after, read in the same transaction.
    ///
    /// The decision is the database's: the `UPDATE … WHERE updated_at = $expected`
    /// matches no row when another writer (of any process) got there first.
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
            let in_scope = users::table
                .filter(users::id.eq(DbId(id)))
                .filter(users::environment_id.eq(env));
            let Some(current) = in_scope
                .select(UserRow::as_select())
                .first(c)
                .await
                .optional()?
            else {
                return Ok(UpdateOutcome::NotFound);
            };
            if current.updated_at.0 != expected {
                let children = children_of_user!(c, current.id)?;
                return Ok(UpdateOutcome::Conflict(UserSnapshot { user: current, children }));
            }

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
            let others = users::table
                .filter(users::environment_id.eq(env))
                .filter(users::id.ne(current.id));
            let email_taken = match patch.email.as_set() {
                Some(email) => {
                    diesel::select(diesel::dsl::exists(
                        others.filter(lower(users::email).eq(lower(Some(email.as_str())))),
                    ))
                    .get_result::<bool>(c)
                    .await?
                }
                None => false,
            };
            let username_taken = match patch.username.as_set() {
                Some(name) => {
                    diesel::select(diesel::dsl::exists(
                        others.filter(lower(users::username).eq(lower(Some(name.as_str())))),
                    ))
                    .get_result::<bool>(c)
                    .await?
                }
                None => false,
            };
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

            let updated = diesel::update(in_scope.filter(users::updated_at.eq(DbTime(expected))))
                .set(changes(patch, new_version))
                .returning(UserRow::as_returning())
                .get_result(c)
                .await
                .optional()?;
            match updated {
                Some(user) => {
                    let children = children_of_user!(c, user.id)?;
                    Ok(UpdateOutcome::Updated(UserSnapshot { user, children }))
                }
                // Another writer changed or deleted the row after we read it.
                None => match in_scope.select(UserRow::as_select()).first(c).await.optional()? {
                    Some(user) => {
                        let children = children_of_user!(c, user.id)?;
                        Ok(UpdateOutcome::Conflict(UserSnapshot { user, children }))
                    }
                    None => Ok(UpdateOutcome::NotFound),
                },
            }
        });
        match outcome {
            Err(DbError::Query(error)) => match taken_field(&error) {
                Some(field) => Ok(UpdateOutcome::Invalid(vec![taken(field)])),
                None => Err(DbError::Query(error)),
            },
            outcome => outcome,
        }
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
