//! The HTTP surface: GraphQL over HTTP status codes, limits, GraphiQL, health.

mod common;

use common::{error_code, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// `GET /graphql` with these query-string parameters, asking for JSON.
async fn get_json(app: &TestApp, parameters: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .get(app.endpoint())
        .query(parameters)
        .header("accept", "application/json")
        .send()
        .await
        .expect("an answer")
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

async fn raw(
    app: &TestApp,
    body: impl Into<reqwest::Body>,
    content_type: &str,
    accept: &str,
) -> (StatusCode, String, Value) {
    let response = app
        .client
        .post(app.endpoint())
        .header("content-type", content_type)
        .header("accept", accept)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let media = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, media, body)
}

fn first_message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or_default()
}

async fn malformed_json_is_a_bad_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for accept in ["application/json", GRAPHQL_RESPONSE] {
        let (status, _, body) = raw(&app, "{\"query\": ", "application/json", accept).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            first_message(&body).contains("not a GraphQL request"),
            "{body}"
        );
        assert!(body.get("data").is_none());
    }
}
per_backend!(malformed_json_is_a_bad_request);

async fn invalid_documents_follow_graphql_over_http(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let documents = [
        ("{ user { id } }", "argument"),                       // missing argument
        ("{ user(id: \"1\") { id nope } }", "nope"),           // unknown field
        ("{ user(id: ", "expected value"),                      // syntax error
        ("mutation { updateUser(id: \"1\", input: {}) { __typename } }", "expectedUpdatedAt"),
        // A literal that is no DateTime is refused by validation, not at execution.
        (
            "mutation { updateUser(id: \"1\", expectedUpdatedAt: \"yesterday\", input: {}) { __typename } }",
            "expectedUpdatedAt",
        ),
    ];
    for (query, needle) in documents {
        let body = json!({ "query": query }).to_string();
        let (status, media, json_body) =
            raw(&app, body.clone(), "application/json", "application/json").await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert!(media.starts_with("application/json"));
        assert!(
            first_message(&json_body).contains(needle),
            "{query}: {json_body}"
        );
        assert!(json_body.get("data").is_none(), "{json_body}");

        let (status, media, _) = raw(&app, body, "application/json", GRAPHQL_RESPONSE).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(media, GRAPHQL_RESPONSE);
    }
    // Invalid request parameters too answer in the media type asked for.
    for body in [json!({}).to_string(), "{not json".to_owned()] {
        let (status, media, _) = raw(&app, body, "application/json", GRAPHQL_RESPONSE).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(media, GRAPHQL_RESPONSE);
    }
}
per_backend!(invalid_documents_follow_graphql_over_http);

async fn unknown_input_field_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let user = app.read_user(&id).await;
    let (status, body) = app
        .post(json!({
            "query": common::update_user_document(),
            "variables": { "id": id, "version": user["updatedAt"], "input": { "nickname": "x" } }
        }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(first_message(&body).contains("nickname"), "{body}");
    assert_eq!(app.read_user(&id).await, user);
}
per_backend!(unknown_input_field_is_refused);

async fn oversized_body_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let padding = "x".repeat(usergraph::config::Limits::default().max_body_bytes);
    let body = json!({ "query": "{ __typename }", "variables": { "pad": padding } }).to_string();
    let (status, _, body) = raw(&app, body, "application/json", "application/json").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE");
}
per_backend!(oversized_body_is_refused);

async fn non_json_content_type_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, _, body) = raw(&app, "{ __typename }", "text/plain", "application/json").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(first_message(&body).contains("application/json"));
}
per_backend!(non_json_content_type_is_refused);

