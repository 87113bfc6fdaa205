//! End-to-end test of the bundled dashboards and alert rules against a REAL stack:
//!
//! a supercluster on the NEWEST nats-server release of the version matrix (the 3-node
//! JetStream harness cluster `c1`, and a one-server cluster `c2` joined to it by a
//! gateway, whose client listener has TLS; every server runs with GOMEMLIMIT) -> natsmon
//! polling all four servers -> real Prometheus 2.42 (`/usr/bin/prometheus`, or
//! `$PROMETHEUS_BIN`) scraping it every second and evaluating
//! `alerting_rules/natsmon.rules.yml`. The log shipper is enabled too (test Loki
//! receiver + one busybox container on the real dockerd), so the shipper panels of the
//! natsmon dashboard have data. The newest release is the one that reports every field
//! the panels show; the other releases are covered by `versions.rs`.
//!
//! `dashboards_return_data_and_node_down_alert_fires`:
//! 1. creates traffic through async-nats: an R3 stream with limits (max_bytes,
//!    max_msgs, max_consumers, max_msgs_per_subject, max_age) and an interior delete, a
//!    stream sourcing it, a durable pull consumer with pending and ack-pending messages,
//!    a filtered durable that delivered nothing, a stream and connections in account B
//!    (which has JetStream limits), and a background publisher;
//! 2. lets Prometheus scrape for ~20 s, then evaluates every dashboard variable query
//!    (`label_values(...)` -> `/api/v1/label/<label>/values?match[]=...`, each must
//!    return a value) and every Prometheus panel target (Grafana variables substituted
//!    as Grafana does: "All" -> the variable's allValue, `$__rate_interval` -> 4s, ...)
//!    with `/api/v1/query`. Every expression must parse and execute. Each expression with
//!    data is run again with every variable value selected explicitly (`(a|b|c)`), which
//!    catches matchers on labels a metric does not have (`.*` hides them);
//! 3. kills node n3, strands an R2 stream on it (see [`strand_a_stream`]) and waits for
//!    `NatsNodeDown{node="n3"}` to go pending, then firing no earlier than the rule's
//!    `for:`. Expressions that were empty on the healthy cluster because they show
//!    failures (poll errors, offline / not current replicas, failing health checks)
//!    are evaluated again with the node down. EVERY expression must have data, healthy
//!    or with the node down: there is no allowlist;
//! 4. checks every alert rule still evaluates without error (node down, shipper on).
//!
//! `alert_rules_evaluate_without_errors`: a quicker stack (no shipper); every rule of
//! the rules file is loaded and reports `health: "ok"` after several evaluations.
//!
//! The tests PANIC (never skip) if prometheus, openssl or the version matrix
//! (`NATSMON_TEST_NATS_SERVERS`, scripts/nats-servers.sh) is missing; the first one also
//! needs the real dockerd (`tests/it/harness/docker.rs`, `scripts/docker-env.sh`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use serde_json::Value;

use crate::harness::docker::{self, Container};
use crate::harness::grafana::{Intervals, interpolate, parse_label_values, regex_escape};
use crate::harness::http::http_get;
use crate::harness::self_signed_cert;
use crate::harness::shipper::ShipperSetup;
use crate::harness::{
    CLUSTER_NAME, CLUSTER_START_TIMEOUT, Cluster, GatewayTo, Natsmon, connect, free_port,
    nats_server_matrix, natsmon_args, new_tempdir, repo_root, tail, wait_for,
};

/// Prometheus global scrape and evaluation interval, seconds.
const SCRAPE_INTERVAL_SECS: u64 = 1;
/// How long Prometheus scrapes before the dashboard queries run.
const SCRAPE_WARMUP: Duration = Duration::from_secs(20);
/// Grafana's `$__range` for the dashboards' instant queries.
const RANGE_SECS: u64 = 60;
/// Node index (0-based) killed for the alert test, and its natsmon `node` label.
const KILLED_NODE: usize = 2;
const KILLED_NODE_LABEL: &str = "n3";

/// The second cluster's one server, joined to the harness cluster by a gateway.
const SECOND_CLUSTER: &str = "c2";
const SECOND_NODE: &str = "x1";
/// GOMEMLIMIT of every nats-server, for `nats_varz_gomemlimit_bytes`.
const GOMEMLIMIT: &str = "1GiB";

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

fn rules_path() -> PathBuf {
    repo_root().join("alerting_rules/natsmon.rules.yml")
}

/// Grafana's interval variables for a panel with `min_interval`, with this test's
/// scrape interval and time range.
fn intervals(min_interval: Option<u64>) -> Intervals {
    Intervals::new(SCRAPE_INTERVAL_SECS, RANGE_SECS, min_interval)
}

/// Parse a Prometheus duration (`1m`, `90s`, `1h30m`, `500ms`, `2d`).
fn parse_prom_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim().trim_matches('"').trim_matches('\'');
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("duration {s:?}: number without unit"))?;
        if n_end == 0 {
            return Err(format!("duration {s:?}: expected a number"));
        }
        let n: f64 = rest[..n_end].parse().unwrap();
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..u_end];
        rest = &rest[u_end..];
        let secs = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 7.0 * 86400.0,
            "y" => 365.0 * 86400.0,
            _ => return Err(format!("duration {s:?}: unknown unit {unit:?}")),
        };
        total += n * secs;
    }
    Ok(Duration::from_secs_f64(total))
}

/// Alert names of the rules file, in file order.
fn rule_alert_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("- alert:"))
        .map(|n| n.trim().trim_matches('"').trim_matches('\'').to_string())
        .collect()
}

