//! What the queries of both backends share and that needs no connection:
//! the user-in-scope filter, the patch-to-column mapping, the reading of
//! unique-index refusals, and the decoding of a user whose lists came as
//! JSON. Compiled once.

use chrono::{DateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{ExpressionMethods, QueryDsl};
use uuid::Uuid;

use super::records::decode_all;
use super::{ChangesSince, ChildChange, Children, Relation, RepoError, Scope, User, UserSnapshot};
use crate::db::models::{
    ChainalysisCheckRow, MfaDeviceRow, OauthAccountRow, SessionRow, UserChanges, UserHistoryRow,
    UserRow, VerifiedCredentialRow, WalletRow,
};
use crate::db::schema::users;
use crate::db::types::{DbId, DbJson, DbTime};
use crate::domain::{ErrorCode, FieldError, Patch, UserOperation, UserPatch};

pub(crate) use crate::db::lower;

/// Names of the unique indexes behind the `TAKEN` field errors (see migrations).
const UNIQUE_INDEXES: [(&str, &str); 2] = [
    ("users_email_unique", "email"),
    ("users_username_unique", "username"),
];

/// `users` filtered to one id in one environment.
pub type UserInScope = diesel::dsl::Filter<
    diesel::dsl::Filter<users::table, diesel::dsl::Eq<users::id, DbId>>,
    diesel::dsl::Eq<users::environment_id, DbId>,
>;

/// The user `id` if it is in the scope's environment: the filter every
/// query on one user starts from, so no query forgets the environment.
pub fn user_in_scope(scope: Scope, id: Uuid) -> UserInScope {
    users::table
        .filter(users::id.eq(DbId(id)))
        .filter(users::environment_id.eq(DbId(scope.environment_id)))
}

/// The columns a validated patch writes, with the new version. An empty
/// patch writes the version alone (a nested-record change).
pub fn changes(patch: UserPatch, updated_at: DateTime<Utc>) -> UserChanges {
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

/// Every column an update may write, with the name of its field in
/// `User` and the input types: the one list behind the history's
/// `changedFields` and a conflict's `conflictingFields`.
macro_rules! updatable_user_fields {
    ($($column:ident => $name:literal,)+) => {
        /// The fields whose stored value differs between `old` and `new`.
        pub fn changed_fields(old: &UserRow, new: &UserRow) -> Vec<&'static str> {
            let mut fields = Vec::new();
            $(if old.$column != new.$column { fields.push($name); })+
            fields
        }

        /// [`changed_fields`] in PostgreSQL's SQL, as an expression of an
        /// `UPDATE … RETURNING` on `users`: a JSON array of the names,
        /// sorted as Rust sorts them, comparing the row written with the
        /// row before it (`old_row`, read in the statement's snapshot, which
        /// does not hold the statement's own change; a row another writer
        /// changed after that snapshot is not updated at all, its version
        /// moved). Columns are compared as text, which tells the `jsonb` `1`
        /// from `1.0` as `serde_json` does. Each column is compared in
        /// place: turning both rows into JSON and back took the update's
        /// mean execution from 0.29 to 0.41 ms (docs/BENCHMARKS.md).
        pub const CHANGED_FIELDS_SQL: &str = concat!(
            "(SELECT coalesce(json_agg(f ORDER BY f COLLATE \"C\"), '[]')::text \
             FROM users old_row, unnest(ARRAY[NULL::text",
            $(", CASE WHEN old_row.", stringify!($column), "::text IS DISTINCT FROM users.",
              stringify!($column), "::text THEN '", $name, "' END",)+
            "]) AS f WHERE old_row.id = users.id AND f IS NOT NULL) AS changed_fields"
        );

        /// The fields `patch` writes: sets or clears.
        pub fn written_fields<C>(patch: &UserPatch<C>) -> Vec<&'static str> {
            let mut fields = Vec::new();
            $(if !patch.$column.is_keep() { fields.push($name); })+
            fields
        }
    };
}

updatable_user_fields! {
    last_verified_credential_id => "lastVerifiedCredentialId",
    scope => "scope",
    new_user => "newUser",
    first_visit => "firstVisit",
    last_visit => "lastVisit",
    alias => "alias",
    first_name => "firstName",
    last_name => "lastName",
    job_title => "jobTitle",
    t_shirt_size => "tShirtSize",
    team => "team",
    country => "country",
    email => "email",
    phone_number => "phoneNumber",
    policies_consent => "policiesConsent",
    username => "username",
    metadata => "metadata",
    mfa_backup_code_acknowledgement => "mfaBackupCodeAcknowledgement",
    btc_wallet => "btcWallet",
    kda_wallet => "kdaWallet",
    ltc_wallet => "ltcWallet",
    ckb_wallet => "ckbWallet",
    kas_wallet => "kasWallet",
    doge_wallet => "dogeWallet",
    email_notification => "emailNotification",
    discord_notification => "discordNotification",
    newsletter_notification => "newsletterNotification",
    lists => "lists",
    wallet_public_key => "walletPublicKey",
    wallet => "wallet",
    chain => "chain",
}

/// The nested list of `User` a nested-record change writes.
pub fn written_list(change: ChildChange) -> &'static str {
    match change {
        ChildChange::RevokeSession(_) => "sessions",
        ChildChange::RemoveMfaDevice(_) | ChildChange::SetDefaultMfaDevice(_) => "mfaDevices",
    }
}

/// An update's input after its own checks.
#[derive(Debug, Clone)]
pub struct CheckedInput {
    /// The fields that passed.
    pub patch: UserPatch,
    /// Every field that did not.
    pub errors: Vec<FieldError>,
    /// The fields the input writes, valid or not: what a conflict compares.
    pub written: Vec<&'static str>,
}

