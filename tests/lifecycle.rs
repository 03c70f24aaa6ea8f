//! Lists, creation, deletion, nested-record changes and object
//! identification, over HTTP on SQLite and PostgreSQL.

mod common;

use std::sync::Arc;

use common::{error_code, Backend, TestApp};
use serde_json::{json, Value};
use usergraph::repo::Scope;

const PAGE: &str = "query($first: Int, $after: String, $filter: UserFilter) { \
    users(first: $first, after: $after, filter: $filter) { totalCount \
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } \
    edges { cursor node { id createdAt email } } } }";

const DELETE: &str =
    "mutation($id: ID!, $v: DateTime!) { deleteUser(id: $id, expectedUpdatedAt: $v) { \
    __typename ... on DeleteUserSuccess { id } ... on UpdateConflict { currentUser { updatedAt } } \
    ... on UserNotFound { id } } }";

const CREATE: &str = "mutation($input: CreateUserInput!) { createUser(input: $input) { __typename \
    ... on CreateUserSuccess { user { id email firstName newUser createdAt updatedAt firstVisit lastVisit \
    wallets { id } sessions { id } missingFields { field } } } \
    ... on ValidationFailed { fieldErrors { field code } } } }";

const CHILD_RESULT: &str = "__typename ... on UpdateUserSuccess { user { updatedAt \
    sessions { id revokedAt } mfaDevices { id type isDefault } } } \
    ... on UpdateConflict { currentUser { updatedAt } } ... on UserNotFound { id } \
    ... on ValidationFailed { fieldErrors { field code } } ";

/// Every nested list, for the statement count.
const FULL_PAGE: &str = "query($first: Int) { users(first: $first) { totalCount edges { node { id \
    verifiedCredentials { id } wallets { id } sessions { id } mfaDevices { id } oauthAccounts { id } \
    chainalysisChecks { id } missingFields { field } } } } }";

async fn page(app: &TestApp, first: i64, after: Option<&str>) -> Value {
    app.gql(PAGE, json!({ "first": first, "after": after }))
        .await["users"]
        .clone()
}

fn ids(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn child_change(
    app: &TestApp,
    mutation: &str,
    child_arg: &str,
    user: &str,
    version: &str,
    child: &str,
) -> Value {
    let document = format!(
        "mutation($user: ID!, $v: DateTime!, $child: ID!) {{ {mutation}(userId: $user, expectedUpdatedAt: $v, {child_arg}: $child) {{ {CHILD_RESULT} }} }}"
    );
    app.gql(
        &document,
        json!({ "user": user, "v": version, "child": child }),
    )
    .await[mutation]
        .clone()
}

async fn users_page_in_order_with_opaque_cursors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed(5).await;
    let first = page(&app, 2, None).await;
    assert_eq!(first["totalCount"], 5);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    assert_eq!(first["pageInfo"]["hasPreviousPage"], false);
    let cursor = first["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
    assert_eq!(first["edges"][1]["cursor"], cursor.as_str());
    assert!(
        !cursor.contains(ids(&first)[1].as_str()),
        "cursors are opaque"
    );

    let second = page(&app, 2, Some(&cursor)).await;
    assert_eq!(second["pageInfo"]["hasPreviousPage"], true);
    let last = page(&app, 2, second["pageInfo"]["endCursor"].as_str()).await;
    assert_eq!(last["pageInfo"]["hasNextPage"], false);

    let all: Vec<String> = [ids(&first), ids(&second), ids(&last)].concat();
    assert_eq!(ids(&page(&app, 100, None).await), all);
    let created: Vec<String> = page(&app, 100, None).await["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["createdAt"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = created.clone();
    sorted.sort();
    assert_eq!(created, sorted, "oldest first");
    assert_eq!(page(&app, 0, None).await["edges"], json!([]));
}
per_backend!(users_page_in_order_with_opaque_cursors);

async fn users_page_size_and_cursor_are_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (first, after) in [
        (101, None),
        (-1, None),
        (10, Some("bm90LWEtY3Vyc29y")),
        (10, Some("%%%")),
    ] {
        let (status, body) = app
            .post(json!({ "query": PAGE, "variables": { "first": first, "after": after } }))
            .await;
        assert_eq!(status, 200);
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(if first == 10 { "cursor" } else { "100" }));
    }
    let one_hundred = page(&app, 100, None).await;
    assert_eq!(one_hundred["edges"], json!([]));
}
per_backend!(users_page_size_and_cursor_are_checked);

