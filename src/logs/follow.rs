//! Owns the follow-logs connection to Docker: one HTTP/1.1 request per stream, read in
//! slices of up to 64 KiB and taken apart in place (chunked transfer, then Docker's
//! multiplexed or raw framing), so that a busy container costs one read per slice
//! rather than a read, a decoded frame and a task hand-off per line.
//!
//! dockerd flushes every log record as its own HTTP chunk. Through a general client
//! (bollard on hyper) each of them became a read on the socket, a body frame sent
//! between two tasks and a decoded `LogOutput`; that was most of the shipper's CPU at
//! high rates. Everything else natsmon asks Docker (list, inspect, events, info) still
//! goes through bollard: those are few.

use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::assemble::StreamKind;

/// Bytes asked of the socket per read: a slice of records at high rates, one at low.
const READ_SIZE: usize = 64 * 1024;
/// The response head must fit in this.
const MAX_HEAD: usize = 64 * 1024;
/// Docker splits records at 16 KiB; a frame claiming far more is not Docker's.
const MAX_FRAME: usize = 1 << 20;
/// A TTY stream has no framing: a record ends at its newline. Without one for this
/// long, what is there is handed on as it is, so that memory stays bounded.
const MAX_RAW_RECORD: usize = 4 << 20;
/// Of an error answer, this much is read for its message.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Connecting and Docker's answer (not the stream after it) must come within this.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// Where Docker's Engine API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerAddr {
    Unix(PathBuf),
    /// `host:port`, without user information.
    Tcp(String),
}

impl DockerAddr {
    /// `unix:///path`, a bare path, `tcp://host:port` or `http://host:port`, as
    /// `--docker-host` takes them.
    pub fn parse(host: &str) -> DockerAddr {
        match host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            Some(rest) => {
                let authority = rest.split('/').next().unwrap_or(rest);
                let authority = authority.rsplit('@').next().unwrap_or(authority);
                // Docker's plain-HTTP port when none is given, as its own clients take it.
                if authority
                    .rsplit(']')
                    .next()
                    .is_some_and(|h| !h.contains(':'))
                {
                    DockerAddr::Tcp(format!("{authority}:2375"))
                } else {
                    DockerAddr::Tcp(authority.to_string())
                }
            }
            None => DockerAddr::Unix(host.strip_prefix("unix://").unwrap_or(host).into()),
        }
    }
}

/// Why a logs stream could not be opened or read on. Messages carry no address: the
/// caller says which Docker, redacted.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("cannot connect to Docker: {0}")]
    Connect(String),
    #[error("Docker answered HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("reading Docker's log stream failed: {0}")]
    Io(String),
    #[error("Docker's log stream is malformed: {0}")]
    Malformed(&'static str),
    #[error("Docker did not answer within {0:?}")]
    Timeout(Duration),
    /// Docker's own error inside the stream (a system-error frame), e.g. a log file it
    /// cannot read.
    #[error("Docker reported in the log stream: {0}")]
    Docker(String),
}

/// One record of the stream: Docker's timestamp, a space, and the text.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub kind: StreamKind,
    pub bytes: &'a [u8],
    /// From a TTY container's raw stream, where records are not framed.
    pub tty: bool,
}

trait Conn: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Conn for T {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    /// Chunked: reading a chunk's size line.
    Size,
    /// Chunked: this many bytes of the chunk are still to come.
    Data(usize),
    /// Chunked: the CRLF after a chunk's data.
    DataEnd,
    /// Chunked: after the last chunk, until an empty line.
    Trailer,
    /// `Content-Length`: this many bytes are still to come.
    Length(u64),
    /// Neither: the body runs until the connection closes.
    UntilClose,
    /// The body is complete.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Docker said `application/vnd.docker.raw-stream`: a TTY container.
    Raw,
    /// Anything else: each record is told by its first byte, as Docker's own clients do.
    /// Timestamps are on, so a raw record starts with a digit and a frame with 0 to 3.
    Sniff,
}

