//! The queries compiled for PostgreSQL, and the ones that differ.
//!
//! `queries/*.rs` are written once against `super::Conn` and compiled here
//! with PostgreSQL's connection (and again in `sqlite.rs` with SQLite's),
//! so every query is type-checked against both backends.

use chrono::{DateTime, Utc};
use diesel::expression::{
    is_aggregate, AppearsOnTable, Expression, SelectableExpression, ValidGrouping,
};
use diesel::query_builder::{AstPass, Query, QueryBuilder, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{Array, Bool, HasSqlType, IntoNullable, Nullable, Text};
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
use crate::db::types::{DbId, DbTime, Id, Instant, Json};

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

/// Readies a seeding transaction. The environment's row is locked as its
/// foreign key would lock it (`FOR KEY SHARE`, also failing when it is
/// not there). Then, when the role may, the transaction turns off
/// triggers, foreign-key checks included (`session_replication_role =
/// replica`, for this transaction only): a seed's rows are consistent by
/// construction, and the per-row checks were most of a large seed's time.
/// The change trigger is off with them, so seeded users are not announced
/// to live subscribers: a million announcements would be a storm.
pub async fn prepare_seed(c: &mut Conn, env: Uuid) -> Result<(), RepoError> {
    use schema::environments;
    environments::table
        .find(DbId(env))
        .select(environments::id)
        .for_key_share()
        .first::<DbId>(c)
        .await?;
    let superuser: bool = diesel::select(diesel::dsl::sql::<Bool>(
        "current_setting('is_superuser')::bool",
    ))
    .get_result(c)
    .await?;
    if superuser {
        diesel::sql_query("SET LOCAL session_replication_role = replica")
            .execute(c)
            .await?;
    }
    Ok(())
}

/// As `sqlite::seed_settings`; PostgreSQL's seed keeps its settings
/// per transaction (`prepare_seed`).
pub async fn seed_settings(_: &mut Conn, _seeding: bool) -> Result<(), RepoError> {
    Ok(())
}

/// Inserts demo rows, one `INSERT` per table, leaving out the users a
/// unique index refuses (and their nested rows); returns the ids of the
/// users inserted.
///
/// Each statement binds one array per column and turns them into rows
/// with `unnest` in its select list (zipped in step; in `FROM` the arrays
/// are first copied into a tuple store, 1.5–2× as slow). Its text does not
/// grow with the rows, and every value arrives in binary: the `json`
/// arrays this replaced spent more of PostgreSQL's time lexing, hashing
/// field names and parsing uuids and timestamps from text than inserting.
pub async fn insert_demo_rows(c: &mut Conn, mut rows: DemoRows) -> Result<Vec<DbId>, RepoError> {
    let u = &rows.users;
    let inserted: Vec<DbId> = diesel::sql_query(
        "INSERT INTO users (id, environment_id, last_verified_credential_id, session_id, \
         scope, new_user, first_visit, last_visit, alias, first_name, last_name, job_title, \
         t_shirt_size, team, country, email, phone_number, policies_consent, username, \
         metadata, mfa_backup_code_acknowledgement, btc_wallet, kda_wallet, ltc_wallet, \
         ckb_wallet, kas_wallet, doge_wallet, email_notification, discord_notification, \
         newsletter_notification, lists, wallet_public_key, wallet, chain, created_at, \
         updated_at) \
         SELECT unnest($1), unnest($2), unnest($3), unnest($4), unnest($5), unnest($6), \
         unnest($7), unnest($8), unnest($9), unnest($10), unnest($11), unnest($12), \
         unnest($13), unnest($14), unnest($15), unnest($16), unnest($17), unnest($18), \
         unnest($19), unnest($20), unnest($21), unnest($22), unnest($23), unnest($24), \
         unnest($25), unnest($26), unnest($27), unnest($28), unnest($29), unnest($30), \
         unnest($31), unnest($32), unnest($33), unnest($34), unnest($35), unnest($36) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind::<Array<Id>, _>(column(u, |r| r.id))
    .bind::<Array<Id>, _>(column(u, |r| r.environment_id))
    .bind::<Array<Nullable<Id>>, _>(column(u, |r| r.last_verified_credential_id))
    .bind::<Array<Nullable<Id>>, _>(column(u, |r| r.session_id))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.scope.clone()))
    .bind::<Array<Bool>, _>(column(u, |r| r.new_user))
    .bind::<Array<Instant>, _>(column(u, |r| r.first_visit))
    .bind::<Array<Instant>, _>(column(u, |r| r.last_visit))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.alias.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.first_name.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.last_name.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.job_title.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.t_shirt_size.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.team.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.country.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.email.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.phone_number.clone()))
    .bind::<Array<Nullable<Bool>>, _>(column(u, |r| r.policies_consent))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.username.clone()))
    .bind::<Array<Nullable<Json>>, _>(column(u, |r| r.metadata.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.mfa_backup_code_acknowledgement.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.btc_wallet.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.kda_wallet.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.ltc_wallet.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.ckb_wallet.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.kas_wallet.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.doge_wallet.clone()))
    .bind::<Array<Nullable<Bool>>, _>(column(u, |r| r.email_notification))
    .bind::<Array<Nullable<Bool>>, _>(column(u, |r| r.discord_notification))
    .bind::<Array<Nullable<Bool>>, _>(column(u, |r| r.newsletter_notification))
    .bind::<Array<Nullable<Json>>, _>(column(u, |r| r.lists.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.wallet_public_key.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.wallet.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(u, |r| r.chain.clone()))
    .bind::<Array<Instant>, _>(column(u, |r| r.created_at))
    .bind::<Array<Instant>, _>(column(u, |r| r.updated_at))
    .load::<Inserted>(c)
    .await?
    .into_iter()
    .map(|row| row.id)
    .collect();
    let inserted = rows.keep_users(&inserted);

    let r = &rows.credentials;
    diesel::sql_query(
        "INSERT INTO verified_credentials \
         (id, user_id, format, public_identifier, chain, wallet_name, created_at) \
         SELECT unnest($1), unnest($2), unnest($3), unnest($4), unnest($5), unnest($6), \
         unnest($7)",
    )
    .bind::<Array<Id>, _>(column(r, |r| r.id))
    .bind::<Array<Id>, _>(column(r, |r| r.user_id))
    .bind::<Array<Text>, _>(column(r, |r| r.format.clone()))
    .bind::<Array<Text>, _>(column(r, |r| r.public_identifier.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(r, |r| r.chain.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(r, |r| r.wallet_name.clone()))
    .bind::<Array<Instant>, _>(column(r, |r| r.created_at))
    .execute(c)
    .await?;

    let r = &rows.wallets;
    diesel::sql_query(
        "INSERT INTO wallets (id, user_id, name, chain, public_key, provider, created_at) \
         SELECT unnest($1), unnest($2), unnest($3), unnest($4), unnest($5), unnest($6), \
         unnest($7)",
    )
    .bind::<Array<Id>, _>(column(r, |r| r.id))
    .bind::<Array<Id>, _>(column(r, |r| r.user_id))
    .bind::<Array<Text>, _>(column(r, |r| r.name.clone()))
    .bind::<Array<Text>, _>(column(r, |r| r.chain.clone()))
    .bind::<Array<Text>, _>(column(r, |r| r.public_key.clone()))
    .bind::<Array<Text>, _>(column(r, |r| r.provider.clone()))
    .bind::<Array<Instant>, _>(column(r, |r| r.created_at))
    .execute(c)
    .await?;

    let r = &rows.sessions;
    diesel::sql_query(
        "INSERT INTO sessions \
         (id, user_id, ip_address, user_agent, created_at, expires_at, revoked_at) \
         SELECT unnest($1), unnest($2), unnest($3), unnest($4), unnest($5), unnest($6), \
         unnest($7)",
    )
    .bind::<Array<Id>, _>(column(r, |r| r.id))
    .bind::<Array<Id>, _>(column(r, |r| r.user_id))
    .bind::<Array<Nullable<Text>>, _>(column(r, |r| r.ip_address.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(r, |r| r.user_agent.clone()))
    .bind::<Array<Instant>, _>(column(r, |r| r.created_at))
    .bind::<Array<Instant>, _>(column(r, |r| r.expires_at))
    .bind::<Array<Nullable<Instant>>, _>(column(r, |r| r.revoked_at))
    .execute(c)
    .await?;

    let r = &rows.mfa_devices;
    diesel::sql_query(
        "INSERT INTO mfa_devices \
         (id, user_id, kind, name, is_default, verified_at, created_at) \
         SELECT unnest($1), unnest($2), unnest($3), unnest($4), unnest($5), unnest($6), \
         unnest($7)",
    )
    .bind::<Array<Id>, _>(column(r, |r| r.id))
    .bind::<Array<Id>, _>(column(r, |r| r.user_id))
    .bind::<Array<Text>, _>(column(r, |r| r.kind.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(r, |r| r.name.clone()))
    .bind::<Array<Bool>, _>(column(r, |r| r.is_default))
    .bind::<Array<Nullable<Instant>>, _>(column(r, |r| r.verified_at))
    .bind::<Array<Instant>, _>(column(r, |r| r.created_at))
    .execute(c)
    .await?;

    let r = &rows.oauth_accounts;
    diesel::sql_query(
        "INSERT INTO oauth_accounts \
         (id, user_id, provider, account_username, account_email, display_name, created_at) \
         SELECT unnest($1), unnest($2), unnest($3), unnest($4), unnest($5), unnest($6), \
         unnest($7)",
    )
    .bind::<Array<Id>, _>(column(r, |r| r.id))
    .bind::<Array<Id>, _>(column(r, |r| r.user_id))
    .bind::<Array<Text>, _>(column(r, |r| r.provider.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(r, |r| r.account_username.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(r, |r| r.account_email.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(r, |r| r.display_name.clone()))
    .bind::<Array<Instant>, _>(column(r, |r| r.created_at))
    .execute(c)
    .await?;

    let r = &rows.chainalysis_checks;
    diesel::sql_query(
        "INSERT INTO chainalysis_checks \
         (id, user_id, wallet_public_key, risk_level, created_at) \
         SELECT unnest($1), unnest($2), unnest($3), unnest($4), unnest($5)",
    )
    .bind::<Array<Id>, _>(column(r, |r| r.id))
    .bind::<Array<Id>, _>(column(r, |r| r.user_id))
    .bind::<Array<Text>, _>(column(r, |r| r.wallet_public_key.clone()))
    .bind::<Array<Text>, _>(column(r, |r| r.risk_level.clone()))
    .bind::<Array<Instant>, _>(column(r, |r| r.created_at))
    .execute(c)
    .await?;
    Ok(inserted)
}

#[derive(diesel::QueryableByName)]
struct Inserted {
    #[diesel(sql_type = Id)]
    id: DbId,
}

/// One column of `rows`, as the array bound for it.
fn column<R, T>(rows: &[R], field: impl Fn(&R) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
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

/// A fixed SQL expression read as nullable text: one column of
/// [`NESTED_LIST_SQL`], `NULL` for a list not asked for, or an update's
/// [`CHANGED_FIELDS`].
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

/// The text of a statement that reads a user's nested lists, one per set of
/// the [`NESTED_LIST_SQL`] subqueries it holds (the only part of its text
/// that varies), each rendered once per process by [`RenderedOnce`].
///
/// Whether a list is wanted stays in the text (`NULL` or its subquery), not
/// a bind: with `CASE WHEN $wanted` the text was one, but PostgreSQL then
/// planned every execution anew (a custom plan, cheaper than the generic
/// one that holds all six subqueries), and its CPU per read rose by half.
struct ListTexts([std::sync::OnceLock<String>; 1 << NESTED_LIST_SQL.len()]);

impl ListTexts {
    const fn new() -> Self {
        ListTexts([const { std::sync::OnceLock::new() }; 1 << NESTED_LIST_SQL.len()])
    }

    /// `query`, which holds the nested lists `relations`, to run with its
    /// kept text.
    fn statement<Q>(&self, relations: &[Relation], query: Q) -> RenderedOnce<'_, Q> {
        let set = NESTED_LIST_SQL
            .iter()
            .enumerate()
            .filter(|(_, (relation, _))| relations.contains(relation))
            .fold(0, |set, (i, _)| set | 1 << i);
        RenderedOnce {
            query,
            text: &self.0[set],
        }
    }
}

/// A statement run with a text diesel rendered once, on its first
/// execution in the process, and kept in `text`: every value of its type
/// (with the same lists, see [`ListTexts`]) renders the same text, its
/// values are binds.
///
/// diesel-async renders a statement's text on every execution, prepared or
/// not, to look the prepared statement up by it, and diesel quotes each
/// identifier through an allocation: a read's columns and lists cost 8% of
/// a W1 request's instructions, an update's 6 KB text more
/// (docs/BENCHMARKS.md, "Statements rendered once, and smaller
/// futures"). Debug builds render every execution again and refuse a text
/// that differs from the kept one, so the tests check the claim for every
/// statement they run.
struct RenderedOnce<'t, Q> {
    query: Q,
    text: &'t std::sync::OnceLock<String>,
}

impl<Q: QueryFragment<Backend>> RenderedOnce<'_, Q> {
    fn render(&self) -> QueryResult<String> {
        let mut builder = diesel::pg::PgQueryBuilder::default();
        self.query.to_sql(&mut builder, &diesel::pg::Pg)?;
        Ok(builder.finish())
    }
}

impl<Q> QueryId for RenderedOnce<'_, Q> {
    type QueryId = ();
    // Prepared statements stay keyed by their text, which varies with the lists.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for RenderedOnce<'_, Q> {
    type SqlType = Q::SqlType;
}

impl<Q: QueryFragment<Backend>> QueryFragment<Backend> for RenderedOnce<'_, Q> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Backend>) -> QueryResult<()> {
        self.query.walk_ast(out)
    }

    fn to_sql(&self, out: &mut diesel::pg::PgQueryBuilder, _: &Backend) -> QueryResult<()> {
        let text = match self.text.get() {
            Some(text) => text,
            None => {
                let rendered = self.render()?;
                self.text.get_or_init(|| rendered)
            }
        };
        if cfg!(debug_assertions) && self.render()? != *text {
            return Err(diesel::result::Error::QueryBuilderError(
                "a statement rendered once renders another text".into(),
            ));
        }
        out.push_sql(text);
        Ok(())
    }

    fn collect_binds<'b>(
        &'b self,
        out: &mut <Backend as diesel::backend::Backend>::BindCollector<'b>,
        metadata_lookup: &mut <Backend as diesel::sql_types::TypeMetadata>::MetadataLookup,
        backend: &'b Backend,
    ) -> QueryResult<()> {
        self.query.collect_binds(out, metadata_lookup, backend)
    }

    fn is_safe_to_cache_prepared(&self, backend: &Backend) -> QueryResult<bool> {
        self.query.is_safe_to_cache_prepared(backend)
    }
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
    static TEXTS: ListTexts = ListTexts::new();
    let read = user_in_scope(scope, id)
        .select((UserRow::as_select(), nested_lists_json(relations)))
        .limit(1);
    let row = TEXTS
        .statement(relations, read)
        .get_result::<(UserRow, JsonLists)>(c)
        .await
        .optional()?;
    row.map(|row| snapshot_from_json(with_lists(row), relations))
        .transpose()
}

/// The fields an `UPDATE … RETURNING` of a user changes, as
/// `changed_fields` ([`CHANGED_FIELDS_SQL`]).
const CHANGED_FIELDS: NestedList = NestedList(CHANGED_FIELDS_SQL);

/// A patch's [`UserChanges`] as a `SET` clause whose text is the same for
/// every patch: each updatable column as `col = CASE WHEN $written THEN
/// $value ELSE col END`, then the version. diesel's own changeset names
/// only the columns a patch writes, a statement text per combination, so
/// it (rightly) never keeps an update prepared, and PostgreSQL parsed and
/// planned every update anew. With this, [`Recorded`] stays prepared.
struct EveryColumn(UserChanges);

impl diesel::AsChangeset for EveryColumn {
    type Target = schema::users::table;
    type Changeset = Self;

    fn as_changeset(self) -> Self {
        self
    }
}

/// One column's entry in [`UserChanges`]: whether the patch writes the
/// column, and the value it writes (`None`: clears it).
trait ColumnChange {
    type Value;
    fn written(&self) -> bool;
    fn value(&self) -> &Option<Self::Value>;
}

/// A nullable column: `Some(None)` clears it.
impl<V> ColumnChange for Option<Option<V>> {
    type Value = V;
    fn written(&self) -> bool {
        self.is_some()
    }
    fn value(&self) -> &Option<V> {
        self.as_ref().unwrap_or(&None)
    }
}

/// The columns that cannot be cleared (`newUser`, `firstVisit`,
/// `lastVisit`).
impl ColumnChange for Option<bool> {
    type Value = bool;
    fn written(&self) -> bool {
        self.is_some()
    }
    fn value(&self) -> &Option<bool> {
        self
    }
}

impl ColumnChange for Option<DbTime> {
    type Value = DbTime;
    fn written(&self) -> bool {
        self.is_some()
    }
    fn value(&self) -> &Option<DbTime> {
        self
    }
}

impl QueryFragment<Backend> for EveryColumn {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Backend>) -> QueryResult<()> {
        use schema::users;

        /// `column = CASE WHEN <written> THEN <value> ELSE column END, `
        fn case<'b, C, V: 'b>(
            out: &mut AstPass<'_, 'b, Backend>,
            _: C,
            change: &'b impl ColumnChange<Value = V>,
        ) -> QueryResult<()>
        where
            C: diesel::Column,
            C::SqlType: IntoNullable,
            Backend: HasSqlType<<C::SqlType as IntoNullable>::Nullable>,
            Option<V>: ToSql<<C::SqlType as IntoNullable>::Nullable, Backend>,
        {
            out.push_identifier(C::NAME)?;
            out.push_sql(" = CASE WHEN ");
            out.push_bind_param::<Bool, bool>(if change.written() { &true } else { &false })?;
            out.push_sql(" THEN ");
            out.push_bind_param::<<C::SqlType as IntoNullable>::Nullable, _>(change.value())?;
            out.push_sql(" ELSE ");
            out.push_identifier(C::NAME)?;
            out.push_sql(" END, ");
            Ok(())
        }

        // Destructured, so that a column added to `UserChanges` cannot be
        // left out here.
        let UserChanges {
            last_verified_credential_id,
            scope,
            new_user,
            first_visit,
            last_visit,
            alias,
            first_name,
            last_name,
            job_title,
            t_shirt_size,
            team,
            country,
            email,
            phone_number,
            policies_consent,
            username,
            metadata,
            mfa_backup_code_acknowledgement,
            btc_wallet,
            kda_wallet,
            ltc_wallet,
            ckb_wallet,
            kas_wallet,
            doge_wallet,
            email_notification,
            discord_notification,
            newsletter_notification,
            lists,
            wallet_public_key,
            wallet,
            chain,
            updated_at,
        } = &self.0;
        case(
            &mut out,
            users::last_verified_credential_id,
            last_verified_credential_id,
        )?;
        case(&mut out, users::scope, scope)?;
        case(&mut out, users::new_user, new_user)?;
        case(&mut out, users::first_visit, first_visit)?;
        case(&mut out, users::last_visit, last_visit)?;
        case(&mut out, users::alias, alias)?;
        case(&mut out, users::first_name, first_name)?;
        case(&mut out, users::last_name, last_name)?;
        case(&mut out, users::job_title, job_title)?;
        case(&mut out, users::t_shirt_size, t_shirt_size)?;
        case(&mut out, users::team, team)?;
        case(&mut out, users::country, country)?;
        case(&mut out, users::email, email)?;
        case(&mut out, users::phone_number, phone_number)?;
        case(&mut out, users::policies_consent, policies_consent)?;
        case(&mut out, users::username, username)?;
        case(&mut out, users::metadata, metadata)?;
        case(
            &mut out,
            users::mfa_backup_code_acknowledgement,
            mfa_backup_code_acknowledgement,
        )?;
        case(&mut out, users::btc_wallet, btc_wallet)?;
        case(&mut out, users::kda_wallet, kda_wallet)?;
        case(&mut out, users::ltc_wallet, ltc_wallet)?;
        case(&mut out, users::ckb_wallet, ckb_wallet)?;
        case(&mut out, users::kas_wallet, kas_wallet)?;
        case(&mut out, users::doge_wallet, doge_wallet)?;
        case(&mut out, users::email_notification, email_notification)?;
        case(&mut out, users::discord_notification, discord_notification)?;
        case(
            &mut out,
            users::newsletter_notification,
            newsletter_notification,
        )?;
        case(&mut out, users::lists, lists)?;
        case(&mut out, users::wallet_public_key, wallet_public_key)?;
        case(&mut out, users::wallet, wallet)?;
        case(&mut out, users::chain, chain)?;
        out.push_identifier(<users::updated_at as diesel::Column>::NAME)?;
        out.push_sql(" = ");
        out.push_bind_param::<Instant, _>(updated_at)?;
        Ok(())
    }
}

/// `update`, an `UPDATE … RETURNING` of a user that also returns
/// [`CHANGED_FIELDS`], with the write's history entry inserted by the
/// same statement (a data-modifying `WITH`): the entry commits with the
/// write, and the write stays one statement.
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
    /// Kept prepared (diesel marks every `UPDATE` unsafe to keep): with
    /// [`EveryColumn`] the text varies only with the nested lists asked for,
    /// 64 statements per connection at most.
    fn is_safe_to_cache_prepared(&self, _: &Backend) -> QueryResult<bool> {
        Ok(true)
    }

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
        out.push_sql("updated.changed_fields::jsonb, ");
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
        CHANGED_FIELDS,
    );
    let recorded = Recorded {
        update: diesel::update(at_version)
            .set(EveryColumn(changes))
            .returning(returning),
        entry_id: DbId(Write::new_entry_id()),
        previous: DbTime(expected),
        operation: write.operation.as_str(),
        token: write.token_id.map(DbId),
        merged: write.merged,
        at: DbTime(write.at),
    };
    static TEXTS: ListTexts = ListTexts::new();
    let written = TEXTS
        .statement(relations, recorded)
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
