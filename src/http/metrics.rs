//! `/metrics` in the Prometheus text format, served on an address of its
//! own (`--metrics-listen`), never on the API's: requests by operation and
//! outcome, their latency, the pool, SQL statements and live subscriptions.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::graphql::Outcome;
use crate::repo::Repo;

/// Operation names counted apart; past these, requests count as `other`
/// (clients choose the names, and every name is a time series).
const MAX_OPERATIONS: usize = 100;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// What the server counts.
#[derive(Default)]
pub struct Metrics {
    /// Requests by (operation, outcome).
    requests: Mutex<HashMap<(String, &'static str), u64>>,
    /// Requests by latency bucket (the last one: above every bound).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// Total latency, in microseconds.
    latency_micros: AtomicU64,
}

impl Metrics {
    /// Counts a finished GraphQL or REST request.
    pub fn observe(&self, operation: &str, outcome: Outcome, took: Duration) {
        {
            let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            let known = requests.len() < MAX_OPERATIONS
                || requests.keys().any(|(name, _)| name == operation);
            let operation = if known { operation } else { "other" };
            *requests
                .entry((operation.to_owned(), outcome.label()))
                .or_default() += 1;
        }
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.latency_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The text format of every metric.
    fn render(&self, repo: &Repo) -> String {
        let mut out = String::new();
        out.push_str("# HELP usergraph_requests_total GraphQL and REST requests by operation name and outcome.\n");
        out.push_str("# TYPE usergraph_requests_total counter\n");
        let mut requests: Vec<_> = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((operation, outcome), count)| (operation.clone(), *outcome, *count))
            .collect();
        requests.sort();
        for (operation, outcome, count) in requests {
            // A label value must not break its line, whatever it holds.
            let operation = operation
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = writeln!(
                out,
                "usergraph_requests_total{{operation=\"{operation}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        out.push_str("# HELP usergraph_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE usergraph_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let bound = BUCKETS
                .get(index)
                .map_or("+Inf".to_owned(), |bound| bound.to_string());
            let _ = writeln!(
                out,
                "usergraph_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let seconds = self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "usergraph_request_duration_seconds_sum {seconds}");
        let _ = writeln!(out, "usergraph_request_duration_seconds_count {cumulative}");
        let pool = repo.db().pool_status();
        out.push_str("# HELP usergraph_db_connections Pooled database connections.\n");
        out.push_str("# TYPE usergraph_db_connections gauge\n");
        let _ = writeln!(
            out,
            "usergraph_db_connections{{state=\"in_use\"}} {}",
            pool.in_use
        );
        let _ = writeln!(
            out,
            "usergraph_db_connections{{state=\"idle\"}} {}",
            pool.idle
        );
        let _ = writeln!(
            out,
            "usergraph_db_connections{{state=\"max\"}} {}",
            pool.max
        );
        out.push_str(
            "# HELP usergraph_sql_statements_total SQL statements run by pooled connections.\n",
        );
        out.push_str("# TYPE usergraph_sql_statements_total counter\n");
        let _ = writeln!(
            out,
            "usergraph_sql_statements_total {}",
            repo.db().statements_run()
        );
        out.push_str("# HELP usergraph_subscriptions Live subscriptions on this process.\n");
        out.push_str("# TYPE usergraph_subscriptions gauge\n");
        let _ = writeln!(out, "usergraph_subscriptions {}", repo.feed().subscribers());
        out
    }
}

/// The router of the metrics address.
pub fn router(metrics: std::sync::Arc<Metrics>, repo: Repo) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(
                |State((metrics, repo)): State<(std::sync::Arc<Metrics>, Repo)>| async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        metrics.render(&repo),
                    )
                        .into_response()
                },
            ),
        )
        .with_state((metrics, repo))
}