async fn graphiql_and_health_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page = app.client.get(app.endpoint()).header("accept", "text/html");
    let page = page.send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self';"));
    let html = page.text().await.unwrap();
    assert!(html.to_lowercase().contains("graphiql"));
    // Everything the page loads comes from this server, and is served.
    assert!(
        !html.contains("//unpkg") && !html.contains("https://"),
        "{html}"
    );
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|part| part.starts_with("/graphiql/"))
        .collect();
    assert_eq!(assets.len(), 6, "{assets:?}");
    for asset in assets {
        let response = reqwest::get(format!("http://{}{asset}", app.address))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{asset}");
    }

    let health = app
        .client
        .get(format!("http://{}/health", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
}
per_backend!(graphiql_and_health_answer);

/// GraphQL over HTTP's GET runs queries (never mutations) for a client that
/// does not ask for HTML; a request without a document is a 400.
async fn get_runs_queries_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let query = format!("{{ user(id: \"{id}\") {{ id }} }}");
    let response = app
        .client
        .get(app.endpoint())
        .query(&[("query", query.as_str())])
        .header("accept", "application/graphql-response+json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["user"]["id"], id.as_str(), "{body}");

    let mutation = format!(
        "mutation {{ deleteUser(id: \"{id}\", expectedUpdatedAt: \"2026-01-01T00:00:00Z\") {{ __typename }} }}"
    );
    let response = get_json(&app, &[("query", mutation.as_str())]).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    assert_eq!(app.read_user(&id).await["id"], id.as_str(), "not deleted");

    let response = app.client.get(app.endpoint()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "no query");
    for body in [json!({}), json!({ "qeury": "{ __typename }" })] {
        let (status, body) = app.post(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&body), "BAD_REQUEST");
    }
}
per_backend!(get_runs_queries_only);

/// Errors of a request that was not executed carry a stable code; a parse
/// error says why in one line.
async fn unexecuted_requests_carry_codes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (query, code) in [
        ("{ users(first: ", "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", "GRAPHQL_VALIDATION_FAILED"),
        (
            "mutation { deleteUser(id: \"1\", expectedUpdatedAt: \"yesterday\") { __typename } }",
            "BAD_USER_INPUT",
        ),
    ] {
        let (status, body) = app.post(json!({ "query": query })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(error_code(&body), code, "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(!message.contains('\n'), "{message}");
        if code == "BAD_USER_INPUT" {
            assert!(
                message.contains("RFC 3339"),
                "the format expected: {message}"
            );
        }
    }
}
per_backend!(unexecuted_requests_carry_codes);

/// Every response carries `x-request-id`: the client's own when it sent a
/// plain token, else a new one.
async fn request_ids(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id_of = |response: &reqwest::Response| {
        response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let body = json!({ "query": "{ __typename }" });
    let sent = app
        .client
        .post(app.endpoint())
        .header("x-request-id", "trace-42.a_b")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&sent), "trace-42.a_b");
    let odd = app
        .client
        .post(app.endpoint())
        .header("x-request-id", "has spaces; and {braces}")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        id_of(&odd).len(),
        32,
        "a new id replaces one that is not a plain token"
    );
    for url in [app.endpoint(), format!("http://{}/health", app.address)] {
        let response = app
            .client
            .get(&url)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(id_of(&response).len(), 32, "{url}");
    }
}
per_backend!(request_ids);

/// The response's keys at every level, in order (objects inside lists
/// included), as one list of paths.
fn key_order(value: &Value, path: &str, keys: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, value) in object {
                let path = format!("{path}.{key}");
                keys.push(path.clone());
                key_order(value, &path, keys);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                key_order(item, &format!("{path}[{index}]"), keys);
            }
        }
        _ => {}
    }
}

