//! dockerd restarts under a running natsmon: the event stream drops, natsmon reconnects
//! with backoff, and shipping resumes without loss or duplicates. Kept in its own test
//! binary because restarting dockerd must not cut other tests' containers.

mod common;

use std::time::{Duration, Instant};

use common::docker::{self, Container};
use common::loki::LokiReceiver;
use common::*;

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
    let loki = LokiReceiver::start().await;
    let state = tempfile::tempdir().unwrap();
    let prefix = docker::unique_name("shipd");
    let nm = Natsmon::start(&args(&[
        "--nats-url",
        &format!("none=http://127.0.0.1:{}", free_port()),
        "--poll-interval",
        "30s",
        "--loki-url",
        &loki.url(),
        "--docker-host",
        &docker::docker_host(),
        "--state-dir",
        state.path().to_str().unwrap(),
        "--include-containers",
        &format!("{prefix}*"),
        "--batch-max-wait",
        "200ms",
    ]))
    .await;
    let before = Container::run(
        &format!("{prefix}-before"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(100, "before", 0)),
    );
    before.wait_exit(Duration::from_secs(30));
    assert_eq!(wait_count(&loki, &before.name, 100).await.len(), 100);

    docker::restart_dockerd();

    // Started after the restart: natsmon must have reconnected to see it.
    let after = Container::run(
        &format!("{prefix}-after"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(100, "after", 0)),
    );
    after.wait_exit(Duration::from_secs(30));
    let lines = wait_count(&loki, &after.name, 100).await;
    let mut sorted = lines.clone();
    sorted.sort();
    let mut want: Vec<String> = (1..=100).map(|i| format!("after {i}")).collect();
    want.sort();
    assert_eq!(sorted, want);
    // The container from before the restart runs again: its new lines only, once each.
    before.start();
    before.wait_exit(Duration::from_secs(30));
    let mut lines = wait_count(&loki, &before.name, 200).await;
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
