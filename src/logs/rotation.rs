//! Owns detecting log lines Docker rotated away before natsmon read them. When natsmon
//! resumes a container from a position, the oldest record Docker still has tells: if it
//! is newer than the position, the lines in between went with a rotated file (json-file
//! `max-size`/`max-file`) while natsmon was down or not reading, and cannot be shipped.
//! The gap is counted and told once per resume; shipping goes on from the oldest line.

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures::StreamExt;

use super::checkpoint::Position;
use crate::time::rfc3339_to_unix_nanos;

/// Lines lost between a resume position and the oldest record Docker still has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The position natsmon resumed from: the last line it had read.
    pub after_ns: i64,
    /// The oldest line Docker still has.
    pub oldest_ns: i64,
}

impl Gap {
    /// At most this long a span of the container's log is lost: lines may also have been
    /// written only right before the oldest one left.
    pub fn seconds(self) -> f64 {
        (self.oldest_ns - self.after_ns) as f64 / 1e9
    }
}

/// The gap between resuming after `resume` and Docker's oldest record at `oldest_ns`;
/// none when Docker still has the resume position's second or anything older.
pub fn gap(resume: Position, oldest_ns: Option<i64>) -> Option<Gap> {
    let oldest_ns = oldest_ns?;
    (oldest_ns > resume.ts_ns).then_some(Gap {
        after_ns: resume.ts_ns,
        oldest_ns,
    })
}

/// The timestamp of the oldest log record Docker has for container `id`, `None` for an
/// empty log. Reads one frame of a non-following request and drops the rest.
pub async fn oldest_record_ns(docker: &Docker, id: &str) -> Result<Option<i64>, String> {
    let opts = LogsOptions {
        follow: false,
        stdout: true,
        stderr: true,
        timestamps: true,
        ..Default::default()
    };
    let mut stream = docker.logs(id, Some(opts));
    let frame = match stream.next().await {
        None => return Ok(None),
        Some(Err(e)) => return Err(crate::redact::error_chain(&e)),
        Some(Ok(
            LogOutput::StdOut { message }
            | LogOutput::StdErr { message }
            | LogOutput::Console { message },
        )) => message,
        Some(Ok(LogOutput::StdIn { .. })) => return Ok(None),
    };
    Ok(record_ts(&frame))
}

/// The RFC 3339 timestamp prefix of a record (`<ts> <payload>`).
fn record_ts(record: &[u8]) -> Option<i64> {
    let sp = record.iter().position(|b| *b == b' ')?;
    std::str::from_utf8(&record[..sp])
        .ok()
        .and_then(rfc3339_to_unix_nanos)
}

/// Unix nanoseconds as RFC 3339, for the log line that tells the range.
pub fn rfc3339(ns: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns.max(0) as u64);
    humantime::format_rfc3339_nanos(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_only_when_the_oldest_line_is_newer_than_the_position() {
        let at = |ts_ns| Position { ts_ns, seq: 0 };
        assert_eq!(gap(at(100), None), None, "an empty log");
        assert_eq!(gap(at(100), Some(50)), None, "older lines still there");
        assert_eq!(gap(at(100), Some(100)), None, "the position itself");
        let g = gap(at(1_000_000_000), Some(3_500_000_000)).unwrap();
        assert_eq!((g.after_ns, g.oldest_ns), (1_000_000_000, 3_500_000_000));
        assert_eq!(g.seconds(), 2.5);
    }

    #[test]
    fn record_timestamps() {
        assert_eq!(
            record_ts(b"2024-01-02T15:04:05.000000001Z hello\n"),
            Some(1_704_207_845_000_000_001)
        );
        assert_eq!(record_ts(b"no timestamp"), None);
        assert_eq!(record_ts(b"garbage here"), None);
        assert_eq!(
            rfc3339(1_704_207_845_000_000_001),
            "2024-01-02T15:04:05.000000001Z"
        );
    }
}
