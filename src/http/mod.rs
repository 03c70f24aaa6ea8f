//! The axum router: `/graphql` (POST and GET execute; a browser's GET gets
//! the GraphiQL playground, served from the binary by [`playground`]),
//! `/health`, and the REST routes of [`rest`] with their `/openapi.json`.
//!
//! Every request gets a request id (the client's `x-request-id` or a new
//! one): on every response, in `extensions.requestId` of internal errors,
//! and on the log lines of the request. A POST's order of checks: body
//! size, bearer token, media type, JSON, batch, a document present, query
//! size; then the schema's own limits, before any resolver runs.

use std::time::Duration;

use async_graphql::parser::types::OperationType;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Extension, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

use crate::config::{Limits, LiveLimits};
use crate::graphql::errors::{
    DATABASE_UNAVAILABLE, DATABASE_UNAVAILABLE_MESSAGE, INTERNAL_SERVER_ERROR,
};
use crate::graphql::loaders::request_loader;
use crate::graphql::{Outcome, OutcomeSlot, Service};
use crate::repo::{Repo, Scope};

mod idempotency;
pub mod metrics;

pub use idempotency::{KEYS_PER_TOKEN as IDEMPOTENCY_KEYS_PER_TOKEN, KEY_LIFETIME_HOURS};

/// How long the first answer to an `Idempotency-Key` is kept.
pub const IDEMPOTENCY_KEY_LIFETIME: chrono::Duration = chrono::Duration::hours(KEY_LIFETIME_HOURS);
pub mod openapi;
mod persisted;
mod playground;
mod rest;
mod ws;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";
const REQUEST_ID: &str = "x-request-id";

/// How the HTTP layer behaves.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    pub limits: Limits,
    pub live: LiveLimits,
    /// Origins allowed by CORS; `*` allows any.
    pub cors_origins: Vec<String>,
    /// Also allow http://localhost and http://127.0.0.1 origins (demo mode).
    pub cors_allow_localhost: bool,
    /// A token GraphiQL sends by default (demo mode only).
    pub playground_token: Option<String>,
    /// Told when the server stops: WebSockets close (1001).
    pub shutdown: Shutdown,
}

/// The server's stop, as its long-lived connections learn of it: HTTP
/// requests are drained by `axum::serve`, which does not see WebSockets
/// (they leave its hands when upgraded).
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    stopping: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    /// WebSockets open now: the process waits for them to send their
    /// close frame before it exits.
    sockets: std::sync::Arc<tokio::sync::watch::Sender<usize>>,
}

/// A WebSocket counted open until this is dropped.
pub struct OpenSocket(std::sync::Arc<tokio::sync::watch::Sender<usize>>);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.send_modify(|open| *open -= 1);
    }
}

impl Shutdown {
    /// Counts a WebSocket open for as long as the guard lives.
    pub fn socket_opened(&self) -> OpenSocket {
        self.sockets.send_modify(|open| *open += 1);
        OpenSocket(self.sockets.clone())
    }

    /// Returns once no WebSocket is open.
    pub async fn sockets_closed(&self) {
        let mut open = self.sockets.subscribe();
        // The sender lives in `self`, so waiting cannot fail.
        let _ = open.wait_for(|open| *open == 0).await;
    }

    /// Tells every connection that the server is stopping.
    pub fn begin(&self) {
        self.stopping.send_replace(true);
    }

