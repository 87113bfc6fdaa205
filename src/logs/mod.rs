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
pub mod follow;
pub mod level;
pub mod metadata;
pub mod metrics;
pub mod rotation;
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
    /// Buffer space this line occupies until it is acknowledged or dropped. None only for
    /// the one line a tailer had already read when it was stopped while waiting for room:
    /// it goes on without, so that a restarted tailer, resuming after it, loses nothing.
    _permit: Option<OwnedSemaphorePermit>,
}

impl LogEntry {
    pub fn new(
        container_id: Arc<str>,
        container_name: Arc<str>,
        labels: Arc<str>,
        line: Line,
        permit: Option<OwnedSemaphorePermit>,
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
    /// The container is gone and its tailer has stopped: once its last line is
    /// acknowledged the entry goes, and with it the container's checkpoint.
    retired: bool,
}

/// What an acknowledgement or a retirement did to a container's bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Lines remain, or the container is still there.
    Pending,
    /// The container was retired and has no line left in flight: its entry is gone, and
    /// the caller drops its checkpoint. Its name is kept among [`InFlight::retired`].
    Retired,
}

/// Lines read but not yet acknowledged, by container, for the lag and buffer gauges.
/// Lines of one container are acknowledged in the order they were read.
///
/// Entries of destroyed containers are retired, so the map holds only containers that
/// exist or still have lines in flight; a retired container's name waits in `retired`
/// until its metric series are removed.
#[derive(Debug, Default)]
pub struct InFlight {
    by_container: Mutex<HashMap<Arc<str>, Pending>>,
    /// Names of retired containers whose last line has been acknowledged, and when.
    retired: Mutex<Vec<(Arc<str>, Instant)>>,
    /// Bytes of all pending lines, kept as a sum so the gauge costs no walk.
    bytes: AtomicUsize,
}

impl InFlight {
    /// Records a line read from container `id`, holding `bytes` of buffer.
    pub fn read(&self, id: &Arc<str>, name: &Arc<str>, ts_ns: i64, bytes: usize) {
        let mut g = self.by_container.lock().expect("in-flight poisoned");
        // The container is there for all but its first line: found without cloning
        // its id, and its name replaced only when it changed (a rename).
        match g.get_mut(&**id) {
            Some(e) => {
                if !Arc::ptr_eq(&e.name, name) {
                    e.name = name.clone();
                }
                e.lines.push_back((ts_ns, bytes));
            }
            None => {
                g.insert(
                    id.clone(),
                    Pending {
                        name: name.clone(),
                        lines: VecDeque::from([(ts_ns, bytes)]),
                        retired: false,
                    },
                );
            }
        }
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records that container `id`'s oldest pending line was acknowledged or dropped.
    pub fn done(&self, id: &str) -> Settled {
        self.done_n(id, 1)
    }

    /// Records that container `id`'s `n` oldest pending lines were acknowledged or
    /// dropped: one lock for a run of lines, not one per line.
    pub fn done_n(&self, id: &str, n: usize) -> Settled {
        let mut g = self.by_container.lock().expect("in-flight poisoned");
        let Some(e) = g.get_mut(id) else {
            return Settled::Pending;
        };
        let take = n.min(e.lines.len());
        let freed: usize = e.lines.drain(..take).map(|(_, bytes)| bytes).sum();
        self.bytes.fetch_sub(freed, Ordering::Relaxed);
        if e.retired && e.lines.is_empty() {
            let e = g.remove(id).expect("present");
            self.retired_now(e.name);
            return Settled::Retired;
        }
        Settled::Pending
    }

    /// Container `id` (named `name`) is gone and no tailer reads it any more: its entry
    /// goes once its last line is acknowledged, at once when none is in flight.
    pub fn retire(&self, id: &str, name: &Arc<str>) -> Settled {
        let mut g = self.by_container.lock().expect("in-flight poisoned");
        match g.get_mut(id) {
            Some(e) if !e.lines.is_empty() => {
                e.retired = true;
                Settled::Pending
            }
            Some(_) => {
                let e = g.remove(id).expect("present");
                self.retired_now(e.name);
                Settled::Retired
            }
            None => {
                self.retired_now(name.clone());
                Settled::Retired
            }
        }
    }

    /// Queues `name`'s series for removal after the grace (a container renamed away).
    pub fn forget_name_later(&self, name: Arc<str>) {
        self.retired_now(name);
    }

    fn retired_now(&self, name: Arc<str>) {
        self.retired
            .lock()
            .expect("in-flight poisoned")
            .push((name, Instant::now()));
    }

    /// Names of containers retired at least `grace` ago (their last line acknowledged),
    /// taken out of the list; names retired more recently stay for a later call.
    pub fn take_retired(&self, grace: Duration) -> Vec<Arc<str>> {
        let mut g = self.retired.lock().expect("in-flight poisoned");
        let (due, later): (Vec<_>, Vec<_>) = g.drain(..).partition(|(_, at)| at.elapsed() >= grace);
        *g = later;
        due.into_iter().map(|(n, _)| n).collect()
    }

    /// Whether some container named `name` still has an entry (lines in flight, or a
    /// tailer that read from it).
    pub fn has_name(&self, name: &str) -> bool {
        self.by_container
            .lock()
            .expect("in-flight poisoned")
            .values()
            .any(|p| &*p.name == name)
    }

    /// Ids of the containers with an entry.
    pub fn ids(&self) -> Vec<Arc<str>> {
        self.by_container
            .lock()
            .expect("in-flight poisoned")
            .keys()
            .cloned()
            .collect()
    }

    /// Containers with an entry: bounded by the containers that exist or hold lines.
    pub fn containers(&self) -> usize {
        self.by_container.lock().expect("in-flight poisoned").len()
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

    #[test]
    fn a_retired_container_goes_with_its_last_acknowledged_line() {
        let f = InFlight::default();
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "c".into());
        f.read(&a, &a, 10, 100);
        f.read(&a, &a, 20, 30);
        f.read(&b, &b, 15, 7);
        f.done("b");
        assert_eq!(f.retire("a", &a), Settled::Pending, "two lines in flight");
        assert_eq!(f.retire("b", &b), Settled::Retired, "nothing in flight");
        assert_eq!(f.retire("c", &c), Settled::Retired, "never read");
        assert_eq!(f.done("a"), Settled::Pending);
        assert!(f.has_name("a"));
        assert_eq!(f.done("a"), Settled::Retired, "its last line");
        assert!(!f.has_name("a"));
        assert_eq!((f.containers(), f.total(), f.total_bytes()), (0, 0, 0));
        assert_eq!(f.done("a"), Settled::Pending, "gone already");
        let mut names = f.take_retired(Duration::ZERO);
        names.sort();
        assert_eq!(names, vec![a, b, c]);
        assert!(f.take_retired(Duration::ZERO).is_empty(), "taken once");
        let d: Arc<str> = "d".into();
        f.retire("d", &d);
        assert!(
            f.take_retired(Duration::from_secs(60)).is_empty(),
            "within the grace"
        );
        assert_eq!(f.take_retired(Duration::ZERO), vec![d]);
    }
}
