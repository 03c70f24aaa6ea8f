//! REST: the endpoint usergraph was modelled on ("Update a user"), served
//! beside GraphQL on the same rules and the same compare-and-set.
//!
//! `GET`/`PATCH /users/{userId}` (and under `/environments/{environmentId}`)
//! each run one fixed GraphQL operation on the served schema: `user` or
//! `updateUser`, selecting every field of `User` (see [`super::openapi`]).
//! So there is one implementation: the same resolver, repository call and
//! domain rules as GraphQL, and one JSON shape of a user. What this module
//! adds is HTTP's part: entity tags and preconditions (RFC 9110), status
//! codes, and problem details for errors (RFC 9457).

use std::collections::HashMap;
use std::sync::LazyLock;

use async_graphql::Variables;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Extension, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::openapi::Contract;
use super::{
    authenticate, detached, has_code, is_json, retry_after, AppState, AuthFailure, RequestId,
    Unanswered,
};
use crate::domain::{format_instant, parse_instant};
use crate::graphql::errors::{
    DATABASE_UNAVAILABLE, DATABASE_UNAVAILABLE_MESSAGE, INTERNAL_SERVER_ERROR,
};
use crate::graphql::loaders::request_loader;
use crate::repo::Scope;

const PROBLEM_JSON: &str = "application/problem+json";

/// What the routes know of the schema, read once from its SDL.
static CONTRACT: LazyLock<Contract> = LazyLock::new(Contract::from_schema);

/// The REST routes and their OpenAPI document.
pub(super) fn routes() -> Router<AppState> {
    // Built now, not at the first request.
    LazyLock::force(&CONTRACT);
    Router::new()
        .route("/users/{user_id}", get(get_user).patch(patch_user))
        .route(
            "/environments/{environment_id}/users/{user_id}",
            get(get_user).patch(patch_user),
        )
        .route("/openapi.json", get(openapi))
}

async fn openapi() -> Json<Value> {
    Json(CONTRACT.openapi.clone())
}

/// The user a request names, and the environment if its path names one.
struct Target {
    environment: Option<String>,
    user: String,
}

impl Target {
    /// From either route's path parameters (`None` if they do not decode,
    /// answered like a user that does not exist).
    fn from_path(path: Result<Path<HashMap<String, String>>, PathRejection>) -> Option<Target> {
        let Path(mut parameters) = path.ok()?;
        Some(Target {
            environment: parameters.remove("environment_id"),
            user: parameters.remove("user_id")?,
        })
    }

    /// Whether the path's environment, if it names one, is the token's: a
    /// user of another environment is as absent as one that never existed.
    fn in_scope(&self, scope: Scope) -> bool {
        self.environment.as_deref().is_none_or(|environment| {
            uuid::Uuid::parse_str(environment).ok() == Some(scope.environment_id)
        })
    }
}

async fn get_user(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let target = Target::from_path(path);
    let work = |state, id| read(state, target, headers, id);
    detached(state, request_id, work, unanswered).await
}

async fn patch_user(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let target = Target::from_path(path);
    let work = |state, id| update(state, target, headers, body, id);
    detached(state, request_id, work, unanswered).await
}

/// `GET`: the user with its `ETag`, or 304 when `If-None-Match` holds it.
async fn read(
    state: AppState,
    target: Option<Target>,
    headers: HeaderMap,
    request_id: String,
) -> Response {
    let (scope, target) = match admit(&state, &headers, target, &request_id).await {
        Ok(admitted) => admitted,
        Err(problem) => return problem.into_response(),
    };
    let user = match current_user(&state, scope, &target.user).await {
        Ok(Some(user)) => user,
        Ok(None) => return not_found(),
        Err(failure) => return failure.into_problem(&request_id).into_response(),
    };
    let Some(version) = version_of(&user) else {
        return internal_error(&request_id);
    };
    if if_none_match(&headers).is_some_and(|tags| tags.holds(version)) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        set_etag(&mut response, version);
        return response;
    }
    user_response(user, version)
}