async fn users_filter_by_email_username_and_creation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = app.seed(3).await;
    let second = app.read_user(&ids[1]).await;
    let by_email = app
        .gql(
            PAGE,
            json!({ "filter": { "email": second["email"].as_str().unwrap().to_uppercase() } }),
        )
        .await;
    assert_eq!(self::ids(&by_email["users"]), vec![ids[1].clone()]);
    assert_eq!(by_email["users"]["totalCount"], 1);
    let by_username = app
        .gql(
            PAGE,
            json!({ "filter": { "username": second["username"] } }),
        )
        .await;
    assert_eq!(self::ids(&by_username["users"]), vec![ids[1].clone()]);
    let after = app
        .gql(
            PAGE,
            json!({ "filter": { "createdAfter": second["createdAt"] } }),
        )
        .await;
    assert_eq!(self::ids(&after["users"]), vec![ids[2].clone()]);
    let before = app
        .gql(
            PAGE,
            json!({ "filter": { "createdBefore": second["createdAt"] } }),
        )
        .await;
    assert_eq!(self::ids(&before["users"]), vec![ids[0].clone()]);
}
per_backend!(users_filter_by_email_username_and_creation);

async fn nested_lists_cost_the_same_for_one_user_or_a_hundred(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed(100).await;
    let mut counts = Vec::new();
    for first in [1, 100] {
        let before = app.repo.db().statements_run();
        let data = app.gql(FULL_PAGE, json!({ "first": first })).await;
        counts.push(app.repo.db().statements_run() - before);
        assert_eq!(data["users"]["edges"].as_array().unwrap().len(), first);
        assert_eq!(
            data["users"]["edges"][0]["node"]["mfaDevices"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
    assert_eq!(
        counts[0], counts[1],
        "statements for first: 1 and first: 100: {counts:?}"
    );
    // The token lookup, the page, the count, six nested relations and the environment.
    assert!(counts[1] <= 10, "{counts:?}");
}
per_backend!(nested_lists_cost_the_same_for_one_user_or_a_hundred);

/// Every read path hands a user's nested list over oldest first, ties
/// broken by id: the one-user read and the update's answer (one statement
/// on PostgreSQL, each list aggregated in that order) and a page (a
/// batched statement per list), whatever order the rows were written in.
async fn nested_lists_come_oldest_first_then_by_id(backend: Backend) {
    use diesel_async::RunQueryDsl;
    use usergraph::db::models::WalletRow;
    use usergraph::db::schema::wallets;
    use usergraph::db::types::{DbId, DbTime};
    use usergraph::db::Conn;

    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let nested = "id updatedAt createdAt wallets { id }";
    let read = format!("query($id: ID!) {{ user(id: $id) {{ {nested} }} }}");
    let user = app.gql(&read, json!({ "id": id })).await["user"].clone();
    let seeded: Vec<String> = wallet_ids(&user);
    assert_eq!(seeded.len(), 2, "{user}");
    // The seeded two share their creation instant; their ids are UUIDv7s.
    let created: chrono::DateTime<chrono::Utc> =
        user["createdAt"].as_str().unwrap().parse().unwrap();
    let wallet = |wallet_id: &str, created_at| WalletRow {
        id: DbId(wallet_id.parse().unwrap()),
        user_id: DbId(id.parse().unwrap()),
        name: "extra".into(),
        chain: "ETH".into(),
        public_key: format!("0x{wallet_id}"),
        provider: "browserExtension".into(),
        created_at: DbTime(created_at),
    };
    let newest = "00000000-0000-7000-8000-000000000001";
    let oldest = "ffffffff-ffff-7fff-bfff-ffffffffffff";
    let same_instant_lower_id = "00000000-0000-7000-8000-000000000002";
    let rows = [
        wallet(newest, created + chrono::Duration::days(1)),
        wallet(oldest, created - chrono::Duration::days(1)),
        wallet(same_instant_lower_id, created),
    ];
    // The same statements for either backend's connection type.
    macro_rules! insert_rows {
        ($c:expr) => {
            for row in &rows {
                diesel::insert_into(wallets::table)
                    .values(row)
                    .execute(&mut *$c)
                    .await
                    .unwrap();
            }
        };
    }
    match app.repo.db().conn().await.unwrap() {
        Conn::Pg(mut c) | Conn::PgPooled(mut c) => insert_rows!(c),
        Conn::Sqlite(mut c) => insert_rows!(c),
    }
    let expected = [
        oldest,
        same_instant_lower_id,
        &seeded[0],
        &seeded[1],
        newest,
    ];

    let user = app.gql(&read, json!({ "id": id })).await["user"].clone();
    assert_eq!(wallet_ids(&user), expected, "one user's read");
    let page = app
        .gql(
            &format!("{{ users(first: 10) {{ edges {{ node {{ {nested} }} }} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(
        wallet_ids(&page["users"]["edges"][0]["node"]),
        expected,
        "a page"
    );
    let update = format!(
        "mutation($id: ID!, $v: DateTime!) {{ updateUser(id: $id, expectedUpdatedAt: $v, \
         input: {{ firstName: \"Ada\" }}) {{ ... on UpdateUserSuccess {{ user {{ {nested} }} }} }} }}"
    );
    let variables = json!({ "id": id, "v": user["updatedAt"] });
    let updated = app.gql(&update, variables).await["updateUser"]["user"].clone();
    assert_eq!(wallet_ids(&updated), expected, "the update's answer");
}
per_backend!(nested_lists_come_oldest_first_then_by_id);

fn wallet_ids(user: &Value) -> Vec<String> {
    user["wallets"]
        .as_array()
        .unwrap_or_else(|| panic!("wallets in {user}"))
        .iter()
        .map(|wallet| wallet["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A user with three nested lists, read and then updated: on PostgreSQL
/// each is one statement (after the token lookup), the lists built inside
/// it and the update's history entry written by it; SQLite, where a
/// statement costs no round trip, reads list by list.
async fn statements_of_a_nested_read_and_a_plain_update(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let nested = "id updatedAt wallets { id } sessions { id } mfaDevices { id isDefault }";
    let read = format!("query($id: ID!) {{ user(id: $id) {{ {nested} }} }}");
    let before = app.repo.db().statements_run();
    let user = app.gql(&read, json!({ "id": id })).await["user"].clone();
    let read_statements = app.repo.db().statements_run() - before;
    assert_eq!(user["wallets"].as_array().unwrap().len(), 2, "{user}");
    assert_eq!(user["mfaDevices"].as_array().unwrap().len(), 2, "{user}");

    let update = format!(
        "mutation($id: ID!, $v: DateTime!) {{ updateUser(id: $id, expectedUpdatedAt: $v, \
         input: {{ firstName: \"Ada\" }}) {{ ... on UpdateUserSuccess {{ user {{ firstName {nested} }} }} }} }}"
    );
    let before = app.repo.db().statements_run();
    let variables = json!({ "id": id, "v": user["updatedAt"] });
    let updated = app.gql(&update, variables).await["updateUser"]["user"].clone();
    let update_statements = app.repo.db().statements_run() - before;
    assert_eq!(updated["firstName"], "Ada");
    assert_eq!(updated["wallets"], user["wallets"]);
    assert_eq!(updated["sessions"], user["sessions"]);
    assert_eq!(updated["mfaDevices"], user["mfaDevices"]);
    assert_ne!(updated["updatedAt"], user["updatedAt"]);

    // Counts include the token lookup. On PostgreSQL the update records its
    // history entry in the same statement; SQLite's is a transaction
    // (`BEGIN IMMEDIATE`, the row before, the `UPDATE`, the entry, the
    // lists, `COMMIT`).
    let expected = match backend {
        Backend::Postgres => (2, 2),
        Backend::Sqlite => (5, 9),
    };
    assert_eq!((read_statements, update_statements), expected);
}
per_backend!(statements_of_a_nested_read_and_a_plain_update);

async fn paging_sees_every_user_once_during_concurrent_updates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seeded = app.seed(250).await;
    let app = Arc::new(app);
    let writer = {
        let (app, seeded) = (app.clone(), seeded.clone());
        tokio::spawn(async move {
            let mut updates = 0;
            for round in 0..3 {
                for id in seeded.iter().step_by(7) {
                    let user = app.read_user(id).await;
                    let version = user["updatedAt"].as_str().unwrap();
                    let result = app
                        .update(id, version, json!({ "team": format!("r{round}") }))
                        .await;
                    assert_eq!(result["__typename"], "UpdateUserSuccess");
                    updates += 1;
                }
            }
            updates
        })
    };
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = page(&app, 100, after.as_deref()).await;
        seen.extend(ids(&page));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert!(writer.await.unwrap() > 0);
    assert_eq!(seen.len(), 250);
    let all = ids(&page(&app, 100, None).await);
    assert_eq!(&seen[..100], &all[..], "in order");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 250, "each user exactly once");
    let mut expected = seeded.clone();
    expected.sort();
    assert_eq!(unique, expected);
}
per_backend!(paging_sees_every_user_once_during_concurrent_updates);

async fn create_user_applies_the_update_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let data = app
        .gql(CREATE, json!({ "input": { "email": "New.Person@example.com", "firstName": "New", "newUser": false } }))
        .await;
    let result = &data["createUser"];
    assert_eq!(result["__typename"], "CreateUserSuccess", "{result}");
    let user = &result["user"];
    assert_eq!(user["email"], "New.Person@example.com");
    assert_eq!(user["newUser"], false);
    assert_eq!(user["createdAt"], user["updatedAt"]);
    assert_eq!(user["firstVisit"], user["createdAt"]);
    assert_eq!(user["wallets"], json!([]));
    assert_eq!(user["missingFields"], json!([]));
    let stored = app.read_user(user["id"].as_str().unwrap()).await;
    assert_eq!(stored["firstName"], "New");

    let data = app
        .gql(CREATE, json!({ "input": { "email": "new.person@EXAMPLE.com", "firstName": " ", "phoneNumber": "123", "newUser": null } }))
        .await;
    let result = &data["createUser"];
    assert_eq!(result["__typename"], "ValidationFailed");
    let mut codes: Vec<(String, String)> = result["fieldErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().into(),
                e["code"].as_str().unwrap().into(),
            )
        })
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            ("email", "TAKEN"),
            ("firstName", "BLANK"),
            ("newUser", "REQUIRED"),
            ("phoneNumber", "INVALID_PHONE_NUMBER")
        ]
        .map(|(f, c)| (f.to_owned(), c.to_owned()))
    );
    assert_eq!(
        page(&app, 10, None).await["totalCount"],
        1,
        "nothing else was created"
    );
}
per_backend!(create_user_applies_the_update_rules);

