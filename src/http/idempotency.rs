//! `Idempotency-Key` on `POST /graphql`, as payment APIs use it: a client
//! that lost an answer (a timeout, a dropped connection) sends the request
//! again with the same key and gets the first answer, and the operation
//! runs once.
//!
//! Keys are per token. Within [`KEY_LIFETIME_HOURS`], a request with a key its
//! token used before gets: the first answer again, with `Idempotent-Replayed:
//! true`, when the body is byte for byte the same; `IDEMPOTENCY_KEY_REUSED`
//! (422) when it is not; while the first request still runs, the first
//! answer once there is one, or `IDEMPOTENCY_KEY_IN_USE` (409, retryable)
//! when none comes within most of the request timeout. The claim is a row
//! inserted under the key's primary key, so of concurrent requests in any
//! number of processes exactly one runs.
//!
//! An answer that says to retry (5xx: the database unavailable, an internal
//! error) is not kept: the claim is given up and the retry runs. Whether the
//! first attempt wrote is then for the compare-and-set to tell, as after
//! any lost answer. A request timeout does not give the claim up: the work
//! runs on (see `detached`) and its answer is kept when it comes.

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use uuid::Uuid;

use super::{accepts, refuse, AppState, GRAPHQL_RESPONSE, JSON};
use crate::graphql::errors::{DATABASE_UNAVAILABLE, DATABASE_UNAVAILABLE_MESSAGE};
use crate::repo::{sha256_hex, KeyClaim, Repo, RepoError};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header of a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";
/// Hours a key's first answer is kept.
pub const KEY_LIFETIME_HOURS: i64 = 24;
/// Most keys kept per token (the oldest go first).
pub const KEYS_PER_TOKEN: i64 = 10_000;
/// The longest key accepted.
const MAX_KEY_LENGTH: usize = 255;
/// How often a request waiting for another one's answer looks again.
const POLL: Duration = Duration::from_millis(20);

/// An `Idempotency-Key` header that is not 1 to 255 visible ASCII
/// characters.
pub struct InvalidKey;

impl InvalidKey {
    pub fn refusal(self) -> Response {
        refuse(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            format!("the Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters"),
        )
    }
}

/// The request's `Idempotency-Key` (a UUID, typically), if it sent one.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, InvalidKey> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| InvalidKey)?;
    let valid =
        (1..=MAX_KEY_LENGTH).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    valid.then(|| Some(key.to_owned())).ok_or(InvalidKey)
}

/// Runs `run` once for `key` of `token` and this `body` (see the module's
/// documentation), or answers as the first request with that key did.
pub async fn run_once<F>(
    state: &AppState,
    headers: &HeaderMap,
    (token, key): (Uuid, &str),
    body: &[u8],
    request_id: &str,
    run: F,
) -> Response
where
    F: Future<Output = Response>,
{
    let repo = &state.repo;
    let body_hash = sha256_hex(body);
    let lifetime = super::IDEMPOTENCY_KEY_LIFETIME;
    let timeout = Duration::from_millis(state.options.limits.request_timeout_ms);
    // A claim unanswered for twice the request timeout belongs to a process
    // that stopped: the work of a live one is cancelled in the database by
    // then (`DatabaseArgs::bounded_by`).
    let abandon_after = chrono::Duration::from_std(timeout * 2).unwrap_or(chrono::Duration::MAX);
    let wait_until = tokio::time::Instant::now() + timeout.mul_f32(0.8);
    loop {
        let claim = repo
            .claim_idempotency_key(token, key, &body_hash, (lifetime, abandon_after))
            .await;
        match claim {
            Ok(KeyClaim::Claimed) => {
                return keep_answer(repo, (token, key), run.await, request_id).await
            }
            Ok(KeyClaim::Answered { status, body }) => return replay(headers, status, body),
            Ok(KeyClaim::OtherBody) => {
                return refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "IDEMPOTENCY_KEY_REUSED",
                    "this Idempotency-Key was used with another request body: use a new key for a new request",
                )
            }
            Ok(KeyClaim::Running) if tokio::time::Instant::now() < wait_until => {
                tokio::time::sleep(POLL).await;
            }
            Ok(KeyClaim::Running) => {
                let mut response = refuse(
                    StatusCode::CONFLICT,
                    "IDEMPOTENCY_KEY_IN_USE",
                    "a request with this Idempotency-Key is still running; retry shortly",
                );
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(super::RETRY_AFTER_SECONDS),
                );
                return response;
            }
            Err(error) => return unavailable_or_internal(&error, request_id),
        }
    }
}

/// Stores `response` as the answer to `key`, unless it says to retry; then
/// gives the claim up. Returns the response, rebuilt from its bytes.
async fn keep_answer(
    repo: &Repo,
    (token, key): (Uuid, &str),
    response: Response,
    request_id: &str,
) -> Response {
    let (parts, body) = response.into_parts();
    // The body was built in memory by this server, so this cannot wait on a
    // client; its size is bounded by the response limits.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!(%error, "cannot read a response to keep it");
            let _ = repo.release_idempotency_key(token, key).await;
            return super::internal_error(request_id);
        }
    };
    let kept = if parts.status.is_server_error() {
        repo.release_idempotency_key(token, key).await
    } else {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let status = i32::from(parts.status.as_u16());
        repo.answer_idempotency_key(token, key, status, text).await
    };
    if let Err(error) = kept {
        // The answer still goes out; a retry then finds the claim
        // unanswered and waits until it counts as abandoned.
        tracing::error!(%error, "cannot keep the answer to an Idempotency-Key");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The first answer, again.
fn replay(headers: &HeaderMap, status: i32, body: String) -> Response {
    let status = u16::try_from(status)
        .ok()
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::OK);
    let media_type = if accepts(headers, GRAPHQL_RESPONSE) {
        GRAPHQL_RESPONSE
    } else {
        JSON
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

fn unavailable_or_internal(error: &RepoError, request_id: &str) -> Response {
    tracing::error!(%error, "idempotency key lookup failed");
    if error.is_unavailable() {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            DATABASE_UNAVAILABLE,
            DATABASE_UNAVAILABLE_MESSAGE,
        )
    } else {
        super::internal_error(request_id)
    }
}
