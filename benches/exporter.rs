//! End-to-end scale benchmark for the natsmon exporter.
//!
//! Run: `cargo bench --bench exporter` (harness = false). Optional env:
//! - `NATSMON_BENCH_SCALES=a,b,c` — subset of scales (default all: a, b, c and
//!   b12-all, b12, b12-cl, scale (b) served 2.12-shaped and read three ways)
//! - `NATSMON_BENCH_CYCLES=4`     — measured poll cycles per scale
//! - `NATSMON_BENCH_SCRAPE_SECS=5` — duration of the concurrent /metrics load
//! - `NATSMON_BENCH_DUMP=<dir>` — write node n0's synthetic responses there
//!
//! For each scale, synthetic nats-server monitoring endpoints are served
//! in-process (own tokio runtime, pre-rendered bodies), the real `natsmon`
//! binary is spawned against them, and natsmon's CPU (from /proc/<pid>/stat of
//! the child only), RSS, poll-cycle wall time, bytes fetched, /metrics render
//! cost and /metrics latency under 10 concurrent scrapers are reported. A
//! baseline (bare in-process fetch + `serde_json::Value` parse of the same
//! endpoint bodies, single thread) is measured in the same run so ratios are
//! comparable across noisy machines. The baseline is what natsmon read before it
//! filtered by stream leader: every endpoint of every node, `/jsz` whole with configs,
//! every `/connz` page.

mod synth;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use synth::{Shape, SynthCluster, SynthScale};

const ACCEPT_OM: &str = "application/openmetrics-text; version=1.0.0";
const SCRAPERS: usize = 10;

struct ScaleDef {
    key: &'static str,
    synth: SynthScale,
    interval: Duration,
    /// Extra natsmon arguments (how it reads the servers).
    args: &'static [&'static str],
    /// What natsmon reads in steady state with those arguments (configs cached).
    now_reads: Reads,
}

/// Scale (b): 3 nodes, R3, 10k connections, 1,000 streams, 5,000 consumers.
fn scale_b(shape: Shape) -> SynthScale {
    SynthScale {
        nodes: 3,
        conns_per_node: 10_000,
        streams_per_node: 1_000,
        consumers_per_node: 5_000,
        accounts: 10,
        shape,
    }
}

fn scales() -> Vec<ScaleDef> {
    let b12 = |key, args, jsz, connz_all_pages| ScaleDef {
        key,
        synth: scale_b(Shape::V2_12),
        interval: Duration::from_secs(5),
        args,
        now_reads: Reads {
            jsz,
            connz_all_pages,
        },
    };
    // 2.9 nodes are read whole; configs are cached, one /connz page.
    let v29 = Reads {
        jsz: JSZ_WHOLE,
        connz_all_pages: false,
    };
    vec![
        ScaleDef {
            key: "a",
            synth: SynthScale {
                nodes: 3,
                conns_per_node: 50,
                streams_per_node: 10,
                consumers_per_node: 20,
                accounts: 10,
                shape: Shape::V2_9,
            },
            interval: Duration::from_secs(5),
            args: &[],
            now_reads: v29,
        },
        ScaleDef {
            key: "b",
            synth: scale_b(Shape::V2_9),
            interval: Duration::from_secs(5),
            args: &[],
            now_reads: v29,
        },
        ScaleDef {
            key: "c",
            synth: SynthScale {
                nodes: 30,
                conns_per_node: 10_000,
                streams_per_node: 1_000,
                consumers_per_node: 5_000,
                accounts: 10,
                shape: Shape::V2_9,
            },
            interval: Duration::from_secs(15),
            args: &[],
            now_reads: v29,
        },
        // Every replica read, as before the leader filter (configs still cached).
        b12(
            "b12-all",
            &["--jsz-stream-leader-only=false", "--connz-all-pages"],
            JSZ_WHOLE,
            true,
        ),
        // Defaults: stream-leader-only, configs every 5m, one /connz page.
        b12("b12", &[], JSZ_LEADER_ONLY, false),
        // Every node leads a consumer of a stream it does not lead, so all are read whole.
        b12("b12-cl", &["--jsz-read-consumer-leaders"], JSZ_WHOLE, false),
    ]
}

use natsmon_testkit::proc::{clk_tck, proc_cpu_secs, status_kib, thread_cpu_secs};

// ------------------------------------------------------------- metrics text