    /// Returns once [`Shutdown::begin`] was called.
    pub async fn begun(&self) {
        let mut stopping = self.stopping.subscribe();
        // The sender lives in `self`, so waiting cannot fail.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub schema: Service,
    pub repo: Repo,
    pub options: std::sync::Arc<HttpOptions>,
    /// Subscriptions each token holds here (bounded per token).
    pub token_subscriptions: std::sync::Arc<ws::TokenSubscriptions>,
    /// The texts of automatic persisted queries, by hash.
    pub persisted_queries: std::sync::Arc<persisted::PersistedQueries>,
    pub metrics: std::sync::Arc<metrics::Metrics>,
}

/// Runs a request on the schema, and counts it in the metrics under
/// `operation` with the outcome its resolvers recorded.
pub(crate) async fn execute(
    state: &AppState,
    request: async_graphql::Request,
    operation: Option<&str>,
) -> async_graphql::Response {
    let started = std::time::Instant::now();
    let slot = OutcomeSlot::default();
    // Boxed: async-graphql's execution is 6.6 KB of a request's 14.5 KB
    // future, which every caller up to axum's handler would otherwise hold
    // inline and copy as it moves (docs/BENCHMARKS.md, "Statements
    // rendered once, and smaller futures").
    let response = Box::pin(state.schema.execute(request.data(slot.clone()))).await;
    let outcome = if response.errors.is_empty() {
        slot.get().unwrap_or(Outcome::Success)
    } else {
        Outcome::Error
    };
    // Clients choose the name: it labels the request only when an
    // operation of that name ran.
    let ran = response.data != async_graphql::Value::Null;
    let operation = match operation {
        Some(name) if ran => name,
        Some(_) => "unknown",
        None => "anonymous",
    };
    state.metrics.observe(operation, outcome, started.elapsed());
    response
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    let cors = cors_layer(&state.options);
    let body_limit = DefaultBodyLimit::max(state.options.limits.max_body_bytes);
    let router = Router::new()
        .route("/graphql", get(graphql_get).post(graphql))
        .route("/health", get(health))
        .route(playground::ASSET_PATH, get(playground::asset))
        .merge(rest::routes())
        .layer(body_limit)
        .layer(axum::middleware::from_fn(with_request_id))
        // gzip or brotli for clients that accept them: GraphiQL's script
        // is 3.5 MB, 0.7 MB compressed.
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(state);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// CORS for the listed origins (and localhost in demo mode). Credentials
/// are never allowed: clients authenticate with a bearer header, not cookies.
fn cors_layer(options: &HttpOptions) -> Option<CorsLayer> {
    if options.cors_origins.is_empty() && !options.cors_allow_localhost {
        return None;
    }
    let allow_origin = if options.cors_origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        let listed: Vec<String> = options.cors_origins.clone();
        let localhost = options.cors_allow_localhost;
        AllowOrigin::predicate(move |origin, _| {
            let Ok(origin) = origin.to_str() else {
                return false;
            };
            listed.iter().any(|allowed| allowed == origin) || (localhost && is_localhost(origin))
        })
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::PATCH])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
                header::ETAG,
                header::HeaderName::from_static(REQUEST_ID),
                header::HeaderName::from_static(idempotency::HEADER),
            ])
            .expose_headers([
                header::HeaderName::from_static(REQUEST_ID),
                header::ETAG,
                header::HeaderName::from_static(idempotency::REPLAYED),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// `http://localhost[:port]` or `http://127.0.0.1[:port]`.
fn is_localhost(origin: &str) -> bool {
    ["http://localhost", "http://127.0.0.1"].iter().any(|host| {
        origin.strip_prefix(host).is_some_and(|rest| {
            rest.is_empty()
                || rest
                    .strip_prefix(':')
                    .is_some_and(|port| port.parse::<u16>().is_ok())
        })
    })
}

fn graphiql(state: &AppState, headers: &HeaderMap) -> Response {
    // The demo token goes only to a browser on this machine: not to another
    // host when the demo listens on a public address, and not to a page that
    // reached us by DNS rebinding (its Host names the attacker's domain).
    let token = state
        .options
        .playground_token
        .as_ref()
        .filter(|_| is_loopback_host(headers.get(header::HOST)));
    let authorization = token.map(|token| format!("Bearer {token}"));
    playground::page("/graphql", authorization.as_deref())
}

/// Whether a `Host` header names this machine's loopback interface.
fn is_loopback_host(host: Option<&HeaderValue>) -> bool {
    let Some(host) = host.and_then(|host| host.to_str().ok()) else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && !port.contains(']') => name,
        _ => host,
    };
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// Longest the health check waits for the database.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// `/health`: 200 `ok` when the database answers; 200 `busy` when every
/// pooled connection is at work (requests queue, the database is up); 503
/// `unavailable` when it does not answer.
async fn health(State(state): State<AppState>) -> Response {
    if state.repo.db().is_saturated() {
        return Json(json!({ "status": "busy" })).into_response();
    }
    // Detached, like every database call of a request (see `detached`).
    let ping = tokio::spawn(async move { state.repo.db().ping().await });
    let failure = match tokio::time::timeout(HEALTH_TIMEOUT, ping).await {
        Ok(Ok(Ok(()))) => return Json(json!({ "status": "ok" })).into_response(),
        Ok(Ok(Err(error))) => error.to_string(),
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no answer within {} s", HEALTH_TIMEOUT.as_secs()),
    };
    tracing::warn!(%failure, "health check failed");
    let body = Json(json!({ "status": "unavailable" }));
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

/// A GraphQL error response for a request that was not executed.
fn refuse(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "errors": [{ "message": message.into(), "extensions": { "code": code } }] });
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if code == DATABASE_UNAVAILABLE {
        retry_after(&mut response);
    }
    response
}

/// 503 with `Retry-After`: the answer to an unavailable database, whichever
/// stage of the request met it.
pub(crate) fn retry_after(response: &mut Response) {
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    bearer(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// The token of a `Bearer <token>` credential.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Why a request's own work gave no response.
pub(crate) enum Unanswered {
    /// The task failed (a panic): an internal error.
    Failed,
    /// It ran longer than the request timeout.
    TimedOut(Duration),
}

/// Runs a request's work under its request id (the log's span carries it).
///
/// The work runs as a task of its own that neither a client hanging up
/// (which drops this handler's future) nor the timeout cancels: a database
/// call dropped halfway can strand its pooled connection inside a
/// transaction, or on SQLite still shared with a blocking thread, where the
/// pool's next health check panics. The database bounds the work instead
/// (`DatabaseArgs::bounded_by`): a statement or lock wait that outlives the
/// request timeout is cancelled there. Work past the database can still
/// finish after a 503; clients learn the outcome from the user's
/// `updatedAt`, as after any lost reply. `unanswered` renders the response
/// when the work gives none.
pub(crate) async fn detached<W, F>(
    state: AppState,
    RequestId(request_id): RequestId,
    work: W,
    unanswered: fn(Unanswered, &str) -> Response,
) -> Response
where
    W: FnOnce(AppState, String) -> F,
    F: std::future::Future<Output = Response> + Send + 'static,
{
    let span = tracing::info_span!("request", request_id = %request_id);
    let timeout = Duration::from_millis(state.options.limits.request_timeout_ms);
    // Boxed: a tokio task holds its future inline and copies it whole when
    // the task is created, when it finishes and when its output is read; a
    // request's future is kilobytes, a box is a pointer (callgrind: a W1
    // read's instructions -18%, docs/BENCHMARKS.md).
    let work = Box::pin(work(state, request_id.clone()).instrument(span));
    match tokio::time::timeout(timeout, tokio::spawn(work)).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            tracing::error!(%error, request_id = %request_id, "request task failed");
            unanswered(Unanswered::Failed, &request_id)
        }
        Err(_) => {
            tracing::warn!(request_id = %request_id, "request timed out");
            unanswered(Unanswered::TimedOut(timeout), &request_id)
        }
    }
}

/// The id of a request: the client's `x-request-id` when it is a plain
/// token of at most 128 characters (so a caller can follow its own id
/// through the log), else a new one.
#[derive(Clone)]
pub(crate) struct RequestId(pub String);

/// Gives every request an id (a [`RequestId`] extension) and every
/// response the `x-request-id` header.
async fn with_request_id(mut request: axum::extract::Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Why a request was not let in.
pub(crate) enum AuthFailure {
    /// No bearer token, or an invalid or revoked one (HTTP 401).
    Unauthenticated(&'static str),
    /// The database could not check the token now (HTTP 503, retryable).
    Unavailable,
    /// The token could not be checked (logged; HTTP 500).
    Internal,
}

/// Seconds a client is asked to wait before retrying a request that met an
/// unavailable database (`Retry-After`).
pub(crate) const RETRY_AFTER_SECONDS: &str = "1";

/// The scope of the request's `Authorization: Bearer` token.
pub(crate) async fn authenticate(repo: &Repo, headers: &HeaderMap) -> Result<Scope, AuthFailure> {
    let Some(token) = bearer_token(headers) else {
        return Err(AuthFailure::Unauthenticated(
            "send an API token as `Authorization: Bearer <token>`",
        ));
    };
    match repo.scope_for_token(token).await {
        Ok(Some(scope)) => Ok(scope),
        Ok(None) => Err(AuthFailure::Unauthenticated(
            "the API token is invalid or revoked",
        )),
        Err(error) => {
            tracing::error!(%error, "token lookup failed");
            if error.is_unavailable() {
                Err(AuthFailure::Unavailable)
            } else {
                Err(AuthFailure::Internal)
            }
        }
    }
}

/// Whether the request body is declared as JSON.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_start()
        .to_ascii_lowercase()
        .starts_with(JSON)
}

/// The GraphQL answer when a request's work gave none.
fn graphql_unanswered(unanswered: Unanswered, request_id: &str) -> Response {
    match unanswered {
        Unanswered::Failed => internal_error(request_id),
        Unanswered::TimedOut(timeout) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "REQUEST_TIMEOUT",
            format!("the request took longer than {} ms", timeout.as_millis()),
        ),
    }
}

async fn graphql(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let graphql_response = accepts(&headers, GRAPHQL_RESPONSE);
    let work = |state, request_id| handle_graphql(state, headers, body, request_id);
    let response = detached(state, request_id, work, graphql_unanswered).await;
    in_accepted_type(graphql_response, response)
}

/// `GET /graphql`: a WebSocket for subscriptions (see [`ws`]); the
/// playground for a browser (a client asking for HTML); otherwise GraphQL
/// over HTTP's GET, which runs queries only.
async fn graphql_get(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    RawQuery(parameters): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if ws::is_upgrade(&headers) {
        return ws::upgrade(state, &headers, upgrade).await;
    }
    if accepts(&headers, "text/html") {
        return graphiql(&state, &headers);
    }
    let graphql_response = accepts(&headers, GRAPHQL_RESPONSE);
    let work = |state, request_id| handle_graphql_get(state, headers, parameters, request_id);
    let response = detached(state, request_id, work, graphql_unanswered).await;
    in_accepted_type(graphql_response, response)
}

async fn handle_graphql_get(
    state: AppState,
    headers: HeaderMap,
    parameters: Option<String>,
    request_id: String,
) -> Response {
    let scope = match authenticate_graphql(&state, &headers, &request_id).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let mut request =
        match async_graphql::http::parse_query_string(parameters.as_deref().unwrap_or("")) {
            Ok(request) => request,
            Err(error) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    format!("the query string is not a GraphQL request: {error}"),
                );
            }
        };
    if let Some(response) = with_persisted_query(&state, &headers, &mut request, &request_id) {
        return response;
    }
    if operation_type(&request) == Some(OperationType::Mutation) {
        let mut response = refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "mutations are not run over GET: send them with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    run_graphql(&state, &headers, request, scope, &request_id).await
}

