//! Log shipper faults between natsmon and its peers: a Docker log stream cut mid-way
//! (through a proxy in front of dockerd's socket), and the line buffer while Loki
//! refuses pushes.

use std::time::Duration;

use crate::harness::docker::{self, Container};
use crate::harness::docker_proxy::DockerProxy;
use crate::harness::loki::Mode;
use crate::harness::shipper::{
    ShipperSetup, assert_exactly_once, assert_exactly_once_as, docker_truth, wait_lines,
};
use crate::harness::{Natsmon, scrape, wait_for};

/// Lines each container of the stream-cut test writes.
const CUT_LINES: usize = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shipper_stream_cut() {
    let _d = docker::dockerd_shared();
    // Every container's first logs connection is cut 2 s after natsmon opened it.
    let proxy = DockerProxy::start(Duration::from_secs(2));
    let mut sh = ShipperSetup::start("cut").await;
    sh.docker_host = proxy.url();
    let nm = Natsmon::start(&sh.natsmon_args(&[])).await;
    // Two long-lived containers writing numbered lines a few ms apart while the cut happens.
    let containers: Vec<Container> = ["a", "b"]
        .iter()
        .map(|s| {
            Container::run(
                &sh.name(s),
                &[],
                &docker::as_strs(&docker::log_generator_cmd(
                    CUT_LINES,
                    &format!("cut {s} line"),
                    3,
                )),
            )
        })
        .collect();
    for c in &containers {
        c.wait_exit(Duration::from_secs(120));
    }
    for c in &containers {
        wait_lines(&sh.loki, c, CUT_LINES, Duration::from_secs(40)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The proxy did cut each container's stream while it was being written.
    let cuts = proxy.cuts();
    for cut in &cuts {
        eprintln!("[shipper_stream_cut] cut: {}", cut.request_line);
    }
    for c in &containers {
        assert!(
            cuts.iter()
                .any(|cut| c.id.starts_with(&cut.container) || cut.container == c.name),
            "{}'s logs stream was never cut: cuts {cuts:?}; requests {:?}",
            c.name,
            proxy.requests()
        );
    }
    // Every line exactly once: nothing lost at the cut, nothing read twice after it.
    assert!(
        sh.loki.decode_errors().is_empty(),
        "{:?}",
        sh.loki.decode_errors()
    );
    let all = sh.loki.entries();
    for c in &containers {
        assert_exactly_once(&all, c);
    }
    // The restart is counted ...
    let exp = scrape(&nm.base_url()).await;
    let restarts = exp.sum("natsmon_logs_tailer_restarts_total", &[]);
    assert!(
        restarts >= 1.0,
        "natsmon_logs_tailer_restarts_total sums to {restarts} after {} cut streams:\n{}",
        cuts.len(),
        exp.text
    );
    for s in exp.all("natsmon_logs_tailer_restarts_total") {
        assert!(
            matches!(s.label("reason"), Some("stream_ended" | "stream_error")),
            "unexpected reason: {s:?}"
        );
    }
    // ... and logged once per container and incident, not once per retry or line.
    let log = nm.stderr_contents();
    for c in &containers {
        let incidents = cuts
            .iter()
            .filter(|cut| c.id.starts_with(&cut.container) || cut.container == c.name)
            .count();
        let warns: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") && l.contains(&c.name))
            .collect();
        assert!(
            warns.len() <= incidents,
            "{}: {} WARN lines for {incidents} cut stream(s):\n{}",
            c.name,
            warns.len(),
            warns.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn buffered_bytes_rise_and_fall() {
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("buffered").await;
    // Loki refuses every push until told otherwise.
    sh.loki.set_mode(Mode::Status(503));
    let nm = Natsmon::start(&sh.natsmon_args(&[])).await;
    let c = Container::run(
        &sh.name("writer"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(200, "buffered line", 5)),
    );
    let during = wait_for(&nm.base_url(), Duration::from_secs(30), |e| {
        e.get("natsmon_logs_buffered_bytes", &[])
            .is_some_and(|v| v > 0.0)
    })
    .await;
    assert_eq!(
        during.get("natsmon_logs_loki_up", &[]),
        Some(0.0),
        "Loki answers 503"
    );
    c.wait_exit(Duration::from_secs(60));
    // Still held while Loki keeps refusing.
    let held = scrape(&nm.base_url()).await;
    assert!(
        held.get("natsmon_logs_buffered_bytes", &[])
            .is_some_and(|v| v > 0.0),
        "{}",
        held.text
    );

    sh.loki.set_mode(Mode::Accept);
    wait_lines(&sh.loki, &c, 200, Duration::from_secs(30)).await;
    let after = wait_for(&nm.base_url(), Duration::from_secs(10), |e| {
        e.get("natsmon_logs_buffered_bytes", &[]) == Some(0.0)
    })
    .await;
    assert_eq!(after.get("natsmon_logs_loki_up", &[]), Some(1.0));
    assert_exactly_once(&sh.loki.entries(), &c);
}

/// Lines of the rename-while-full test: several times what the small buffer holds.
const RENAME_LINES: usize = 1500;

/// A container renamed while its tailer waits for buffer room (Loki refusing): the old
/// tailer is stopped with a line already read, and the new one resumes after that line.
/// The line must go on, not be lost between the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rename_while_the_buffer_is_full_loses_no_line() {
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("renfull").await;
    sh.loki.set_mode(Mode::Status(503));
    let nm = Natsmon::start(&sh.natsmon_args(&[
        "--buffer-max-bytes",
        "65536",
        "--max-line-bytes",
        "16384",
    ]))
    .await;
    let script = format!(
        "i=1; while [ $i -le {RENAME_LINES} ]; do echo \"renamed line $i\"; i=$((i + 1)); done; exec sleep 3600"
    );
    let c = Container::run(&sh.name("before"), &[], &["/bin/sh", "-c", &script]);
    let old = c.name.clone();
    // Full: the tailer has read a line and waits for room for it.
    wait_for(&nm.base_url(), Duration::from_secs(30), |e| {
        e.get("natsmon_logs_buffered_bytes", &[])
            .is_some_and(|v| v > 60000.0)
    })
    .await;
    let new = sh.name("after");
    docker::docker(&["rename", &c.id, &new]);
    // The new tailer has started (and waits for room in its turn).
    wait_for(&nm.base_url(), Duration::from_secs(30), |e| {
        e.all("natsmon_logs_lines_read_total")
            .iter()
            .any(|s| s.label("container") == Some(new.as_str()))
    })
    .await;
    sh.loki.set_mode(Mode::Accept);
    // Both names' lines, as one container's.
    let as_old = || -> Vec<_> {
        sh.loki
            .entries()
            .into_iter()
            .filter(|e| matches!(e.label("container_name"), Some(n) if n == old || n == new))
            .map(|mut e| {
                e.labels.insert("container_name".into(), old.clone());
                e
            })
            .collect()
    };
    let t = std::time::Instant::now();
    while as_old().len() < RENAME_LINES && t.elapsed() < Duration::from_secs(40) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = as_old();
    assert!(
        got.iter()
            .any(|e| e.label("container_name") == Some(old.as_str())),
        "no line under either name"
    );
    assert!(
        sh.loki
            .entries()
            .iter()
            .any(|e| e.label("container_name") == Some(new.as_str())),
        "no line under the new name: the rename did not restart the tailer mid-stream"
    );
    assert_exactly_once_as(&got, &old, &docker_truth(&c));
}
