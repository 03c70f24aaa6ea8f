//! Live updates over graphql-transport-ws: what a subscriber receives, the
//! protocol's refusals and this server's bounds, and delivery across
//! server processes on one PostgreSQL database.

mod common;

use std::time::{Duration, Instant};

use common::proxy::{self, Proxy};
use common::ws::{Received, WsClient};
use common::{Backend, Setup, TestApp, USER_FIELDS};
use serde_json::{json, Value};
use usergraph::config::DatabaseUrl;
use usergraph::http::HttpOptions;

/// `userUpdated` selecting every event type and the whole user.
fn user_updated() -> String {
    format!(
        "subscription($id: ID!, $after: DateTime) {{ userUpdated(id: $id, after: $after) {{ \
         __typename ... on UserChanged {{ kind user {{ {USER_FIELDS} }} }} \
         ... on UserDeleted {{ id }} ... on UserNotFound {{ id message }} }} }}"
    )
}

const USER_EVENTS: &str =
    "subscription($filter: UserEventsFilter) { userEvents(filter: $filter) { \
    __typename ... on UserChanged { kind user { id team updatedAt } } \
    ... on UserDeleted { id } ... on EventsMissed { message } } }";

/// `userUpdated` selecting the user's team and version.
const USER_TEAM: &str = "subscription($id: ID!, $after: DateTime) { \
    userUpdated(id: $id, after: $after) { ... on UserChanged { user { team updatedAt } } } }";

const DELETE_USER: &str = "mutation($id: ID!, $version: DateTime!) { \
    deleteUser(id: $id, expectedUpdatedAt: $version) { __typename } }";

/// The `data` of a `next` payload's subscription field.
fn event(payload: &Value, field: &str) -> Value {
    assert!(payload.get("errors").is_none(), "{payload}");
    payload["data"][field].clone()
}

