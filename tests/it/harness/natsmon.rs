//! The built `natsmon` binary as a child process, and its arguments for a [`Cluster`].

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::cluster::Cluster;
use super::http::http_get;
use super::{args, free_port, new_tempdir, read_to_string_lossy};

/// Timeout for `natsmon` to answer `/healthz`.
pub const NATSMON_START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `natsmon` binary. Killed on drop.
pub struct Natsmon {
    child: Option<Child>,
    /// Holds stdout/stderr files; removed on drop.
    _dir: tempfile::TempDir,
    pub listen: String,
    stderr_path: PathBuf,
    stdout_path: PathBuf,
}

pub fn natsmon_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_natsmon"))
}

impl Natsmon {
    /// Spawn `natsmon <args> --listen 127.0.0.1:<free port>` and wait until
    /// `GET /healthz` answers 200 (20 s). Panics with the process output if
    /// it exits or never becomes healthy.
    pub async fn start(args: &[String]) -> Natsmon {
        Self::start_with_env(args, &[]).await
    }

    /// Like [`Natsmon::start`] with extra environment variables.
    pub async fn start_with_env(args: &[String], envs: &[(&str, &str)]) -> Natsmon {
        let mut m = Self::spawn(args, envs);
        m.wait_healthy(NATSMON_START_TIMEOUT).await;
        m
    }

    /// Spawn without waiting for health (e.g. to test startup failures).
    pub fn spawn(args: &[String], envs: &[(&str, &str)]) -> Natsmon {
        let dir = new_tempdir("natsmon-proc-");
        let stderr_path = dir.path().join("stderr.log");
        let stdout_path = dir.path().join("stdout.log");
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(natsmon_bin());
        cmd.args(args)
            .arg("--listen")
            .arg(&listen)
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                File::create(&stdout_path).expect("create stdout file"),
            ))
            .stderr(Stdio::from(
                File::create(&stderr_path).expect("create stderr file"),
            ));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("failed to spawn {}: {e}", natsmon_bin().display()));
        Natsmon {
            child: Some(child),
            _dir: dir,
            listen,
            stderr_path,
            stdout_path,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.listen)
    }

    pub fn stderr_contents(&self) -> String {
        read_to_string_lossy(&self.stderr_path)
    }

    pub fn stdout_contents(&self) -> String {
        read_to_string_lossy(&self.stdout_path)
    }

    /// stderr followed by stdout, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- natsmon stderr ---\n{}\n--- natsmon stdout ---\n{}",
            self.stderr_contents(),
            self.stdout_contents()
        )
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `Some(status)` if the process has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Wait up to `timeout` for the process to exit on its own.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Send SIGTERM (via `kill -TERM <pid>`) for graceful-shutdown tests.
    pub fn terminate(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn wait_healthy(&mut self, timeout: Duration) {
        let url = format!("{}/healthz", self.base_url());
        let deadline = Instant::now() + timeout;
        let mut last: String;
        loop {
            if let Some(status) = self.try_wait() {
                panic!(
                    "natsmon exited during startup with {status}\n{}",
                    self.output()
                );
            }
            match http_get(&url).await {
                Ok((200, _)) => return,
                Ok((s, b)) => last = format!("{s} {b}"),
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                panic!(
                    "natsmon not healthy after {timeout:?} (last: {last})\n{}",
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Natsmon {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "[harness] test panicked; natsmon output:\n{}",
                self.output()
            );
        }
    }
}

/// Run `natsmon <args>` to completion (no `--listen` added), killing it after
/// `timeout`. Returns (exit status or None if killed, stdout, stderr).
pub async fn run_natsmon(
    args: &[String],
    timeout: Duration,
) -> (Option<std::process::ExitStatus>, String, String) {
    let mut child = tokio::process::Command::new(natsmon_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn natsmon");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let rd_out = tokio::spawn(async move {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s).await;
        s
    });
    let rd_err = tokio::spawn(async move {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s).await;
        s
    });
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(s) => s.ok(),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    let o = String::from_utf8_lossy(&rd_out.await.unwrap_or_default()).into_owned();
    let e = String::from_utf8_lossy(&rd_err.await.unwrap_or_default()).into_owned();
    (status, o, e)
}

/// natsmon's arguments for the cluster; `timing` is the poll interval and timeout.
pub fn natsmon_args(cluster: &Cluster, timing: (&str, &str), extra: &[&str]) -> Vec<String> {
    let all: Vec<usize> = (0..cluster.len()).collect();
    natsmon_args_for(cluster, &all, timing, extra)
}

/// natsmon's arguments for some of the cluster's nodes (by index) only.
pub fn natsmon_args_for(
    cluster: &Cluster,
    nodes: &[usize],
    timing: (&str, &str),
    extra: &[&str],
) -> Vec<String> {
    let mut a = Vec::new();
    for &i in nodes {
        a.push("--nats-url".to_string());
        a.push(format!(
            "{}={}",
            cluster.server_name(i),
            cluster.monitor_url(i)
        ));
    }
    a.extend(args(&[
        "--poll-interval",
        timing.0,
        "--poll-timeout",
        timing.1,
    ]));
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Runs natsmon to its exit with `args` and `env` (the process environment otherwise
/// stripped of NATSMON_*); returns (exit code, stderr). Fails if it is still running
/// after 10 s: every case here must be refused at once.
pub async fn refused(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(natsmon_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if k.starts_with("NATSMON_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn natsmon");
    let mut err = child.stderr.take().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap_or_else(|_| panic!("natsmon {args:?} {env:?} kept running"))
        .unwrap();
    let mut s = String::new();
    let _ = err.read_to_string(&mut s).await;
    (status.code().unwrap_or(-1), s)
}
