//! The queries compiled for PostgreSQL, and the ones that differ.
//!
//! `queries/*.rs` are written once against `super::Conn` and compiled here
//! with PostgreSQL's connection (and again in `sqlite.rs` with SQLite's),
//! so every query is type-checked against both backends.

use chrono::{DateTime, Utc};
use diesel::expression::{
    is_aggregate, AppearsOnTable, Expression, SelectableExpression, ValidGrouping,
};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Nullable, Text};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, QueryResult, SelectableHelper};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::demo::DemoRows;
use super::shared::{
    snapshot_from_json, user_in_scope, UserInScope, UserWithJsonLists, Write, CHANGED_FIELDS_SQL,
};
use super::{Relation, RepoError, Scope, UserSnapshot};
use crate::db::models::{UserChanges, UserRow};
use crate::db::schema;
use crate::db::types::{DbId, DbTime, Id, Instant};

pub type Conn = diesel_async::AsyncPgConnection;
pub type Backend = diesel::pg::Pg;

/// The user `query` selects, read inside a write transaction and locked
/// (`FOR UPDATE`) until it ends, so that nested lists read afterwards, and
/// a no-op's or a conflict's answer, belong to that same version.
pub async fn user_for_write(
    c: &mut Conn,
    query: UserInScope,
) -> Result<Option<UserRow>, RepoError> {
    Ok(query
        .select(UserRow::as_select())
        .for_update()
        .first(c)
        .await
        .optional()?)
}

/// Inserts demo rows, one multi-row `INSERT` per table, leaving out the
/// users a unique index refuses (and their nested rows); returns the ids
/// of the users inserted.
pub async fn insert_demo_rows(c: &mut Conn, mut rows: DemoRows) -> Result<Vec<DbId>, RepoError> {
    let inserted: Vec<DbId> = diesel::insert_into(schema::users::table)
        .values(&rows.users)
        .on_conflict_do_nothing()
        .returning(schema::users::id)
        .get_results(c)
        .await?;
    let inserted = rows.keep_users(&inserted);
    diesel::insert_into(schema::verified_credentials::table)
        .values(&rows.credentials)
        .execute(c)
        .await?;
    diesel::insert_into(schema::wallets::table)
        .values(&rows.wallets)
        .execute(c)
        .await?;
    diesel::insert_into(schema::sessions::table)
        .values(&rows.sessions)
        .execute(c)
        .await?;
    diesel::insert_into(schema::mfa_devices::table)
        .values(&rows.mfa_devices)
        .execute(c)
        .await?;
    diesel::insert_into(schema::oauth_accounts::table)
        .values(&rows.oauth_accounts)
        .execute(c)
        .await?;
    diesel::insert_into(schema::chainalysis_checks::table)
        .values(&rows.chainalysis_checks)
        .execute(c)
        .await?;
    Ok(inserted)
}

/// Each nested list of the user row a query returns, as a JSON array built
/// by a subquery on `"users"."id"`, in [`Relation::ALL`] order.
const NESTED_LIST_SQL: [(Relation, &str); 6] = [
    (
        Relation::VerifiedCredentials,
        "(SELECT json_agg(t ORDER BY t.created_at, t.id)::text \
         FROM verified_credentials t WHERE t.user_id = \"users\".\"id\")",
    ),
    (
        Relation::Wallets,
        "(SELECT json_agg(t ORDER BY t.created_at, t.id)::text \
         FROM wallets t WHERE t.user_id = \"users\".\"id\")",
    ),
    (
        Relation::Sessions,
        "(SELECT json_agg(t ORDER BY t.created_at, t.id)::text \
         FROM sessions t WHERE t.user_id = \"users\".\"id\")",
    ),
    (
        Relation::MfaDevices,
        "(SELECT json_agg(t ORDER BY t.created_at, t.id)::text \
         FROM mfa_devices t WHERE t.user_id = \"users\".\"id\")",
    ),
    (
        Relation::OauthAccounts,
        "(SELECT json_agg(t ORDER BY t.created_at, t.id)::text \
         FROM oauth_accounts t WHERE t.user_id = \"users\".\"id\")",
    ),
    (
        Relation::ChainalysisChecks,
        "(SELECT json_agg(t ORDER BY t.created_at, t.id)::text \
         FROM chainalysis_checks t WHERE t.user_id = \"users\".\"id\")",
    ),
];

/// One column of [`NESTED_LIST_SQL`], or `NULL` for a list not asked for.
///
/// Not a `dsl::sql` literal: diesel never caches a statement holding one,
/// and PostgreSQL would parse and plan every read anew. This fragment's
/// text is fixed, so the statement is prepared once per connection (keyed
/// by its text) like any other query.
#[derive(Debug, Clone, Copy)]
pub struct NestedList(&'static str);

impl Expression for NestedList {
    type SqlType = Nullable<Text>;
}

impl QueryFragment<diesel::pg::Pg> for NestedList {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        out.push_sql(self.0);
        Ok(())
    }
}

