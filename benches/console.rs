//! Console latency benchmark: the pages and `/api/v1/status` for a cluster of 1,000
//! streams with 5 consumers each (5,000 consumers), 3 nodes and 20 tailed containers,
//! under 10 concurrent clients.
//!
//! Run: `cargo bench --bench console` (harness = false). The real router is served on
//! 127.0.0.1:0 over a synthetic store; each client loops over `/`, `/streams`,
//! `/consumers` and `/api/v1/status`, reading every body whole. A stand-in for the render
//! loop replaces the cluster view every second (a poll interval of 1 s, five times
//! natsmon's default), so the per-view caches are rebuilt under load and their cost is
//! in the figures. Prints p50/p99/max per path; the target is p99 < 50 ms.
//!
//! Under `cargo test --all-targets` (no `--bench`) it runs a smoke pass of a few hundred
//! requests at the same size. Optional env: `NATSMON_BENCH_ROUNDS` (requests per client
//! and path; 100, smoke 5).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use natsmon::config::RawConfig;
use natsmon::console::Console;
use natsmon::http::{AppState, BasicAuth};
use natsmon::logs::status::{PushResult, ShipperStatus, TailedContainer};
use natsmon::nats::accstatz::{AccountStat, Accstatz};
use natsmon::nats::jsz::{AccountDetail, Jsz};
use natsmon::nats::metrics::Metrics;
use natsmon::nats::routez::{RouteInfo, Routez};
use natsmon::nats::snapshot::{NodePoll, Store};
use natsmon::nats::varz::{
    ClusterOpts, JetStreamConfig, JetStreamStats, JetStreamVarz, MetaCluster, Varz,
};
use natsmon::nats::view::{ClusterView, ConsumerView, MemberView, MetaView, PeerView, StreamView};

const NODES: usize = 3;
const STREAMS: usize = 1000;
const CONSUMERS_PER_STREAM: usize = 5;
const ACCOUNTS: usize = 10;
const CLIENTS: usize = 10;
const PATHS: [&str; 4] = ["/", "/streams", "/consumers", "/api/v1/status"];
const TARGET_P99: Duration = Duration::from_millis(50);

fn node(i: usize) -> String {
    format!("n{i}")
}