/// The type of the operation a request would run; `None` when there is no
/// such operation, or the document does not parse (left to execution,
/// which reports it).
fn operation_type(request: &async_graphql::Request) -> Option<OperationType> {
    use async_graphql::parser::types::DocumentOperations;
    let document = async_graphql::parser::parse_query(&request.query).ok()?;
    let operation = match (&document.operations, &request.operation_name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name.as_str()),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(_), None) => None,
    };
    operation.map(|operation| operation.node.ty)
}

/// The request's scope, or the GraphQL refusal when its token is not good.
async fn authenticate_graphql(
    state: &AppState,
    headers: &HeaderMap,
    request_id: &str,
) -> Result<Scope, Response> {
    match authenticate(&state.repo, headers).await {
        Ok(scope) => Ok(scope),
        Err(AuthFailure::Unauthenticated(message)) => {
            Err(refuse(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message))
        }
        Err(AuthFailure::Unavailable) => Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            DATABASE_UNAVAILABLE,
            DATABASE_UNAVAILABLE_MESSAGE,
        )),
        Err(AuthFailure::Internal) => Err(internal_error(request_id)),
    }
}

async fn handle_graphql(
    state: AppState,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    request_id: String,
) -> Response {
    let (headers, request_id) = (&headers, request_id.as_str());
    let limits = &state.options.limits;
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("the request body exceeds {} bytes", limits.max_body_bytes),
            );
        }
        Err(rejection) => return refuse(rejection.status(), "BAD_REQUEST", rejection.body_text()),
    };

    let scope = match authenticate_graphql(&state, headers, request_id).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };

    if !is_json(headers) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the request as application/json",
        );
    }
    let key = match idempotency::key(headers) {
        Ok(key) => key,
        Err(invalid) => return invalid.refusal(),
    };
    let run = run_body(&state, headers, &body, scope, request_id);
    match (key, scope.token_id) {
        (Some(key), Some(token)) => {
            idempotency::run_once(&state, headers, (token, &key), &body, request_id, run).await
        }
        _ => run.await,
    }
}

