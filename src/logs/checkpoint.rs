//! Owns shipping positions. A container's position moves forward only after Loki has
//! acknowledged every entry up to it, and the positions file is replaced atomically
//! (write, fsync, rename, fsync the directory), so a crash leaves the old or the new
//! file, never a torn one.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

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
    /// Loads `state_dir/positions.json`, creating the directory if needed. A missing file
    /// is an empty start; an unreadable one is an error rather than a silent re-send.
    pub fn open(state_dir: &Path) -> Result<Checkpoints, CheckpointError> {
        std::fs::create_dir_all(state_dir).map_err(|error| CheckpointError::Write {
            path: state_dir.to_path_buf(),
            error,
        })?;
        let path = state_dir.join("positions.json");
        let file =
            match std::fs::read(&path) {
                Ok(bytes) => Some(serde_json::from_slice::<File>(&bytes).map_err(|e| {
                    CheckpointError::Read {
                        path: path.clone(),
                        error: e.to_string(),
                    }
                })?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(CheckpointError::Read {
                        path,
                        error: e.to_string(),
                    });
                }
            };
        let previous_run_ns = file.as_ref().map(|f| f.last_seen_ns).filter(|t| *t > 0);
        let f = file.unwrap_or_default();
        let inner = Inner {
            containers: f.containers,
            last_seen_ns: f.last_seen_ns,
            dirty: false,
        };
        Ok(Checkpoints {
            path,
            inner: Mutex::new(inner),
            previous_run_ns,
        })
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
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_persist_and_only_move_forward() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::open(dir.path()).unwrap();
        c.advance("a", Position { ts_ns: 10, seq: 1 });
        c.advance("a", Position { ts_ns: 10, seq: 0 });
        assert!(c.save().unwrap());
        assert!(!c.save().unwrap(), "nothing changed");
        let c2 = Checkpoints::open(dir.path()).unwrap();
        assert_eq!(c2.get("a"), Some(Position { ts_ns: 10, seq: 1 }));
        assert_eq!(c2.previous_run_ns(), None, "never touched");
        c2.touch(42);
        c2.save().unwrap();
        assert_eq!(
            Checkpoints::open(dir.path()).unwrap().previous_run_ns(),
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
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("positions.json"), b"{not json").unwrap();
        assert!(matches!(
            Checkpoints::open(dir.path()),
            Err(CheckpointError::Read { .. })
        ));
    }
}
