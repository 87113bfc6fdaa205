//! Golden tests: the exact exposition text natsmon renders for fixed snapshots built
//! from nats-server 2.9.10, 2.12.8 and 2.15.1 responses captured from live clusters
//! (`tests/it/capture.rs` makes the 2.12 and 2.15.1 ones). Set
//! `NATSMON_UPDATE_GOLDEN=1` to rewrite the expected files after a deliberate change,
//! then review the diff.

use std::path::{Path, PathBuf};

use natsmon::config::ConsumerPolicy;
use natsmon::exposition::openmetrics_to_prometheus;
use natsmon::nats::aggregate;
use natsmon::nats::connz::{Connz, ConnzSummary};
use natsmon::nats::raftz::Raftz;
use natsmon::nats::snapshot::NodePoll;
use serde::de::DeserializeOwned;

fn fixture<T: DeserializeOwned>(version: &str, name: &str) -> T {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nats")
        .join(version)
        .join(name);
    let text =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", p.display()))
}

fn fixture_path(version: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nats")
        .join(version)
        .join(name)
}

/// A fixture the version has (gateways and leaf nodes are not captured everywhere).
fn optional<T: DeserializeOwned>(version: &str, name: &str) -> Option<T> {
    fixture_path(version, name)
        .is_file()
        .then(|| fixture(version, name))
}

/// `/raftz` as the poller merges it: the system account's answer, then one per
/// account (`<stem>_<account>.json`). `None` for versions without `/raftz` captures.
fn raftz(version: &str, stem: &str) -> Option<Raftz> {
    let mut all: Raftz = optional(version, &format!("{stem}.json"))?;
    for acc in ["A", "B"] {
        if let Some(r) = optional::<Raftz>(version, &format!("{stem}_{acc}.json")) {
            all.merge(r);
        }
    }
    Some(all)
}

/// A full poll of one node from a fixture directory; `varz`/`jsz` name the role's files.
fn poll(version: &str, varz: &str, jsz: &str, healthz: &str, raft: &str) -> NodePoll {
    let mut connz = ConnzSummary::default();
    let page: Connz = fixture(version, "connz.json");
    connz.absorb(page, 1);
    NodePoll {
        varz: Some(fixture(version, varz)),
        jsz: Some(fixture(version, jsz)),
        connz: Some(connz),
        routez: Some(fixture(version, "routez.json")),
        healthz: Some(fixture(version, healthz)),
        accstatz: Some(fixture(version, "accstatz.json")),
        subsz: Some(fixture(version, "subsz.json")),
        gatewayz: optional(version, "gatewayz.json"),
        leafz: optional(version, "leafz.json"),
        raftz: raftz(version, raft).map(std::sync::Arc::new),
        finished_at: Some(std::time::UNIX_EPOCH),
        ..Default::default()
    }
}

fn check(name: &str, actual: &str) {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("NATSMON_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with NATSMON_UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(10)
            .map(|(i, (a, b))| format!("line {}:\n  expected: {a}\n  actual:   {b}", i + 1))
            .collect();
        panic!(
            "{name} differs ({} vs {} lines):\n{}",
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

fn render(version: &str) -> String {
    let leader = poll(version, "varz.json", "jsz.json", "healthz.json", "raftz");
    // 2.10+ servers explain an unhealthy state per check; the follower shows one.
    let follower_health = if version == "2.9.10" {
        "healthz.json"
    } else {
        "healthz_details_error.json"
    };
    let follower = poll(
        version,
        "varz_follower.json",
        "jsz_follower.json",
        follower_health,
        "raftz_follower",
    );
    // The third node is down: only nats_up must appear for it.
    let down = NodePoll {
        finished_at: Some(std::time::UNIX_EPOCH),
        ..Default::default()
    };
    let mut polls = vec![("n1", &follower), ("n2", &leader), ("n3", &down)];
    // A standalone server with TLS and GOMEMLIMIT (captured), and for 2.15.1 a node
    // whose /varz shows the fields an idle capture leaves out or at zero (hand-written).
    let varz_only = |name: &str| {
        optional(version, name).map(|v| NodePoll {
            varz: Some(v),
            finished_at: Some(std::time::UNIX_EPOCH),
            ..Default::default()
        })
    };
    let tls = varz_only("varz_tls.json");
    let busy = varz_only("varz_busy.json");
    if let Some(p) = &tls {
        polls.push(("n4", p));
    }
    if let Some(p) = &busy {
        polls.push(("n5", p));
    }
    aggregate::collect(&polls, &ConsumerPolicy::default()).encode_openmetrics()
}

#[test]
fn golden_2_9_10_openmetrics() {
    check("2.9.10.om.txt", &render("2.9.10"));
}

#[test]
fn golden_2_9_10_prometheus_text() {
    check(
        "2.9.10.prom.txt",
        &openmetrics_to_prometheus(&render("2.9.10")),
    );
}

#[test]
fn golden_2_12_openmetrics() {
    check("2.12.om.txt", &render("2.12"));
}

#[test]
fn golden_2_15_1_openmetrics() {
    check("2.15.1.om.txt", &render("2.15.1"));
}
