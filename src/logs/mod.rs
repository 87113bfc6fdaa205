//! Owns the log shipper: a Docker supervisor with one tailer per container feeds log
//! lines through a byte-bounded buffer into one batcher that pushes to Loki and, only
//! after Loki acknowledges them, advances each container's checkpoint.
//!
//! Memory stays flat while Loki is down: a line holds buffer permits until Loki has
//! acknowledged it, so when the buffer is full the tailers stop reading from Docker and
//! the container's log file is the buffer.

pub mod assemble;
pub mod batch;
pub mod checkpoint;
pub mod container;
pub mod level;
pub mod metrics;
pub mod service;
pub mod supervisor;
pub mod tailer;
pub mod wire;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
