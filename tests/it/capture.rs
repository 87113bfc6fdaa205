//! Captures the monitoring fixtures in `tests/fixtures/nats/<version>/` from a live
//! cluster (ignored; run on purpose, see tests/fixtures/nats/README.md):
//!
//! ```sh
//! NATSMON_CAPTURE="2.12=target/nats-servers/2.12.8/nats-server;2.15.1=target/nats-servers/2.15.1/nats-server" \
//!   cargo test --test it -- capture:: --ignored
//! ```
//!
//! Each entry is `directory=binary`. The cluster is the harness one (accounts SYS, A, B)
//! with the R3 stream ORDERS and the durable `billing` of `orders_with_billing` in
//! account A, plus an R1 stream EVENTS with the durable `audit` in account B. Bodies are
//! written exactly as the server sent them (nats-server pretty-prints its JSON), so
//! integers such as `u64::MAX` stay exact. `varz_tls.json` comes from a standalone
//! server with a TLS client listener and `GOMEMLIMIT=512MiB`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};

use crate::harness::http::http_get;
use crate::harness::*;

/// (file, request) taken from the node that leads the meta group, ORDERS and billing.
const LEADER: &[(&str, &str)] = &[
    ("varz.json", "/varz"),
    (
        "jsz.json",
        "/jsz?accounts=true&streams=true&consumers=true&config=true&raft=true",
    ),
    ("connz.json", "/connz?limit=2"),
    (
        "connz_auth.json",
        "/connz?limit=2&offset=1&auth=true&subs=true",
    ),
    ("routez.json", "/routez"),
    ("healthz.json", "/healthz?details=true"),
    ("accstatz.json", "/accstatz?unused=1"),
    ("subsz.json", "/subsz"),
    ("subsz_subs.json", "/subsz?subs=true&limit=2"),
    // Without `acc` only the system account (the meta group); natsmon asks per account.
    ("raftz.json", "/raftz"),
    ("raftz_A.json", "/raftz?acc=A"),
    ("raftz_B.json", "/raftz?acc=B"),
];

/// (file, request) taken from a follower.
const FOLLOWER: &[(&str, &str)] = &[
    ("varz_follower.json", "/varz"),
    (
        "jsz_follower.json",
        "/jsz?accounts=true&streams=true&consumers=true&config=true",
    ),
    ("raftz_follower.json", "/raftz"),
    ("raftz_follower_A.json", "/raftz?acc=A"),
];

async fn body(cluster: &Cluster, i: usize, path: &str) -> (u16, String) {
    let url = format!("{}{path}", cluster.monitor_url(i));
    http_get(&url).await.unwrap_or_else(|e| panic!("{e}"))
}

fn write(dir: &Path, file: &str, (status, text): (u16, String)) {
    serde_json::from_str::<serde_json::Value>(&text)
        .unwrap_or_else(|e| panic!("{file}: HTTP {status}, not JSON ({e}): {text}"));
    let mut text = text;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    std::fs::write(dir.join(file), text).unwrap();
    eprintln!("[capture] {} (HTTP {status})", dir.join(file).display());
}

