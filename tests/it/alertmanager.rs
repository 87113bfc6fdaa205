//! "One page per problem", proven with the REAL components: a 3-node nats-server 2.9
//! cluster (harness [`Cluster`]) with R3 streams and consumers under traffic, natsmon, a
//! real Prometheus 2.42 (`/usr/bin/prometheus` or `$PROMETHEUS_BIN`) evaluating
//! `alerting_rules/natsmon.rules.yml`, and Debian's Alertmanager 0.25
//! (`/usr/bin/prometheus-alertmanager`, `alertmanager` on `$PATH`, or `$ALERTMANAGER_BIN`)
//! running `deploy/alertmanager/alertmanager.yml`, whose receivers send to a webhook
//! receiver in this test that records every notification (groupKey, alerts).
//!
//! `one_node_down_pages_once` kills one node (not the meta leader, so that no meta
//! election races the scaled timers) and asserts:
//! - exactly ONE notification arrives, for ONE group: NatsNodeDown of that node, routed to
//!   the critical receiver, carrying the node's server name as `peer`;
//! - meanwhile Prometheus (`/api/v1/alerts`) has the replica alerts firing for every
//!   stream (NatsStreamReplicaOffline or NatsStreamReplicaNotCurrent, `peer` = the dead
//!   server), and the consumer and meta peer ones as they come;
//! - Alertmanager (`/api/v2/alerts?inhibited=true`) has each of them `suppressed`, inhibited
//!   by NatsNodeDown.
//!
//! To keep the test to a couple of minutes, the test copies of the rules and of the
//! Alertmanager config have every `for:` and every group timer (`group_wait`,
//! `group_interval`, `repeat_interval`) divided by [`SCALE`]; nothing else changes (range
//! windows, thresholds, matchers and inhibit rules are the bundled ones). natsmon is given
//! node names (`mon-1`..`mon-3`) that differ from the server names (`n1`..`n3`), so the
//! test also shows that `peer` is the server name (from `nats_node_info`), not the node.
//!
//! The other tests check the config statically: inhibit rules name real alerts and cover
//! every replica/peer alert, and every severity has a route.
//!
//! The tests PANIC (never skip) if alertmanager, prometheus or nats-server is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use serde_json::Value;

use crate::harness::http::http_get;
use crate::harness::{
    Cluster, Natsmon, connect, create_stream, free_port, new_tempdir, read_repo, tail, until_ok,
    wait_for,
};

const RULES: &str = "alerting_rules/natsmon.rules.yml";
const AM_CONFIG: &str = "deploy/alertmanager/alertmanager.yml";

/// Every `for:` and Alertmanager group timer of the test copies is divided by this.
const SCALE: u32 = 6;
/// Prometheus scrape and evaluation interval; natsmon polls every second too.
const SCRAPE_SECS: u64 = 1;
/// How long the healthy cluster runs under traffic before a node is killed.
const HEALTHY_PHASE: Duration = Duration::from_secs(15);

const STREAMS: &[&str] = &["ORDERS", "PAYMENTS", "SHIPMENTS", "AUDIT"];
const CONSUMERS: &[(&str, &str)] = &[
    ("ORDERS", "worker"),
    ("ORDERS", "archiver"),
    ("PAYMENTS", "worker"),
    ("PAYMENTS", "archiver"),
    ("SHIPMENTS", "worker"),
    ("AUDIT", "worker"),
];

/// The alerts a dead node causes about its replicas and its meta group peer; each must
/// be inhibited by NatsNodeDown (`equal: [job, instance, peer]`).
const REPLICA_ALERTS: &[&str] = &[
    "NatsStreamReplicaOffline",
    "NatsStreamReplicaNotCurrent",
    "NatsConsumerReplicaOffline",
    "NatsConsumerReplicaNotCurrent",
    "NatsJetStreamMetaPeerOffline",
];

// ---------------------------------------------------------------------------------------
// Durations and the scaled test copies

/// Parse a Prometheus/Alertmanager duration (`1m`, `90s`, `1h30m`, `500ms`, `2d`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim().trim_matches('"').trim_matches('\'');
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("duration {s:?}: number without unit"))?;
        if n_end == 0 {
            return Err(format!("duration {s:?}: expected a number"));
        }
        let n: u64 = rest[..n_end].parse().map_err(|e| format!("{s:?}: {e}"))?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms = match &rest[..u_end] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            u => return Err(format!("duration {s:?}: unknown unit {u:?}")),
        };
        rest = &rest[u_end..];
        total_ms += n * ms;
    }
    Ok(Duration::from_millis(total_ms))
}

