//! Log shipper soak benchmark against the real dockerd and the Loki receiver from the
//! tests: thousands of short-lived containers created and removed over about ten minutes
//! beside three steady writers, to show that natsmon's memory, `/metrics` and
//! `positions.json` stay bounded under churn while every line arrives exactly once.
//! Prints a table. `cargo bench --bench soak` runs it in full; under `cargo test` it runs
//! a small smoke pass. Sizes: NATSMON_SOAK_CONTAINERS (2,000), NATSMON_SOAK_SECS (600).

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use natsmon_testkit::docker::{self, Container};
use natsmon_testkit::loki::LokiReceiver;
use natsmon_testkit::ports::free_port;
use natsmon_testkit::proc::status_kib;

/// Short-lived containers started (and later removed) together.
const WAVE: usize = 10;
/// Lines each short-lived container writes.
const SHORT_LINES: usize = 5;
/// `--container-series-grace` of the run: short, so the end state is reached in seconds.
const GRACE: Duration = Duration::from_secs(10);

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

struct Natsmon {
    child: Child,
    port: u16,
}

impl Natsmon {
    fn start(loki: &LokiReceiver, state: &std::path::Path, prefix: &str) -> Natsmon {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_natsmon"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--nats-url",
                &format!("none=http://127.0.0.1:{}", free_port()),
                "--poll-interval",
                "60s",
                "--loki-url",
                &loki.url(),
                "--docker-host",
                &docker::docker_host(),
                "--state-dir",
                state.to_str().unwrap(),
                "--include-containers",
                &format!("{prefix}*"),
                "--batch-max-wait",
                "200ms",
                "--container-series-grace",
                &format!("{}s", GRACE.as_secs()),
            ])
            .env("NATSMON_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start natsmon");
        Natsmon { child, port }
    }

    fn rss_mib(&self) -> f64 {
        status_kib(self.child.id(), "VmRSS") as f64 / 1024.0
    }

    /// `/metrics` as text.
    async fn metrics(&self) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        for _ in 0..100 {
            if let Ok(r) = reqwest::get(&url).await
                && let Ok(t) = r.text().await
            {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("natsmon does not serve /metrics");
    }
}

impl Drop for Natsmon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Samples of the shipper's own families.
fn logs_series(text: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with("natsmon_logs_"))
        .count()
}

