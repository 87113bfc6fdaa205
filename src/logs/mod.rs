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
pub mod docker;
pub mod labels;
pub mod metrics;
pub mod service;
pub mod wire;

use std::collections::{HashMap, VecDeque};
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

/// The timestamps of each container's lines read but not yet acknowledged, oldest
/// first; lines of one container are acknowledged in the order they were read.
/// A container's name and the timestamps of its unacknowledged lines, oldest first.
type Pending = (Arc<str>, VecDeque<i64>);

#[derive(Debug, Default)]
pub struct InFlight {
    by_container: Mutex<HashMap<Arc<str>, Pending>>,
}

impl InFlight {
    pub fn read(&self, id: &Arc<str>, name: &Arc<str>, ts_ns: i64) {
        let mut g = self.by_container.lock().expect("in-flight poisoned");
        let e = g
            .entry(id.clone())
            .or_insert_with(|| (name.clone(), VecDeque::new()));
        e.0 = name.clone();
        e.1.push_back(ts_ns);
    }

    pub fn done(&self, id: &str) {
        let mut g = self.by_container.lock().expect("in-flight poisoned");
        if let Some(e) = g.get_mut(id) {
            e.1.pop_front();
        }
    }

    /// (container name, age in seconds of its oldest unacknowledged line, 0 if none).
    pub fn lags(&self, now_ns: i64) -> Vec<(Arc<str>, f64)> {
        let g = self.by_container.lock().expect("in-flight poisoned");
        g.values()
            .map(|(name, q)| {
                (
                    name.clone(),
                    q.front()
                        .map_or(0.0, |ts| ((now_ns - ts).max(0)) as f64 / 1e9),
                )
            })
            .collect()
    }

    pub fn total(&self) -> usize {
        self.by_container
            .lock()
            .expect("in-flight poisoned")
            .values()
            .map(|(_, q)| q.len())
            .sum()
    }
}
