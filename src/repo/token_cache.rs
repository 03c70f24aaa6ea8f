//! Token lookups remembered for a short while, so that a request does not
//! pay a database round trip to learn what the previous one learned.
//!
//! The bound on staleness is the time to live: a token revoked by this
//! process is forgotten at once; one revoked by another process (or the
//! command line) stops working here within the time to live. Only valid
//! tokens are remembered, so a client guessing tokens cannot fill the map,
//! and the map is emptied when it reaches its cap.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Scope;

/// Most tokens remembered at once.
const CAPACITY: usize = 10_000;

pub struct TokenCache {
    ttl: Duration,
    /// Token hash → the scope it granted and when that was read.
    entries: Mutex<HashMap<String, (Scope, Instant)>>,
}

impl TokenCache {
    /// A cache whose entries live `ttl`; zero turns it off.
    pub fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Scope, Instant)>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The scope token `hash` granted less than the time to live ago.
    pub fn get(&self, hash: &str) -> Option<Scope> {
        if self.ttl.is_zero() {
            return None;
        }
        let (scope, read_at) = *self.entries().get(hash)?;
        (read_at.elapsed() < self.ttl).then_some(scope)
    }

    /// Remembers that token `hash` grants `scope`, as read just now.
    pub fn put(&self, hash: &str, scope: Scope) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(hash.to_owned(), (scope, Instant::now()));
    }

    /// Forgets every token: after a revocation by this process.
    pub fn clear(&self) {
        self.entries().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: Scope = Scope::of_environment(uuid::Uuid::nil());

    #[test]
    fn remembers_within_the_time_to_live_only() {
        let cache = TokenCache::new(Duration::from_millis(50));
        cache.put("h", SCOPE);
        assert_eq!(cache.get("h"), Some(SCOPE));
        assert_eq!(cache.get("other"), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("h"), None);
    }

    #[test]
    fn zero_turns_it_off_and_clear_forgets() {
        let off = TokenCache::new(Duration::ZERO);
        off.put("h", SCOPE);
        assert_eq!(off.get("h"), None);
        let cache = TokenCache::new(Duration::from_secs(60));
        cache.put("h", SCOPE);
        cache.clear();
        assert_eq!(cache.get("h"), None);
    }
}