/// `PATCH`: the compare-and-set of `updateUser`, its version taken from
/// `If-Match` (or the original API's `ETag` request header).
async fn update(
    state: AppState,
    target: Option<Target>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    request_id: String,
) -> Response {
    let (scope, target) = match admit(&state, &headers, target, &request_id).await {
        Ok(admitted) => admitted,
        Err(problem) => return problem.into_response(),
    };
    let expected = match precondition(&headers) {
        Precondition::Missing(detail) => {
            return Problem::new(
                StatusCode::PRECONDITION_REQUIRED,
                "PRECONDITION_REQUIRED",
                detail,
            )
            .into_response();
        }
        Precondition::Malformed(detail) => {
            return Problem::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", detail).into_response();
        }
        Precondition::Version(version) => Some(version),
        Precondition::NeverMatches => None,
    };
    let input = match input_of(&state, &headers, body) {
        Ok(input) => input,
        Err(problem) => return problem.into_response(),
    };
    let Some(expected) = expected else {
        // No stored version matches such a tag: answer as for a stale one.
        return match current_user(&state, scope, &target.user).await {
            Ok(Some(user)) => precondition_failed(user, &request_id),
            Ok(None) => not_found(),
            Err(failure) => failure.into_problem(&request_id).into_response(),
        };
    };
    let variables = json!({
        "id": target.user,
        "expectedUpdatedAt": format_instant(&expected),
        "input": input,
    });
    let mut data = match execute(
        &state,
        scope,
        &CONTRACT.update_operation,
        variables,
        "REST PATCH user",
    )
    .await
    {
        Ok(data) => data,
        Err(failure) => return failure.into_problem(&request_id).into_response(),
    };
    let mut result = match data.remove("updateUser") {
        Some(Value::Object(result)) => result,
        _ => Map::new(),
    };
    match result.get("__typename").and_then(Value::as_str) {
        Some("UpdateUserSuccess") => match result.remove("user") {
            Some(user) => match version_of(&user) {
                Some(version) => user_response(user, version),
                None => internal_error(&request_id),
            },
            None => internal_error(&request_id),
        },
        Some("UpdateConflict") => match result.remove("currentUser") {
            Some(user) => precondition_failed(user, &request_id),
            None => internal_error(&request_id),
        },
        Some("UserNotFound") => not_found(),
        Some("ValidationFailed") => {
            let errors = result.remove("fieldErrors").unwrap_or_default();
            Problem::validation_failed(errors).into_response()
        }
        _ => internal_error(&request_id),
    }
}

/// The request's scope, once its token is good and its path names a user
/// of the token's environment.
async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    target: Option<Target>,
    request_id: &str,
) -> Result<(Scope, Target), Problem> {
    let scope = match authenticate(&state.repo, headers).await {
        Ok(scope) => scope,
        Err(AuthFailure::Unauthenticated(detail)) => {
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                detail,
            ));
        }
        Err(AuthFailure::Unavailable) => return Err(Failure::Unavailable.into_problem(request_id)),
        Err(AuthFailure::Internal) => return Err(Problem::internal(request_id)),
    };
    match target {
        Some(target) if target.in_scope(scope) => Ok((scope, target)),
        _ => Err(Problem::not_found()),
    }
}

/// The body as `UpdateUserInput`: a JSON object of its fields, each of the
/// right type. Every refused field is reported at once (422).
fn input_of(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, Problem> {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let limit = state.options.limits.max_body_bytes;
            let detail = format!("the request body exceeds {limit} bytes");
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                detail,
            ));
        }
        Err(rejection) => {
            let detail = rejection.body_text();
            return Err(Problem::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", detail));
        }
    };
    if !is_json(headers) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the user's fields as application/json",
        ));
    }
    let input = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(input)) => input,
        Ok(_) => {
            let detail = "the body must be a JSON object of the fields to change";
            return Err(Problem::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", detail));
        }
        Err(error) => {
            let detail = format!("the body is not JSON: {error}");
            return Err(Problem::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", detail));
        }
    };
    let errors: Vec<Value> = input
        .iter()
        .filter_map(|(field, value)| {
            let (code, message) = CONTRACT.input_field_error(field, value)?;
            Some(json!({ "field": field, "code": code.as_str(), "message": message }))
        })
        .collect();
    if errors.is_empty() {
        Ok(input)
    } else {
        Err(Problem::validation_failed(Value::Array(errors)))
    }
}

/// Why an operation gave no data.
enum Failure {
    /// The database is down or busy: 503, retryable.
    Unavailable,
    /// Anything else (logged): 500.
    Internal,
}

impl Failure {
    fn into_problem(self, request_id: &str) -> Problem {
        match self {
            Failure::Unavailable => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                DATABASE_UNAVAILABLE,
                DATABASE_UNAVAILABLE_MESSAGE,
            ),
            Failure::Internal => Problem::internal(request_id),
        }
    }
}

/// The user as `GET` shows it, or `None` when the scope holds no such user.
async fn current_user(state: &AppState, scope: Scope, id: &str) -> Result<Option<Value>, Failure> {
    let data = execute(
        state,
        scope,
        &CONTRACT.read_operation,
        json!({ "id": id }),
        "REST GET user",
    )
    .await?;
    Ok(data.get("user").filter(|user| user.is_object()).cloned())
}