/// The leader of a stream (or one of its consumers) as node `i` reports it.
async fn group_leader(cluster: &Cluster, i: usize, consumer: bool) -> String {
    let j = cluster
        .json(i, "/jsz?accounts=true&streams=true&consumers=true")
        .await;
    let st = &j["account_details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
        .find(|s| s["name"] == "ORDERS")
        .cloned()
        .unwrap_or_default();
    let cl = if consumer {
        st["consumer_detail"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == "billing")
            .map(|c| c["cluster"].clone())
            .unwrap_or_default()
    } else {
        st["cluster"].clone()
    };
    cl["leader"].as_str().unwrap_or_default().to_string()
}

/// Moves the ORDERS and billing leaders onto the meta leader, so that one node's
/// captures show all three led.
async fn lead_all_on(cluster: &Cluster, a: &async_nats::Client, meta: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for (consumer, subject) in [
        (false, "$JS.API.STREAM.LEADER.STEPDOWN.ORDERS"),
        (true, "$JS.API.CONSUMER.LEADER.STEPDOWN.ORDERS.billing"),
    ] {
        loop {
            let l = group_leader(cluster, 0, consumer).await;
            if l == meta {
                break;
            }
            assert!(Instant::now() < deadline, "{subject}: leader stays {l}");
            if !l.is_empty() {
                let _ = a.request(subject, "".into()).await;
            }
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
    }
}

async fn capture_one(dir: PathBuf, bin: PathBuf) {
    std::fs::create_dir_all(&dir).unwrap();
    let mut cluster = Cluster::start_with(bin.clone()).await;
    let a = connect(&cluster, "a", "a").await;
    orders_with_billing(&jetstream::new(a.clone()), 40, 20, 16).await;
    let b = connect(&cluster, "b", "b").await;
    let jb = jetstream::new(b.clone());
    let events = jb
        .create_stream(stream::Config {
            name: "EVENTS".into(),
            subjects: vec!["events.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    for i in 0..5 {
        jb.publish(format!("events.{i}"), "e".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    events
        .create_consumer(pull::Config {
            durable_name: Some("audit".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let meta = cluster.meta_leader(0).await.expect("a meta leader");
    lead_all_on(&cluster, &a, &meta).await;
    // Let the followers apply what the leader committed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let leader = (0..3).find(|i| cluster.server_name(*i) == meta).unwrap();
    let follower = (leader + 1) % 3;
    for (file, path) in LEADER {
        write(&dir, file, body(&cluster, leader, path).await);
    }
    for (file, path) in FOLLOWER {
        write(&dir, file, body(&cluster, follower, path).await);
    }
    // Without a quorum: the remaining node explains why it is unhealthy.
    let last = (leader + 2) % 3;
    cluster.kill(leader);
    cluster.kill(follower);
    tokio::time::sleep(Duration::from_secs(6)).await;
    write(
        &dir,
        "healthz_details_error.json",
        body(&cluster, last, "/healthz?details=true").await,
    );
    write(
        &dir,
        "raftz_leaderless.json",
        body(&cluster, last, "/raftz").await,
    );
    write(
        &dir,
        "raftz_leaderless_A.json",
        body(&cluster, last, "/raftz?acc=A").await,
    );
    drop((a, b));
    drop(cluster);
    capture_tls_standalone(&dir, &bin).await;
}

/// A standalone server with a TLS client listener and GOMEMLIMIT set: `/varz` then has
/// `tls_cert_not_after` (2.11.12+) and `gomemlimit` (2.11.11+).
async fn capture_tls_standalone(dir: &Path, bin: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    self_signed_cert(tmp.path());
    let http = free_port();
    let conf = tmp.path().join("tls.conf");
    std::fs::write(
        &conf,
        format!(
            "server_name: tls-1\nlisten: 127.0.0.1:{}\nhttp: 127.0.0.1:{http}\n\
             tls {{ cert_file: \"{d}/cert.pem\", key_file: \"{d}/key.pem\" }}\n",
            free_port(),
            d = tmp.path().display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .env("GOMEMLIMIT", "512MiB")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{http}/varz");
    let deadline = Instant::now() + Duration::from_secs(10);
    let got = loop {
        if let Ok(r) = http_get(&url).await {
            break r;
        }
        assert!(Instant::now() < deadline, "the TLS server never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    write(dir, "varz_tls.json", got);
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/fixtures/nats; run on purpose with NATSMON_CAPTURE"]
async fn capture_fixtures_from_live_servers() {
    let spec = std::env::var("NATSMON_CAPTURE").expect("NATSMON_CAPTURE=dir=bin;dir=bin");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nats");
    for entry in spec.split(';').filter(|s| !s.is_empty()) {
        let (dir, bin) = entry.split_once('=').expect("dir=bin");
        capture_one(root.join(dir), PathBuf::from(bin)).await;
    }
}