/// Waits until `app`'s feed has `count` subscribers: their streams have
/// started, and any change committed from now on, by any process, reaches
/// them.
async fn listening(app: &TestApp, count: usize) {
    let deadline = Instant::now() + common::ws::PATIENCE;
    while app.repo.feed().subscribers() < count || !app.repo.feed().hears_all() {
        assert!(Instant::now() < deadline, "subscriptions did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn version_of(app: &TestApp, id: &str) -> String {
    app.read_user(id).await["updatedAt"]
        .as_str()
        .expect("updatedAt")
        .to_owned()
}

/// Sets the user's team with a compare-and-set; returns the new version.
async fn set_team(app: &TestApp, id: &str, team: &str) -> String {
    let version = version_of(app, id).await;
    let result = app.update(id, &version, json!({ "team": team })).await;
    assert_eq!(result["__typename"], "UpdateUserSuccess", "{result}");
    result["user"]["updatedAt"].as_str().unwrap().to_owned()
}

async fn a_change_reaches_its_subscriber_and_a_delete_ends_the_stream(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let version = version_of(&app, &id).await;
    let mut ws = WsClient::initialised(app.address, &app.token).await;
    // `after`: what the client holds, so that a change made before the
    // subscription starts is sent too.
    ws.subscribe("1", &user_updated(), json!({ "id": id, "after": version }))
        .await;
    // Nothing before a change: the client holds the current user.
    assert_eq!(ws.recv_within(Duration::from_millis(300)).await, None);

    let result = app.update(&id, &version, json!({ "team": "Live" })).await;
    let changed = event(&ws.next("1").await, "userUpdated");
    assert_eq!(changed["__typename"], "UserChanged");
    assert_eq!(changed["kind"], "UPDATED");
    // The user as the writer's own answer has it, nested lists included.
    assert_eq!(changed["user"], result["user"]);
    assert!(!changed["user"]["wallets"].as_array().unwrap().is_empty());

    let version = changed["user"]["updatedAt"].as_str().unwrap();
    let deleted = app
        .gql(DELETE_USER, json!({ "id": id, "version": version }))
        .await;
    assert_eq!(deleted["deleteUser"]["__typename"], "DeleteUserSuccess");
    let gone = event(&ws.next("1").await, "userUpdated");
    assert_eq!(gone, json!({ "__typename": "UserDeleted", "id": id }));
    ws.completed("1").await;
}
per_backend!(a_change_reaches_its_subscriber_and_a_delete_ends_the_stream);

async fn nested_record_changes_are_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let user = app.read_user(&id).await;
    let session = user["sessions"][0]["id"].as_str().unwrap().to_owned();
    let mut ws = WsClient::initialised(app.address, &app.token).await;
    let after = json!({ "id": id, "after": user["updatedAt"] });
    ws.subscribe("s", &user_updated(), after).await;
    let revoke = "mutation($u: ID!, $v: DateTime!, $s: ID!) { \
        revokeSession(userId: $u, expectedUpdatedAt: $v, sessionId: $s) { __typename } }";
    let data = app
        .gql(
            revoke,
            json!({ "u": id, "v": user["updatedAt"], "s": session }),
        )
        .await;
    assert_eq!(data["revokeSession"]["__typename"], "UpdateUserSuccess");
    let changed = event(&ws.next("s").await, "userUpdated");
    let sessions = changed["user"]["sessions"].as_array().unwrap();
    let revoked = sessions
        .iter()
        .find(|s| s["id"] == session.as_str())
        .unwrap();
    assert!(revoked["revokedAt"].is_string(), "{revoked}");
}
per_backend!(nested_record_changes_are_changes);

async fn after_sends_a_newer_current_state_first_and_unknown_users_are_typed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let held = version_of(&app, &id).await;
    let current = set_team(&app, &id, "Moved").await;
    let mut ws = WsClient::initialised(app.address, &app.token).await;
    ws.subscribe("old", &user_updated(), json!({ "id": id, "after": held }))
        .await;
    let first = event(&ws.next("old").await, "userUpdated");
    assert_eq!(first["user"]["updatedAt"], current.as_str());
    assert_eq!(first["user"]["team"], "Moved");
    // Holding the current version: nothing to send.
    ws.subscribe(
        "new",
        &user_updated(),
        json!({ "id": id, "after": current }),
    )
    .await;
    assert_eq!(ws.recv_within(Duration::from_millis(300)).await, None);

    for unknown in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        ws.subscribe(&unknown, &user_updated(), json!({ "id": unknown }))
            .await;
        let answer = event(&ws.next(&unknown).await, "userUpdated");
        assert_eq!(answer["__typename"], "UserNotFound");
        assert_eq!(answer["id"], unknown.as_str());
        ws.completed(&unknown).await;
    }
}
per_backend!(after_sends_a_newer_current_state_first_and_unknown_users_are_typed);

async fn other_environments_see_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let other = app.repo.create_environment("B", &[]).await.unwrap();
    let other_token = app.repo.create_token(other, "b").await.unwrap().token;
    let mut outsider = WsClient::initialised(app.address, &other_token).await;
    // Another environment's user is not found, and its events never come.
    outsider
        .subscribe("u", &user_updated(), json!({ "id": id }))
        .await;
    assert_eq!(
        event(&outsider.next("u").await, "userUpdated")["__typename"],
        "UserNotFound"
    );
    outsider.completed("u").await;
    outsider.subscribe("all", USER_EVENTS, json!({})).await;
    let mut insider = WsClient::initialised(app.address, &app.token).await;
    insider.subscribe("all", USER_EVENTS, json!({})).await;
    listening(&app, 2).await;

    set_team(&app, &id, "Private").await;
    let seen = event(&insider.next("all").await, "userEvents");
    assert_eq!(seen["user"]["id"], id.as_str());
    assert_eq!(outsider.recv_within(Duration::from_millis(500)).await, None);
}
per_backend!(other_environments_see_nothing);