/// Runs the request `body` (a POST's, of an authenticated client that sent
/// JSON) and encodes its answer.
async fn run_body(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    scope: Scope,
    request_id: &str,
) -> Response {
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return refuse(
            StatusCode::BAD_REQUEST,
            "BATCHING_NOT_SUPPORTED",
            "batched requests are not accepted: send one operation per request",
        );
    }
    let mut request: async_graphql::Request = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("the request body is not a GraphQL request in JSON: {error}"),
            );
        }
    };
    if let Some(response) = with_persisted_query(state, headers, &mut request, request_id) {
        return response;
    }
    run_graphql(state, headers, request, scope, request_id).await
}

/// Gives the request the text of the persisted query it names (see
/// [`persisted`]); the GraphQL answer when that cannot be done.
fn with_persisted_query(
    state: &AppState,
    headers: &HeaderMap,
    request: &mut async_graphql::Request,
    request_id: &str,
) -> Option<Response> {
    let persisted::Refusal(code, message) = state
        .persisted_queries
        .resolve(request, state.options.limits.max_query_bytes)
        .err()?;
    let error = crate::graphql::limits::refusal(code, message.to_owned());
    let response = async_graphql::Response::from_errors(vec![error]);
    Some(graphql_response(headers, response, request_id))
}

/// Runs a well-formed request of `scope` and encodes its answer.
async fn run_graphql(
    state: &AppState,
    headers: &HeaderMap,
    request: async_graphql::Request,
    scope: Scope,
    request_id: &str,
) -> Response {
    let limits = &state.options.limits;
    // `{}` or a misspelt `"qeury"` leaves the document empty: the request's
    // parameters are invalid, which GraphQL over HTTP answers with 400.
    if request.query.trim().is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "the request has no GraphQL document: send it as `query`",
        );
    }
    if request.query.len() > limits.max_query_bytes {
        let error = crate::graphql::limits::refusal(
            "QUERY_TOO_LARGE",
            format!(
                "the query is {} bytes long; at most {} are allowed",
                request.query.len(),
                limits.max_query_bytes
            ),
        );
        return graphql_response(
            headers,
            async_graphql::Response::from_errors(vec![error]),
            request_id,
        );
    }

    let operation = request.operation_name.clone();
    let request = request.data(request_loader(&state.repo)).data(scope);
    let response = execute(state, request, operation.as_deref()).await;
    graphql_response(headers, response, request_id)
}