/// The value of `natsmon_logs_lines_read_total{container="<name>"}`, 0 when absent.
fn lines_read(text: &str, name: &str) -> f64 {
    let key = format!("natsmon_logs_lines_read_total{{container=\"{name}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Lines `docker logs` has for a container (both streams).
fn docker_lines(c: &Container) -> usize {
    let (out, err) = c.logs_with(&[]);
    out.lines().count() + err.lines().count()
}

fn positions(state: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(state.join("positions.json")).unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["containers"].as_object().map(|o| o.len()))
        .unwrap_or(0)
}

/// One wave: start `WAVE` containers, wait for them to exit and for natsmon to have read
/// them, remove them. Returns their names.
async fn wave(nm: &Natsmon, prefix: &str, first: usize) -> Vec<String> {
    let containers: Vec<Container> = std::thread::scope(|s| {
        let hs: Vec<_> = (first..first + WAVE)
            .map(|i| {
                s.spawn(move || {
                    let cmd = docker::log_generator_cmd_opts(
                        SHORT_LINES,
                        &format!("soak short {i} line"),
                        0,
                        3,
                    );
                    Container::run(&format!("{prefix}-s{i}"), &[], &docker::as_strs(&cmd))
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for c in &containers {
        c.wait_exit(Duration::from_secs(60));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = nm.metrics().await;
        if containers
            .iter()
            .all(|c| lines_read(&text, &c.name) >= SHORT_LINES as f64)
        {
            break;
        }
        assert!(Instant::now() < deadline, "natsmon did not read a wave");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names = containers.iter().map(|c| c.name.clone()).collect();
    std::thread::scope(|s| {
        for c in &containers {
            s.spawn(move || c.rm());
        }
    });
    names
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let total = env_usize("NATSMON_SOAK_CONTAINERS", if smoke { 30 } else { 2000 });
    let secs = env_usize("NATSMON_SOAK_SECS", if smoke { 10 } else { 600 });
    let total = total.div_ceil(WAVE) * WAVE;
    docker::ensure_docker();
    let _d = docker::dockerd_shared();
    eprintln!(
        "natsmon soak: {total} short-lived containers over about {secs}s{}",
        if smoke {
            " (smoke run; `cargo bench --bench soak` for the full one)"
        } else {
            ""
        }
    );
    let prefix = docker::unique_name("soak");
    let loki = LokiReceiver::start().await;
    let state = tempfile::tempdir().unwrap();
    let nm = Natsmon::start(&loki, state.path(), &prefix);
    let steady: Vec<Container> = ["a", "b", "c"]
        .iter()
        .map(|s| {
            let cmd = docker::log_generator_cmd(10_000_000, &format!("soak steady {s} line"), 100);
            Container::run(&format!("{prefix}-steady-{s}"), &[], &docker::as_strs(&cmd))
        })
        .collect();
    // Steady state: every steady writer read and acknowledged, gauges updated.
    let t0 = Instant::now();
    loop {
        let text = nm.metrics().await;
        if steady.iter().all(|c| lines_read(&text, &c.name) > 0.0)
            && steady.iter().all(|c| {
                text.contains(&format!(
                    "natsmon_logs_lines_sent_total{{container=\"{}\"}}",
                    c.name
                ))
            })
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "steady writers not shipped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let at_steady = logs_series(&nm.metrics().await);

    let started = Instant::now();
    let per_wave = Duration::from_secs_f64(secs as f64 / (total / WAVE) as f64);
    let mut short: Vec<String> = Vec::new();
    let mut peak = at_steady;
    let mut rss_200 = None;
    let mut peak_positions = 0;
    for w in 0..total / WAVE {
        let wave_start = Instant::now();
        short.extend(wave(&nm, &prefix, w * WAVE).await);
        let text = nm.metrics().await;
        peak = peak.max(logs_series(&text));
        peak_positions = peak_positions.max(positions(state.path()));
        if rss_200.is_none() && short.len() >= 200.min(total) {
            rss_200 = Some(nm.rss_mib());
        }
        if (w + 1) % 20 == 0 {
            eprintln!(
                "  {} containers, {:?}, RSS {:.1} MiB, {} series",
                short.len(),
                started.elapsed(),
                nm.rss_mib(),
                logs_series(&text)
            );
        }
        if let Some(rest) = per_wave.checked_sub(wave_start.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let churn_wall = started.elapsed();
    for c in &steady {
        c.signal("TERM");
    }
    let mut expected: BTreeMap<String, usize> =
        short.iter().map(|n| (n.clone(), SHORT_LINES)).collect();
    for c in &steady {
        c.wait_exit(Duration::from_secs(60));
        expected.insert(c.name.clone(), docker_lines(c));
    }
    let sent: usize = expected.values().sum();
    let deadline = Instant::now() + Duration::from_secs(120);
    while loki.count() < sent && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The end: every retired container's series past the grace.
    tokio::time::sleep(GRACE + Duration::from_secs(3)).await;
    let end_text = nm.metrics().await;
    let at_end = logs_series(&end_text);
    let rss_end = nm.rss_mib();
    let end_positions = positions(state.path());

    let entries = loki.entries();
    let mut seen = BTreeSet::new();
    let mut per_container: BTreeMap<String, usize> = BTreeMap::new();
    let mut dupes = 0;
    for e in &entries {
        if seen.insert((e.labels.clone(), e.ts_ns, e.line.clone())) {
            *per_container
                .entry(e.label("container_name").unwrap_or("?").to_string())
                .or_default() += 1;
        } else {
            dupes += 1;
        }
    }
    let missing: usize = expected
        .iter()
        .map(|(n, want)| want.saturating_sub(*per_container.get(n).unwrap_or(&0)))
        .sum();
    let rss_200 = rss_200.unwrap_or(rss_end);
    let rss_change = (rss_end - rss_200) / rss_200 * 100.0;

    println!();
    println!(
        "Soak: {} short-lived containers ({SHORT_LINES} lines each, {WAVE} at a time) over {:.0} s, 3 steady writers at 10 lines/s, --container-series-grace {}s",
        short.len(),
        churn_wall.as_secs_f64(),
        GRACE.as_secs()
    );
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| natsmon RSS after the first {} containers / at the end | {rss_200:.1} MiB / {rss_end:.1} MiB ({rss_change:+.1}%) |",
        200.min(total)
    );
    println!(
        "| natsmon_logs_* samples: steady state / peak / end | {at_steady} / {peak} / {at_end} |"
    );
    println!(
        "| positions.json entries: peak during churn / end | {peak_positions} / {end_positions} |"
    );
    println!(
        "| lines sent (docker logs) / received / duplicates / missing | {sent} / {} / {dupes} / {missing} |",
        entries.len()
    );
    println!();
    let pass = |ok: bool| if ok { "PASS" } else { "MISS" };
    println!("Targets:");
    println!(
        "- RSS at the end within 10% of RSS after the first {} containers: {rss_change:+.1}% — {}",
        200.min(total),
        pass(rss_change.abs() <= 10.0)
    );
    println!(
        "- series back to steady state: {at_end} vs {at_steady} — {}",
        pass(at_end == at_steady)
    );
    println!(
        "- positions.json holds only existing containers: {end_positions} (3 steady writers) — {}",
        pass(end_positions <= steady.len())
    );
    println!(
        "- every line exactly once: {dupes} duplicates, {missing} missing — {}",
        pass(dupes == 0 && missing == 0)
    );
    assert_eq!((dupes, missing), (0, 0), "every line exactly once");
    assert_eq!(at_end, at_steady, "series back to steady state");
    assert!(end_positions <= steady.len(), "positions.json bounded");
}
