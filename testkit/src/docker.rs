//! Helpers for integration tests that need a REAL Docker engine.
//!
//! Standalone module (std + tokio + serde_json only, no other harness module), so that
//! `benches/shipper.rs` can include it too (through `tests/common/docker.rs`).
//!
//! * [`ensure_docker`] runs `scripts/docker-env.sh` once per process: it
//!   installs `docker.io`/`busybox-static` if missing, starts dockerd
//!   (`--storage-driver=vfs --iptables=false --bridge=none`) if `docker info`
//!   fails, and builds the local image [`IMAGE`] (busybox-static +
//!   nats-server 2.9.10, no registry access). It PANICS with the script output
//!   on failure: tests never silently skip.
//! * There is no bridge network: containers use `--network none` (default in
//!   [`Container::run`]) or `--network host`.
//! * Every container started here uses `--log-driver json-file` explicitly,
//!   so the tests do not depend on the daemon's default log driver.
//! * Lines longer than 16 KiB are split by dockerd into 16 KiB partial
//!   messages (visible as separate frames via the API and as extra timestamps
//!   with `docker logs --timestamps`).
//!
//! Set `NATSMON_TEST_KEEP=1` to keep containers after the test (no `rm -f` on
//! drop) for debugging.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Local test image built by `scripts/docker-env.sh` (`docker import`, no registry).
/// Contains `/bin/busybox` (+ all applet symlinks in `/bin`) and
/// `/usr/local/bin/nats-server` (its default CMD).
pub const IMAGE: &str = "natsmon-test/nats:2.9.10";
/// Path of nats-server inside [`IMAGE`].
pub const NATS_SERVER_IN_IMAGE: &str = "/usr/local/bin/nats-server";
/// Where `scripts/docker-env.sh` writes the pid of the dockerd it started.
pub const DOCKERD_PIDFILE: &str = "/tmp/natsmon-dockerd.pid";

/// Serialises docker-env.sh invocations inside one process (the script also
/// takes a flock, which covers parallel processes such as cargo-nextest).
static SCRIPT_LOCK: Mutex<()> = Mutex::new(());

/// Absolute path of `scripts/docker-env.sh`.
pub fn env_script() -> PathBuf {
    // This crate lives one level below the repository root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/docker-env.sh")
}

fn run_env_script(arg: &str) -> Result<String, String> {
    let _g = SCRIPT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let script = env_script();
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(&script)
        .arg(arg)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let text = format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        eprintln!(
            "[docker] {} {arg} ok in {:.1}s",
            script.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(text)
    } else {
        Err(format!(
            "{} {arg} failed ({}):\n{text}",
            script.display(),
            out.status
        ))
    }
}

/// Makes sure dockerd runs and [`IMAGE`] exists. Runs the script once per
/// process; panics loudly (with the script's output) if that fails.
pub fn ensure_docker() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let res = DONE.get_or_init(|| {
        run_env_script("ensure")?;
        reap_stale_containers();
        Ok(())
    });
    if let Err(e) = res {
        panic!("Docker test environment is NOT available — refusing to skip.\n{e}");
    }
}

/// Label put on every container started by [`Container::run`]; value = pid of
/// the test process.
pub const PID_LABEL: &str = "natsmon-test.pid";

/// Removes containers left behind by test processes that no longer exist
/// (e.g. killed by `timeout` before `Drop` ran). Called by [`ensure_docker`].
pub fn reap_stale_containers() {
    let fmt = format!("{{{{.ID}}}} {{{{.Label \"{PID_LABEL}\"}}}}");
    let filter = format!("label={PID_LABEL}");
    let Ok(list) = docker_try(&["ps", "-a", "--filter", &filter, "--format", &fmt]) else {
        return;
    };
    for line in list.lines() {
        let mut it = line.split_whitespace();
        if let (Some(id), Some(pid)) = (it.next(), it.next())
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = docker_try(&["rm", "-f", id]);
        }
    }
}

/// `unix:///var/run/docker.sock` (honours `$DOCKER_HOST` if set).
pub fn docker_host() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => h,
        _ => "unix:///var/run/docker.sock".to_string(),
    }
}

