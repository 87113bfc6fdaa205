//! dockerd restarts under a running natsmon: the event stream drops, natsmon reconnects
//! with backoff, and shipping resumes without loss or duplicates. Restarting dockerd
//! must not cut other tests' containers: `docker::restart_dockerd` waits until no other
//! test holds a `docker::dockerd_shared()` guard, and this test holds one itself except
//! while it restarts dockerd.

use std::time::{Duration, Instant};

use crate::harness::docker::{self, Container};
use crate::harness::loki::LokiReceiver;
use crate::harness::natsmon::Natsmon;
use crate::harness::scrape;
use crate::harness::shipper::ShipperSetup;

async fn wait_count(loki: &LokiReceiver, name: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let lines: Vec<String> = loki
            .entries()
            .into_iter()
            .filter(|e| e.label("container_name") == Some(name))
            .map(|e| e.line)
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shipping_resumes_after_dockerd_restarts() {
    docker::ensure_docker();
    // No dockerd restart by another test while our containers run.
    let shared = docker::dockerd_shared();
    let sh = ShipperSetup::start("shipd").await;
    let (loki, prefix) = (&sh.loki, &sh.prefix);
    let nm = Natsmon::start(&sh.natsmon_args(&[])).await;
    let before = Container::run(
        &format!("{prefix}-before"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(100, "before", 0)),
    );
    before.wait_exit(Duration::from_secs(30));
    assert_eq!(wait_count(loki, &before.name, 100).await.len(), 100);

    drop(shared);
    docker::restart_dockerd();
    let _shared = docker::dockerd_shared();

    // Started after the restart: natsmon must have reconnected to see it.
    let after = Container::run(
        &format!("{prefix}-after"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(100, "after", 0)),
    );
    after.wait_exit(Duration::from_secs(30));
    let lines = wait_count(loki, &after.name, 100).await;
    let mut sorted = lines.clone();
    sorted.sort();
    let mut want: Vec<String> = (1..=100).map(|i| format!("after {i}")).collect();
    want.sort();
    assert_eq!(sorted, want);
    // The container from before the restart runs again: its new lines only, once each.
    before.start();
    before.wait_exit(Duration::from_secs(30));
    let mut lines = wait_count(loki, &before.name, 200).await;
    lines.sort();
    lines.dedup();
    assert_eq!(
        lines.len(),
        100,
        "the same 100 texts, twice each (two runs), no more"
    );
    assert_eq!(
        loki.entries()
            .iter()
            .filter(|e| e.label("container_name") == Some(before.name.as_str()))
            .count(),
        200
    );
    let exp = scrape(&nm.base_url()).await;
    assert!(
        exp.sum("natsmon_logs_docker_errors_total", &[]) >= 1.0,
        "the dropped event stream is counted"
    );
    assert!(
        nm.stderr_contents().contains("reconnecting"),
        "{}",
        nm.stderr_contents()
    );
}
