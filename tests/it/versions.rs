//! The version sweep: the releases users run (scripts/nats-servers.sh fetches 2.10, 2.11,
//! 2.12 and 2.15 by default; `NATS_VERSIONS` picks the set), each as a real 3-node
//! cluster with an R3 stream and a durable consumer in known state. natsmon must read
//! each exactly, de-duplicate the replicas, survive a node kill with the leaders moving,
//! and count no poll error on a healthy node. The full suite runs on Debian's 2.9.10;
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
        Duration::from_secs(30),
        wait_for(&base, Duration::from_secs(30), |e| {
            e.sum("nats_up", &[]) == 3.0
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
        Duration::from_secs(30),
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
