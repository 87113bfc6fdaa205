//! Hardening: the shipper's state directory, checkpoints, Docker errors and shutdown delivery.
//! Each test runs natsmon as a process against the real dockerd and the fault-injecting
//! Loki receiver, and reads natsmon's own log to check that an outage is told once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::docker::{self, Container};
use crate::harness::loki::Mode;
use crate::harness::shipper::{ShipperSetup, assert_exactly_once, stored, wait_lines};
use crate::harness::{Natsmon, free_port, new_tempdir, run_natsmon, scrape, wait_for};

/// `args` with the value after `flag` replaced: the shipper setup already passes some
/// flags, and clap refuses a flag given twice.
fn with_flag(mut args: Vec<String>, flag: &str, value: &str) -> Vec<String> {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} not in {args:?}"));
    args[i + 1] = value.to_string();
    args
}

/// natsmon's log lines at `level` from the shipper (`natsmon::logs::*` targets), except
/// those about other tests' containers: natsmon lists every container of the shared
/// dockerd, and one removed between its listing and its inspection is logged.
fn shipper_lines<'a>(log: &'a str, level: &str, prefix: &str) -> Vec<&'a str> {
    let level = format!(" {level} ");
    let ours = format!("container={prefix}");
    log.lines()
        .filter(|l| l.contains(&level) && l.contains("natsmon::logs"))
        .filter(|l| !l.contains("container=") || l.contains(&ours))
        .collect()
}

/// A read-only tmpfs mounted on a fresh temp dir, unmounted on drop. Tests run as root,
/// and root ignores permission bits (a chmod 0555 dir stays writable for it); a read-only
/// mount refuses every writer with EROFS.
struct ReadOnlyDir {
    dir: tempfile::TempDir,
}