async fn environment_events_follow_creates_updates_and_deletes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = app.seed(2).await;
    let mut ws = WsClient::initialised(app.address, &app.token).await;
    ws.subscribe("all", USER_EVENTS, json!({})).await;
    let only = json!({ "filter": { "ids": [ids[1]], "kinds": ["UPDATED"] } });
    ws.subscribe("one", USER_EVENTS, only).await;
    listening(&app, 2).await;

    let create = "mutation { createUser(input: { team: \"New\", email: \"new@example.com\" }) { \
        __typename ... on CreateUserSuccess { user { id updatedAt } } } }";
    let created = app.gql(create, json!({})).await["createUser"]["user"].clone();
    let new_id = created["id"].as_str().unwrap().to_owned();
    let event_all = event(&ws.next("all").await, "userEvents");
    assert_eq!(event_all["kind"], "CREATED");
    assert_eq!(event_all["user"]["id"], new_id.as_str());

    set_team(&app, &ids[0], "Zero").await;
    let version = set_team(&app, &ids[1], "One").await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        match ws.recv().await {
            Received::Message(message) => {
                let data = event(&message["payload"], "userEvents");
                seen.push((message["id"].as_str().unwrap().to_owned(), data));
            }
            other => panic!("{other:?}"),
        }
    }
    let for_all: Vec<_> = seen.iter().filter(|(sub, _)| sub == "all").collect();
    let for_one: Vec<_> = seen.iter().filter(|(sub, _)| sub == "one").collect();
    assert_eq!(for_all.len(), 2, "{seen:?}");
    assert_eq!(for_all[0].1["user"]["team"], "Zero");
    assert_eq!(for_all[1].1["user"]["team"], "One");
    assert_eq!(for_one.len(), 1, "{seen:?}");
    assert_eq!(for_one[0].1["user"]["id"], ids[1].as_str());
    assert_eq!(for_one[0].1["user"]["updatedAt"], version.as_str());

    app.gql(DELETE_USER, json!({ "id": ids[1], "version": version }))
        .await;
    let deleted = event(&ws.next("all").await, "userEvents");
    assert_eq!(
        deleted,
        json!({ "__typename": "UserDeleted", "id": ids[1] })
    );
    // "one" asked for updates only.
    assert_eq!(ws.recv_within(Duration::from_millis(300)).await, None);
}
per_backend!(environment_events_follow_creates_updates_and_deletes);

async fn rapid_updates_arrive_in_order_ending_with_the_last(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let mut version = version_of(&app, &id).await;
    let mut ws = WsClient::initialised(app.address, &app.token).await;
    ws.subscribe("1", USER_TEAM, json!({ "id": id, "after": version }))
        .await;
    for n in 0..200 {
        let result = app
            .update(&id, &version, json!({ "team": format!("t{n}") }))
            .await;
        version = result["user"]["updatedAt"].as_str().unwrap().to_owned();
    }
    let mut received = Vec::new();
    loop {
        let user = event(&ws.next("1").await, "userUpdated")["user"].clone();
        let at = user["updatedAt"].as_str().unwrap().to_owned();
        received.push(at.clone());
        if at == version {
            assert_eq!(user["team"], "t199");
            break;
        }
    }
    let instants: Vec<chrono::DateTime<chrono::Utc>> =
        received.iter().map(|at| at.parse().unwrap()).collect();
    assert!(
        instants.windows(2).all(|pair| pair[0] < pair[1]),
        "versions only rise: {received:?}"
    );
    // Nothing after the last state.
    assert_eq!(ws.recv_within(Duration::from_millis(300)).await, None);
    eprintln!("{} of 200 states delivered", received.len());
}
per_backend!(rapid_updates_arrive_in_order_ending_with_the_last);