/// Whether the client's `Accept` names `media_type`.
fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(media_type))
}

/// A refusal (see [`refuse`]) in `application/graphql-response+json` when
/// the client accepts that type, as GraphQL over HTTP asks.
fn in_accepted_type(graphql_response: bool, mut response: Response) -> Response {
    let refused_as_json =
        response.headers().get(header::CONTENT_TYPE) == Some(&HeaderValue::from_static(JSON));
    if refused_as_json && graphql_response {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(GRAPHQL_RESPONSE),
        );
    }
    response
}

/// Whether an error carries `extensions.code` `code`.
pub(crate) fn has_code(error: &async_graphql::ServerError, code: &str) -> bool {
    error.extensions.as_ref().and_then(|e| e.get("code")) == Some(&async_graphql::Value::from(code))
}

fn internal_error(request_id: &str) -> Response {
    let body = json!({ "errors": [{
        "message": "internal server error",
        "extensions": { "code": INTERNAL_SERVER_ERROR, "requestId": request_id },
    }] });
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}

/// Encodes a response as GraphQL over HTTP says: with the
/// `application/graphql-response+json` media type when the client accepts it
/// (and then 4xx for requests that could not be executed), else as
/// `application/json` with 200. Internal errors get the request id.
fn graphql_response(
    headers: &HeaderMap,
    response: async_graphql::Response,
    request_id: &str,
) -> Response {
    let accepts_graphql_response = accepts(headers, GRAPHQL_RESPONSE);
    // Parse and validation errors carry no path and stop execution before
    // any field ran: then `data` must be absent.
    let not_executed = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let unavailable = response
        .errors
        .iter()
        .any(|error| has_code(error, DATABASE_UNAVAILABLE));
    // An answer without errors is written as it is; only one with errors
    // goes through a JSON tree to be amended.
    let encoded = if response.errors.is_empty() {
        serde_json::to_vec(&response)
    } else {
        serde_json::to_value(&response).and_then(|mut body| {
            amend_errors(&mut body, not_executed, request_id);
            serde_json::to_vec(&body)
        })
    };
    let body = match encoded {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "cannot encode response");
            return internal_error(request_id);
        }
    };
    let (status, media_type) = match (accepts_graphql_response, not_executed) {
        (true, true) => (StatusCode::BAD_REQUEST, GRAPHQL_RESPONSE),
        (true, false) => (StatusCode::OK, GRAPHQL_RESPONSE),
        (false, _) => (StatusCode::OK, JSON),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    if unavailable {
        retry_after(&mut response);
    }
    response
}

