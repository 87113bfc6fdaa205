//! Checks of the alerting rules and their runbook:
//!
//! - `promtool check rules` passes on `alerting_rules/natsmon.rules.yml` with no lint finding;
//! - `promtool test rules` passes on every file in `alerting_rules/tests/`;
//! - every alert (Prometheus and Loki) has a severity, summary, description and a
//!   `runbook_url` whose anchor is a heading of `docs/runbook.md`;
//! - every Prometheus alert has a firing and a quiet unit test case;
//! - every metric the rules (and the runbook) name is in the README metric reference;
//! - the Loki rules only use the labels natsmon's log shipper sets.
//!
//! promtool (Debian package `prometheus`, or `PROMTOOL_BIN`) is required: these tests
//! panic when it is missing, they never skip. No YAML parser is available, so the rule
//! files are read with a small line-based reader that understands the subset they use
//! (block sequences and maps, plain/quoted scalars, `|`/`>` block scalars).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::readme::metric_reference;
use crate::harness::{read_repo, repo_root};

const RULES: &str = "alerting_rules/natsmon.rules.yml";
const TESTS_DIR: &str = "alerting_rules/tests";
const LOKI_RULES: &str = "alerting_rules/loki/natsmon-logs.yml";
const RUNBOOK: &str = "docs/runbook.md";
const RUNBOOK_URL: &str = "https://github.com/natsmon/natsmon/blob/main/docs/runbook.md#";
const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];
const LOKI_LABELS: [&str; 6] = [
    "job",
    "host",
    "container_name",
    "service",
    "stream",
    "log_level",
];

// ---------------------------------------------------------------------------------------
// promtool

fn promtool(args: &[&str]) -> (bool, String) {
    let bin = std::env::var("PROMTOOL_BIN").unwrap_or_else(|_| "promtool".to_string());
    let out = Command::new(&bin)
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "\n\n*** promtool NOT FOUND ({bin}: {e}). Install it with \
                 `apt-get install prometheus` (or set PROMTOOL_BIN). The alerting rule \
                 tests need it and are never skipped. ***\n\n"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn test_files() -> Vec<PathBuf> {
    let dir = repo_root().join(TESTS_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no rule unit tests in {TESTS_DIR}");
    files
}

fn rel(p: &Path) -> String {
    p.strip_prefix(repo_root())
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn promtool_check_rules_passes_without_warnings() {
    let (ok, out) = promtool(&["check", "rules", "--lint=all", "--lint-fatal", RULES]);
    assert!(ok, "promtool check rules failed:\n{out}");
    // Anything but the "Checking <file>" / "SUCCESS: N rules found" lines is a finding.
    let unexpected: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Checking ") && !l.starts_with("SUCCESS:"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "promtool check rules printed warnings:\n{out}"
    );
    let n = alerts(&read_repo(RULES)).len();
    assert!(
        out.contains(&format!("SUCCESS: {n} rules found")),
        "promtool should find {n} rules:\n{out}"
    );
}

#[test]
fn promtool_unit_tests_pass() {
    for f in test_files() {
        let name = rel(&f);
        let (ok, out) = promtool(&["test", "rules", &name]);
        assert!(
            ok && out.contains("SUCCESS"),
            "promtool test rules {name} failed:\n{out}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// A minimal reader for the rule files.

#[derive(Debug, Default)]
struct Rule {
    name: String,
    expr: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

fn unquote(raw: &str) -> String {
    let v = raw.trim();
    if let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(o) => out.push(o),
                    None => {}
                }
            } else {
                out.push(c);
            }
        }
        out
    } else if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        inner.replace("''", "'")
    } else {
        // Plain scalar: a " #" starts a comment.
        match v.find(" #") {
            Some(i) => v[..i].trim_end().to_string(),
            None => v.to_string(),
        }
    }
}

/// The value of `key: <rest>` at line `i` (key at column `key_indent`): an inline scalar,
/// or a `|`/`>` block made of the following more-indented lines. Returns the value and
/// the index of the first line after it.
fn scalar(lines: &[&str], i: usize, key_indent: usize, rest: &str) -> (String, usize) {
    let r = rest.trim();
    if r.starts_with('|') || r.starts_with('>') {
        let fold = r.starts_with('>');
        let mut j = i + 1;
        let mut body = Vec::new();
        while j < lines.len() && (lines[j].trim().is_empty() || indent(lines[j]) > key_indent) {
            body.push(lines[j].trim());
            j += 1;
        }
        while body.last() == Some(&"") {
            body.pop();
        }
        (body.join(if fold { " " } else { "\n" }), j)
    } else {
        (unquote(r), i + 1)
    }
}

/// `key: value` pairs of a map whose entries sit at column `map_indent`, from line `i`.
fn map(lines: &[&str], mut i: usize, map_indent: usize) -> (BTreeMap<String, String>, usize) {
    let mut m = BTreeMap::new();
    while i < lines.len() {
        let l = lines[i];
        if is_blank_or_comment(l) {
            i += 1;
            continue;
        }
        if indent(l) != map_indent {
            break;
        }
        let (k, rest) = l
            .trim()
            .split_once(':')
            .unwrap_or_else(|| panic!("not a map entry: {l}"));
        let (v, next) = scalar(lines, i, map_indent, rest);
        m.insert(k.trim().to_string(), v);
        i = next;
    }
    (m, i)
}

/// Every `- alert:` rule of a Prometheus-style rule file (Prometheus or Loki ruler).
fn alerts(text: &str) -> Vec<Rule> {
    let lines: Vec<&str> = text.lines().collect();
    let mut rules = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let t = l.trim_start();
        let Some(name) = t.strip_prefix("- alert:") else {
            i += 1;
            continue;
        };
        let key_indent = indent(l) + 2;
        let mut rule = Rule {
            name: unquote(name),
            ..Rule::default()
        };
        i += 1;
        while i < lines.len() {
            let l = lines[i];
            if is_blank_or_comment(l) {
                i += 1;
                continue;
            }
            if indent(l) != key_indent {
                break;
            }
            let (k, rest) = l
                .trim()
                .split_once(':')
                .unwrap_or_else(|| panic!("bad rule line: {l}"));
            match k {
                "labels" | "annotations" => {
                    assert!(rest.trim().is_empty(), "inline maps are not supported: {l}");
                    let first = lines[i + 1..]
                        .iter()
                        .find(|l| !is_blank_or_comment(l))
                        .map(|l| indent(l))
                        .unwrap_or(0);
                    let (m, next) = map(&lines, i + 1, first);
                    if k == "labels" {
                        rule.labels = m;
                    } else {
                        rule.annotations = m;
                    }
                    i = next;
                }
                _ => {
                    let (v, next) = scalar(&lines, i, key_indent, rest);
                    if k == "expr" {
                        rule.expr = v;
                    }
                    i = next;
                }
            }
        }
        assert!(!rule.expr.is_empty(), "alert {} has no expr", rule.name);
        rules.push(rule);
    }
    rules
}