#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = line[..name_end].to_string();
        let mut labels = Vec::new();
        let mut rest = &line[name_end..];
        if rest.starts_with('{') {
            let b = rest.as_bytes();
            let mut i = 1;
            loop {
                while i < b.len() && (b[i] == b',' || b[i] == b' ') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    i += 1;
                    break;
                }
                let ks = i;
                while i < b.len() && b[i] != b'=' {
                    i += 1;
                }
                let key = rest[ks..i].trim().to_string();
                i += 2; // ="
                let mut val = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                        val.push(match b[i] {
                            b'n' => '\n',
                            c => c as char,
                        });
                    } else {
                        val.push(b[i] as char);
                    }
                    i += 1;
                }
                i += 1; // closing quote
                labels.push((key, val));
            }
            rest = &rest[i.min(rest.len())..];
        }
        let Some(v) = rest.split_whitespace().next() else {
            continue;
        };
        let value = match v {
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            _ => match v.parse() {
                Ok(x) => x,
                Err(_) => continue,
            },
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

struct Metrics {
    samples: Vec<Sample>,
}

impl Metrics {
    fn parse(text: &str) -> Metrics {
        Metrics {
            samples: parse_metrics(text),
        }
    }
    fn all(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }
    fn require(&self, name: &str) -> Vec<&Sample> {
        let v = self.all(name);
        if v.is_empty() {
            let mut names: Vec<&str> = self
                .samples
                .iter()
                .map(|s| s.name.as_str())
                .filter(|n| n.starts_with("natsmon_"))
                .collect();
            names.sort();
            names.dedup();
            panic!(
                "natsmon /metrics lacks required metric `{name}`; natsmon_* metrics present: {names:?}"
            );
        }
        v
    }
    fn sum(&self, name: &str) -> f64 {
        self.require(name).iter().map(|s| s.value).sum()
    }
    fn single(&self, name: &str) -> f64 {
        self.require(name)[0].value
    }
    fn per_node(&self, name: &str) -> HashMap<String, f64> {
        self.require(name)
            .iter()
            .map(|s| {
                let node = s
                    .labels
                    .iter()
                    .find(|(k, _)| k == "node")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| panic!("`{name}` sample without a node label: {s:?}"));
                (node, s.value)
            })
            .collect()
    }
}

// -------------------------------------------------------------- natsmon child

struct Natsmon {
    child: Child,
    url: String,
}

impl Natsmon {
    fn spawn(cluster: &SynthCluster, interval: Duration, args: &[&str]) -> Natsmon {
        // Below the ephemeral range: a port found by binding :0 can be taken by one of
        // the bench's many client sockets before natsmon binds it.
        let port = natsmon_testkit::ports::free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_natsmon"));
        for u in cluster.nats_url_args() {
            cmd.arg("--nats-url").arg(u);
        }
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--poll-interval")
            .arg(format!("{}s", interval.as_secs()))
            .arg("--poll-timeout")
            // Below the interval, as in production; still generous for 30 large nodes.
            .arg(format!("{}ms", interval.as_millis() * 4 / 5))
            .args(args)
            .env("NATSMON_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd.spawn().expect("spawn natsmon binary");
        Natsmon {
            child,
            url: format!("http://127.0.0.1:{port}/metrics"),
        }
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn assert_alive(&mut self) {
        if let Some(st) = self.child.try_wait().expect("try_wait natsmon") {
            panic!("natsmon exited unexpectedly during the benchmark: {st}");
        }
    }
}

impl Drop for Natsmon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn scrape(client: &reqwest::Client, url: &str) -> Result<(bytes::Bytes, Duration), String> {
    let t = Instant::now();
    let resp = client
        .get(url)
        .header(reqwest::header::ACCEPT, ACCEPT_OM)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    Ok((body, t.elapsed()))
}

/// Like `scrape` but streams the body and only counts it (cheapest client
/// side, so the load test measures natsmon rather than the scraper).
async fn scrape_count(client: &reqwest::Client, url: &str) -> Result<(usize, Duration), String> {
    let t = Instant::now();
    let mut req = client.get(url).header(reqwest::header::ACCEPT, ACCEPT_OM);
    // Prometheus always asks for gzip; NATSMON_BENCH_GZIP=0 measures the plain body.
    if std::env::var("NATSMON_BENCH_GZIP")
        .map(|v| v != "0")
        .unwrap_or(true)
    {
        req = req.header(reqwest::header::ACCEPT_ENCODING, "gzip");
    }
    let mut resp = req.send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let mut n = 0;
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        n += chunk.len();
    }
    Ok((n, t.elapsed()))
}

// ------------------------------------------------------------------- result

#[derive(Default, Clone)]
struct Row {
    key: String,
    version: &'static str,
    args: String,
    /// Bytes of every node's first cycle (configs read; later cycles use the cache).
    first_cycle_bytes: f64,
    nodes: usize,
    cycle_wall_max_ms: f64,
    cycle_wall_mean_ms: f64,
    cycle_cpu_ms: f64,
    cycle_cpu_raw_ms: f64,
    detect_scrapes_per_cycle: f64,
    scrape_cpu_ms: f64,
    bytes_per_cycle: f64,
    base_cpu_ms: f64,
    base_wall_ms: f64,
    base_bytes: f64,
    /// Bare fetch + `Value` parse of what natsmon reads in steady state.
    now_cpu_ms: f64,
    now_bytes: f64,
    render_ms: f64,
    render_bytes_metric: f64,
    metrics_bytes: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    scrapes_per_s: f64,
    hwm_mib: f64,
    rss_mib: f64,
    synth_setup_s: f64,
    /// Scraper thread CPU / wall during the load test (1.0 = client-bound).
    client_util: f64,
    /// natsmon CPU / wall during the load test.
    natsmon_util_load: f64,
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------- self-check/baseline

fn count_jsz(v: &serde_json::Value) -> (usize, usize, bool) {
    let mut streams = 0;
    let mut consumers = 0;
    let mut leaders_ok = true;
    for acc in v["account_details"].as_array().expect("account_details[]") {
        for s in acc["stream_detail"].as_array().expect("stream_detail[]") {
            streams += 1;
            leaders_ok &=
                s["cluster"]["leader"].is_string() && s["config"]["num_replicas"].is_u64();
            for c in s["consumer_detail"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                consumers += 1;
                leaders_ok &=
                    c["cluster"]["leader"].is_string() && c["config"]["durable_name"].is_string();
            }
        }
    }
    (streams, consumers, leaders_ok)
}

async fn get_json(client: &reqwest::Client, url: &str) -> (serde_json::Value, usize) {
    let resp = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(
        resp.status().is_success(),
        "GET {url}: HTTP {}",
        resp.status()
    );
    let body = resp
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("GET {url} body: {e}"));
    let v: serde_json::Value =
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("parse {url}: {e}"));
    (v, body.len())
}

