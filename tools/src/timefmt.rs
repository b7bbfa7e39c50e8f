//! Times and durations on the command line: the query engine's parsers, so every
//! subcommand reads times the same way, plus bare seconds for durations and a short
//! age format.
//!
//! Accepted times (all UTC, as ns since the Unix epoch afterwards): RFC 3339
//! (`2026-11-27T21:00:00Z`, `2026-11-27 22:00:00+01:00`, fractions), a bare date
//! (`2026-11-27`, midnight UTC), unix nanoseconds, `now`, and times relative to now
//! (`-5m`, `-1h30m`, `-500ms`). See [`shmbus::query::parse_time`].
//!
//! Durations (`--interval`): `1s`, `250ms`, `2m`, `1h`, `1.5s`, or a bare number of
//! seconds.

use std::time::Duration;

pub use shmbus::query::{format_time, parse_time};

/// Parses a duration: a bare number of seconds, or [`shmbus::query::parse_duration`]'s
/// `<number><unit>` parts.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return (0.0..1e12)
            .contains(&secs)
            .then(|| Duration::from_secs_f64(secs))
            .ok_or_else(|| format!("bad duration {s:?}"));
    }
    shmbus::query::parse_duration(t)
        .map(Duration::from_nanos)
        .map_err(|why| format!("bad duration {s:?}: {why}"))
}

/// A short human duration: `850ms`, `12.3s`, `5m07s`, `3h12m`.
pub fn format_age(ns: u64) -> String {
    let ms = ns / 1_000_000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_813_200_000_000_000; // 2026-11-27T21:00:00Z

    #[test]
    fn rfc3339_round_trip() {
        assert_eq!(parse_time("2026-11-27T21:00:00Z", 0), Ok(NOW));
        assert_eq!(format_time(NOW), "2026-11-27T21:00:00Z");
        assert_eq!(parse_time("2026-11-27 22:00:00+01:00", 0), Ok(NOW));
        assert_eq!(
            parse_time("2026-11-27T21:00:00.5Z", 0),
            Ok(NOW + 500_000_000)
        );
        assert_eq!(parse_time("1970-01-01", 0), Ok(0));
        assert_eq!(
            parse_time("2024-02-29T00:00:00Z", 0).map(format_time),
            Ok("2024-02-29T00:00:00Z".to_string())
        );
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
        assert_eq!(parse_time("now", NOW), Ok(NOW));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "yesterday",
            "-5",
            "-5x",
            "2026-13-01",
            "2026-02-30",
            "2026-11-27T25:00:00Z",
            "2026-11-27T21:00:00",
            "2026-11-27T21:00Z",
            "99999999999999999999999",
            "-",
        ] {
            assert!(parse_time(bad, NOW).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
