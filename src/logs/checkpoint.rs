//! Owns shipping positions. A container's position moves forward only after Loki has
//! acknowledged every entry up to it, and the positions file is replaced atomically
//! (write, fsync, rename, fsync the directory), so a crash leaves the old or the new
//! file, never a torn one. At startup the state directory must prove writable, and a
//! positions file that cannot be parsed is kept aside rather than stopping natsmon.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tracing::error;

use super::metrics::{LogMetrics, ReasonLabels};

/// The positions file inside the state directory.
pub const POSITIONS_FILE: &str = "positions.json";

/// A place in a container's log: Docker's nanosecond timestamp of a log record, and the
/// record's index among the records with that same timestamp. Docker's `since` works in
/// whole seconds and is inclusive; this resolves the rest exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    pub ts_ns: i64,
    pub seq: u32,
}

impl Position {
    /// The `since` to ask Docker for: the whole second containing the position.
    pub fn since_secs(self) -> i64 {
        self.ts_ns.div_euclid(1_000_000_000)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Startup only: the directory is missing and cannot be created, or refuses writes.
    #[error("cannot use the state directory {path}: {error}")]
    StateDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot write checkpoints to {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot read checkpoints from {path}: {error}")]
    Read { path: PathBuf, error: String },
}

impl CheckpointError {
    pub fn reason(&self) -> &'static str {
        match self {
            CheckpointError::StateDir { .. } => "state_dir",
            CheckpointError::Write { .. } => "write",
            CheckpointError::Read { .. } => "read",
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    /// When natsmon last knew it was shipping, Unix nanoseconds: containers that start or
    /// stop after this while natsmon is down are read on the next start.
    #[serde(default)]
    last_seen_ns: i64,
    containers: BTreeMap<String, Position>,
}

#[derive(Debug, Default)]
struct Inner {
    containers: BTreeMap<String, Position>,
    last_seen_ns: i64,
    dirty: bool,
}

/// Acknowledged positions by container id.
#[derive(Debug)]
pub struct Checkpoints {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// `last_seen_ns` as the previous run left it; `None` on a first start.
    previous_run_ns: Option<i64>,
}

impl Checkpoints {
    /// Loads `state_dir/positions.json` after proving the directory writable (creating it
    /// if needed): natsmon without checkpoints would re-send everything on every restart,
    /// so it must not start. A missing file is an empty start. A file that cannot be
    /// parsed is kept aside as `positions.json.corrupt-<unix secs>`, counted in
    /// `checkpoint_errors{reason="corrupt"}` and logged; shipping then starts without
    /// checkpoints. A file that cannot be read is an error.
    pub fn open(state_dir: &Path, metrics: &LogMetrics) -> Result<Checkpoints, CheckpointError> {
        probe_writable(state_dir).map_err(|error| CheckpointError::StateDir {
            path: state_dir.to_path_buf(),
            error,
        })?;
        let path = state_dir.join(POSITIONS_FILE);
        let (file, previous_run_ns) = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<File>(&bytes) {
                Ok(f) => {
                    let previous = Some(f.last_seen_ns).filter(|t| *t > 0);
                    (f, previous)
                }
                Err(e) => {
                    let written_ns = modified_ns(&path);
                    let aside = Self::set_aside(&path)?;
                    metrics
                        .checkpoint_errors
                        .get_or_create(&ReasonLabels { reason: "corrupt" })
                        .inc();
                    error!(
                        path = %path.display(),
                        kept_as = %aside.display(),
                        error = %e,
                        "Checkpoints file is corrupt; kept it aside and shipping without checkpoints. Containers are read again from their start: lines already shipped are sent again, and Loki drops those exact duplicates since natsmon keeps Docker's timestamps."
                    );
                    // The file was rewritten at every heartbeat, so its last write is about
                    // when the previous run last watched: containers that started or
                    // stopped after it are read too.
                    (File::default(), written_ns)
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (File::default(), None),
            Err(e) => {
                return Err(CheckpointError::Read {
                    path,
                    error: e.to_string(),
                });
            }
        };
        let inner = Inner {
            containers: file.containers,
            last_seen_ns: file.last_seen_ns,
            dirty: false,
        };
        Ok(Checkpoints {
            path,
            inner: Mutex::new(inner),
            previous_run_ns,
        })
    }

    /// Renames a corrupt positions file to `positions.json.corrupt-<unix secs>`, where it
    /// stays for a person to look at and no save overwrites it.
    fn set_aside(path: &Path) -> Result<PathBuf, CheckpointError> {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".corrupt-{}", crate::time::unix_now_secs()));
        let aside = PathBuf::from(name);
        std::fs::rename(path, &aside)
            .and_then(|()| sync_dir(path))
            .map_err(|error| CheckpointError::Write {
                path: aside.clone(),
                error,
            })?;
        Ok(aside)
    }

    /// `last_seen` as the previous run left it; `None` on a first start.
    pub fn previous_run_ns(&self) -> Option<i64> {
        self.previous_run_ns
    }

    /// Records that natsmon is alive and shipping at `now_ns`.
    pub fn touch(&self, now_ns: i64) {
        let mut g = self.inner.lock().expect("checkpoints poisoned");
        g.last_seen_ns = now_ns;
        g.dirty = true;
    }

    pub fn get(&self, container: &str) -> Option<Position> {
        self.inner
            .lock()
            .expect("checkpoints poisoned")
            .containers
            .get(container)
            .copied()
    }

    /// Records an acknowledged position; never moves a container backwards.
    pub fn advance(&self, container: &str, pos: Position) {
        let mut g = self.inner.lock().expect("checkpoints poisoned");
        let cur = g.containers.entry(container.to_string()).or_default();
        if pos > *cur {
            *cur = pos;
            g.dirty = true;
        }
    }

    /// Drops containers that no longer exist, so the file does not grow forever.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut g = self.inner.lock().expect("checkpoints poisoned");
        let before = g.containers.len();
        g.containers.retain(|k, _| keep(k));
        if g.containers.len() != before {
            g.dirty = true;
        }
    }

    /// Drops a destroyed container whose last line Loki has acknowledged.
    pub fn forget(&self, container: &str) {
        let mut g = self.inner.lock().expect("checkpoints poisoned");
        if g.containers.remove(container).is_some() {
            g.dirty = true;
        }
    }

    /// Containers with a position.
    pub fn tracked(&self) -> usize {
        self.inner
            .lock()
            .expect("checkpoints poisoned")
            .containers
            .len()
    }

    /// Writes the file if anything changed since the last save.
    pub fn save(&self) -> Result<bool, CheckpointError> {
        let snapshot = {
            let mut g = self.inner.lock().expect("checkpoints poisoned");
            if !g.dirty {
                return Ok(false);
            }
            g.dirty = false;
            File {
                version: 1,
                last_seen_ns: g.last_seen_ns,
                containers: g.containers.clone(),
            }
        };
        let r = write_atomic(
            &self.path,
            &serde_json::to_vec_pretty(&snapshot).expect("serializing positions"),
        );
        if r.is_err() {
            // Keep it dirty so the next save tries again.
            self.inner.lock().expect("checkpoints poisoned").dirty = true;
        }
        r.map(|_| true).map_err(|error| CheckpointError::Write {
            path: self.path.clone(),
            error,
        })
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

/// Makes a rename of `path` durable: fsync of the directory holding it.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

/// Creates `dir` if needed and proves it takes a durable write the way a save does
/// (create, write, fsync, remove, fsync the directory). Checking permission bits would
/// not do: root ignores them, and a read-only mount refuses root too.
fn probe_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(".positions.json.probe");
    let written = std::fs::File::create(&probe).and_then(|mut f| {
        f.write_all(b"natsmon")?;
        f.sync_all()
    });
    // Removed even when the write failed half-way (a full disk), so no probe is left.
    let removed = std::fs::remove_file(&probe);
    written?;
    removed?;
    sync_dir(&probe)
}

/// When `path` was last modified, Unix nanoseconds; `None` when the file system cannot say.
fn modified_ns(path: &Path) -> Option<i64> {
    let t = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_nanos()).ok().filter(|t| *t > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> LogMetrics {
        LogMetrics::register(&mut prometheus_client::registry::Registry::default())
    }

    #[test]
    fn positions_persist_and_only_move_forward() {
        let dir = tempfile::tempdir().unwrap();
        let m = metrics();
        let c = Checkpoints::open(dir.path(), &m).unwrap();
        c.advance("a", Position { ts_ns: 10, seq: 1 });
        c.advance("a", Position { ts_ns: 10, seq: 0 });
        assert!(c.save().unwrap());
        assert!(!c.save().unwrap(), "nothing changed");
        let c2 = Checkpoints::open(dir.path(), &m).unwrap();
        assert_eq!(c2.get("a"), Some(Position { ts_ns: 10, seq: 1 }));
        c2.advance("b", Position { ts_ns: 1, seq: 0 });
        c2.forget("b");
        c2.forget("never");
        assert_eq!((c2.tracked(), c2.get("b")), (1, None), "forgotten");
        assert_eq!(c2.previous_run_ns(), None, "never touched");
        c2.touch(42);
        c2.save().unwrap();
        assert_eq!(
            Checkpoints::open(dir.path(), &m).unwrap().previous_run_ns(),
            Some(42)
        );
        assert_eq!(
            Position {
                ts_ns: 1_999_999_999,
                seq: 0
            }
            .since_secs(),
            1
        );
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [POSITIONS_FILE], "no probe or temp file left behind");
    }

    #[test]
    fn a_corrupt_file_is_kept_aside_counted_and_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(POSITIONS_FILE);
        std::fs::write(&path, b"{not json").unwrap();
        let m = metrics();
        let c = Checkpoints::open(dir.path(), &m).unwrap();
        assert_eq!(c.get("a"), None);
        assert!(
            c.previous_run_ns().is_some_and(|t| t > 0),
            "the corrupt file's last write stands in for the previous run"
        );
        let corrupt = ReasonLabels { reason: "corrupt" };
        assert_eq!(m.checkpoint_errors.get_or_create(&corrupt).get(), 1);
        assert!(!path.exists());
        let aside: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(aside.len(), 1);
        let name = aside[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.strip_prefix("positions.json.corrupt-")
                .is_some_and(|s| s.parse::<u64>().is_ok()),
            "{name}"
        );
        assert_eq!(std::fs::read(&aside[0]).unwrap(), b"{not json");
        // Saving writes a new file and leaves the corrupt one alone.
        c.advance("a", Position { ts_ns: 5, seq: 0 });
        c.save().unwrap();
        let again = Checkpoints::open(dir.path(), &m).unwrap();
        assert_eq!(again.get("a"), Some(Position { ts_ns: 5, seq: 0 }));
        assert_eq!(m.checkpoint_errors.get_or_create(&corrupt).get(), 1);
        assert_eq!(std::fs::read(&aside[0]).unwrap(), b"{not json");
    }

    #[test]
    fn a_state_dir_that_cannot_be_created_fails_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let under_a_file = file.join("state");
        let e = Checkpoints::open(&under_a_file, &metrics()).unwrap_err();
        assert!(matches!(e, CheckpointError::StateDir { .. }), "{e:?}");
        assert_eq!(e.reason(), "state_dir");
        let msg = e.to_string();
        assert!(msg.contains(&*under_a_file.to_string_lossy()), "{msg}");
        assert!(msg.contains("os error"), "{msg}");
    }

    #[test]
    fn an_unreadable_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: reading it fails, parsing never starts.
        std::fs::create_dir(dir.path().join(POSITIONS_FILE)).unwrap();
        assert!(matches!(
            Checkpoints::open(dir.path(), &metrics()),
            Err(CheckpointError::Read { .. })
        ));
    }
}
