//! Instants as this service stores and shows them: microsecond precision,
//! UTC, one fixed text form.

use chrono::{DateTime, SecondsFormat, Utc};

/// The one text form of an instant: RFC 3339, UTC (`Z`), exactly six
/// fractional digits. Fixed width, so on SQLite text order is time order.
pub fn format_instant(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The `updated_at` a successful change writes: now, but always later than
/// the version it replaces, even when the clock stands still or steps back.
/// Truncated to microseconds, the precision both backends store.
pub fn next_updated_at(now: DateTime<Utc>, previous: DateTime<Utc>) -> DateTime<Utc> {
    let one_micro = chrono::Duration::microseconds(1);
    truncate_to_micros(now).max(truncate_to_micros(previous) + one_micro)
}

/// Drops sub-microsecond digits.
pub fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Timelike;
    let nanos = t.nanosecond();
    t.with_nanosecond(nanos - nanos % 1_000).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn next_version_is_now_when_the_clock_moved_on() {
        assert_eq!(
            next_updated_at(
                at("2026-01-01T00:00:01.123456789Z"),
                at("2026-01-01T00:00:00Z")
            ),
            at("2026-01-01T00:00:01.123456Z")
        );
    }

    #[test]
    fn next_version_is_one_micro_later_when_the_clock_did_not_move() {
        let t = at("2026-01-01T00:00:00.000007Z");
        assert_eq!(next_updated_at(t, t), at("2026-01-01T00:00:00.000008Z"));
        // Same microsecond, later nanosecond: still strictly later.
        assert_eq!(
            next_updated_at(at("2026-01-01T00:00:00.000007900Z"), t),
            at("2026-01-01T00:00:00.000008Z")
        );
    }

    #[test]
    fn next_version_survives_a_clock_step_back() {
        let previous = at("2026-06-01T00:00:00Z");
        assert_eq!(
            next_updated_at(at("2026-01-01T00:00:00Z"), previous),
            at("2026-06-01T00:00:00.000001Z")
        );
    }
}
