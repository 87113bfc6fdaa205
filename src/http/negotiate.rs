//! Owns content negotiation for `/metrics`: which exposition format and whether gzip,
//! from `Accept` and `Accept-Encoding` with their quality values (`q=0` means "not this").

use axum::http::{HeaderMap, HeaderName, header};

/// Every `(value, q)` of a comma-separated header, parameters other than `q` kept with
/// the value (`application/openmetrics-text;version=1.0.0`).
fn ranges(headers: &HeaderMap, name: HeaderName) -> Vec<(String, f32)> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let value = parts.next().filter(|v| !v.is_empty())?.to_ascii_lowercase();
            let mut q = 1.0;
            for p in parts {
                if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                    q = v.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0);
                }
            }
            Some((value, q))
        })
        .collect()
}

/// The best quality the client gives `value`, through an exact match or a wildcard.
fn quality(ranges: &[(String, f32)], matches: impl Fn(&str) -> Option<u8>) -> f32 {
    // The most specific match decides (RFC 9110 12.5.1), then the highest q among those.
    let mut best: Option<(u8, f32)> = None;
    for (v, q) in ranges {
        if let Some(spec) = matches(v) {
            best = match best {
                Some((s, bq)) if s > spec || (s == spec && bq >= *q) => Some((s, bq)),
                _ => Some((spec, *q)),
            };
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

/// OpenMetrics when the scraper asks for it at least as much as for the text format.
pub fn wants_openmetrics(headers: &HeaderMap) -> bool {
    let r = ranges(headers, header::ACCEPT);
    let om = quality(&r, |v| (v == "application/openmetrics-text").then_some(2));
    let text = quality(&r, |v| match v {
        "text/plain" => Some(2),
        "text/*" => Some(1),
        "*/*" => Some(0),
        _ => None,
    });
    om > 0.0 && om >= text
}

/// gzip when the client accepts it with a quality above zero, by name or by `*`.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let r = ranges(headers, header::ACCEPT_ENCODING);
    quality(&r, |v| match v {
        "gzip" | "x-gzip" => Some(1),
        "*" => Some(0),
        _ => None,
    }) > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(name: HeaderName, v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(name, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn openmetrics_by_quality() {
        let accept = |v| wants_openmetrics(&h(header::ACCEPT, v));
        // What Prometheus 2.x sends.
        assert!(accept(
            "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        ));
        assert!(accept("application/openmetrics-text"));
        assert!(!accept("application/openmetrics-text;q=0, text/plain"));
        assert!(!accept("application/openmetrics-text;q=0"));
        assert!(!accept(
            "text/plain;q=1, application/openmetrics-text;q=0.5"
        ));
        assert!(!accept("*/*"));
        assert!(!wants_openmetrics(&HeaderMap::new()));
    }

    #[test]
    fn gzip_by_quality() {
        let enc = |v| accepts_gzip(&h(header::ACCEPT_ENCODING, v));
        assert!(enc("gzip"));
        assert!(enc("deflate, gzip;q=0.5"));
        assert!(enc("*"));
        assert!(!enc("gzip;q=0"));
        assert!(!enc("gzip;q=0.0, identity"));
        assert!(!enc("*, gzip;q=0"));
        assert!(!enc("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
