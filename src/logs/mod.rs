//! Owns the log shipper: a Docker supervisor with one tailer per container feeds log
//! lines through a byte-bounded buffer into one batcher that pushes to Loki and, only
//! after Loki acknowledges them, advances each container's checkpoint.
//!
//! Memory stays flat while Loki is down: a line holds buffer permits until Loki has
//! acknowledged it, so when the buffer is full the tailers stop reading from Docker and
//! the container's log file is the buffer.
//!
//! An outage of a peer (Docker, Loki, the state directory) is told once in the log, as an
//! [`Incident`]; the metrics count every failed attempt.

pub mod assemble;
pub mod batch;
pub mod checkpoint;
pub mod container;
pub mod level;
pub mod metrics;
pub mod service;
pub mod status;
pub mod supervisor;
pub mod tailer;
pub mod wire;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use self::assemble::Line;

/// One line on its way to Loki.
pub struct LogEntry {
    pub container_id: Arc<str>,
    pub container_name: Arc<str>,
    /// The Loki stream's label text.
    pub labels: Arc<str>,
    pub line: Line,
    /// Buffer space this line occupies until it is acknowledged or dropped.
    _permit: OwnedSemaphorePermit,
}

impl LogEntry {
    pub fn new(
        container_id: Arc<str>,
        container_name: Arc<str>,
        labels: Arc<str>,
        line: Line,
        permit: OwnedSemaphorePermit,
    ) -> LogEntry {
        LogEntry {
            container_id,
            container_name,
            labels,
            line,
            _permit: permit,
        }
    }
}

/// One outage of a peer as the log tells it: a WARN at the first failure, DEBUG for the
/// failures that follow, one INFO when it works again. A retry loop logging every attempt
/// would bury the one line that matters under thousands that say the same.
#[derive(Debug, Default)]
pub struct Incident {
    /// When the first failure happened, and how many failures there have been since.
    open: Option<(Instant, u64)>,
}

impl Incident {
    /// Records a failure; true for the first one of an incident, the one to WARN about.
    pub fn fail(&mut self) -> bool {
        match &mut self.open {
            Some((_, failures)) => {
                *failures += 1;
                false
            }
            None => {
                self.open = Some((Instant::now(), 1));
                true
            }
        }
    }

    /// Records a success; for the one that ends an incident, how long the incident lasted
    /// and how many attempts failed, to tell in its INFO line.
    pub fn recover(&mut self) -> Option<(Duration, u64)> {
        self.open
            .take()
            .map(|(since, failures)| (since.elapsed(), failures))
    }
}

/// A container's name and its lines read but not yet acknowledged, oldest first: each
/// line's timestamp and the buffer bytes it holds.
#[derive(Debug, Default)]
struct Pending {
    name: Arc<str>,
    lines: VecDeque<(i64, usize)>,
}

/// Lines read but not yet acknowledged, by container, for the lag and buffer gauges.
/// Lines of one container are acknowledged in the order they were read.
#[derive(Debug, Default)]
pub struct InFlight {
    by_container: Mutex<HashMap<Arc<str>, Pending>>,
    /// Bytes of all pending lines, kept as a sum so the gauge costs no walk.
    bytes: AtomicUsize,
}

impl InFlight {
    /// Records a line read from container `id`, holding `bytes` of buffer.
    pub fn read(&self, id: &Arc<str>, name: &Arc<str>, ts_ns: i64, bytes: usize) {
        let mut g = self.by_container.lock().expect("in-flight poisoned");
        let e = g.entry(id.clone()).or_insert_with(|| Pending {
            name: name.clone(),
            lines: VecDeque::new(),
        });
        e.name = name.clone();
        e.lines.push_back((ts_ns, bytes));
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records that container `id`'s oldest pending line was acknowledged or dropped.
    pub fn done(&self, id: &str) {
        let mut g = self.by_container.lock().expect("in-flight poisoned");
        if let Some((_, bytes)) = g.get_mut(id).and_then(|e| e.lines.pop_front()) {
            self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// (container name, age in seconds of its oldest unacknowledged line, 0 if none).
    pub fn lags(&self, now_ns: i64) -> Vec<(Arc<str>, f64)> {
        let g = self.by_container.lock().expect("in-flight poisoned");
        g.values()
            .map(|p| {
                (
                    p.name.clone(),
                    p.lines
                        .front()
                        .map_or(0.0, |(ts, _)| ((now_ns - ts).max(0)) as f64 / 1e9),
                )
            })
            .collect()
    }

    /// Lines read but not yet acknowledged.
    pub fn total(&self) -> usize {
        self.by_container
            .lock()
            .expect("in-flight poisoned")
            .values()
            .map(|p| p.lines.len())
            .sum()
    }

    /// Buffer bytes held by lines read but not yet acknowledged.
    pub fn total_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incident_opens_once_and_closes_once() {
        let mut i = Incident::default();
        assert_eq!(i.recover(), None, "nothing to recover from");
        assert!(i.fail(), "the first failure opens it");
        assert!(!i.fail());
        assert!(!i.fail());
        assert_eq!(i.recover().map(|(_, n)| n), Some(3));
        assert_eq!(i.recover(), None, "closed once");
        assert!(i.fail(), "a new incident");
    }

    #[test]
    fn in_flight_counts_bytes_until_acknowledged() {
        let f = InFlight::default();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        f.read(&a, &a, 10, 100);
        f.read(&a, &a, 20, 30);
        f.read(&b, &b, 15, 7);
        assert_eq!((f.total(), f.total_bytes()), (3, 137));
        f.done("a");
        assert_eq!(
            (f.total(), f.total_bytes()),
            (2, 37),
            "the oldest line of a"
        );
        let mut lags = f.lags(1_000_000_020);
        lags.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(lags, vec![("a".into(), 1.0), ("b".into(), 1.000_000_005)]);
        f.done("a");
        f.done("b");
        assert_eq!((f.total(), f.total_bytes()), (0, 0));
        // An acknowledgement with nothing pending (a second ack of a line) changes nothing.
        f.done("a");
        f.done("unknown");
        assert_eq!(f.total_bytes(), 0);
    }
}
