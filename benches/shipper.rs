//! Log shipper benchmark against the real dockerd and the Loki receiver from the tests:
//! throughput (with a bare-dockerd-reader ceiling measured in the same run), end-to-end
//! latency at 1,000 lines/s, and memory through a Loki outage at 5,000 lines/s. Prints a
//! table. `cargo bench --bench shipper` runs it in full; under `cargo test` it runs a
//! small smoke pass. Sizes: NATSMON_BENCH_LINES (2,000,000), NATSMON_BENCH_OUTAGE_SECS (300).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bollard::query_parameters::LogsOptions;
use futures::StreamExt;

use natsmon_testkit::docker::{self, Container};
use natsmon_testkit::loki::{LokiReceiver, Mode};
use natsmon_testkit::ports::free_port;
use natsmon_testkit::proc::{clk_tck, proc_cpu_secs, status_kib};

const LINE_PAD: usize = 180;

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// A container printing `lines` numbered lines of about 200 bytes as fast as it can,
/// then staying up (a first-start natsmon ships running containers) with a marker file.
/// Each is a nats-server client line, so that every line carries structured metadata
/// (`remote_addr`, `cid`, `account`) as the shipper's throughput goal asks.
fn burst_cmd(lines: usize) -> Vec<String> {
    let pad = LINE_PAD - 90;
    let awk = format!(
        "BEGIN {{ pad = sprintf(\"%{pad}s\", \"\"); gsub(/ /, \"x\", pad); for (i = 1; i <= {lines}; i++) printf \"[1] 2026/12/03 00:00:00.000000 [INF] 10.0.%d.%d:4222 - cid:%d - \\\"APP/user:a\\\" - %09d %s\\n\", i % 250, i % 200, i, i, pad }}"
    );
    let script = format!("awk '{awk}'; touch /tmp/done; exec sleep 3600");
    vec!["/bin/sh".into(), "-c".into(), script]
}