async fn queries_and_mutations_run_over_the_socket_too(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let version = version_of(&app, &id).await;
    let mut ws = WsClient::initialised(app.address, &app.token).await;
    ws.subscribe(
        "q",
        "query($id: ID!) { user(id: $id) { id team } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(event(&ws.next("q").await, "user")["id"], id.as_str());
    ws.completed("q").await;
    let mutation =
        "mutation($id: ID!, $v: DateTime!) { updateUser(id: $id, expectedUpdatedAt: $v, \
        input: { team: \"Socket\" }) { __typename } }";
    ws.subscribe("m", mutation, json!({ "id": id, "v": version }))
        .await;
    assert_eq!(
        event(&ws.next("m").await, "updateUser")["__typename"],
        "UpdateUserSuccess"
    );
    ws.completed("m").await;
    assert_eq!(app.read_user(&id).await["team"], "Socket");
}
per_backend!(queries_and_mutations_run_over_the_socket_too);

/// A server whose WebSocket bounds are small enough to meet in a test.
async fn bounded_app(backend: Backend) -> TestApp {
    let mut http = HttpOptions::default();
    http.live.ws_init_timeout_ms = 300;
    http.live.ws_keepalive_ms = 200;
    http.live.max_subscriptions_per_connection = 2;
    http.live.max_subscriptions_per_token = 3;
    let setup = Setup {
        http,
        ..Setup::default()
    };
    TestApp::spawn_with(backend, setup).await
}

async fn the_protocol_refuses_with_its_close_codes(backend: Backend) {
    let app = bounded_app(backend).await;
    let address = app.address;
    let bearer = |token: &str| json!({ "Authorization": format!("Bearer {token}") });

    // The token comes first, and must be good.
    for payload in [
        json!({}),
        bearer("ugt_wrong"),
        json!({ "Authorization": "Basic x" }),
    ] {
        let mut ws = WsClient::connect(address).await;
        ws.init(payload).await;
        assert_eq!(ws.closed().await, 4403);
    }
    let mut ws = WsClient::connect(address).await;
    ws.subscribe("1", "subscription { userEvents { __typename } }", json!({}))
        .await;
    assert_eq!(ws.closed().await, 4401);
    // No connection_init in time.
    let mut ws = WsClient::connect(address).await;
    assert_eq!(ws.closed().await, 4408);
    // Garbage.
    let mut ws = WsClient::initialised(address, &app.token).await;
    ws.send(json!({ "type": "launch" })).await;
    assert_eq!(ws.closed().await, 4400);
    // A second init.
    let mut ws = WsClient::initialised(address, &app.token).await;
    ws.init(bearer(&app.token)).await;
    assert_eq!(ws.closed().await, 4429);
    // Variables that are not an object.
    let mut ws = WsClient::initialised(address, &app.token).await;
    ws.send(json!({ "id": "v", "type": "subscribe",
        "payload": { "query": USER_EVENTS, "variables": "oops" } }))
        .await;
    assert_eq!(ws.closed().await, 4400);
    // An id is free again as soon as the client completes it.
    let mut ws = WsClient::initialised(address, &app.token).await;
    ws.subscribe("again", USER_EVENTS, json!({})).await;
    ws.send(json!({ "type": "complete", "id": "again" })).await;
    ws.subscribe("again", USER_EVENTS, json!({})).await;
    ws.completed("again").await;
    assert_eq!(ws.recv_within(Duration::from_millis(300)).await, None);
    // An id in use (a long one: the close reason is cut to fit its frame).
    let long_id = "x".repeat(500);
    let mut ws = WsClient::initialised(address, &app.token).await;
    ws.subscribe(&long_id, USER_EVENTS, json!({})).await;
    ws.subscribe(&long_id, USER_EVENTS, json!({})).await;
    assert_eq!(ws.closed().await, 4409);
    let mut ws = WsClient::initialised(address, &app.token).await;
    ws.subscribe("same", USER_EVENTS, json!({})).await;
    ws.subscribe("same", USER_EVENTS, json!({})).await;
    assert_eq!(ws.closed().await, 4409);
    // A client that stops answering pings.
    let mut ws = WsClient::initialised(address, &app.token).await;
    ws.answer_pings = false;
    assert_eq!(ws.closed().await, 3008);
    // Only graphql-transport-ws is spoken.
    let refused = reqwest::Client::new()
        .get(app.endpoint())
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", "graphql-ws")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
}
per_backend!(the_protocol_refuses_with_its_close_codes);

async fn subscriptions_are_bounded_per_connection_and_per_token(backend: Backend) {
    let app = bounded_app(backend).await;
    let too_many = |message: Received, id: &str| match message {
        Received::Message(m) => {
            assert_eq!(m["type"], "error", "{m}");
            assert_eq!(m["id"], id);
            assert_eq!(
                m["payload"][0]["extensions"]["code"],
                "TOO_MANY_SUBSCRIPTIONS"
            );
        }
        other => panic!("{other:?}"),
    };
    let mut first = WsClient::initialised(app.address, &app.token).await;
    first.subscribe("a", USER_EVENTS, json!({})).await;
    first.subscribe("b", USER_EVENTS, json!({})).await;
    first.subscribe("c", USER_EVENTS, json!({})).await;
    too_many(first.recv().await, "c");
    let mut second = WsClient::initialised(app.address, &app.token).await;
    second.subscribe("d", USER_EVENTS, json!({})).await;
    second.subscribe("e", USER_EVENTS, json!({})).await;
    too_many(second.recv().await, "e");
    // Completing one frees its place, for the token too.
    first.send(json!({ "type": "complete", "id": "a" })).await;
    first.completed("a").await;
    second.subscribe("e", USER_EVENTS, json!({})).await;
    listening(&app, 3).await;
    assert_eq!(second.recv_within(Duration::from_millis(300)).await, None);
    // And so does a connection going away.
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = WsClient::initialised(app.address, &app.token).await;
    third.subscribe("f", USER_EVENTS, json!({})).await;
    listening(&app, 3).await;
    assert_eq!(third.recv_within(Duration::from_millis(300)).await, None);
}
per_backend!(subscriptions_are_bounded_per_connection_and_per_token);

async fn a_revoked_token_ends_its_subscriptions(backend: Backend) {
    let app = bounded_app(backend).await;
    let token = app
        .repo
        .create_token(usergraph::default_scope().environment_id, "short-lived")
        .await
        .unwrap();
    let mut ws = WsClient::initialised(app.address, &token.token).await;
    ws.subscribe("1", USER_EVENTS, json!({})).await;
    listening(&app, 1).await;
    assert!(app.repo.revoke_token(&token.id.to_string()).await.unwrap());
    let started = Instant::now();
    assert_eq!(ws.closed().await, 4403);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
per_backend!(a_revoked_token_ends_its_subscriptions);

/// Two `usergraph serve` processes on one PostgreSQL database: a change
/// committed through one reaches a subscriber of the other, each of 200 in
/// turn, and the delay is printed (median and p99). Then SIGTERM: the
/// subscriber's socket is closed with 1001 and the process exits 0 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn changes_reach_subscribers_of_another_process() {
    use common::process::{post_json, seeded_user_and_token, usergraph, Server};
    if common::postgres_admin_url().is_none() {
        return;
    }
    let (_db, url) = common::TestDb::create(Backend::Postgres).await;
    let url = url.to_string();
    let (id, token) = seeded_user_and_token(&url);
    let serve = || Server::start(usergraph(&["serve", "--listen", "127.0.0.1:0"], Some(&url)));
    let (writer, mut reader) = (serve(), serve());
    let client = common::client_with_token(&token);
    let read = json!({ "query": "query($id: ID!) { user(id: $id) { updatedAt } }", "variables": { "id": id } });
    let user = post_json(&client, &writer.endpoint, &read).await;
    let mut version = user["data"]["user"]["updatedAt"]
        .as_str()
        .unwrap()
        .to_owned();
    let reader_address = reader.endpoint["http://".len()..]
        .trim_end_matches("/graphql")
        .parse()
        .expect("the reader's address");
    let mut ws = WsClient::initialised(reader_address, &token).await;
    ws.subscribe("1", USER_TEAM, json!({ "id": id, "after": version }))
        .await;

    // The commit lies between the write's start and its answer: delivery
    // is timed from both.
    let update = "mutation($id: ID!, $v: DateTime!, $team: String) { \
        updateUser(id: $id, expectedUpdatedAt: $v, input: { team: $team }) { \
        ... on UpdateUserSuccess { user { updatedAt } } } }";
    let (mut from_start, mut from_answer) = (Vec::new(), Vec::new());
    for n in 0..200 {
        let body = json!({ "query": update, "variables": { "id": id, "v": version, "team": format!("p{n}") } });
        let started = Instant::now();
        let result = post_json(&client, &writer.endpoint, &body).await;
        let answered = Instant::now();
        version = result["data"]["updateUser"]["user"]["updatedAt"]
            .as_str()
            .unwrap_or_else(|| panic!("{result}"))
            .to_owned();
        let user = event(&ws.next("1").await, "userUpdated")["user"].clone();
        // One change at a time: each is delivered on its own.
        assert_eq!(
            user,
            json!({ "team": format!("p{n}"), "updatedAt": version })
        );
        from_start.push(started.elapsed());
        from_answer.push(answered.elapsed());
    }
    let summary = |delays: &mut Vec<Duration>| {
        delays.sort();
        format!(
            "median {:?}, p99 {:?}",
            delays[delays.len() / 2],
            delays[delays.len() * 99 / 100]
        )
    };
    eprintln!(
        "delivery to a subscriber of another process: from the write's start {}; from its answer {}",
        summary(&mut from_start),
        summary(&mut from_answer)
    );

    let stopping = Instant::now();
    let status = reader.terminate(Duration::from_secs(5));
    assert_eq!(ws.closed().await, 1001);
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    eprintln!(
        "SIGTERM with a subscriber: exited in {:?}",
        stopping.elapsed()
    );
}

/// Changes committed while a process had lost its database are not
/// notified to it: once it listens again, a `userUpdated` subscriber gets
/// the current state and a `userEvents` subscriber `EventsMissed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn changes_missed_while_the_database_was_away_are_caught_up() {
    if common::postgres_admin_url().is_none() {
        return;
    }
    let writer = TestApp::spawn(Backend::Postgres).await;
    let DatabaseUrl::Postgres(direct) = &writer.url else {
        unreachable!("a PostgreSQL database")
    };
    let proxy = Proxy::start(proxy::target(direct)).await;
    let through = DatabaseUrl::Postgres(proxy::through(direct, proxy.address));
    // The reader remembers its token, so that only its feed meets the cut.
    let setup = Setup {
        token_cache_ms: 600_000,
        ..Setup::default()
    };
    let reader = TestApp::serve(Backend::Postgres, through, setup).await;
    let id = writer.seed(1).await.remove(0);
    let version = version_of(&writer, &id).await;
    let mut ws = WsClient::initialised(reader.address, &reader.token).await;
    ws.subscribe("one", USER_TEAM, json!({ "id": id, "after": version }))
        .await;
    ws.subscribe("all", USER_EVENTS, json!({})).await;
    listening(&reader, 2).await;

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    set_team(&writer, &id, "While away").await;
    let version = set_team(&writer, &id, "Latest").await;
    assert_eq!(ws.recv_within(Duration::from_millis(500)).await, None);
    proxy.restore();

    let mut caught_up = (None, None);
    while caught_up.0.is_none() || caught_up.1.is_none() {
        let Received::Message(message) = ws.recv().await else {
            panic!("the connection closed");
        };
        match message["id"].as_str() {
            Some("one") => caught_up.0 = Some(event(&message["payload"], "userUpdated")),
            Some("all") => caught_up.1 = Some(event(&message["payload"], "userEvents")),
            _ => panic!("{message}"),
        }
    }
    let (one, all) = (caught_up.0.unwrap(), caught_up.1.unwrap());
    assert_eq!(
        one["user"],
        json!({ "team": "Latest", "updatedAt": version })
    );
    assert_eq!(all["__typename"], "EventsMissed", "{all}");
}