/// A duration as Prometheus and Alertmanager read it (`10s`, or `1500ms`).
fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `text` with the value of every `key: <duration>` line (for each key of `keys`)
/// divided by `factor`. Returns the text and how many lines were rewritten.
fn scale_durations(text: &str, keys: &[&str], factor: u32) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut n = 0;
    for line in text.lines() {
        let t = line.trim_start();
        let ind = &line[..line.len() - t.len()];
        let hit = keys.iter().find_map(|k| {
            let v = t.strip_prefix(&format!("{k}:"))?;
            let v = v.split(" #").next().unwrap_or("").trim();
            parse_duration(v).ok().map(|d| (k, d))
        });
        match hit {
            Some((k, d)) => {
                out.push_str(&format!("{ind}{k}: {}", fmt_duration(d / factor)));
                n += 1;
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    (out, n)
}

/// The Alertmanager config with a webhook integration (`url`) added to every receiver of
/// its `receivers:` section (the bundled receivers are placeholders without one).
/// Returns the text and the receiver names.
fn inject_webhook(text: &str, url: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len() + 256);
    let mut names = Vec::new();
    let mut in_receivers = false;
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if !line.starts_with(' ') && !line.starts_with('#') && !line.trim().is_empty() {
            in_receivers = line.trim_end() == "receivers:";
            continue;
        }
        if in_receivers && let Some(name) = line.strip_prefix("  - name: ") {
            names.push(name.trim().trim_matches('"').to_string());
            out.push_str(&format!(
                "    webhook_configs:\n      - url: {url}\n        send_resolved: true\n"
            ));
        }
    }
    (out, names)
}

/// Alert names of a rules file, in file order.
fn rule_alerts(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("- alert:"))
        .map(|n| n.trim().trim_matches('"').to_string())
        .collect()
}

/// Every `alertname` matcher value (`=`, `!=`, `=~`) of the Alertmanager config, with the
/// 1-based line number; comments are ignored.
fn alertname_matchers(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or("");
        let mut rest = code;
        while let Some(p) = rest.find("alertname") {
            let after = &rest[p + "alertname".len()..];
            let Some(q1) = after.find('"') else { break };
            let Some(q2) = after[q1 + 1..].find('"') else {
                break;
            };
            out.push((i + 1, after[q1 + 1..q1 + 1 + q2].to_string()));
            rest = &after[q1 + 1 + q2 + 1..];
        }
    }
    out
}

/// The alert names a matcher value stands for: literal alternatives must be alerts of the
/// rules, `Prefix.+` / `Prefix.*` alternatives must match at least one.
fn expand_matcher(value: &str, alerts: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for alt in value.split('|') {
        if let Some(prefix) = alt.strip_suffix(".+").or_else(|| alt.strip_suffix(".*")) {
            let hits: Vec<String> = alerts
                .iter()
                .filter(|a| a.starts_with(prefix) && a.len() > prefix.len())
                .cloned()
                .collect();
            if hits.is_empty() {
                return Err(format!("{alt:?} matches no alert of {RULES}"));
            }
            out.extend(hits);
        } else if alt.chars().all(|c| c.is_ascii_alphanumeric()) {
            if !alerts.iter().any(|a| a == alt) {
                return Err(format!("{alt:?} is no alert of {RULES}"));
            }
            out.push(alt.to_string());
        } else {
            return Err(format!(
                "{alt:?}: use alert names or Prefix.+ (this test checks them against {RULES})"
            ));
        }
    }
    Ok(out)
}

/// The inhibit rule whose source is `alertname="<source>"`: (target alertname matcher
/// value, `equal` labels).
fn inhibit_rule(text: &str, source: &str) -> Option<(String, Vec<String>)> {
    let start = text.find(&format!("alertname=\"{source}\""))?;
    let block = &text[start..];
    let end = block.find("equal:")?;
    let eq_line = block[end..].lines().next()?;
    let equal = eq_line["equal:".len()..]
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let targets_at = block[..end].find("target_matchers:")?;
    let target = alertname_matchers(&block[targets_at..end])
        .into_iter()
        .next()?
        .1;
    Some((target, equal))
}

