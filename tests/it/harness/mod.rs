//! The shared integration-test harness, one module per concern.
//!
//! * [`cluster`]: a REAL 3-node nats-server JetStream cluster on free loopback ports.
//! * [`natsmon`]: the built `natsmon` binary as a child process.
//! * [`http`] and [`exposition`]: HTTP helpers and the Prometheus/OpenMetrics parser.
//! * [`readme`]: the README's metric reference table.
//! * [`docker`], [`docker_proxy`]: the real dockerd, and a fault-injecting proxy in front of it.
//! * [`loki`]: a Loki push receiver with fault injection; [`shipper`]: natsmon set up
//!   as a log shipper towards it.
//! * [`grafana`]: Grafana's template-variable interpolation, for the dashboard queries.
//!
//! Tools missing (nats-server, promtool, prometheus, docker) make the tests PANIC: they
//! never silently skip. Set `NATSMON_TEST_KEEP=1` to keep temporary directories and
//! containers after a test for debugging.

use std::path::Path;

pub use natsmon_testkit::{docker, loki, ports};

pub mod cluster;
pub mod docker_proxy;
pub mod exposition;
pub mod grafana;
pub mod http;
pub mod natsmon;
pub mod readme;
pub mod shipper;

pub use cluster::{
    CLUSTER_NAME, CLUSTER_START_TIMEOUT, Cluster, GatewayTo, connect, create_stream,
    nats_server_bin, nats_server_matrix, orders_with_billing, publish_acked, stream_leader,
    until_ok,
};
pub use exposition::{Exposition, promtool_check_metrics, scrape, wait_for};
pub use http::raw_get;
pub use natsmon::{Natsmon, natsmon_args, run_natsmon};
pub use ports::free_port;

/// `NATSMON_TEST_KEEP=1`: keep temp dirs and containers for debugging.
pub fn keep_tmp() -> bool {
    matches!(
        std::env::var("NATSMON_TEST_KEEP").as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// A temp dir that `NATSMON_TEST_KEEP=1` keeps for debugging.
pub fn new_tempdir(prefix: &str) -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create temp dir");
    if keep_tmp() {
        dir.disable_cleanup(true);
        eprintln!("[harness] keeping temp dir {}", dir.path().display());
    }
    dir
}

/// The repository root (`CARGO_MANIFEST_DIR`); fixtures are addressed relative to it.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the repository, by its path relative to the root; panics if unreadable.
pub fn read_repo(rel: &str) -> String {
    let p = repo_root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn read_to_string_lossy(p: &Path) -> String {
    match std::fs::read(p) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => format!("<could not read {}: {e}>", p.display()),
    }
}

/// The last `lines` lines of `s`.
pub fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    let start = v.len().saturating_sub(lines);
    v[start..].join("\n")
}

/// Pretty args helper: `args(&["--poll-interval", "1s"])`.
pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Runs `openssl` with `args` in `dir` (scripts/test.sh installs it); fails the test
/// with openssl's own error otherwise.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `key.pem` and `cert.pem` in `dir`: a self-signed certificate for 127.0.0.1,
/// valid 30 days.
pub fn self_signed_cert(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "30",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
    );
}