/// A connection of the test's own to `app`'s PostgreSQL database.
async fn connect(app: &TestApp) -> diesel_async::AsyncPgConnection {
    use diesel_async::AsyncConnection;
    let DatabaseUrl::Postgres(url) = &app.url else {
        unreachable!("a PostgreSQL database")
    };
    diesel_async::AsyncPgConnection::establish(url)
        .await
        .expect("a connection of the test's own")
}

/// Waits until the SQL condition `sql` is `expected` on `app`'s database.
async fn holds(app: &TestApp, sql: &str, expected: bool, otherwise: &str) {
    use diesel::sql_types::Bool;
    use diesel_async::RunQueryDsl;
    let mut conn = connect(app).await;
    let deadline = Instant::now() + common::ws::PATIENCE;
    loop {
        let now = diesel::select(diesel::dsl::sql::<Bool>(sql))
            .get_result::<bool>(&mut conn)
            .await
            .unwrap();
        if now == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{otherwise}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Changes are notified only while some process has subscribers: NOTIFY
/// costs every commit that sends it a database-wide lock, and wakes every
/// listening process. A first subscriber registers its process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn changes_are_notified_only_while_a_process_has_subscribers() {
    use diesel_async::SimpleAsyncConnection;
    use futures_util::StreamExt;
    if common::postgres_admin_url().is_none() {
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let id = app.seed(1).await.remove(0);
    let mut listener = connect(&app).await;
    listener
        .batch_execute("LISTEN usergraph_user_changes")
        .await
        .unwrap();
    async fn notified(listener: &mut diesel_async::AsyncPgConnection, within: Duration) -> bool {
        let notifications = listener.notifications_stream();
        futures_util::pin_mut!(notifications);
        tokio::time::timeout(within, notifications.next())
            .await
            .is_ok()
    }

    set_team(&app, &id, "Unwatched").await;
    assert!(!notified(&mut listener, Duration::from_millis(300)).await);
    // A REPEATABLE READ write reads the registrations in its first
    // statement's snapshot, which may be older than one: it always notifies.
    let mut writer = connect(&app).await;
    writer
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ; UPDATE users SET team = 'Repeatable', \
             updated_at = updated_at + interval '1 second' WHERE id = '{id}'; COMMIT"
        ))
        .await
        .unwrap();
    assert!(notified(&mut listener, common::ws::PATIENCE).await);

    let version = version_of(&app, &id).await;
    let mut ws = WsClient::initialised(app.address, &app.token).await;
    ws.subscribe("1", USER_TEAM, json!({ "id": id, "after": version }))
        .await;
    listening(&app, 1).await;
    let version = set_team(&app, &id, "Watched").await;
    assert!(notified(&mut listener, common::ws::PATIENCE).await);
    assert_eq!(
        event(&ws.next("1").await, "userUpdated")["user"],
        json!({ "team": "Watched", "updatedAt": version })
    );
}