/// Drops `data` from a response that was not executed, and adds the
/// request id to internal errors.
fn amend_errors(body: &mut Value, not_executed: bool, request_id: &str) {
    let Some(object) = body.as_object_mut() else {
        return;
    };
    if not_executed {
        object.remove("data");
    }
    if let Some(Value::Array(errors)) = object.get_mut("errors") {
        for error in errors {
            if error["extensions"]["code"] == INTERNAL_SERVER_ERROR {
                error["extensions"]["requestId"] = Value::from(request_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_origins() {
        assert!(is_localhost("http://localhost"));
        assert!(is_localhost("http://localhost:5173"));
        assert!(is_localhost("http://127.0.0.1:8080"));
        assert!(!is_localhost("http://localhost.evil.com"));
        assert!(!is_localhost("https://localhost:3000"));
        assert!(!is_localhost("http://localhost:abc"));
    }

    #[test]
    fn loopback_hosts() {
        let host = |value: &'static str| is_loopback_host(Some(&HeaderValue::from_static(value)));
        assert!(host("localhost:8080") && host("127.0.0.1:8080") && host("[::1]:8080"));
        assert!(host("localhost") && host("[::1]"));
        assert!(!host("evil.example.com") && !host("10.0.0.5:8080") && !host("localhost.evil.com"));
        assert!(!is_loopback_host(None));
    }

    #[test]
    fn bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&headers), None);
    }
}