/// A container's logs, followed.
pub struct LogStream {
    io: Box<dyn Conn>,
    /// Bytes read and not yet taken out of the transfer coding.
    raw: Vec<u8>,
    raw_pos: usize,
    /// The body, not yet taken as records.
    body: Vec<u8>,
    body_pos: usize,
    /// How far past `body_pos` a raw record's newline has been looked for already.
    scanned: usize,
    transfer: Transfer,
    framing: Framing,
    /// The connection is closed.
    closed: bool,
}

impl LogStream {
    fn on(io: Box<dyn Conn>) -> LogStream {
        LogStream {
            io,
            raw: Vec::with_capacity(READ_SIZE),
            raw_pos: 0,
            body: Vec::with_capacity(READ_SIZE),
            body_pos: 0,
            scanned: 0,
            transfer: Transfer::UntilClose,
            framing: Framing::Sniff,
            closed: false,
        }
    }

    /// Nothing more will come: the body is complete or the connection closed.
    fn ended(&self) -> bool {
        self.closed || self.transfer == Transfer::Done
    }

    /// Asks Docker for container `id`'s logs from `since` (Unix seconds, 0 for all), both
    /// streams, with timestamps; `follow`: and then on as they are written.
    pub async fn open(
        addr: &DockerAddr,
        id: &str,
        since: i64,
        follow: bool,
    ) -> Result<LogStream, FollowError> {
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            return Err(FollowError::Malformed("container id"));
        }
        let target = format!(
            "/containers/{id}/logs?follow={}&stdout=1&stderr=1&timestamps=1&since={}",
            u8::from(follow),
            since.max(0)
        );
        tokio::time::timeout(ANSWER_TIMEOUT, Self::request(addr, &target))
            .await
            .map_err(|_| FollowError::Timeout(ANSWER_TIMEOUT))?
    }

    async fn request(addr: &DockerAddr, target: &str) -> Result<LogStream, FollowError> {
        let connect = |e: std::io::Error| FollowError::Connect(crate::redact::error_chain(&e));
        let io: Box<dyn Conn> = match addr {
            DockerAddr::Unix(path) => Box::new(
                tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect)?,
            ),
            DockerAddr::Tcp(authority) => {
                let s = tokio::net::TcpStream::connect(authority.as_str())
                    .await
                    .map_err(connect)?;
                let _ = s.set_nodelay(true);
                Box::new(s)
            }
        };
        let mut s = LogStream::on(io);
        let head = format!(
            "GET {target} HTTP/1.1\r\nHost: docker\r\nUser-Agent: natsmon\r\nConnection: close\r\n\r\n"
        );
        Pin::new(&mut s.io)
            .write_all(head.as_bytes())
            .await
            .map_err(io_error)?;
        let status = s.read_head().await?;
        if !(200..300).contains(&status) {
            let message = s.error_message().await;
            return Err(FollowError::Status { status, message });
        }
        // The first read may have brought records after the head.
        s.dechunk()?;
        Ok(s)
    }

    /// Reads the response head; sets the transfer coding and framing from it.
    async fn read_head(&mut self) -> Result<u16, FollowError> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.raw) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = resp.code.unwrap_or(0);
                    let header = |name: &str| {
                        resp.headers
                            .iter()
                            .filter(|h| h.name.eq_ignore_ascii_case(name))
                            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    self.transfer = if header("transfer-encoding").contains("chunked") {
                        Transfer::Size
                    } else if let Ok(n) = header("content-length").trim().parse::<u64>() {
                        if n == 0 {
                            Transfer::Done
                        } else {
                            Transfer::Length(n)
                        }
                    } else {
                        Transfer::UntilClose
                    };
                    if header("content-type").contains("raw-stream") {
                        self.framing = Framing::Raw;
                    }
                    self.raw_pos = n;
                    return Ok(status);
                }
                Ok(httparse::Status::Partial) if self.raw.len() < MAX_HEAD => {}
                Ok(httparse::Status::Partial) => {
                    return Err(FollowError::Malformed("answer head too long"));
                }
                Err(_) => return Err(FollowError::Malformed("answer head")),
            }
            if self.read_some().await? == 0 {
                return Err(FollowError::Io(
                    "Docker closed the connection before answering".into(),
                ));
            }
        }
    }

    /// The message of an error answer: Docker's JSON `message`, else the text.
    async fn error_message(&mut self) -> String {
        loop {
            if self.dechunk().is_err()
                || self.transfer == Transfer::Done
                || self.closed
                || self.body.len() >= MAX_ERROR_BODY
            {
                break;
            }
            if self.read_some().await.is_err() {
                break;
            }
        }
        let body = &self.body[..self.body.len().min(MAX_ERROR_BODY)];
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| {
                String::from_utf8_lossy(body)
                    .trim()
                    .chars()
                    .take(200)
                    .collect()
            })
    }

    async fn read_some(&mut self) -> Result<usize, FollowError> {
        compact(&mut self.raw, &mut self.raw_pos);
        self.raw.reserve(READ_SIZE);
        let n = self.io.read_buf(&mut self.raw).await.map_err(io_error)?;
        if n == 0 {
            self.closed = true;
        }
        Ok(n)
    }

    /// Waits for more of the stream. `Ok(false)`: the stream is over, and the records
    /// still held are the last. Cancel-safe: nothing is lost if it is dropped.
    pub async fn fill(&mut self) -> Result<bool, FollowError> {
        if self.ended() {
            return Ok(false);
        }
        compact(&mut self.body, &mut self.body_pos);
        self.read_some().await?;
        self.dechunk()?;
        if self.closed && !matches!(self.transfer, Transfer::UntilClose | Transfer::Done) {
            return Err(FollowError::Io(
                "Docker closed the connection mid-stream".into(),
            ));
        }
        Ok(!self.ended())
    }

    /// Moves what has been read from the transfer coding into the body.
    fn dechunk(&mut self) -> Result<(), FollowError> {
        loop {
            let avail = &self.raw[self.raw_pos..];
            match self.transfer {
                Transfer::Done => {
                    self.raw_pos = self.raw.len();
                    return Ok(());
                }
                Transfer::UntilClose => {
                    self.body.extend_from_slice(avail);
                    self.raw_pos = self.raw.len();
                    return Ok(());
                }
                Transfer::Length(left) => {
                    let n = avail.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    self.body.extend_from_slice(&avail[..n]);
                    self.raw_pos += n;
                    let left = left - n as u64;
                    self.transfer = if left == 0 {
                        Transfer::Done
                    } else {
                        Transfer::Length(left)
                    };
                    return Ok(());
                }
                Transfer::Data(left) => {
                    if avail.is_empty() {
                        return Ok(());
                    }
                    let n = avail.len().min(left);
                    self.body.extend_from_slice(&avail[..n]);
                    self.raw_pos += n;
                    self.transfer = if n == left {
                        Transfer::DataEnd
                    } else {
                        Transfer::Data(left - n)
                    };
                }
                Transfer::DataEnd => {
                    if avail.len() < 2 {
                        return Ok(());
                    }
                    if &avail[..2] != b"\r\n" {
                        return Err(FollowError::Malformed("chunk without CRLF"));
                    }
                    self.raw_pos += 2;
                    self.transfer = Transfer::Size;
                }
                Transfer::Size | Transfer::Trailer => {
                    let Some(nl) = avail.iter().position(|b| *b == b'\n') else {
                        if avail.len() > 4096 {
                            return Err(FollowError::Malformed("chunk size line too long"));
                        }
                        return Ok(());
                    };
                    let line = avail[..nl].strip_suffix(b"\r").unwrap_or(&avail[..nl]);
                    self.raw_pos += nl + 1;
                    if self.transfer == Transfer::Trailer {
                        if line.is_empty() {
                            self.transfer = Transfer::Done;
                        }
                        continue;
                    }
                    let hex = line.split(|b| *b == b';').next().unwrap_or(line);
                    let size = std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| usize::from_str_radix(h.trim(), 16).ok())
                        .ok_or(FollowError::Malformed("chunk size"))?;
                    self.transfer = if size == 0 {
                        Transfer::Trailer
                    } else {
                        Transfer::Data(size)
                    };
                }
            }
        }
    }

    /// The next whole record held, if any. Records of the stdin stream are passed over;
    /// Docker's own system-error frame is an error carrying its text.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, FollowError> {
        let over = self.ended();
        loop {
            let b = &self.body[self.body_pos..];
            if b.is_empty() {
                return Ok(None);
            }
            if self.framing == Framing::Sniff && b[0] <= 3 {
                if b.len() < 8 && over {
                    return Err(FollowError::Malformed("stream ended inside a frame"));
                }
                if b.len() < 8 {
                    return Ok(None);
                }
                let len = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
                if len > MAX_FRAME {
                    return Err(FollowError::Malformed("frame larger than 1 MiB"));
                }
                if b.len() < 8 + len && over {
                    return Err(FollowError::Malformed("stream ended inside a frame"));
                }
                if b.len() < 8 + len {
                    return Ok(None);
                }
                let start = self.body_pos + 8;
                self.body_pos = start + len;
                let kind = match b[0] {
                    1 => StreamKind::Stdout,
                    2 => StreamKind::Stderr,
                    3 => {
                        let text = String::from_utf8_lossy(&self.body[start..start + len]);
                        return Err(FollowError::Docker(text.trim().chars().take(300).collect()));
                    }
                    _ => continue,
                };
                return Ok(Some(Record {
                    kind,
                    bytes: &self.body[start..start + len],
                    tty: false,
                }));
            }
            let from = self.scanned.min(b.len());
            let len = match b[from..].iter().position(|c| *c == b'\n') {
                Some(nl) => from + nl + 1,
                None if over => b.len(),
                // Docker splits a long TTY line into records of 16 KiB, each with its own
                // timestamp and no newline between: cut before the last of them, so the
                // assembler sees whole records and rejoins them.
                None if b.len() >= MAX_RAW_RECORD => last_record_start(b).unwrap_or(b.len()),
                None => {
                    self.scanned = b.len();
                    return Ok(None);
                }
            };
            self.scanned = 0;
            let start = self.body_pos;
            self.body_pos += len;
            return Ok(Some(Record {
                kind: StreamKind::Stdout,
                bytes: &self.body[start..start + len],
                tty: true,
            }));
        }
    }
}