fn wait_written(c: &Container) {
    let t = Instant::now();
    while docker::docker_try(&["exec", &c.id, "test", "-f", "/tmp/done"]).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(900),
            "{} never finished writing",
            c.name
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A container printing about `rate` lines/s for `secs` seconds, in 100 ms slices; it
/// stops by the clock, so fork overhead lowers the rate slightly but not the duration.
fn paced_cmd(rate: usize, secs: usize) -> Vec<String> {
    let per_slice = (rate / 10).max(1);
    let script = format!(
        "end=$(($(date +%s) + {secs})); s=0; while [ $(date +%s) -lt $end ]; do awk -v s=$s 'BEGIN {{ for (j = 0; j < {per_slice}; j++) printf \"%d-%d {pad}\\n\", s, j }}'; usleep 100000; s=$((s + 1)); done",
        pad = "y".repeat(LINE_PAD)
    );
    vec!["/bin/sh".into(), "-c".into(), script]
}

struct Natsmon {
    child: Child,
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
            ])
            .env("NATSMON_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start natsmon");
        Natsmon { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Natsmon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Reads every line of the containers straight from dockerd, as fast as it can: the
/// ceiling no shipper reading the same API can beat.
async fn ceiling(containers: &[Container]) -> (usize, usize, Duration, f64) {
    let tck = clk_tck();
    let cpu0 = proc_cpu_secs(std::process::id(), tck);
    let t = Instant::now();
    let d = bollard::Docker::connect_with_unix(
        "/var/run/docker.sock",
        120,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap();
    let tasks = containers.iter().map(|c| {
        let d = d.clone();
        let id = c.id.clone();
        tokio::spawn(async move {
            let mut s = d.logs(
                &id,
                Some(LogsOptions {
                    follow: false,
                    stdout: true,
                    stderr: true,
                    timestamps: true,
                    ..Default::default()
                }),
            );
            let (mut lines, mut bytes) = (0usize, 0usize);
            while let Some(item) = s.next().await {
                let m = item.expect("read logs").into_bytes();
                bytes += m.len();
                lines += m.iter().filter(|b| **b == b'\n').count();
            }
            (lines, bytes)
        })
    });
    let mut total = (0, 0);
    for r in futures::future::join_all(tasks).await {
        let (l, b) = r.unwrap();
        total.0 += l;
        total.1 += b;
    }
    (
        total.0,
        total.1,
        t.elapsed(),
        proc_cpu_secs(std::process::id(), tck) - cpu0,
    )
}

/// The same reading with natsmon's own follow-logs reader (`logs::follow`) instead of
/// bollard: the ceiling for natsmon's way of reading, without everything after it.
async fn ceiling_own(containers: &[Container]) -> (usize, Duration, f64) {
    use natsmon::logs::follow::{DockerAddr, LogStream};
    let tck = clk_tck();
    let cpu0 = proc_cpu_secs(std::process::id(), tck);
    let t = Instant::now();
    let addr = DockerAddr::parse("unix:///var/run/docker.sock");
    let tasks = containers.iter().map(|c| {
        let (addr, id) = (addr.clone(), c.id.clone());
        tokio::spawn(async move {
            let mut s = LogStream::open(&addr, &id, 0, false)
                .await
                .expect("open logs");
            let (mut lines, mut more) = (0usize, true);
            loop {
                while let Some(r) = s.next_record().expect("read logs") {
                    lines += r.bytes.iter().filter(|b| **b == b'\n').count();
                }
                if !more {
                    return lines;
                }
                more = s.fill().await.expect("read logs");
            }
        })
    });
    let mut total = 0;
    for r in futures::future::join_all(tasks).await {
        total += r.unwrap();
    }
    (
        total,
        t.elapsed(),
        proc_cpu_secs(std::process::id(), tck) - cpu0,
    )
}

async fn wait_count(
    loki: &LokiReceiver,
    n: usize,
    timeout: Duration,
    nm: &mut Natsmon,
) -> Duration {
    wait_count_marks(loki, n, timeout, nm).await.0
}

/// Like `wait_count`, and also when 10% and 90% of the `n` lines had arrived: the rate
/// between the two is the steady one, without natsmon's start (connecting to Docker,
/// listing containers) and without the last partial batch's wait (`--batch-max-wait`),
/// which are latency rather than throughput.
async fn wait_count_marks(
    loki: &LokiReceiver,
    n: usize,
    timeout: Duration,
    nm: &mut Natsmon,
) -> (Duration, Duration, Duration) {
    let t = Instant::now();
    let (mut p10, mut p90) = (None, None);
    loop {
        let c = loki.count();
        if p10.is_none() && c * 10 >= n {
            p10 = Some(t.elapsed());
        }
        if p90.is_none() && c * 10 >= n * 9 {
            p90 = Some(t.elapsed());
        }
        if c >= n {
            break;
        }
        assert!(
            t.elapsed() < timeout,
            "only {c} of {n} lines arrived in {timeout:?}"
        );
        if let Ok(Some(s)) = nm.child.try_wait() {
            panic!("natsmon exited: {s}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let end = t.elapsed();
    (end, p10.unwrap_or(end), p90.unwrap_or(end))
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let total_lines = env_usize(
        "NATSMON_BENCH_LINES",
        if smoke { 20_000 } else { 2_000_000 },
    );
    let outage_secs = env_usize("NATSMON_BENCH_OUTAGE_SECS", if smoke { 5 } else { 300 });
    let latency_secs = if smoke { 5 } else { 30 };
    let tck = clk_tck();
    docker::ensure_docker();
    let _d = docker::dockerd_shared();
    eprintln!(
        "natsmon shipper bench: {total_lines} lines, outage {outage_secs}s{}",
        if smoke {
            " (smoke run; `cargo bench --bench shipper` for the full one)"
        } else {
            ""
        }
    );

    // --- throughput: logs written first, then natsmon ships them all.
    let prefix = docker::unique_name("bench-tp");
    let n_containers = 4;
    let per = total_lines / n_containers;
    let cs: Vec<Container> = (0..n_containers)
        .map(|i| {
            Container::run(
                &format!("{prefix}-{i}"),
                &[],
                &docker::as_strs(&burst_cmd(per)),
            )
        })
        .collect();
    for c in &cs {
        wait_written(c);
    }
    // dockerd serves every line to both readers: its CPU says how much of the machine
    // was left to them.
    let dockerd = docker::dockerd_pid();
    let dockerd_cpu = || dockerd.map(|p| proc_cpu_secs(p, tck)).unwrap_or(f64::NAN);
    let d0 = dockerd_cpu();
    let (ceil_lines, ceil_bytes, ceil_wall, ceil_cpu) = ceiling(&cs).await;
    let ceil_dockerd = dockerd_cpu() - d0;
    assert_eq!(
        ceil_lines,
        per * n_containers,
        "the ceiling reader saw every line"
    );
    let d0 = dockerd_cpu();
    let (own_lines, own_wall, own_cpu) = ceiling_own(&cs).await;
    let own_dockerd = dockerd_cpu() - d0;
    assert_eq!(
        own_lines,
        per * n_containers,
        "the own-reader ceiling saw every line"
    );
    let loki = LokiReceiver::start().await;
    loki.set_count_only(true);
    let state = tempfile::tempdir().unwrap();
    let mut nm = Natsmon::start(&loki, state.path(), &prefix);
    let cpu0 = proc_cpu_secs(nm.pid(), tck);
    // The receiver runs in this process: its CPU shares the machine with natsmon and
    // dockerd while natsmon ships, unlike the ceiling reader, which ran alone.
    let recv0 = proc_cpu_secs(std::process::id(), tck);
    let d0 = dockerd_cpu();
    let (tp_wall, tp_p10, tp_p90) =
        wait_count_marks(&loki, per * n_containers, Duration::from_secs(900), &mut nm).await;
    let tp_cpu = proc_cpu_secs(nm.pid(), tck) - cpu0;
    let recv_cpu = proc_cpu_secs(std::process::id(), tck) - recv0;
    let tp_dockerd = dockerd_cpu() - d0;
    let tp_hwm = mib(status_kib(nm.pid(), "VmHWM"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tp_rss = mib(status_kib(nm.pid(), "VmRSS"));
    assert_eq!(loki.count(), per * n_containers, "no line twice");
    drop(nm);
    drop(cs);
    let lines_per_s = total_lines as f64 / tp_wall.as_secs_f64();
    let ceil_per_s = ceil_lines as f64 / ceil_wall.as_secs_f64();
    let own_per_s = own_lines as f64 / own_wall.as_secs_f64();
    let line_bytes = ceil_bytes as f64 / ceil_lines as f64;

    // --- latency at 1,000 lines/s: Docker's timestamp of a line to the receiver's accept.
    let prefix = docker::unique_name("bench-lat");
    let loki = LokiReceiver::start().await;
    let state = tempfile::tempdir().unwrap();
    let nm = Natsmon::start(&loki, state.path(), &prefix);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let c = Container::run(
        &format!("{prefix}-paced"),
        &[],
        &docker::as_strs(&paced_cmd(1000, latency_secs)),
    );
    c.wait_exit(Duration::from_secs(latency_secs as u64 * 4 + 30));
    let sent = docker::docker(&["logs", &c.id]).lines().count();
    let t = Instant::now();
    while loki.count() < sent && t.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let entries = loki.entries();
    assert_eq!(entries.len(), sent, "latency run lost or doubled lines");
    let mut lat: Vec<f64> = entries
        .iter()
        .map(|e| (e.received_at_ns - e.ts_ns) as f64 / 1e6)
        .collect();
    let first = entries.iter().map(|e| e.ts_ns).min().unwrap();
    let last = entries.iter().map(|e| e.ts_ns).max().unwrap();
    let achieved_rate = sent as f64 / ((last - first) as f64 / 1e9).max(1e-9);
    let (p50, p99) = (percentile(&mut lat, 0.50), percentile(&mut lat, 0.99));
    drop(nm);
    drop(c);

    // --- outage: Loki answers 503 while a container logs at 5,000 lines/s.
    let prefix = docker::unique_name("bench-out");
    let loki = LokiReceiver::start().await;
    let state = tempfile::tempdir().unwrap();
    let mut nm = Natsmon::start(&loki, state.path(), &prefix);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let c = Container::run(
        &format!("{prefix}-steady"),
        &[],
        &docker::as_strs(&paced_cmd(5000, outage_secs + 10)),
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let steady_rss = mib(status_kib(nm.pid(), "VmRSS"));
    loki.set_count_only(true);
    loki.set_mode(Mode::Status(503));
    let t = Instant::now();
    let mut max_rss: f64 = 0.0;
    let mut samples = Vec::new();
    while t.elapsed() < Duration::from_secs(outage_secs as u64) {
        let r = mib(status_kib(nm.pid(), "VmRSS"));
        max_rss = max_rss.max(r);
        samples.push(r);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    loki.set_mode(Mode::Accept);
    c.wait_exit(Duration::from_secs(600));
    let written = docker::docker(&["logs", &c.id]).lines().count();
    let drain = wait_count(&loki, written, Duration::from_secs(600), &mut nm).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let delivered = loki.count();
    let out_hwm = mib(status_kib(nm.pid(), "VmHWM"));
    drop(nm);
    drop(c);

    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| lines shipped (4 containers, ~{line_bytes:.0} B/line with timestamp) | {total_lines} |"
    );
    println!(
        "| natsmon throughput, Docker -> Loki receiver, start to last line | {lines_per_s:.0} lines/s, {:.1} MB/s |",
        lines_per_s * line_bytes / 1e6
    );
    let steady_per_s = 0.8 * total_lines as f64 / (tp_p90 - tp_p10).as_secs_f64().max(1e-3);
    println!(
        "| natsmon steady throughput, 10% to 90% of the lines | {steady_per_s:.0} lines/s ({:.2} of the ceiling; first 10% after {:.2} s, last line {:.2} s after the 90% mark) |",
        steady_per_s / ceil_per_s,
        tp_p10.as_secs_f64(),
        (tp_wall - tp_p90).as_secs_f64()
    );
    println!(
        "| ceiling: bare reader of the same logs from dockerd | {ceil_per_s:.0} lines/s ({:.2} s wall, {:.2} CPU s) |",
        ceil_wall.as_secs_f64(),
        ceil_cpu
    );
    println!(
        "| bare reader with natsmon's own Docker reader (`logs::follow`) | {own_per_s:.0} lines/s ({:.2} s wall, {:.2} CPU s, dockerd {own_dockerd:.2} CPU s) |",
        own_wall.as_secs_f64(),
        own_cpu
    );
    println!(
        "| natsmon / ceiling: start to last line / steady | {:.2} / {:.2} |",
        lines_per_s / ceil_per_s,
        steady_per_s / ceil_per_s
    );
    println!(
        "| natsmon / own-reader ceiling: start to last line / steady | {:.2} / {:.2} |",
        lines_per_s / own_per_s,
        steady_per_s / own_per_s
    );
    println!(
        "| Loki receiver (bench process) CPU while natsmon shipped | {recv_cpu:.2} s ({:.2} s per million lines) |",
        recv_cpu / (total_lines as f64 / 1e6)
    );
    println!(
        "| dockerd CPU: serving the ceiling reader / serving natsmon | {ceil_dockerd:.2} s / {tp_dockerd:.2} s |"
    );
    println!(
        "| all CPU per wall second: ceiling phase (reader + dockerd) / natsmon phase (natsmon + receiver + dockerd) | {:.2} / {:.2} |",
        (ceil_cpu + ceil_dockerd) / ceil_wall.as_secs_f64(),
        (tp_cpu + recv_cpu + tp_dockerd) / tp_wall.as_secs_f64()
    );
    let cpu_per_m = tp_cpu / (total_lines as f64 / 1e6);
    println!("| natsmon CPU per million lines | {cpu_per_m:.2} s |");
    println!("| natsmon RSS: peak during throughput / after | {tp_hwm:.1} MiB / {tp_rss:.1} MiB |");
    println!("| latency at {achieved_rate:.0} lines/s: p50 / p99 | {p50:.0} ms / {p99:.0} ms |");
    println!(
        "| outage: {outage_secs} s of 503 at 5,000 lines/s: RSS before / max during / peak | {steady_rss:.1} / {max_rss:.1} / {out_hwm:.1} MiB |"
    );
    println!(
        "| outage: lines written / delivered after recovery (drain {:.1} s) | {written} / {delivered} |",
        drain.as_secs_f64()
    );
    println!();
    println!("Targets:");
    let pass = |ok: bool| if ok { "PASS" } else { "MISS" };
    println!(
        "- steady throughput >= 85% of the dockerd ceiling (issue 11): {:.0}% — {}",
        100.0 * steady_per_s / ceil_per_s,
        pass(steady_per_s >= 0.85 * ceil_per_s)
    );
    // Start to last line also holds the last partial batch's wait (`--batch-max-wait`),
    // a constant of latency that the ceiling reader does not have.
    println!(
        "- throughput start to last line >= 80% of the dockerd ceiling: {:.0}% — {} (includes the last batch's wait)",
        100.0 * lines_per_s / ceil_per_s,
        pass(lines_per_s >= 0.8 * ceil_per_s)
    );
    println!(
        "- natsmon CPU <= 5 s per million lines (issue 11): {cpu_per_m:.2} s — {}",
        pass(cpu_per_m <= 5.0)
    );
    println!(
        "- RSS < 64 MiB steady: {tp_rss:.1} MiB — {}",
        pass(tp_rss < 64.0)
    );
    println!(
        "- RSS < 128 MiB through the outage: {max_rss:.1} MiB — {}",
        pass(max_rss < 128.0)
    );
    println!("- p99 latency < 2 s: {p99:.0} ms — {}", pass(p99 < 2000.0));
    assert_eq!(
        delivered, written,
        "lines lost or doubled across the outage"
    );
    let _ = samples;
}
