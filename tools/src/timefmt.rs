//! Times and durations on the command line, without a date crate.
//!
//! Accepted times (all UTC, as ns since the Unix epoch afterwards):
//!
//! - RFC 3339-ish: `2026-11-27T21:00:00Z`, `2026-11-27 21:00:00.250Z`,
//!   `2026-11-27T22:00:00+01:00`, or a bare date `2026-11-27` (midnight UTC);
//! - unix nanoseconds: `1795899600000000000`;
//! - relative to now: `-5m`, `-30s`, `-1h30m`, `-2d`, `-500ms`, and `now`.
//!
//! Durations (`--interval`): `1s`, `250ms`, `2m`, `1h`, `1.5s`, or a bare number of
//! seconds.

use std::time::Duration;

const NS_PER_SEC: u64 = 1_000_000_000;

/// Parses a time as described in the module docs, relative ones against `now_ns`.
pub fn parse_time(s: &str, now_ns: u64) -> Result<u64, String> {
    let t = s.trim();
    let bad = |why: &str| {
        format!("bad time {s:?}: {why} (expected e.g. 2026-11-27T21:00:00Z, unix ns, or -5m)")
    };
    if t.is_empty() {
        return Err(bad("empty"));
    }
    if t == "now" {
        return Ok(now_ns);
    }
    if let Some(rel) = t.strip_prefix('-') {
        let d = parse_units(rel).map_err(|w| bad(&w))?;
        let ns = u64::try_from(d.as_nanos()).map_err(|_| bad("too far back"))?;
        return now_ns.checked_sub(ns).ok_or_else(|| bad("before 1970"));
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<u64>().map_err(|_| bad("number out of range"));
    }
    parse_rfc3339(t).map_err(|w| bad(&w))
}

/// Parses a duration as described in the module docs.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return secs_to_duration(secs).ok_or_else(|| format!("bad duration {s:?}"));
    }
    parse_units(t).map_err(|w| format!("bad duration {s:?}: {w} (expected e.g. 1s, 250ms, 2m)"))
}

fn secs_to_duration(secs: f64) -> Option<Duration> {
    (0.0..1e12)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

/// `1h30m`, `5m`, `250ms`, `1.5s`, `2d`: one or more number+unit pairs.
fn parse_units(s: &str) -> Result<Duration, String> {
    if s.is_empty() {
        return Err("no amount".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{rest:?} has no unit (ns, us, ms, s, m, h, d)"))?;
        if n == 0 {
            return Err(format!("expected a number at {rest:?}"));
        }
        let value: f64 = rest[..n]
            .parse()
            .map_err(|_| format!("bad number {:?}", &rest[..n]))?;
        let after = &rest[n..];
        let u = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let scale = match &after[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            other => return Err(format!("unknown unit {other:?}")),
        };
        total += secs_to_duration(value * scale).ok_or("amount out of range")?;
        rest = &after[u..];
    }
    Ok(total)
}

fn parse_rfc3339(t: &str) -> Result<u64, String> {
    let b = t.as_bytes();
    let num = |from: usize, len: usize| -> Result<u64, String> {
        let part = t
            .get(from..from + len)
            .filter(|p| p.bytes().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| "not a date".to_string())?;
        part.parse::<u64>().map_err(|e| e.to_string())
    };
    let sep = |at: usize, c: u8| b.get(at) == Some(&c);
    if t.len() < 10 || !sep(4, b'-') || !sep(7, b'-') {
        return Err("not a date".into());
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) {
        return Err("date out of range".into());
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err("no such day".into());
    }
    let days = days_from_civil(year as i64, month, day) as u64;
    let mut secs = days * 86400;
    let mut frac_ns = 0u64;
    let mut i = 10;
    if i < b.len() {
        if !(sep(i, b'T') || sep(i, b't') || sep(i, b' ')) {
            return Err("expected 'T' after the date".into());
        }
        if !sep(i + 3, b':') || !sep(i + 6, b':') {
            return Err("expected HH:MM:SS".into());
        }
        let (h, m, s) = (num(i + 1, 2)?, num(i + 4, 2)?, num(i + 7, 2)?);
        if h > 23 || m > 59 || s > 60 {
            return Err("time of day out of range".into());
        }
        secs += h * 3600 + m * 60 + s;
        i += 9;
        if sep(i, b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = &t[start..i];
            if digits.is_empty() || digits.len() > 9 {
                return Err("fraction of a second needs 1 to 9 digits".into());
            }
            frac_ns = digits.parse::<u64>().map_err(|e| e.to_string())?
                * 10u64.pow(9 - digits.len() as u32);
        }
        match &t[i..] {
            "Z" | "z" => {}
            "" => return Err("missing time zone (add Z for UTC)".into()),
            off if (off.starts_with('+') || off.starts_with('-')) && off.len() == 6 => {
                if off.as_bytes()[3] != b':' {
                    return Err("bad UTC offset".into());
                }
                let oh = num(i + 1, 2)?;
                let om = num(i + 4, 2)?;
                let o = oh * 3600 + om * 60;
                if off.starts_with('+') {
                    secs = secs.checked_sub(o).ok_or("before 1970")?;
                } else {
                    secs += o;
                }
            }
            other => return Err(format!("unexpected {other:?} after the time")),
        }
    }
    secs.checked_mul(NS_PER_SEC)
        .and_then(|n| n.checked_add(frac_ns))
        .ok_or_else(|| "out of range".into())
}

fn is_leap(y: u64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u64, d: u64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The date of a day count since 1970-01-01 (inverse of `days_from_civil`).
fn civil_from_days(z: i64) -> (i64, u64, u64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `2026-11-27T21:00:00.123456789Z` for ns since the Unix epoch.
pub fn format_time(ns: u64) -> String {
    let secs = ns / NS_PER_SEC;
    let frac = ns % NS_PER_SEC;
    let (y, mo, d) = civil_from_days((secs / 86400) as i64);
    let sod = secs % 86400;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
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
        assert_eq!(format_time(NOW), "2026-11-27T21:00:00.000000000Z");
        assert_eq!(parse_time("2026-11-27 22:00:00+01:00", 0), Ok(NOW));
        assert_eq!(
            parse_time("2026-11-27T21:00:00.5Z", 0),
            Ok(NOW + 500_000_000)
        );
        assert_eq!(parse_time("1970-01-01", 0), Ok(0));
        assert_eq!(
            parse_time("2024-02-29T00:00:00Z", 0).map(format_time),
            Ok("2024-02-29T00:00:00.000000000Z".to_string())
        );
        for ns in [0, 1, 951_782_400_000_000_000, NOW + 123_456_789] {
            assert_eq!(parse_time(&format_time(ns), 0), Ok(ns));
        }
    }

    #[test]
    fn unix_and_relative() {
        assert_eq!(parse_time("12345", NOW), Ok(12345));
        assert_eq!(parse_time("-5m", NOW), Ok(NOW - 300 * NS_PER_SEC));
        assert_eq!(parse_time("-1h30m", NOW), Ok(NOW - 5400 * NS_PER_SEC));
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
