//! Prometheus text format 0.0.4 / OpenMetrics parsing, scraping natsmon's `/metrics`,
//! and `promtool check metrics`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::http::raw_get;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels.get(k).map(|s| s.as_str())
    }

    fn matches(&self, labels: &[(&str, &str)]) -> bool {
        labels
            .iter()
            .all(|(k, v)| self.labels.get(*k).map(|x| x.as_str()) == Some(*v))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// metric family name -> type (from `# TYPE`)
    pub types: BTreeMap<String, String>,
    /// metric family name -> help text (from `# HELP`, unescaped)
    pub help: BTreeMap<String, String>,
    /// The raw exposition text.
    pub text: String,
    /// Response Content-Type header (empty if parsed from a string).
    pub content_type: String,
}

impl Exposition {
    /// Parse Prometheus text format 0.0.4 (also accepts OpenMetrics text:
    /// `# EOF`, `# UNIT`, exemplars are ignored). Panics on malformed lines.
    pub fn parse(text: &str) -> Exposition {
        match parse_exposition(text) {
            Ok(e) => e,
            Err(e) => panic!("invalid exposition: {e}\n----- text -----\n{text}"),
        }
    }

    /// Value of the first sample named `name` whose labels include all `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.find(name, labels).map(|s| s.value)
    }

    /// First sample named `name` whose labels include all `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&Sample> {
        self.samples
            .iter()
            .find(|s| s.name == name && s.matches(labels))
    }

    /// All samples named `name`.
    pub fn all(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    /// All samples named `name` whose labels include all `labels`.
    pub fn filter(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name && s.matches(labels))
            .collect()
    }

    /// Sum of samples named `name` whose labels include all `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.filter(name, labels).iter().map(|s| s.value).sum()
    }

    /// Count of samples named `name` whose labels include all `labels`.
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        self.filter(name, labels).len()
    }

    /// Does any sample named `name` exist?
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    /// Distinct values of label `label` among samples named `name`.
    pub fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let set: std::collections::BTreeSet<&str> = self
            .all(name)
            .into_iter()
            .filter_map(|s| s.label(label))
            .collect();
        set.into_iter().map(|s| s.to_string()).collect()
    }

    /// `# TYPE` of a family.
    pub fn type_of(&self, family: &str) -> Option<&str> {
        self.types.get(family).map(|s| s.as_str())
    }
}

fn parse_exposition(text: &str) -> Result<Exposition, String> {
    let mut exp = Exposition {
        text: text.to_string(),
        ..Default::default()
    };
    for (lineno, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let ctx = |e: String| format!("line {}: {e}: {line:?}", lineno + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix("TYPE ") {
                let mut it = r.trim().splitn(2, ' ');
                let fam = it.next().unwrap_or("").to_string();
                let ty = it.next().unwrap_or("").trim().to_string();
                exp.types.insert(fam, ty);
            } else if let Some(r) = rest.strip_prefix("HELP ") {
                let mut it = r.splitn(2, ' ');
                let fam = it.next().unwrap_or("").to_string();
                let help = unescape(it.next().unwrap_or(""), false).map_err(ctx)?;
                exp.help.insert(fam, help);
            }
            continue;
        }
        exp.samples.push(parse_sample_line(line).map_err(ctx)?);
    }
    Ok(exp)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn parse_sample_line(line: &str) -> Result<Sample, String> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    if i >= chars.len() || !is_name_start(chars[i]) {
        return Err("expected metric name".into());
    }
    while i < chars.len() && is_name_char(chars[i]) {
        i += 1;
    }
    let name: String = chars[..i].iter().collect();
    let mut labels = BTreeMap::new();
    if i < chars.len() && chars[i] == '{' {
        i += 1;
        loop {
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            if i >= chars.len() {
                return Err("unterminated label set".into());
            }
            if chars[i] == '}' {
                i += 1;
                break;
            }
            let start = i;
            if !is_name_start(chars[i]) || chars[i] == ':' {
                return Err(format!("bad label name at column {}", i + 1));
            }
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let lname: String = chars[start..i].iter().collect();
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            if i >= chars.len() || chars[i] != '=' {
                return Err(format!("expected '=' after label {lname}"));
            }
            i += 1;
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            if i >= chars.len() || chars[i] != '"' {
                return Err(format!("expected '\"' for label {lname}"));
            }
            i += 1;
            let mut val = String::new();
            loop {
                if i >= chars.len() {
                    return Err(format!("unterminated value for label {lname}"));
                }
                match chars[i] {
                    '"' => {
                        i += 1;
                        break;
                    }
                    '\\' => {
                        i += 1;
                        match chars.get(i) {
                            Some('\\') => val.push('\\'),
                            Some('"') => val.push('"'),
                            Some('n') => val.push('\n'),
                            other => {
                                return Err(format!("bad escape \\{other:?} in label {lname}"));
                            }
                        }
                        i += 1;
                    }
                    c => {
                        val.push(c);
                        i += 1;
                    }
                }
            }
            if labels.insert(lname.clone(), val).is_some() {
                return Err(format!("duplicate label {lname}"));
            }
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            match chars.get(i) {
                Some(',') => i += 1,
                Some('}') => {}
                _ => return Err("expected ',' or '}' in label set".into()),
            }
        }
    }
    let rest: String = chars[i..].iter().collect();
    // Drop an OpenMetrics exemplar (" # {...} v [ts]").
    let rest = match rest.find(" # ") {
        Some(p) => rest[..p].to_string(),
        None => rest,
    };
    let mut parts = rest.split_whitespace();
    let vstr = parts.next().ok_or("missing value")?;
    let value = parse_value(vstr)?;
    if let Some(ts) = parts.next() {
        ts.parse::<f64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if parts.next().is_some() {
        return Err("trailing garbage after value/timestamp".into());
    }
    Ok(Sample {
        name,
        labels,
        value,
    })
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Ok(f64::INFINITY),
        "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
        "NaN" | "nan" => Ok(f64::NAN),
        _ => s.parse::<f64>().map_err(|_| format!("bad value {s:?}")),
    }
}

