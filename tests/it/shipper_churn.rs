//! The log shipper under container churn and across a stop: many short-lived containers
//! come and go beside steady writers (part of the time through the stream-cutting Docker
//! proxy, part of it with Loki refusing pushes, and across a natsmon restart), and every
//! line still arrives exactly once while natsmon's state (metric series, positions.json)
//! returns to what the existing containers need. And lines Docker rotated away while
//! natsmon was stopped: counted, told once, the rest shipped.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::harness::docker::{self, Container};
use crate::harness::docker_proxy::DockerProxy;
use crate::harness::loki::Mode;
use crate::harness::shipper::{
    ShipperSetup, assert_exactly_once_as, docker_truth, logs_series, positions, stored, wait_lines,
};
use crate::harness::{Natsmon, scrape, wait_for};

/// Short-lived containers per phase: through the proxy, while Loki refuses, after the
/// restart.
const PHASES: [usize; 3] = [60, 40, 60];
/// Started together, then removed together once natsmon has read them.
const WAVE: usize = 10;
/// Numbered lines each short-lived container writes.
const SHORT_LINES: usize = 5;
/// The series grace the test runs with.
const GRACE: &str = "2s";

type Truth = Vec<(i128, &'static str, String)>;

/// Runs `WAVE` short-lived containers at once, waits for them to exit and for natsmon to
/// have read every line, then removes them. Returns their names and `docker logs` truth.
async fn wave(sh: &ShipperSetup, nm: &Natsmon, first: usize) -> Vec<(String, Truth)> {
    let names: Vec<String> = (first..first + WAVE)
        .map(|i| sh.name(&format!("short{i}")))
        .collect();
    let containers: Vec<Container> = std::thread::scope(|s| {
        let hs: Vec<_> = names
            .iter()
            .map(|n| {
                s.spawn(move || {
                    let cmd =
                        docker::log_generator_cmd_opts(SHORT_LINES, &format!("{n} line"), 0, 3);
                    Container::run(n, &[], &docker::as_strs(&cmd))
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut out = Vec::new();
    for c in &containers {
        c.wait_exit(Duration::from_secs(30));
        out.push((c.name.clone(), docker_truth(c)));
    }
    // Read by natsmon (not necessarily acknowledged by Loki) before it goes.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let exp = scrape(&nm.base_url()).await;
        let behind: Vec<&str> = out
            .iter()
            .filter(|(n, t)| {
                exp.get("natsmon_logs_lines_read_total", &[("container", n)])
                    .unwrap_or(0.0)
                    < t.len() as f64
            })
            .map(|(n, _)| n.as_str())
            .collect();
        if behind.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "natsmon did not read {behind:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for c in &containers {
        c.rm();
    }
    out
}

/// The container ids dockerd has now.
fn existing_ids() -> BTreeSet<String> {
    docker::docker(&["ps", "-a", "-q", "--no-trunc"])
        .lines()
        .map(String::from)
        .collect()
}

/// `natsmon_logs_*` samples once every steady writer has been read in this process.
async fn steady_series(nm: &Natsmon, steady: &[Container]) -> usize {
    wait_for(&nm.base_url(), Duration::from_secs(30), |e| {
        steady.iter().all(|c| {
            e.get("natsmon_logs_lines_sent_total", &[("container", &c.name)])
                .is_some_and(|v| v > 0.0)
        })
    })
    .await;
    // Every per-container series of the writers exists by now (lag after a gauge update).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    logs_series(&scrape(&nm.base_url()).await.text)
}

/// Waits out the grace until the series count is back at `steady`; panics with the
/// leftover series otherwise.
async fn back_to_steady(nm: &Natsmon, steady: usize, steady_names: &[&str], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let exp = scrape(&nm.base_url()).await;
        let n = logs_series(&exp.text);
        if n == steady {
            return;
        }
        if Instant::now() > deadline {
            let extra: Vec<&str> = exp
                .text
                .lines()
                .filter(|l| l.starts_with("natsmon_logs_") && l.contains("container=\""))
                .filter(|l| !steady_names.iter().any(|s| l.contains(&format!("\"{s}\""))))
                .take(10)
                .collect();
            panic!(
                "{what}: {n} natsmon_logs_* samples, {steady} at steady state; left: {extra:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shipper_churn_keeps_state_bounded_and_every_line_once() {
    let started = Instant::now();
    let _d = docker::dockerd_shared();
    // Each container's first logs stream is cut 300 ms after natsmon opened it.
    let proxy = DockerProxy::start(Duration::from_millis(300));
    let mut sh = ShipperSetup::start("churn").await;
    let direct = sh.docker_host.clone();
    sh.docker_host = proxy.url();
    let extra = ["--container-series-grace", GRACE];
    let mut nm = Natsmon::start(&sh.natsmon_args(&extra)).await;

    // Three steady writers through the whole test, stopped at the end.
    let steady: Vec<Container> = ["a", "b", "c"]
        .iter()
        .map(|s| {
            let cmd = docker::log_generator_cmd(1_000_000, &format!("steady {s} line"), 100);
            Container::run(
                &sh.name(&format!("steady-{s}")),
                &[],
                &docker::as_strs(&cmd),
            )
        })
        .collect();
    let steady_names: Vec<&str> = steady.iter().map(|c| c.name.as_str()).collect();
    let at_steady = steady_series(&nm, &steady).await;
    let mut peak = at_steady;
    let mut gone: BTreeMap<String, Truth> = BTreeMap::new();
    let mut next = 0;

    // Phase 1: through the stream-cutting proxy.
    for _ in 0..PHASES[0] / WAVE {
        gone.extend(wave(&sh, &nm, next).await);
        next += WAVE;
        peak = peak.max(logs_series(&scrape(&nm.base_url()).await.text));
    }
    assert!(
        !proxy.cuts().is_empty(),
        "the proxy cut no stream: {:?}",
        proxy.requests()
    );
    // One container whose every line Loki has, removed only once Loki refuses: its
    // position must still leave the file during the outage.
    let acked = Container::run(
        &sh.name("acked"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd_opts(
            SHORT_LINES,
            "acked line",
            0,
            3,
        )),
    );
    acked.wait_exit(Duration::from_secs(30));
    let acked_truth = docker_truth(&acked);
    wait_for(&nm.base_url(), Duration::from_secs(30), |e| {
        e.get(
            "natsmon_logs_lines_sent_total",
            &[("container", &acked.name)],
        ) == Some(acked_truth.len() as f64)
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !positions(sh.state.path()).contains(&acked.id) {
        assert!(
            Instant::now() < deadline,
            "no position saved for {}",
            acked.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Phase 2: Loki refuses, so containers are removed with their lines in flight.
    sh.loki.set_mode(Mode::Status(503));
    acked.rm();
    for _ in 0..PHASES[1] / WAVE {
        gone.extend(wave(&sh, &nm, next).await);
        next += WAVE;
    }
    let held = scrape(&nm.base_url()).await;
    peak = peak.max(logs_series(&held.text));
    assert!(
        held.get("natsmon_logs_buffered_lines", &[]).unwrap_or(0.0) > 0.0,
        "lines are held while Loki refuses"
    );
    // Removed containers whose lines are not acknowledged have no position yet; the
    // acknowledged ones' went with their last line, and the file says so while Loki is
    // still refusing (saved at the next retry, at most the 2 s backoff away).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let existing = existing_ids();
        let stale: Vec<String> = positions(sh.state.path())
            .difference(&existing)
            .cloned()
            .collect();
        if stale.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "positions of removed containers while Loki refuses: {stale:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    sh.loki.set_mode(Mode::Accept);
    back_to_steady(&nm, at_steady, &steady_names, "through the proxy").await;

    // Phase 3: natsmon restarted, now straight on dockerd.
    nm.terminate();
    assert!(nm.wait_exit(Duration::from_secs(15)).await.is_some());
    drop(proxy);
    sh.docker_host = direct;
    let nm = Natsmon::start(&sh.natsmon_args(&extra)).await;
    let at_steady2 = steady_series(&nm, &steady).await;
    for _ in 0..PHASES[2] / WAVE {
        gone.extend(wave(&sh, &nm, next).await);
        next += WAVE;
        peak = peak.max(logs_series(&scrape(&nm.base_url()).await.text));
    }
    for c in &steady {
        c.signal("TERM");
        c.wait_exit(Duration::from_secs(30));
    }
    let steady_truth: Vec<Truth> = steady.iter().map(docker_truth).collect();
    for (c, t) in steady.iter().zip(&steady_truth) {
        wait_lines(&sh.loki, c, t.len(), Duration::from_secs(60)).await;
    }
    for (name, truth) in &gone {
        let deadline = Instant::now() + Duration::from_secs(60);
        while stored(&sh.loki.entries())
            .iter()
            .filter(|e| e.label("container_name") == Some(name))
            .count()
            < truth.len()
        {
            assert!(Instant::now() < deadline, "{name}: lines missing");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    back_to_steady(&nm, at_steady2, &steady_names, "after the restart").await;

    // Every line of every container exactly once.
    assert!(
        sh.loki.decode_errors().is_empty(),
        "{:?}",
        sh.loki.decode_errors()
    );
    let all = sh.loki.entries();
    assert_eq!(gone.len(), PHASES.iter().sum::<usize>());
    for (name, truth) in &gone {
        assert_eq!(truth.len(), SHORT_LINES, "{name}");
        assert_exactly_once_as(&all, name, truth);
    }
    for (c, t) in steady.iter().zip(&steady_truth) {
        assert_exactly_once_as(&all, &c.name, t);
    }
    assert_exactly_once_as(&all, &acked.name, &acked_truth);
    // positions.json: only containers that exist (every line is acknowledged by now).
    let exp = wait_for(&nm.base_url(), Duration::from_secs(10), |e| {
        e.get("natsmon_logs_buffered_lines", &[]) == Some(0.0)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let existing = existing_ids();
    let kept = positions(sh.state.path());
    let stale: Vec<&String> = kept.difference(&existing).collect();
    assert!(
        stale.is_empty(),
        "positions.json keeps removed containers: {stale:?}"
    );
    let steady_ids: BTreeSet<String> = steady.iter().map(|c| c.id.clone()).collect();
    assert_eq!(kept, steady_ids, "the steady writers' positions");
    assert_eq!(exp.get("natsmon_logs_rotation_gaps_total", &[]), Some(0.0));
    eprintln!(
        "[shipper_churn] {} containers; natsmon_logs_* samples: steady {at_steady}/{at_steady2}, peak {peak}; {:?}",
        gone.len(),
        started.elapsed()
    );
    assert!(
        peak > at_steady,
        "churn showed in the series ({peak} vs {at_steady})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shipper_rotation_while_down_is_counted_and_told_once() {
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("rotate").await;
    // The host label from the option rather than Docker's name.
    let host = ["--host-label", "rot-host-7"];
    let mut nm = Natsmon::start(&sh.natsmon_args(&host)).await;
    // json-file keeps two files of at most 4 KiB: about 100 lines of this size in all.
    let cmd = "trap 'exit 143' TERM; i=1; while [ $i -le 20 ]; do echo \"before $i\"; i=$((i+1)); done; \
               while [ ! -e /tmp/go ]; do sleep 0.1; done; \
               i=1; while [ $i -le 2000 ]; do echo \"during $i padding-padding-padding\"; i=$((i+1)); done; \
               while [ ! -e /tmp/end ]; do sleep 0.1; done; echo after 1";
    let c = Container::run(
        &sh.name("rot"),
        &["--log-opt", "max-size=4k", "--log-opt", "max-file=2"],
        &["/bin/sh", "-c", cmd],
    );
    wait_lines(&sh.loki, &c, 20, Duration::from_secs(30)).await;
    // Let the checkpoint of the 20 lines be written, then stop natsmon.
    tokio::time::sleep(Duration::from_secs(2)).await;
    nm.terminate();
    assert!(nm.wait_exit(Duration::from_secs(15)).await.is_some());
    // While natsmon is down the container writes far more than Docker keeps.
    docker::docker(&["exec", &c.id, "touch", "/tmp/go"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !docker_truth(&c)
        .iter()
        .any(|(_, _, l)| l.starts_with("during 2000 "))
    {
        assert!(Instant::now() < deadline, "the writer did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let kept = docker_truth(&c);
    assert!(
        !kept.iter().any(|(_, _, l)| l == "before 20"),
        "Docker did not rotate the checkpointed lines away"
    );

    let nm = Natsmon::start(&sh.natsmon_args(&host)).await;
    docker::docker(&["exec", &c.id, "touch", "/tmp/end"]);
    c.wait_exit(Duration::from_secs(30));
    let exp = wait_for(&nm.base_url(), Duration::from_secs(30), |e| {
        e.get("natsmon_logs_rotation_gaps_total", &[]) == Some(1.0)
    })
    .await;
    let span = exp
        .get("natsmon_logs_rotation_gap_seconds_total", &[])
        .unwrap();
    assert!(span > 0.0 && span < 60.0, "lost span {span}s");
    // What Docker still had is shipped, each line once: the 20 lines from before the stop
    // and the kept tail of the rest.
    let truth = docker_truth(&c);
    wait_lines(&sh.loki, &c, 20 + truth.len(), Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got: Vec<String> = crate::harness::shipper::for_container(&sh.loki.entries(), &c.name)
        .iter()
        .map(|e| e.line.clone())
        .collect();
    let unique: BTreeSet<&String> = got.iter().collect();
    assert!(
        sh.loki
            .entries()
            .iter()
            .all(|e| e.label("host") == Some("rot-host-7")),
        "--host-label sets host"
    );
    assert_eq!(unique.len(), got.len(), "no line twice");
    for (_, _, l) in &truth {
        assert!(unique.contains(l), "{l} missing");
    }
    assert!(got.iter().any(|l| l == "before 20"));
    // Told once, at WARN, with the container and the range.
    let log = nm.stderr_contents();
    let warns: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("rotated away"))
        .collect();
    assert_eq!(warns.len(), 1, "{log}");
    for field in [
        c.name.as_str(),
        "last_read=",
        "oldest_available=",
        "lost_seconds=",
    ] {
        assert!(warns[0].contains(field), "{field} missing: {}", warns[0]);
    }
}