/// Runs one of the contract's operations (counted in the metrics under
/// `label`); `Err` when it failed (already
/// logged by the resolver, or here when the operation itself was refused).
async fn execute(
    state: &AppState,
    scope: Scope,
    operation: &str,
    variables: Value,
    label: &str,
) -> Result<Map<String, Value>, Failure> {
    let request = async_graphql::Request::new(operation)
        .variables(Variables::from_json(variables))
        .data(request_loader(&state.repo))
        .data(scope);
    let response = super::execute(state, request, Some(label)).await;
    if !response.errors.is_empty() {
        let errors = &response.errors;
        if errors.iter().any(|e| has_code(e, DATABASE_UNAVAILABLE)) {
            return Err(Failure::Unavailable);
        }
        if !errors.iter().any(|e| has_code(e, INTERNAL_SERVER_ERROR)) {
            // A fixed operation the schema refuses is a defect of this module.
            tracing::error!(?errors, "REST operation refused");
        }
        return Err(Failure::Internal);
    }
    match response.data.into_json() {
        Ok(Value::Object(data)) => Ok(data),
        _ => Err(Failure::Internal),
    }
}

/// A user's version: its `updatedAt`.
fn version_of(user: &Value) -> Option<DateTime<Utc>> {
    parse_instant(user.get("updatedAt")?.as_str()?).ok()
}

/// The strong entity tag of a version: the `updatedAt` in quotes.
fn entity_tag(version: DateTime<Utc>) -> String {
    format!("\"{}\"", format_instant(&version))
}

fn set_etag(response: &mut Response, version: DateTime<Utc>) {
    if let Ok(value) = HeaderValue::from_str(&entity_tag(version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
}

/// 200 with the user and its tag.
fn user_response(user: Value, version: DateTime<Utc>) -> Response {
    let mut response = Json(user).into_response();
    set_etag(&mut response, version);
    response
}

/// What a `PATCH` asks its write to depend on.
#[derive(Debug, PartialEq)]
enum Precondition {
    /// None was sent, or none that names one version; the detail says which (428).
    Missing(&'static str),
    /// The header is not what it must be; the detail says what (400).
    Malformed(&'static str),
    /// The version the client holds.
    Version(DateTime<Utc>),
    /// A well-formed tag no version can match: weak (`If-Match` compares
    /// strongly) or not naming an instant. Answered as a stale one (412).
    NeverMatches,
}

/// Reads `If-Match: "<updatedAt>"`, else the original API's
/// `ETag: <updatedAt>` request header (quotes optional).
fn precondition(headers: &HeaderMap) -> Precondition {
    if let Some(value) = headers.get(header::IF_MATCH) {
        const MALFORMED: &str = "If-Match must be one entity tag: the user's ETag, in quotes";
        let Ok(value) = value.to_str() else {
            return Precondition::Malformed(MALFORMED);
        };
        let value = value.trim();
        if value == "*" {
            // "Any version" is no compare-and-set: this API needs the version.
            return Precondition::Missing(
                "If-Match: * names no version: send the user's ETag in If-Match",
            );
        }
        let (weak, tag) = match value.strip_prefix("W/") {
            Some(tag) => (true, tag),
            None => (false, value),
        };
        let Some(opaque) = tag
            .strip_prefix('"')
            .and_then(|tag| tag.strip_suffix('"'))
            .filter(|opaque| !opaque.contains('"'))
        else {
            return if value.contains(',') {
                // A list of tags: a write can depend on one version only.
                Precondition::Missing("If-Match must hold exactly one entity tag")
            } else {
                Precondition::Malformed(MALFORMED)
            };
        };
        return match parse_instant(opaque) {
            Ok(version) if !weak => Precondition::Version(version),
            _ => Precondition::NeverMatches,
        };
    }
    if let Some(value) = headers.get(header::ETAG) {
        const MALFORMED: &str = "the ETag request header must be the user's updatedAt in ISO 8601";
        let Ok(value) = value.to_str() else {
            return Precondition::Malformed(MALFORMED);
        };
        let value = value.trim();
        let bare = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        return parse_instant(bare)
            .map(Precondition::Version)
            .unwrap_or(Precondition::Malformed(MALFORMED));
    }
    Precondition::Missing(
        "this update needs a precondition: send the user's ETag as If-Match (or its updatedAt as ETag)",
    )
}

/// The version a strong entity tag (`"…"`) names.
fn strong_tag_version(tag: &str) -> Option<DateTime<Utc>> {
    let inner = tag.strip_prefix('"')?.strip_suffix('"')?;
    parse_instant(inner).ok()
}

/// The entity tags of `If-None-Match`.
enum NoneMatch {
    Any,
    Versions(Vec<DateTime<Utc>>),
}

impl NoneMatch {
    /// Whether the tags hold `version`. `If-None-Match` compares weakly, so
    /// `W/"…"` counts as its strong form.
    fn holds(&self, version: DateTime<Utc>) -> bool {
        match self {
            NoneMatch::Any => true,
            NoneMatch::Versions(versions) => versions.contains(&version),
        }
    }
}

fn if_none_match(headers: &HeaderMap) -> Option<NoneMatch> {
    let value = headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
    if value.trim() == "*" {
        return Some(NoneMatch::Any);
    }
    let versions = value
        .split(',')
        .map(str::trim)
        .filter_map(|tag| strong_tag_version(tag.strip_prefix("W/").unwrap_or(tag)))
        .collect();
    Some(NoneMatch::Versions(versions))
}

/// An RFC 9457 problem: `type` is `about:blank` (the status says what
/// happened), `code` is the stable code clients switch on.
struct Problem {
    status: StatusCode,
    body: Map<String, Value>,
}

impl Problem {
    fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
        let mut body = Map::new();
        body.insert("type".into(), "about:blank".into());
        body.insert(
            "title".into(),
            status.canonical_reason().unwrap_or_default().into(),
        );
        body.insert("status".into(), status.as_u16().into());
        body.insert("detail".into(), detail.into().into());
        body.insert("code".into(), code.into());
        Problem { status, body }
    }

    /// An internal failure: the cause is in the log under the request id.
    fn internal(request_id: &str) -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            INTERNAL_SERVER_ERROR,
            "internal server error",
        )
        .with("requestId", request_id.into())
    }

    fn not_found() -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no user with this id in your environment",
        )
    }

    /// 422 with every refused field (`field`, `code`, `message`).
    fn validation_failed(errors: Value) -> Problem {
        let count = errors.as_array().map_or(0, Vec::len);
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
            format!("{count} field(s) failed validation; nothing was written"),
        )
        .with("errors", errors)
    }

    fn with(mut self, member: &str, value: Value) -> Problem {
        self.body.insert(member.into(), value);
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body).unwrap_or_default();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.body.get("code").and_then(Value::as_str) == Some(DATABASE_UNAVAILABLE) {
            retry_after(&mut response);
        }
        response
    }
}

