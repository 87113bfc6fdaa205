//! Lints the bundled Grafana dashboards (`dashboards/*.json`) and their provisioning
//! files, mirroring grafana/dashboard-linter's rules (which cannot be installed here)
//! plus checks against this project's README metric reference:
//!
//! - schemaVersion >= 39, stable unique uids, tags, time range and refresh;
//! - only current panel types (no Angular `graph`/`singlestat`/`table-old`);
//! - every panel (inside rows too) has a title, a description, a valid unit, targets,
//!   and uses the `datasource` template variable, as does every target;
//! - a `datasource` template variable exists; query variables use it and refresh on
//!   time range change; Prometheus dashboards have `cluster` and `node` variables;
//! - PromQL: counters (`_total`, histogram `_bucket/_sum/_count`) only inside
//!   rate/irate/increase, every range is `[$__rate_interval]`, every metric is in the
//!   README reference, label matchers, `by (...)` labels and `{{legend}}` labels exist
//!   on the metrics used;
//! - LogQL: only the Loki labels natsmon ships (job, host, container_name, service, stream,
//!   log_level), ranges are `[$__auto]`;
//! - every `$variable` used is defined and every defined variable is used;
//! - provisioning: the datasource uids the dashboards default to exist with the right
//!   type and URL; the dashboard provider loads /var/lib/grafana/dashboards;
//! - every PromQL expression parses (`promtool check rules`);
//! - the committed JSON equals `scripts/gen-dashboards.py` output.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::process::Command;

use crate::harness::readme::{RefMetric, metric_reference};
use crate::harness::repo_root;

const EXPECTED_FILES: &[&str] = &[
    "nats-cluster-overview.json",
    "nats-jetstream.json",
    "nats-logs.json",
    "natsmon-self.json",
];

const PANEL_TYPES: &[&str] = &[
    "timeseries",
    "stat",
    "gauge",
    "bargauge",
    "table",
    "logs",
    "state-timeline",
    "row",
];

const LOKI_LABELS: &[&str] = &[
    "job",
    "host",
    "container_name",
    "service",
    "stream",
    "log_level",
];

/// Grafana unit ids (packages/grafana-data/src/valueFormats/categories.ts), the subset
/// dashboard-linter's panel-units-rule accepts that makes sense for these dashboards.
const UNITS: &[&str] = &[
    "none",
    "string",
    "short",
    "percent",
    "percentunit",
    "locale",
    "sci", // misc
    "bytes",
    "decbytes",
    "bits",
    "decbits",
    "kbytes",
    "mbytes",
    "gbytes", // data
    "pps",
    "binBps",
    "Bps",
    "binbps",
    "bps",
    "KiBs",
    "KBs",
    "MiBs",
    "MBs", // data rate
    "dateTimeAsIso",
    "dateTimeAsLocal",
    "dateTimeFromNow", // date
    "hertz",
    "ns",
    "µs",
    "ms",
    "s",
    "m",
    "h",
    "d",
    "dtdurationms",
    "dtdurations",
    "dthms",
    "dtdhms",
    "clockms",
    "clocks", // time
    "cps",
    "ops",
    "reqps",
    "rps",
    "wps",
    "iops",
    "cpm",
    "opm",
    "rpm",
    "wpm", // throughput
    "bool",
    "bool_yes_no",
    "bool_on_off",
];

const BUILTIN_VARS: &[&str] = &[
    "__rate_interval",
    "__interval",
    "__interval_ms",
    "__auto",
    "__range",
    "__range_s",
    "__range_ms",
    "__all",
];

const PROVISIONED: &[(&str, &str, &str)] = &[
    ("prometheus", "prometheus", "http://prometheus:9090"),
    ("loki", "loki", "http://loki:3100"),
];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = repo_root().join("dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("dashboards/ exists") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let v: Value = serde_json::from_str(&read(&path))
            .unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"));
        out.push((name, v));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

// ------------------------------------------------------------------ README reference

/// The README family a sample name belongs to, and whether it is a histogram series.
fn family<'a>(name: &'a str, refm: &BTreeMap<String, RefMetric>) -> Option<(&'a str, bool)> {
    if refm.contains_key(name) {
        return Some((name, false));
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && refm.get(base).is_some_and(|m| m.kind == "histogram")
        {
            return Some((base, true));
        }
    }
    None
}