fn poll(i: usize) -> NodePoll {
    let name = node(i);
    NodePoll {
        varz: Some(Varz {
            server_id: format!("NSERVER{i:0>50}"),
            server_name: name.clone(),
            version: "2.10.24".into(),
            start: Some("2024-05-01T12:00:00Z".into()),
            mem: Some(512 << 20),
            cpu: Some(35.5),
            cores: Some(8),
            connections: Some(1200),
            subscriptions: Some(40_000),
            slow_consumers: Some(3),
            routes: Some((NODES - 1) as u64),
            cluster: ClusterOpts {
                name: "bench".into(),
                ..Default::default()
            },
            jetstream: JetStreamVarz {
                config: Some(JetStreamConfig {
                    max_memory: Some(8 << 30),
                    max_storage: Some(1 << 40),
                    domain: String::new(),
                }),
                stats: Some(JetStreamStats {
                    memory: 1 << 30,
                    storage: 300 << 30,
                    ..Default::default()
                }),
                meta: Some(MetaCluster {
                    name: "bench".into(),
                    leader: node(0),
                    cluster_size: NODES as u64,
                    replicas: Vec::new(),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        jsz: Some(Jsz {
            account_details: (0..ACCOUNTS)
                .map(|a| AccountDetail {
                    name: format!("ACC{a}"),
                    storage: 30 << 30,
                    reserved_storage: Some(100 << 30),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        accstatz: Some(Accstatz {
            account_statz: (0..ACCOUNTS)
                .map(|a| AccountStat {
                    acc: format!("ACC{a}"),
                    conns: 120,
                    num_subscriptions: Some(4000),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        routez: Some(Routez {
            routes: (0..NODES)
                .filter(|j| *j != i)
                .map(|j| RouteInfo {
                    remote_name: node(j),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        finished_at: Some(SystemTime::now()),
        duration: Duration::from_millis(180),
        ..Default::default()
    }
}

fn peers(leader: usize, salt: usize) -> Vec<PeerView> {
    (1..NODES)
        .map(|k| PeerView {
            name: node((leader + k) % NODES),
            current: !salt.is_multiple_of(97),
            offline: false,
            lag: (salt % 13) as u64,
            active_seconds: 0.2,
        })
        .collect()
}

fn view() -> ClusterView {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut v = ClusterView::default();
    for i in 0..STREAMS {
        let leader = i % NODES;
        let account = format!("ACC{}", i % ACCOUNTS);
        let name = format!("STREAM_{i:04}");
        v.streams.push(StreamView {
            cluster: "bench".into(),
            account: account.clone(),
            name: name.clone(),
            replicas: NODES as u64,
            leader: node(leader),
            has_leader: true,
            leader_polled: true,
            available: !i.is_multiple_of(250),
            messages: (i as u64 + 1) * 1000,
            bytes: (i as u64 + 1) * 1_000_000,
            first_seq: 1,
            last_seq: (i as u64 + 1) * 1000,
            max_msgs: i.is_multiple_of(2).then_some(10_000_000),
            max_bytes: Some(10 << 30),
            consumers: CONSUMERS_PER_STREAM as u64,
            storage: "file".into(),
            peers: peers(leader, i),
        });
        for c in 0..CONSUMERS_PER_STREAM {
            let salt = i * CONSUMERS_PER_STREAM + c;
            v.consumers.push(ConsumerView {
                cluster: "bench".into(),
                account: account.clone(),
                stream: name.clone(),
                name: format!("consumer_{c}"),
                leader: node((leader + c) % NODES),
                has_leader: true,
                leader_polled: true,
                available: true,
                num_pending: (salt % 5000) as u64,
                num_ack_pending: (salt % 100) as u64,
                num_redelivered: (salt % 7) as u64,
                num_waiting: 1,
                lag: Some((salt % 5000) as u64),
                delivered_stream_seq: 900,
                ack_floor_stream_seq: 880,
                last_active: Some(now - (salt % 60) as f64),
                stalled: salt.is_multiple_of(101),
                peers: peers((leader + c) % NODES, salt),
            });
        }
    }
    v.meta.push(MetaView {
        cluster: "bench".into(),
        leader: node(0),
        leader_polled: true,
        cluster_size: NODES as u64,
        peers: peers(0, 1),
    });
    for i in 0..NODES {
        v.members.push(MemberView {
            cluster: "bench".into(),
            server_name: node(i),
            node: Some(node(i)),
            polled: true,
            routes: (0..NODES).filter(|j| *j != i).map(node).collect(),
        });
    }
    v
}

fn state() -> (AppState, Arc<Store>) {
    let raw = RawConfig {
        nats_urls: Some(
            (0..NODES)
                .map(|i| format!("{}=http://127.0.0.1:{}", node(i), 8222 + i))
                .collect(),
        ),
        loki_url: Some("http://loki:3100".into()),
        state_dir: Some(std::env::temp_dir()),
        ..Default::default()
    };
    let settings = Arc::new(raw.validate_with_env(&|_| None).expect("settings"));
    let store = Arc::new(Store::new(settings.nodes.iter().map(|n| n.name.as_str())));
    for i in 0..NODES {
        store.update(&node(i), poll(i));
    }
    store.set_view(view());
    let shipper = Arc::new(ShipperStatus::default());
    shipper.set_loki_up(true);
    shipper.record_push(PushResult::Accepted, 1200, Duration::from_millis(9));
    shipper.set_containers(
        (0..20)
            .map(|i| TailedContainer {
                name: format!("app-{i}").into(),
                job: "docker".into(),
                service: format!("app-{i}"),
            })
            .collect(),
    );
    shipper.set_buffer(300_000, 2000, 0.8);
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let state = AppState {
        store: store.clone(),
        registry: Arc::new(registry),
        metrics,
        ready: Arc::new(AtomicBool::new(true)),
        settings,
        auth: Arc::new(BasicAuth::default()),
        console: Arc::new(Console::new(SystemTime::now(), Some(shipper))),
    };
    (state, store)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let rounds: usize = std::env::var("NATSMON_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 5 } else { 100 })
        .max(1);
    println!(
        "natsmon console bench: {STREAMS} streams x {CONSUMERS_PER_STREAM} consumers, {NODES} nodes, \
         {CLIENTS} concurrent clients, {rounds} rounds of {} paths per client{}",
        PATHS.len(),
        if smoke {
            " (smoke run; `cargo bench --bench console` for the full one)"
        } else {
            ""
        }
    );
    // natsmon's side (server and render loop) and the clients run on separate runtimes,
    // as a browser is a separate process: a client decoding a body must not hold up a
    // worker the server needs. They still share the machine's cores.
    let server_rt = tokio::runtime::Runtime::new().expect("runtime");
    let (state, store) = state();
    // What a new view costs once: outside a runtime the console builds it in place.
    for _ in 0..if smoke { 1 } else { 3 } {
        store.set_view(view());
        let t = Instant::now();
        let n = state.console.status_json(&store, &state.settings).len();
        println!(
            "per-view build (JSON, rows, deflate) and one answer: {} ({} KiB of JSON)",
            ms(t.elapsed()),
            n / 1024
        );
    }
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    let app = natsmon::http::router(state);
    let server = server_rt.spawn(async move { axum::serve(listener, app).await });
    // The render loop's part, on its own thread as natsmon renders on the blocking pool:
    // a new view every second.
    let base = view();
    let stop = Arc::new(AtomicBool::new(false));
    let renderer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut renders = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                store.set_view(base.clone());
                renders += 1;
            }
            renders
        })
    };
    let clients_rt = tokio::runtime::Runtime::new().expect("runtime");
    for gzip in [true, false] {
        clients_rt.block_on(run(addr, rounds, gzip, smoke));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let renders = renderer.join().unwrap_or(0);
    server.abort();
    println!("{renders} view replacements during the runs");
}

/// One pass: `CLIENTS` clients, each `rounds` times over every path; a table of latencies.
async fn run(addr: std::net::SocketAddr, rounds: usize, gzip: bool, smoke: bool) {
    {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CLIENTS)
            .build()
            .unwrap();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut samples: Vec<(usize, Duration, Duration, usize, usize)> = Vec::new();
                for r in 0..rounds {
                    for k in 0..PATHS.len() {
                        // Clients start on different paths, so all four are always in flight.
                        let p = (k + c + r) % PATHS.len();
                        let t = Instant::now();
                        let mut req = client.get(format!("http://{addr}{}", PATHS[p]));
                        if gzip {
                            req = req.header("accept-encoding", "gzip");
                        }
                        let resp = req.send().await.expect("request");
                        let headers_at = t.elapsed();
                        assert!(
                            resp.status().is_success(),
                            "{}: {}",
                            PATHS[p],
                            resp.status()
                        );
                        let body = resp.bytes().await.expect("body");
                        // Decoded as a browser would, and within the measured time.
                        let len = if gzip {
                            use std::io::Read as _;
                            let mut out = Vec::new();
                            flate2::read::GzDecoder::new(&body[..])
                                .read_to_end(&mut out)
                                .expect("gzip body");
                            out.len()
                        } else {
                            body.len()
                        };
                        samples.push((p, t.elapsed(), headers_at, len, body.len()));
                    }
                }
                samples
            }));
        }
        let mut by_path: Vec<Vec<Duration>> = vec![Vec::new(); PATHS.len()];
        let mut to_headers: Vec<Vec<Duration>> = vec![Vec::new(); PATHS.len()];
        let mut sizes = [(0usize, 0usize); PATHS.len()];
        for t in tasks {
            for (p, d, hd, n, wire) in t.await.expect("client") {
                by_path[p].push(d);
                to_headers[p].push(hd);
                sizes[p] = (n, wire);
            }
        }
        let wall = started.elapsed();
        println!(
            "\n{}: {} requests in {:.1} s\n",
            if gzip {
                "Accept-Encoding: gzip (decoded by the client)"
            } else {
                "no compression"
            },
            by_path.iter().map(Vec::len).sum::<usize>(),
            wall.as_secs_f64()
        );
        println!(
            "| path | requests | body | on the wire | p50 | p99 | max | p99 to headers |\n|---|---|---|---|---|---|---|---|"
        );
        let mut worst = Duration::ZERO;
        for (p, mut v) in by_path.into_iter().enumerate() {
            v.sort();
            to_headers[p].sort();
            let p99 = pct(&v, 0.99);
            worst = worst.max(p99);
            println!(
                "| `{}` | {} | {:.1} KiB | {:.1} KiB | {} | {} | {} | {} |",
                PATHS[p],
                v.len(),
                sizes[p].0 as f64 / 1024.0,
                sizes[p].1 as f64 / 1024.0,
                ms(pct(&v, 0.50)),
                ms(p99),
                ms(*v.last().unwrap()),
                ms(pct(&to_headers[p], 0.99))
            );
        }
        if smoke {
            println!("\n(smoke run in a test build: figures are not the benchmark's)");
        } else {
            println!(
                "\ntarget p99 < {}: {}",
                ms(TARGET_P99),
                if worst < TARGET_P99 { "met" } else { "NOT met" }
            );
        }
    }
}
