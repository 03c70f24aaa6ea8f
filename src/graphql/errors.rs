//! Error policy: clients see typed results for everything they can cause,
//! and for failures of the server only a stable code: `DATABASE_UNAVAILABLE`
//! when the database cannot be reached or gives no connection in time (a
//! failure of the moment: retry), else `INTERNAL_SERVER_ERROR`. The cause
//! (SQL, pool, I/O) goes to the log, never to the client.

use std::borrow::Borrow;

use async_graphql::ErrorExtensions;

use crate::repo::RepoError;

/// `extensions.code` of an internal failure.
pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";

/// `extensions.code` of a database that is down or has no free connection:
/// retryable, answered with HTTP 503 and `Retry-After`.
pub const DATABASE_UNAVAILABLE: &str = "DATABASE_UNAVAILABLE";

/// The client's text for [`DATABASE_UNAVAILABLE`].
pub const DATABASE_UNAVAILABLE_MESSAGE: &str = "the database is unavailable; retry shortly";

/// Logs a repository failure and returns the opaque error the client sees.
pub fn repo_failure(error: impl Borrow<RepoError>) -> async_graphql::Error {
    let error = error.borrow();
    tracing::error!(%error, "request failed");
    let (message, code) = if error.is_unavailable() {
        (DATABASE_UNAVAILABLE_MESSAGE, DATABASE_UNAVAILABLE)
    } else {
        ("internal server error", INTERNAL_SERVER_ERROR)
    };
    async_graphql::Error::new(message).extend_with(|_, extensions| extensions.set("code", code))
}

/// A client error in the arguments, with `extensions.code` `BAD_USER_INPUT`.
pub fn bad_input(message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", "BAD_USER_INPUT"))
}
