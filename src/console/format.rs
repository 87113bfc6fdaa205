//! Owns how values read on the console: HTML escaping, digit grouping, byte sizes,
//! shares, durations and UTC times. `assets/console.js` has the same functions under the
//! same names, so a page rendered here and one refreshed in the browser read alike.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Text or attribute value, escaped: every name shown (streams, consumers, accounts,
/// servers, containers, Docker labels) may hold any character.
pub fn esc(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `1234567` as `1,234,567`.
pub fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One decimal, rounded half up as JavaScript's `Math.round` does.
fn one_decimal(x: f64) -> String {
    format!("{:.1}", (x * 10.0).round() / 10.0)
}

/// A byte size in binary units: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{} {}", one_decimal(v), UNITS[unit])
}

/// A ratio as a percentage with one decimal: `0.1234` is `12.3%`.
pub fn percent(ratio: f64) -> String {
    format!("{}%", one_decimal(ratio * 100.0))
}

/// A duration at the precision a person wants: `42s`, `5m 3s`, `2h 7m`, `3d 4h`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).floor() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// A configured interval exactly: whole seconds as `duration` does, else milliseconds
/// (`500 ms`, `1500 ms`).
pub fn span(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as u64;
    if ms.is_multiple_of(1000) {
        duration(secs)
    } else {
        format!("{ms} ms")
    }
}

/// A short duration in whole milliseconds: `12 ms`.
pub fn millis(secs: f64) -> String {
    format!("{} ms", (secs * 1000.0).round() as u64)
}

/// Unix seconds as an RFC 3339 UTC time to the second: `2024-05-01T12:00:00Z`.
pub fn time(unix: f64) -> String {
    let secs = unix.floor() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(20);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    out
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_markup_character() {
        assert_eq!(
            esc("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(esc(r#"a&b"c'd"#), "a&amp;b&quot;c&#39;d");
        assert!(matches!(esc("ORDERS"), Cow::Borrowed(_)));
    }

    #[test]
    fn numbers_sizes_and_shares() {
        assert_eq!(int(0), "0");
        assert_eq!(int(100), "100");
        assert_eq!(int(1000), "1,000");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(1 << 30), "1.0 GiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
        assert_eq!(percent(0.1234), "12.3%");
        assert_eq!(percent(0.0001), "0.0%");
        assert_eq!(percent(1.0), "100.0%");
    }

    #[test]
    fn durations_and_times() {
        assert_eq!(duration(0.4), "0s");
        assert_eq!(duration(42.9), "42s");
        assert_eq!(duration(303.0), "5m 3s");
        assert_eq!(duration(7620.0), "2h 7m");
        assert_eq!(duration(273_600.0), "3d 4h");
        assert_eq!(millis(0.0125), "13 ms");
        assert_eq!(span(0.5), "500 ms");
        assert_eq!(span(1.5), "1500 ms");
        assert_eq!(span(5.0), "5s");
        assert_eq!(span(60.0), "1m 0s");
        assert_eq!(time(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(time(1_714_564_800.9), "2024-05-01T12:00:00Z");
        assert_eq!(time(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(
            crate::time::rfc3339_to_unix(&time(1_764_625_503.0)),
            Some(1_764_625_503.0)
        );
    }
}
