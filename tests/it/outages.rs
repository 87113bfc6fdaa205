//! Outages as an operator lives them, against real clusters: a dead node is one WARN and
//! then quiet while the counters keep counting; an R1 stream on a dead node stays
//! visible as unavailable; members natsmon does not poll are named; and a leader on an
//! unpolled node is not "no leader".

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};

use crate::harness::natsmon::natsmon_args_for;
use crate::harness::*;

fn lines_with(log: &str, parts: &[&str]) -> usize {
    log.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_is_one_warn_then_quiet_while_the_counter_counts() {
    let mut cluster = Cluster::start().await;
    cluster.wait_healthy_all(Duration::from_secs(45)).await;
    let nm = Natsmon::start(&natsmon_args(&cluster, ("500ms", "400ms"), &[])).await;
    let base = nm.base_url();
    let victim = cluster.server_name(2);
    wait_for(&base, Duration::from_secs(20), |e| {
        e.get("nats_up", &[("node", &victim)]) == Some(1.0)
    })
    .await;
    cluster.kill(2);
    let down = wait_for(&base, Duration::from_secs(20), |e| {
        e.get("nats_up", &[("node", &victim)]) == Some(0.0)
    })
    .await;
    let errors = |e: &Exposition| e.sum("natsmon_poll_errors_total", &[("node", &victim)]);
    let at_down = errors(&down);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(61)).await;
    let later = scrape(&base).await;
    // About 120 failed attempts in the minute, every one counted...
    assert!(
        errors(&later) - at_down >= 60.0,
        "{} failed polls counted in {:?}",
        errors(&later) - at_down,
        started.elapsed()
    );
    // ...and one line said so.
    let log = nm.stderr_contents();
    let node = format!("node={victim} ");
    let warns: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains(&node))
        .collect();
    assert_eq!(
        warns.len(),
        1,
        "WARN lines about {victim}:\n{}",
        warns.join("\n")
    );
    assert!(
        warns[0].contains("Node is down.") && warns[0].contains("error="),
        "{}",
        warns[0]
    );
    assert_eq!(lines_with(&log, &[&node, "Poll failed."]), 0, "{log}");
    // It keeps its last known name while down.
    assert_eq!(
        later.get(
            "nats_node_info",
            &[("node", &victim), ("server_name", &victim)]
        ),
        Some(1.0),
        "{}",
        later.text
    );
    cluster.restart(2).await;
    wait_for(&base, Duration::from_secs(30), |e| {
        e.get("nats_up", &[("node", &victim)]) == Some(1.0)
    })
    .await;
    let log = nm.stderr_contents();
    assert_eq!(lines_with(&log, &[&node, "Node is up again."]), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_r1_stream_on_a_dead_node_stays_visible_as_unavailable() {
    let mut cluster = Cluster::start().await;
    cluster.wait_healthy_all(Duration::from_secs(45)).await;
    let a = connect(&cluster, "a", "a").await;
    let js = jetstream::new(a.clone());
    create_stream(
        &js,
        stream::Config {
            name: "SINGLE".into(),
            subjects: vec!["single.>".into()],
            num_replicas: 1,
            ..Default::default()
        },
    )
    .await;
    for i in 0..7 {
        publish_acked(&js, &format!("single.{i}"), "x", &format!("single-{i}")).await;
    }
    let leader = stream_leader(&js, "SINGLE").await;
    let idx = (0..cluster.len())
        .find(|i| cluster.server_name(*i) == leader)
        .unwrap();
    let nm = Natsmon::start(&natsmon_args(&cluster, ("300ms", "250ms"), &[])).await;
    let base = nm.base_url();
    let l = [("account", "A"), ("stream", "SINGLE")];
    wait_for(&base, Duration::from_secs(20), |e| {
        e.get("nats_stream_messages", &l) == Some(7.0)
            && e.get("nats_stream_available", &l) == Some(1.0)
    })
    .await;
    cluster.kill(idx);
    let gone = wait_for(&base, Duration::from_secs(20), |e| {
        e.get("nats_stream_available", &l) == Some(0.0)
    })
    .await;
    assert_eq!(gone.get("nats_stream_has_leader", &l), Some(0.0));
    assert_eq!(
        gone.get("nats_stream_messages", &l),
        None,
        "no figures without a report"
    );
    // Still there a few polls later: it does not vanish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        scrape(&base).await.get("nats_stream_available", &l),
        Some(0.0)
    );
    cluster.restart(idx).await;
    wait_for(&base, Duration::from_secs(30), |e| {
        e.get("nats_stream_available", &l) == Some(1.0)
            && e.get("nats_stream_messages", &l) == Some(7.0)
    })
    .await;
    // Deleted while its node is up: it goes away. Just after the restart the request can
    // time out; a delete that took effect before its answer was lost reads "not found".
    until_ok("delete SINGLE", || async {
        match js.delete_stream("SINGLE").await {
            Err(e) if e.to_string().contains("not found") => Ok(()),
            r => r.map(|_| ()),
        }
    })
    .await;
    wait_for(&base, Duration::from_secs(20), |e| {
        e.get("nats_stream_available", &l).is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_natsmon_does_not_poll_are_named_and_their_leaders_are_not_missing() {
    let mut cluster = Cluster::start().await;
    cluster.wait_healthy_all(Duration::from_secs(45)).await;
    let a = connect(&cluster, "a", "a").await;
    let js = jetstream::new(a.clone());
    for i in 0..6 {
        create_stream(
            &js,
            stream::Config {
                name: format!("S{i}"),
                subjects: vec![format!("s{i}.>")],
                num_replicas: 3,
                ..Default::default()
            },
        )
        .await;
    }
    // Poll only the first two nodes.
    let nm = Natsmon::start(&natsmon_args_for(
        &cluster,
        &[0, 1],
        ("300ms", "250ms"),
        &[],
    ))
    .await;
    let unpolled = cluster.server_name(2);
    let exp = wait_for(&nm.base_url(), Duration::from_secs(20), |e| {
        e.get("nats_cluster_member_polled", &[("server_name", &unpolled)]) == Some(0.0)
            && (0..6).all(|i| {
                e.get("nats_stream_has_leader", &[("stream", &format!("S{i}"))])
                    .is_some()
            })
    })
    .await;
    for i in 0..2 {
        let n = cluster.server_name(i);
        assert_eq!(
            exp.get("nats_cluster_member_polled", &[("server_name", &n)]),
            Some(1.0),
            "{n}"
        );
    }
    // Every stream has a leader, also those led by the node natsmon does not poll.
    let mut led_elsewhere = 0;
    for i in 0..6 {
        let s = format!("S{i}");
        assert_eq!(
            exp.get("nats_stream_has_leader", &[("stream", &s)]),
            Some(1.0),
            "{s}"
        );
        if exp.get("nats_stream_leader_polled", &[("stream", &s)]) == Some(0.0) {
            led_elsewhere += 1;
        }
    }
    let leaders_on_unpolled = {
        let mut n = 0;
        for i in 0..6 {
            let mut st = js.get_stream(format!("S{i}")).await.unwrap();
            let info = st.info().await.unwrap();
            if info.cluster.as_ref().and_then(|c| c.leader.as_deref()) == Some(unpolled.as_str()) {
                n += 1;
            }
        }
        n
    };
    assert_eq!(led_elsewhere, leaders_on_unpolled, "{}", exp.text);
}