// ------------------------------------------------------------------ lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Range(String),
    Punct(char),
}

/// A small lexer good enough for PromQL and LogQL as written in these dashboards:
/// identifiers, string literals (skipped for name checks), `[range]`, punctuation.
fn lex(expr: &str) -> Vec<Tok> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' || c == '`' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && c != '`' && i + 1 < chars.len() {
                    s.push(chars[i]);
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if c == '[' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != ']' {
                s.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(Tok::Range(s));
        } else if c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '.' {
            let mut s = String::new();
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '_'
                    || chars[i] == ':'
                    || chars[i] == '.')
            {
                s.push(chars[i]);
                i += 1;
            }
            out.push(Tok::Ident(s));
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

fn is_match_op(t: Option<&Tok>) -> bool {
    matches!(t, Some(Tok::Punct('=' | '!' | '~')))
}

/// Label names of the matchers of a `{...}` starting at `toks[open]`; returns the index
/// after the closing brace.
fn matcher_labels(toks: &[Tok], open: usize) -> (Vec<String>, usize) {
    let mut labels = Vec::new();
    let mut j = open + 1;
    while j < toks.len() && toks[j] != Tok::Punct('}') {
        if let Tok::Ident(l) = &toks[j]
            && is_match_op(toks.get(j + 1))
        {
            labels.push(l.clone());
        }
        j += 1;
    }
    (labels, j + 1)
}

/// Label names in a `by (...)`-style list starting at the `(` at `toks[open]`.
fn paren_labels(toks: &[Tok], open: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut j = open + 1;
    while j < toks.len() && toks[j] != Tok::Punct(')') {
        if let Tok::Ident(l) = &toks[j] {
            out.push(l.clone());
        }
        j += 1;
    }
    out
}

fn legend_labels(legend: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = legend;
    while let Some(s) = rest.find("{{") {
        let after = &rest[s + 2..];
        let Some(e) = after.find("}}") else { break };
        out.push(after[..e].trim().to_string());
        rest = &after[e + 2..];
    }
    out
}

// ------------------------------------------------------------------ PromQL rules

