//! Grafana's template-variable interpolation for Prometheus targets, emulated so that the
//! dashboards' queries can run against a real Prometheus without a Grafana: `$var`,
//! `${var}`, `${var:format}`, `[[var]]`, the built-in interval variables, multi-value
//! regex escaping, and `label_values(...)` variable queries.

use std::collections::BTreeMap;

/// Grafana's built-in interval variables for one panel.
#[derive(Debug, Clone)]
pub struct Intervals {
    /// `$__interval`, seconds.
    pub interval: u64,
    /// `$__rate_interval`, seconds.
    pub rate_interval: u64,
    /// `$__range`, seconds.
    pub range: u64,
}

impl Intervals {
    /// As Grafana computes them for a panel with `min_interval` (seconds) over a
    /// Prometheus scraping every `scrape` seconds and a time range of `range` seconds:
    /// `$__interval` = max(panel min interval, scrape interval) (the dashboards' time
    /// ranges are long enough that the step is `max_data_points`-bound only for minutes,
    /// so the min interval wins at 1 s resolution); `$__rate_interval` =
    /// max(`$__interval` + scrape interval, 4 * scrape interval).
    pub fn new(scrape: u64, range: u64, min_interval: Option<u64>) -> Intervals {
        let interval = min_interval.unwrap_or(scrape).max(scrape);
        Intervals {
            interval,
            rate_interval: (interval + scrape).max(4 * scrape),
            range,
        }
    }
}

fn builtin(name: &str, iv: &Intervals) -> Option<String> {
    Some(match name {
        "__rate_interval" => format!("{}s", iv.rate_interval),
        "__rate_interval_ms" => format!("{}", iv.rate_interval * 1000),
        "__interval" => format!("{}s", iv.interval),
        "__interval_ms" => format!("{}", iv.interval * 1000),
        "__range" => format!("{}s", iv.range),
        "__range_s" => format!("{}", iv.range),
        "__range_ms" => format!("{}", iv.range * 1000),
        _ => return None,
    })
}

/// Substitute `$var`, `${var}`, `${var:format}` and `[[var]]` the way Grafana does
/// for a Prometheus target. Unknown variables are an error.
pub fn interpolate(
    expr: &str,
    vars: &BTreeMap<String, String>,
    iv: &Intervals,
) -> Result<String, String> {
    let lookup = |name: &str| -> Result<String, String> {
        if let Some(v) = builtin(name, iv) {
            return Ok(v);
        }
        vars.get(name)
            .cloned()
            .ok_or_else(|| format!("unknown variable ${name} in {expr:?}"))
    };
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let chars: Vec<char> = expr.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '$' && chars.get(i + 1) == Some(&'{') {
            let close = chars[i + 2..]
                .iter()
                .position(|&c| c == '}')
                .ok_or_else(|| format!("unterminated ${{ in {expr:?}"))?;
            let inner: String = chars[i + 2..i + 2 + close].iter().collect();
            // `${var:format}` / `${var.field}`: the formats that matter for an "All"
            // selection with a custom all value all produce that value.
            let name = inner.split([':', '.']).next().unwrap_or("");
            out.push_str(&lookup(name)?);
            i += 3 + close;
        } else if c == '$' && chars.get(i + 1).is_some_and(|&c| is_ident(c)) {
            let mut j = i + 1;
            while j < chars.len() && is_ident(chars[j]) {
                j += 1;
            }
            let name: String = chars[i + 1..j].iter().collect();
            out.push_str(&lookup(&name)?);
            i = j;
        } else if c == '[' && chars.get(i + 1) == Some(&'[') {
            let rest: String = chars[i + 2..].iter().collect();
            match rest.find("]]") {
                Some(end)
                    if rest[..end]
                        .split(':')
                        .next()
                        .is_some_and(|n| !n.is_empty() && n.chars().all(is_ident)) =>
                {
                    let name = rest[..end].split(':').next().unwrap();
                    out.push_str(&lookup(name)?);
                    i += 2 + rest[..end].chars().count() + 2;
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

/// Escape a value for a PromQL regex (Grafana's `prometheusRegularEscape` plus
/// regex metacharacters, as done for multi-value selections).
pub fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
            out.push('\\');
        } else if c == '\'' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Split `label_values(<selector>, <label>)` / `label_values(<label>)`.
pub fn parse_label_values(q: &str) -> Result<(Option<String>, String), String> {
    let inner = q
        .trim()
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("unsupported variable query {q:?} (only label_values)"))?;
    // Split at the last comma outside braces/parentheses/quotes.
    let (mut depth, mut in_q, mut split) = (0i32, false, None);
    for (i, c) in inner.char_indices() {
        match c {
            '"' => in_q = !in_q,
            '{' | '(' if !in_q => depth += 1,
            '}' | ')' if !in_q => depth -= 1,
            ',' if !in_q && depth == 0 => split = Some(i),
            _ => {}
        }
    }
    match split {
        Some(i) => Ok((
            Some(inner[..i].trim().to_string()),
            inner[i + 1..].trim().to_string(),
        )),
        None => Ok((None, inner.trim().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_and_label_values() {
        let mut vars = BTreeMap::new();
        vars.insert("node".to_string(), ".+".to_string());
        vars.insert("cluster".to_string(), ".*".to_string());
        let iv = Intervals::new(1, 60, None);
        assert_eq!(iv.rate_interval, 4);
        let s = interpolate(
            r#"rate(x{node=~"$node",cluster=~"${cluster}",c=~"${cluster:regex}",d=~"[[node]]"}[$__rate_interval]) + y[$__interval] + z[$__range] + $__range_s + w{a=~"b$"}"#,
            &vars,
            &iv,
        )
        .unwrap();
        assert_eq!(
            s,
            r#"rate(x{node=~".+",cluster=~".*",c=~".*",d=~".+"}[4s]) + y[1s] + z[60s] + 60 + w{a=~"b$"}"#
        );
        assert!(interpolate("x{a=~\"$nope\"}", &vars, &iv).is_err());
        assert_eq!(Intervals::new(1, 60, Some(10)).rate_interval, 11);
        assert_eq!(
            parse_label_values(
                r#"label_values(nats_stream_info{cluster=~".*", a="x,y"}, account)"#
            )
            .unwrap(),
            (
                Some(r#"nats_stream_info{cluster=~".*", a="x,y"}"#.to_string()),
                "account".to_string()
            )
        );
        assert_eq!(
            parse_label_values("label_values(node)").unwrap(),
            (None, "node".to_string())
        );
        assert_eq!(regex_escape("a.b"), "a\\\\.b");
    }
}