impl CheckedInput {
    pub fn new(input: UserPatch<String>) -> Self {
        let written = written_fields(&input);
        let (patch, errors) = input.check();
        CheckedInput {
            patch,
            errors,
            written,
        }
    }
}

/// Who writes, and how: what every history entry of a write records
/// besides the versions and the fields.
#[derive(Debug, Clone, Copy)]
pub struct Write {
    pub operation: UserOperation,
    pub token_id: Option<Uuid>,
    pub merged: bool,
    /// When, to the microsecond.
    pub at: DateTime<Utc>,
}

impl Write {
    /// A new history entry's id. Time-ordered (UUIDv7): the history only
    /// grows, and an ordered key appends to its index instead of dirtying a
    /// random page per write (in `pgbench`, 20% less WAL per update).
    pub fn new_entry_id() -> Uuid {
        Uuid::now_v7()
    }

    /// The history entry of this write of user `user` from version
    /// `previous` to `version`, changing `fields`.
    pub fn entry(
        &self,
        scope: Scope,
        user: Uuid,
        (previous, version): (Option<DateTime<Utc>>, DateTime<Utc>),
        fields: &[&str],
    ) -> UserHistoryRow {
        let mut fields = fields.to_vec();
        fields.sort_unstable();
        UserHistoryRow {
            id: DbId(Self::new_entry_id()),
            environment_id: DbId(scope.environment_id),
            user_id: DbId(user),
            version: DbTime(version),
            previous_version: previous.map(DbTime),
            operation: self.operation.as_str().to_owned(),
            changed_fields: DbJson(serde_json::json!(fields)),
            token_id: self.token_id.map(DbId),
            merged: self.merged,
            recorded_at: DbTime(self.at),
        }
    }
}

impl Write {
    /// The history entry of this write, an update from row `before` to
    /// row `after`.
    pub fn update_entry(&self, scope: Scope, before: &UserRow, after: &UserRow) -> UserHistoryRow {
        let versions = (Some(before.updated_at.0), after.updated_at.0);
        self.entry(scope, after.id.0, versions, &changed_fields(before, after))
    }
}

/// The changes recorded between two versions of a user, from the history
/// entries after the earlier one, oldest first, as (previous version,
/// changed fields).
pub fn changes_since(
    expected: DateTime<Utc>,
    entries: Vec<(Option<DbTime>, DbJson)>,
) -> Result<ChangesSince, RepoError> {
    // Entries chain: each names the version it moved from. The history
    // reaches back to `expected` when the oldest entry kept after it moved
    // from exactly `expected`.
    let complete = entries
        .first()
        .is_some_and(|(previous, _)| *previous == Some(DbTime(expected)));
    let mut fields = std::collections::BTreeSet::new();
    for (_, changed) in entries {
        let changed: Vec<String> =
            serde_json::from_value(changed.0).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        fields.extend(changed);
    }
    Ok(ChangesSince {
        fields: fields.into_iter().collect(),
        complete,
    })
}

/// Those of `changed` that a write of `written` would write too.
pub fn conflicting(changed: &ChangesSince, written: &[&str]) -> Vec<String> {
    changed
        .fields
        .iter()
        .filter(|field| written.contains(&field.as_str()))
        .cloned()
        .collect()
}

/// The field error of a nested-record change naming no record of the user.
pub fn unknown_child(change: ChildChange) -> FieldError {
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

pub fn taken(field: &'static str) -> FieldError {
    FieldError::new(field, ErrorCode::Taken, "is already used by another user")
}

/// The field whose uniqueness a concurrent writer won, if `error` is the
/// unique index refusing it: the pre-check saw the value free, then the
/// index refused it. Such an error answers with the `TAKEN` field error.
pub fn taken_field(error: &RepoError) -> Option<&'static str> {
    let RepoError::Query(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) =
        error
    else {
        return None;
    };
    // PostgreSQL names the constraint; SQLite names the index in its message.
    let name = info.constraint_name().unwrap_or(info.message());
    UNIQUE_INDEXES
        .iter()
        .find(|(index, _)| name.contains(index))
        .map(|(_, field)| *field)
}

/// A user row with its nested lists as JSON arrays of rows (`None`: not
/// read, or no rows), in [`Relation::ALL`] order: what one statement that
/// builds the lists with subqueries returns.
pub type UserWithJsonLists = (UserRow, [Option<String>; 6]);

/// Decodes a [`UserWithJsonLists`] whose lists `loaded` were read.
pub fn snapshot_from_json(
    (row, lists): UserWithJsonLists,
    loaded: &[Relation],
) -> Result<UserSnapshot, RepoError> {
    fn decode<R, T>(json: Option<String>) -> Result<Vec<T>, RepoError>
    where
        R: serde::de::DeserializeOwned,
        T: TryFrom<R, Error = RepoError>,
    {
        let rows: Vec<R> = match json {
            Some(json) => {
                serde_json::from_str(&json).map_err(|e| RepoError::Corrupt(e.to_string()))?
            }
            None => Vec::new(),
        };
        decode_all(rows)
    }
    let [credentials, wallets, sessions, mfa_devices, oauth_accounts, checks] = lists;
    Ok(UserSnapshot {
        user: User::try_from(row)?,
        children: Children {
            verified_credentials: decode::<VerifiedCredentialRow, _>(credentials)?,
            wallets: decode::<WalletRow, _>(wallets)?,
            sessions: decode::<SessionRow, _>(sessions)?,
            mfa_devices: decode::<MfaDeviceRow, _>(mfa_devices)?,
            oauth_accounts: decode::<OauthAccountRow, _>(oauth_accounts)?,
            chainalysis_checks: decode::<ChainalysisCheckRow, _>(checks)?,
        },
        loaded: loaded.to_vec(),
    })
}
