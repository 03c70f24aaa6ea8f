//! Conflicts a client can act on: the change history, what changed since a
//! version, merging disjoint edits, and safe retries with an
//! `Idempotency-Key`; on SQLite and PostgreSQL.

mod common;

use std::sync::Arc;

use common::{client_with_token, error_code, post_as, Backend, TestApp};
use diesel_async::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{json, Value};
use usergraph::db::Conn;
use usergraph::repo::Scope;

const UPDATE: &str = "mutation($id: ID!, $version: DateTime!, $input: UpdateUserInput!, \
    $policy: OnConflict! = FAIL) { \
    updateUser(id: $id, expectedUpdatedAt: $version, input: $input, onConflict: $policy) { \
    __typename \
    ... on UpdateUserSuccess { merged user { id firstName lastName team jobTitle updatedAt } } \
    ... on UpdateConflict { changedFields conflictingFields changedFieldsComplete \
        currentUser { updatedAt } } \
    ... on ValidationFailed { fieldErrors { field code } } } }";

const HISTORY: &str = "query($id: ID!, $first: Int, $after: String) { \
    userHistory(id: $id, first: $first, after: $after) { \
    pageInfo { hasNextPage endCursor } \
    edges { node { version previousVersion operation changedFields merged recordedAt \
        changedBy { id name } } } } }";

async fn update(app: &TestApp, id: &str, version: &str, input: Value, policy: &str) -> Value {
    let variables = json!({ "id": id, "version": version, "input": input, "policy": policy });
    app.gql(UPDATE, variables).await["updateUser"].clone()
}

async fn version(app: &TestApp, id: &str) -> String {
    let user = app
        .gql(
            "query($id: ID!) { user(id: $id) { updatedAt } }",
            json!({ "id": id }),
        )
        .await;
    user["user"]["updatedAt"].as_str().unwrap().to_owned()
}

/// Every history entry of user `id`, newest first, read a page of `page` at a time.
async fn history(app: &TestApp, id: &str, page: i64) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut after = Value::Null;
    loop {
        let variables = json!({ "id": id, "first": page, "after": after });
        let data = app.gql(HISTORY, variables).await["userHistory"].clone();
        let edges = data["edges"].as_array().unwrap();
        assert!(edges.len() as i64 <= page);
        entries.extend(edges.iter().map(|edge| edge["node"].clone()));
        if data["pageInfo"]["hasNextPage"] != true {
            return entries;
        }
        after = data["pageInfo"]["endCursor"].clone();
    }
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

async fn disjoint_edits_merge_and_the_history_shows_both(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let v0 = version(&app, &id).await;

    let first = update(&app, &id, &v0, json!({ "firstName": "Ada" }), "FAIL").await;
    assert_eq!(first["__typename"], "UpdateUserSuccess", "{first}");
    assert_eq!(first["merged"], false);
    let v1 = first["user"]["updatedAt"].as_str().unwrap().to_owned();

    // The second writer still holds v0 and edits another field.
    let input = json!({ "lastName": "Lovelace" });
    let second = update(&app, &id, &v0, input, "MERGE_IF_DISJOINT").await;
    assert_eq!(second["__typename"], "UpdateUserSuccess", "{second}");
    assert_eq!(second["merged"], true);
    let user = &second["user"];
    assert_eq!(
        (&user["firstName"], &user["lastName"]),
        (&json!("Ada"), &json!("Lovelace"))
    );
    let v2 = user["updatedAt"].as_str().unwrap().to_owned();
    assert!(v2 > v1);

    let entries = history(&app, &id, 20).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    let (newest, oldest) = (&entries[0], &entries[1]);
    assert_eq!(newest["operation"], "UPDATE");
    assert_eq!(strings(&newest["changedFields"]), ["lastName"]);
    assert_eq!(newest["merged"], true);
    assert_eq!(
        (
            newest["previousVersion"].as_str(),
            newest["version"].as_str()
        ),
        (Some(v1.as_str()), Some(v2.as_str()))
    );
    assert_eq!(strings(&oldest["changedFields"]), ["firstName"]);
    assert_eq!(oldest["merged"], false);
    assert_eq!(oldest["previousVersion"].as_str(), Some(v0.as_str()));
    assert_eq!(oldest["changedBy"]["name"], "test");
    assert!(oldest["changedBy"]["id"].is_string());

    // The same disjoint edit without the policy is a conflict that says
    // nothing it sets was touched.
    let third = update(&app, &id, &v0, json!({ "team": "core" }), "FAIL").await;
    assert_eq!(third["__typename"], "UpdateConflict", "{third}");
    assert_eq!(strings(&third["changedFields"]), ["firstName", "lastName"]);
    assert_eq!(strings(&third["conflictingFields"]), Vec::<&str>::new());
    assert_eq!(third["changedFieldsComplete"], true);
    assert_eq!(third["currentUser"]["updatedAt"], v2.as_str());
}
per_backend!(disjoint_edits_merge_and_the_history_shows_both);

