//! natsmon as a log shipper: ONE setup (a Loki receiver, a state dir, a unique container
//! name prefix, and the shipper flags), and the exactly-once checks against
//! `docker logs --timestamps`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::docker::{self, Container};
use super::loki::{LokiReceiver, Received};
use super::{args, new_tempdir};

/// A Loki receiver, a state dir and a container name prefix for one shipper test.
pub struct ShipperSetup {
    pub loki: LokiReceiver,
    pub state: tempfile::TempDir,
    /// Unique per test; natsmon ships only containers whose names start with it.
    pub prefix: String,
    /// `--docker-host`: the real dockerd unless a test puts a proxy in between.
    pub docker_host: String,
}

impl ShipperSetup {
    /// Starts the Loki receiver; the prefix is `docker::unique_name(name)`.
    pub async fn start(name: &str) -> ShipperSetup {
        ShipperSetup {
            loki: LokiReceiver::start().await,
            state: new_tempdir("natsmon-shipper-state-"),
            prefix: docker::unique_name(name),
            docker_host: docker::docker_host(),
        }
    }

    /// The shipper flags: Loki, Docker, state dir, the prefix filter, short batch wait
    /// and retry backoff; then `extra`.
    pub fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut a = args(&[
            "--loki-url",
            &self.loki.url(),
            "--docker-host",
            &self.docker_host,
            "--state-dir",
            self.state.path().to_str().unwrap(),
            "--include-containers",
            &format!("{}*", self.prefix),
            "--batch-max-wait",
            "200ms",
            "--retry-max-backoff",
            "2s",
        ]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    /// natsmon as a shipper only: it polls no NATS node.
    pub fn natsmon_args(&self, extra: &[&str]) -> Vec<String> {
        let mut a = args(&["--roles", "shipper"]);
        a.extend(self.args(extra));
        a
    }

    /// A container name `<prefix>-<suffix>`, which natsmon ships.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }
}

/// What Loki would store: exact duplicates (same stream, timestamp and line) collapse.
pub fn stored(entries: &[Received]) -> Vec<Received> {
    let mut seen = BTreeSet::new();
    entries
        .iter()
        .filter(|e| seen.insert((e.labels.clone(), e.ts_ns, e.line.clone())))
        .cloned()
        .collect()
}

/// Lines of one container as `docker logs --timestamps` shows them: (ts_ns, stream, line).
pub fn docker_truth(c: &Container) -> Vec<(i128, &'static str, String)> {
    let (out, err) = c.logs_with(&["--timestamps"]);
    let mut v = Vec::new();
    for (text, stream) in [(out, "stdout"), (err, "stderr")] {
        for l in text.lines() {
            let (ts, line) = l.split_once(' ').unwrap();
            v.push((rfc3339_ns(ts), stream, line.to_string()));
        }
    }
    v.sort();
    v
}

fn rfc3339_ns(ts: &str) -> i128 {
    // 2024-01-02T15:04:05.123456789Z, fraction 1-9 digits.
    let (date_time, frac) = ts
        .trim_end_matches('Z')
        .split_once('.')
        .unwrap_or((ts.trim_end_matches('Z'), "0"));
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("{date_time}Z"), "+%s"])
        .output()
        .unwrap();
    let secs: i128 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let mut nanos = frac.to_string();
    while nanos.len() < 9 {
        nanos.push('0');
    }
    secs * 1_000_000_000 + nanos[..9].parse::<i128>().unwrap()
}

pub fn for_container<'a>(entries: &'a [Received], name: &str) -> Vec<&'a Received> {
    entries
        .iter()
        .filter(|e| e.label("container_name") == Some(name))
        .collect()
}

/// Asserts Loki holds exactly the container's lines: same set, each once, right stream
/// label and timestamps to the nanosecond, in time order within each Loki stream.
pub fn assert_exactly_once(entries: &[Received], c: &Container) {
    assert_exactly_once_as(entries, &c.name, &docker_truth(c));
}

/// [`assert_exactly_once`] against lines taken from `docker logs` earlier (of a container
/// removed since).
pub fn assert_exactly_once_as(
    entries: &[Received],
    name: &str,
    truth: &[(i128, &'static str, String)],
) {
    let got = for_container(entries, name);
    let mut got_set: Vec<(i128, &str, String)> = got
        .iter()
        .map(|e| (e.ts_ns, e.label("stream").unwrap_or("?"), e.line.clone()))
        .collect();
    got_set.sort();
    let dupes = got_set.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(dupes, 0, "{name}: duplicated lines");
    if got_set != truth {
        let t: BTreeSet<_> = truth.iter().collect();
        let g: BTreeSet<_> = got_set.iter().collect();
        let missing: Vec<_> = t.difference(&g).take(5).collect();
        let extra: Vec<_> = g.difference(&t).take(5).collect();
        panic!(
            "{name}: {} shipped vs {} in docker; missing {missing:?}; unexpected {extra:?}",
            got_set.len(),
            truth.len()
        );
    }
    let mut by_stream: HashMap<&BTreeMap<String, String>, i128> = HashMap::new();
    for e in &got {
        let last = by_stream.entry(&e.labels).or_insert(i128::MIN);
        assert!(e.ts_ns >= *last, "{name}: out of order within a stream");
        *last = e.ts_ns;
    }
}

/// Samples of the shipper's own families (`natsmon_logs_*`) on a /metrics text.
pub fn logs_series(metrics_text: &str) -> usize {
    metrics_text
        .lines()
        .filter(|l| l.starts_with("natsmon_logs_"))
        .count()
}

/// Container ids in the state dir's positions.json (none when it does not exist yet).
pub fn positions(state_dir: &std::path::Path) -> BTreeSet<String> {
    let Ok(text) = std::fs::read_to_string(state_dir.join("positions.json")) else {
        return BTreeSet::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).expect("positions.json parses");
    v["containers"]
        .as_object()
        .expect("positions.json has containers")
        .keys()
        .cloned()
        .collect()
}

pub async fn wait_lines(loki: &LokiReceiver, c: &Container, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if stored(&loki.entries())
            .iter()
            .filter(|e| e.label("container_name") == Some(c.name.as_str()))
            .count()
            >= n
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{}: fewer than {n} lines arrived: {}",
        c.name,
        for_container(&stored(&loki.entries()), &c.name).len()
    );
}
