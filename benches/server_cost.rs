//! Owns the server-cost benchmark: what polling costs a real current-release cluster.
//! A real 3-node nats-server cluster (2.12.8 by default) with 300 R3 streams × 5
//! durable consumers and 3,000 client connections is measured idle, under natsmon at
//! its defaults, under natsmon with the reads of its earlier defaults (5 s poll, every
//! replica, configs every poll, every /connz page), and under the request pattern of
//! prometheus-nats-exporter scraped by two Prometheus servers every 15 s (its binary is
//! in no registry here, so the bench makes its requests: per scrape and node `/varz`,
//! `/connz`, `/routez`, `/subsz`, `/healthz` and `/jsz?consumers=true&config=true&raft=true`,
//! as v0.20.1 does with `-varz -connz -routez -subz -healthz -jsz=all`). It prints, per
//! phase, the bytes read from the servers per minute and the servers' CPU seconds per
//! minute, also above idle, each as a ratio to the exporter pattern of the same run.
//!
//! `cargo bench --bench server_cost` (needs `scripts/nats-servers.sh` to have fetched
//! the release; `NATSMON_BENCH_NATS_SERVER` names another binary, `NATSMON_BENCH_WINDOW`
//! the seconds per phase, default 60).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use natsmon_testkit::ports::free_port;
use natsmon_testkit::proc::{clk_tck, proc_cpu_secs};

/// The cluster's state: the setup under `cargo bench`, a small one for the smoke
/// run that `cargo test --all-targets` makes (it checks that the bench works, not the
/// figures).
#[derive(Clone, Copy)]
struct Scale {
    streams: usize,
    consumers_per_stream: usize,
    connections: usize,
    /// natsmon's warm-up before a phase is measured: its first poll reads every config.
    warm_up: Duration,
}

const FULL: Scale = Scale {
    streams: 300,
    consumers_per_stream: 5,
    connections: 3000,
    warm_up: Duration::from_secs(20),
};
const SMOKE: Scale = Scale {
    streams: 6,
    consumers_per_stream: 2,
    connections: 30,
    warm_up: Duration::from_secs(4),
};

struct Node {
    name: String,
    client: u16,
    http: u16,
    child: Child,
}

struct Cluster {
    _dir: tempfile::TempDir,
    nodes: Vec<Node>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            let _ = n.child.kill();
            let _ = n.child.wait();
        }
    }
}

fn server_bin() -> PathBuf {
    let p = std::env::var_os("NATSMON_BENCH_NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/nats-servers/2.12.8/nats-server")
        });
    assert!(
        p.is_file(),
        "\n*** {} NOT FOUND: run scripts/nats-servers.sh (or set NATSMON_BENCH_NATS_SERVER).\n",
        p.display()
    );
    p
}

