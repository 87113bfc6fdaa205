//! Owns turning Docker's log records into log entries: the RFC3339Nano timestamp prefix,
//! rejoining lines Docker split at 16 KiB (up to a maximum line size, counting
//! truncations), TTY streams, and skipping exactly the records at or before a resume
//! position even when several share a timestamp.

use super::checkpoint::Position;
use crate::time::rfc3339_to_unix_nanos;

/// Docker's split size for long lines.
pub const DOCKER_SPLIT: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamKind {
    Stdout,
    Stderr,
}

impl StreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }
}

/// A whole log line ready to ship.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub stream: StreamKind,
    /// Docker's timestamp of the line's first record.
    pub ts_ns: i64,
    pub text: String,
    /// The position of the record that completed the line; acknowledging the line makes
    /// this the container's checkpoint.
    pub pos: Position,
    pub truncated: bool,
    /// Raw bytes read for this line, prefixes excluded.
    pub bytes: usize,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AssembleError {
    #[error("log record without a valid timestamp prefix")]
    NoTimestamp,
}

#[derive(Debug, Default)]
struct Partial {
    ts_ns: i64,
    buf: Vec<u8>,
    truncated: bool,
    bytes: usize,
}

#[derive(Debug)]
pub struct Assembler {
    resume: Option<Position>,
    max_line: usize,
    cur_ts: i64,
    cur_seq: u32,
    /// The position of the last record read, skipped or not.
    pub last_read: Option<Position>,
    partial: [Option<Partial>; 2],
}

impl Assembler {
    pub fn new(resume: Option<Position>, max_line: usize) -> Assembler {
        Assembler {
            resume,
            max_line,
            cur_ts: i64::MIN,
            cur_seq: 0,
            last_read: None,
            partial: [None, None],
        }
    }

    /// Where the next stream should start: after the last record read, else after the
    /// position this assembler was created with.
    pub fn resume_point(&self) -> Option<Position> {
        self.last_read.or(self.resume)
    }

    /// Prepares for a new stream of the same container that Docker starts again at the
    /// second of `resume_point`. Records up to it are skipped again, and positions are
    /// counted afresh; a line Docker split at 16 KiB that was cut in the middle keeps
    /// what was read of it and goes on with the rest.
    pub fn rearm(&mut self) {
        self.resume = self.resume_point();
        self.cur_ts = i64::MIN;
        self.cur_seq = 0;
    }

    /// Feeds one Docker log record (`<RFC3339Nano> <payload>`, the payload ending in `\n`
    /// unless Docker split the line). Returns the completed line, if any.
    pub fn push(
        &mut self,
        stream: StreamKind,
        record: &[u8],
    ) -> Result<Option<Line>, AssembleError> {
        let sp = record
            .iter()
            .position(|b| *b == b' ')
            .ok_or(AssembleError::NoTimestamp)?;
        let ts = std::str::from_utf8(&record[..sp])
            .ok()
            .and_then(rfc3339_to_unix_nanos)
            .ok_or(AssembleError::NoTimestamp)?;
        let payload = &record[sp + 1..];
        if ts == self.cur_ts {
            self.cur_seq += 1;
        } else {
            self.cur_ts = ts;
            self.cur_seq = 0;
        }
        let pos = Position {
            ts_ns: ts,
            seq: self.cur_seq,
        };
        self.last_read = Some(pos);
        if self.resume.is_some_and(|r| pos <= r) {
            return Ok(None);
        }
        let (body, complete) = match payload.strip_suffix(b"\n") {
            Some(b) => (b.strip_suffix(b"\r").unwrap_or(b), true),
            None => (payload, false),
        };
        let slot = &mut self.partial[stream as usize];
        let p = slot.get_or_insert_with(|| Partial {
            ts_ns: ts,
            ..Default::default()
        });
        p.bytes += payload.len();
        let room = self.max_line.saturating_sub(p.buf.len());
        if body.len() > room {
            p.buf.extend_from_slice(&body[..room]);
            p.truncated = true;
        } else {
            p.buf.extend_from_slice(body);
        }
        if !complete {
            return Ok(None);
        }
        let p = slot.take().expect("partial just inserted");
        Ok(Some(Line {
            stream,
            ts_ns: p.ts_ns,
            text: String::from_utf8(p.buf)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            pos,
            truncated: p.truncated,
            bytes: p.bytes,
        }))
    }

    /// Splits a TTY (raw stream) item into records. Docker's raw stream has no framing,
    /// so a record Docker split at 16 KiB runs straight into the next record's timestamp.
    pub fn split_tty(item: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut rest = item;
        loop {
            let Some(sp) = rest.iter().position(|b| *b == b' ') else {
                out.push(rest);
                break;
            };
            let cut = sp + 1 + DOCKER_SPLIT;
            if rest.len() > cut
                && !rest[..cut].contains(&b'\n')
                && looks_like_timestamp(&rest[cut..])
            {
                out.push(&rest[..cut]);
                rest = &rest[cut..];
            } else {
                out.push(rest);
                break;
            }
        }
        out
    }
}