const COUNTER_FUNCS: &[&str] = &["rate", "irate", "increase"];
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Problems with one PromQL expression (and its legend, if any).
fn lint_promql(
    expr: &str,
    legend: Option<&str>,
    refm: &BTreeMap<String, RefMetric>,
) -> Vec<String> {
    let mut errs = Vec::new();
    let toks = lex(expr);
    // The function (or grouping keyword) each open paren belongs to.
    let mut stack: Vec<Option<String>> = Vec::new();
    let mut used_labels: BTreeSet<String> = BTreeSet::new();
    let mut grouping_labels: Vec<String> = Vec::new();
    let mut metrics = 0;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Punct('(') => {
                let f = match i.checked_sub(1).map(|p| &toks[p]) {
                    Some(Tok::Ident(f)) => Some(f.clone()),
                    _ => None,
                };
                if f.as_deref().is_some_and(|f| GROUPING.contains(&f)) {
                    grouping_labels.extend(paren_labels(&toks, i));
                }
                stack.push(f);
            }
            Tok::Punct(')') if stack.pop().is_none() => {
                errs.push(format!("unbalanced ')' in `{expr}`"));
            }
            Tok::Range(r) if r.trim() != "$__rate_interval" => {
                errs.push(format!("range [{r}] is not [$__rate_interval] in `{expr}`"));
            }
            Tok::Ident(name) if name.starts_with("nats_") || name.starts_with("natsmon_") => {
                metrics += 1;
                let in_counter_fn = stack
                    .iter()
                    .any(|f| f.as_deref().is_some_and(|f| COUNTER_FUNCS.contains(&f)));
                match family(name, refm) {
                    None => errs.push(format!(
                        "metric `{name}` is not in the README metric reference (`{expr}`)"
                    )),
                    Some((fam, hist_series)) => {
                        let m = &refm[fam];
                        let counter = name.ends_with("_total") || m.kind == "counter";
                        if (counter || hist_series) && !in_counter_fn {
                            errs.push(format!(
                                "counter `{name}` used outside rate()/irate()/increase() in `{expr}`"
                            ));
                        }
                        used_labels.extend(m.labels.iter().cloned());
                        if hist_series && name.ends_with("_bucket") {
                            used_labels.insert("le".into());
                        }
                        if toks.get(i + 1) == Some(&Tok::Punct('{')) {
                            let (labels, next) = matcher_labels(&toks, i + 1);
                            for l in labels {
                                let ok = m.labels.contains(&l)
                                    || (l == "le" && name.ends_with("_bucket"));
                                if !ok {
                                    errs.push(format!(
                                        "`{name}` has no label `{l}` (README lists {:?}) in `{expr}`",
                                        m.labels
                                    ));
                                }
                            }
                            i = next;
                            continue;
                        }
                    }
                }
            }
            Tok::Ident(name)
                if COUNTER_FUNCS.contains(&name.as_str())
                    && toks.get(i + 1) != Some(&Tok::Punct('(')) =>
            {
                errs.push(format!("`{name}` not called in `{expr}`"));
            }
            Tok::Punct('{') => errs.push(format!("selector without metric name in `{expr}`")),
            _ => {}
        }
        i += 1;
    }
    if !stack.is_empty() {
        errs.push(format!("unbalanced '(' in `{expr}`"));
    }
    if metrics == 0 {
        errs.push(format!("no natsmon metric in `{expr}`"));
    }
    // Every rate()/irate()/increase() call has a range.
    for (k, t) in toks.iter().enumerate() {
        if let Tok::Ident(f) = t
            && COUNTER_FUNCS.contains(&f.as_str())
            && toks.get(k + 1) == Some(&Tok::Punct('('))
        {
            let mut depth = 0;
            let mut has_range = false;
            for t in &toks[k + 1..] {
                match t {
                    Tok::Punct('(') => depth += 1,
                    Tok::Punct(')') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Tok::Range(_) => has_range = true,
                    _ => {}
                }
            }
            if !has_range {
                errs.push(format!(
                    "{f}() without a [$__rate_interval] range in `{expr}`"
                ));
            }
        }
    }
    for l in grouping_labels {
        if !used_labels.contains(&l) {
            errs.push(format!(
                "grouping label `{l}` is on none of the metrics in `{expr}`"
            ));
        }
    }
    if let Some(legend) = legend {
        for l in legend_labels(legend) {
            if !used_labels.contains(&l) {
                errs.push(format!(
                    "legend label `{{{{{l}}}}}` is on none of the metrics in `{expr}`"
                ));
            }
        }
    }
    errs
}

/// `label_values(selector, label)` of a Prometheus query variable.
fn lint_prom_label_values(query: &str, refm: &BTreeMap<String, RefMetric>) -> Vec<String> {
    let Some(inner) = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
    else {
        return vec![format!(
            "variable query `{query}` is not label_values(metric, label)"
        )];
    };
    let Some((selector, label)) = inner.rsplit_once(',') else {
        return vec![format!("variable query `{query}` has no label argument")];
    };
    let mut errs = lint_promql(selector, None, refm);
    let metric = lex(selector).into_iter().find_map(|t| match t {
        Tok::Ident(n) if n.starts_with("nats") => Some(n),
        _ => None,
    });
    if let Some((fam, _)) = metric.as_deref().and_then(|m| family(m, refm))
        && !refm[fam].labels.contains(label.trim())
    {
        errs.push(format!(
            "`{fam}` has no label `{}` (`{query}`)",
            label.trim()
        ));
    }
    errs
}

// ------------------------------------------------------------------ LogQL rules