async fn overlapping_edits_conflict_naming_the_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let v0 = version(&app, &id).await;
    let first = update(
        &app,
        &id,
        &v0,
        json!({ "firstName": "Ada", "team": "core" }),
        "FAIL",
    )
    .await;
    let v1 = first["user"]["updatedAt"].as_str().unwrap().to_owned();

    let input = json!({ "team": "infra", "jobTitle": "SRE" });
    let second = update(&app, &id, &v0, input, "MERGE_IF_DISJOINT").await;
    assert_eq!(second["__typename"], "UpdateConflict", "{second}");
    assert_eq!(strings(&second["changedFields"]), ["firstName", "team"]);
    assert_eq!(strings(&second["conflictingFields"]), ["team"]);
    assert_eq!(second["changedFieldsComplete"], true);
    // Nothing was written.
    assert_eq!(version(&app, &id).await, v1);
    assert_eq!(history(&app, &id, 20).await.len(), 1);

    // Clearing a field counts as writing it.
    let cleared = update(
        &app,
        &id,
        &v0,
        json!({ "firstName": null }),
        "MERGE_IF_DISJOINT",
    )
    .await;
    assert_eq!(strings(&cleared["conflictingFields"]), ["firstName"]);

    // Setting a field to the value it has changes nothing: the version
    // moves, the history names no field.
    let same = update(&app, &id, &v1, json!({ "team": "core" }), "FAIL").await;
    assert_eq!(same["__typename"], "UpdateUserSuccess", "{same}");
    let entries = history(&app, &id, 20).await;
    assert_eq!(strings(&entries[0]["changedFields"]), Vec::<&str>::new());
    assert_eq!(entries[0]["previousVersion"].as_str(), Some(v1.as_str()));

    // A merge still validates, against the current user.
    let v2 = version(&app, &id).await;
    let bad = update(
        &app,
        &id,
        &v1,
        json!({ "lastName": "" }),
        "MERGE_IF_DISJOINT",
    )
    .await;
    assert_eq!(bad["__typename"], "ValidationFailed", "{bad}");
    assert_eq!(version(&app, &id).await, v2);
}
per_backend!(overlapping_edits_conflict_naming_the_fields);

async fn a_pruned_history_is_flagged_and_never_merged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let v0 = version(&app, &id).await;
    let mut version_now = v0.clone();
    for team in ["a", "b", "c"] {
        let done = update(&app, &id, &version_now, json!({ "team": team }), "FAIL").await;
        version_now = done["user"]["updatedAt"].as_str().unwrap().to_owned();
    }
    // Keep the newest entry of each user only.
    let far_past = chrono::DateTime::UNIX_EPOCH;
    let pruned = app.repo.prune_history(far_past, 1).await.unwrap();
    assert_eq!(pruned, 2);
    let entries = history(&app, &id, 20).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["version"].as_str(), Some(version_now.as_str()));

    let input = json!({ "firstName": "Ada" });
    let refused = update(&app, &id, &v0, input, "MERGE_IF_DISJOINT").await;
    assert_eq!(refused["__typename"], "UpdateConflict", "{refused}");
    assert_eq!(refused["changedFieldsComplete"], false);
    assert_eq!(strings(&refused["changedFields"]), ["team"]);
    // A version that never was one of this user's is not guessed about either.
    let made_up = "2001-01-01T00:00:00.000000Z";
    let refused = update(
        &app,
        &id,
        made_up,
        json!({ "firstName": "Ada" }),
        "MERGE_IF_DISJOINT",
    )
    .await;
    assert_eq!(refused["changedFieldsComplete"], false, "{refused}");

    // Age: everything recorded before now goes.
    let pruned = app
        .repo
        .prune_history(chrono::Utc::now(), 1000)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert!(history(&app, &id, 20).await.is_empty());
}
per_backend!(a_pruned_history_is_flagged_and_never_merged);