// ---------------------------------------------------------------------------------------
// Runbook anchors (GitHub rules: lower case, punctuation removed, spaces to hyphens,
// duplicates suffixed -1, -2, ...).

fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// (level, heading text, anchor) of every heading outside code fences.
fn runbook_headings() -> Vec<(usize, String, String)> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    let mut fenced = false;
    for l in read_repo(RUNBOOK).lines() {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let level = l.chars().take_while(|c| *c == '#').count();
        if level == 0 || level > 6 || !l[level..].starts_with(' ') {
            continue;
        }
        let text = l[level..].trim().to_string();
        let base = github_anchor(&text);
        let n = seen.entry(base.clone()).or_insert(0);
        let anchor = if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        *n += 1;
        out.push((level, text, anchor));
    }
    out
}

fn check_alert_metadata(file: &str, rules: &[Rule], anchors: &BTreeSet<String>) -> Vec<String> {
    let mut errs = Vec::new();
    for r in rules {
        let n = &r.name;
        match r.labels.get("severity") {
            Some(s) if SEVERITIES.contains(&s.as_str()) => {}
            other => errs.push(format!(
                "{file}: {n}: severity {other:?} not in {SEVERITIES:?}"
            )),
        }
        let summary = r
            .annotations
            .get("summary")
            .map(String::as_str)
            .unwrap_or("");
        if summary.trim().is_empty() {
            errs.push(format!("{file}: {n}: no summary"));
        } else if summary.contains("{{") || !summary.ends_with('.') {
            errs.push(format!(
                "{file}: {n}: summary should be a static sentence ending in '.'"
            ));
        }
        let desc = r
            .annotations
            .get("description")
            .map(String::as_str)
            .unwrap_or("");
        if desc.trim().is_empty() {
            errs.push(format!("{file}: {n}: no description"));
        } else if !desc.contains("{{") {
            errs.push(format!(
                "{file}: {n}: description has no {{{{ }}}} templating"
            ));
        }
        match r.annotations.get("runbook_url") {
            None => errs.push(format!("{file}: {n}: no runbook_url")),
            Some(u) => match u.strip_prefix(RUNBOOK_URL) {
                None => errs.push(format!(
                    "{file}: {n}: runbook_url {u} does not start with {RUNBOOK_URL}"
                )),
                Some(a) if !anchors.contains(a) => errs.push(format!(
                    "{file}: {n}: runbook anchor #{a} is no heading of {RUNBOOK}"
                )),
                Some(a) if a != n.to_lowercase() => errs.push(format!(
                    "{file}: {n}: runbook anchor #{a} is not the alert's own section"
                )),
                Some(_) => {}
            },
        }
    }
    let mut names = BTreeSet::new();
    for r in rules {
        if !names.insert(&r.name) {
            errs.push(format!("{file}: alert {} defined twice", r.name));
        }
    }
    errs
}