/// Runs the docker CLI; `Ok(stdout trimmed)` or `Err(description with stderr)`.
pub fn docker_try(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `docker {}`: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "`docker {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            {
                let so = String::from_utf8_lossy(&out.stdout);
                if so.trim().is_empty() {
                    String::new()
                } else {
                    format!("\nstdout: {}", so.trim())
                }
            }
        ))
    }
}

/// Runs the docker CLI, panicking with stderr on failure; returns stdout trimmed.
#[track_caller]
pub fn docker(args: &[&str]) -> String {
    match docker_try(args) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// Raw (untrimmed) stdout and stderr of `docker logs <args>`; panics on failure.
/// Useful because `docker logs` replays the container's stderr on stderr.
#[track_caller]
pub fn docker_logs_split(args: &[&str]) -> (String, String) {
    let mut full = vec!["logs"];
    full.extend_from_slice(args);
    let out = Command::new("docker")
        .args(&full)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker logs: {e}"));
    assert!(
        out.status.success(),
        "`docker {}` failed: {}",
        full.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `prefix-<pid>-<counter>-<nanos>`: unique across processes and runs, valid
/// as a container name.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "{}-{}-{}-{:08x}",
        clean.trim_matches('-'),
        std::process::id(),
        n,
        nanos
    )
}

/// A container started by a test. `Drop` runs `docker rm -f` (quietly).
#[derive(Debug)]
pub struct Container {
    pub id: String,
    pub name: String,
}

impl Container {
    /// `docker run -d --name <unique(name)> --log-driver json-file
    /// [--network none] <extra_run_args> IMAGE <cmd>`.
    ///
    /// `--network none` is added unless `extra_run_args` contains a
    /// `--network`/`--net` option; `--log-driver json-file` unless it contains
    /// `--log-driver`. An empty `cmd` runs the image's default
    /// (`nats-server`). Calls [`ensure_docker`] first.
    #[track_caller]
    pub fn run(name: &str, extra_run_args: &[&str], cmd: &[&str]) -> Container {
        Self::run_image(name, IMAGE, extra_run_args, cmd)
    }

    /// Like [`Container::run`] with another (locally present) image.
    #[track_caller]
    pub fn run_image(name: &str, image: &str, extra_run_args: &[&str], cmd: &[&str]) -> Container {
        ensure_docker();
        let name = unique_name(name);
        let has = |flag: &str| {
            extra_run_args
                .iter()
                .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
        };
        let label = format!("{PID_LABEL}={}", std::process::id());
        let mut args: Vec<&str> = vec!["run", "-d", "--name", &name, "--label", &label];
        if !has("--log-driver") {
            args.extend_from_slice(&["--log-driver", "json-file"]);
        }
        if !has("--network") && !has("--net") {
            args.extend_from_slice(&["--network", "none"]);
        }
        args.extend_from_slice(extra_run_args);
        args.push(image);
        args.extend_from_slice(cmd);
        let id = docker(&args);
        Container { id, name }
    }

    /// `docker kill --signal <sig>`.
    pub fn signal(&self, sig: &str) {
        docker(&["kill", "--signal", sig, &self.id]);
    }
    /// `docker start`.
    pub fn start(&self) {
        docker(&["start", &self.id]);
    }
    /// `docker rm -f` (panics on failure; Drop does it quietly anyway).
    pub fn rm(&self) {
        docker(&["rm", "-f", &self.id]);
    }

    /// `docker inspect -f <format>`.
    pub fn inspect(&self, format: &str) -> String {
        docker(&["inspect", "-f", format, &self.id])
    }
    /// Waits for the container to exit; returns its exit code.
    pub fn wait_exit(&self, timeout: Duration) -> i64 {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.inspect("{{.State.Status}} {{.State.ExitCode}}");
            let mut it = st.split_whitespace();
            if let (Some("exited"), Some(code)) = (it.next(), it.next()) {
                return code.parse().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "container {} did not exit within {timeout:?} (state: {st})",
                self.name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    /// `docker logs <extra> <id>`: (stdout, stderr), untrimmed.
    pub fn logs_with(&self, extra: &[&str]) -> (String, String) {
        let mut a: Vec<&str> = extra.to_vec();
        a.push(&self.id);
        docker_logs_split(&a)
    }
    /// `docker logs`: the container's stdout only, untrimmed.
    pub fn logs_stdout(&self) -> String {
        self.logs_with(&[]).0
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::env::var("NATSMON_TEST_KEEP").as_deref() == Ok("1") {
            eprintln!(
                "[docker] NATSMON_TEST_KEEP=1: keeping container {} ({})",
                self.name, self.id
            );
            return;
        }
        if let Err(e) = docker_try(&["rm", "-f", &self.id])
            && !e.contains("No such container")
        {
            eprintln!(
                "[docker] warning: could not remove container {}: {e}",
                self.name
            );
        }
    }
}

/// busybox `sh -c` command printing `"{prefix} {i}"` for i in 1..=lines to
/// stdout, sleeping `interval_ms` between lines (0 = no sleep), then exiting
/// 0. Every 10th line (i % 10 == 0) goes to **stderr** instead of stdout, so
/// the union of both streams is exactly the `lines` numbered lines.
pub fn log_generator_cmd(lines: usize, prefix: &str, interval_ms: u64) -> Vec<String> {
    log_generator_cmd_opts(lines, prefix, interval_ms, 10)
}

/// Like [`log_generator_cmd`]; every `stderr_every`-th line goes to stderr
/// (0 = everything on stdout).
pub fn log_generator_cmd_opts(
    lines: usize,
    prefix: &str,
    interval_ms: u64,
    stderr_every: usize,
) -> Vec<String> {
    let script = format!(
        "trap 'exit 143' TERM INT; P={}; E={stderr_every}; i=1; \
         while [ $i -le {lines} ]; do \
           if [ $E -gt 0 ] && [ $((i % E)) -eq 0 ]; then echo \"$P $i\" >&2; else echo \"$P $i\"; fi; \
           {sleep} i=$((i + 1)); \
         done",
        sh_quote(prefix),
        sleep = sleep_snippet(interval_ms),
    );
    vec!["/bin/sh".into(), "-c".into(), script]
}

/// busybox `sh -c` command printing `lines` nats-server-style log lines to
/// stdout: `[1] 2024/01/02 15:04:05.123456 [INF] message {i}` (the date is
/// the container's current UTC time). Every 5th line is `[WRN]`, every 7th
/// `[ERR]` (ERR wins when both), the others `[INF]`; `[ERR]` lines go to
/// stderr. The `{i}` numbering (1-based) allows exactly-once checks; use
/// [`nats_style_level`] for the expected level of line `i`.
pub fn nats_style_log_cmd(lines: usize, interval_ms: u64) -> Vec<String> {
    let script = format!(
        "trap 'exit 143' TERM INT; i=1; \
         while [ $i -le {lines} ]; do \
           ts=$(date -u '+%Y/%m/%d %H:%M:%S'); us=$(( (i * 7919) % 1000000 )); \
           if [ $((i % 7)) -eq 0 ]; then printf '[1] %s.%06d [ERR] message %d\\n' \"$ts\" $us $i >&2; \
           elif [ $((i % 5)) -eq 0 ]; then printf '[1] %s.%06d [WRN] message %d\\n' \"$ts\" $us $i; \
           else printf '[1] %s.%06d [INF] message %d\\n' \"$ts\" $us $i; fi; \
           {sleep} i=$((i + 1)); \
         done",
        sleep = sleep_snippet(interval_ms),
    );
    vec!["/bin/sh".into(), "-c".into(), script]
}

/// Expected level (`"INF"`, `"WRN"`, `"ERR"`) of line `i` of [`nats_style_log_cmd`].
pub fn nats_style_level(i: usize) -> &'static str {
    if i.is_multiple_of(7) {
        "ERR"
    } else if i.is_multiple_of(5) {
        "WRN"
    } else {
        "INF"
    }
}

/// `cmd` as `&str`s, for [`Container::run`].
pub fn as_strs(cmd: &[String]) -> Vec<&str> {
    cmd.iter().map(String::as_str).collect()
}

fn sleep_snippet(interval_ms: u64) -> String {
    if interval_ms == 0 {
        String::new()
    } else {
        // busybox sleep accepts fractional seconds.
        format!("sleep {}.{:03};", interval_ms / 1000, interval_ms % 1000)
    }
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Pid of the running dockerd: our pid file first, then dockerd's own
/// `/var/run/docker.pid`.
pub fn dockerd_pid() -> Option<u32> {
    for f in [DOCKERD_PIDFILE, "/var/run/docker.pid"] {
        if let Ok(s) = std::fs::read_to_string(f)
            && let Ok(pid) = s.trim().parse::<u32>()
        {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "dockerd" {
                return Some(pid);
            }
        }
    }
    None
}

/// Lock file coordinating dockerd restarts with tests that use Docker
/// (see [`dockerd_shared`]); works across processes (cargo-nextest).
pub const DOCKERD_USE_LOCK: &str = "/tmp/natsmon-dockerd-use.lock";

thread_local! {
    static SHARED_HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A shared (reader) hold on dockerd: while any `DockerdUse` is alive, in any
/// process, [`restart_dockerd`] waits. Take one at the start of every test
/// that must not see dockerd disappear: `let _d = docker::dockerd_shared();`
#[derive(Debug)]
pub struct DockerdUse {
    _file: std::fs::File,
}

fn open_use_lock() -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(DOCKERD_USE_LOCK)
        .unwrap_or_else(|e| panic!("cannot open {DOCKERD_USE_LOCK}: {e}"))
}

/// Calls [`ensure_docker`] and returns a shared hold on dockerd (see [`DockerdUse`]).
pub fn dockerd_shared() -> DockerdUse {
    ensure_docker();
    let f = open_use_lock();
    f.lock_shared()
        .unwrap_or_else(|e| panic!("lock_shared {DOCKERD_USE_LOCK}: {e}"));
    SHARED_HELD.with(|c| c.set(c.get() + 1));
    DockerdUse { _file: f }
}

impl Drop for DockerdUse {
    fn drop(&mut self) {
        SHARED_HELD.with(|c| c.set(c.get().saturating_sub(1)));
        // the flock is released when the file is closed
    }
}

/// Stops the running dockerd (SIGTERM via its pid file; dockerd stops the
/// running containers) and starts it again with the same flags
/// (`scripts/docker-env.sh restart-dockerd`), waiting until `docker info`
/// works. Stopped containers, their json logs and images persist
/// (/var/lib/docker); running containers end up exited (unless they have a
/// restart policy). Takes ~3-5 s. Panics on failure.
///
/// Waits (up to 5 min) for an exclusive lock on [`DOCKERD_USE_LOCK`], i.e. until
/// no test in any process holds a [`dockerd_shared`] guard. Panics if the
/// calling thread itself holds one (that would deadlock).
pub fn restart_dockerd() {
    ensure_docker();
    assert_eq!(
        SHARED_HELD.with(|c| c.get()),
        0,
        "restart_dockerd() called while this thread holds a dockerd_shared() guard (would deadlock)"
    );
    let f = open_use_lock();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match f.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                assert!(
                    Instant::now() < deadline,
                    "restart_dockerd: other tests held {DOCKERD_USE_LOCK} for 5 minutes"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::Error(e)) => panic!("lock {DOCKERD_USE_LOCK}: {e}"),
        }
    }
    let before = dockerd_pid();
    if let Err(e) = run_env_script("restart-dockerd") {
        panic!("restart_dockerd failed:\n{e}");
    }
    let after = dockerd_pid();
    assert!(after.is_some(), "no dockerd pid after restart");
    assert_ne!(before, after, "dockerd pid unchanged after restart");
    docker(&["info", "--format", "{{.ServerVersion}}"]);
    drop(f);
}

/// True if `s` is an RFC 3339 timestamp with nanosecond-style fraction as
/// printed by `docker logs --timestamps` (Go's RFC3339Nano: trailing zeros of
/// the fraction are trimmed, so it has 1..=9 digits, or none at all).
pub fn is_rfc3339_nano(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19))
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return false;
        }
        rest = &frac[n..];
    }
    rest == "Z"
        || (rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest[1..3].bytes().all(|c| c.is_ascii_digit())
            && &rest[3..4] == ":"
            && rest[4..6].bytes().all(|c| c.is_ascii_digit()))
}
