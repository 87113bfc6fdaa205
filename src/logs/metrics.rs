//! Owns the log shipper's self-metrics, under natsmon's `natsmon_` prefix like the
//! exporter's: what was read from Docker, what Loki accepted, rejected or made us retry,
//! how much is buffered, how far behind each container is, and how often Docker's side
//! failed (API errors, tailers restarted after a broken log stream).
//!
//! Per-container series are bounded by the containers that exist: a destroyed
//! container's series are removed ([`LogMetrics::forget_container`]) a grace period after
//! its last line was acknowledged, so that Prometheus scrapes their final values first.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::level::Level;

/// Every `log_level`, to remove a container's per-level series.
const LEVELS: [Level; 7] = [
    Level::Trace,
    Level::Debug,
    Level::Info,
    Level::Warn,
    Level::Error,
    Level::Fatal,
    Level::Unknown,
];

/// Levels whose per-container counters exist from a tailer's start at 0, so that
/// `increase()` (and the error-burst alert) sees the first such line; the others are
/// created by their first line, to keep the series count low.
pub const ALERTED_LEVELS: [Level; 2] = [Level::Error, Level::Fatal];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ContainerLabels {
    pub container: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct LevelLabels {
    pub container: String,
    pub log_level: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Debug)]
pub struct LogMetrics {
    pub lines_read: Family<ContainerLabels, Counter>,
    pub lines_by_level: Family<LevelLabels, Counter>,
    pub bytes_read: Family<ContainerLabels, Counter>,
    pub lines_sent: Family<ContainerLabels, Counter>,
    pub lines_truncated: Family<ContainerLabels, Counter>,
    pub lines_rejected: Family<ReasonLabels, Counter>,
    pub lines_dropped: Family<ReasonLabels, Counter>,
    pub push_retries: Family<ReasonLabels, Counter>,
    pub push_duration: Histogram,
    pub buffered_bytes: Gauge,
    pub buffered_lines: Gauge,
    pub loki_up: Gauge,
    pub lag: Family<ContainerLabels, Gauge<f64, AtomicU64>>,
    pub containers: Gauge,
    pub docker_errors: Family<ReasonLabels, Counter>,
    pub tailer_restarts: Family<ReasonLabels, Counter>,
    pub checkpoint_errors: Family<ReasonLabels, Counter>,
    pub rotation_gaps: Counter,
    pub rotation_gap_seconds: Counter<f64, AtomicU64>,
}