async fn self_check(client: &reqwest::Client, cluster: &SynthCluster) {
    let scale = &cluster.scale;
    let mut check = vec![0, scale.nodes - 1];
    check.dedup();
    for n in check {
        let node = &cluster.nodes[n];
        let base = node.url();
        let (v, _) = get_json(
            client,
            &format!("{base}/jsz?accounts=true&streams=true&consumers=true&config=true"),
        )
        .await;
        let (s, c, ok) = count_jsz(&v);
        let (es, ec) = scale.hosted_counts(n);
        assert_eq!(
            (s, c),
            (es, ec),
            "synthetic {}: /jsz stream/consumer counts",
            node.name
        );
        assert_eq!(v["streams"].as_u64(), Some(es as u64));
        assert_eq!(v["consumers"].as_u64(), Some(ec as u64));
        assert!(ok, "synthetic /jsz lacks cluster.leader / config");
        // account paging
        let (p, _) = get_json(
            client,
            &format!("{base}/jsz?accounts=true&offset=1&limit=2"),
        )
        .await;
        assert_eq!(
            p["account_details"].as_array().unwrap().len(),
            2.min(scale.accounts.saturating_sub(1))
        );
        assert!(p["account_details"][0].get("stream_detail").is_none());
        // connz paging
        let (cz, _) = get_json(client, &format!("{base}/connz?limit=5000&offset=7")).await;
        assert_eq!(cz["total"].as_u64(), Some(scale.conns_per_node as u64));
        let want = scale.conns_per_node.saturating_sub(7).min(5000);
        assert_eq!(cz["num_connections"].as_u64(), Some(want as u64));
        assert_eq!(cz["connections"].as_array().unwrap().len(), want);
        let (vz, _) = get_json(client, &format!("{base}/varz")).await;
        assert_eq!(vz["server_name"].as_str(), Some(node.name.as_str()));
        assert_eq!(
            vz["jetstream"]["meta"]["cluster_size"].as_u64(),
            Some(scale.nodes as u64)
        );
        let (h, _) = get_json(client, &format!("{base}/healthz")).await;
        assert_eq!(h["status"], "ok");
        assert_eq!(vz["version"].as_str(), Some(scale.shape.version()));
        if scale.shape == Shape::V2_12 {
            check_2_12(client, cluster, n).await;
        }
    }
}