fn lint_logql(expr: &str, legend: Option<&str>) -> Vec<String> {
    let mut errs = Vec::new();
    let toks = lex(expr);
    let mut selectors = 0;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Punct('{') => {
                selectors += 1;
                let (labels, next) = matcher_labels(&toks, i);
                if labels.is_empty() {
                    errs.push(format!("empty stream selector in `{expr}`"));
                }
                for l in labels {
                    if !LOKI_LABELS.contains(&l.as_str()) {
                        errs.push(format!(
                            "Loki label `{l}` is not shipped by natsmon in `{expr}`"
                        ));
                    }
                }
                i = next;
                continue;
            }
            Tok::Ident(k)
                if GROUPING.contains(&k.as_str()) && toks.get(i + 1) == Some(&Tok::Punct('(')) =>
            {
                for l in paren_labels(&toks, i + 1) {
                    if !LOKI_LABELS.contains(&l.as_str()) {
                        errs.push(format!("grouping by unknown Loki label `{l}` in `{expr}`"));
                    }
                }
            }
            Tok::Range(r) if r.trim() != "$__auto" => {
                errs.push(format!("LogQL range [{r}] is not [$__auto] in `{expr}`"));
            }
            _ => {}
        }
        i += 1;
    }
    if selectors == 0 {
        errs.push(format!("no stream selector in `{expr}`"));
    }
    if let Some(legend) = legend {
        for l in legend_labels(legend) {
            if !LOKI_LABELS.contains(&l.as_str()) {
                errs.push(format!(
                    "legend label `{l}` is not a Loki label in `{expr}`"
                ));
            }
        }
    }
    errs
}

// ------------------------------------------------------------------ dashboard helpers

