//! The axum router: `/graphql` (POST executes, GET serves GraphiQL) and `/health`.

use async_graphql::http::GraphiQLSource;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::graphql::loaders::request_loader;
use crate::graphql::AppSchema;
use crate::repo::{Repo, Scope};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    pub repo: Repo,
    /// The environment requests act in.
    pub scope: Scope,
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .title("usergraph")
            .finish(),
    )
}

async fn health(State(state): State<AppState>) -> Response {
    match state.repo.db().ping().await {
        Ok(()) => Json(json!({ "status": "ok" })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable" })),
            )
                .into_response()
        }
    }
}

/// A GraphQL error response for a request that could not be executed.
fn request_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "errors": [{ "message": message.into(), "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

async fn graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return request_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("request body exceeds {MAX_BODY_BYTES} bytes"),
            );
        }
        Err(rejection) => {
            return request_error(rejection.status(), "BAD_REQUEST", rejection.body_text());
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with(JSON)
    {
        return request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the request as application/json",
        );
    }
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("request body is not a GraphQL request in JSON: {error}"),
            );
        }
    };
    let request = request.data(request_loader(&state.repo)).data(state.scope);
    let response = state.schema.execute(request).await;
    graphql_response(&headers, response)
}

/// Encodes a response as GraphQL over HTTP says: with the
/// `application/graphql-response+json` media type when the client accepts it
/// (and then 4xx for requests that could not be executed), else as
/// `application/json` with 200.
fn graphql_response(headers: &HeaderMap, response: async_graphql::Response) -> Response {
    let accepts_graphql_response = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(GRAPHQL_RESPONSE));
    // Parse and validation errors carry no path and stop execution before
    // any field ran: then `data` must be absent.
    let not_executed = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let mut body = match serde_json::to_value(&response) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "cannot encode response");
            return request_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                "internal server error",
            );
        }
    };
    if not_executed {
        if let Some(object) = body.as_object_mut() {
            object.remove("data");
        }
    }
    let (status, media_type) = match (accepts_graphql_response, not_executed) {
        (true, true) => (StatusCode::BAD_REQUEST, GRAPHQL_RESPONSE),
        (true, false) => (StatusCode::OK, GRAPHQL_RESPONSE),
        (false, _) => (StatusCode::OK, JSON),
    };
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    response
}