// ---------------------------------------------------------------------------------------
// Static checks of the bundled config

#[test]
fn inhibit_rules_name_real_alerts_and_cover_every_replica_alert() {
    let alerts = rule_alerts(&read_repo(RULES));
    let am = read_repo(AM_CONFIG);
    let mut errs = Vec::new();
    let matchers = alertname_matchers(&am);
    assert!(
        matchers.len() >= 6,
        "expected the inhibit rules' alertname matchers in {AM_CONFIG}: {matchers:?}"
    );
    for (line, value) in &matchers {
        if let Err(e) = expand_matcher(value, &alerts) {
            errs.push(format!("{AM_CONFIG}:{line}: {e}"));
        }
    }

    // NatsNodeDown inhibits every replica and meta peer alert, by `peer`.
    match inhibit_rule(&am, "NatsNodeDown") {
        None => errs.push(format!(
            "{AM_CONFIG}: no inhibit rule with source NatsNodeDown"
        )),
        Some((target, equal)) => {
            let covered: BTreeSet<String> = expand_matcher(&target, &alerts)
                .unwrap_or_default()
                .into_iter()
                .collect();
            for a in alerts
                .iter()
                .filter(|a| a.contains("Replica") || a.starts_with("NatsJetStreamMetaPeer"))
            {
                if !covered.contains(a) {
                    errs.push(format!(
                        "{a} is a replica/peer alert, but NatsNodeDown does not inhibit it"
                    ));
                }
            }
            for a in REPLICA_ALERTS {
                if !covered.contains(*a) {
                    errs.push(format!("NatsNodeDown does not inhibit {a}"));
                }
            }
            if !equal.iter().any(|l| l == "peer") {
                errs.push(format!(
                    "NatsNodeDown's inhibit rule has equal: {equal:?}, without peer"
                ));
            }
        }
    }
    // NatsmonDown inhibits everything else of the same natsmon.
    match inhibit_rule(&am, "NatsmonDown") {
        None => errs.push(format!(
            "{AM_CONFIG}: no inhibit rule with source NatsmonDown"
        )),
        Some((_, equal)) => {
            if equal != ["job", "instance"] {
                errs.push(format!("NatsmonDown's inhibit rule has equal: {equal:?}"));
            }
        }
    }
    // Grouping by alert and cluster, never by object.
    let group_by = am
        .lines()
        .find_map(|l| l.trim().strip_prefix("group_by:"))
        .unwrap_or("")
        .trim()
        .to_string();
    if group_by != "[alertname, cluster]" {
        errs.push(format!(
            "group_by is {group_by:?}, expected [alertname, cluster]"
        ));
    }
    assert!(
        errs.is_empty(),
        "Alertmanager config problems:\n  {}",
        errs.join("\n  ")
    );
}

#[test]
fn every_severity_is_routed_to_a_placeholder_receiver() {
    let rules = read_repo(RULES);
    let am = read_repo(AM_CONFIG);
    let severities: BTreeSet<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("severity:"))
        .map(|s| s.trim().to_string())
        .collect();
    assert!(severities.contains("critical"), "{severities:?}");
    for s in &severities {
        assert!(
            am.contains(&format!("- severity=\"{s}\"")),
            "{AM_CONFIG} has no route for severity {s}"
        );
    }
    // The receivers are documented placeholders without an integration.
    let (_, receivers) = inject_webhook(&am, "http://127.0.0.1:1/");
    assert!(receivers.len() >= 2, "receivers: {receivers:?}");
    assert!(
        am.contains("RECEIVER PLACEHOLDER"),
        "{AM_CONFIG} documents its receiver placeholders"
    );
    let code: String = am
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !code.contains("_configs:"),
        "the bundled receivers must stay placeholders (the user fills them in)"
    );
}