async fn every_write_is_recorded_and_paged_within_the_environment(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .gql(
            "mutation { createUser(input: { email: \"h@example.com\", team: \"core\" }) { \
             ... on CreateUserSuccess { user { id updatedAt sessions { id } } } } }",
            json!({}),
        )
        .await["createUser"]["user"]
        .clone();
    let id = created["id"].as_str().unwrap().to_owned();
    let mut version_now = created["updatedAt"].as_str().unwrap().to_owned();
    for n in 0..5 {
        let done = update(
            &app,
            &id,
            &version_now,
            json!({ "jobTitle": format!("t{n}") }),
            "FAIL",
        )
        .await;
        version_now = done["user"]["updatedAt"].as_str().unwrap().to_owned();
    }
    // A nested-record change is recorded under the list it changed.
    let seeded = app.seed(1).await.remove(0);
    let user = app
        .gql(
            "query($id: ID!) { user(id: $id) { updatedAt sessions { id } } }",
            json!({ "id": seeded }),
        )
        .await["user"]
        .clone();
    let revoked = app
        .gql(
            "mutation($id: ID!, $v: DateTime!, $s: ID!) { \
             revokeSession(userId: $id, expectedUpdatedAt: $v, sessionId: $s) { __typename } }",
            json!({ "id": seeded, "v": user["updatedAt"], "s": user["sessions"][0]["id"] }),
        )
        .await;
    assert_eq!(revoked["revokeSession"]["__typename"], "UpdateUserSuccess");
    let entries = history(&app, &seeded, 20).await;
    assert_eq!(entries[0]["operation"], "REVOKE_SESSION");
    assert_eq!(strings(&entries[0]["changedFields"]), ["sessions"]);

    // Pages of 2 over 6 entries: 3 pages, newest first, each version once.
    let entries = history(&app, &id, 2).await;
    assert_eq!(entries.len(), 6, "{entries:?}");
    let versions: Vec<&str> = entries
        .iter()
        .map(|e| e["version"].as_str().unwrap())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] > w[1]), "{versions:?}");
    for pair in entries.windows(2) {
        assert_eq!(pair[0]["previousVersion"], pair[1]["version"]);
    }
    let creation = entries.last().unwrap();
    assert_eq!(creation["operation"], "CREATE");
    assert!(creation["previousVersion"].is_null());
    assert_eq!(strings(&creation["changedFields"]), ["email", "team"]);
    // `User.history` is the same list.
    let on_user = app
        .gql(
            "query($id: ID!) { user(id: $id) { history(first: 1) { edges { node { version } } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        on_user["user"]["history"]["edges"][0]["node"]["version"],
        version_now.as_str()
    );

    // Another environment's token sees none of it.
    let other = app.repo.create_environment("other", &[]).await.unwrap();
    let theirs = app.repo.create_token(other, "theirs").await.unwrap();
    let foreign = client_with_token(&theirs.token);
    let body = json!({ "query": HISTORY, "variables": { "id": id, "first": 100 } });
    let (status, body) = post_as(&foreign, &app, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["userHistory"]["edges"], json!([]), "{body}");
    // Nor does the other environment's own history leak the other way.
    let their_user = app.seed_in(Scope::of_environment(other), 1).await.remove(0);
    assert!(history(&app, &their_user, 20).await.is_empty());

    // A deletion is the last entry, readable after the user is gone.
    let deleted = app
        .gql(
            "mutation($id: ID!, $v: DateTime!) { deleteUser(id: $id, expectedUpdatedAt: $v) { __typename } }",
            json!({ "id": id, "v": version_now }),
        )
        .await;
    assert_eq!(deleted["deleteUser"]["__typename"], "DeleteUserSuccess");
    let entries = history(&app, &id, 20).await;
    assert_eq!(entries.len(), 7);
    assert_eq!(entries[0]["operation"], "DELETE");
    assert_eq!(entries[0]["previousVersion"], version_now.as_str());

    // Bad page arguments get a clear error.
    let (_, body) = app
        .post(json!({ "query": HISTORY, "variables": { "id": id, "first": 101 } }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let (_, body) = app
        .post(json!({ "query": HISTORY, "variables": { "id": id, "after": "nonsense" } }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}
per_backend!(every_write_is_recorded_and_paged_within_the_environment);

/// POSTs `body` with `Idempotency-Key: key`; returns the status, the
/// `Idempotent-Replayed` header and the body's exact bytes.
async fn post_with_key(app: &TestApp, key: &str, body: &Value) -> (StatusCode, bool, String) {
    let response = app
        .client
        .post(app.endpoint())
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    (status, replayed, response.text().await.unwrap())
}

async fn a_retried_request_gets_the_first_answer_and_runs_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let v0 = version(&app, &id).await;
    let request = json!({ "query": UPDATE, "variables": {
        "id": id, "version": v0, "input": { "team": "retried" } } });

    let (status, replayed, first) = post_with_key(&app, "key-1", &request).await;
    assert_eq!((status, replayed), (StatusCode::OK, false), "{first}");
    assert!(first.contains("UpdateUserSuccess"), "{first}");
    // The answer was lost; the client sends the same request again.
    let (status, replayed, again) = post_with_key(&app, "key-1", &request).await;
    assert_eq!((status, replayed), (StatusCode::OK, true));
    assert_eq!(again, first);
    assert_eq!(history(&app, &id, 20).await.len(), 1, "the update ran once");

    // The same key with another body is refused and runs nothing.
    let other = json!({ "query": UPDATE, "variables": {
        "id": id, "version": v0, "input": { "team": "other" } } });
    let (status, _, refused) = post_with_key(&app, "key-1", &other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let refused: Value = serde_json::from_str(&refused).unwrap();
    assert_eq!(error_code(&refused), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(history(&app, &id, 20).await.len(), 1);

    // Keys are per token: another token's same key is another request.
    let token = app
        .repo
        .create_token(usergraph::default_scope().environment_id, "second")
        .await
        .unwrap();
    let response = client_with_token(&token.token)
        .post(app.endpoint())
        .header("idempotency-key", "key-1")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("idempotent-replayed").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"]["updateUser"]["__typename"], "UpdateConflict",
        "{body}"
    );

    // Once pruned (after 24 hours), the key names a new request.
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert!(
        app.repo
            .prune_idempotency_keys(later, 10_000)
            .await
            .unwrap()
            >= 2
    );
    let (status, replayed, fresh) = post_with_key(&app, "key-1", &request).await;
    assert_eq!((status, replayed), (StatusCode::OK, false));
    assert!(fresh.contains("UpdateConflict"), "{fresh}");

    // A malformed key is refused before anything runs.
    let (status, _, _) = post_with_key(&app, "spaces are not allowed", &other).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
per_backend!(a_retried_request_gets_the_first_answer_and_runs_once);

async fn concurrent_requests_with_one_key_run_once(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let id = app.seed(1).await.remove(0);
    let v0 = version(&app, &id).await;
    // The list grows by one entry per execution: a second run would show.
    let request = Arc::new(json!({ "query": UPDATE, "variables": {
        "id": id, "version": v0, "input": { "jobTitle": "once" } } }));
    let racers: Vec<_> = (0..16)
        .map(|_| {
            let (app, request) = (app.clone(), request.clone());
            tokio::spawn(async move { post_with_key(&app, "shared-key", &request).await })
        })
        .collect();
    let mut answers = Vec::new();
    for racer in racers {
        answers.push(racer.await.unwrap());
    }
    let fresh = answers.iter().filter(|(_, replayed, _)| !replayed).count();
    assert_eq!(fresh, 1, "exactly one request ran");
    for (status, _, body) in &answers {
        assert_eq!(*status, StatusCode::OK);
        assert_eq!(body, &answers[0].2, "every answer is the first one");
    }
    assert!(answers[0].2.contains("UpdateUserSuccess"));
    assert_eq!(history(&app, &id, 20).await.len(), 1);
}
per_backend!(concurrent_requests_with_one_key_run_once);

/// Which fields changed is decided in SQL on PostgreSQL's one-statement
/// update and in Rust everywhere else: both must name the same fields, for
/// values that differ only in form (`1` and `1.0`, key order) too.
async fn both_paths_name_the_same_changed_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let first_visit = app
        .gql(
            "query($id: ID!) { user(id: $id) { firstVisit } }",
            json!({ "id": id }),
        )
        .await["user"]["firstVisit"]
        .clone();
    let before = json!({
        "alias": "a", "metadata": { "a": 1, "b": [1, 2] }, "lists": ["x", "y"],
        "chain": "ETH", "emailNotification": true, "tShirtSize": "M", "team": "t",
    });
    let after = json!({
        "alias": "a", "metadata": { "b": [1, 2], "a": 1.0 }, "lists": ["x", "y"],
        "chain": "SOL", "emailNotification": false, "tShirtSize": "M", "team": null,
    });
    let expected = ["chain", "emailNotification", "metadata", "team"];
    // The one-statement path (no stored facts), then the checked one
    // (`firstVisit`, set to the value it has, needs the stored user).
    for checked in [false, true] {
        let mut version_now = version(&app, &id).await;
        for input in [&before, &after] {
            let mut input = input.clone();
            if checked {
                input["firstVisit"] = first_visit.clone();
            }
            let done = update(&app, &id, &version_now, input, "FAIL").await;
            assert_eq!(done["__typename"], "UpdateUserSuccess", "{done}");
            version_now = done["user"]["updatedAt"].as_str().unwrap().to_owned();
        }
        let entries = history(&app, &id, 1).await;
        assert_eq!(
            strings(&entries[0]["changedFields"]),
            expected,
            "checked: {checked}"
        );
    }
}
per_backend!(both_paths_name_the_same_changed_fields);

/// The number `sql` (a `SELECT count(*) AS n …`) counts on the app's database.
async fn count(app: &TestApp, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let query = diesel::sql_query(sql);
    let counted: Count = match app.repo.db().conn().await.unwrap() {
        Conn::Pg(mut c) | Conn::PgPooled(mut c) => query.get_result(&mut *c).await,
        Conn::Sqlite(mut c) => query.get_result(&mut *c).await,
    }
    .unwrap();
    counted.n
}

/// An environment's deletion takes its history along, and only its own:
/// the entries have no foreign key to `environments` on PostgreSQL, where
/// a trigger deletes them instead (migration
/// `…000008_history_unlocked_environment`).
async fn a_deleted_environment_takes_its_history_along(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let gone = app.repo.create_environment("gone", &[]).await.unwrap();
    let token = app.repo.create_token(gone, "gone").await.unwrap();
    let create = |email: &str| {
        json!({ "query": format!(
            "mutation {{ createUser(input: {{ email: \"{email}\", team: \"core\" }}) {{ __typename }} }}"
        ) })
    };
    let (status, body) = post_as(
        &client_with_token(&token.token),
        &app,
        create("g@example.com"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"]["createUser"]["__typename"], "CreateUserSuccess",
        "{body}"
    );
    let (_, body) = app.post(create("k@example.com")).await;
    assert_eq!(
        body["data"]["createUser"]["__typename"], "CreateUserSuccess",
        "{body}"
    );
    let kept = usergraph::default_scope().environment_id;
    let entries_of = |environment: uuid::Uuid| {
        format!("SELECT count(*) AS n FROM user_history WHERE environment_id = '{environment}'")
    };
    assert_eq!(count(&app, &entries_of(gone)).await, 1);
    assert_eq!(count(&app, &entries_of(kept)).await, 1);

    let delete = diesel::sql_query(format!("DELETE FROM environments WHERE id = '{gone}'"));
    let deleted = match app.repo.db().conn().await.unwrap() {
        Conn::Pg(mut c) | Conn::PgPooled(mut c) => delete.execute(&mut *c).await,
        Conn::Sqlite(mut c) => delete.execute(&mut *c).await,
    };
    assert_eq!(deleted.unwrap(), 1);
    assert_eq!(count(&app, &entries_of(gone)).await, 0);
    assert_eq!(count(&app, &entries_of(kept)).await, 1);
}
per_backend!(a_deleted_environment_takes_its_history_along);
