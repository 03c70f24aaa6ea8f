//! Repository rules that need a fixed clock, on SQLite and PostgreSQL.

mod common;

use chrono::{DateTime, Utc};
use common::{Backend, ManualClock, TestApp};
use usergraph::default_scope;
use usergraph::domain::{Patch, UserPatch};
use usergraph::repo::{ConflictPolicy, Relation, UpdateOutcome};

fn team(name: &str) -> UserPatch<String> {
    UserPatch {
        team: Patch::Set(name.into()),
        ..UserPatch::default()
    }
}

async fn update(
    app: &TestApp,
    id: uuid::Uuid,
    expected: DateTime<Utc>,
    name: &str,
) -> DateTime<Utc> {
    match app
        .repo
        .update_user(
            default_scope(),
            id,
            expected,
            team(name),
            Relation::ALL,
            ConflictPolicy::Fail,
        )
        .await
        .unwrap()
    {
        UpdateOutcome::Updated(snapshot) => snapshot.user.updated_at,
        other => panic!("expected an update, got {other:?}"),
    }
}

/// Two changes within one microsecond, and a clock that steps back, still
/// give strictly increasing versions.
async fn versions_strictly_increase(backend: Backend) {
    let clock = ManualClock::at("2026-05-01T08:00:00.000001Z");
    let app = TestApp::spawn_with_clock(backend, clock.clone()).await;
    let id = app.repo.seed_users(default_scope(), 1).await.unwrap()[0];
    let v0 = app
        .repo
        .user(default_scope(), id)
        .await
        .unwrap()
        .unwrap()
        .updated_at;

    clock.set("2026-05-01T08:00:00.000002500Z");
    let v1 = update(&app, id, v0, "a").await;
    let v2 = update(&app, id, v1, "b").await; // same microsecond as v1
    assert_eq!(v1.to_rfc3339(), "2026-05-01T08:00:00.000002+00:00");
    assert_eq!(v2.to_rfc3339(), "2026-05-01T08:00:00.000003+00:00");

    clock.set("2026-04-01T00:00:00Z"); // the clock steps back a month
    let v3 = update(&app, id, v2, "c").await;
    assert_eq!(v3.to_rfc3339(), "2026-05-01T08:00:00.000004+00:00");

    let stored = app.repo.user(default_scope(), id).await.unwrap().unwrap();
    assert_eq!(stored.updated_at, v3);
    assert_eq!(stored.team.as_deref(), Some("c"));
}
per_backend!(versions_strictly_increase);

/// A seed larger than one batch runs on two connections (PostgreSQL) and
/// still numbers users in order; a number whose username is taken is
/// skipped, and the seed numbers on until it has added as many as asked.
async fn seeding_numbers_on_past_taken_usernames(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let scope = default_scope();
    let first = app.repo.seed_users(scope, 1_200).await.unwrap();
    assert_eq!(first.len(), 1_200);
    let username = |id| {
        let app = &app;
        async move {
            let user = app.repo.user(scope, id).await.unwrap().unwrap();
            user.username.unwrap()
        }
    };
    let number = |name: String| -> u64 {
        let digits: String = name.chars().filter(char::is_ascii_digit).collect();
        digits.parse().unwrap()
    };
    let existing = number(username(first[0]).await) - 1;
    for (i, id) in first.iter().enumerate().step_by(97) {
        assert_eq!(number(username(*id).await), existing + 1 + i as u64);
    }

    // The next number's username goes to a user seeded already. Names
    // repeat every 8 numbers, so it has the first seeded user's name.
    let next = existing + 1_201;
    let first_name = username(first[0]).await;
    let taken = format!(
        "{}{next}",
        first_name.trim_end_matches(|c: char| c.is_ascii_digit())
    );
    let version = app
        .repo
        .user(scope, first[0])
        .await
        .unwrap()
        .unwrap()
        .updated_at;
    let patch = UserPatch {
        username: Patch::Set(taken.clone()),
        ..UserPatch::default()
    };
    let outcome = app
        .repo
        .update_user(scope, first[0], version, patch, &[], ConflictPolicy::Fail)
        .await
        .unwrap();
    assert!(matches!(outcome, UpdateOutcome::Updated(_)), "{outcome:?}");

    let more = app.repo.seed_users(scope, 100).await.unwrap();
    assert_eq!(more.len(), 100);
    assert_eq!(number(username(more[0]).await), next + 1);
    assert_eq!(number(username(more[99]).await), next + 100);
}
per_backend!(seeding_numbers_on_past_taken_usernames);