impl LogMetrics {
    pub fn register(registry: &mut Registry) -> LogMetrics {
        let m = LogMetrics {
            lines_read: Family::default(),
            lines_by_level: Family::default(),
            bytes_read: Family::default(),
            lines_sent: Family::default(),
            lines_truncated: Family::default(),
            lines_rejected: Family::default(),
            lines_dropped: Family::default(),
            push_retries: Family::default(),
            push_duration: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            buffered_bytes: Gauge::default(),
            buffered_lines: Gauge::default(),
            loki_up: Gauge::default(),
            lag: Family::default(),
            containers: Gauge::default(),
            docker_errors: Family::default(),
            tailer_restarts: Family::default(),
            checkpoint_errors: Family::default(),
            rotation_gaps: Counter::default(),
            rotation_gap_seconds: Counter::default(),
        };
        // Known reasons start at 0, so `increase()` and alerts see the first event.
        for reason in ["bad_request", "client_error", "too_large"] {
            let _ = m.lines_rejected.get_or_create(&ReasonLabels { reason });
        }
        let _ = m.lines_dropped.get_or_create(&ReasonLabels {
            reason: "no_timestamp",
        });
        for reason in [
            "rate_limited",
            "server_error",
            "timeout",
            "connection",
            "structured_metadata",
        ] {
            let _ = m.push_retries.get_or_create(&ReasonLabels { reason });
        }
        for reason in ["connect", "api", "logs"] {
            let _ = m.docker_errors.get_or_create(&ReasonLabels { reason });
        }
        for reason in ["stream_ended", "stream_error"] {
            let _ = m.tailer_restarts.get_or_create(&ReasonLabels { reason });
        }
        for reason in ["read", "write", "corrupt"] {
            let _ = m.checkpoint_errors.get_or_create(&ReasonLabels { reason });
        }
        let r = registry.sub_registry_with_prefix("natsmon_logs");
        r.register(
            "lines_read",
            "Log lines read from a container",
            m.lines_read.clone(),
        );
        r.register(
            "lines_by_level",
            "Log lines read from a container, by log_level (the Loki label); ERROR and FATAL start at 0",
            m.lines_by_level.clone(),
        );
        r.register(
            "bytes_read",
            "Log bytes read from a container, timestamps excluded",
            m.bytes_read.clone(),
        );
        r.register(
            "lines_sent",
            "Log lines of a container that Loki acknowledged",
            m.lines_sent.clone(),
        );
        r.register(
            "lines_truncated",
            "Log lines cut at max_line_bytes",
            m.lines_truncated.clone(),
        );
        r.register(
            "lines_rejected",
            "Log lines Loki refused and that are not retried, by reason",
            m.lines_rejected.clone(),
        );
        r.register(
            "lines_dropped",
            "Log records natsmon could not ship, by reason",
            m.lines_dropped.clone(),
        );
        r.register(
            "push_retries",
            "Push attempts that failed and are retried, by reason",
            m.push_retries.clone(),
        );
        r.register(
            "push_duration_seconds",
            "Duration of push requests to Loki",
            m.push_duration.clone(),
        );
        r.register(
            "buffered_bytes",
            "Buffer held by log lines read but not yet acknowledged by Loki: text plus about 128 bytes per line",
            m.buffered_bytes.clone(),
        );
        r.register(
            "buffered_lines",
            "Log lines read but not yet acknowledged by Loki",
            m.buffered_lines.clone(),
        );
        r.register(
            "loki_up",
            "1 when Loki's last answer (to /ready at start, then to each push) was not a retryable error",
            m.loki_up.clone(),
        );
        r.register(
            "lag_seconds",
            "Age of a container's oldest log line not yet acknowledged by Loki; 0 when caught up",
            m.lag.clone(),
        );
        r.register(
            "containers",
            "Containers being tailed",
            m.containers.clone(),
        );
        r.register(
            "docker_errors",
            "Docker API failures (events, list, logs), by reason",
            m.docker_errors.clone(),
        );
        r.register(
            "tailer_restarts",
            "Tailers restarted after a container's log stream ended or failed while it kept running, by reason",
            m.tailer_restarts.clone(),
        );
        r.register(
            "checkpoint_errors",
            "Failed checkpoint reads and writes, and corrupt checkpoint files kept aside, by reason",
            m.checkpoint_errors.clone(),
        );
        r.register(
            "rotation_gaps",
            "Resumes that found Docker had rotated away log lines natsmon had not read",
            m.rotation_gaps.clone(),
        );
        r.register(
            "rotation_gap_seconds",
            "Seconds of container logs lost to rotation between a checkpoint and the oldest line Docker still had",
            m.rotation_gap_seconds.clone(),
        );
        m
    }

    pub fn level(name: &str, level: Level) -> LevelLabels {
        LevelLabels {
            container: name.to_string(),
            log_level: level.as_str(),
        }
    }

    /// Removes every per-container series of container `name`.
    pub fn forget_container(&self, name: &str) {
        let c = Self::container(name);
        self.lines_read.remove(&c);
        self.bytes_read.remove(&c);
        self.lines_sent.remove(&c);
        self.lines_truncated.remove(&c);
        self.lag.remove(&c);
        for l in LEVELS {
            self.lines_by_level.remove(&Self::level(name, l));
        }
    }

    pub fn container(name: &str) -> ContainerLabels {
        ContainerLabels {
            container: name.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn series(r: &Registry) -> Vec<String> {
        let mut out = String::new();
        encode(&mut out, r).unwrap();
        out.lines()
            .filter(|l| !l.starts_with('#') && l.contains("container=\""))
            .map(String::from)
            .collect()
    }

    #[test]
    fn forgetting_a_container_removes_all_its_series_and_only_its() {
        let mut r = Registry::default();
        let m = LogMetrics::register(&mut r);
        for name in ["gone", "kept"] {
            let c = LogMetrics::container(name);
            m.lines_read.get_or_create(&c).inc();
            m.bytes_read.get_or_create(&c).inc();
            m.lines_sent.get_or_create(&c).inc();
            m.lines_truncated.get_or_create(&c).inc();
            m.lag.get_or_create(&c).set(1.0);
            for l in ALERTED_LEVELS.into_iter().chain([Level::Info]) {
                m.lines_by_level
                    .get_or_create(&LogMetrics::level(name, l))
                    .inc();
            }
        }
        assert_eq!(series(&r).len(), 16);
        m.forget_container("gone");
        let left = series(&r);
        assert_eq!(left.len(), 8, "{left:?}");
        assert!(
            left.iter().all(|l| l.contains("container=\"kept\"")),
            "{left:?}"
        );
        // Forgetting twice, or a name never seen, changes nothing.
        m.forget_container("gone");
        m.forget_container("never");
        assert_eq!(series(&r).len(), 8);
    }
}
