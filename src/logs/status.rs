//! Owns the log shipper's state as a person reads it: whether Loki is reachable, the last
//! push and its result, the containers tailed, how full the buffer is, how far behind the
//! slowest container is, and the last error. The batcher and the supervisor update it at
//! the points where they update their metrics; readers (the console) take a copy.
//!
//! Metrics count events and cannot carry names or messages; this keeps only the latest of
//! each, with the container names and the (already redacted) error text, so one look
//! answers "is shipping working, and if not, why".

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How one push attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushResult {
    /// 2xx: Loki stored the lines.
    Accepted,
    /// A client error (400, other 4xx): Loki kept what it could; not retried.
    Rejected { status: u16 },
    /// 413: the batch is being split.
    Split,
    /// 413 for a single line, which is dropped and counted.
    TooLarge,
    /// A retryable failure (429, 5xx, timeout, connection), by metric reason.
    Failed { reason: &'static str },
}

impl PushResult {
    /// A short word for the result: `accepted`, `rejected`, `split`, `too_large`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            PushResult::Accepted => "accepted",
            PushResult::Rejected { .. } => "rejected",
            PushResult::Split => "split",
            PushResult::TooLarge => "too_large",
            PushResult::Failed { .. } => "failed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LastPush {
    pub at: SystemTime,
    pub result: PushResult,
    pub lines: usize,
    pub duration: Duration,
}

/// A container with a live tailer, with the Loki labels its lines get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailedContainer {
    pub name: Arc<str>,
    pub job: String,
    pub service: String,
}

#[derive(Debug, Clone)]
pub struct LastError {
    pub at: SystemTime,
    /// Which peer failed: `loki`, `docker` or `checkpoint`.
    pub source: &'static str,
    /// The message as logged: URLs and credentials are already stripped.
    pub message: String,
}

/// A copy of the shipper's state at one moment.
#[derive(Debug, Clone, Default)]
pub struct ShipperSnapshot {
    /// `None` until Loki first answered (or failed to answer) `/ready`.
    pub loki_up: Option<bool>,
    pub last_push: Option<LastPush>,
    /// By name.
    pub containers: Vec<TailedContainer>,
    pub buffered_bytes: usize,
    pub buffered_lines: usize,
    /// Age of the oldest line not yet acknowledged, over all containers; 0 when caught up.
    pub max_lag_seconds: f64,
    pub last_error: Option<LastError>,
}

/// The shared handle. A mutex, not atomics: it changes a few times per batch at most, and
/// a reader must see one consistent state (the buffer figures and lag together).
#[derive(Debug, Default)]
pub struct ShipperStatus {
    state: Mutex<ShipperSnapshot>,
}

impl ShipperStatus {
    fn with(&self, f: impl FnOnce(&mut ShipperSnapshot)) {
        // A panic elsewhere while holding the lock leaves plain data behind; keep going.
        let mut g = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g);
    }

    pub fn set_loki_up(&self, up: bool) {
        self.with(|s| s.loki_up = Some(up));
    }

    /// Records a push's answer; Loki counts as up unless the push failed retryably, as
    /// `natsmon_logs_loki_up` does.
    pub fn record_push(&self, result: PushResult, lines: usize, duration: Duration) {
        self.with(|s| {
            s.loki_up = Some(!matches!(result, PushResult::Failed { .. }));
            s.last_push = Some(LastPush {
                at: SystemTime::now(),
                result,
                lines,
                duration,
            });
        });
    }

    /// Replaces the list of tailed containers; it is kept sorted by name.
    pub fn set_containers(&self, mut containers: Vec<TailedContainer>) {
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        self.with(|s| s.containers = containers);
    }

    pub fn set_buffer(&self, bytes: usize, lines: usize, max_lag_seconds: f64) {
        self.with(|s| {
            s.buffered_bytes = bytes;
            s.buffered_lines = lines;
            s.max_lag_seconds = max_lag_seconds;
        });
    }

    pub fn record_error(&self, source: &'static str, message: String) {
        self.with(|s| {
            s.last_error = Some(LastError {
                at: SystemTime::now(),
                source,
                message,
            });
        });
    }

    pub fn snapshot(&self) -> ShipperSnapshot {
        let mut out = ShipperSnapshot::default();
        self.with(|s| out = s.clone());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_of_each() {
        let s = ShipperStatus::default();
        assert_eq!(
            s.snapshot().loki_up,
            None,
            "unknown before the first answer"
        );
        s.set_loki_up(true);
        s.record_push(
            PushResult::Failed {
                reason: "connection",
            },
            10,
            Duration::from_millis(5),
        );
        assert_eq!(s.snapshot().loki_up, Some(false));
        s.record_push(PushResult::Accepted, 12, Duration::from_millis(3));
        let snap = s.snapshot();
        assert_eq!(snap.loki_up, Some(true));
        let p = snap.last_push.unwrap();
        assert_eq!((p.result, p.lines), (PushResult::Accepted, 12));
        s.record_push(PushResult::Rejected { status: 400 }, 1, Duration::ZERO);
        assert_eq!(s.snapshot().loki_up, Some(true), "Loki answered");
        s.set_containers(vec![
            TailedContainer {
                name: "b".into(),
                job: "docker".into(),
                service: "b".into(),
            },
            TailedContainer {
                name: "a".into(),
                job: "nats".into(),
                service: "a".into(),
            },
        ]);
        let names: Vec<_> = s
            .snapshot()
            .containers
            .iter()
            .map(|c| c.name.to_string())
            .collect();
        assert_eq!(names, ["a", "b"]);
        s.set_buffer(100, 3, 1.5);
        s.record_error("docker", "cannot connect".into());
        let snap = s.snapshot();
        assert_eq!((snap.buffered_bytes, snap.buffered_lines), (100, 3));
        assert_eq!(snap.last_error.unwrap().source, "docker");
    }
}