/// A seed commits its batches without an fsync each and without checking
/// foreign keys on SQLite; its rows still hold every foreign key, and it
/// gives its connection back to the pool committing durably, as every
/// other, copying its WAL back as often and checking foreign keys.
#[tokio::test]
async fn a_seed_gives_back_a_durable_checking_connection() {
    use diesel::sql_types::Integer;
    use diesel_async::RunQueryDsl;
    use usergraph::db::Conn;

    #[derive(diesel::QueryableByName)]
    struct Synchronous {
        #[diesel(sql_type = Integer)]
        synchronous: i32,
    }
    #[derive(diesel::QueryableByName)]
    struct WalAutocheckpoint {
        #[diesel(sql_type = Integer)]
        wal_autocheckpoint: i32,
    }
    #[derive(diesel::QueryableByName)]
    struct ForeignKeys {
        #[diesel(sql_type = Integer)]
        foreign_keys: i32,
    }
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    // One connection: the one the seed used.
    let setup = common::Setup {
        max_connections: 1,
        ..common::Setup::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, setup).await;
    app.repo.seed_users(default_scope(), 10).await.unwrap();
    let Conn::Sqlite(mut conn) = app.repo.db().conn().await.unwrap() else {
        panic!("a SQLite connection");
    };
    let setting: Synchronous = diesel::sql_query("PRAGMA synchronous")
        .get_result(&mut *conn)
        .await
        .unwrap();
    assert_eq!(setting.synchronous, 2, "synchronous = FULL");
    let setting: WalAutocheckpoint = diesel::sql_query("PRAGMA wal_autocheckpoint")
        .get_result(&mut *conn)
        .await
        .unwrap();
    assert_eq!(setting.wal_autocheckpoint, 1000, "SQLite's default");
    let setting: ForeignKeys = diesel::sql_query("PRAGMA foreign_keys")
        .get_result(&mut *conn)
        .await
        .unwrap();
    assert_eq!(setting.foreign_keys, 1, "foreign keys checked");
    let broken: Count = diesel::sql_query("SELECT count(*) AS n FROM pragma_foreign_key_check")
        .get_result(&mut *conn)
        .await
        .unwrap();
    assert_eq!(broken.n, 0, "every seeded row's foreign keys hold");
}

/// SQLite connections read the database file through a memory map, not a
/// `pread` (and a copy) per page outside SQLite's own small cache.
#[tokio::test]
async fn sqlite_connections_read_the_file_through_a_memory_map() {
    use diesel_async::RunQueryDsl;
    use usergraph::db::Conn;

    #[derive(diesel::QueryableByName)]
    struct MmapSize {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        mmap_size: i64,
    }
    let app = TestApp::spawn(Backend::Sqlite).await;
    let Conn::Sqlite(mut conn) = app.repo.db().conn().await.unwrap() else {
        panic!("a SQLite connection");
    };
    let setting: MmapSize = diesel::sql_query("PRAGMA mmap_size")
        .get_result(&mut *conn)
        .await
        .unwrap();
    assert_eq!(setting.mmap_size, 2_147_418_112, "SQLite's ceiling");
}

/// Each seeded row holds demo user number n's content, column by column,
/// on either backend (each backend's seed binds the columns its own way).
async fn seeded_rows_hold_the_demo_content(backend: Backend) {
    use diesel::{ExpressionMethods, QueryDsl, SelectableHelper};
    use diesel_async::RunQueryDsl;
    use usergraph::db::models::*;
    use usergraph::db::schema::*;
    use usergraph::db::types::DbId;
    use usergraph::db::Conn;
    use usergraph::repo::demo::{demo_user, DemoRows};

    let app = TestApp::spawn(backend).await;
    let scope = default_scope();
    let ids: Vec<DbId> = app
        .repo
        .seed_users(scope, 3)
        .await
        .unwrap()
        .into_iter()
        .map(DbId)
        .collect();
    // The same queries for either backend's connection type.
    macro_rules! nested {
        ($c:expr, $table:ident, $row:ty) => {
            $table::table
                .filter($table::user_id.eq_any(&ids))
                .order(($table::created_at, $table::id))
                .select(<$row>::as_select())
                .load($c)
                .await
                .unwrap()
        };
    }
    macro_rules! stored {
        ($conn:expr) => {{
            let c = &mut *$conn;
            DemoRows {
                users: users::table
                    .filter(users::id.eq_any(&ids))
                    .order(users::id)
                    .select(UserRow::as_select())
                    .load(c)
                    .await
                    .unwrap(),
                credentials: nested!(c, verified_credentials, VerifiedCredentialRow),
                wallets: nested!(c, wallets, WalletRow),
                sessions: nested!(c, sessions, SessionRow),
                mfa_devices: nested!(c, mfa_devices, MfaDeviceRow),
                oauth_accounts: nested!(c, oauth_accounts, OauthAccountRow),
                chainalysis_checks: nested!(c, chainalysis_checks, ChainalysisCheckRow),
            }
        }};
    }
    let mut stored = match app.repo.db().conn().await.unwrap() {
        Conn::Pg(mut c) | Conn::PgPooled(mut c) => stored!(c),
        Conn::Sqlite(mut c) => stored!(c),
    };
    let mut expected = DemoRows::default();
    for user in &stored.users {
        let digits: String = user
            .username
            .iter()
            .flat_map(|name| name.chars())
            .filter(char::is_ascii_digit)
            .collect();
        let n = digits.parse().unwrap();
        expected.append(demo_user(scope.environment_id, n, user.updated_at.0));
    }
    // Ids are new each time: compare the content around them.
    for rows in [&mut stored, &mut expected] {
        let none = DbId(uuid::Uuid::nil());
        for user in &mut rows.users {
            (user.id, user.last_verified_credential_id) = (none, Some(none));
        }
        macro_rules! forget_ids {
            ($($list:ident),*) => {$(
                for row in &mut rows.$list {
                    (row.id, row.user_id) = (none, none);
                }
            )*};
        }
        forget_ids!(
            credentials,
            wallets,
            sessions,
            mfa_devices,
            oauth_accounts,
            chainalysis_checks
        );
    }
    assert_eq!(stored.users.len(), 3);
    assert_eq!(stored.users, expected.users);
    assert_eq!(stored.credentials, expected.credentials);
    assert_eq!(stored.wallets, expected.wallets);
    assert_eq!(stored.sessions, expected.sessions);
    assert_eq!(stored.mfa_devices, expected.mfa_devices);
    assert_eq!(stored.oauth_accounts, expected.oauth_accounts);
    assert_eq!(stored.chainalysis_checks, expected.chainalysis_checks);
}
per_backend!(seeded_rows_hold_the_demo_content);
