//! Instants as this service stores and shows them: microsecond precision,
//! UTC, one fixed text form.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};

/// The one text form of an instant: RFC 3339, UTC (`Z`), exactly six
/// fractional digits. Fixed width, so on SQLite text order is time order.
///
/// Written digit by digit: every timestamp of every response goes through
/// here, and chrono's general formatter was 2% of a nested read's
/// instructions. An instant that does not fit the fixed width (a year
/// outside 0–9999, a leap second: neither is ever stored) takes chrono's
/// form, which this one equals everywhere else.
pub fn format_instant(t: &DateTime<Utc>) -> String {
    let naive = t.naive_utc();
    let (year, nanos) = (naive.year(), naive.nanosecond());
    let (Ok(year @ 0..=9999), 0..=999_999_999) = (u32::try_from(year), nanos) else {
        return t.to_rfc3339_opts(SecondsFormat::Micros, true);
    };
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    // Each field's value at its place in the fixed width, last digit last.
    for (range, value) in [
        (0..4, year),
        (5..7, naive.month()),
        (8..10, naive.day()),
        (11..13, naive.hour()),
        (14..16, naive.minute()),
        (17..19, naive.second()),
        (20..26, nanos / 1_000),
    ] {
        let mut value = value;
        for digit in text[range].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    // ASCII digits and separators only: nothing is ever replaced.
    String::from_utf8_lossy(&text).into_owned()
}

/// What a client must send where an instant is expected.
pub const INSTANT_EXPECTED: &str =
    "expected an RFC 3339 date-time such as 2026-01-31T12:00:00.000000Z (any offset, at most microseconds)";

/// Reads an instant a client sent (a version, a visit time): RFC 3339 with
/// any offset (`+02:00` names the same instant as the UTC form). More
/// precision than a microsecond is refused: nothing is stored that
/// precisely, so such a value could never match a version.
///
/// A leap second (`23:59:60`) means the first instant of the next minute,
/// as PostgreSQL stores it: chrono keeps it apart (as second 59 with a
/// nanosecond count past one second), which SQLite's text would keep too,
/// so both backends would hold different values for one input.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, &'static str> {
    let instant = DateTime::parse_from_rfc3339(text)
        .map_err(|_| INSTANT_EXPECTED)?
        .with_timezone(&Utc);
    let nanos = instant.nanosecond();
    if nanos % 1_000 != 0 {
        return Err("date-time is more precise than a microsecond");
    }
    if nanos >= 1_000_000_000 {
        let second_59 = instant
            .with_nanosecond(nanos - 1_000_000_000)
            .ok_or("not a valid date-time")?;
        return Ok(second_59 + chrono::Duration::seconds(1));
    }
    Ok(instant)
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
    fn instants_in_any_offset_name_the_same_version() {
        let utc = parse_instant("2026-01-31T12:00:00.000001Z").unwrap();
        assert_eq!(parse_instant("2026-01-31T14:00:00.000001+02:00"), Ok(utc));
        assert!(parse_instant("2026-01-31T12:00:00.0000001Z").is_err());
        assert!(parse_instant("yesterday").is_err());
    }

    #[test]
    fn instants_are_written_as_chrono_writes_them() {
        let chrono_form = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
        for text in [
            "2026-01-31T12:00:00Z",
            "2026-12-31T23:59:59.999999999Z",
            "0001-02-03T04:05:06.000007Z",
            "0000-01-01T00:00:00.1Z",
            "9999-12-31T23:59:59.123456Z",
            "2024-02-29T10:20:30.000100Z",
        ] {
            let t = at(text);
            assert_eq!(format_instant(&t), chrono_form(&t), "{text}");
            assert_eq!(format_instant(&t).len(), 27, "{text}");
        }
        // Outside the fixed width: chrono's form.
        let far = at("+10000-01-01T00:00:00Z");
        assert_eq!(format_instant(&far), chrono_form(&far));
        let leap = at("2026-06-30T23:59:59Z")
            .with_nanosecond(1_500_000_000)
            .unwrap();
        assert_eq!(format_instant(&leap), "2026-06-30T23:59:60.500000Z");
    }

    #[test]
    fn a_leap_second_is_the_next_minute() {
        assert_eq!(
            parse_instant("2026-06-30T23:59:60.250000Z"),
            Ok(at("2026-07-01T00:00:00.250Z"))
        );
        assert_eq!(
            format_instant(&parse_instant("2026-06-30T23:59:60Z").unwrap()),
            "2026-07-01T00:00:00.000000Z"
        );
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