/// The 2.12 shape honours `stream-leader-only` and `config=false` as real servers do.
async fn check_2_12(client: &reqwest::Client, cluster: &SynthCluster, n: usize) {
    let scale = &cluster.scale;
    let node = &cluster.nodes[n];
    let base = node.url();
    let (v, _) = get_json(
        client,
        &format!("{base}/jsz?accounts=true&streams=true&consumers=true&stream-leader-only=true"),
    )
    .await;
    let led: Vec<usize> = (0..scale.total_streams())
        .filter(|i| scale.stream_peers(*i)[0] == n)
        .collect();
    let (mut streams, mut consumers, mut elsewhere) = (0, 0, 0);
    for acc in v["account_details"].as_array().expect("account_details[]") {
        for s in acc["stream_detail"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            streams += 1;
            assert_eq!(s["cluster"]["leader"].as_str(), Some(node.name.as_str()));
            assert!(
                s.get("config").is_none(),
                "config=false yet a stream config"
            );
            for c in s["consumer_detail"].as_array().expect("consumer_detail[]") {
                consumers += 1;
                assert!(
                    c.get("config").is_none(),
                    "config=false yet a consumer config"
                );
                if c["cluster"]["leader"].as_str() != Some(node.name.as_str()) {
                    elsewhere += 1;
                    assert_eq!(
                        c["num_pending"].as_u64(),
                        Some(0),
                        "a replica counts no pending"
                    );
                }
            }
        }
    }
    assert_eq!(
        streams,
        led.len(),
        "{}: leader-only stream count",
        node.name
    );
    let want_consumers: usize = (0..scale.total_consumers())
        .filter(|j| scale.stream_peers(j % scale.total_streams())[0] == n)
        .count();
    assert_eq!(
        consumers, want_consumers,
        "{}: every consumer of a led stream",
        node.name
    );
    assert!(
        elsewhere * 2 > consumers,
        "most consumers should be led elsewhere than their stream ({elsewhere} of {consumers})"
    );
    assert_eq!(v["total"].as_u64(), Some(scale.accounts as u64));
    let (cz, _) = get_json(client, &format!("{base}/connz?sort=pending&limit=1")).await;
    assert_eq!(cz["connections"].as_array().map(Vec::len), Some(1));
    assert_eq!(cz["total"].as_u64(), Some(scale.conns_per_node as u64));
}

/// What a bare pass reads of each node.
#[derive(Clone, Copy)]
struct Reads {
    jsz: &'static str,
    connz_all_pages: bool,
}

/// What natsmon read before the leader filter: every replica whole, with configs, and
/// every `/connz` page. The baseline of every row.
const OLD_READS: Reads = Reads {
    jsz: "/jsz?accounts=true&streams=true&consumers=true&config=true",
    connz_all_pages: true,
};
const JSZ_WHOLE: &str = "/jsz?accounts=true&streams=true&consumers=true";
const JSZ_LEADER_ONLY: &str =
    "/jsz?accounts=true&streams=true&consumers=true&stream-leader-only=true";

/// One bare fetch+parse pass over all nodes' endpoints; returns bytes fetched.
async fn baseline_pass(client: &reqwest::Client, cluster: &SynthCluster, reads: Reads) -> usize {
    let mut bytes = 0;
    for node in &cluster.nodes {
        let base = node.url();
        if !reads.connz_all_pages {
            let (_, n) = get_json(client, &format!("{base}/connz?sort=pending&limit=1")).await;
            bytes += n;
        }
        for path in [
            "/varz",
            reads.jsz,
            "/routez",
            "/healthz",
            "/accstatz?unused=1",
            "/subsz",
        ] {
            let (v, n) = get_json(client, &format!("{base}{path}")).await;
            bytes += n;
            drop(v);
        }
        let mut offset = 0u64;
        if !reads.connz_all_pages {
            continue;
        }
        loop {
            let (v, n) =
                get_json(client, &format!("{base}/connz?limit=1024&offset={offset}")).await;
            bytes += n;
            let got = v["num_connections"].as_u64().unwrap();
            let total = v["total"].as_u64().unwrap();
            offset += got;
            if got == 0 || offset >= total {
                break;
            }
        }
    }
    bytes
}

// ------------------------------------------------------------------ a scale