#[test]
fn every_alert_has_severity_summary_description_and_runbook_section() {
    let headings = runbook_headings();
    let anchors: BTreeSet<String> = headings.iter().map(|(_, _, a)| a.clone()).collect();
    let prom = alerts(&read_repo(RULES));
    let loki = alerts(&read_repo(LOKI_RULES));
    assert!(
        prom.len() >= 20,
        "expected the full alert set in {RULES}, found {}",
        prom.len()
    );
    assert!(!loki.is_empty(), "no alerts in {LOKI_RULES}");

    let mut errs = check_alert_metadata(RULES, &prom, &anchors);
    errs.extend(check_alert_metadata(LOKI_RULES, &loki, &anchors));

    // And the other way round: every alert-level (###) runbook section is a real alert.
    let all: BTreeSet<&str> = prom.iter().chain(&loki).map(|r| r.name.as_str()).collect();
    for (level, text, _) in &headings {
        if *level == 3 && !all.contains(text.as_str()) {
            errs.push(format!("{RUNBOOK}: section '### {text}' matches no alert"));
        }
    }
    assert!(
        errs.is_empty(),
        "alert metadata problems:\n  {}",
        errs.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------
// Unit test coverage: a firing and a quiet case per alert.

#[derive(Default, Debug)]
struct Coverage {
    firing: usize,
    quiet: usize,
}

fn scan_test_cases(file: &str, text: &str, cov: &mut BTreeMap<String, Coverage>) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut errs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(name) = lines[i].trim().strip_prefix("alertname:") else {
            i += 1;
            continue;
        };
        let name = unquote(name);
        let at = i + 1;
        // The case's exp_alerts follows before the next case.
        let Some(j) = (i + 1..lines.len())
            .take_while(|&j| !lines[j].trim().starts_with("alertname:"))
            .find(|&j| lines[j].trim().starts_with("exp_alerts:"))
        else {
            errs.push(format!("{file}:{at}: {name}: no exp_alerts"));
            i += 1;
            continue;
        };
        let rest = lines[j].trim()["exp_alerts:".len()..].trim();
        let c = cov.entry(name.clone()).or_default();
        if rest == "[]" {
            c.quiet += 1;
            i = j + 1;
            continue;
        }
        if !rest.is_empty() {
            errs.push(format!(
                "{file}:{}: {name}: unexpected exp_alerts value {rest:?}",
                j + 1
            ));
            i = j + 1;
            continue;
        }
        // A firing case: every listed alert states its severity and its summary.
        let base = indent(lines[j]);
        let mut k = j + 1;
        let (mut items, mut severities, mut summaries) = (0, 0, 0);
        while k < lines.len() && (is_blank_or_comment(lines[k]) || indent(lines[k]) > base) {
            let t = lines[k].trim();
            if t.starts_with("- ") && indent(lines[k]) <= base + 2 {
                items += 1;
            }
            if t.starts_with("severity:") {
                severities += 1;
            }
            if t.starts_with("summary:") {
                summaries += 1;
            }
            k += 1;
        }
        if items == 0 {
            errs.push(format!(
                "{file}:{}: {name}: exp_alerts is empty but not []",
                j + 1
            ));
        } else if severities != items || summaries != items {
            errs.push(format!(
                "{file}:{at}: {name}: {items} expected alert(s) but {severities} severity and \
                 {summaries} summary lines"
            ));
        } else {
            c.firing += 1;
        }
        i = k;
    }
    errs
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_unit_test() {
    let mut cov: BTreeMap<String, Coverage> = BTreeMap::new();
    let mut errs = Vec::new();
    for f in test_files() {
        let text = std::fs::read_to_string(&f).expect("read test file");
        errs.extend(scan_test_cases(&rel(&f), &text, &mut cov));
    }
    let names: BTreeSet<String> = alerts(&read_repo(RULES))
        .into_iter()
        .map(|r| r.name)
        .collect();
    for n in &names {
        match cov.get(n) {
            None => errs.push(format!("{n}: no unit test case")),
            Some(c) if c.firing == 0 => errs.push(format!("{n}: no firing case")),
            Some(c) if c.quiet == 0 => errs.push(format!("{n}: no quiet case (exp_alerts: [])")),
            Some(_) => {}
        }
    }
    for n in cov.keys() {
        if !names.contains(n) {
            errs.push(format!(
                "tests name alert {n}, which {RULES} does not define"
            ));
        }
    }
    assert!(
        errs.is_empty(),
        "unit test coverage problems:\n  {}",
        errs.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------
// Metric names.

/// metric name -> type, from the README's metric reference table.
fn reference_metrics() -> BTreeMap<String, String> {
    metric_reference()
        .into_iter()
        .map(|(name, m)| (name, m.kind))
        .collect()
}

/// Identifiers starting with `nats_` or `natsmon_`, outside quoted strings unless
/// `in_quotes` (annotations and prose name metrics inside quotes too).
fn metric_tokens(text: &str, in_quotes: bool) -> BTreeSet<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = BTreeSet::new();
    let chars: Vec<char> = text.chars().collect();
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !in_quotes {
            if let Some(q) = quote {
                if c == '\\' {
                    i += 2;
                    continue;
                }
                if c == q {
                    quote = None;
                }
                i += 1;
                continue;
            }
            if c == '"' || c == '\'' || c == '`' {
                quote = Some(c);
                i += 1;
                continue;
            }
        }
        if is_ident(c) && (i == 0 || !is_ident(chars[i - 1])) {
            let mut j = i;
            while j < chars.len() && is_ident(chars[j]) {
                j += 1;
            }
            let tok: String = chars[i..j].iter().collect();
            if tok.starts_with("nats_") || tok.starts_with("natsmon_") {
                out.insert(tok);
            }
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

fn unknown_metrics(tokens: &BTreeSet<String>, reference: &BTreeMap<String, String>) -> Vec<String> {
    tokens
        .iter()
        .filter(|t| {
            if reference.contains_key(t.as_str()) {
                return false;
            }
            // Histogram samples: <name>_bucket, <name>_sum, <name>_count.
            !["_bucket", "_sum", "_count"].iter().any(|s| {
                t.strip_suffix(s)
                    .and_then(|base| reference.get(base))
                    .is_some_and(|ty| ty == "histogram")
            })
        })
        .cloned()
        .collect()
}

#[test]
fn rules_only_use_metrics_from_the_readme_reference() {
    let reference = reference_metrics();
    let mut errs = Vec::new();
    let mut used = 0;
    for r in alerts(&read_repo(RULES)) {
        let tokens = metric_tokens(&r.expr, false);
        used += tokens.len();
        if tokens.is_empty() && !r.expr.contains("up{") {
            errs.push(format!("{}: expr names no natsmon metric", r.name));
        }
        for m in unknown_metrics(&tokens, &reference) {
            errs.push(format!(
                "{}: expr uses {m}, which is not in the README metric reference",
                r.name
            ));
        }
        let text: String = r
            .annotations
            .values()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        for m in unknown_metrics(&metric_tokens(&text, true), &reference) {
            errs.push(format!(
                "{}: annotations mention unknown metric {m}",
                r.name
            ));
        }
    }
    for m in unknown_metrics(&metric_tokens(&read_repo(RUNBOOK), true), &reference) {
        errs.push(format!("{RUNBOOK} mentions unknown metric {m}"));
    }
    assert!(used > 0, "no metric names found in {RULES}");
    assert!(
        errs.is_empty(),
        "unknown metric names:\n  {}",
        errs.join("\n  ")
    );
}

#[test]
fn metric_token_scanner() {
    let t = metric_tokens(
        r#"sum by (node) (rate(natsmon_poll_errors_total{endpoint="nats_x"}[5m])) / nats_up and my_nats_foo"#,
        false,
    );
    let want: BTreeSet<String> = ["natsmon_poll_errors_total", "nats_up"]
        .map(String::from)
        .into();
    assert_eq!(t, want);
    let reference: BTreeMap<String, String> = [
        (
            "natsmon_poll_duration_seconds".to_string(),
            "histogram".to_string(),
        ),
        ("nats_up".to_string(), "gauge".to_string()),
    ]
    .into();
    let toks: BTreeSet<String> = [
        "natsmon_poll_duration_seconds_bucket",
        "nats_up_count",
        "nats_up",
    ]
    .map(String::from)
    .into();
    assert_eq!(
        unknown_metrics(&toks, &reference),
        vec!["nats_up_count".to_string()]
    );
    assert_eq!(github_anchor("NatsNodeDown"), "natsnodedown");
    assert_eq!(github_anchor("Loki log alerts"), "loki-log-alerts");
    assert_eq!(github_anchor("What's up? (v2.10+)"), "whats-up-v210");
}

// ---------------------------------------------------------------------------------------
// Loki rules.

/// Label names used by a LogQL expression: stream selector matchers and grouping clauses.
fn logql_labels(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Stream selectors: {name op "value", ...}
    let mut rest = expr;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .expect("unclosed {");
        let inner = &rest[open + 1..close];
        let mut in_q = false;
        let mut part = String::new();
        let mut parts = Vec::new();
        for c in inner.chars() {
            match c {
                '"' => {
                    in_q = !in_q;
                    part.push(c)
                }
                ',' if !in_q => parts.push(std::mem::take(&mut part)),
                _ => part.push(c),
            }
        }
        parts.push(part);
        for p in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let end = p
                .find(['=', '!'])
                .unwrap_or_else(|| panic!("bad matcher {p:?}"));
            out.push(p[..end].trim().to_string());
        }
        rest = &rest[close + 1..];
    }
    // by (...), without (...), on (...), ignoring (...), group_left/right (...)
    for kw in [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ] {
        let mut s = expr;
        while let Some(p) = s.find(kw) {
            let before_ok =
                p == 0 || !s[..p].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
            let after = s[p + kw.len()..].trim_start();
            if before_ok && after.starts_with('(') {
                let close = after.find(')').expect("unclosed (");
                out.extend(
                    after[1..close]
                        .split(',')
                        .map(|l| l.trim().to_string())
                        .filter(|l| !l.is_empty()),
                );
            }
            s = &s[p + kw.len()..];
        }
    }
    out
}

#[test]
fn loki_rules_use_only_shipper_labels() {
    let rules = alerts(&read_repo(LOKI_RULES));
    assert!(!rules.is_empty(), "no alerts in {LOKI_RULES}");
    let mut errs = Vec::new();
    for r in &rules {
        if !r.expr.contains("{job=\"nats\"") {
            errs.push(format!(
                "{}: does not select the NATS servers' logs ({{job=\"nats\"...}})",
                r.name
            ));
        }
        for l in logql_labels(&r.expr) {
            if !LOKI_LABELS.contains(&l.as_str()) {
                errs.push(format!(
                    "{}: label {l} is not one natsmon sets {LOKI_LABELS:?}",
                    r.name
                ));
            }
        }
        // Parser stages would create labels natsmon does not set.
        for stage in [
            "| json",
            "| logfmt",
            "| regexp",
            "| pattern",
            "| unpack",
            "| label_format",
        ] {
            if r.expr.contains(stage) {
                errs.push(format!(
                    "{}: uses {stage}, which adds labels natsmon does not set",
                    r.name
                ));
            }
        }
        for a in r.annotations.values() {
            for (i, _) in a.match_indices("$labels.") {
                let name: String = a[i + 8..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !LOKI_LABELS.contains(&name.as_str()) {
                    errs.push(format!("{}: annotation uses $labels.{name}", r.name));
                }
            }
        }
    }
    // log_level values used in matchers must be ones the shipper emits.
    let levels = [
        "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "UNKNOWN",
    ];
    for r in &rules {
        let mut s = r.expr.as_str();
        while let Some(p) = s.find("log_level") {
            let after = &s[p + "log_level".len()..];
            let q1 = after.find('"').expect("log_level matcher without value");
            let q2 = after[q1 + 1..].find('"').expect("unterminated value") + q1 + 1;
            for v in after[q1 + 1..q2].split('|') {
                if !levels.contains(&v) {
                    errs.push(format!(
                        "{}: log_level value {v:?} is never set by natsmon",
                        r.name
                    ));
                }
            }
            s = &after[q2..];
        }
    }
    assert!(
        errs.is_empty(),
        "Loki rule problems:\n  {}",
        errs.join("\n  ")
    );
}

#[test]
fn logql_label_extraction() {
    let l = logql_labels(
        r#"sum by (container_name, service) (count_over_time({job="nats", log_level=~"ERROR|FATAL"} |= "a,b" [5m])) > 10"#,
    );
    assert_eq!(l, ["job", "log_level", "container_name", "service"]);
}
