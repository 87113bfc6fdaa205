//! Discovery against a real cluster whose nodes sit on their own loopback addresses with
//! one monitoring port (as on separate hosts): one seed URL finds all three members,
//! labelled by server name; a member that dies shows `nats_up 0` for the grace period,
//! then its series go; when it comes back it is found again. A named seed keeps its name.

use std::time::{Duration, Instant};

use crate::harness::*;

fn labels(e: &Exposition) -> Vec<String> {
    let mut v = e.label_values("nats_up", "node");
    v.sort();
    v
}

fn discover_args(seed: &str, grace: &str) -> Vec<String> {
    args(&[
        "--nats-url",
        seed,
        "--discover",
        "--discover-grace",
        grace,
        "--poll-interval",
        "500ms",
        "--poll-timeout",
        "400ms",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seed_finds_the_cluster_and_a_member_that_leaves_goes_after_the_grace() {
    let mut cluster = Cluster::start_on_loopbacks().await;
    let nm = Natsmon::start(&discover_args(&cluster.monitor_url(0), "4s")).await;
    let base = nm.base_url();
    let all = wait_for(&base, Duration::from_secs(30), |e| {
        labels(e) == ["n1", "n2", "n3"]
            && ["n1", "n2", "n3"]
                .iter()
                .all(|n| e.get("nats_up", &[("node", n)]) == Some(1.0))
    })
    .await;
    // The label is the server name, and nothing is polled under the seed's host:port.
    for n in ["n1", "n2", "n3"] {
        assert_eq!(
            all.get("nats_node_info", &[("node", n), ("server_name", n)]),
            Some(1.0),
            "{}",
            all.text
        );
    }
    let log = nm.stderr_contents();
    for n in ["n1", "n2", "n3"] {
        assert!(
            log.lines()
                .any(|l| l.contains("Discovered node.") && l.contains(&format!("node={n} "))),
            "{log}"
        );
    }

    cluster.kill(2);
    let killed = Instant::now();
    wait_for(&base, Duration::from_secs(10), |e| {
        e.get("nats_up", &[("node", "n3")]) == Some(0.0)
    })
    .await;
    // Still there, down, well within the grace...
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let during = scrape(&base).await;
    if killed.elapsed() < Duration::from_secs(3) {
        assert_eq!(
            during.get("nats_up", &[("node", "n3")]),
            Some(0.0),
            "{}",
            during.text
        );
    }
    // ...and gone after it, natsmon's own series with it; the others stay up.
    let after = wait_for(&base, Duration::from_secs(20), |e| {
        e.get("nats_up", &[("node", "n3")]).is_none()
    })
    .await;
    assert!(
        killed.elapsed() >= Duration::from_secs(4),
        "dropped {:?} after the kill, before the 4s grace",
        killed.elapsed()
    );
    assert_eq!(labels(&after), ["n1", "n2"], "{}", after.text);
    assert_eq!(
        after.count("natsmon_poll_cycles_total", &[("node", "n3")]),
        0,
        "{}",
        after.text
    );
    let log = nm.stderr_contents();
    assert!(
        log.lines().any(|l| l.contains("node=n3 ")
            && l.contains("Node was gone for the grace period; no longer polled.")),
        "{log}"
    );

    cluster.restart(2).await;
    wait_for(&base, Duration::from_secs(30), |e| {
        e.get("nats_up", &[("node", "n3")]) == Some(1.0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_seed_keeps_its_name_and_the_others_take_theirs() {
    let cluster = Cluster::start_on_loopbacks().await;
    let seed = format!("seed={}", cluster.monitor_url(1));
    let nm = Natsmon::start(&discover_args(&seed, "1m")).await;
    let e = wait_for(&nm.base_url(), Duration::from_secs(30), |e| {
        labels(e) == ["n1", "n3", "seed"]
            && ["n1", "n3", "seed"]
                .iter()
                .all(|n| e.get("nats_up", &[("node", n)]) == Some(1.0))
    })
    .await;
    assert_eq!(
        e.get("nats_node_info", &[("node", "seed"), ("server_name", "n2")]),
        Some(1.0),
        "{}",
        e.text
    );
}