fn run_scale(def: &ScaleDef, tck: f64, cycles: usize, scrape_secs: f64) -> Row {
    let scale = &def.synth;
    let nodes = scale.nodes;
    eprintln!(
        "== scale {}: {} nodes, {} conns/node, {} streams/node, {} consumers/node ({} streams, {} consumers in cluster), poll {:?}",
        def.key,
        nodes,
        scale.conns_per_node,
        scale.streams_per_node,
        scale.consumers_per_node,
        scale.total_streams(),
        scale.total_consumers(),
        def.interval
    );
    let synth_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("synth")
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    let cluster = SynthCluster::start(&synth_rt, scale);
    let synth_setup_s = t.elapsed().as_secs_f64();
    let prerendered: usize = cluster
        .nodes
        .iter()
        .map(|n| n.data.prerendered_bytes())
        .sum();
    eprintln!(
        "   synthetic servers up in {:.1}s ({:.1} MiB pre-rendered)",
        synth_setup_s,
        prerendered as f64 / 1048576.0
    );

    // Driver: single-threaded runtime on this thread (baseline + scrapers).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();

    rt.block_on(self_check(&client, &cluster));
    if let Ok(dir) = std::env::var("NATSMON_BENCH_DUMP") {
        // Write node n0's responses to `dir` for inspection.
        rt.block_on(async {
            std::fs::create_dir_all(&dir).unwrap();
            let base = cluster.nodes[0].url();
            for (file, path) in [
                ("varz", "/varz"),
                (
                    "jsz",
                    "/jsz?accounts=true&streams=true&consumers=true&config=true",
                ),
                ("connz", "/connz?limit=1024&offset=0"),
                ("routez", "/routez"),
                ("healthz", "/healthz"),
                ("accstatz", "/accstatz?unused=1"),
                ("subsz", "/subsz"),
            ] {
                let body = client
                    .get(format!("{base}{path}"))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                std::fs::write(format!("{dir}/{}-{file}.json", def.key), &body).unwrap();
            }
        });
    }

    // ---- baseline: before natsmon exists, so nothing competes with it.
    let measure = async |reads: Reads| {
        baseline_pass(&client, &cluster, reads).await; // warm connections/caches
        let reps = if nodes > 10 { 2 } else { 3 };
        let (mut cpu, mut wall, mut bytes) = (0.0, 0.0, 0);
        for _ in 0..reps {
            let c0 = thread_cpu_secs(tck);
            let t0 = Instant::now();
            bytes = baseline_pass(&client, &cluster, reads).await;
            wall += t0.elapsed().as_secs_f64();
            cpu += thread_cpu_secs(tck) - c0;
        }
        (
            cpu / reps as f64 * 1e3,
            wall / reps as f64 * 1e3,
            bytes as f64,
        )
    };
    let (base_cpu_ms, base_wall_ms, base_bytes) = rt.block_on(measure(OLD_READS));
    eprintln!(
        "   baseline fetch+parse: cpu {base_cpu_ms:.1} ms, wall {base_wall_ms:.1} ms, {:.2} MiB",
        base_bytes / 1048576.0
    );
    // The same bare parse of what natsmon reads now, in steady state: how much of
    // natsmon's CPU a faster JSON parser could save at most.
    let (now_cpu_ms, _, now_bytes) = rt.block_on(measure(def.now_reads));
    eprintln!(
        "   bare fetch+parse of natsmon's steady-state reads: cpu {now_cpu_ms:.1} ms, {:.2} MiB",
        now_bytes / 1048576.0
    );

    // ---- natsmon
    let mut nm = Natsmon::spawn(&cluster, def.interval, def.args);
    let pid = nm.pid();
    let url = nm.url.clone();
    let mut row = rt.block_on(async {
        let mut detect_scrapes = 0usize;
        let get = async |nm: &mut Natsmon, counted: bool, scrapes: &mut usize| -> Metrics {
            nm.assert_alive();
            // A keep-alive connection the server closed as the request left fails once;
            // a second failure is real.
            let mut r = scrape(&client, &url).await;
            if r.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                r = scrape(&client, &url).await;
            }
            match r {
                Ok((body, _)) => {
                    if counted {
                        *scrapes += 1;
                    }
                    Metrics::parse(&String::from_utf8_lossy(&body))
                }
                Err(e) => {
                    nm.assert_alive();
                    panic!("GET {url} failed: {e}");
                }
            }
        };

        // Wait for /metrics to come up.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            nm.assert_alive();
            if scrape(&client, &url).await.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "natsmon /metrics did not come up within 60s at {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Wait for every node to finish a first cycle, then one more full cycle (warm-up).
        let first_deadline = Instant::now() + def.interval * 4 + Duration::from_secs(120);
        let mut last;
        let first_cycle_bytes;
        loop {
            let m = get(&mut nm, false, &mut 0).await;
            let per = m.all("natsmon_poll_cycles_total");
            if per.len() >= nodes && per.iter().all(|s| s.value >= 1.0) {
                last = m.sum("natsmon_poll_cycles_total");
                first_cycle_bytes = m.sum("natsmon_poll_response_bytes_total");
                break;
            }
            assert!(
                Instant::now() < first_deadline,
                "natsmon did not complete a first poll cycle on all {nodes} nodes (natsmon_poll_cycles_total has {} series)",
                per.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Wait for the next cycle boundary (sum grows by `nodes`).
        let mut boundary_at = Instant::now();
        let mut period = def.interval;
        let wait_boundary = async |nm: &mut Natsmon,
                                       target: f64,
                                       counted: bool,
                                       scrapes: &mut usize,
                                       since: Instant,
                                       period: Duration|
               -> Metrics {
            let deadline = Instant::now() + period * 3 + Duration::from_secs(60);
            let wake = since + period.saturating_sub(Duration::from_millis(300));
            tokio::time::sleep_until(wake.into()).await;
            loop {
                let m = get(nm, counted, scrapes).await;
                if m.sum("natsmon_poll_cycles_total") >= target {
                    return m;
                }
                assert!(
                    Instant::now() < deadline,
                    "natsmon poll cycles stalled: natsmon_poll_cycles_total sum did not reach {target}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let m = wait_boundary(&mut nm, last + nodes as f64, false, &mut 0, boundary_at, period).await;
        // Start of the measured window.
        let cpu0 = proc_cpu_secs(pid, tck);
        let now = Instant::now();
        period = period.max(now - boundary_at);
        boundary_at = now;
        last = m.sum("natsmon_poll_cycles_total");
        let bytes0 = m.sum("natsmon_poll_response_bytes_total");
        let cycles0 = last;
        let mut wall_max = 0f64;
        let mut wall_all = Vec::new();
        let mut m = m;
        for _ in 0..cycles {
            m = wait_boundary(&mut nm, last + nodes as f64, true, &mut detect_scrapes, boundary_at, period).await;
            let now = Instant::now();
            period = period.max(now - boundary_at).min(def.interval * 4);
            boundary_at = now;
            last = m.sum("natsmon_poll_cycles_total");
            let per = m.per_node("natsmon_poll_cycle_duration_seconds");
            assert!(per.len() >= nodes, "natsmon_poll_cycle_duration_seconds has {} node series, want {nodes}", per.len());
            for v in per.values() {
                wall_max = wall_max.max(*v);
                wall_all.push(*v);
            }
        }
        let cpu1 = proc_cpu_secs(pid, tck);
        let bytes1 = m.sum("natsmon_poll_response_bytes_total");
        let cycles_done = (last - cycles0) / nodes as f64;
        let raw_cpu_ms = (cpu1 - cpu0) * 1e3 / cycles_done;
        let bytes_per_cycle = (bytes1 - bytes0) / cycles_done;

        // ---- render + size
        let (body, _) = scrape(&client, &url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let mm = Metrics::parse(&String::from_utf8_lossy(&body));
        let render_ms = mm.single("natsmon_render_duration_seconds") * 1e3;
        let render_bytes_metric = mm.single("natsmon_render_bytes");
        let metrics_bytes = body.len();
        drop(mm);

        // ---- concurrent scrape load
        nm.assert_alive();
        let c_before = get(&mut nm, false, &mut 0).await.sum("natsmon_poll_cycles_total");
        let lcpu0 = proc_cpu_secs(pid, tck);
        let client_cpu0 = thread_cpu_secs(tck);
        let until = Instant::now() + Duration::from_secs_f64(scrape_secs);
        let t_load = Instant::now();
        let mut tasks = Vec::new();
        let client2 = client.clone();
        for _ in 0..SCRAPERS {
            let client = client2.clone();
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < until {
                    match scrape_count(&client, &url).await {
                        Ok((_, d)) => lat.push(d),
                        Err(e) => return Err(e),
                    }
                }
                Ok(lat)
            }));
        }
        let mut lat = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(l) => lat.extend(l),
                Err(e) => {
                    nm.assert_alive();
                    panic!("scraper failed: {e}");
                }
            }
        }
        let load_secs = t_load.elapsed().as_secs_f64();
        let lcpu1 = proc_cpu_secs(pid, tck);
        let client_util = (thread_cpu_secs(tck) - client_cpu0) / load_secs;
        let c_after = get(&mut nm, false, &mut 0).await.sum("natsmon_poll_cycles_total");
        assert!(!lat.is_empty(), "no successful scrapes");
        lat.sort();
        let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1].as_secs_f64() * 1e3;
        // natsmon CPU per scrape, net of the poll cycles that ran meanwhile.
        let cycles_in_load = (c_after - c_before) / nodes as f64;
        let scrape_cpu_ms =
            (((lcpu1 - lcpu0) * 1e3 - cycles_in_load * raw_cpu_ms).max(0.0)) / lat.len() as f64;
        let detect_per_cycle = detect_scrapes as f64 / cycles_done;
        let cycle_cpu_ms = (raw_cpu_ms - detect_per_cycle * scrape_cpu_ms).max(0.0);

        Row {
            key: def.key.to_string(),
            version: scale.shape.version(),
            args: if def.args.is_empty() { "defaults".into() } else { def.args.join(" ") },
            first_cycle_bytes,
            nodes,
            cycle_wall_max_ms: wall_max * 1e3,
            cycle_wall_mean_ms: wall_all.iter().sum::<f64>() / wall_all.len() as f64 * 1e3,
            cycle_cpu_ms,
            cycle_cpu_raw_ms: raw_cpu_ms,
            detect_scrapes_per_cycle: detect_per_cycle,
            scrape_cpu_ms,
            bytes_per_cycle,
            render_ms,
            render_bytes_metric,
            metrics_bytes,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            max_ms: lat.last().unwrap().as_secs_f64() * 1e3,
            scrapes_per_s: lat.len() as f64 / load_secs,
            client_util,
            natsmon_util_load: (lcpu1 - lcpu0) / load_secs,
            ..Default::default()
        }
    });
    nm.assert_alive();
    row.hwm_mib = status_kib(pid, "VmHWM:") as f64 / 1024.0;
    row.rss_mib = status_kib(pid, "VmRSS:") as f64 / 1024.0;
    row.base_cpu_ms = base_cpu_ms;
    row.base_wall_ms = base_wall_ms;
    row.base_bytes = base_bytes;
    row.now_cpu_ms = now_cpu_ms;
    row.now_bytes = now_bytes;
    row.synth_setup_s = synth_setup_s;
    drop(nm);
    drop(rt);
    drop(cluster);
    synth_rt.shutdown_timeout(Duration::from_secs(2));
    eprintln!(
        "   done: cycle cpu {:.1} ms, wall max {:.1} ms, p99 {:.1} ms, HWM {:.1} MiB",
        row.cycle_cpu_ms, row.cycle_wall_max_ms, row.p99_ms, row.hwm_mib
    );
    row
}