fn all_panels(d: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for p in panels.as_array().into_iter().flatten() {
            out.push(p);
            if let Some(inner) = p.get("panels") {
                walk(inner, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&d["panels"], &mut out);
    out
}

fn variables(d: &Value) -> Vec<&Value> {
    d["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .collect()
}

fn variable<'a>(d: &'a Value, name: &str) -> Option<&'a Value> {
    variables(d).into_iter().find(|v| v["name"] == name)
}

/// "prometheus" or "loki": the type of the dashboard's datasource variable.
fn ds_kind(d: &Value) -> String {
    variable(d, "datasource")
        .and_then(|v| v["query"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn variable_query(v: &Value) -> String {
    match &v["query"] {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("query")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

/// `$name`, `${name}`, `${name:fmt}` and `[[name]]` references in a string.
fn var_refs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let (start, braced) = if b.get(i + 1) == Some(&b'{') {
                (i + 2, true)
            } else {
                (i + 1, false)
            };
            let mut j = start;
            while j < b.len() && ident(b[j]) {
                j += 1;
            }
            if j > start {
                out.push(s[start..j].to_string());
            }
            i = if braced { j } else { j.max(i + 1) };
        } else if b[i] == b'[' && b.get(i + 1) == Some(&b'[') {
            let start = i + 2;
            let mut j = start;
            while j < b.len() && ident(b[j]) {
                j += 1;
            }
            if j > start && s[j..].starts_with("]]") {
                out.push(s[start..j].to_string());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

fn expect_datasource(errs: &mut Vec<String>, what: &str, ds: &Value, kind: &str) {
    if !(ds.is_object() && ds["uid"] == "${datasource}" && ds["type"] == kind) {
        errs.push(format!(
            "{what} must use {{\"type\": \"{kind}\", \"uid\": \"${{datasource}}\"}}, has {ds}"
        ));
    }
}

// ------------------------------------------------------------------ the lint

fn lint_dashboard(name: &str, d: &Value, refm: &BTreeMap<String, RefMetric>) -> Vec<String> {
    let mut errs = Vec::new();
    let kind = ds_kind(d);
    let title = str_of(&d["title"]);

    // Dashboard level.
    let schema = d["schemaVersion"].as_u64().unwrap_or(0);
    if schema < 39 {
        errs.push(format!("schemaVersion {schema} < 39"));
    }
    if title.is_empty() {
        errs.push("no title".into());
    }
    let uid = str_of(&d["uid"]);
    if uid.is_empty()
        || uid.len() > 40
        || !uid
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push(format!("uid `{uid}` must be 1-40 chars of [a-z0-9-]"));
    }
    let tags: Vec<&str> = d["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(str_of)
        .collect();
    for t in ["nats", "natsmon"] {
        if !tags.contains(&t) {
            errs.push(format!("tag `{t}` missing"));
        }
    }
    if d["time"]["from"] != "now-1h" || d["time"]["to"] != "now" {
        errs.push(format!(
            "time range must default to now-1h..now, is {}",
            d["time"]
        ));
    }
    if d["refresh"] != "30s" {
        errs.push(format!("refresh must be 30s, is {}", d["refresh"]));
    }
    if d["editable"] != false {
        errs.push("dashboard must be uneditable (provisioned; linter uneditable-dashboard)".into());
    }
    for key in ["__inputs", "__requires", "__elements"] {
        if d.get(key).is_some() {
            errs.push(format!("export-for-sharing key `{key}` present"));
        }
    }

    // Template variables.
    let vars = variables(d);
    let var_names: HashSet<&str> = vars.iter().map(|v| str_of(&v["name"])).collect();
    match variable(d, "datasource") {
        None => errs.push("no `datasource` template variable".into()),
        Some(v) => {
            if v["type"] != "datasource" || !(kind == "prometheus" || kind == "loki") {
                errs.push(format!(
                    "`datasource` variable must be type datasource, query prometheus or loki: {v}"
                ));
            }
            let current = str_of(&v["current"]["value"]);
            if !PROVISIONED
                .iter()
                .any(|(uid, t, _)| *uid == current && *t == kind)
            {
                errs.push(format!(
                    "`datasource` default `{current}` is not a provisioned {kind} uid"
                ));
            }
        }
    }
    for v in &vars {
        let vname = str_of(&v["name"]);
        if v["type"] != "query" {
            continue;
        }
        expect_datasource(
            &mut errs,
            &format!("variable `{vname}`"),
            &v["datasource"],
            &kind,
        );
        if v["refresh"] != 2 {
            errs.push(format!(
                "variable `{vname}` must refresh on time range change (refresh: 2)"
            ));
        }
        if v["multi"] == true && (v["includeAll"] != true || v.get("allValue").is_none()) {
            errs.push(format!(
                "multi-value variable `{vname}` needs includeAll and an allValue"
            ));
        }
        if kind == "prometheus" {
            for e in lint_prom_label_values(&variable_query(v), refm) {
                errs.push(format!("variable `{vname}`: {e}"));
            }
        } else {
            let q = &v["query"];
            let stream = str_of(&q["stream"]);
            let label = str_of(&q["label"]);
            if !LOKI_LABELS.contains(&label) {
                errs.push(format!(
                    "variable `{vname}` lists unknown Loki label `{label}`"
                ));
            }
            for e in lint_logql(stream, None) {
                errs.push(format!("variable `{vname}`: {e}"));
            }
        }
    }
    if kind == "prometheus" {
        for (vname, query) in [
            ("cluster", "label_values(nats_server_info, cluster)"),
            // The node list follows the chosen clusters.
            (
                "node",
                r#"label_values(nats_up{cluster=~"$cluster"}, node)"#,
            ),
        ] {
            match variable(d, vname) {
                None => errs.push(format!("Prometheus dashboard lacks the `{vname}` variable")),
                Some(v) => {
                    if variable_query(v) != query {
                        errs.push(format!("variable `{vname}` must be `{query}`"));
                    }
                    if v["multi"] != true || v["includeAll"] != true {
                        errs.push(format!("variable `{vname}` must be multi-value with All"));
                    }
                }
            }
        }
    }

    // Panels.
    let mut ids = HashSet::new();
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    for v in &vars {
        if v["type"] == "query" {
            referenced.extend(var_refs(&variable_query(v)));
            referenced.extend(var_refs(str_of(&v["query"]["stream"])));
        }
    }
    for p in all_panels(d) {
        let ptype = str_of(&p["type"]);
        let ptitle = str_of(&p["title"]);
        let what = format!("panel `{ptitle}` ({ptype})");
        if !PANEL_TYPES.contains(&ptype) {
            errs.push(format!("{what}: panel type not allowed"));
        }
        if ptitle.trim().is_empty() {
            errs.push(format!("{what}: no title"));
        }
        if let Some(id) = p["id"].as_u64() {
            if !ids.insert(id) {
                errs.push(format!("{what}: duplicate panel id {id}"));
            }
        } else {
            errs.push(format!("{what}: no id"));
        }
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64(), g["w"].as_u64());
        if !matches!((x, w), (Some(x), Some(w)) if w > 0 && x + w <= 24)
            || g["h"].as_u64().is_none()
        {
            errs.push(format!("{what}: bad gridPos {g}"));
        }
        if ptype == "row" {
            continue;
        }
        if str_of(&p["description"]).trim().is_empty() {
            errs.push(format!("{what}: no description"));
        }
        let unit = str_of(&p["fieldConfig"]["defaults"]["unit"]);
        if !UNITS.contains(&unit) {
            errs.push(format!("{what}: missing or unknown unit `{unit}`"));
        }
        for o in p["fieldConfig"]["overrides"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for prop in o["properties"].as_array().into_iter().flatten() {
                if prop["id"] == "unit" && !UNITS.contains(&str_of(&prop["value"])) {
                    errs.push(format!(
                        "{what}: override has unknown unit {}",
                        prop["value"]
                    ));
                }
            }
        }
        expect_datasource(&mut errs, &what, &p["datasource"], &kind);
        let targets: Vec<&Value> = p["targets"].as_array().into_iter().flatten().collect();
        if targets.is_empty() {
            errs.push(format!("{what}: no targets"));
        }
        let mut refids = HashSet::new();
        for t in targets {
            expect_datasource(
                &mut errs,
                &format!("{what} target"),
                &t["datasource"],
                &kind,
            );
            if !refids.insert(str_of(&t["refId"]).to_string()) {
                errs.push(format!("{what}: duplicate refId"));
            }
            let expr = str_of(&t["expr"]);
            let legend = t["legendFormat"].as_str().filter(|l| *l != "__auto");
            referenced.extend(var_refs(expr));
            let problems = if kind == "prometheus" {
                lint_promql(expr, legend, refm)
            } else {
                lint_logql(expr, legend)
            };
            errs.extend(problems.into_iter().map(|e| format!("{what}: {e}")));
        }
    }

    for r in &referenced {
        if !var_names.contains(r.as_str()) && !BUILTIN_VARS.contains(&r.as_str()) {
            errs.push(format!("`${r}` is used but not defined"));
        }
    }
    for v in &vars {
        let vname = str_of(&v["name"]);
        if vname != "datasource" && !referenced.contains(vname) {
            errs.push(format!("variable `{vname}` is defined but never used"));
        }
    }
    errs.into_iter().map(|e| format!("{name}: {e}")).collect()
}

// ------------------------------------------------------------------ tests

#[test]
fn the_four_dashboards_exist() {
    let names: Vec<String> = dashboards().into_iter().map(|(n, _)| n).collect();
    for f in EXPECTED_FILES {
        assert!(
            names.iter().any(|n| n == f),
            "dashboards/{f} missing; have {names:?}"
        );
    }
    let kinds: BTreeMap<String, String> = dashboards()
        .iter()
        .map(|(n, d)| (n.clone(), ds_kind(d)))
        .collect();
    assert_eq!(kinds["nats-logs.json"], "loki");
    for f in [
        "nats-cluster-overview.json",
        "nats-jetstream.json",
        "natsmon-self.json",
    ] {
        assert_eq!(kinds[f], "prometheus", "{f}");
    }
}

#[test]
fn dashboards_pass_the_lint() {
    let refm = metric_reference();
    let mut errs = Vec::new();
    for (name, d) in dashboards() {
        errs.extend(lint_dashboard(&name, &d, &refm));
    }
    assert!(
        errs.is_empty(),
        "{} dashboard problems:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

#[test]
fn uids_and_titles_are_unique() {
    let mut uids = HashSet::new();
    let mut titles = HashSet::new();
    for (name, d) in dashboards() {
        assert!(
            uids.insert(str_of(&d["uid"]).to_string()),
            "{name}: duplicate uid {}",
            d["uid"]
        );
        assert!(
            titles.insert(str_of(&d["title"]).to_string()),
            "{name}: duplicate title"
        );
    }
}

/// Minimal YAML reading: the list entries (`- key: value` then `key: value` lines) of a
/// provisioning file, as flat key/value maps (nested keys are flattened by name).
fn yaml_entries(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out: Vec<BTreeMap<String, String>> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        let (new, body) = match t.strip_prefix("- ") {
            Some(b) => (true, b),
            None => (false, t),
        };
        if new {
            out.push(BTreeMap::new());
        }
        if let (Some(entry), Some((k, v))) = (out.last_mut(), body.split_once(':')) {
            entry.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
        }
    }
    out
}

#[test]
fn provisioning_matches_the_dashboards() {
    let prov = repo_root().join("dashboards/provisioning");
    let ds_text = read(&prov.join("datasources/natsmon.yml"));
    assert!(
        ds_text.contains("apiVersion: 1"),
        "datasources file lacks apiVersion: 1"
    );
    let entries = yaml_entries(&ds_text);
    for (uid, kind, url) in PROVISIONED {
        let e = entries
            .iter()
            .find(|e| e.get("uid").map(String::as_str) == Some(uid))
            .unwrap_or_else(|| panic!("no datasource with uid `{uid}` in datasources/natsmon.yml"));
        assert_eq!(
            e.get("type").map(String::as_str),
            Some(*kind),
            "datasource {uid} type"
        );
        assert_eq!(
            e.get("url").map(String::as_str),
            Some(*url),
            "datasource {uid} url"
        );
    }
    // Every datasource uid a dashboard defaults to is provisioned with the right type.
    for (name, d) in dashboards() {
        let kind = ds_kind(&d);
        let current = str_of(&variable(&d, "datasource").unwrap()["current"]["value"]).to_string();
        assert!(
            entries
                .iter()
                .any(|e| e.get("uid") == Some(&current) && e.get("type") == Some(&kind)),
            "{name}: datasource default `{current}` ({kind}) is not provisioned"
        );
    }

    let db_text = read(&prov.join("dashboards/natsmon.yml"));
    assert!(
        db_text.contains("apiVersion: 1"),
        "dashboards file lacks apiVersion: 1"
    );
    let providers = yaml_entries(&db_text);
    assert_eq!(providers.len(), 1, "one dashboard provider expected");
    let p = &providers[0];
    assert_eq!(p.get("type").map(String::as_str), Some("file"));
    assert_eq!(
        p.get("path").map(String::as_str),
        Some("/var/lib/grafana/dashboards")
    );
    for (name, d) in dashboards() {
        assert!(
            db_text.contains(str_of(&d["uid"])),
            "{name}: uid {} not listed in provisioning/dashboards/natsmon.yml",
            d["uid"]
        );
    }
}

#[test]
fn committed_json_equals_generator_output() {
    let script = repo_root().join("scripts/gen-dashboards.py");
    match Command::new("python3")
        .arg(&script)
        .arg("--check")
        .current_dir(repo_root())
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "dashboards/*.json differ from scripts/gen-dashboards.py output; run \
             `python3 scripts/gen-dashboards.py`\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if std::env::var_os("NATSMON_TEST_REQUIRE_ALL").is_some() => {
            panic!("python3 is needed to check scripts/gen-dashboards.py: {e}")
        }
        Err(e) => eprintln!("SKIPPED generator check: python3 not runnable: {e}"),
    }
}

/// Every PromQL target and variable selector parses with Prometheus' own parser:
/// the expressions, with Grafana's range variables replaced by a duration, become
/// recording rules checked by `promtool check rules`.
#[test]
fn promql_parses_with_promtool() {
    let mut exprs = Vec::new();
    for (name, d) in dashboards() {
        if ds_kind(&d) != "prometheus" {
            continue;
        }
        for p in all_panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                exprs.push((name.clone(), str_of(&t["expr"]).to_string()));
            }
        }
        for v in variables(&d) {
            if v["type"] == "query" {
                let q = variable_query(v);
                let inner = q
                    .trim()
                    .strip_prefix("label_values(")
                    .and_then(|q| q.rsplit_once(','));
                if let Some((selector, _)) = inner {
                    exprs.push((name.clone(), selector.to_string()));
                }
            }
        }
    }
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (i, (name, e)) in exprs.iter().enumerate() {
        let e = e
            .replace("$__rate_interval", "1m")
            .replace("$__interval", "1m");
        rules.push_str(&format!(
            "      - record: dashboard:expr{i}\n        labels: {{ file: {} }}\n        expr: {}\n",
            serde_json::to_string(name).unwrap(),
            serde_json::to_string(&e).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboards.rules.yml");
    std::fs::write(&file, &rules).unwrap();
    match Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&file)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "promtool rejects dashboard PromQL:\n{}{}\n{rules}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if std::env::var_os("NATSMON_TEST_REQUIRE_ALL").is_some() => {
            panic!("promtool is needed to parse the dashboards' PromQL: {e}")
        }
        Err(e) => eprintln!("SKIPPED PromQL parse check: promtool not runnable: {e}"),
    }
}

/// The lint itself catches the mistakes public NATS dashboards make.
#[test]
fn lint_catches_known_mistakes() {
    let refm = metric_reference();
    let bad = |expr: &str| !lint_promql(expr, None, &refm).is_empty();
    let good = |expr: &str| lint_promql(expr, None, &refm).is_empty();
    // counters plotted raw
    assert!(bad("nats_varz_in_msgs_total{node=~\"$node\"}"));
    assert!(bad("sum(nats_varz_slow_consumers_total) > 0"));
    assert!(bad("natsmon_poll_duration_seconds_count"));
    // hard-coded ranges
    assert!(bad("rate(nats_varz_in_msgs_total[5m])"));
    assert!(bad("increase(nats_varz_slow_consumers_total[1m])"));
    // unknown names (old prefix, old names)
    assert!(bad("gnatsd_varz_connections + nats_varz_connectionz"));
    assert!(bad("nats_jetstream_memory"));
    assert!(bad("nats_connz_total"));
    // labels a metric does not carry
    assert!(bad(
        "natsmon_poll_cycle_duration_seconds{cluster=~\"$cluster\"}"
    ));
    assert!(good("nats_varz_connections{cluster=~\"$cluster\"}"));
    assert!(bad("sum by (server_id) (nats_varz_connections)"));
    assert!(!lint_promql("natsmon_logs_buffered_bytes", Some("{{node}}"), &refm).is_empty());
    // fine
    assert!(good(
        "sum by (node) (rate(nats_varz_in_msgs_total{node=~\"$node\"}[$__rate_interval]))"
    ));
    assert!(good(
        "histogram_quantile(0.99, sum by (node, le) (rate(natsmon_poll_duration_seconds_bucket[$__rate_interval])))"
    ));
    assert!(good(
        "nats_stream_bytes{cluster=~\"$cluster\"} / nats_stream_max_bytes"
    ));
    assert!(
        !lint_prom_label_values("label_values(natsmon_logs_buffered_lines, cluster)", &refm)
            .is_empty()
    );
    assert!(lint_prom_label_values("label_values(nats_up, node)", &refm).is_empty());

    assert!(!lint_logql("{job=\"nats\", container=~\"x\"}", None).is_empty());
    assert!(!lint_logql("count_over_time({job=\"nats\"}[5m])", None).is_empty());
    assert!(
        !lint_logql(
            "sum by (level) (count_over_time({job=\"nats\"}[$__auto]))",
            None
        )
        .is_empty()
    );
    assert!(lint_logql(
        "sum by (log_level) (count_over_time({job=\"nats\", log_level=~\"$level\"} |~ \"a{b}\" [$__auto]))",
        Some("{{log_level}}")
    )
    .is_empty());
    assert_eq!(
        var_refs("a=~\"$node\", ${datasource} [[x]] $__rate_interval"),
        ["node", "datasource", "x", "__rate_interval"]
    );
}