/// A write that found no process registered, and commits after one
/// registers, still reaches that process's new subscriber: the registration
/// waits for the write to end, and the subscriber's first read follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn a_write_under_way_while_a_process_registers_reaches_its_subscriber() {
    use diesel_async::SimpleAsyncConnection;
    if common::postgres_admin_url().is_none() {
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let id = app.seed(1).await.remove(0);
    let version = version_of(&app, &id).await;
    // Another process's write, under way: its trigger found no one to notify.
    let mut writer = connect(&app).await;
    writer
        .batch_execute(&format!(
            "BEGIN; UPDATE users SET team = 'Under way', \
             updated_at = updated_at + interval '1 second' WHERE id = '{id}'"
        ))
        .await
        .unwrap();

    let mut ws = WsClient::initialised(app.address, &app.token).await;
    ws.subscribe("1", USER_TEAM, json!({ "id": id, "after": version }))
        .await;
    let registration_waits = "EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
        AND query LIKE '%LOCK TABLE usergraph_listeners%')";
    holds(
        &app,
        registration_waits,
        true,
        "the registration did not wait for the write",
    )
    .await;
    writer.batch_execute("COMMIT").await.unwrap();

    let user = event(&ws.next("1").await, "userUpdated")["user"].clone();
    assert_eq!(user["team"], "Under way", "{user}");
}

/// A process whose last subscriber left deregisters once its linger is
/// over, and changes are no longer notified for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn a_process_whose_subscribers_left_deregisters_after_its_linger() {
    if common::postgres_admin_url().is_none() {
        return;
    }
    let setup = Setup {
        feed_linger_ms: 300,
        ..Setup::default()
    };
    let app = TestApp::spawn_with(Backend::Postgres, setup).await;
    let id = app.seed(1).await.remove(0);
    let version = version_of(&app, &id).await;
    let registered = "EXISTS (SELECT FROM usergraph_listeners)";
    let mut ws = WsClient::initialised(app.address, &app.token).await;
    ws.subscribe("1", USER_TEAM, json!({ "id": id, "after": version }))
        .await;
    listening(&app, 1).await;
    holds(&app, registered, true, "the process did not register").await;

    ws.send(json!({ "id": "1", "type": "complete" })).await;
    holds(&app, registered, false, "the process stayed registered").await;
    assert!(!app.repo.feed().hears_all());
}