#[test]
fn test_copies_scale_timers_and_add_the_webhook() {
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(fmt_duration(Duration::from_millis(1500)), "1500ms");
    let (rules, n) = scale_durations(&read_repo(RULES), &["for"], SCALE);
    let fors = read_repo(RULES)
        .lines()
        .filter(|l| l.trim_start().starts_with("for:"))
        .count();
    assert_eq!(n, fors, "every for: is scaled");
    assert!(rules.contains("        for: 10s\n"), "1m / 6 = 10s");
    let (am, n) = scale_durations(
        &read_repo(AM_CONFIG),
        &["group_wait", "group_interval", "repeat_interval"],
        SCALE,
    );
    assert!(n >= 3, "{am}");
    assert!(
        am.contains("group_wait: 5s") && am.contains("group_interval: 50s"),
        "{am}"
    );
    let (am, names) = inject_webhook(&am, "http://127.0.0.1:9/hook");
    assert_eq!(names, ["natsmon-page", "natsmon-notify"]);
    assert_eq!(
        am.matches("- url: http://127.0.0.1:9/hook").count(),
        2,
        "{am}"
    );
}

// ---------------------------------------------------------------------------------------
// Processes

fn find_bin(env: &str, candidates: &[&str], what: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "${env}={} does not exist", p.display());
        return p;
    }
    for c in candidates {
        if c.contains('/') {
            if Path::new(c).is_file() {
                return PathBuf::from(c);
            }
        } else if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                if dir.join(c).is_file() {
                    return dir.join(c);
                }
            }
        }
    }
    panic!(
        "\n\n*** {what} NOT FOUND (looked at ${env}, {candidates:?}).\n*** {} This test never \
         skips.\n\n",
        match env {
            "ALERTMANAGER_BIN" => "Install it with `apt-get install -y prometheus-alertmanager`.",
            _ => "Install it with `apt-get install -y prometheus` (Debian ships 2.42).",
        }
    );
}

/// A server process (Prometheus or Alertmanager) on 127.0.0.1:`port`, killed on drop.
struct Server {
    name: &'static str,
    child: Option<Child>,
    port: u16,
    log_path: PathBuf,
}

impl Server {
    fn spawn(name: &'static str, bin: &Path, args: &[String], dir: &Path, port: u16) -> Server {
        let log_path = dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).expect("create log");
        let child = Command::new(bin)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("failed to spawn {}: {e}", bin.display()));
        Server {
            name,
            child: Some(child),
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

    async fn wait_ready(&mut self, timeout: Duration) {
        let url = format!("{}/-/ready", self.url());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{} exited during startup ({st}):\n{}",
                    self.name,
                    tail(&self.log(), 60)
                );
            }
            if let Ok((200, _)) = http_get(&url).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready after {timeout:?}:\n{}",
                self.name,
                tail(&self.log(), 60)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn get(&self, path_and_query: &str) -> Value {
        let url = format!("{}{path_and_query}", self.url());
        let (status, body) = http_get(&url).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status, 200, "GET {url}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: bad JSON ({e}): {body}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "[alertmanager] {} log tail:\n{}",
                self.name,
                tail(&self.log(), 50)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The webhook receiver

#[derive(Debug, Clone)]
struct Notification {
    after: Duration,
    receiver: String,
    group_key: String,
    status: String,
    alerts: Vec<Value>,
}

type Received = Arc<Mutex<Vec<Notification>>>;

/// Records every Alertmanager webhook notification POSTed to `/hook`.
struct Webhook {
    url: String,
    got: Received,
    task: tokio::task::JoinHandle<()>,
}

impl Webhook {
    async fn start(t0: Instant) -> Webhook {
        // Port 0: a port picked first and bound later can be taken meanwhile (it was, once).
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap_or_else(|e| panic!("bind webhook receiver on 127.0.0.1: {e}"));
        let port = listener.local_addr().expect("webhook address").port();
        let got: Received = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state((got.clone(), t0));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("webhook receiver");
        });
        Webhook {
            url: format!("http://127.0.0.1:{port}/hook"),
            got,
            task,
        }
    }

    fn notifications(&self) -> Vec<Notification> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    axum::extract::State((got, t0)): axum::extract::State<(Received, Instant)>,
    body: String,
) -> axum::http::StatusCode {
    let v: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("[alertmanager] webhook: not JSON ({e}): {body}");
            return axum::http::StatusCode::BAD_REQUEST;
        }
    };
    let n = Notification {
        after: t0.elapsed(),
        receiver: v["receiver"].as_str().unwrap_or("").to_string(),
        group_key: v["groupKey"].as_str().unwrap_or("").to_string(),
        status: v["status"].as_str().unwrap_or("").to_string(),
        alerts: v["alerts"].as_array().cloned().unwrap_or_default(),
    };
    eprintln!(
        "[alertmanager] webhook notification at {:.1}s: receiver {} group {} status {} alerts {:?}",
        n.after.as_secs_f64(),
        n.receiver,
        n.group_key,
        n.status,
        n.alerts
            .iter()
            .map(|a| a["labels"].to_string())
            .collect::<Vec<_>>()
    );
    got.lock().unwrap().push(n);
    axum::http::StatusCode::OK
}

