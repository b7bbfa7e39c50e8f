//! Times and durations for queries, without a date library: RFC 3339 timestamps in
//! UTC (or with a numeric offset), Unix nanoseconds, and times relative to now
//! (`-5m`), all as nanoseconds since the Unix epoch.

/// Nanoseconds per unit suffix accepted by [`parse_duration`].
const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// Parses a duration: one or more `<number><unit>` parts (`1s`, `500ms`, `1h30m`,
/// `1.5s`), units `ns`, `us`, `ms`, `s`, `m`, `h`, `d`.
///
/// # Errors
///
/// A message saying what is wrong (empty, missing unit, unknown unit, overflow).
///
/// # Examples
///
/// ```
/// use shmbus::query::parse_duration;
/// assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
/// assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
/// assert!(parse_duration("5").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut rest = s;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("expected a number in duration {s:?}"));
        }
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!(
                "duration {s:?} needs a unit (ns, us, ms, s, m, h, d)"
            ));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(format!(
                "unknown unit {unit:?} in duration {s:?} (ns, us, ms, s, m, h, d)"
            ));
        };
        let ns = scaled(num, scale).ok_or_else(|| format!("bad number {num:?} in {s:?}"))?;
        total = total
            .checked_add(ns)
            .ok_or_else(|| format!("duration {s:?} is too long"))?;
        rest = after;
    }
    Ok(total)
}

/// `num` (digits with at most one '.') times `scale`, exactly for up to 9 decimals.
fn scaled(num: &str, scale: u64) -> Option<u64> {
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() && frac.is_empty() || frac.contains('.') || frac.len() > 9 {
        return None;
    }
    let i: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut f: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..9 {
        f *= 10;
    }
    let whole = i.checked_mul(scale)?;
    // f / 1e9 of `scale`, rounded down.
    let part = u64::try_from(u128::from(f) * u128::from(scale) / 1_000_000_000).ok()?;
    whole.checked_add(part)
}

/// Parses a point in time to nanoseconds since the Unix epoch: RFC 3339
/// (`2026-11-27T21:00:00Z`, `2026-11-27T21:00:00.5+01:00`, a space for the `T`), a
/// bare date (`2026-11-27`, midnight UTC), a plain number of Unix nanoseconds, `now`,
/// or `-<duration>` before `now_ns` (`-5m`, `-1h30m`).
///
/// # Errors
///
/// A message saying what is wrong.
///
/// # Examples
///
/// ```
/// use shmbus::query::parse_time;
/// assert_eq!(parse_time("1970-01-01T00:00:01Z", 0), Ok(1_000_000_000));
/// assert_eq!(parse_time("2026-11-27T21:00:00Z", 0), Ok(1_795_813_200_000_000_000));
/// assert_eq!(parse_time("42", 0), Ok(42));
/// assert_eq!(parse_time("-5s", 10_000_000_000), Ok(5_000_000_000));
/// assert_eq!(parse_time("1970-01-02", 0), Ok(86_400_000_000_000));
/// assert_eq!(parse_time("now", 7), Ok(7));
/// ```
pub fn parse_time(s: &str, now_ns: u64) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty time".into());
    }
    if s == "now" {
        return Ok(now_ns);
    }
    if s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-' {
        // A bare date: midnight UTC.
        return parse_rfc3339(&format!("{s}T00:00:00Z"))
            .map_err(|why| format!("cannot read time {s:?}: {why}"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| format!("time {s:?} does not fit in 64 bits of nanoseconds"));
    }
    if let Some(rel) = s.strip_prefix('-') {
        let d = parse_duration(rel)?;
        return now_ns
            .checked_sub(d)
            .ok_or_else(|| format!("{s:?} is before 1970"));
    }
    parse_rfc3339(s).map_err(|why| {
        format!(
            "cannot read time {s:?}: {why} (use RFC 3339 such as 2026-11-27T21:00:00Z, Unix \
             nanoseconds, now, or a relative time such as -5m)"
        )
    })
}

fn digits(s: &str, range: std::ops::Range<usize>) -> Option<i64> {
    let part = s.get(range)?;
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

/// Why a text is not an RFC 3339 time, if it is not.
fn parse_rfc3339(s: &str) -> Result<u64, &'static str> {
    let b = s.as_bytes();
    const SHAPE: &str = "not in the form 2026-11-27T21:00:00Z";
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return Err(SHAPE);
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(SHAPE);
    }
    let num = |r: std::ops::Range<usize>| digits(s, r).ok_or(SHAPE);
    let year = num(0..4)?;
    let month = num(5..7)?;
    let day = num(8..10)?;
    let hour = num(11..13)?;
    let min = num(14..16)?;
    let sec = num(17..19)?;
    if !(1..=12).contains(&month) {
        return Err("no such month");
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("no such day");
    }
    if hour > 23 || min > 59 || sec > 60 {
        return Err("no such time of day");
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let n = end - start;
        if n == 0 || n > 9 {
            return Err("the fraction of a second needs 1 to 9 digits");
        }
        nanos = num(start..end)? * 10i64.pow(9 - n as u32);
        i = end;
    }
    let offset_s: i64 = match s.get(i..).ok_or(SHAPE)? {
        "Z" | "z" => 0,
        tz => {
            let tb = tz.as_bytes();
            const ZONE: &str = "needs a zone: Z or an offset such as +01:00";
            if tb.len() != 6 || tb[3] != b':' || !matches!(tb[0], b'+' | b'-') {
                return Err(ZONE);
            }
            let h = digits(tz, 1..3).ok_or(ZONE)?;
            let m = digits(tz, 4..6).ok_or(ZONE)?;
            if h > 23 || m > 59 {
                return Err(ZONE);
            }
            let o = h * 3600 + m * 60;
            if tb[0] == b'-' {
                -o
            } else {
                o
            }
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_s;
    let ns = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    u64::try_from(ns).map_err(|_| "before 1970 or after 2554")
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Formats nanoseconds since the Unix epoch as RFC 3339 UTC, with nine fractional
/// digits unless the time is a whole second.
///
/// # Examples
///
/// ```
/// use shmbus::query::format_time;
/// assert_eq!(format_time(1_795_813_200_000_000_000), "2026-11-27T21:00:00Z");
/// assert_eq!(format_time(1_500_000_000), "1970-01-01T00:00:01.500000000Z");
/// ```
pub fn format_time(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let frac = ns % 1_000_000_000;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, sod % 3600 / 60, sod % 60);
    if frac == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:09}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_dates() {
        for ns in [
            0u64,
            1,
            951_782_400_000_000_000,
            1_795_813_200_123_456_789,
            4_102_444_800_000_000_000,
        ] {
            assert_eq!(
                parse_time(&format_time(ns), 0),
                Ok(ns),
                "{}",
                format_time(ns)
            );
        }
        assert_eq!(
            parse_time("2000-02-29T00:00:00Z", 0),
            Ok(951_782_400_000_000_000)
        );
        assert!(parse_time("2001-02-29T00:00:00Z", 0).is_err());
        assert_eq!(
            parse_time("2026-11-27T22:00:00+01:00", 0),
            parse_time("2026-11-27T21:00:00Z", 0)
        );
        assert!(parse_time("1969-12-31T23:59:59Z", 0).is_err());
        assert!(parse_time("yesterday", 0).is_err());
        assert!(parse_time("-5x", 0).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Ok(1_000_000_000));
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("2m"), Ok(120_000_000_000));
        assert_eq!(parse_duration("0.001s"), Ok(1_000_000));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
