//! Keeps the README's metric reference and the live `/metrics` in step: every family a
//! real cluster produces is documented, and every documented family is produced either
//! live or by the golden snapshots (gateways, leaf nodes and 2.10+ fields need a
//! topology or server version the live cluster does not have).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::harness::exposition::families;
use crate::harness::readme::documented_families;
use crate::harness::*;
use ::natsmon::exposition::openmetrics_to_prometheus;
use async_nats::jetstream::{self, stream};

fn golden_families() -> BTreeSet<String> {
    let dir = repo_root().join("tests/golden");
    let mut all = BTreeSet::new();
    for f in ["2.9.10.om.txt", "2.12.om.txt", "2.15.1.om.txt"] {
        let om = std::fs::read_to_string(dir.join(f)).unwrap();
        all.extend(families(&openmetrics_to_prometheus(&om)));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readme_metric_reference_matches_live_metrics() {
    let cluster = Cluster::start().await;
    let js = jetstream::new(connect(&cluster, "a", "a").await);
    create_stream(
        &js,
        stream::Config {
            name: "LIMITED".into(),
            subjects: vec!["lim.>".into()],
            num_replicas: 3,
            max_messages: 1000,
            max_bytes: 1 << 20,
            max_consumers: 10,
            max_messages_per_subject: 5,
            max_age: Duration::from_secs(3600),
            ..Default::default()
        },
    )
    .await;
    create_stream(
        &js,
        stream::Config {
            name: "AGG".into(),
            sources: Some(vec![stream::Source {
                name: "LIMITED".into(),
                ..Default::default()
            }]),
            ..Default::default()
        },
    )
    .await;
    publish_acked(&js, "lim.a", "x", "lim-a-1").await;
    let stream = until_ok("get stream LIMITED", || js.get_stream("LIMITED")).await;
    until_ok("create consumer c", || {
        stream.create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("c".into()),
            ..Default::default()
        })
    })
    .await;

    // A dead node, so that the error counter family exists.
    let dead = format!("dead=http://127.0.0.1:{}", free_port());
    let a = natsmon_args(
        &cluster,
        ("500ms", "400ms"),
        &["--nats-url", &dead, "--connection-metrics-limit", "2"],
    );
    let nm = Natsmon::start(&a).await;
    let exp = wait_for(&nm.base_url(), Duration::from_secs(20), |e| {
        e.get("nats_stream_source_lag", &[("stream", "AGG")])
            .is_some()
            // A source reports no activity until its first message has come across
            // (2.15 answers `active: -1` for a moment after the publish).
            && e.get("nats_stream_source_active_seconds", &[("stream", "AGG")])
                .is_some()
            && e.get("nats_consumer_num_pending", &[("consumer", "c")])
                .is_some()
            && e.has("natsmon_poll_errors_total")
            && e.sum("nats_up", &[]) == 3.0
    })
    .await;

    let documented = documented_families();
    let live = families(&exp.text);
    let golden = golden_families();
    assert!(
        documented.len() > 100,
        "the reference looks truncated: {documented:?}"
    );

    let undocumented: Vec<_> = live.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "families on /metrics missing from the README reference: {undocumented:?}"
    );
    let seen: BTreeSet<String> = live.union(&golden).cloned().collect();
    // The log shipper's families exist only with --loki-url; tests/shipper.rs checks them.
    let phantom: Vec<_> = documented
        .difference(&seen)
        .filter(|f| !f.starts_with("natsmon_logs_"))
        .collect();
    assert!(
        phantom.is_empty(),
        "README documents families natsmon never produced: {phantom:?}"
    );
    let undocumented_golden: Vec<_> = golden.difference(&documented).collect();
    assert!(
        undocumented_golden.is_empty(),
        "golden families missing from the README: {undocumented_golden:?}"
    );

    // The limits and source figures this test set up are exact.
    let l = [("stream", "LIMITED")];
    assert_eq!(exp.get("nats_stream_max_messages", &l), Some(1000.0));
    assert_eq!(exp.get("nats_stream_max_bytes", &l), Some(1048576.0));
    assert_eq!(exp.get("nats_stream_max_consumers", &l), Some(10.0));
    assert_eq!(
        exp.get("nats_stream_max_messages_per_subject", &l),
        Some(5.0)
    );
    assert_eq!(exp.get("nats_stream_max_age_seconds", &l), Some(3600.0));
}
