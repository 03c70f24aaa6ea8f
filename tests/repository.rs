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