/// Fields come back in the order the query asks for them (the spec's
/// ordered response map), whichever resolves first: for a user read in one
/// statement, a page loaded through the DataLoader, aliases and fragments,
/// and a mutation's result.
async fn responses_follow_the_query_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(3).await.remove(0);
    let version = app.read_user(&id).await["updatedAt"].clone();
    let user_fields = "mfaDevices { name id } zeta: id sessions { userAgent id } \
        missingFields { field } ...Names wallets { publicKey chain } alpha: updatedAt";
    let names = "fragment Names on User { team firstName }";
    let query = format!(
        "query($id: ID!) {{ user(id: $id) {{ {user_fields} }} \
         users(first: 3) {{ totalCount edges {{ node {{ {user_fields} }} cursor }} }} }} {names}"
    );
    let mutation = format!(
        "mutation($id: ID!, $v: DateTime!) {{ updateUser(id: $id, expectedUpdatedAt: $v, \
         input: {{ team: \"Order\" }}) {{ ... on UpdateUserSuccess {{ user {{ {user_fields} }} }} \
         __typename }} }} {names}"
    );
    let expected_user = [
        "mfaDevices",
        "zeta",
        "sessions",
        "missingFields",
        "team",
        "firstName",
        "wallets",
        "alpha",
    ];
    for _ in 0..20 {
        let data = app.gql(&query, json!({ "id": id })).await;
        let user: Vec<&str> = data["user"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(user, expected_user);
        let mut keys = Vec::new();
        key_order(&data, "", &mut keys);
        let page = data["users"].as_object().unwrap();
        assert_eq!(page.keys().collect::<Vec<_>>(), ["totalCount", "edges"]);
        for edge in data["users"]["edges"].as_array().unwrap() {
            let node: Vec<&str> = edge["node"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(node, expected_user);
            assert_eq!(
                edge.as_object().unwrap().keys().collect::<Vec<_>>(),
                ["node", "cursor"]
            );
        }
        let wallet = &data["user"]["wallets"][0];
        assert_eq!(
            wallet.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["publicKey", "chain"]
        );
    }
    let data = app.gql(&mutation, json!({ "id": id, "v": version })).await;
    let result = data["updateUser"].as_object().unwrap();
    assert_eq!(result.keys().collect::<Vec<_>>(), ["user", "__typename"]);
    let user: Vec<&str> = result["user"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(user, expected_user);
}
per_backend!(responses_follow_the_query_order);

/// A request seen before (its text parsed, its validation remembered) runs
/// on the schema's copy without the pipeline's extension
/// (`graphql::Service`): it answers exactly as the first did, variables
/// left out, conflicts and absent users included.
async fn a_request_seen_before_answers_as_the_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(2).await.remove(0);
    let read = "query($id: ID!) { user(id: $id) { id email wallets { publicKey chain } \
        zeta: updatedAt sessions { id } ...F mfaDevices { type isDefault } } } \
        fragment F on User { team firstName }";
    let update = "mutation($id: ID!, $v: DateTime!, $team: String) { \
        updateUser(id: $id, expectedUpdatedAt: $v, input: { team: $team }) { __typename \
        ... on UpdateConflict { currentUser { id team } } } }";
    let requests = [
        json!({ "query": read, "variables": { "id": id } }),
        json!({ "query": read, "variables": { "id": "00000000-0000-4000-8000-00000000dead" } }),
        json!({ "query": update, "variables": { "id": id, "v": "2000-01-01T00:00:00Z" } }),
        json!({ "query": update, "variables": { "id": id, "v": "2000-01-01T00:00:00Z", "team": "T" } }),
        json!({ "query": "{ users(first: 2) { totalCount edges { node { id wallets { id } } } } }" }),
    ];
    for request in requests {
        let (status, first) = app.post(request.clone()).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert!(first.get("errors").is_none(), "{first}");
        for _ in 0..2 {
            let (status, again) = app.post(request.clone()).await;
            assert_eq!(status, StatusCode::OK, "{again}");
            assert_eq!(again.to_string(), first.to_string(), "{request}");
        }
    }
}
per_backend!(a_request_seen_before_answers_as_the_first);

/// Introspection answers usergraph's own description of the schema, not
/// the text of the `__Schema` meta-type, however it is selected.
async fn the_schema_describes_itself(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let query = "query { __schema { description queryType { name } } \
        s: __schema { ...D } } fragment D on __Schema { about: description }";
    let data = app.gql(query, json!({})).await;
    let description = data["__schema"]["description"].as_str().unwrap();
    assert!(
        description.starts_with("usergraph: user records"),
        "{description}"
    );
    assert_eq!(data["s"]["about"], description);
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
}
per_backend!(the_schema_describes_itself);

/// Automatic persisted queries (Apollo's protocol): a hash alone is asked
/// for its text once, then runs, over POST and GET alike; a GET never runs
/// a persisted mutation, and a wrong hash is refused.
async fn persisted_queries_run_by_hash(backend: Backend) {
    use sha2::{Digest, Sha256};
    let app = TestApp::spawn(backend).await;
    app.seed(2).await;
    let query = "query Count { users(first: 1) { totalCount } }";
    let sha256 = |text: &str| -> String {
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let hash = sha256(query);
    let persisted = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });

    let (_, body) = app.post(json!({ "extensions": persisted })).await;
    assert_eq!(error_code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    let (_, body) = app
        .post(json!({ "query": query, "extensions": persisted }))
        .await;
    assert_eq!(body["data"]["users"]["totalCount"], 2, "{body}");
    let (_, body) = app.post(json!({ "extensions": persisted })).await;
    assert_eq!(body["data"]["users"]["totalCount"], 2, "{body}");
    let get = get_json(&app, &[("extensions", &persisted.to_string())]).await;
    assert_eq!(get.status(), StatusCode::OK);
    let body: Value = get.json().await.unwrap();
    assert_eq!(body["data"]["users"]["totalCount"], 2, "{body}");

    let mutation = "mutation { createUser(input: { team: \"Hashed\" }) { __typename } }";
    let mutation_hash = sha256(mutation);
    let persisted_mutation =
        json!({ "persistedQuery": { "version": 1, "sha256Hash": mutation_hash } });
    let (_, body) = app
        .post(json!({ "query": mutation, "extensions": persisted_mutation }))
        .await;
    assert_eq!(
        body["data"]["createUser"]["__typename"], "CreateUserSuccess",
        "{body}"
    );
    let get = get_json(&app, &[("extensions", &persisted_mutation.to_string())]).await;
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);

    let wrong = json!({ "persistedQuery": { "version": 1, "sha256Hash": "00" } });
    let (_, body) = app
        .post(json!({ "query": query, "extensions": wrong }))
        .await;
    assert_eq!(error_code(&body), "BAD_REQUEST", "{body}");
}
per_backend!(persisted_queries_run_by_hash);

