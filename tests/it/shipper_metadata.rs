//! Loki 3 structured metadata from a real container's nats-server lines: `cid`,
//! `remote_addr` and `account` ride as EntryAdapter field 3 (decoded by the receiver), and
//! a Loki that refuses them gets every line once, without them, after one WARN.

use std::time::Duration;

use crate::harness::docker::{self, Container};
use crate::harness::loki::{Mode, Received};
use crate::harness::shipper::{
    ShipperSetup, assert_exactly_once, for_container, stored, wait_lines,
};
use crate::harness::{Natsmon, scrape};

/// Lines each writer prints: odd ones are client connection lines, even ones are not.
const LINES: usize = 60;

/// A container printing nats-server lines: `[1] <date> [INF] 10.0.0.<i>:5000 - cid:<i> -
/// "app" - "APP/user:a" - Client connection created <i>` on odd `i`, and
/// `[1] <date> [INF] Server message <i>` on even `i`.
fn writer(sh: &ShipperSetup, suffix: &str) -> Container {
    let script = format!(
        "i=1; while [ $i -le {LINES} ]; do \
           ts=$(date -u '+%Y/%m/%d %H:%M:%S'); \
           if [ $((i % 2)) -eq 1 ]; then \
             printf '[1] %s.000001 [INF] 10.0.0.%d:5000 - cid:%d - \"app\" - \"APP/user:a\" - Client connection created %d\\n' \"$ts\" $i $i $i; \
           else printf '[1] %s.000001 [INF] Server message %d\\n' \"$ts\" $i; fi; \
           sleep 0.02; i=$((i + 1)); \
         done"
    );
    Container::run(&sh.name(suffix), &[], &["/bin/sh", "-c", &script])
}

/// The number at the end of a line the writer printed.
fn number(e: &Received) -> usize {
    e.line.rsplit(' ').next().unwrap().trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn structured_metadata_is_sent_and_dropped_once_when_loki_refuses_it() {
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("smeta").await;
    let nm = Natsmon::start(&sh.natsmon_args(&[])).await;

    // A Loki that takes structured metadata gets it on connection lines, and only there.
    let a = writer(&sh, "a");
    a.wait_exit(Duration::from_secs(60));
    wait_lines(&sh.loki, &a, LINES, Duration::from_secs(30)).await;
    let all = sh.loki.entries();
    assert_exactly_once(&all, &a);
    for e in for_container(&all, &a.name) {
        let i = number(e);
        if i % 2 == 1 {
            let want = vec![
                ("remote_addr".to_string(), format!("10.0.0.{i}:5000")),
                ("cid".to_string(), i.to_string()),
                ("account".to_string(), "APP".to_string()),
            ];
            assert_eq!(e.structured_metadata, want, "line {i}: {}", e.line);
        } else {
            assert!(
                e.structured_metadata.is_empty(),
                "line {i} has metadata: {:?}",
                e.structured_metadata
            );
        }
        // Never a label: the label set stays bounded.
        assert!(e.label("cid").is_none() && e.label("account").is_none());
    }

    // Loki with allow_structured_metadata off: one WARN, then everything goes without it,
    // and every line is stored once (the lines Loki kept from the refused push come again
    // identical, which Loki ignores as it does here).
    sh.loki.set_mode(Mode::RejectStructuredMetadata);
    let b = writer(&sh, "b");
    b.wait_exit(Duration::from_secs(60));
    wait_lines(&sh.loki, &b, LINES, Duration::from_secs(30)).await;
    // In Loki's time order: the refused push stored its plain lines before the resend
    // brought the rest, and Loki accepts a stream's lines out of order within its window.
    let mut kept = stored(&sh.loki.entries());
    kept.sort_by_key(|e| e.ts_ns);
    assert_exactly_once(&kept, &b);
    assert_exactly_once(&kept, &a);
    for e in for_container(&kept, &b.name) {
        assert!(
            e.structured_metadata.is_empty(),
            "a refused field was stored: {e:?}"
        );
    }
    let refused = sh
        .loki
        .requests()
        .iter()
        .filter(|r| r.status == 400)
        .count();
    assert_eq!(refused, 1, "Loki refused metadata {refused} times");

    let exp = scrape(&nm.base_url()).await;
    assert_eq!(
        exp.get(
            "natsmon_logs_push_retries_total",
            &[("reason", "structured_metadata")]
        ),
        Some(1.0),
        "{}",
        exp.text
    );
    // Nothing was counted as rejected: the lines were sent again, not dropped.
    assert_eq!(exp.sum("natsmon_logs_lines_rejected_total", &[]), 0.0);
    let log = nm.stderr_contents();
    let warns: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Loki refuses structured metadata"))
        .collect();
    assert_eq!(warns.len(), 1, "{log}");
    assert!(warns[0].contains("WARN"), "{}", warns[0]);
}
