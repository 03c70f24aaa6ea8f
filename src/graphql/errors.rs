//! Error policy: clients see typed results for everything they can cause,
//! and for internal failures only "internal server error" with a stable
//! code. The cause (SQL, pool, I/O) goes to the log, never to the client.

use std::fmt::Display;

use async_graphql::ErrorExtensions;

/// `extensions.code` of an internal failure.
pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";

/// Logs `error` and returns the opaque error the client sees.
pub fn internal(error: impl Display) -> async_graphql::Error {
    tracing::error!(%error, "request failed");
    async_graphql::Error::new("internal server error")
        .extend_with(|_, extensions| extensions.set("code", INTERNAL_SERVER_ERROR))
}

/// A client error in the arguments, with `extensions.code` `BAD_USER_INPUT`.
pub fn bad_input(message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", "BAD_USER_INPUT"))
}