/// Drops the bytes before `pos`, which have been taken. An emptied buffer gives back the
/// room of one long record, which must not stay for the life of the stream.
fn compact(buf: &mut Vec<u8>, pos: &mut usize) {
    if *pos == buf.len() {
        buf.clear();
        buf.shrink_to(4 * READ_SIZE);
    } else if *pos > 0 {
        buf.drain(..*pos);
    }
    *pos = 0;
}

/// An I/O error of the stream, with its causes (no address is in them).
fn io_error(e: std::io::Error) -> FollowError {
    FollowError::Io(crate::redact::error_chain(&e))
}

/// Where the last record of an unbroken run of raw records starts: a timestamp
/// (`2026-12-03T...`) right after a record's end, never at 0.
fn last_record_start(b: &[u8]) -> Option<usize> {
    let looks = |t: &[u8]| {
        t.len() >= 11
            && t[..4].iter().all(u8::is_ascii_digit)
            && t[4] == b'-'
            && t[5..7].iter().all(u8::is_ascii_digit)
            && t[7] == b'-'
            && t[8..10].iter().all(u8::is_ascii_digit)
            && t[10] == b'T'
    };
    (1..b.len()).rev().find(|&i| looks(&b[i..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream over `answer`, as if Docker had sent it, read in `slice`-byte pieces.
    async fn records(
        answer: Vec<u8>,
        slice: usize,
    ) -> (Vec<(StreamKind, String, bool)>, Result<(), String>) {
        let (mut server, client) = tokio::io::duplex(slice);
        tokio::spawn(async move {
            for piece in answer.chunks(slice) {
                if server.write_all(piece).await.is_err() {
                    return;
                }
            }
        });
        let mut s = LogStream::on(Box::new(client));
        let status = match s.read_head().await {
            Ok(st) => st,
            Err(e) => return (vec![], Err(e.to_string())),
        };
        if status != 200 {
            return (
                vec![],
                Err(format!("{status}: {}", s.error_message().await)),
            );
        }
        let mut out = vec![];
        let mut more = true;
        loop {
            loop {
                match s.next_record() {
                    Ok(Some(r)) => {
                        out.push((r.kind, String::from_utf8_lossy(r.bytes).into_owned(), r.tty))
                    }
                    Ok(None) => break,
                    Err(e) => return (out, Err(e.to_string())),
                }
            }
            if !more {
                return (out, Ok(()));
            }
            match s.fill().await {
                Ok(m) => more = m,
                Err(e) => return (out, Err(e.to_string())),
            }
        }
    }

    fn frame(kind: u8, text: &str) -> Vec<u8> {
        let mut f = vec![kind, 0, 0, 0];
        f.extend_from_slice(&(text.len() as u32).to_be_bytes());
        f.extend_from_slice(text.as_bytes());
        f
    }

    fn chunked(head: &str, chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut out =
            format!("HTTP/1.1 200 OK\r\n{head}Transfer-Encoding: chunked\r\n\r\n").into_bytes();
        for c in chunks {
            out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    const A: &str = "2026-12-03T10:00:00.000000001Z [INF] one\n";
    const B: &str = "2026-12-03T10:00:00.000000002Z [ERR] two\n";

    #[tokio::test]
    async fn multiplexed_frames_come_out_whole_however_the_bytes_are_cut() {
        // dockerd's habit: one chunk per frame; and frames cut across chunks.
        let mut joined = frame(1, A);
        joined.extend(frame(2, B));
        joined.extend(frame(0, "stdin is passed over\n"));
        let (a, b) = joined.split_at(13);
        for answer in [
            chunked(
                "Content-Type: application/vnd.docker.multiplexed-stream\r\n",
                &[frame(1, A), frame(2, B), frame(0, "x\n")],
            ),
            chunked("", &[a.to_vec(), b.to_vec()]),
        ] {
            for slice in [1, 3, 7, 64, 65536] {
                let (got, end) = records(answer.clone(), slice).await;
                assert_eq!(end, Ok(()), "slice {slice}");
                assert_eq!(
                    got,
                    vec![
                        (StreamKind::Stdout, A.into(), false),
                        (StreamKind::Stderr, B.into(), false)
                    ],
                    "slice {slice}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_tty_stream_is_cut_at_newlines_and_its_last_bytes_kept_at_the_end() {
        let text = format!("{A}{B}2026-12-03T10:00:00.000000003Z no newline");
        let answer = chunked(
            "Content-Type: application/vnd.docker.raw-stream\r\n",
            &[
                text.as_bytes()[..20].to_vec(),
                text.as_bytes()[20..].to_vec(),
            ],
        );
        for slice in [1, 5, 65536] {
            let (got, end) = records(answer.clone(), slice).await;
            assert_eq!(end, Ok(()));
            assert_eq!(
                got,
                vec![
                    (StreamKind::Stdout, A.into(), true),
                    (StreamKind::Stdout, B.into(), true),
                    (
                        StreamKind::Stdout,
                        "2026-12-03T10:00:00.000000003Z no newline".into(),
                        true
                    ),
                ]
            );
        }
        // Without a content type (older daemons), a record starting with a digit is raw.
        let (got, _) = records(chunked("", &[A.as_bytes().to_vec()]), 64).await;
        assert_eq!(got, vec![(StreamKind::Stdout, A.into(), true)]);
    }

    #[tokio::test]
    async fn a_stream_cut_mid_chunk_is_an_error_after_the_whole_records() {
        let mut answer = chunked("", &[frame(1, A)]);
        answer.truncate(answer.len() - 5); // the last chunk's end and the final chunk
        answer.extend_from_slice(b"40\r\n\x01\x00\x00\x00");
        let (got, end) = records(answer, 64).await;
        assert_eq!(got, vec![(StreamKind::Stdout, A.into(), false)]);
        assert_eq!(
            end,
            Err(
                "reading Docker's log stream failed: Docker closed the connection mid-stream"
                    .into()
            )
        );
    }

    #[tokio::test]
    async fn garbage_is_refused_not_buffered() {
        let mut huge = vec![1u8, 0, 0, 0];
        huge.extend_from_slice(&(64u32 << 20).to_be_bytes());
        let (_, end) = records(chunked("", &[huge]), 64).await;
        assert_eq!(
            end,
            Err("Docker's log stream is malformed: frame larger than 1 MiB".into())
        );
        let (_, end) = records(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            64,
        )
        .await;
        assert_eq!(
            end,
            Err("Docker's log stream is malformed: chunk size".into())
        );
        let (_, end) = records(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec(), 64).await;
        assert_eq!(
            end,
            Err("Docker's log stream is malformed: answer head".into())
        );
    }

    #[tokio::test]
    async fn dockers_own_error_frame_ends_the_stream_with_its_text() {
        let answer = chunked(
            "",
            &[
                frame(1, A),
                frame(3, "Error grabbing logs: unexpected EOF\n"),
            ],
        );
        let (got, end) = records(answer, 64).await;
        assert_eq!(got, vec![(StreamKind::Stdout, A.into(), false)]);
        assert_eq!(
            end,
            Err("Docker reported in the log stream: Error grabbing logs: unexpected EOF".into())
        );
    }

    #[tokio::test]
    async fn a_tty_line_without_newline_is_cut_only_between_dockers_records() {
        // A TTY line of 5 MiB arrives as Docker's 16 KiB records, each with a timestamp
        // and none ending in a newline but the last.
        let piece = |i: usize| format!("2026-12-03T10:00:00.{i:09}Z {}", "x".repeat(16 * 1024));
        let n = 5 * 1024 / 16;
        let mut text: String = (0..n).map(piece).collect();
        text.push('\n');
        let answer = chunked(
            "Content-Type: application/vnd.docker.raw-stream\r\n",
            &[text.clone().into_bytes()],
        );
        let (got, end) = records(answer, 65536).await;
        assert_eq!(end, Ok(()));
        assert!(
            got.len() >= 2,
            "the line was cut into {} records",
            got.len()
        );
        for (_, r, _) in &got {
            assert!(
                r.starts_with("2026-12-03T10:00:00."),
                "a cut inside a record: {}",
                &r[..40]
            );
        }
        assert_eq!(
            got.iter().map(|(_, r, _)| r.as_str()).collect::<String>(),
            text
        );
    }

    #[tokio::test]
    async fn an_error_answer_carries_dockers_message() {
        let body = r#"{"message":"No such container: abc"}"#;
        let answer = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (_, end) = records(answer.into_bytes(), 7).await;
        assert_eq!(end, Err("404: No such container: abc".into()));
    }

    #[test]
    fn addresses_are_read_as_the_docker_host_option_takes_them() {
        assert_eq!(
            DockerAddr::parse("unix:///var/run/docker.sock"),
            DockerAddr::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            DockerAddr::parse("/tmp/d.sock"),
            DockerAddr::Unix("/tmp/d.sock".into())
        );
        assert_eq!(
            DockerAddr::parse("tcp://10.0.0.1:2375"),
            DockerAddr::Tcp("10.0.0.1:2375".into())
        );
        assert_eq!(
            DockerAddr::parse("http://u:secret@h:2375/x"),
            DockerAddr::Tcp("h:2375".into())
        );
    }
}