impl QueryId for NestedList {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<QS> SelectableExpression<QS> for NestedList {}

impl<QS> AppearsOnTable<QS> for NestedList {}

impl<GroupBy> ValidGrouping<GroupBy> for NestedList {
    type IsAggregate = is_aggregate::Never;
}

/// The nested lists `relations` of the user row a query returns, as JSON
/// arrays, `NULL` for the lists not asked for. This is how a user and its
/// lists come back in one statement: on PostgreSQL the cost of a read is
/// per statement, not per row.
fn nested_lists_json(relations: &[Relation]) -> NestedListsJson {
    let list = |i: usize| {
        let (relation, sql) = NESTED_LIST_SQL[i];
        NestedList(if relations.contains(&relation) {
            sql
        } else {
            "NULL"
        })
    };
    (list(0), list(1), list(2), list(3), list(4), list(5))
}

type NestedListsJson = (
    NestedList,
    NestedList,
    NestedList,
    NestedList,
    NestedList,
    NestedList,
);
type JsonLists = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn with_lists((row, (a, b, c, d, e, f)): (UserRow, JsonLists)) -> UserWithJsonLists {
    (row, [a, b, c, d, e, f])
}

/// User `id` with its nested lists `relations`, in one statement.
pub async fn user_with_children(
    c: &mut Conn,
    scope: Scope,
    id: Uuid,
    relations: &[Relation],
) -> Result<Option<UserSnapshot>, RepoError> {
    let row = user_in_scope(scope, id)
        .select((UserRow::as_select(), nested_lists_json(relations)))
        .first::<(UserRow, JsonLists)>(c)
        .await
        .optional()?;
    row.map(|row| snapshot_from_json(with_lists(row), relations))
        .transpose()
}

/// The user row as it was before the `UPDATE` that returns this, as JSON
/// named `row_before`: a subquery in `RETURNING` reads the statement's
/// snapshot, which does not hold the statement's own change. (A row changed
/// by another writer after that snapshot is not updated at all: its
/// version moved.)
const ROW_BEFORE_UPDATE: NestedList = NestedList(
    "(SELECT row_to_json(old_row)::text FROM users old_row WHERE old_row.id = users.id) \
     AS row_before",
);

/// `update`, an `UPDATE … RETURNING` of a user that also returns
/// [`ROW_BEFORE_UPDATE`], with the write's history entry inserted by the
/// same statement (a data-modifying `WITH`): the entry commits with the
/// write, and the write stays one statement. Its changed fields are
/// [`CHANGED_FIELDS_SQL`], the SQL twin of `shared::changed_fields`.
struct Recorded<U> {
    update: U,
    entry_id: DbId,
    previous: DbTime,
    operation: &'static str,
    token: Option<DbId>,
    merged: bool,
    at: DbTime,
}

impl<U> QueryId for Recorded<U> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<U: Query> Query for Recorded<U> {
    type SqlType = U::SqlType;
}

impl<U: QueryFragment<Backend>> QueryFragment<Backend> for Recorded<U> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Backend>) -> QueryResult<()> {
        out.push_sql("WITH updated AS (");
        self.update.walk_ast(out.reborrow())?;
        out.push_sql(
            "), recorded AS (INSERT INTO user_history (id, environment_id, user_id, version, \
             previous_version, operation, changed_fields, token_id, merged, recorded_at) SELECT ",
        );
        out.push_bind_param::<Id, _>(&self.entry_id)?;
        out.push_sql(", updated.environment_id, updated.id, updated.updated_at, ");
        out.push_bind_param::<Instant, _>(&self.previous)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.operation)?;
        out.push_sql(", ");
        out.push_sql(CHANGED_FIELDS_SQL);
        out.push_sql("::jsonb, ");
        out.push_bind_param::<Nullable<Id>, _>(&self.token)?;
        out.push_sql(", ");
        out.push_bind_param::<Bool, _>(&self.merged)?;
        out.push_sql(", ");
        out.push_bind_param::<Instant, _>(&self.at)?;
        out.push_sql(" FROM updated) SELECT * FROM updated");
        Ok(())
    }
}

/// The compare-and-set of a patch that needs no stored facts, answering
/// with the user and its nested lists `relations`, and recording it in the
/// history: one statement ([`Recorded`]), with no transaction around it.
/// The lists are read in the `UPDATE`'s own snapshot, and every change of a
/// nested record moves the user's version, so they belong to the version
/// written. `None` when the user is not at version `expected` (or not there
/// at all).
pub async fn update_returning_children(
    c: &mut Conn,
    scope: Scope,
    id: Uuid,
    expected: DateTime<Utc>,
    changes: UserChanges,
    relations: &[Relation],
    write: Write,
) -> Result<Option<UserSnapshot>, RepoError> {
    let at_version =
        user_in_scope(scope, id).filter(schema::users::updated_at.eq(DbTime(expected)));
    let returning = (
        UserRow::as_returning(),
        nested_lists_json(relations),
        ROW_BEFORE_UPDATE,
    );
    let recorded = Recorded {
        update: diesel::update(at_version).set(changes).returning(returning),
        entry_id: DbId(Uuid::new_v4()),
        previous: DbTime(expected),
        operation: write.operation.as_str(),
        token: write.token_id.map(DbId),
        merged: write.merged,
        at: DbTime(write.at),
    };
    let written = recorded
        .get_result::<(UserRow, JsonLists, Option<String>)>(c)
        .await
        .optional()?;
    written
        .map(|(row, lists, _)| snapshot_from_json(with_lists((row, lists)), relations))
        .transpose()
}

#[path = "queries/children.rs"]
pub mod children;
#[path = "queries/history.rs"]
pub mod history;
#[path = "queries/idempotency.rs"]
pub mod idempotency;
#[path = "queries/nodes.rs"]
pub mod nodes;
#[path = "queries/seed.rs"]
pub mod seed;
#[path = "queries/tokens.rs"]
pub mod tokens;
#[path = "queries/users.rs"]
pub mod users;