fn not_found() -> Response {
    Problem::not_found().into_response()
}

fn internal_error(request_id: &str) -> Response {
    Problem::internal(request_id).into_response()
}

/// 412 with the current user and its tag: retry against them.
fn precondition_failed(user: Value, request_id: &str) -> Response {
    let Some(version) = version_of(&user) else {
        return internal_error(request_id);
    };
    let mut response = Problem::new(
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
        "the user changed since the version you hold",
    )
    .with("currentUser", user)
    .into_response();
    set_etag(&mut response, version);
    response
}

fn unanswered(unanswered: Unanswered, request_id: &str) -> Response {
    match unanswered {
        Unanswered::Failed => internal_error(request_id),
        Unanswered::TimedOut(timeout) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "REQUEST_TIMEOUT",
            format!("the request took longer than {} ms", timeout.as_millis()),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn preconditions() {
        let version = Precondition::Version(at("2026-01-31T12:00:00.000001Z"));
        let if_match = |value| precondition(&headers(header::IF_MATCH, value));
        assert_eq!(if_match("\"2026-01-31T12:00:00.000001Z\""), version);
        assert_eq!(if_match("\"2026-01-31T13:00:00.000001+01:00\""), version);
        assert_eq!(
            if_match("W/\"2026-01-31T12:00:00.000001Z\""),
            Precondition::NeverMatches
        );
        assert_eq!(if_match("\"banana\""), Precondition::NeverMatches);
        for malformed in ["2026-01-31T12:00:00.000001Z", "\"a\"b\"", "W/", ""] {
            let result = if_match(malformed);
            assert!(matches!(result, Precondition::Malformed(_)), "{malformed}");
        }
        assert!(matches!(if_match("*"), Precondition::Missing(_)));
        assert!(matches!(
            if_match("\"2026-01-31T12:00:00Z\", \"2026-01-31T12:00:01Z\""),
            Precondition::Missing(_)
        ));
        let etag = |value| precondition(&headers(header::ETAG, value));
        assert_eq!(etag("2026-01-31T12:00:00.000001Z"), version);
        assert_eq!(etag("\"2026-01-31T12:00:00.000001Z\""), version);
        assert!(matches!(etag("last tuesday"), Precondition::Malformed(_)));
        assert!(matches!(
            precondition(&HeaderMap::new()),
            Precondition::Missing(_)
        ));
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let version = at("2026-01-31T12:00:00.000001Z");
        let holds = |value| {
            if_none_match(&headers(header::IF_NONE_MATCH, value)).is_some_and(|t| t.holds(version))
        };
        assert!(holds("\"2026-01-31T12:00:00.000001Z\""));
        assert!(holds("W/\"2026-01-31T12:00:00.000001Z\""));
        assert!(holds("\"x\", \"2026-01-31T12:00:00.000001Z\""));
        assert!(holds("*"));
        assert!(!holds("\"2026-01-31T12:00:00.000002Z\""));
    }
}
