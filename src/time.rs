//! Owns the clock and the time formats natsmon reads: RFC 3339 timestamps (NATS
//! monitoring and Docker's RFC3339Nano log timestamps) and Go duration strings (`1.2ms`,
//! `1h2m3s`, and the `1y2d3h4m5s` uptime form).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch; zero if the clock is set before it.
fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The current time in Unix nanoseconds, the unit of Docker's log timestamps.
pub fn unix_now_ns() -> i64 {
    since_epoch().as_nanos() as i64
}

/// The current time in whole Unix seconds, the unit of Docker's `since` parameters.
pub fn unix_now_secs() -> i64 {
    since_epoch().as_secs() as i64
}

/// The current time in fractional Unix seconds, the unit of Prometheus timestamps.
pub fn unix_now_f64() -> f64 {
    since_epoch().as_secs_f64()
}

/// Converts an RFC 3339 timestamp such as `2024-01-02T15:04:05.123456789Z` or
/// `...+01:00` to Unix seconds. Returns `None` for anything else, including Go's zero time.
pub fn rfc3339_to_unix(s: &str) -> Option<f64> {
    let (secs, nanos) = rfc3339_parts(s)?;
    Some(secs as f64 + f64::from(nanos) / 1e9)
}

/// Exact nanoseconds since the Unix epoch, for Docker's RFC3339Nano log timestamps.
pub fn rfc3339_to_unix_nanos(s: &str) -> Option<i64> {
    let (secs, nanos) = rfc3339_parts(s)?;
    secs.checked_mul(1_000_000_000)?
        .checked_add(i64::from(nanos))
}

fn rfc3339_parts(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if year <= 1 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // Right-pad to nine digits; anything finer than a nanosecond is cut.
        for (i, d) in r.bytes().take(9).take_while(u8::is_ascii_digit).enumerate() {
            nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &r[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + min * 60 + sec - offset, nanos))
}

// Howard Hinnant's days-from-civil algorithm, proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses a Go duration string into seconds. Accepts Go's `time.Duration.String()` units
/// (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`) and the `d`/`y` units NATS uses for uptime.
pub fn go_duration_seconds(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s == "0" || s == "0s" {
        return Some(0.0);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let mut total = 0.0;
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        if n == 0 {
            return None;
        }
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "y" => 365.0 * 86_400.0,
            _ => return None,
        };
        total += value * unit;
        rest = &rest[u..];
    }
    Some(if neg { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_to_unix("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            rfc3339_to_unix("2024-01-02T15:04:05Z"),
            Some(1_704_207_845.0)
        );
        assert_eq!(
            rfc3339_to_unix("2024-01-02T16:04:05+01:00"),
            Some(1_704_207_845.0)
        );
        let t = rfc3339_to_unix("2024-01-02T15:04:05.5Z").unwrap();
        assert!((t - 1_704_207_845.5).abs() < 1e-6);
        assert_eq!(rfc3339_to_unix("0001-01-01T00:00:00Z"), None);
        assert_eq!(rfc3339_to_unix("garbage"), None);
    }

    #[test]
    fn rfc3339_nanos_are_exact() {
        assert_eq!(
            rfc3339_to_unix_nanos("2024-01-02T15:04:05.123456789Z"),
            Some(1_704_207_845_123_456_789)
        );
        assert_eq!(
            rfc3339_to_unix_nanos("2024-01-02T15:04:05.1Z"),
            Some(1_704_207_845_100_000_000)
        );
        assert_eq!(
            rfc3339_to_unix_nanos("2024-01-02T15:04:05Z"),
            Some(1_704_207_845_000_000_000)
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_seconds("1.5ms"), Some(0.0015));
        assert_eq!(go_duration_seconds("1h2m3s"), Some(3723.0));
        assert_eq!(
            go_duration_seconds("1y2d3h4m5s"),
            Some(31_536_000.0 + 172_800.0 + 10_800.0 + 245.0)
        );
        assert_eq!(go_duration_seconds("250µs"), Some(0.00025));
        assert_eq!(go_duration_seconds("0s"), Some(0.0));
        assert_eq!(go_duration_seconds("abc"), None);
    }
}