fn unescape(s: &str, quotes: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => return Err("dangling backslash".into()),
        }
    }
    Ok(out)
}

/// GET `<base_url>/metrics` (plain request, no Accept header) and parse it.
/// Returns Err on connection errors, non-200 status or malformed text.
pub async fn try_scrape(base_url: &str) -> Result<Exposition, String> {
    let url = format!("{}/metrics", base_url.trim_end_matches('/'));
    let resp = raw_get(&url, &[]).await?;
    if resp.status != 200 {
        return Err(format!("GET {url} -> {}: {}", resp.status, resp.body));
    }
    let mut exp = parse_exposition(&resp.body).map_err(|e| {
        format!(
            "invalid exposition from {url}: {e}\n----- text -----\n{}",
            resp.body
        )
    })?;
    exp.content_type = resp.header("content-type").unwrap_or("").to_string();
    Ok(exp)
}

/// GET `<base_url>/metrics` and parse it; panics on error.
pub async fn scrape(base_url: &str) -> Exposition {
    try_scrape(base_url).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Scrape `base_url` repeatedly until `pred` holds; returns that exposition.
/// Panics on timeout with the last exposition text (or last error).
pub async fn wait_for<F>(base_url: &str, timeout: Duration, mut pred: F) -> Exposition
where
    F: FnMut(&Exposition) -> bool,
{
    let deadline = Instant::now() + timeout;
    let mut last: Result<Exposition, String>;
    loop {
        last = try_scrape(base_url).await;
        if let Ok(exp) = &last
            && pred(exp)
        {
            return last.unwrap();
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    match last {
        Ok(exp) => panic!(
            "wait_for: condition not met within {timeout:?}; last exposition:\n{}",
            exp.text
        ),
        Err(e) => panic!("wait_for: condition not met within {timeout:?}; last scrape error: {e}"),
    }
}

/// Run `promtool check metrics` on `text`. Returns (passed, combined output).
/// Panics if promtool is not installed (install `prometheus` via apt).
pub fn promtool_check_metrics(text: &str) -> (bool, String) {
    let bin = std::env::var("PROMTOOL_BIN").unwrap_or_else(|_| "promtool".to_string());
    let mut child = Command::new(&bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "\n\n*** promtool NOT FOUND ({bin}: {e}). Install it with \
                 `sudo apt-get install -y prometheus` or run scripts/test.sh.\n\n"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("wait promtool");
    let combined = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), combined)
}

/// Family names declared by `# TYPE` lines of an exposition.
pub fn families(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod parser_tests {
    use super::*;

    #[test]
    fn parses_labels_and_escapes() {
        let t = "# HELP x_total Some \\\\ help\n# TYPE x_total counter\n\
                 x_total{a=\"b\\\"c\",d=\"e\\\\f\",g=\"h\\ni\",} 3 1700000000\n\
                 y 4.5e1\nz{a=\"1\"} +Inf\nw NaN\n# EOF\n";
        let e = Exposition::parse(t);
        assert_eq!(e.samples.len(), 4);
        let s = e.find("x_total", &[("a", "b\"c")]).unwrap();
        assert_eq!(s.label("d"), Some("e\\f"));
        assert_eq!(s.label("g"), Some("h\ni"));
        assert_eq!(s.value, 3.0);
        assert_eq!(e.get("y", &[]), Some(45.0));
        assert_eq!(e.get("z", &[("a", "1")]), Some(f64::INFINITY));
        assert!(e.get("w", &[]).unwrap().is_nan());
        assert_eq!(e.type_of("x_total"), Some("counter"));
        assert_eq!(
            e.help.get("x_total").map(|s| s.as_str()),
            Some("Some \\ help")
        );
        assert_eq!(e.sum("x_total", &[]), 3.0);
    }
}