// ---------------------------------------------------------------------------------------
// Traffic

/// Several R3 streams, durable pull consumers on them, a publisher and consumers that
/// fetch and acknowledge everything (so no backlog or stalled-consumer alert is due).
/// Errors are ignored: a node is killed during the test and clients reconnect.
async fn start_traffic(
    cluster: &Cluster,
) -> (Vec<tokio::task::JoinHandle<()>>, async_nats::Client) {
    let client = connect(cluster, "a", "a").await;
    let js = jetstream::new(client.clone());
    for name in STREAMS {
        create_stream(
            &js,
            stream::Config {
                name: (*name).into(),
                subjects: vec![format!("{}.>", name.to_lowercase())],
                num_replicas: 3,
                max_age: Duration::from_secs(3600),
                ..Default::default()
            },
        )
        .await;
    }
    let mut tasks = Vec::new();
    for (stream_name, consumer_name) in CONSUMERS {
        let s = until_ok("get stream", || js.get_stream(*stream_name)).await;
        let c: jetstream::consumer::Consumer<pull::Config> = until_ok(
            &format!("create consumer {stream_name}/{consumer_name}"),
            || {
                s.create_consumer(pull::Config {
                    durable_name: Some((*consumer_name).into()),
                    ack_wait: Duration::from_secs(30),
                    ..Default::default()
                })
            },
        )
        .await;
        tasks.push(tokio::spawn(async move {
            loop {
                match c
                    .fetch()
                    .max_messages(200)
                    .expires(Duration::from_millis(500))
                    .messages()
                    .await
                {
                    Ok(mut batch) => {
                        while let Some(Ok(m)) = batch.next().await {
                            let _ = m.ack().await;
                        }
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        }));
    }
    let js_pub = js.clone();
    tasks.push(tokio::spawn(async move {
        let mut i = 0u64;
        loop {
            for name in STREAMS {
                if let Ok(ack) = js_pub
                    .publish(
                        format!("{}.{}", name.to_lowercase(), i % 5),
                        format!("m{i}").into(),
                    )
                    .await
                {
                    let _ = tokio::time::timeout(Duration::from_secs(2), ack).await;
                }
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }));
    (tasks, client)
}

// ---------------------------------------------------------------------------------------
// The end-to-end test

/// Prometheus's pending and firing alerts.
async fn prom_alerts(prom: &Server) -> Vec<Value> {
    prom.get("/api/v1/alerts").await["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Every alert Alertmanager holds, inhibited and silenced ones included.
async fn am_alerts(am: &Server) -> Vec<Value> {
    am.get("/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn label<'a>(v: &'a Value, k: &str) -> &'a str {
    v["labels"][k].as_str().unwrap_or("")
}

fn alert_line(a: &Value) -> String {
    let l = &a["labels"];
    let mut s = format!(
        "{} [{}]",
        label(a, "alertname"),
        a["state"]
            .as_str()
            .or(a["status"]["state"].as_str())
            .unwrap_or("?")
    );
    for k in ["node", "peer", "stream", "consumer", "cluster"] {
        if let Some(v) = l[k].as_str() {
            s.push_str(&format!(" {k}={v}"));
        }
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_node_down_pages_once() {
    // Never beside the other real Prometheus stack: two on 2 cores would skew the timers.
    let _stack = crate::prometheus_stack::STACK_LOCK.lock().await;
    let t0 = Instant::now();
    let prometheus_bin = find_bin(
        "PROMETHEUS_BIN",
        &["/usr/bin/prometheus", "prometheus"],
        "Prometheus server",
    );
    let am_bin = find_bin(
        "ALERTMANAGER_BIN",
        &[
            "/usr/bin/prometheus-alertmanager",
            "alertmanager",
            "prometheus-alertmanager",
        ],
        "Alertmanager",
    );
    let dir = new_tempdir("natsmon-alertmanager-");

    // --- the scaled test copies of the bundled rules and Alertmanager config -----------
    let (rules, n_for) = scale_durations(&read_repo(RULES), &["for"], SCALE);
    assert!(n_for >= 10, "few for: lines scaled ({n_for})");
    let rules_path = dir.path().join("natsmon.rules.yml");
    std::fs::write(&rules_path, &rules).unwrap();

    let am_text = read_repo(AM_CONFIG);
    let (am_scaled, n_timers) = scale_durations(
        &am_text,
        &["group_wait", "group_interval", "repeat_interval"],
        SCALE,
    );
    assert!(n_timers >= 3, "group timers scaled: {n_timers}");
    let group_wait = am_text
        .lines()
        .find_map(|l| l.trim().strip_prefix("group_wait:"))
        .map(|v| parse_duration(v).unwrap() / SCALE)
        .expect("group_wait in the Alertmanager config");
    let hook = Webhook::start(t0).await;
    let (am_config, receivers) = inject_webhook(&am_scaled, &hook.url);
    assert!(
        receivers.contains(&"natsmon-page".to_string()),
        "{receivers:?}"
    );
    let am_config_path = dir.path().join("alertmanager.yml");
    std::fs::write(&am_config_path, &am_config).unwrap();
    eprintln!("[alertmanager] test config:\n{am_config}");

    // --- Alertmanager ---------------------------------------------------------------
    let am_port = free_port();
    let am_data = dir.path().join("am-data");
    std::fs::create_dir_all(&am_data).unwrap();
    let mut am = Server::spawn(
        "alertmanager",
        &am_bin,
        &[
            format!("--config.file={}", am_config_path.display()),
            format!("--storage.path={}", am_data.display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            // No HA gossip (it would listen on 0.0.0.0:9094).
            "--cluster.listen-address=".to_string(),
            "--log.level=debug".to_string(),
        ],
        dir.path(),
        am_port,
    );
    am.wait_ready(Duration::from_secs(30)).await;

    // --- cluster, traffic, natsmon --------------------------------------------------
    let mut cluster = Cluster::start().await;
    let (traffic, _client) = start_traffic(&cluster).await;
    // Node names mon-1..3 differ from the server names n1..n3: `peer` must be the latter.
    let mut args = Vec::new();
    for i in 0..cluster.len() {
        args.push("--nats-url".to_string());
        args.push(format!("mon-{}={}", i + 1, cluster.monitor_url(i)));
    }
    args.extend(["--poll-interval", "1s", "--poll-timeout", "800ms"].map(String::from));
    let natsmon = Natsmon::start(&args).await;
    let exp = wait_for(&natsmon.base_url(), Duration::from_secs(30), |e| {
        e.sum("nats_up", &[]) == 3.0
            && CONSUMERS.iter().all(|&(s, c)| {
                e.get(
                    "nats_consumer_num_pending",
                    &[("stream", s), ("consumer", c)],
                )
                .is_some()
            })
            && STREAMS
                .iter()
                .all(|&s| e.count("nats_stream_replica_current", &[("stream", s)]) == 2)
    })
    .await;
    let has_node_info = exp.has("nats_node_info");
    eprintln!("[alertmanager] natsmon sees the cluster (nats_node_info exported: {has_node_info})");

    // --- Prometheus -------------------------------------------------------------------
    let prom_port = free_port();
    let prom_data = dir.path().join("prom-data");
    std::fs::create_dir_all(&prom_data).unwrap();
    let prom_config = format!(
        "global:\n  scrape_interval: {SCRAPE_SECS}s\n  scrape_timeout: {SCRAPE_SECS}s\n  \
         evaluation_interval: {SCRAPE_SECS}s\nrule_files:\n  - {rules}\nalerting:\n  \
         alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
         scrape_configs:\n  - job_name: natsmon\n    static_configs:\n      - targets: \
         ['{target}']\n",
        rules = rules_path.display(),
        target = natsmon.listen,
    );
    let prom_config_path = dir.path().join("prometheus.yml");
    std::fs::write(&prom_config_path, &prom_config).unwrap();
    let mut prom = Server::spawn(
        "prometheus",
        &prometheus_bin,
        &[
            format!("--config.file={}", prom_config_path.display()),
            format!("--storage.tsdb.path={}", prom_data.display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        dir.path(),
        prom_port,
    );
    prom.wait_ready(Duration::from_secs(30)).await;

    // --- healthy cluster under traffic: nothing fires, nothing is sent -----------------
    tokio::time::sleep(HEALTHY_PHASE).await;
    let up = prom.get("/api/v1/query?query=up").await;
    assert_eq!(
        up["data"]["result"][0]["value"][1], "1",
        "Prometheus scrapes natsmon: {up}"
    );
    let healthy: Vec<Value> = prom_alerts(&prom).await;
    eprintln!(
        "[alertmanager] healthy cluster, Prometheus alerts: {:?}",
        healthy.iter().map(alert_line).collect::<Vec<_>>()
    );
    let firing: Vec<String> = healthy
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(alert_line)
        .collect();
    assert!(
        firing.is_empty(),
        "alerts fire on the healthy cluster: {firing:#?}"
    );
    assert!(
        hook.notifications().is_empty(),
        "notifications on the healthy cluster: {:#?}",
        hook.notifications()
    );

    // --- kill one node (not the meta leader) ------------------------------------------
    let meta_leader = cluster.meta_leader(0).await;
    let victim = (0..cluster.len())
        .rev()
        .find(|&i| Some(cluster.server_name(i)) != meta_leader)
        .unwrap();
    let server = cluster.server_name(victim);
    let node = format!("mon-{}", victim + 1);
    cluster.kill(victim);
    let killed = Instant::now();
    eprintln!(
        "[alertmanager] killed node {node} (server {server}; meta leader {meta_leader:?}) at \
         {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    // Replica alerts are due after the scaled for: of NotCurrent at the latest; consumer
    // ones are waited for until then too.
    let not_current_for = parse_duration("10m").unwrap() / SCALE;
    let deadline = killed + not_current_for + Duration::from_secs(90);
    let is_replica =
        |a: &Value| REPLICA_ALERTS.contains(&label(a, "alertname")) && label(a, "peer") == server;
    let (prom_firing, am_view) = loop {
        let p = prom_alerts(&prom).await;
        let a = am_alerts(&am).await;
        let node_down: Vec<&Value> = p
            .iter()
            .filter(|x| label(x, "alertname") == "NatsNodeDown" && x["state"] == "firing")
            .collect();
        if let Some(d) = node_down.first() {
            assert_eq!(
                label(d, "node"),
                node,
                "NatsNodeDown for the wrong node: {d:#}"
            );
            assert!(
                label(d, "peer") == server,
                "NatsNodeDown fires without peer=\"{server}\" (labels {}), so Alertmanager \
                 cannot inhibit the replica alerts of the dead node. NatsNodeDown takes the \
                 server name from nats_node_info{{node, server_name, cluster}}; natsmon \
                 exports nats_node_info: {has_node_info}.",
                d["labels"]
            );
        }
        let firing_replicas: Vec<&Value> = p
            .iter()
            .filter(|x| x["state"] == "firing" && is_replica(x))
            .collect();
        let streams: BTreeSet<&str> = firing_replicas
            .iter()
            .filter(|x| label(x, "alertname").starts_with("NatsStream"))
            .map(|x| label(x, "stream"))
            .collect();
        let consumers: BTreeSet<(&str, &str)> = firing_replicas
            .iter()
            .filter(|x| label(x, "alertname").starts_with("NatsConsumer"))
            .map(|x| (label(x, "stream"), label(x, "consumer")))
            .collect();
        // Every firing replica alert has reached Alertmanager and is suppressed there.
        let suppressed = firing_replicas.iter().all(|f| {
            a.iter().any(|x| {
                x["labels"] == f["labels"]
                    && x["status"]["state"] == "suppressed"
                    && x["status"]["inhibitedBy"]
                        .as_array()
                        .is_some_and(|v| !v.is_empty())
            })
        });
        let all_streams = STREAMS.iter().all(|s| streams.contains(s));
        let all_consumers = CONSUMERS.iter().all(|c| consumers.contains(c));
        let waited_enough = killed.elapsed() >= not_current_for + Duration::from_secs(30);
        if !node_down.is_empty() && all_streams && (all_consumers || waited_enough) && suppressed {
            eprintln!(
                "[alertmanager] {:.1}s after the kill: NatsNodeDown firing; replica alerts \
                 firing for streams {streams:?} and consumers {consumers:?}, all suppressed \
                 in Alertmanager",
                killed.elapsed().as_secs_f64()
            );
            break (p, a);
        }
        if Instant::now() >= deadline {
            panic!(
                "{:?} after the kill: NatsNodeDown firing: {}; streams with a firing replica \
                 alert for {server}: {streams:?} (want {STREAMS:?}); consumers: {consumers:?}; \
                 all suppressed in Alertmanager: {suppressed}.\nPrometheus alerts: \
                 {:#?}\nAlertmanager alerts: {:#?}\nnotifications: {:#?}",
                killed.elapsed(),
                !node_down.is_empty(),
                p.iter().map(alert_line).collect::<Vec<_>>(),
                a.iter().map(alert_line).collect::<Vec<_>>(),
                hook.notifications()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };

    // Anything not inhibited would be flushed one group_wait after it reached
    // Alertmanager; wait that long again (and some) before counting.
    tokio::time::sleep(group_wait + Duration::from_secs(10)).await;
    let notifications = hook.notifications();
    let am_final = am_alerts(&am).await;
    let prom_final = prom_alerts(&prom).await;
    eprintln!(
        "[alertmanager] Prometheus alerts with {server} down:\n  {}",
        prom_final
            .iter()
            .map(alert_line)
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    eprintln!(
        "[alertmanager] Alertmanager alerts (active/suppressed):\n  {}",
        am_final
            .iter()
            .map(alert_line)
            .collect::<Vec<_>>()
            .join("\n  ")
    );

    let groups: BTreeMap<&str, Vec<&Notification>> =
        notifications.iter().fold(BTreeMap::new(), |mut m, n| {
            m.entry(n.group_key.as_str()).or_default().push(n);
            m
        });
    eprintln!(
        "[alertmanager] {} notification(s) in {} group(s): {:?}",
        notifications.len(),
        groups.len(),
        groups.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        groups.len(),
        1,
        "one node down must page exactly once (one group); got {} groups: {notifications:#?}",
        groups.len()
    );
    assert_eq!(
        notifications.len(),
        1,
        "one notification expected: {notifications:#?}"
    );
    let n = &notifications[0];
    assert_eq!(
        n.receiver, "natsmon-page",
        "critical routes to the page receiver: {n:#?}"
    );
    assert_eq!(n.status, "firing", "{n:#?}");
    assert_eq!(n.alerts.len(), 1, "one alert in the group: {n:#?}");
    let a = &n.alerts[0];
    assert_eq!(label(a, "alertname"), "NatsNodeDown", "{n:#?}");
    assert_eq!(label(a, "node"), node, "{n:#?}");
    assert_eq!(label(a, "peer"), server, "{n:#?}");
    assert_eq!(label(a, "cluster"), crate::harness::CLUSTER_NAME, "{n:#?}");
    assert_eq!(label(a, "severity"), "critical", "{n:#?}");
    assert!(
        n.group_key.contains("alertname=\"NatsNodeDown\""),
        "grouped by alert name: {}",
        n.group_key
    );

    // The replica alerts fired in Prometheus and were inhibited in Alertmanager.
    let replica_firing: Vec<&Value> = prom_firing
        .iter()
        .filter(|x| x["state"] == "firing" && is_replica(x))
        .collect();
    assert!(
        replica_firing.len() >= STREAMS.len(),
        "replica alerts firing: {replica_firing:#?}"
    );
    let by_name: BTreeMap<&str, usize> = replica_firing.iter().fold(BTreeMap::new(), |mut m, x| {
        *m.entry(label(x, "alertname")).or_default() += 1;
        m
    });
    for x in am_view.iter().chain(&am_final).filter(|x| is_replica(x)) {
        assert_eq!(
            x["status"]["state"], "suppressed",
            "replica alert not inhibited in Alertmanager: {x:#}"
        );
    }
    let node_down_am: Vec<&Value> = am_final
        .iter()
        .filter(|x| label(x, "alertname") == "NatsNodeDown")
        .collect();
    assert_eq!(node_down_am.len(), 1, "{node_down_am:#?}");
    assert_eq!(node_down_am[0]["status"]["state"], "active");
    eprintln!(
        "[alertmanager] replica alerts firing in Prometheus and inhibited in Alertmanager: \
         {by_name:?}; done in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    for t in traffic {
        t.abort();
    }
}
