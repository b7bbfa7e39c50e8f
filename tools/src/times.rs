//! The one parser for times and durations on the command line (built on `jiff`), so
//! every option reads them the same way.
//!
//! Durations (`--interval`, `--window`, `--timeout`, `--fsync`, and the relative part
//! of a time): a bare number is seconds (`5`, `0.25`); otherwise jiff's friendly
//! format with units `ns`, `us`, `ms`, `s`, `m`, `h` (`500ms`, `2s`, `1m`, `1h30m`,
//! `1.5s`) or ISO 8601 (`PT5S`).
//!
//! Times (`--from-time`, `--to-time`): RFC 3339 with an offset
//! (`2026-11-27T21:00:00Z`, `2026-11-27 22:00:00+01:00`, fractions), a bare date
//! (`2026-11-27`, midnight UTC), Unix nanoseconds (`1795813200000000000`), `now`, or a
//! time relative to now (`-5m`, `-1h30m`, `-500ms`, `-5` for five seconds ago).

use std::time::Duration;

use jiff::{civil::Date, SignedDuration, Timestamp};

pub use shmbus::query::format_time;

/// What the help texts say a duration may be.
pub const DURATION_HELP: &str = "a bare number of seconds (5, 0.25) or a number with a unit \
                                 (500ms, 2s, 1m, 1h30m)";

/// What the help texts say a time may be.
pub const TIME_HELP: &str = "RFC 3339 (2026-11-27T21:00:00Z), a date (2026-11-27), Unix \
                             nanoseconds, now, or relative to now (-5m, -1h30m, -10)";

/// Parses a duration (see the module docs). Negative durations are refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad =
        |why: &dyn std::fmt::Display| format!("bad duration {s:?}: {why} (use {DURATION_HELP})");
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad(&"not a number of seconds"));
    }
    let d: SignedDuration = t.parse().map_err(|e: jiff::Error| bad(&e))?;
    Duration::try_from(d).map_err(|_| bad(&"it is negative"))
}

/// Parses a time (see the module docs) into nanoseconds since the Unix epoch; relative
/// times count back from `now_ns`.
pub fn parse_time(s: &str, now_ns: u64) -> Result<u64, String> {
    let t = s.trim();
    if t == "now" {
        return Ok(now_ns);
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse()
            .map_err(|_| format!("time {s:?} does not fit in 64 bits of nanoseconds"));
    }
    if let Some(rel) = t.strip_prefix('-') {
        let d = parse_duration(rel)?;
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        return now_ns
            .checked_sub(ns)
            .ok_or_else(|| format!("{s:?} is before 1970"));
    }
    let cannot =
        |why: &dyn std::fmt::Display| format!("cannot read time {s:?}: {why} (use {TIME_HELP})");
    if let Some(why) = impossible_date(t) {
        return Err(cannot(&why));
    }
    let ts = if t.len() == 10 {
        let d: Date = t.parse().map_err(|e: jiff::Error| cannot(&e))?;
        d.in_tz("UTC").map_err(|e| cannot(&e))?.timestamp()
    } else {
        t.parse::<Timestamp>().map_err(|e| cannot(&e))?
    };
    u64::try_from(ts.as_nanosecond()).map_err(|_| format!("{s:?} is before 1970"))
}

/// `no such day 2026-02-30` when `s` starts with a well-formed date that no calendar
/// has (jiff's own message for it is about a parameter's range).
fn impossible_date(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i16>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let m = i8::try_from(m).ok()?;
    let d = i8::try_from(d).ok()?;
    Date::new(y, m, d)
        .is_err()
        .then(|| format!("no such day {}", &s[..10]))
}

/// A short human duration: `850ms`, `12s`, `5m 7s`, `3h 12m` (jiff's friendly form,
/// rounded to what a person reads).
pub fn format_age(ns: u64) -> String {
    let d = SignedDuration::from_nanos(i64::try_from(ns).unwrap_or(i64::MAX));
    let unit = if ns < 1_000_000_000 {
        jiff::Unit::Millisecond
    } else if ns < 3_600_000_000_000 {
        jiff::Unit::Second
    } else {
        jiff::Unit::Minute
    };
    let d = d.round(unit).unwrap_or(d);
    if d.is_zero() {
        "0ms".into()
    } else {
        format!("{d:#}")
    }
}

/// A clap value parser for durations.
pub fn duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_813_200_000_000_000; // 2026-11-27T21:00:00Z

    #[test]
    fn rfc3339_dates_and_round_trips() {
        assert_eq!(parse_time("2026-11-27T21:00:00Z", 0), Ok(NOW));
        assert_eq!(parse_time("2026-11-27 22:00:00+01:00", 0), Ok(NOW));
        assert_eq!(
            parse_time("2026-11-27T21:00:00.5Z", 0),
            Ok(NOW + 500_000_000)
        );
        assert_eq!(parse_time("1970-01-01", 0), Ok(0));
        for ns in [0, 1, 951_782_400_000_000_000, NOW + 123_456_789] {
            assert_eq!(parse_time(&format_time(ns), 0), Ok(ns));
        }
    }

    #[test]
    fn unix_and_relative() {
        assert_eq!(parse_time("12345", NOW), Ok(12345));
        assert_eq!(parse_time("-5m", NOW), Ok(NOW - 300_000_000_000));
        assert_eq!(parse_time("-1h30m", NOW), Ok(NOW - 5_400_000_000_000));
        assert_eq!(parse_time("-500ms", NOW), Ok(NOW - 500_000_000));
        assert_eq!(parse_time("-5", NOW), Ok(NOW - 5_000_000_000));
        assert_eq!(parse_time("now", NOW), Ok(NOW));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "yesterday",
            "-5x",
            "2026-13-01",
            "2026-02-30",
            "2026-11-27T25:00:00Z",
            "2026-11-27T21:00:00",
            "99999999999999999999999",
            "-",
        ] {
            assert!(parse_time(bad, NOW).is_err(), "{bad:?} accepted");
        }
        let e = parse_time("2026-02-30T00:00:00Z", NOW).unwrap_err();
        assert!(e.contains("no such day 2026-02-30"), "{e}");
        let e = parse_time("yesterday", NOW).unwrap_err();
        assert!(e.contains("cannot read time \"yesterday\""), "{e}");
    }

    #[test]
    fn durations_agree_everywhere() {
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["fast", "-1s", "-1", "", "5 parsecs"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.starts_with("bad duration"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn ages() {
        assert_eq!(format_age(850_000_000), "850ms");
        assert_eq!(format_age(10_000_000_000), "10s");
        assert_eq!(format_age(307_000_000_000), "5m 7s");
    }
}