impl ReadOnlyDir {
    fn mount() -> ReadOnlyDir {
        let dir = new_tempdir("natsmon-ro-state-");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a read-only tmpfs on {} failed (the test needs CAP_SYS_ADMIN): {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let probe = dir.path().join("probe");
        assert!(
            std::fs::write(&probe, b"x").is_err(),
            "{} is writable for this user after all",
            dir.path().display()
        );
        ReadOnlyDir { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_only_state_dir_fails_at_startup() {
    let sh = ShipperSetup::start("rostate").await;
    let ro = ReadOnlyDir::mount();
    let state = ro.path().to_str().unwrap().to_string();
    let mut args = with_flag(sh.natsmon_args(&[]), "--state-dir", &state);
    args.extend(["--listen".to_string(), format!("127.0.0.1:{}", free_port())]);
    let started = Instant::now();
    let (status, out, err) = run_natsmon(&args, Duration::from_secs(20)).await;
    let took = started.elapsed();
    let status = status.unwrap_or_else(|| panic!("natsmon kept running\n{err}\n{out}"));
    assert!(!status.success(), "natsmon exited with {status}\n{err}");
    assert!(
        took < Duration::from_secs(10),
        "took {took:?} to fail\n{err}"
    );
    // One message that names the directory and the OS error.
    let told: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(&state) && l.contains("Read-only file system"))
        .collect();
    assert_eq!(told.len(), 1, "stderr:\n{err}");
    assert!(
        !err.contains("Shipping container logs."),
        "it started shipping:\n{err}"
    );
    assert!(
        sh.loki.requests().is_empty(),
        "nothing is pushed: {:?}",
        sh.loki.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupt_positions_file_is_kept_aside_and_shipping_goes_on() {
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("corrupt").await;
    let garbage = b"{\"version\": 1, \"containers\": {\"abc\": {\"ts_ns\": 12\x00garbage";
    let positions = sh.state.path().join("positions.json");
    std::fs::write(&positions, garbage).unwrap();
    // Written before natsmon starts, and running on while it starts.
    let c = Container::run(
        &sh.name("writer"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(100, "corrupt line", 20)),
    );
    let nm = Natsmon::start(&sh.natsmon_args(&[])).await;
    c.wait_exit(Duration::from_secs(60));
    wait_lines(&sh.loki, &c, 100, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_exactly_once(&sh.loki.entries(), &c);

    let exp = scrape(&nm.base_url()).await;
    assert_eq!(
        exp.get(
            "natsmon_logs_checkpoint_errors_total",
            &[("reason", "corrupt")]
        ),
        Some(1.0),
        "{}",
        exp.text
    );
    // The corrupt file is kept, byte for byte, beside the new one.
    let aside: Vec<PathBuf> = std::fs::read_dir(sh.state.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("positions.json.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let secs: u64 = aside[0]
        .to_string_lossy()
        .rsplit('-')
        .next()
        .unwrap()
        .parse()
        .expect("positions.json.corrupt-<unix secs>");
    assert!(secs > 1_600_000_000, "{secs}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage);
    let saved = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&positions)
            .ok()
            .filter(|p| p.contains(&c.id))
    })
    .await;
    assert!(
        serde_json::from_str::<serde_json::Value>(&saved).is_ok(),
        "{saved}"
    );
    // Told once, at ERROR, with what it means.
    let log = nm.stderr_contents();
    let errors = shipper_lines(&log, "ERROR", &sh.prefix);
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains("positions.json") && errors[0].contains("sent again"),
        "{}",
        errors[0]
    );
}

/// Polls `f` every 100 ms until it gives a value; panics after `timeout`.
async fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met in {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until natsmon counted `n` Docker connect errors, then checks that they were
/// logged as one WARN carrying `cause`, and that none counted as an API error.
async fn assert_connect_errors_warned_once(sh: &ShipperSetup, nm: &Natsmon, n: f64, cause: &str) {
    let exp = wait_for(&nm.base_url(), Duration::from_secs(30), |e| {
        e.get("natsmon_logs_docker_errors_total", &[("reason", "connect")])
            .is_some_and(|v| v >= n)
    })
    .await;
    assert_eq!(
        exp.get("natsmon_logs_docker_errors_total", &[("reason", "api")]),
        Some(0.0),
        "{}",
        exp.text
    );
    let log = nm.stderr_contents();
    let warns = shipper_lines(&log, "WARN", &sh.prefix);
    assert_eq!(warns.len(), 1, "one WARN for {n} failed attempts:\n{log}");
    assert!(warns[0].contains(cause), "no cause {cause:?}: {}", warns[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_tcp_refused_is_a_connect_error_told_once_with_its_cause() {
    let mut sh = ShipperSetup::start("dtcp").await;
    // Nothing listens there: free_port binds and releases it.
    sh.docker_host = format!("tcp://127.0.0.1:{}", free_port());
    let nm = Natsmon::start(&sh.natsmon_args(&[])).await;
    assert_connect_errors_warned_once(&sh, &nm, 4.0, "Connection refused").await;
}

/// A socket path under /tmp for `--docker-host`, removed on drop, also when a test fails.
struct SocketPath(PathBuf);

impl SocketPath {
    fn new(prefix: &str) -> SocketPath {
        SocketPath(PathBuf::from(format!(
            "/tmp/{}.sock",
            docker::unique_name(prefix)
        )))
    }
}

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Serves `path` as a unix socket that forwards every connection to dockerd's socket.
/// Aborting the task closes the socket and every connection through it, as if dockerd
/// went away.
fn forward_docker_socket(path: PathBuf) -> tokio::task::JoinHandle<()> {
    let host = docker::docker_host();
    let upstream = PathBuf::from(host.strip_prefix("unix://").expect("unix:// DOCKER_HOST"));
    let listener = tokio::net::UnixListener::bind(&path)
        .unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
    tokio::spawn(async move {
        // Owned by this task: dropped, and so aborted, with it.
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            conns.spawn(async move {
                if let Ok(mut up) = tokio::net::UnixStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                }
            });
            while conns.try_join_next().is_some() {}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_missing_socket_is_a_connect_error_told_once_then_recovery() {
    let _d = docker::dockerd_shared();
    let mut sh = ShipperSetup::start("dsock").await;
    let sock = SocketPath::new("natsmon-nosock");
    sh.docker_host = format!("unix://{}", sock.0.display());
    let nm = Natsmon::start(&sh.natsmon_args(&[])).await;
    assert_connect_errors_warned_once(&sh, &nm, 4.0, "No such file").await;

    // The socket appears: one INFO, and containers are shipped.
    let forward = forward_docker_socket(sock.0.clone());
    let c = Container::run(
        &sh.name("after"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(20, "after line", 0)),
    );
    c.wait_exit(Duration::from_secs(30));
    wait_lines(&sh.loki, &c, 20, Duration::from_secs(30)).await;
    assert_exactly_once(&sh.loki.entries(), &c);
    let log = nm.stderr_contents();
    let back: Vec<&str> = shipper_lines(&log, "INFO", &sh.prefix)
        .into_iter()
        .filter(|l| l.contains("Docker is reachable again."))
        .collect();
    assert_eq!(back.len(), 1, "{log}");
    assert_eq!(shipper_lines(&log, "WARN", &sh.prefix).len(), 1, "{log}");
    forward.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_outage_is_warned_once_not_per_container() {
    let _d = docker::dockerd_shared();
    let mut sh = ShipperSetup::start("dout").await;
    let sock = SocketPath::new("natsmon-dout");
    sh.docker_host = format!("unix://{}", sock.0.display());
    let forward = forward_docker_socket(sock.0.clone());
    let nm = Natsmon::start(&sh.natsmon_args(&[])).await;
    // Writing all along, through the outage.
    let containers: Vec<Container> = ["a", "b", "c"]
        .iter()
        .map(|s| {
            Container::run(
                &sh.name(s),
                &[],
                &docker::as_strs(&docker::log_generator_cmd(
                    400,
                    &format!("out {s} line"),
                    25,
                )),
            )
        })
        .collect();
    for c in &containers {
        wait_lines(&sh.loki, c, 20, Duration::from_secs(30)).await;
    }

    // Docker goes away: its socket and every connection through it.
    forward.abort();
    let _ = forward.await;
    std::fs::remove_file(&sock.0).unwrap();
    wait_for(&nm.base_url(), Duration::from_secs(30), |e| {
        e.get("natsmon_logs_docker_errors_total", &[("reason", "connect")])
            .is_some_and(|v| v >= 3.0)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let forward = forward_docker_socket(sock.0.clone());
    for c in &containers {
        c.wait_exit(Duration::from_secs(60));
    }
    for c in &containers {
        wait_lines(&sh.loki, c, 400, Duration::from_secs(40)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in &containers {
        assert_exactly_once(&sh.loki.entries(), c);
    }
    let exp = scrape(&nm.base_url()).await;
    assert!(
        exp.sum("natsmon_logs_tailer_restarts_total", &[]) >= 3.0,
        "each container's stream broke: {}",
        exp.text
    );
    // One outage, one WARN and one INFO; not one per container.
    let log = nm.stderr_contents();
    let warns = shipper_lines(&log, "WARN", &sh.prefix);
    assert_eq!(warns.len(), 1, "{log}");
    let back: Vec<&str> = shipper_lines(&log, "INFO", &sh.prefix)
        .into_iter()
        .filter(|l| l.contains("again") || l.contains("recovered"))
        .collect();
    assert_eq!(back.len(), 1, "{log}");
    assert!(
        back[0].contains("Docker is reachable again."),
        "{}",
        back[0]
    );
    forward.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_grace_is_spent_delivering_the_last_batch() {
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("grace").await;
    sh.loki.set_mode(Mode::Status(503));
    // The default backoff cap, so that the delay between retries outgrows the grace.
    let args = with_flag(
        sh.natsmon_args(&["--shutdown-grace", "5s"]),
        "--retry-max-backoff",
        "30s",
    );
    let mut nm = Natsmon::start(&args).await;
    let c = Container::run(
        &sh.name("writer"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(50, "grace line", 0)),
    );
    c.wait_exit(Duration::from_secs(30));
    // Six failed pushes: natsmon now waits at least 4 s (the next step is 8 s with
    // jitter down to half) before the next one.
    wait_for(&nm.base_url(), Duration::from_secs(30), |e| {
        e.get(
            "natsmon_logs_push_retries_total",
            &[("reason", "server_error")],
        )
        .is_some_and(|v| v >= 6.0)
    })
    .await;
    assert!(stored(&sh.loki.entries()).is_empty());

    nm.terminate();
    let stopping = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    sh.loki.set_mode(Mode::Accept);
    let status = nm
        .wait_exit(Duration::from_secs(5 + 3))
        .await
        .unwrap_or_else(|| panic!("natsmon still runs 8 s after SIGTERM\n{}", nm.output()));
    let took = stopping.elapsed();
    assert!(status.success(), "{status}\n{}", nm.output());
    assert!(took <= Duration::from_secs(5 + 2), "exit took {took:?}");
    assert_exactly_once(&stored(&sh.loki.entries()), &c);
    let positions = std::fs::read_to_string(sh.state.path().join("positions.json")).unwrap();
    assert!(positions.contains(&c.id), "{positions}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loki_outage_is_warned_once_and_its_end_told_once() {
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("spam").await;
    let nm = Natsmon::start(&sh.natsmon_args(&[])).await;
    let c = Container::run(
        &sh.name("writer"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(300, "spam line", 40)),
    );
    wait_lines(&sh.loki, &c, 10, Duration::from_secs(30)).await;
    sh.loki
        .set_mode_until(Mode::Status(503), Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during = scrape(&nm.base_url()).await;
    assert_eq!(during.get("natsmon_logs_loki_up", &[]), Some(0.0));
    c.wait_exit(Duration::from_secs(60));
    wait_lines(&sh.loki, &c, 300, Duration::from_secs(40)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_exactly_once(&sh.loki.entries(), &c);

    let exp = scrape(&nm.base_url()).await;
    let retries = exp
        .get(
            "natsmon_logs_push_retries_total",
            &[("reason", "server_error")],
        )
        .unwrap();
    let refused = sh
        .loki
        .requests()
        .iter()
        .filter(|r| r.status == 503)
        .count();
    // Every attempt is counted ...
    assert!(retries >= 4.0, "{retries} retries");
    assert_eq!(retries, refused as f64, "each 503 is counted");
    // ... but told once, and the recovery once.
    let log = nm.stderr_contents();
    let warns = shipper_lines(&log, "WARN", &sh.prefix);
    assert_eq!(warns.len(), 1, "{retries} retries:\n{log}");
    assert!(warns[0].contains("503"), "{}", warns[0]);
    let back: Vec<&str> = shipper_lines(&log, "INFO", &sh.prefix)
        .into_iter()
        .filter(|l| l.contains("Loki accepts pushes again."))
        .collect();
    assert_eq!(back.len(), 1, "{log}");
    // Known reasons start at 0, the new one too.
    assert_eq!(
        exp.get(
            "natsmon_logs_checkpoint_errors_total",
            &[("reason", "corrupt")]
        ),
        Some(0.0)
    );
}