async fn concurrent_creates_of_one_email_yield_one_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // On PostgreSQL all may pass the pre-check at once; the unique index
    // decides, and the losers get TAKEN, not an internal error.
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let input = json!({ "input": { "email": "Same@Example.com", "firstName": format!("n{i}") } });
                app.gql(CREATE, input).await["createUser"].clone()
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let created = results
        .iter()
        .filter(|r| r["__typename"] == "CreateUserSuccess")
        .count();
    assert_eq!(created, 1, "{results:?}");
    for result in results
        .iter()
        .filter(|r| r["__typename"] != "CreateUserSuccess")
    {
        assert_eq!(result["__typename"], "ValidationFailed", "{result}");
        let codes: Vec<&Value> = result["fieldErrors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["code"])
            .collect();
        assert_eq!(codes, [&json!("TAKEN")], "{result}");
    }
    assert_eq!(page(&app, 10, None).await["totalCount"], 1);
}
per_backend!(concurrent_creates_of_one_email_yield_one_user);

async fn delete_user_is_guarded_by_its_version(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = app.seed(2).await;
    let user = app.read_user(&ids[0]).await;
    let wallet = user["wallets"][0]["id"].as_str().unwrap().to_owned();
    let updated = app
        .update(
            &ids[0],
            user["updatedAt"].as_str().unwrap(),
            json!({ "team": "x" }),
        )
        .await;

    let stale = app
        .gql(DELETE, json!({ "id": ids[0], "v": user["updatedAt"] }))
        .await;
    assert_eq!(stale["deleteUser"]["__typename"], "UpdateConflict");
    assert_eq!(
        stale["deleteUser"]["currentUser"]["updatedAt"],
        updated["user"]["updatedAt"]
    );
    assert!(app.read_user(&ids[0]).await.is_object());

    let done = app
        .gql(
            DELETE,
            json!({ "id": ids[0], "v": updated["user"]["updatedAt"] }),
        )
        .await;
    assert_eq!(
        done["deleteUser"],
        json!({ "__typename": "DeleteUserSuccess", "id": ids[0] })
    );
    assert_eq!(
        app.gql(
            "query($id: ID!) { user(id: $id) { id } }",
            json!({ "id": ids[0] })
        )
        .await["user"],
        Value::Null
    );
    let node = app
        .gql(
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": wallet }),
        )
        .await;
    assert_eq!(
        node["node"],
        Value::Null,
        "nested records went with the user"
    );
    assert_eq!(
        app.read_user(&ids[1]).await["wallets"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "nothing else did"
    );

    let again = app
        .gql(
            DELETE,
            json!({ "id": ids[0], "v": updated["user"]["updatedAt"] }),
        )
        .await;
    assert_eq!(again["deleteUser"]["__typename"], "UserNotFound");

    // Seeding after a deletion skips the numbers still in use.
    assert_eq!(app.seed(2).await.len(), 2);
}
per_backend!(delete_user_is_guarded_by_its_version);

async fn missing_fields_follow_the_environment(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // The default environment requires an email; demo users have one.
    let id = app.seed(1).await.remove(0);
    let query = "query($id: ID!) { user(id: $id) { updatedAt missingFields { field } } }";
    let user = app.gql(query, json!({ "id": id })).await["user"].clone();
    assert_eq!(user["missingFields"], json!([]));
    app.update(
        &id,
        user["updatedAt"].as_str().unwrap(),
        json!({ "email": null }),
    )
    .await;
    let user = app.gql(query, json!({ "id": id })).await["user"].clone();
    assert_eq!(user["missingFields"], json!([{ "field": "email" }]));
}
per_backend!(missing_fields_follow_the_environment);

async fn missing_fields_cover_every_requirable_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    use usergraph::domain::REQUIRABLE_FIELDS;
    let required: Vec<String> = REQUIRABLE_FIELDS.iter().map(|f| f.to_string()).collect();
    assert!(app
        .repo
        .create_environment("typo", &["emial".to_owned()])
        .await
        .is_err());
    let strict = app
        .repo
        .create_environment("strict", &required)
        .await
        .unwrap();
    let token = app.repo.create_token(strict, "strict").await.unwrap().token;
    let client = common::client_with_token(&token);
    for (input, still_missing) in [
        (json!({}), REQUIRABLE_FIELDS.to_vec()),
        (
            json!({ "lists": [], "metadata": {}, "email": "x@example.com" }),
            {
                REQUIRABLE_FIELDS
                    .iter()
                    .copied()
                    .filter(|f| *f != "email")
                    .collect()
            },
        ),
    ] {
        let body: Value = client
            .post(app.endpoint())
            .json(&json!({ "query": CREATE, "variables": { "input": input } }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let missing: Vec<&str> = body["data"]["createUser"]["user"]["missingFields"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|m| m["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            missing, still_missing,
            "every requirable field is recognised"
        );
    }
}
per_backend!(missing_fields_cover_every_requirable_field);

async fn node_resolves_every_type_within_the_environment(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let user = app.read_user(&id).await;
    let query = "query($id: ID!) { node(id: $id) { __typename id ... on Wallet { chain } ... on User { email } } }";
    let node = app.gql(query, json!({ "id": id })).await["node"].clone();
    assert_eq!(node["__typename"], "User");
    assert_eq!(node["email"], user["email"]);
    for (list, typename) in [
        ("wallets", "Wallet"),
        ("sessions", "Session"),
        ("mfaDevices", "MfaDevice"),
        ("verifiedCredentials", "VerifiedCredential"),
        ("oauthAccounts", "OAuthAccount"),
        ("chainalysisChecks", "ChainalysisCheck"),
    ] {
        let child = user[list][0]["id"].as_str().unwrap();
        let node = app.gql(query, json!({ "id": child })).await["node"].clone();
        assert_eq!(node["__typename"], typename);
        assert_eq!(node["id"], child);
    }

    let other = app.repo.create_environment("other", &[]).await.unwrap();
    let foreign = app.seed_in(Scope::of_environment(other), 1).await.remove(0);
    for id in [
        foreign.as_str(),
        "not-a-uuid",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
    ] {
        assert_eq!(
            app.gql(query, json!({ "id": id })).await["node"],
            Value::Null,
            "{id}"
        );
    }
}
per_backend!(node_resolves_every_type_within_the_environment);

async fn nested_changes_move_the_version(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = app.seed(2).await;
    let user = app.read_user(&ids[0]).await;
    let v0 = user["updatedAt"].as_str().unwrap().to_owned();
    let session = user["sessions"][0]["id"].as_str().unwrap().to_owned();
    let (totp, passkey) = (
        user["mfaDevices"][0]["id"].as_str().unwrap(),
        user["mfaDevices"][1]["id"].as_str().unwrap(),
    );
    assert_eq!(user["mfaDevices"][0]["isDefault"], true);

    let revoked = child_change(&app, "revokeSession", "sessionId", &ids[0], &v0, &session).await;
    assert_eq!(revoked["__typename"], "UpdateUserSuccess", "{revoked}");
    assert!(revoked["user"]["sessions"][0]["revokedAt"].is_string());
    let v1 = revoked["user"]["updatedAt"].as_str().unwrap().to_owned();
    assert!(v1 > v0);

    // A client holding the old version learns that the user changed.
    let stale = child_change(
        &app,
        "setDefaultMfaDevice",
        "deviceId",
        &ids[0],
        &v0,
        passkey,
    )
    .await;
    assert_eq!(stale["__typename"], "UpdateConflict");
    assert_eq!(stale["currentUser"]["updatedAt"], v1.as_str());

    let flipped = child_change(
        &app,
        "setDefaultMfaDevice",
        "deviceId",
        &ids[0],
        &v1,
        passkey,
    )
    .await;
    let devices = &flipped["user"]["mfaDevices"];
    assert_eq!(
        (
            devices[0]["isDefault"].clone(),
            devices[1]["isDefault"].clone()
        ),
        (json!(false), json!(true))
    );
    let v2 = flipped["user"]["updatedAt"].as_str().unwrap().to_owned();

    let removed = child_change(&app, "removeMfaDevice", "deviceId", &ids[0], &v2, passkey).await;
    assert_eq!(
        removed["user"]["mfaDevices"],
        json!([{ "id": totp, "type": "TOTP", "isDefault": true }])
    );
    let v3 = removed["user"]["updatedAt"].as_str().unwrap().to_owned();

    // Another user's session, or no session at all: a field error, nothing changes.
    let theirs = app.read_user(&ids[1]).await["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for session in [theirs.as_str(), "nope"] {
        let result = child_change(&app, "revokeSession", "sessionId", &ids[0], &v3, session).await;
        assert_eq!(
            result["fieldErrors"],
            json!([{ "field": "sessionId", "code": "NOT_FOUND" }])
        );
    }
    assert_eq!(app.read_user(&ids[0]).await["updatedAt"], v3.as_str());
    let missing = child_change(
        &app,
        "revokeSession",
        "sessionId",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        &v3,
        &session,
    )
    .await;
    assert_eq!(missing["__typename"], "UserNotFound");
}
per_backend!(nested_changes_move_the_version);
