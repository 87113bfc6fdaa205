//! The version sweep: the releases users run (scripts/nats-servers.sh fetches 2.10, 2.11,
//! 2.12 and 2.15 by default; `NATS_VERSIONS` picks the set), each as a real 3-node
//! cluster with an R3 stream and a durable consumer in known state. natsmon must read
//! each exactly, de-duplicate the replicas, survive a node kill with the leaders moving,
//! and count no poll error on a healthy node. What newer releases add (`/raftz`, and the
//! newer `/varz` fields, some on a standalone TLS server with GOMEMLIMIT) is asserted
//! present with sane values where the release has it and absent where it has not.
//! The full suite runs on Debian's 2.9.10;
//! this lighter sweep runs on every other release. A failure names the version.

use std::time::Duration;

use async_nats::jetstream;

use crate::harness::*;

/// `read_leaders`: natsmon also reads consumer leaders whole, so the consumer's own
/// leader report must be used after failover; else its figures may come from its stream
/// leader's report (pending derived), and must be exact all the same.
async fn sweep_one(version: &str, bin: std::path::PathBuf, read_leaders: bool) {
    let mut cluster = Cluster::start_with(bin).await;
    let a = connect(&cluster, "a", "a").await;
    let js = jetstream::new(a.clone());
    // 50 published, 20 delivered, 15 acknowledged: pending 30, ack pending 5.
    orders_with_billing(&js, 50, 20, 15).await;

    let extra: &[&str] = if read_leaders {
        &["--jsz-read-consumer-leaders"]
    } else {
        &[]
    };
    let nm = Natsmon::start(&natsmon_args(&cluster, ("500ms", "400ms"), extra)).await;
    let base = nm.base_url();
    let s = [("stream", "ORDERS")];
    let c = [("stream", "ORDERS"), ("consumer", "billing")];
    let exp = tokio::time::timeout(
        Duration::from_secs(35),
        wait_for(&base, Duration::from_secs(30), |e| {
            // Healthy too: a replica just written to reports "catching up" on
            // /healthz?details=true for a moment on a loaded machine.
            e.sum("nats_up", &[]) == 3.0
                && e.sum("nats_healthz_ok", &[]) == 3.0
                && raft_settled(e)
                && e.get("nats_stream_messages", &s) == Some(50.0)
                && e.get("nats_consumer_num_pending", &c) == Some(30.0)
                && e.get("nats_consumer_num_ack_pending", &c) == Some(5.0)
        }),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{version}: natsmon never read the known state:\n{}",
            nm.output()
        )
    });
    for i in 0..3 {
        let name = cluster.server_name(i);
        let v = exp
            .samples
            .iter()
            .find(|x| x.name == "nats_server_info" && x.label("node") == Some(&name))
            .and_then(|x| x.label("version").map(str::to_string));
        assert_eq!(
            v.as_deref(),
            Some(version),
            "{version}: nats_server_info of {name}"
        );
    }
    // One series per stream and consumer across three replicas.
    let count = |name: &str| exp.samples.iter().filter(|x| x.name == name).count();
    assert_eq!(count("nats_stream_messages"), 1, "{version}");
    assert_eq!(count("nats_consumer_num_pending"), 1, "{version}");
    assert_eq!(
        exp.sum("nats_healthz_ok", &[]),
        3.0,
        "{version}: /healthz?details=true is healthy"
    );
    assert_eq!(
        exp.get("nats_stream_has_leader", &s),
        Some(1.0),
        "{version}"
    );
    assert_eq!(
        exp.get("nats_stream_leader_polled", &s),
        Some(1.0),
        "{version}"
    );
    assert_eq!(
        exp.sum("nats_jetstream_meta_has_leader", &[]),
        3.0,
        "{version}"
    );
    assert_eq!(
        exp.sum("nats_cluster_member_polled", &[]),
        3.0,
        "{version}: every member is polled"
    );
    assert_eq!(
        exp.sum("natsmon_poll_errors_total", &[]),
        0.0,
        "{version}: a healthy cluster fails no poll:\n{}",
        exp.text
    );
    let (ok, out) = promtool_check_metrics(&exp.text);
    assert!(ok, "{version}: promtool check metrics: {out}");
    newer_fields(version, &exp);
    tls_and_memory_limit(version, &cluster).await;

    // Kill the stream leader: figures stay exact and a new leader is polled.
    let leader = exp
        .samples
        .iter()
        .find(|x| x.name == "nats_stream_info" && x.label("stream") == Some("ORDERS"))
        .and_then(|x| x.label("leader").map(str::to_string))
        .unwrap_or_else(|| panic!("{version}: no stream leader"));
    let idx = (0..3).find(|i| cluster.server_name(*i) == leader).unwrap();
    cluster.kill(idx);
    let after = tokio::time::timeout(
        Duration::from_secs(40),
        wait_for(&base, Duration::from_secs(40), |e| {
            // Exact figures come from the leaders once both groups have elected one.
            e.get("nats_up", &[("node", &leader)]) == Some(0.0)
                && e.get("nats_stream_leader_polled", &s) == Some(1.0)
                && e.get("nats_consumer_has_leader", &c) == Some(1.0)
                && (!read_leaders || e.get("nats_consumer_leader_polled", &c) == Some(1.0))
                && e.samples.iter().any(|x| {
                    x.name == "nats_stream_info"
                        && x.label("stream") == Some("ORDERS")
                        && x.label("leader")
                            .is_some_and(|l| l != leader && !l.is_empty())
                })
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("{version}: no failover seen:\n{}", nm.output()));
    assert_eq!(
        after.get("nats_stream_messages", &s),
        Some(50.0),
        "{version}"
    );
    assert_eq!(
        after.get("nats_consumer_num_pending", &c),
        Some(30.0),
        "{version}"
    );
    let after_count = |name: &str| after.samples.iter().filter(|x| x.name == name).count();
    assert_eq!(after_count("nats_stream_messages"), 1, "{version}");
    assert_eq!(after_count("nats_consumer_num_pending"), 1, "{version}");
}

/// `(major, minor, patch)` of a release name such as `2.12.8`.
fn release(version: &str) -> (u64, u64, u64) {
    let mut p = version
        .split(['.', '-'])
        .map(|x| x.parse::<u64>().unwrap_or(0));
    (
        p.next().unwrap_or(0),
        p.next().unwrap_or(0),
        p.next().unwrap_or(0),
    )
}

/// Every node reports its Raft groups, and the meta, ORDERS and billing groups each
/// have exactly one leader among them (all releases of the sweep serve /raftz).
fn raft_settled(e: &Exposition) -> bool {
    // Every node reports meta, ORDERS and billing: a node that leads no stream learns
    // which accounts to ask `/raftz` about from the cluster view, one poll later.
    ["meta", "stream", "consumer"]
        .iter()
        .all(|k| e.sum("nats_raft_group_is_leader", &[("kind", k)]) == 1.0)
        && ["n1", "n2", "n3"]
            .iter()
            .all(|n| e.get("nats_raft_groups", &[("node", n)]) == Some(3.0))
}

/// What /varz, /raftz and /healthz?details=true of newer releases add, read from the
/// live cluster: present with sane values where the release has it, absent where not.
fn newer_fields(version: &str, exp: &Exposition) {
    let v = release(version);
    let nodes = 3;
    let present = |name: &str, want: bool| {
        let n = exp.count(name, &[]);
        if want {
            assert_eq!(n, nodes, "{version}: {name} on every node:\n{}", exp.text);
        } else {
            assert_eq!(n, 0, "{version}: {name} must be absent:\n{}", exp.text);
        }
    };
    // /raftz (2.10.17+): meta, ORDERS and billing on every node, each group R3.
    for node in ["n1", "n2", "n3"] {
        let n = [("node", node)];
        assert_eq!(
            exp.get("nats_raft_groups", &n),
            Some(3.0),
            "{version}: {node}"
        );
        assert_eq!(
            exp.get("nats_raft_groups_behind", &n),
            Some(0.0),
            "{version}: {node}"
        );
        for kind in ["meta", "stream", "consumer"] {
            let g = [("node", node), ("kind", kind)];
            assert_eq!(
                exp.get("nats_raft_group_size", &g),
                Some(3.0),
                "{version}: {node} {kind}"
            );
            assert_eq!(
                exp.get("nats_raft_group_quorum_needed", &g),
                Some(2.0),
                "{version}: {node} {kind}"
            );
            assert_eq!(
                exp.get("nats_raft_group_peers", &g),
                Some(2.0),
                "{version}: {node} {kind}"
            );
            assert_eq!(
                exp.get("nats_raft_group_has_leader", &g),
                Some(1.0),
                "{version}"
            );
            assert_eq!(
                exp.get("nats_raft_group_wal_error", &g),
                Some(0.0),
                "{version}"
            );
            assert_eq!(
                exp.get("nats_raft_group_catching_up", &g),
                Some(0.0),
                "{version}"
            );
            assert!(
                exp.get("nats_raft_group_term", &g) >= Some(1.0),
                "{version}: term"
            );
            let committed = exp.get("nats_raft_group_committed_index", &g).unwrap();
            let applied = exp.get("nats_raft_group_applied_index", &g).unwrap();
            assert!(
                committed >= 1.0 && applied <= committed,
                "{version}: {node} {kind}"
            );
        }
    }
    for kind in ["meta", "stream", "consumer"] {
        // Only the leader knows how current its peers are.
        let current = exp.filter("nats_raft_group_peers_current", &[("kind", kind)]);
        assert_eq!(
            current.len(),
            1,
            "{version}: {kind} peers_current on the leader only"
        );
        assert!(current[0].value <= 2.0, "{version}");
    }
    let accounts = exp.label_values("nats_raft_group_term", "account");
    assert_eq!(accounts, ["A", "SYS"], "{version}: groups by account");
    // slow_consumer_stats (2.10+): four kinds per node, none slow here.
    assert_eq!(
        exp.count("nats_varz_slow_consumers_by_kind_total", &[]),
        4 * nodes
    );
    assert_eq!(exp.sum("nats_varz_slow_consumers_by_kind_total", &[]), 0.0);
    // meta.pending (2.10+).
    present("nats_jetstream_meta_pending", true);
    assert_eq!(
        exp.sum("nats_jetstream_meta_pending", &[]),
        0.0,
        "{version}"
    );
    // api.level (2.11+): 1 on 2.11, 3 on 2.12, 5 on 2.15.
    present("nats_jetstream_api_level", v >= (2, 11, 0));
    if v >= (2, 11, 0) {
        assert!(exp.sum("nats_jetstream_api_level", &[]) >= 3.0, "{version}");
    }
    // stale_connections, stalled_clients and stale_connection_stats (2.12+).
    present("nats_varz_stale_connections_total", v >= (2, 12, 0));
    present("nats_varz_stalled_clients_total", v >= (2, 12, 0));
    assert_eq!(
        exp.count("nats_varz_stale_connections_by_kind_total", &[]),
        if v >= (2, 12, 0) { 4 * nodes } else { 0 },
        "{version}"
    );
    assert_eq!(exp.sum("nats_varz_stale_connections_total", &[]), 0.0);
    assert_eq!(exp.sum("nats_varz_stalled_clients_total", &[]), 0.0);
    // disk_io_wait_stats (2.12.14+): idle, so no waiter now.
    present("nats_varz_disk_io_waiters", v >= (2, 12, 14));
    present("nats_varz_disk_io_waits_total", v >= (2, 12, 14));
    present("nats_varz_disk_io_wait_seconds_total", v >= (2, 12, 14));
    present("nats_varz_disk_io_max_wait_seconds", v >= (2, 12, 14));
    assert_eq!(exp.sum("nats_varz_disk_io_waiters", &[]), 0.0, "{version}");
    // meta.snapshot: /varz has it `null` up to 2.12.8 (filled in /jsz only); 2.15
    // fills it. Entries since the last snapshot: the streams and consumers created.
    let snapshot = v >= (2, 15, 0);
    present("nats_jetstream_meta_snapshot_pending_entries", snapshot);
    present("nats_jetstream_meta_snapshot_pending_bytes", snapshot);
    for s in exp.all("nats_jetstream_meta_snapshot_pending_bytes") {
        assert!(
            s.value < 1e9,
            "{version}: meta snapshot backlog {}",
            s.value
        );
    }
    // No TLS and no GOMEMLIMIT on the cluster: see tls_and_memory_limit.
    present("nats_varz_tls_cert_not_after_seconds", false);
    present("nats_varz_gomemlimit_bytes", false);
    // A healthy cluster has no /healthz errors.
    present("nats_healthz_errors", false);
}

/// `tls_cert_not_after` (2.11.12+) and `gomemlimit` (2.11.11+) need a TLS listener and
/// GOMEMLIMIT: one standalone server of the release with both, and natsmon on it.
async fn tls_and_memory_limit(version: &str, cluster: &Cluster) {
    let v = release(version);
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
    let mut child = std::process::Command::new(cluster.bin())
        .arg("-c")
        .arg(&conf)
        .env("GOMEMLIMIT", "512MiB")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let args = args(&[
        "--nats-url",
        &format!("tls-1=http://127.0.0.1:{http}"),
        "--poll-interval",
        "500ms",
        "--poll-timeout",
        "400ms",
    ]);
    let nm = Natsmon::start(&args).await;
    let exp = tokio::time::timeout(
        Duration::from_secs(20),
        wait_for(&nm.base_url(), Duration::from_secs(20), |e| {
            e.get("nats_up", &[("node", "tls-1")]) == Some(1.0)
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("{version}: the TLS server was never up:\n{}", nm.output()));
    let _ = child.kill();
    let _ = child.wait();
    let tls = exp.filter("nats_varz_tls_cert_not_after_seconds", &[]);
    if v >= (2, 11, 12) {
        assert_eq!(tls.len(), 1, "{version}: {}", exp.text);
        assert_eq!(tls[0].label("listener"), Some("client"), "{version}");
        // The certificate was made valid for 30 days.
        let left = tls[0].value - ::natsmon::time::unix_now_f64();
        assert!(
            (29.0 * 86400.0..=30.0 * 86400.0 + 60.0).contains(&left),
            "{version}: certificate expires in {left}s"
        );
    } else {
        assert!(tls.is_empty(), "{version}: {}", exp.text);
    }
    let limit = exp.get("nats_varz_gomemlimit_bytes", &[("node", "tls-1")]);
    let want = (v >= (2, 11, 11)).then_some(512.0 * 1024.0 * 1024.0);
    assert_eq!(limit, want, "{version}: GOMEMLIMIT=512MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_release_in_the_matrix_is_read_exactly_and_fails_over() {
    let matrix = nats_server_matrix();
    assert!(!matrix.is_empty(), "the version matrix is empty");
    for (i, (version, bin)) in matrix.into_iter().enumerate() {
        // Every other release with consumer leaders read whole: both ways are swept.
        let read_leaders = i % 2 == 1;
        eprintln!(
            "[versions] nats-server {version} ({}), consumer leaders read whole: {read_leaders}",
            bin.display()
        );
        sweep_one(&version, bin, read_leaders).await;
    }
}

/// One 2.9.10 node (read whole: it has no `stream-leader-only`) and two nodes of the
/// oldest release in the matrix (read filtered; 2.9.10 forms no JetStream cluster with
/// 2.12 and later): the figures stay exact, once per stream and consumer, also after
/// the stream leader is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_version_cluster_is_read_exactly() {
    let (version, newer) = nats_server_matrix()
        .into_iter()
        .next()
        .expect("the version matrix is empty");
    let old = nats_server_bin();
    let mut cluster = Cluster::start_mixed([old, newer.clone(), newer]).await;
    let a = connect(&cluster, "a", "a").await;
    let js = jetstream::new(a.clone());
    orders_with_billing(&js, 40, 12, 10).await;
    let nm = Natsmon::start(&natsmon_args(&cluster, ("500ms", "400ms"), &[])).await;
    let base = nm.base_url();
    let s = [("stream", "ORDERS")];
    let c = [("stream", "ORDERS"), ("consumer", "billing")];
    let exact = |e: &Exposition| {
        e.get("nats_stream_messages", &s) == Some(40.0)
            && e.get("nats_consumer_num_pending", &c) == Some(28.0)
            && e.get("nats_consumer_num_ack_pending", &c) == Some(2.0)
            && e.samples
                .iter()
                .filter(|x| x.name == "nats_stream_messages")
                .count()
                == 1
    };
    let exp = tokio::time::timeout(
        Duration::from_secs(35),
        wait_for(&base, Duration::from_secs(30), |e| {
            e.sum("nats_up", &[]) == 3.0 && exact(e)
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("2.9.10 + {version}: never exact:\n{}", nm.output()));
    let versions: Vec<String> = exp
        .samples
        .iter()
        .filter(|x| x.name == "nats_server_info")
        .filter_map(|x| x.label("version").map(str::to_string))
        .collect();
    assert!(
        versions.iter().any(|v| v == "2.9.10") && versions.contains(&version),
        "{versions:?}"
    );
    let leader = exp
        .samples
        .iter()
        .find(|x| x.name == "nats_stream_info" && x.label("stream") == Some("ORDERS"))
        .and_then(|x| x.label("leader").map(str::to_string))
        .expect("no stream leader");
    let idx = (0..3).find(|i| cluster.server_name(*i) == leader).unwrap();
    cluster.kill(idx);
    tokio::time::timeout(
        Duration::from_secs(40),
        wait_for(&base, Duration::from_secs(40), |e| {
            e.get("nats_up", &[("node", &leader)]) == Some(0.0)
                && e.get("nats_stream_leader_polled", &s) == Some(1.0)
                && exact(e)
        }),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "2.9.10 + {version}: not exact after failover:\n{}",
            nm.output()
        )
    });
}

/// `/raftz` is most of what natsmon reads from a clustered server, so it is read once a
/// minute by default (`--raftz-interval`) while `/jsz` is read every poll; a stream
/// created meanwhile changes the groups `/jsz` reports, and has `/raftz` read at once.
/// On the newest release of the matrix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raftz_is_read_once_a_minute_and_at_once_when_groups_change() {
    let (version, bin) = nats_server_matrix()
        .into_iter()
        .last()
        .expect("the version matrix is empty");
    let cluster = Cluster::start_with(bin).await;
    let a = connect(&cluster, "a", "a").await;
    let js = jetstream::new(a.clone());
    orders_with_billing(&js, 10, 0, 0).await;
    let nm = Natsmon::start(&natsmon_args(&cluster, ("500ms", "400ms"), &[])).await;
    let base = nm.base_url();
    let polls =
        |e: &Exposition, endpoint: &str| e.sum("natsmon_polls_total", &[("endpoint", endpoint)]);
    let settled = wait_for(&base, Duration::from_secs(30), |e| {
        e.sum("nats_up", &[]) == 3.0 && raft_settled(e)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = scrape(&base).await;
    let jsz = polls(&later, "jsz") - polls(&settled, "jsz");
    assert!(
        jsz >= 12.0,
        "{version}: {jsz} /jsz reads in 4 s from 3 nodes"
    );
    assert_eq!(
        polls(&later, "raftz"),
        polls(&settled, "raftz"),
        "{version}: /raftz was read again within its minute"
    );

    // A new R3 stream: its group shows on every node long before the minute is up.
    let config = async_nats::jetstream::stream::Config {
        name: "LATER".into(),
        subjects: vec!["later.>".into()],
        num_replicas: 3,
        ..Default::default()
    };
    until_ok(&format!("{version}: create LATER"), || {
        js.create_stream(config.clone())
    })
    .await;
    let t = std::time::Instant::now();
    let seen = tokio::time::timeout(
        Duration::from_secs(20),
        wait_for(&base, Duration::from_secs(20), |e| {
            ["n1", "n2", "n3"]
                .iter()
                .all(|n| e.get("nats_raft_groups", &[("node", n)]) == Some(4.0))
        }),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{version}: the new stream's group never showed:\n{}",
            nm.output()
        )
    });
    assert!(
        polls(&seen, "raftz") > polls(&later, "raftz"),
        "{version}: /raftz was read again"
    );
    eprintln!(
        "[versions] {version}: the new group showed after {:.1}s",
        t.elapsed().as_secs_f64()
    );
}