/// `/metrics` counts requests by operation and outcome (GraphQL and REST),
/// on its own address only.
async fn metrics_count_operations_and_outcomes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed(1).await.remove(0);
    let version = app.read_user(&id).await["updatedAt"].clone();
    let update = "mutation Rename($id: ID!, $v: DateTime!, $input: UpdateUserInput!) { \
        updateUser(id: $id, expectedUpdatedAt: $v, input: $input) { __typename } }";
    let run = |input: Value, version: &Value| {
        json!({ "query": update, "operationName": "Rename",
                "variables": { "id": id, "v": version, "input": input } })
    };
    let (_, body) = app.post(run(json!({ "team": "A" }), &version)).await;
    assert_eq!(
        body["data"]["updateUser"]["__typename"],
        "UpdateUserSuccess"
    );
    let (_, body) = app.post(run(json!({ "team": "B" }), &version)).await;
    assert_eq!(body["data"]["updateUser"]["__typename"], "UpdateConflict");
    let current = app.read_user(&id).await["updatedAt"].clone();
    let (_, body) = app.post(run(json!({ "email": "nope" }), &current)).await;
    assert_eq!(body["data"]["updateUser"]["__typename"], "ValidationFailed");
    app.post(json!({ "query": "query Broken { nope }", "operationName": "Broken" }))
        .await;
    let rest = app
        .client
        .get(format!("http://{}/users/{id}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), StatusCode::OK);

    let metrics = reqwest::get(format!("http://{}/metrics", app.metrics_address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"usergraph_requests_total{operation="Rename",outcome="success"} 1"#,
        r#"usergraph_requests_total{operation="Rename",outcome="conflict"} 1"#,
        r#"usergraph_requests_total{operation="Rename",outcome="validation_failed"} 1"#,
        // A name no operation ran under is not a label.
        r#"usergraph_requests_total{operation="unknown",outcome="error"} 1"#,
        r#"usergraph_requests_total{operation="REST GET user",outcome="success"} 1"#,
        r#"usergraph_db_connections{state="max"} 16"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    assert!(metrics.contains("usergraph_request_duration_seconds_bucket{le=\"+Inf\"}"));
    assert!(metrics.contains("usergraph_sql_statements_total "));
    let api = app
        .client
        .get(format!("http://{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
}
per_backend!(metrics_count_operations_and_outcomes);