fn looks_like_timestamp(b: &[u8]) -> bool {
    let sp = b.iter().take(40).position(|c| *c == b' ');
    sp.and_then(|sp| std::str::from_utf8(&b[..sp]).ok())
        .and_then(rfc3339_to_unix_nanos)
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_line_cut_mid_way_goes_on_after_a_rearm() {
        let mut a = Assembler::new(None, 1 << 20);
        let t = "2024-01-02T15:04:05.000000001Z";
        let u = "2024-01-02T15:04:05.000000002Z";
        let w = "2024-01-02T15:04:05.000000003Z";
        assert_eq!(
            a.push(StreamKind::Stdout, format!("{t} first ").as_bytes()),
            Ok(None)
        );
        assert_eq!(
            a.push(StreamKind::Stdout, format!("{u} half").as_bytes()),
            Ok(None)
        );
        // The stream breaks here; the next one starts again at the second.
        a.rearm();
        assert_eq!(
            a.push(StreamKind::Stdout, format!("{t} first ").as_bytes()),
            Ok(None)
        );
        assert_eq!(
            a.push(StreamKind::Stdout, format!("{u} half").as_bytes()),
            Ok(None)
        );
        let line = a
            .push(StreamKind::Stdout, format!("{w} end\n").as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(line.text, "first halfend");
        assert_eq!(line.ts_ns, 1_704_207_845_000_000_001);
    }

    fn rec(ts: &str, payload: &str) -> Vec<u8> {
        format!("{ts} {payload}").into_bytes()
    }

    const T1: &str = "2024-01-02T15:04:05.000000001Z";
    const T2: &str = "2024-01-02T15:04:05.000000002Z";

    #[test]
    fn lines_and_positions() {
        let mut a = Assembler::new(None, 1024);
        let l = a
            .push(StreamKind::Stdout, &rec(T1, "hello\n"))
            .unwrap()
            .unwrap();
        assert_eq!(l.text, "hello");
        assert_eq!(
            l.pos,
            Position {
                ts_ns: 1_704_207_845_000_000_001,
                seq: 0
            }
        );
        let l = a
            .push(StreamKind::Stderr, &rec(T1, "same ts\r\n"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (l.text.as_str(), l.pos.seq, l.stream),
            ("same ts", 1, StreamKind::Stderr)
        );
        assert_eq!(
            a.push(StreamKind::Stdout, b"garbage"),
            Err(AssembleError::NoTimestamp)
        );
    }

    #[test]
    fn resume_skips_exactly_through_the_position_even_with_shared_timestamps() {
        let records = [(T1, "a\n"), (T1, "b\n"), (T1, "c\n"), (T2, "d\n")];
        let mut first = Assembler::new(None, 1024);
        let all: Vec<Line> = records
            .iter()
            .filter_map(|(t, p)| first.push(StreamKind::Stdout, &rec(t, p)).unwrap())
            .collect();
        // Acknowledged through "b"; a restart reads the whole second again.
        let mut again = Assembler::new(Some(all[1].pos), 1024);
        let rest: Vec<String> = records
            .iter()
            .filter_map(|(t, p)| again.push(StreamKind::Stdout, &rec(t, p)).unwrap())
            .map(|l| l.text)
            .collect();
        assert_eq!(rest, ["c", "d"]);
    }

    #[test]
    fn split_lines_rejoin_and_truncate() {
        let mut a = Assembler::new(None, 10);
        assert_eq!(a.push(StreamKind::Stdout, &rec(T1, "01234")).unwrap(), None);
        let l = a
            .push(StreamKind::Stdout, &rec(T2, "56789abc\n"))
            .unwrap()
            .unwrap();
        assert_eq!(l.text, "0123456789");
        assert!(l.truncated);
        assert_eq!(
            l.ts_ns, 1_704_207_845_000_000_001,
            "a rejoined line keeps its first timestamp"
        );
        assert_eq!(
            l.pos.ts_ns, 1_704_207_845_000_000_002,
            "and is acknowledged at its last record"
        );
        let mut b = Assembler::new(None, 100);
        assert_eq!(b.push(StreamKind::Stdout, &rec(T1, "x")).unwrap(), None);
        assert_eq!(
            b.push(StreamKind::Stderr, &rec(T1, "err\n"))
                .unwrap()
                .unwrap()
                .text,
            "err",
            "streams do not mix"
        );
        assert_eq!(
            b.push(StreamKind::Stdout, &rec(T2, "y\n"))
                .unwrap()
                .unwrap()
                .text,
            "xy"
        );
    }

    #[test]
    fn tty_items_split_at_embedded_timestamps() {
        let long = "a".repeat(DOCKER_SPLIT);
        let item = format!("{T1} {long}{T2} tail\r\n");
        let parts = Assembler::split_tty(item.as_bytes());
        assert_eq!(parts.len(), 2);
        let mut a = Assembler::new(None, 1 << 20);
        assert_eq!(a.push(StreamKind::Stdout, parts[0]).unwrap(), None);
        let l = a.push(StreamKind::Stdout, parts[1]).unwrap().unwrap();
        assert_eq!(l.text.len(), DOCKER_SPLIT + 4);
        assert!(l.text.ends_with("tail"));
    }
}