fn main() {
    // `cargo bench` passes `--bench`. Under `cargo test --all-targets` it does not: then
    // run a short smoke pass of scale (a), which still exercises the whole harness.
    let smoke = !std::env::args().any(|a| a == "--bench");
    if smoke {
        eprintln!(
            "natsmon exporter bench: smoke run (use `cargo bench --bench exporter` for the full benchmark)"
        );
    }
    let wanted: Vec<String> = std::env::var("NATSMON_BENCH_SCALES")
        .unwrap_or_else(|_| {
            if smoke {
                "a".into()
            } else {
                "a,b,c,b12-all,b12,b12-cl".into()
            }
        })
        .split(',')
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    let cycles = env_usize("NATSMON_BENCH_CYCLES", if smoke { 1 } else { 4 }).max(1);
    let scrape_secs =
        env_usize("NATSMON_BENCH_SCRAPE_SECS", if smoke { 1 } else { 5 }).max(1) as f64;
    let tck = clk_tck();
    let defs: Vec<ScaleDef> = scales()
        .into_iter()
        .filter(|d| wanted.iter().any(|w| w == d.key))
        .collect();
    assert!(
        !defs.is_empty(),
        "NATSMON_BENCH_SCALES={wanted:?} selects no scale (use a,b,c,b12-all,b12,b12-cl)"
    );
    eprintln!(
        "natsmon exporter bench: {} cycles/scale, {SCRAPERS} scrapers x {scrape_secs}s, CLK_TCK={tck}, {} CPUs",
        cycles,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    let rows: Vec<Row> = defs
        .iter()
        .map(|d| run_scale(d, tck, cycles, scrape_secs))
        .collect();
    let mib = |b: f64| b / 1048576.0;

    println!();
    println!(
        "| scale | server | natsmon flags | nodes | cycle wall ms (max) | cycle CPU ms | bytes/cycle MiB | first cycle MiB | baseline MiB | bytes ratio | baseline fetch+parse ms | CPU ratio | bare parse of natsmon's reads ms | render ms | /metrics bytes | scrape p50 ms | scrape p99 ms | peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.3} | {:.1} | {:.2} | {:.1} | {:.2} | {} | {:.2} | {:.2} | {:.1} |",
            r.key,
            r.version,
            r.args,
            r.nodes,
            r.cycle_wall_max_ms,
            r.cycle_cpu_ms,
            mib(r.bytes_per_cycle),
            mib(r.first_cycle_bytes),
            mib(r.base_bytes),
            r.bytes_per_cycle / r.base_bytes.max(1.0),
            r.base_cpu_ms,
            r.cycle_cpu_ms / r.base_cpu_ms.max(1e-9),
            r.now_cpu_ms,
            r.render_ms,
            r.metrics_bytes,
            r.p50_ms,
            r.p99_ms,
            r.hwm_mib
        );
    }
    println!();
    println!(
        "Details (cycle CPU = raw window CPU minus the detection scrapes' estimated CPU; baseline = single-thread CPU of bare GET + serde_json::Value parse of every endpoint of every node):"
    );
    for r in &rows {
        println!(
            "- {}: cycle wall mean {:.1} ms; cycle CPU raw {:.1} ms ({:.1} detection scrapes/cycle at {:.2} ms CPU each); baseline wall {:.1} ms, {:.2} MiB fetched (natsmon {:.2} MiB; bare read of natsmon's steady-state requests {:.2} MiB); render_bytes metric {} vs GET body {}; scrape max {:.2} ms, {:.1} scrapes/s (CPU utilisation during scrape load: natsmon {:.2} cores, single-thread scraper client {:.2}); VmRSS {:.1} MiB; synth setup {:.1}s",
            r.key,
            r.cycle_wall_mean_ms,
            r.cycle_cpu_raw_ms,
            r.detect_scrapes_per_cycle,
            r.scrape_cpu_ms,
            r.base_wall_ms,
            mib(r.base_bytes),
            mib(r.bytes_per_cycle),
            mib(r.now_bytes),
            r.render_bytes_metric,
            r.metrics_bytes,
            r.max_ms,
            r.scrapes_per_s,
            r.natsmon_util_load,
            r.client_util,
            r.rss_mib,
            r.synth_setup_s
        );
    }
    println!();
    println!("Targets:");
    let find = |k: &str| rows.iter().find(|r| r.key == k);
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    match find("b") {
        Some(b) => {
            println!(
                "- scale (b) CPU per cycle < 250 ms: {:.1} ms — {}",
                b.cycle_cpu_ms,
                verdict(b.cycle_cpu_ms < 250.0)
            );
            println!(
                "- scale (b) /metrics p99 < 50 ms with {SCRAPERS} scrapers: {:.2} ms — {}",
                b.p99_ms,
                verdict(b.p99_ms < 50.0)
            );
            println!(
                "- scale (b) peak RSS < 150 MiB: {:.1} MiB — {}",
                b.hwm_mib,
                verdict(b.hwm_mib < 150.0)
            );
        }
        None => println!("- scale (b) targets: not run"),
    }
    match find("c") {
        Some(c) => println!(
            "- scale (c) poll cycle < 15 s: {:.0} ms — {}",
            c.cycle_wall_max_ms,
            verdict(c.cycle_wall_max_ms < 15_000.0)
        ),
        None => println!("- scale (c) cycle target: not run"),
    }
    // Against the baseline, i.e. what natsmon read before the leader filter.
    let all_bytes = find("b12-all").map(|r| r.bytes_per_cycle);
    for r in rows.iter().filter(|r| r.key.starts_with("b12")) {
        let vs_all = all_bytes
            .map(|a| format!(", {:.3} of b12-all's", r.bytes_per_cycle / a))
            .unwrap_or_default();
        println!(
            "- {} ({}): bytes/cycle <= 1/3 of every replica read (baseline): {:.2} MiB = {:.3} of {:.2} MiB{vs_all} — {}",
            r.key,
            r.args,
            mib(r.bytes_per_cycle),
            r.bytes_per_cycle / r.base_bytes,
            mib(r.base_bytes),
            verdict(r.bytes_per_cycle * 3.0 <= r.base_bytes)
        );
        println!(
            "- {} ({}): CPU/cycle <= 0.35x bare parse of the old reads: {:.1} ms = {:.2}x {:.1} ms — {}",
            r.key,
            r.args,
            r.cycle_cpu_ms,
            r.cycle_cpu_ms / r.base_cpu_ms,
            r.base_cpu_ms,
            verdict(r.cycle_cpu_ms <= 0.35 * r.base_cpu_ms)
        );
    }
}