/// `key:` value inside the rule `- alert: <alert>` (first match before the next rule).
fn rule_field(text: &str, alert: &str, key: &str) -> Option<String> {
    let mut inside = false;
    for l in text.lines() {
        let t = l.trim_start();
        if let Some(n) = t.strip_prefix("- alert:") {
            inside = n.trim().trim_matches('"') == alert;
            continue;
        }
        if t.starts_with("- record:") || t.starts_with("- name:") {
            inside = false;
            continue;
        }
        if inside && let Some(v) = t.strip_prefix(&format!("{key}:")) {
            return Some(v.trim().trim_matches('"').trim_matches('\'').to_string());
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Prometheus process
// ---------------------------------------------------------------------------

fn prometheus_bin() -> PathBuf {
    let p = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "/usr/bin/prometheus".into());
    let p = PathBuf::from(p);
    if !p.is_file() {
        panic!(
            "\n\n*** Prometheus server NOT FOUND at {} (set $PROMETHEUS_BIN).\n*** Install \
             it with `apt-get install -y prometheus` (Debian ships 2.42). This test never \
             skips.\n\n",
            p.display()
        );
    }
    p
}

/// A real Prometheus server, killed on drop.
struct Prometheus {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    log_path: PathBuf,
}

impl Prometheus {
    /// Start Prometheus scraping `target` (host:port) as job `natsmon` every second
    /// and evaluating `rule_file`.
    fn start(target: &str, rule_file: &Path) -> Prometheus {
        let bin = prometheus_bin();
        let dir = new_tempdir("natsmon-prometheus-");
        let port = free_port();
        let config = format!(
            "global:\n  scrape_interval: {SCRAPE_INTERVAL_SECS}s\n  scrape_timeout: \
             {SCRAPE_INTERVAL_SECS}s\n  evaluation_interval: {SCRAPE_INTERVAL_SECS}s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: natsmon\n    static_configs:\n      - targets: \
             ['{target}']\n",
            rules = rule_file.display(),
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, &config).expect("write prometheus.yml");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let log_path = dir.path().join("prometheus.log");
        let log = std::fs::File::create(&log_path).expect("create prometheus log");
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-lifecycle")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("failed to spawn {}: {e}", bin.display()));
        eprintln!("[prometheus_stack] prometheus on 127.0.0.1:{port}, config:\n{config}");
        Prometheus {
            child: Some(child),
            dir,
            port,
            log_path,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Wait for `/-/ready`.
    async fn wait_ready(&mut self, timeout: Duration) {
        let url = format!("{}/-/ready", self.url());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.exited() {
                panic!(
                    "prometheus exited during startup ({st}):\n{}",
                    tail(&self.log(), 60)
                );
            }
            if let Ok((200, _)) = http_get(&url).await {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "prometheus not ready after {timeout:?}:\n{}",
                    tail(&self.log(), 60)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Wait until the natsmon target is `up` in `/api/v1/targets`.
    async fn wait_target_up(&self, target: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        loop {
            if let Ok(v) = self.api("/api/v1/targets", &[]).await {
                let up = v["data"]["activeTargets"]
                    .as_array()
                    .map(|a| {
                        a.iter().any(|t| {
                            t["labels"]["job"] == "natsmon"
                                && t["scrapeUrl"].as_str().unwrap_or("").contains(target)
                                && t["health"] == "up"
                        })
                    })
                    .unwrap_or(false);
                if up {
                    return;
                }
                last = v;
            }
            if Instant::now() >= deadline {
                panic!(
                    "natsmon target {target} not up in prometheus after {timeout:?}; last \
                     /api/v1/targets: {last:#}\n{}",
                    tail(&self.log(), 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// GET an API path; Ok(json) for 200, Err(description) otherwise.
    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let (status, v) = self.api_raw(path, query).await?;
        if status == 200 && v["status"] == "success" {
            Ok(v)
        } else {
            Err(format!("HTTP {status}: {v}"))
        }
    }

    /// GET an API path; (status, json body).
    async fn api_raw(&self, path: &str, query: &[(&str, &str)]) -> Result<(u16, Value), String> {
        let url = format!("{}{}", self.url(), path);
        let resp = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap()
            .get(&url)
            .query(query)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| format!("GET {url}: HTTP {status}, not JSON ({e}): {body}"))?;
        Ok((status, v))
    }

    /// Instant query at the current time.
    async fn query(&self, expr: &str) -> QueryOutcome {
        match self.api_raw("/api/v1/query", &[("query", expr)]).await {
            Err(e) => QueryOutcome::Failed {
                error_type: "transport".into(),
                error: e,
            },
            Ok((status, v)) => {
                if status != 200 || v["status"] != "success" {
                    return QueryOutcome::Failed {
                        error_type: v["errorType"].as_str().unwrap_or("?").to_string(),
                        error: format!(
                            "HTTP {status}: {}",
                            v["error"].as_str().unwrap_or(&v.to_string())
                        ),
                    };
                }
                let data = &v["data"];
                match data["resultType"].as_str() {
                    Some("vector") | Some("matrix") => {
                        let r = data["result"].as_array().cloned().unwrap_or_default();
                        if r.is_empty() {
                            QueryOutcome::Empty
                        } else {
                            QueryOutcome::Data {
                                series: r.len(),
                                first: r[0].to_string(),
                                all_nan: r.iter().all(|x| x["value"][1] == "NaN"),
                            }
                        }
                    }
                    // scalar / string: always a value.
                    _ => QueryOutcome::Data {
                        series: 1,
                        first: data["result"].to_string(),
                        all_nan: data["result"][1] == "NaN",
                    },
                }
            }
        }
    }

    /// `/api/v1/alerts` -> list of alerts.
    async fn alerts(&self) -> Vec<Value> {
        let v = self
            .api("/api/v1/alerts", &[])
            .await
            .unwrap_or_else(|e| panic!("GET /api/v1/alerts: {e}"));
        v["data"]["alerts"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "[prometheus_stack] test panicked; prometheus dir {} log tail:\n{}",
                self.dir.path().display(),
                tail(&self.log(), 40)
            );
        }
    }
}

#[derive(Debug, Clone)]
enum QueryOutcome {
    Data {
        series: usize,
        first: String,
        /// Every returned sample is NaN (e.g. a ratio of zero rates).
        all_nan: bool,
    },
    Empty,
    Failed {
        error_type: String,
        error: String,
    },
}

// ---------------------------------------------------------------------------
// Dashboard extraction
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct PanelExpr {
    dashboard: String,
    panel: String,
    ref_id: String,
    raw: String,
    min_interval: Option<u64>,
}

#[derive(Debug, Clone)]
struct Dashboard {
    file: String,
    json: Value,
}

fn dashboards() -> Vec<Dashboard> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("dashboards"))
        .expect("read dashboards/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards/*.json found");
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let json: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", p.display()));
            Dashboard {
                file: p.file_name().unwrap().to_string_lossy().into_owned(),
                json,
            }
        })
        .collect()
}

/// The datasource type a `$datasource`-style reference resolves to in this dashboard.
fn ds_type(d: &Dashboard, ds: &Value) -> Option<String> {
    if ds.is_null() {
        return None;
    }
    if let Some(t) = ds["type"].as_str() {
        return Some(t.to_string());
    }
    // Legacy string form: "${datasource}" or a datasource name.
    let s = ds.as_str()?;
    let var = s
        .trim_start_matches('$')
        .trim_matches(|c| c == '{' || c == '}');
    d.json["templating"]["list"]
        .as_array()?
        .iter()
        .find(|v| v["type"] == "datasource" && v["name"] == var)
        .and_then(|v| v["query"].as_str())
        .map(str::to_string)
}

fn parse_min_interval(v: &Value) -> Option<u64> {
    let s = v.as_str()?.trim().trim_start_matches('>');
    if s.is_empty() || s.starts_with('$') {
        return None;
    }
    parse_prom_duration(s).ok().map(|d| d.as_secs().max(1))
}

/// All Prometheus panel targets of a dashboard (rows and nested panels included).
fn prometheus_targets(d: &Dashboard) -> Vec<PanelExpr> {
    fn walk(d: &Dashboard, panels: &Value, out: &mut Vec<PanelExpr>) {
        for p in panels.as_array().into_iter().flatten() {
            walk(d, &p["panels"], out);
            let panel_ds = ds_type(d, &p["datasource"]);
            for t in p["targets"].as_array().into_iter().flatten() {
                let ty = ds_type(d, &t["datasource"]).or_else(|| panel_ds.clone());
                let Some(expr) = t["expr"].as_str() else {
                    continue;
                };
                match ty.as_deref() {
                    Some("prometheus") => {}
                    Some("loki") => continue,
                    other => panic!(
                        "{}: panel {:?} target {:?} has an unknown datasource type {other:?}",
                        d.file, p["title"], t["refId"]
                    ),
                }
                out.push(PanelExpr {
                    dashboard: d.file.clone(),
                    panel: p["title"].as_str().unwrap_or("").to_string(),
                    ref_id: t["refId"].as_str().unwrap_or("").to_string(),
                    raw: expr.to_string(),
                    min_interval: parse_min_interval(&t["interval"])
                        .or_else(|| parse_min_interval(&p["interval"])),
                });
            }
        }
    }
    let mut out = Vec::new();
    walk(d, &d.json["panels"], &mut out);
    out
}

/// Evaluate the dashboard's template variables against Prometheus, in order. Returns
/// (variable -> substitution for panel queries, failures).
async fn evaluate_variables(
    prom: &Prometheus,
    d: &Dashboard,
) -> (
    BTreeMap<String, String>,
    BTreeMap<String, String>,
    Vec<String>,
) {
    let mut subst = BTreeMap::new();
    let mut explicit = BTreeMap::new();
    let mut failures = Vec::new();
    let iv = intervals(None);
    for v in d.json["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = v["name"].as_str().unwrap_or("").to_string();
        let ty = v["type"].as_str().unwrap_or("");
        let values: Vec<String> = match ty {
            "datasource" => continue,
            "query" => {
                let q = v["query"]["query"]
                    .as_str()
                    .or_else(|| v["query"].as_str())
                    .or_else(|| v["definition"].as_str())
                    .unwrap_or("")
                    .to_string();
                let q_sub = match interpolate(&q, &subst, &iv) {
                    Ok(s) => s,
                    Err(e) => {
                        failures.push(format!("{} variable ${name}: {e}", d.file));
                        continue;
                    }
                };
                let (selector, label) = match parse_label_values(&q_sub) {
                    Ok(x) => x,
                    Err(e) => panic!("{} variable ${name}: {e}", d.file),
                };
                let path = format!("/api/v1/label/{label}/values");
                let mut params = Vec::new();
                if let Some(s) = &selector {
                    params.push(("match[]", s.as_str()));
                }
                match prom.api(&path, &params).await {
                    Err(e) => {
                        failures.push(format!(
                            "{} variable ${name}: query {q:?} -> {path}?match[]={:?} failed: {e}",
                            d.file, selector
                        ));
                        Vec::new()
                    }
                    Ok(r) => {
                        let vals: Vec<String> = r["data"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect();
                        if vals.is_empty() {
                            failures.push(format!(
                                "{} variable ${name}: query {q:?} (as {path}?match[]={}) \
                                 returned no values",
                                d.file,
                                selector.as_deref().unwrap_or("")
                            ));
                        } else {
                            eprintln!("[prometheus_stack] {} ${name} = {vals:?}", d.file);
                        }
                        vals
                    }
                }
            }
            "custom" => v["options"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["value"].as_str().map(str::to_string))
                .filter(|s| s != "$__all")
                .collect(),
            "constant" | "textbox" => vec![
                v["current"]["value"]
                    .as_str()
                    .or_else(|| v["query"].as_str())
                    .unwrap_or("")
                    .to_string(),
            ],
            "interval" => vec![
                v["query"]
                    .as_str()
                    .unwrap_or("1m")
                    .split(',')
                    .next()
                    .unwrap_or("1m")
                    .trim()
                    .to_string(),
            ],
            other => panic!(
                "{} variable ${name} has type {other:?}, which this test does not know how to \
                 evaluate; extend tests/prometheus_stack.rs",
                d.file
            ),
        };
        let include_all = v["includeAll"].as_bool().unwrap_or(false);
        let multi = v["multi"].as_bool().unwrap_or(false);
        let all_value = v["allValue"].as_str().unwrap_or("");
        // Every value selected one by one (not "All"): Grafana renders a multi-value
        // selection regex-escaped as (a|b|c).
        let every = if values.is_empty() {
            String::new()
        } else {
            format!(
                "({})",
                values
                    .iter()
                    .map(|x| regex_escape(x))
                    .collect::<Vec<_>>()
                    .join("|")
            )
        };
        let s = if include_all && !all_value.is_empty() {
            // "All" selected with a custom all value: substituted verbatim.
            all_value.to_string()
        } else if include_all || multi {
            // "All" without a custom value: every value.
            every.clone()
        } else {
            values.first().cloned().unwrap_or_default()
        };
        explicit.insert(
            name.clone(),
            if include_all || multi {
                every
            } else {
                s.clone()
            },
        );
        subst.insert(name, s);
    }
    (subst, explicit, failures)
}

#[derive(Debug, Clone)]
struct Checked {
    expr: PanelExpr,
    substituted: String,
    outcome: QueryOutcome,
}

/// Query `substituted`, retrying a few times while it is empty (a missed scrape on
/// this loaded 2-core machine must not make a rate window empty).
async fn query_with_retry(prom: &Prometheus, substituted: &str, tries: usize) -> QueryOutcome {
    let mut out = prom.query(substituted).await;
    for _ in 1..tries {
        if !matches!(out, QueryOutcome::Empty) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        out = prom.query(substituted).await;
    }
    out
}

/// Evaluate every variable and Prometheus panel target of every dashboard. Panics on
/// variables without values and on expressions that do not parse or execute. Returns
/// all checked expressions.
async fn check_dashboards(prom: &Prometheus) -> Vec<Checked> {
    let mut failures = Vec::new();
    let mut checked = Vec::new();
    let mut n_dash = 0;
    let mut n_explicit = 0;
    for d in dashboards() {
        let targets = prometheus_targets(&d);
        if targets.is_empty() {
            eprintln!(
                "[prometheus_stack] {}: no Prometheus targets, skipped",
                d.file
            );
            continue;
        }
        n_dash += 1;
        let (vars, explicit_vars, var_failures) = evaluate_variables(prom, &d).await;
        failures.extend(var_failures);
        for t in targets {
            let iv = intervals(t.min_interval);
            let substituted = match interpolate(&t.raw, &vars, &iv) {
                Ok(s) => s,
                Err(e) => {
                    failures.push(format!(
                        "{} / {:?} ({}): cannot substitute variables: {e}",
                        t.dashboard, t.panel, t.ref_id
                    ));
                    continue;
                }
            };
            let outcome = query_with_retry(prom, &substituted, 3).await;
            if let QueryOutcome::Failed { error_type, error } = &outcome {
                failures.push(format!(
                    "{} / panel {:?} ({}):\n    expression:  {}\n    substituted: {}\n    \
                     prometheus:  {error_type}: {error}",
                    t.dashboard, t.panel, t.ref_id, t.raw, substituted
                ));
            }
            // The same panel with every variable value selected explicitly instead of
            // "All": a matcher on a label the metric lacks (or with other values) matches
            // anything with `.*` but nothing with a value list.
            if matches!(outcome, QueryOutcome::Data { .. }) {
                let explicit = interpolate(&t.raw, &explicit_vars, &iv).unwrap();
                if explicit != substituted {
                    n_explicit += 1;
                    match query_with_retry(prom, &explicit, 3).await {
                        QueryOutcome::Data { .. } => {}
                        other => failures.push(format!(
                            "{} / panel {:?} ({}): returns data with \"All\" but not with every variable \
                             value selected:\n    expression:  {}\n    with All:    {}\n    \
                             explicit:    {}\n    result:      {other:?}",
                            t.dashboard, t.panel, t.ref_id, t.raw, substituted, explicit
                        )),
                    }
                }
            }
            checked.push(Checked {
                expr: t,
                substituted,
                outcome,
            });
        }
    }
    assert!(
        n_dash >= 3,
        "expected at least 3 Prometheus dashboards, found {n_dash}"
    );
    assert!(
        failures.is_empty(),
        "{} dashboard variable/expression failure(s) against Prometheus (bad_data = the \
         expression does not parse):\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "[prometheus_stack] {} Prometheus panel expressions parsed and executed; {n_explicit} \
         also returned data with every variable value selected explicitly",
        checked.len()
    );
    checked
}

// ---------------------------------------------------------------------------
// Rules health
// ---------------------------------------------------------------------------

/// Wait until Prometheus has evaluated every rule of the rules file a few times,
/// then assert each has `health: "ok"`.
async fn assert_rules_healthy(prom: &Prometheus) {
    let text = std::fs::read_to_string(rules_path()).unwrap();
    let expected: BTreeSet<String> = rule_alert_names(&text).into_iter().collect();
    assert!(
        expected.len() >= 10,
        "few alerts in rules file: {expected:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut errs_seen: BTreeMap<String, String> = BTreeMap::new();
    let mut first_all_evaluated: Option<Instant> = None;
    loop {
        let v = prom
            .api("/api/v1/rules", &[])
            .await
            .unwrap_or_else(|e| panic!("GET /api/v1/rules: {e}"));
        let mut names = BTreeSet::new();
        let mut unevaluated = Vec::new();
        let mut not_ok = Vec::new();
        for g in v["data"]["groups"].as_array().into_iter().flatten() {
            for r in g["rules"].as_array().into_iter().flatten() {
                let name = r["name"].as_str().unwrap_or("").to_string();
                names.insert(name.clone());
                let health = r["health"].as_str().unwrap_or("");
                let last = r["lastEvaluation"].as_str().unwrap_or("");
                if health == "unknown" || last.is_empty() || last.starts_with("0001-") {
                    unevaluated.push(name.clone());
                }
                if health == "err" {
                    let e = format!(
                        "{name} (group {}): {}\n    expr: {}",
                        g["name"].as_str().unwrap_or(""),
                        r["lastError"].as_str().unwrap_or(""),
                        r["query"].as_str().unwrap_or("")
                    );
                    errs_seen.insert(name.clone(), e.clone());
                    not_ok.push(e);
                }
            }
        }
        assert_eq!(
            names, expected,
            "Prometheus loaded a different set of rules than alerting_rules/natsmon.rules.yml \
             declares"
        );
        if unevaluated.is_empty() && first_all_evaluated.is_none() {
            first_all_evaluated = Some(Instant::now());
        }
        // "a few evaluations": 3 more evaluation intervals after the first complete one.
        if let Some(t) = first_all_evaluated
            && t.elapsed() >= Duration::from_secs(3 * SCRAPE_INTERVAL_SECS + 1)
        {
            assert!(
                not_ok.is_empty() && errs_seen.is_empty(),
                "alert rules failed to evaluate:\n{}\n(errors seen at any time: {:#?})",
                not_ok.join("\n"),
                errs_seen
            );
            eprintln!(
                "[prometheus_stack] all {} alert rules evaluate with health ok",
                names.len()
            );
            return;
        }
        if Instant::now() >= deadline {
            panic!("rules not all evaluated after 30s: {unevaluated:?}; errors: {errs_seen:#?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ---------------------------------------------------------------------------
// The stack
// ---------------------------------------------------------------------------

/// Only one stack at a time: this runs on a 2-core machine, and two clusters plus two
/// Prometheus servers in parallel make 1 s scrape/poll timings unreliable.
/// One real Prometheus stack at a time on a 2-core machine (the Alertmanager test takes it too).
pub static STACK_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Shipper {
    // Drop order: the container, then the Loki receiver and state dir.
    _container: Container,
    _setup: ShipperSetup,
}

struct Stack {
    // Drop order: Prometheus, natsmon, traffic, shipper, second cluster, cluster.
    prom: Prometheus,
    natsmon: Natsmon,
    traffic: tokio::task::JoinHandle<()>,
    clients: Vec<async_nats::Client>,
    _shipper: Option<Shipper>,
    _second: SecondCluster,
    cluster: Cluster,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.traffic.abort();
    }
}

/// The newest nats-server release of the version matrix: the stack runs on what users
/// run, where every panel's field exists. An empty matrix fails; it never skips.
fn newest_release() -> (String, PathBuf) {
    let key = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    nats_server_matrix()
        .into_iter()
        .max_by_key(|(v, _)| key(v))
        .expect("the nats-server version matrix (NATSMON_TEST_NATS_SERVERS) is empty")
}

/// The second cluster `c2`: one nats-server (no JetStream) joined to the harness
/// cluster by a gateway, so the gateway panel and the `cluster` variable have data. Its
/// client listener has TLS, which is what makes `/varz` report `tls_cert_not_after`.
struct SecondCluster {
    child: Child,
    dir: tempfile::TempDir,
    http_port: u16,
}

impl SecondCluster {
    /// Start the server with a fresh self-signed certificate, its gateway listening on
    /// `gateway_port` (which the harness cluster's gateways point to) and connecting to
    /// `c1_gateways`.
    fn start(bin: &Path, gateway_port: u16, c1_gateways: &[String]) -> SecondCluster {
        let dir = new_tempdir("natsmon-c2-");
        self_signed_cert(dir.path());
        let http_port = free_port();
        let urls: Vec<String> = c1_gateways.iter().map(|u| format!("\"{u}\"")).collect();
        // The same accounts as the harness cluster (without JetStream), so that the
        // system account and the accounts match across the gateway.
        let conf = format!(
            "server_name: {SECOND_NODE}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{http_port}\n\
             tls {{ cert_file: \"{d}/cert.pem\", key_file: \"{d}/key.pem\" }}\n\
             cluster {{ name: {SECOND_CLUSTER}, listen: 127.0.0.1:{route} }}\n\
             gateway {{ name: {SECOND_CLUSTER}, listen: 127.0.0.1:{gateway_port}, \
             gateways: [ {{ name: {CLUSTER_NAME}, urls: [ {urls} ] }} ] }}\n\
             system_account: SYS\naccounts {{\n  SYS {{ users: [ {{ user: sys, password: sys }} ] }}\n  \
             A {{ users: [ {{ user: a2, password: a }} ] }}\n  \
             B {{ users: [ {{ user: b2, password: b }} ] }}\n}}\n",
            client = free_port(),
            route = free_port(),
            d = dir.path().display(),
            urls = urls.join(", "),
        );
        let conf_path = dir.path().join("x1.conf");
        std::fs::write(&conf_path, conf).expect("write c2 config");
        let log = std::fs::File::create(dir.path().join("x1.log")).expect("create c2 log");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf_path)
            .env("GOMEMLIMIT", GOMEMLIMIT)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        SecondCluster {
            child,
            dir,
            http_port,
        }
    }

    fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }
}

impl Drop for SecondCluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("x1.log")).unwrap_or_default();
            eprintln!(
                "[prometheus_stack] {SECOND_NODE} log tail:\n{}",
                tail(&log, 30)
            );
        }
    }
}

/// After the kill of n3, before the meta leader has noticed it (it takes tens of
/// seconds without a shutdown event), an R2 stream can still be placed on n3: the
/// harness tags every node with its pairs, and the stream asks for `pair:13` or
/// `pair:23`, so it lands on n3 and one live node. Its live replica can never elect a
/// leader nor commit, so that node's `/healthz?details=true` reports the stream
/// unhealthy for as long as n3 is down: the failure the health-check panel exists for.
/// (Left to itself, placement preferred n1 and n2 every time in one CI-like run.)
async fn strand_a_stream(cluster: &Cluster, client: &async_nats::Client) {
    // A request to a dead meta leader times out too: wait for a live one first.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(cluster.meta_leader(0).await, Some(l) if l != KILLED_NODE_LABEL) {
        assert!(
            Instant::now() < deadline,
            "no meta leader besides {KILLED_NODE_LABEL} after 30s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let js = jetstream::new(client.clone());
    for i in 0..8 {
        let name = format!("STRANDED{i}");
        let created = tokio::time::timeout(
            Duration::from_secs(3),
            js.create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![format!("stranded{i}.>")],
                num_replicas: 2,
                placement: Some(stream::Placement {
                    tags: vec![if i % 2 == 0 { "pair:13" } else { "pair:23" }.into()],
                    ..Default::default()
                }),
                ..Default::default()
            }),
        )
        .await;
        match created {
            Ok(Ok(_)) => {
                let _ = js.delete_stream(&name).await;
            }
            // No answer: the stream has no leader, it was placed on the dead node.
            Ok(Err(e))
                if !e.to_string().contains("insufficient resources")
                    && !e.to_string().contains("no suitable peers") =>
            {
                eprintln!("[prometheus_stack] {name}: {e}; taken as placed on {KILLED_NODE_LABEL}");
                return;
            }
            Err(_) => {
                eprintln!("[prometheus_stack] {name} has no leader: placed on {KILLED_NODE_LABEL}");
                return;
            }
            Ok(Err(e)) => panic!(
                "{name}: {e}: the meta leader already knows {KILLED_NODE_LABEL} is down; \
                 no stream can be stranded on it"
            ),
        }
    }
    panic!("8 R2 streams were all placed on the live nodes");
}

/// Streams, consumers and traffic so that every stream/consumer panel has data.
async fn create_traffic(
    cluster: &Cluster,
) -> (tokio::task::JoinHandle<()>, Vec<async_nats::Client>) {
    let a = connect(cluster, "a", "a").await;
    let js = jetstream::new(a.clone());
    let orders = js
        .create_stream(stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.>".into()],
            num_replicas: 3,
            max_bytes: 64 << 20,
            max_messages: 100_000,
            max_consumers: 10,
            max_messages_per_subject: 10_000,
            max_age: Duration::from_secs(3600),
            ..Default::default()
        })
        .await
        .expect("create R3 stream ORDERS");
    js.create_stream(stream::Config {
        name: "ORDERS_AGG".into(),
        num_replicas: 3,
        sources: Some(vec![stream::Source {
            name: "ORDERS".into(),
            ..Default::default()
        }]),
        ..Default::default()
    })
    .await
    .expect("create sourced stream ORDERS_AGG");
    for i in 0..200 {
        js.publish(format!("orders.{}", i % 10), format!("order {i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // An interior delete.
    orders
        .delete_message(50)
        .await
        .expect("delete ORDERS message 50");

    // Durable pull consumer: 30 delivered, 10 acknowledged -> pending and ack-pending.
    let worker: jetstream::consumer::Consumer<pull::Config> = orders
        .create_consumer(pull::Config {
            durable_name: Some("worker".into()),
            max_ack_pending: 100,
            ack_wait: Duration::from_secs(3600),
            ..Default::default()
        })
        .await
        .expect("create consumer worker");
    let mut batch = worker
        .fetch()
        .max_messages(30)
        .messages()
        .await
        .expect("fetch");
    let mut got = 0;
    while let Some(m) = batch.next().await {
        let m = m.expect("message");
        if got < 10 {
            m.ack().await.expect("ack");
        }
        got += 1;
    }
    assert_eq!(got, 30, "fetched messages");
    // A filtered durable that delivered nothing yet.
    orders
        .create_consumer(pull::Config {
            durable_name: Some("audit".into()),
            filter_subject: "orders.1".into(),
            ..Default::default()
        })
        .await
        .expect("create consumer audit");

    // Account B: a stream and a few connections.
    let b = connect(cluster, "b", "b").await;
    let jsb = jetstream::new(b.clone());
    jsb.create_stream(stream::Config {
        name: "EVENTS".into(),
        subjects: vec!["events.>".into()],
        ..Default::default()
    })
    .await
    .expect("create stream EVENTS in account B");
    for _ in 0..5 {
        jsb.publish("events.x", "e".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let b2 = connect(cluster, "b", "b").await;
    let _sub = b2.subscribe("events.live").await.unwrap();

    // Background traffic for the rate panels: JetStream publishes in A (their acks
    // are awaited with a timeout, errors ignored: a node is killed later), core
    // messages in B.
    let (js_bg, b_bg) = (js.clone(), b.clone());
    let traffic = tokio::spawn(async move {
        let _sub = _sub;
        let mut i = 0u64;
        loop {
            if let Ok(ack) = js_bg
                .publish(format!("orders.{}", i % 10), format!("bg {i}").into())
                .await
            {
                let _ = tokio::time::timeout(Duration::from_secs(2), ack).await;
            }
            let _ = b_bg.publish("events.live", "x".into()).await;
            i += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    (traffic, vec![a, b, b2])
}

async fn start_stack(with_shipper: bool) -> Stack {
    let (version, bin) = newest_release();
    eprintln!(
        "[prometheus_stack] nats-server {version} ({})",
        bin.display()
    );
    let c2_gateway = free_port();
    let mut cluster = Cluster::spawn_with_gateway(
        bin.clone(),
        GatewayTo {
            name: SECOND_CLUSTER.into(),
            url: format!("nats://127.0.0.1:{c2_gateway}"),
        },
        &[("GOMEMLIMIT", GOMEMLIMIT)],
    )
    .await;
    let second = SecondCluster::start(&bin, c2_gateway, &cluster.gateway_urls());
    cluster.wait_healthy_all(CLUSTER_START_TIMEOUT).await;
    let (traffic, clients) = create_traffic(&cluster).await;

    let mut a = natsmon_args(
        &cluster,
        ("1s", "800ms"),
        &["--connection-metrics-limit", "5"],
    );
    a.push("--nats-url".into());
    a.push(format!("{SECOND_NODE}={}", second.monitor_url()));

    let shipper = if with_shipper {
        // One container logging nats-server style lines (5/s) on the real dockerd,
        // shipped to the test Loki receiver.
        let setup = ShipperSetup::start("promstack").await;
        let container = tokio::task::spawn_blocking({
            let name = setup.prefix.clone();
            move || {
                Container::run(
                    &name,
                    &[],
                    &docker::as_strs(&docker::nats_style_log_cmd(1_000_000, 200)),
                )
            }
        })
        .await
        .unwrap();
        a.extend(setup.args(&[]));
        Some(Shipper {
            _container: container,
            _setup: setup,
        })
    } else {
        None
    };

    let natsmon = Natsmon::start(&a).await;
    // natsmon sees all nodes, the consumers and the source before Prometheus starts.
    wait_for(&natsmon.base_url(), Duration::from_secs(30), |e| {
        e.sum("nats_up", &[]) == 4.0
            && e.has("nats_gateway_connections")
            && e.get(
                "nats_consumer_num_ack_pending",
                &[("stream", "ORDERS"), ("consumer", "worker")],
            ) == Some(20.0)
            && e.has("nats_stream_source_lag")
            && e.has("nats_jetstream_meta_replica_current")
            && (!with_shipper || e.has("natsmon_logs_lines_sent_total"))
    })
    .await;

    let mut prom = Prometheus::start(&natsmon.listen, &rules_path());
    prom.wait_ready(Duration::from_secs(30)).await;
    prom.wait_target_up(&natsmon.listen, Duration::from_secs(30))
        .await;
    Stack {
        prom,
        natsmon,
        traffic,
        clients,
        _shipper: shipper,
        _second: second,
        cluster,
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboards_return_data_and_node_down_alert_fires() {
    let _guard = STACK_LOCK.lock().await;
    let started = Instant::now();
    let mut stack = start_stack(true).await;
    eprintln!(
        "[prometheus_stack] stack up in {:.1}s; scraping for {SCRAPE_WARMUP:?}",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(SCRAPE_WARMUP).await;

    // --- 1. healthy cluster: parse + data ------------------------------------------
    let checked = check_dashboards(&stack.prom).await;
    let empty_healthy: Vec<&Checked> = checked
        .iter()
        .filter(|c| matches!(c.outcome, QueryOutcome::Empty))
        .collect();
    eprintln!(
        "[prometheus_stack] healthy cluster: {} of {} expressions empty:\n{}",
        empty_healthy.len(),
        checked.len(),
        empty_healthy
            .iter()
            .map(|c| format!(
                "    {} / {:?}: {}",
                c.expr.dashboard, c.expr.panel, c.expr.raw
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Diagnostics only: expressions whose every value is NaN (e.g. a ratio of rates
    // that are all zero in the window). They do return data, so they pass.
    let nan_only: Vec<String> = checked
        .iter()
        .filter(|c| matches!(c.outcome, QueryOutcome::Data { all_nan: true, .. }))
        .map(|c| {
            format!(
                "    {} / {:?}: {}",
                c.expr.dashboard, c.expr.panel, c.expr.raw
            )
        })
        .collect();
    eprintln!(
        "[prometheus_stack] {} expressions return only NaN right now:\n{}",
        nan_only.len(),
        nan_only.join("\n")
    );

    // --- 2. NatsNodeDown --------------------------------------------------------------
    let rules_text = std::fs::read_to_string(rules_path()).unwrap();
    let for_str = rule_field(&rules_text, "NatsNodeDown", "for")
        .expect("NatsNodeDown has a `for:` in the rules file");
    let for_dur = parse_prom_duration(&for_str).unwrap();
    let severity = rule_field(&rules_text, "NatsNodeDown", "severity")
        .expect("NatsNodeDown has a severity label in the rules file");

    let before: Vec<Value> = stack
        .prom
        .alerts()
        .await
        .into_iter()
        .filter(|a| a["labels"]["alertname"] == "NatsNodeDown")
        .collect();
    assert!(
        before.is_empty(),
        "NatsNodeDown is pending/firing on a healthy cluster: {before:#?}"
    );

    stack.cluster.kill(KILLED_NODE);
    let killed_at = Instant::now();
    strand_a_stream(&stack.cluster, &stack.clients[0]).await;
    eprintln!(
        "[prometheus_stack] killed node {KILLED_NODE_LABEL}; waiting up to {:?} for \
         NatsNodeDown (for: {for_str}) to fire",
        for_dur + Duration::from_secs(30)
    );
    let deadline = killed_at + for_dur + Duration::from_secs(30);
    let mut pending_at: Option<Duration> = None;
    let firing = loop {
        let alerts = stack.prom.alerts().await;
        let down: Vec<&Value> = alerts
            .iter()
            .filter(|a| a["labels"]["alertname"] == "NatsNodeDown")
            .collect();
        for a in &down {
            assert_eq!(
                a["labels"]["node"], KILLED_NODE_LABEL,
                "NatsNodeDown for a node that is up: {a:#}"
            );
        }
        if let Some(a) = down.first() {
            match a["state"].as_str() {
                Some("pending") if pending_at.is_none() => {
                    pending_at = Some(killed_at.elapsed());
                }
                Some("firing") => break (*a).clone(),
                _ => {}
            }
        }
        if Instant::now() >= deadline {
            panic!(
                "NatsNodeDown{{node=\"{KILLED_NODE_LABEL}\"}} did not fire within {:?} of the \
                 kill (pending after {pending_at:?}); last /api/v1/alerts: {:#?}",
                deadline - killed_at,
                alerts
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let fired_after = killed_at.elapsed();
    eprintln!(
        "[prometheus_stack] NatsNodeDown pending after {pending_at:?}, firing after \
         {fired_after:?}: {firing:#}"
    );
    assert!(
        pending_at.is_some(),
        "NatsNodeDown was never seen pending before firing (for: {for_str})"
    );
    assert!(
        fired_after >= for_dur,
        "NatsNodeDown fired {fired_after:?} after the kill, before its for: {for_str}"
    );
    let labels = &firing["labels"];
    assert_eq!(labels["node"], KILLED_NODE_LABEL, "{firing:#}");
    assert_eq!(labels["severity"], severity.as_str(), "{firing:#}");
    assert_eq!(labels["job"], "natsmon", "{firing:#}");
    assert_eq!(
        labels["instance"],
        stack.natsmon.listen.as_str(),
        "{firing:#}"
    );

    // --- 3. node down: failure panels must have data now --------------------------
    let mut empty_final: Vec<(&Checked, QueryOutcome)> = Vec::new();
    let mut failed_after = Vec::new();
    for c in &empty_healthy {
        let out = query_with_retry(&stack.prom, &c.substituted, 3).await;
        match &out {
            QueryOutcome::Empty => empty_final.push((*c, out.clone())),
            QueryOutcome::Failed { error_type, error } => failed_after.push(format!(
                "{} / {:?}: {} -> {error_type}: {error}",
                c.expr.dashboard, c.expr.panel, c.substituted
            )),
            QueryOutcome::Data { .. } => {}
        }
    }
    assert!(
        failed_after.is_empty(),
        "expressions failed with a node down:\n{}",
        failed_after.join("\n")
    );

    let unexpected: Vec<String> = empty_final
        .iter()
        .map(|(c, _)| {
            format!(
                "{} / panel {:?} ({}):\n    expression:  {}\n    substituted: {}",
                c.expr.dashboard, c.expr.panel, c.expr.ref_id, c.expr.raw, c.substituted
            )
        })
        .collect();
    let data_sample: Vec<String> = checked
        .iter()
        .filter_map(|c| match &c.outcome {
            QueryOutcome::Data { series, first, .. } => Some(format!(
                "    [{series}] {}  e.g. {}",
                c.substituted,
                first.chars().take(160).collect::<String>()
            )),
            _ => None,
        })
        .take(5)
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} dashboard expression(s) returned NO DATA (neither on the healthy cluster nor \
         with {KILLED_NODE_LABEL} down):\n{}\n\n(sample of \
         expressions with data:\n{})",
        unexpected.len(),
        unexpected.join("\n"),
        data_sample.join("\n")
    );
    eprintln!(
        "[prometheus_stack] {} expressions checked, all with data; {} only with \
         {KILLED_NODE_LABEL} down",
        checked.len(),
        empty_healthy.len(),
    );

    // --- 4. every rule still evaluates cleanly (node down, shipper on) ----------------
    assert_rules_healthy(&stack.prom).await;
    eprintln!(
        "[prometheus_stack] done in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alert_rules_evaluate_without_errors() {
    let _guard = STACK_LOCK.lock().await;
    let started = Instant::now();
    let stack = start_stack(false).await;
    // A few scrapes so that rate()/increase()/deriv() windows have samples.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_rules_healthy(&stack.prom).await;
    eprintln!(
        "[prometheus_stack] rules test done in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------
// Unit tests of the helpers
// ---------------------------------------------------------------------------

#[test]
fn prometheus_durations() {
    assert_eq!(parse_prom_duration("1m").unwrap(), Duration::from_secs(60));
    assert_eq!(
        parse_prom_duration("1h30m").unwrap(),
        Duration::from_secs(5400)
    );
    assert_eq!(
        parse_prom_duration("500ms").unwrap(),
        Duration::from_millis(500)
    );
}

#[test]
fn rules_file_helpers() {
    let text = std::fs::read_to_string(rules_path()).unwrap();
    let names = rule_alert_names(&text);
    assert!(names.contains(&"NatsNodeDown".to_string()), "{names:?}");
    let f = rule_field(&text, "NatsNodeDown", "for").expect("for");
    parse_prom_duration(&f).unwrap();
    assert!(rule_field(&text, "NatsNodeDown", "severity").is_some());
}