fn start_cluster(bin: &Path) -> Cluster {
    let dir = tempfile::Builder::new()
        .prefix("natsmon-cost-")
        .tempdir()
        .unwrap();
    let ports: Vec<(u16, u16, u16)> = (0..3)
        .map(|_| (free_port(), free_port(), free_port()))
        .collect();
    let routes: Vec<String> = ports
        .iter()
        .map(|p| format!("\"nats-route://127.0.0.1:{}\"", p.1))
        .collect();
    let mut nodes = Vec::new();
    for (i, (client, cluster, http)) in ports.iter().enumerate() {
        let name = format!("n{}", i + 1);
        let store = dir.path().join(format!("{name}-store"));
        let conf = format!(
            "server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{http}\n\
             max_connections: 100000\n\
             jetstream {{ store_dir: \"{}\", max_memory_store: 1G, max_file_store: 10G }}\n\
             cluster {{ name: c1, listen: 127.0.0.1:{cluster}, routes: [{}] }}\n\
             accounts {{ A: {{ jetstream: enabled, users: [{{user: a, password: a}}] }}, \
             SYS: {{ users: [{{user: sys, password: sys}}] }} }}\nsystem_account: SYS\n",
            store.display(),
            routes.join(", ")
        );
        let path = dir.path().join(format!("{name}.conf"));
        std::fs::write(&path, conf).unwrap();
        let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        nodes.push(Node {
            name,
            client: *client,
            http: *http,
            child,
        });
    }
    Cluster { _dir: dir, nodes }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Option<serde_json::Value> {
    http.get(url).send().await.ok()?.json().await.ok()
}

/// Waits for a meta leader that sees both peers current: placement needs them.
async fn wait_ready(http: &reqwest::Client, c: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for n in &c.nodes {
            let url = format!("http://127.0.0.1:{}/jsz", n.http);
            if let Some(v) = get_json(http, &url).await
                && v.pointer("/meta_cluster/leader").and_then(|l| l.as_str()) == Some(&n.name)
            {
                let current = v
                    .pointer("/meta_cluster/replicas")
                    .and_then(|r| r.as_array())
                    .map(|r| r.iter().filter(|p| p["current"] == true).count())
                    .unwrap_or(0);
                if current == 2 {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the cluster elected no meta leader"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn create_state(c: &Cluster, scale: Scale) -> Vec<async_nats::Client> {
    use async_nats::jetstream::{self, consumer::pull, stream};
    let connect = |port: u16| async move {
        async_nats::ConnectOptions::with_user_and_password("a".into(), "a".into())
            .connect(format!("nats://127.0.0.1:{port}"))
            .await
            .expect("connect as a")
    };
    let nc = connect(c.nodes[0].client).await;
    let js = jetstream::new(nc.clone());
    for s in 0..scale.streams {
        let cfg = stream::Config {
            name: format!("S{s:03}"),
            subjects: vec![format!("s{s:03}.>")],
            num_replicas: 3,
            ..Default::default()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let st = loop {
            match js.create_stream(cfg.clone()).await {
                Ok(st) => break st,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("create stream S{s:03}: {e}"),
            }
        };
        for k in 0..scale.consumers_per_stream {
            st.create_consumer(pull::Config {
                durable_name: Some(format!("c{k}")),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("create consumer S{s:03}/c{k}: {e}"));
        }
        for m in 0..10 {
            let _ = js
                .publish(format!("s{s:03}.m"), format!("m{m}").into())
                .await;
        }
    }
    // Client connections (3,000 at full scale), a subscription each, spread over the
    // nodes. A loaded machine can miss the server's 2 s auth timeout: try again. (The
    // credentials go as options: async-nats does not take them from the URL.)
    let mut clients = vec![nc];
    for chunk in (0..scale.connections).collect::<Vec<_>>().chunks(100) {
        let batch = futures::future::join_all(chunk.iter().map(|i| {
            let url = format!("nats://127.0.0.1:{}", c.nodes[i % c.nodes.len()].client);
            async move {
                let mut tries = 0;
                let nc = loop {
                    let opts =
                        async_nats::ConnectOptions::with_user_and_password("a".into(), "a".into());
                    match opts.connect(&url).await {
                        Ok(nc) => break nc,
                        Err(e) if tries < 5 => {
                            tries += 1;
                            let _ = e;
                            tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                        }
                        Err(e) => panic!("connect client {i}: {e}"),
                    }
                };
                let sub = nc.subscribe(format!("app.{i}")).await.expect("subscribe");
                std::mem::forget(sub);
                nc
            }
        }))
        .await;
        clients.extend(batch);
    }
    clients
}

fn servers_cpu(c: &Cluster, tck: f64) -> f64 {
    c.nodes
        .iter()
        .map(|n| proc_cpu_secs(n.child.id(), tck))
        .sum()
}

struct Row {
    phase: &'static str,
    bytes_per_min: f64,
    cpu_per_min: f64,
}

/// natsmon's `natsmon_poll_response_bytes_total`, summed over nodes, by endpoint.
async fn natsmon_bytes(http: &reqwest::Client, port: u16) -> BTreeMap<String, f64> {
    let text = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("scrape natsmon")
        .text()
        .await
        .unwrap();
    let mut by = BTreeMap::new();
    for l in text
        .lines()
        .filter(|l| l.starts_with("natsmon_poll_response_bytes_total{"))
    {
        let endpoint = l
            .split("endpoint=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("?");
        if let Some(v) = l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *by.entry(endpoint.to_string()).or_insert(0.0) += v;
        }
    }
    by
}

/// Runs natsmon with `args` for a warm-up (its first poll reads every config) and then
/// one window, and returns what it read and the servers' CPU over the window.
async fn natsmon_phase(
    c: &Cluster,
    http: &reqwest::Client,
    phase: &'static str,
    args: &[&str],
    window: Duration,
    tck: f64,
    scale: Scale,
) -> Row {
    let port = free_port();
    let urls: Vec<String> = c
        .nodes
        .iter()
        .map(|n| format!("{}=http://127.0.0.1:{}", n.name, n.http))
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_natsmon"))
        .arg("--nats-url")
        .arg(urls.join(","))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .env("NATSMON_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn natsmon");
    tokio::time::sleep(scale.warm_up).await;
    let (b0, c0, t0) = (
        natsmon_bytes(http, port).await,
        servers_cpu(c, tck),
        Instant::now(),
    );
    tokio::time::sleep(window).await;
    let (b1, c1) = (natsmon_bytes(http, port).await, servers_cpu(c, tck));
    let mins = t0.elapsed().as_secs_f64() / 60.0;
    let _ = child.kill();
    let _ = child.wait();
    let by_endpoint: Vec<(String, f64)> = b1
        .iter()
        .map(|(e, v)| (e.clone(), (v - b0.get(e).unwrap_or(&0.0)) / mins))
        .collect();
    let total = by_endpoint.iter().map(|(_, v)| v).sum::<f64>();
    eprintln!(
        "[server_cost] {phase}: MB/min by endpoint: {}",
        by_endpoint
            .iter()
            .map(|(e, v)| format!("{e} {:.2}", v / 1e6))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Row {
        phase,
        bytes_per_min: total,
        cpu_per_min: (c1 - c0) / mins,
    }
}

/// Two Prometheus servers scraping prometheus-nats-exporter every 15 s: each scrape
/// makes the exporter ask every node for the endpoints below.
async fn exporter_pattern(c: &Cluster, http: &reqwest::Client, window: Duration, tck: f64) -> Row {
    const PATHS: [&str; 6] = [
        "/varz",
        "/connz",
        "/routez",
        "/subsz",
        "/healthz",
        "/jsz?consumers=true&config=true&raft=true",
    ];
    let (c0, t0) = (servers_cpu(c, tck), Instant::now());
    let mut bytes = 0usize;
    let mut next = Instant::now();
    let mut scrape = 0u64;
    while t0.elapsed() < window {
        // The two scrapers are not in step: the second runs 7.5 s after the first.
        for n in &c.nodes {
            for p in PATHS {
                let url = format!("http://127.0.0.1:{}{p}", n.http);
                if let Ok(r) = http.get(&url).send().await
                    && let Ok(b) = r.bytes().await
                {
                    bytes += b.len();
                }
            }
        }
        scrape += 1;
        next += Duration::from_millis(7500);
        tokio::time::sleep_until(next.into()).await;
    }
    let mins = t0.elapsed().as_secs_f64() / 60.0;
    let c1 = servers_cpu(c, tck);
    eprintln!("[server_cost] exporter pattern: {scrape} scrapes");
    Row {
        phase: "prometheus-nats-exporter pattern, 2 Prometheus at 15 s",
        bytes_per_min: bytes as f64 / mins,
        cpu_per_min: (c1 - c0) / mins,
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs a small smoke pass.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let scale = if smoke { SMOKE } else { FULL };
    let window = Duration::from_secs(
        std::env::var("NATSMON_BENCH_WINDOW")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if smoke { 4 } else { 60 }),
    );
    let tck = clk_tck();
    let bin = server_bin();
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cluster = start_cluster(&bin);
    let http = reqwest::Client::new();
    wait_ready(&http, &cluster).await;
    let t = Instant::now();
    let _clients = create_state(&cluster, scale).await;
    eprintln!(
        "[server_cost] {version}: {} R3 streams x {} consumers, {} connections in {:.0}s{}",
        scale.streams,
        scale.consumers_per_stream,
        scale.connections,
        t.elapsed().as_secs_f64(),
        if smoke {
            " (smoke run; `cargo bench --bench server_cost` for the figures)"
        } else {
            ""
        }
    );
    tokio::time::sleep(scale.warm_up / 2).await;
    let (c0, t0) = (servers_cpu(&cluster, tck), Instant::now());
    tokio::time::sleep(window).await;
    let idle = (servers_cpu(&cluster, tck) - c0) / (t0.elapsed().as_secs_f64() / 60.0);

    let rows = vec![
        natsmon_phase(
            &cluster,
            &http,
            "natsmon, defaults",
            &[],
            window,
            tck,
            scale,
        )
        .await,
        natsmon_phase(
            &cluster,
            &http,
            "natsmon, earlier defaults (5 s, every replica, configs, all /connz pages)",
            &[
                "--poll-interval",
                "5s",
                "--jsz-stream-leader-only=false",
                "--jsz-config-interval",
                "1s",
                "--connz-all-pages",
                "--raftz-interval",
                "1s",
            ],
            window,
            tck,
            scale,
        )
        .await,
        exporter_pattern(&cluster, &http, window, tck).await,
    ];
    let pne = rows.last().expect("rows");
    let (pne_bytes, pne_cpu) = (pne.bytes_per_min, pne.cpu_per_min - idle);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nnats-server {version}; {} R3 streams x {} consumers; {} connections; {}s per \
         phase; servers idle {idle:.2} CPU-s/min\n",
        scale.streams,
        scale.consumers_per_stream,
        scale.connections,
        window.as_secs()
    )
    .unwrap();
    writeln!(
        out,
        "| phase | MB read/min | ratio to exporter | servers CPU-s/min | above idle | ratio to exporter |"
    )
    .unwrap();
    writeln!(out, "|---|---|---|---|---|---|").unwrap();
    for r in &rows {
        let above = r.cpu_per_min - idle;
        writeln!(
            out,
            "| {} | {:.1} | {:.2} | {:.2} | {:.2} | {} |",
            r.phase,
            r.bytes_per_min / 1e6,
            r.bytes_per_min / pne_bytes,
            r.cpu_per_min,
            above,
            if pne_cpu > 0.05 {
                format!("{:.2}", above / pne_cpu)
            } else {
                "n/a (exporter within noise)".into()
            }
        )
        .unwrap();
    }
}
