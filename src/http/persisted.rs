//! Automatic persisted queries, Apollo's protocol: a client sends
//! `extensions.persistedQuery = {version: 1, sha256Hash}` without the
//! query text; if the server knows the hash it runs that query, else it
//! answers `PERSISTED_QUERY_NOT_FOUND` and the client sends the text once
//! with its hash, which the server checks and remembers. Mobile clients so
//! send a hash instead of kilobytes of query, and can use GET for it.
//!
//! Resolved here, before anything else reads the request, into an ordinary
//! request with its text: the GET rule (no mutations), the limits and the
//! caches all see the text, as for any request.

use std::collections::HashMap;
use std::sync::Mutex;

use async_graphql::Request;
use serde::Deserialize;

/// Most queries remembered; with the query size limit (32 KiB by default),
/// which a text must meet to be remembered, this bounds their memory. When full, it starts again empty and
/// clients send their texts again.
const CAPACITY: usize = 1024;

/// The `persistedQuery` request extension.
#[derive(Deserialize)]
struct PersistedQuery {
    version: i64,
    #[serde(rename = "sha256Hash")]
    sha256_hash: String,
}

/// Why a persisted query could not be used: a GraphQL error code and message.
pub(super) struct Refusal(pub &'static str, pub &'static str);

#[derive(Default)]
pub struct PersistedQueries(Mutex<HashMap<String, String>>);

impl PersistedQueries {
    fn queries(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Fills in the text of a request that names a persisted query, and
    /// remembers the text of one that sends both (if it is no longer than
    /// `max_query_bytes`, the longest query the server runs).
    pub(super) fn resolve(
        &self,
        request: &mut Request,
        max_query_bytes: usize,
    ) -> Result<(), Refusal> {
        let Some(extension) = request.extensions.remove("persistedQuery") else {
            return Ok(());
        };
        let persisted: PersistedQuery = async_graphql::from_value(extension).map_err(|_| {
            Refusal(
                "BAD_REQUEST",
                "extensions.persistedQuery must be {\"version\": 1, \"sha256Hash\": \"<hex>\"}",
            )
        })?;
        if persisted.version != 1 {
            return Err(Refusal(
                "BAD_REQUEST",
                "only version 1 of persisted queries is supported",
            ));
        }
        let hash = persisted.sha256_hash.to_ascii_lowercase();
        if request.query.trim().is_empty() {
            return match self.queries().get(&hash) {
                Some(query) => {
                    request.query = query.clone();
                    Ok(())
                }
                None => Err(Refusal(
                    "PERSISTED_QUERY_NOT_FOUND",
                    "PersistedQueryNotFound",
                )),
            };
        }
        if request.query.len() > max_query_bytes {
            return Err(Refusal(
                "QUERY_TOO_LARGE",
                "the query is longer than the server runs",
            ));
        }
        let actual = crate::repo::sha256_hex(&request.query);
        if actual != hash {
            return Err(Refusal("BAD_REQUEST", "provided sha does not match query"));
        }
        let mut queries = self.queries();
        if queries.len() >= CAPACITY {
            queries.clear();
        }
        queries.insert(hash, request.query.clone());
        Ok(())
    }
}
