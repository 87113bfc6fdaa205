//! A Grafana Loki push RECEIVER for tests.
//!
//! It implements `POST /loki/api/v1/push` exactly as Loki decodes it
//! (`pkg/loghttp/push/push.go`, `pkg/push/push.proto`):
//!
//! * `Content-Type: application/x-protobuf` (or no Content-Type at all, which
//!   Loki also treats as protobuf): body is a snappy BLOCK-compressed
//!   `logproto.PushRequest`.
//! * `Content-Type: application/json`: `{"streams":[{"stream":{..},"values":
//!   [["<ns as string>","line"(,{structured metadata})]]}]}`.
//! * Any other Content-Type, or a Content-Encoding other than none/`snappy`,
//!   is answered with 415 (real Loki would answer 400 for an unknown
//!   encoding and would try protobuf for an unknown type; 415 makes a wrong
//!   header obvious in tests).
//!
//! Success is `204 No Content`. Decoding is strict: invalid snappy, invalid
//! protobuf, invalid JSON, invalid/empty stream label strings, entries
//! without a timestamp, ... are answered with 400 and recorded in
//! [`LokiReceiver::decode_errors`], so a test can assert there were none.
//!
//! The server is a small hand-written HTTP/1.1 server (Content-Length and
//! chunked request bodies, keep-alive, pipelining, `Expect: 100-continue`)
//! on a raw tokio `TcpListener`, running on its OWN runtime in a background
//! thread. That gives full control for [`Mode::DropConnection`] and keeps the
//! receiver serving even while a test blocks its own runtime.
//!
//! Faults are injected with [`LokiReceiver::set_mode`],
//! [`LokiReceiver::set_mode_for`] and [`LokiReceiver::set_mode_until`]; they
//! may be changed at any time while the receiver runs. The mode is chosen once
//! per push request, when its body has been read completely.
//!
//! Only requests to the push path are recorded in
//! [`LokiReceiver::requests`]; `GET /ready` (answered `200 ready`) and other
//! paths are not.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Path Loki serves pushes on.
pub const PUSH_PATH: &str = "/loki/api/v1/push";
/// `/ready` path.
pub const READY_PATH: &str = "/ready";

const MAX_HEADER_BYTES: usize = 64 * 1024;
const HARD_MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Wire types (hand-written prost messages, mirroring pkg/push/push.proto)
// ---------------------------------------------------------------------------

/// `logproto` messages as in Loki's `pkg/push/push.proto`.
pub mod proto {
    /// `message PushRequest { repeated StreamAdapter streams = 1; string format = 2; }`
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PushRequest {
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
        /// Set by Loki internally ("loki"/"otlp"); clients leave it empty.
        #[prost(string, tag = "2")]
        pub format: String,
    }

    /// `message StreamAdapter { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }`
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamAdapter {
        #[prost(string, tag = "1")]
        pub labels: String,
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
        #[prost(uint64, tag = "3")]
        pub hash: u64,
    }

    /// `message EntryAdapter { Timestamp timestamp = 1; string line = 2;
    /// repeated LabelPairAdapter structuredMetadata = 3; repeated LabelPairAdapter parsed = 4; }`
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EntryAdapter {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        #[prost(string, tag = "2")]
        pub line: String,
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
        /// Query-path only; clients must not send it (ignored here).
        #[prost(message, repeated, tag = "4")]
        pub parsed: Vec<LabelPairAdapter>,
    }

    /// `message LabelPairAdapter { string name = 1; string value = 2; }`
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPairAdapter {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `google.protobuf.Timestamp { int64 seconds = 1; int32 nanos = 2; }`
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

// ---------------------------------------------------------------------------
// Public data types
// ---------------------------------------------------------------------------

/// Wire format of a push request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

/// One accepted log entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// Stream labels (parsed from the protobuf label string / JSON `stream`).
    pub labels: BTreeMap<String, String>,
    /// Entry timestamp in Unix nanoseconds.
    pub ts_ns: i128,
    pub line: String,
    /// Structured metadata in wire order.
    pub structured_metadata: Vec<(String, String)>,
    /// `X-Scope-OrgID` header of the request.
    pub tenant: Option<String>,
    /// `Authorization` header of the request.
    pub authorization: Option<String>,
    pub format: Format,
    /// When the receiver decoded the request, Unix nanoseconds (for end-to-end latency).
    pub received_at_ns: i128,
}

impl Received {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
    pub fn metadata(&self, name: &str) -> Option<&str> {
        self.structured_metadata
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request to the push path (accepted, rejected, or dropped).
#[derive(Clone, Debug)]
pub struct RequestLog {
    /// HTTP status answered; `0` when the connection was dropped without a response.
    pub status: u16,
    /// Entries decoded from the body (0 if decoding failed).
    pub entries: usize,
    /// Entries stored by the receiver.
    pub accepted: usize,
    /// Body size in bytes as received (i.e. compressed size).
    pub bytes: usize,
    pub at: Instant,
    pub content_type: Option<String>,
    pub tenant: Option<String>,
    /// `Some` when the body could not be decoded (answered 400 or 415).
    pub decode_error: Option<String>,
    /// The mode that was applied to this request.
    pub mode: Mode,
    /// Whether the body arrived with `Transfer-Encoding: chunked`.
    pub chunked: bool,
}

/// Fault-injection mode.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// Decode, store, answer 204.
    Accept,
    /// Answer with this status (e.g. 500/502/503), store nothing.
    Status(u16),
    /// Answer 429 (with `Retry-After: <secs>` if given), store nothing.
    TooManyRequests { retry_after_secs: Option<u64> },
    /// Answer 400 with this plain-text body, store nothing.
    BadRequest(String),
    /// Sleep, then behave like `Accept` (entries are stored even if the client
    /// gave up meanwhile, as a real Loki would).
    Slow(Duration),
    /// Read the request, then close the TCP connection without any response.
    DropConnection,
    /// Answer 413, store nothing.
    PayloadTooLarge,
    /// Store entries whose line does NOT contain the string; if any entry
    /// does, answer 400 naming the rejected count (Loki's partial-failure
    /// behaviour), else 204.
    RejectLinesContaining(String),
    /// Loki with `allow_structured_metadata: false`: entries that carry structured
    /// metadata are refused with Loki's 400 message, the others in the request stored.
    RejectStructuredMetadata,
}

// ---------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------

enum Limit {
    Count(usize),
    Until(Instant),
}

struct State {
    base: Mode,
    temp: Option<(Mode, Limit)>,
    entries: Vec<Received>,
    requests: Vec<RequestLog>,
    max_body_bytes: Option<usize>,
    /// Count accepted entries without keeping them (benchmarks of millions of lines).
    count_only: bool,
    counted: usize,
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not poison the receiver for others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pick (and consume, for counted modes) the mode for one push request.
    fn take_mode(&self) -> Mode {
        let mut st = self.lock();
        let mut clear = false;
        let mut chosen = None;
        if let Some((mode, limit)) = st.temp.as_mut() {
            match limit {
                Limit::Count(n) => {
                    if *n > 0 {
                        *n -= 1;
                        chosen = Some(mode.clone());
                    }
                    if *n == 0 {
                        clear = true;
                    }
                }
                Limit::Until(deadline) => {
                    if Instant::now() < *deadline {
                        chosen = Some(mode.clone());
                    } else {
                        clear = true;
                    }
                }
            }
        }
        if clear {
            st.temp = None;
        }
        chosen.unwrap_or_else(|| st.base.clone())
    }
}

// ---------------------------------------------------------------------------
// LokiReceiver
// ---------------------------------------------------------------------------

/// In-process Loki push receiver. Shut down on `Drop` or [`LokiReceiver::stop`].
pub struct LokiReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Mutex<Option<ServerHandle>>,
}

struct ServerHandle {
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl fmt::Debug for LokiReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LokiReceiver")
            .field("addr", &self.addr)
            .finish()
    }
}

impl LokiReceiver {
    /// Start on `127.0.0.1:<ephemeral port>`.
    pub async fn start() -> Self {
        Self::start_blocking()
    }

    /// Same as [`LokiReceiver::start`], usable from non-async tests.
    pub fn start_blocking() -> Self {
        // Through free_port, so it never takes a port the tests gave a (killed) node.
        let addr = SocketAddr::from(([127, 0, 0, 1], crate::ports::free_port()));
        Self::start_on_blocking(addr).expect("start Loki receiver on a free port")
    }

    /// Start on a specific address (e.g. to come back on the same port after
    /// [`LokiReceiver::stop`] to simulate an outage with connection refused).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        Self::start_on_blocking(addr)
    }

    pub fn start_on_blocking(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                base: Mode::Accept,
                temp: None,
                entries: Vec::new(),
                requests: Vec::new(),
                max_body_bytes: None,
                count_only: false,
                counted: 0,
            }),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let shared2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("loki-receiver-{}", addr.port()))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => {
                            let _ = ready_tx.send(Ok(()));
                            l
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    tokio::select! {
                        _ = rx => {}
                        _ = accept_loop(listener, shared2) => {}
                    }
                });
                // Dropping the runtime cancels every connection task and
                // closes their sockets.
                rt.shutdown_timeout(Duration::from_secs(2));
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(std::io::Error::other("Loki receiver thread died"));
            }
        }
        Ok(LokiReceiver {
            addr,
            shared,
            server: Mutex::new(Some(ServerHandle {
                shutdown: tx,
                thread,
            })),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Full push URL, `<url>/loki/api/v1/push`.
    pub fn push_url(&self) -> String {
        format!("{}{}", self.url(), PUSH_PATH)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop serving: the listener is closed (new connections are refused) and
    /// open connections are closed. Recorded data stays readable. Idempotent.
    pub fn stop(&self) {
        let handle = self.server.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.shutdown.send(());
            let _ = h.thread.join();
        }
    }

    // ----- fault injection -------------------------------------------------

    /// Set the mode for all following requests (cancels any temporary mode).
    pub fn set_mode(&self, mode: Mode) {
        let mut st = self.shared.lock();
        st.base = mode;
        st.temp = None;
    }

    /// Apply `mode` to the next `n` push requests, then revert to `Accept`.
    pub fn set_mode_for(&self, mode: Mode, n: usize) {
        let mut st = self.shared.lock();
        st.base = Mode::Accept;
        st.temp = if n == 0 {
            None
        } else {
            Some((mode, Limit::Count(n)))
        };
    }

    /// Apply `mode` to push requests arriving within `d` from now, then revert
    /// to `Accept`.
    pub fn set_mode_until(&self, mode: Mode, d: Duration) {
        let mut st = self.shared.lock();
        st.base = Mode::Accept;
        st.temp = Some((mode, Limit::Until(Instant::now() + d)));
    }

    /// The mode the next request would get (without consuming it).
    pub fn mode(&self) -> Mode {
        let st = self.shared.lock();
        match &st.temp {
            Some((m, Limit::Count(n))) if *n > 0 => m.clone(),
            Some((m, Limit::Until(t))) if Instant::now() < *t => m.clone(),
            _ => st.base.clone(),
        }
    }

    /// Answer 413 for push bodies larger than `max` bytes (as received, i.e.
    /// compressed). `None` (default) disables the limit.
    pub fn set_max_body_bytes(&self, max: Option<usize>) {
        self.shared.lock().max_body_bytes = max;
    }

    // ----- captured data ---------------------------------------------------

    /// All accepted entries, in arrival order.
    pub fn entries(&self) -> Vec<Received> {
        self.shared.lock().entries.clone()
    }

    /// Lines of accepted entries whose stream has `label == value`.
    pub fn lines_for(&self, label: &str, value: &str) -> Vec<String> {
        self.shared
            .lock()
            .entries
            .iter()
            .filter(|e| e.labels.get(label).map(String::as_str) == Some(value))
            .map(|e| e.line.clone())
            .collect()
    }

    /// All accepted lines, in arrival order.
    pub fn lines(&self) -> Vec<String> {
        self.shared
            .lock()
            .entries
            .iter()
            .map(|e| e.line.clone())
            .collect()
    }

    /// Number of accepted entries.
    pub fn count(&self) -> usize {
        let st = self.shared.lock();
        st.entries.len() + st.counted
    }

    /// Counts accepted entries without keeping them, for benchmarks.
    pub fn set_count_only(&self, on: bool) {
        self.shared.lock().count_only = on;
    }

    /// Wait until at least `n` entries were accepted. Returns false on timeout.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.count() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Blocking variant of [`LokiReceiver::wait_for_count`].
    pub fn wait_for_count_blocking(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.count() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every request to the push path, including rejected and dropped ones.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.shared.lock().requests.clone()
    }

    /// Decode errors of all requests so far (empty when the client only sent
    /// well-formed pushes).
    pub fn decode_errors(&self) -> Vec<String> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter_map(|r| r.decode_error.clone())
            .collect()
    }

    /// Forget all entries and the request log (modes are kept).
    pub fn clear(&self) {
        let mut st = self.shared.lock();
        st.entries.clear();
        st.requests.clear();
    }
}

impl Drop for LokiReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------
// HTTP/1.1 server
// ---------------------------------------------------------------------------

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handle_conn(stream, shared.clone()));
            }
            Err(_) => {
                // e.g. EMFILE: back off briefly instead of spinning.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    keep_alive: bool,
    chunked: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Response {
    status: u16,
    body: String,
    extra_headers: Vec<(String, String)>,
}

impl Response {
    fn new(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            body: body.into(),
            extra_headers: Vec::new(),
        }
    }
}

enum Action {
    Respond(Response),
    Drop,
}

enum ReadError {
    /// Connection closed or I/O error: just drop it.
    Closed,
    /// Malformed request: answer with this status and close.
    Bad(u16, String),
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Read more bytes into the buffer; Ok(0) on EOF.
    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut tmp = [0u8; 16 * 1024];
        let n = self.stream.read(&mut tmp).await?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    async fn read_line(&mut self, limit: usize) -> Result<Vec<u8>, ReadError> {
        loop {
            if let Some(pos) = find(&self.buf, b"\r\n") {
                let line = self.buf[..pos].to_vec();
                self.buf.drain(..pos + 2);
                return Ok(line);
            }
            if self.buf.len() > limit {
                return Err(ReadError::Bad(400, "line too long".into()));
            }
            match self.fill().await {
                Ok(0) | Err(_) => return Err(ReadError::Closed),
                Ok(_) => {}
            }
        }
    }

    async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() < n {
            match self.fill().await {
                Ok(0) | Err(_) => return Err(ReadError::Closed),
                Ok(_) => {}
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Read one request. Ok(None) on a clean EOF before any byte of it.
    async fn read_request(&mut self) -> Result<Option<Request>, ReadError> {
        // Header section.
        let head_end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos;
            }
            if self.buf.len() > MAX_HEADER_BYTES {
                return Err(ReadError::Bad(431, "request header too large".into()));
            }
            match self.fill().await {
                Ok(0) | Err(_) => {
                    return if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                        Ok(None)
                    } else {
                        Err(ReadError::Closed)
                    };
                }
                Ok(_) => {}
            }
        };
        let head: Vec<u8> = self.buf.drain(..head_end + 4).collect();
        let head = String::from_utf8(head[..head_end].to_vec())
            .map_err(|_| ReadError::Bad(400, "non-UTF-8 request head".into()))?;
        // Tolerate stray CRLFs before the request line (RFC 9112 2.2).
        let head = head.trim_start_matches(['\r', '\n']);
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let mut parts = request_line.split(' ');
        let (method, target, version) =
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(m), Some(t), Some(v), None) if !m.is_empty() && !t.is_empty() => (m, t, v),
                _ => return Err(ReadError::Bad(400, "malformed request line".into())),
            };
        let http10 = match version {
            "HTTP/1.1" => false,
            "HTTP/1.0" => true,
            _ => return Err(ReadError::Bad(505, "HTTP version not supported".into())),
        };
        let mut headers = Vec::new();
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                return Err(ReadError::Bad(400, "malformed header line".into()));
            };
            if name.is_empty() || name.ends_with([' ', '\t']) {
                return Err(ReadError::Bad(400, "malformed header name".into()));
            }
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        let connection = get("connection").unwrap_or("").to_ascii_lowercase();
        let keep_alive = if http10 {
            connection.split(',').any(|t| t.trim() == "keep-alive")
        } else {
            !connection.split(',').any(|t| t.trim() == "close")
        };
        let chunked = get("transfer-encoding")
            .map(|te| {
                te.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("chunked"))
            })
            .unwrap_or(false);
        let content_length = match get("content-length") {
            Some(v) if !chunked => Some(
                v.parse::<usize>()
                    .map_err(|_| ReadError::Bad(400, "invalid Content-Length".into()))?,
            ),
            _ => None,
        };
        if content_length.is_some_and(|n| n > HARD_MAX_BODY_BYTES) {
            return Err(ReadError::Bad(413, "request body too large".into()));
        }
        let expects_body = chunked || content_length.is_some_and(|n| n > 0);
        if expects_body
            && get("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
            && self
                .stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
        {
            return Err(ReadError::Closed);
        }
        let method = method.to_string();
        let path = target.split('?').next().unwrap_or("").to_string();

        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let line = self.read_line(4096).await?;
                let line = String::from_utf8_lossy(&line);
                let size_str = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_str, 16)
                    .map_err(|_| ReadError::Bad(400, "invalid chunk size".into()))?;
                if size == 0 {
                    // Trailers until an empty line.
                    loop {
                        let t = self.read_line(MAX_HEADER_BYTES).await?;
                        if t.is_empty() {
                            break;
                        }
                    }
                    break;
                }
                if body.len() + size > HARD_MAX_BODY_BYTES {
                    return Err(ReadError::Bad(413, "request body too large".into()));
                }
                let data = self.read_exact(size + 2).await?;
                if &data[size..] != b"\r\n" {
                    return Err(ReadError::Bad(400, "chunk not terminated by CRLF".into()));
                }
                body.extend_from_slice(&data[..size]);
            }
            body
        } else {
            self.read_exact(content_length.unwrap_or(0)).await?
        };
        Ok(Some(Request {
            method,
            path,
            headers,
            body,
            keep_alive,
            chunked,
        }))
    }

    async fn write_response(&mut self, resp: &Response, close: bool) -> std::io::Result<()> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
        let no_body = resp.status == 204 || resp.status == 304 || (100..200).contains(&resp.status);
        if !no_body {
            out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
            out.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
        }
        for (k, v) in &resp.extra_headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        if !no_body {
            out.push_str(&resp.body);
        }
        self.stream.write_all(out.as_bytes()).await?;
        self.stream.flush().await
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

async fn handle_conn(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
    };
    loop {
        let req = match conn.read_request().await {
            Ok(Some(r)) => r,
            Ok(None) | Err(ReadError::Closed) => return,
            Err(ReadError::Bad(status, msg)) => {
                let _ = conn.write_response(&Response::new(status, msg), true).await;
                return;
            }
        };
        let keep_alive = req.keep_alive;
        match route(req, &shared).await {
            Action::Drop => return, // dropping `conn` closes the socket
            Action::Respond(resp) => {
                if conn.write_response(&resp, !keep_alive).await.is_err() || !keep_alive {
                    return;
                }
            }
        }
    }
}

async fn route(req: Request, shared: &Arc<Shared>) -> Action {
    match req.path.as_str() {
        READY_PATH => {
            if req.method == "GET" || req.method == "HEAD" {
                Action::Respond(Response::new(200, "ready"))
            } else {
                Action::Respond(Response::new(405, "method not allowed"))
            }
        }
        PUSH_PATH => handle_push(req, shared).await,
        _ => Action::Respond(Response::new(404, "404 page not found")),
    }
}

async fn handle_push(req: Request, shared: &Arc<Shared>) -> Action {
    let at = Instant::now();
    let tenant = req.header("x-scope-orgid").map(str::to_string);
    let authorization = req.header("authorization").map(str::to_string);
    let content_type = req.header("content-type").map(str::to_string);

    let mut log = RequestLog {
        status: 0,
        entries: 0,
        accepted: 0,
        bytes: req.body.len(),
        at,
        content_type: content_type.clone(),
        tenant: tenant.clone(),
        decode_error: None,
        mode: Mode::Accept,
        chunked: req.chunked,
    };

    if req.method != "POST" {
        log.status = 405;
        shared.lock().requests.push(log);
        return Action::Respond(Response::new(405, "method not allowed"));
    }

    let mode = shared.take_mode();
    log.mode = mode.clone();

    let received_at_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    let decoded = decode_push(&req);
    // Counting only (the benches): every body is still decoded and checked in full, but
    // nothing is kept, so that the receiver takes as little of the machine as it can.
    if mode == Mode::Accept
        && let Ok((_, entries)) = &decoded
    {
        let mut st = shared.lock();
        if st.count_only && st.max_body_bytes.is_none_or(|max| log.bytes <= max) {
            log.entries = entries.len();
            log.accepted = entries.len();
            log.status = 204;
            st.counted += entries.len();
            st.requests.push(log);
            return Action::Respond(Response::new(204, ""));
        }
    }
    let decoded = decoded.map(|(format, entries)| {
        entries
            .into_iter()
            .map(|(labels, ts_ns, line, structured_metadata)| Received {
                labels: Arc::unwrap_or_clone(labels),
                ts_ns,
                line,
                structured_metadata,
                tenant: tenant.clone(),
                authorization: authorization.clone(),
                format,
                received_at_ns,
            })
            .collect::<Vec<_>>()
    });
    match &decoded {
        Ok(entries) => log.entries = entries.len(),
        Err((_, msg)) => log.decode_error = Some(msg.clone()),
    }

    let finish = |mut log: RequestLog, resp: Response, store: Vec<Received>| {
        log.status = resp.status;
        log.accepted = store.len();
        let mut st = shared.lock();
        if st.count_only {
            st.counted += store.len();
        } else {
            st.entries.extend(store);
        }
        st.requests.push(log);
        Action::Respond(resp)
    };

    let reject_containing = match mode {
        Mode::DropConnection => {
            log.status = 0;
            shared.lock().requests.push(log);
            return Action::Drop;
        }
        Mode::Status(code) => {
            let resp = Response::new(code, format!("injected failure: status {code}"));
            return finish(log, resp, Vec::new());
        }
        Mode::TooManyRequests { retry_after_secs } => {
            let mut resp = Response::new(
                429,
                format!(
                    "Ingestion rate limit exceeded for user {} (limit: 4194304 bytes/sec) while \
                     attempting to ingest '{}' lines totaling '{}' bytes, reduce log volume or \
                     contact your Loki administrator to see if the limit can be increased",
                    tenant.as_deref().unwrap_or("fake"),
                    log.entries,
                    log.bytes
                ),
            );
            if let Some(s) = retry_after_secs {
                resp.extra_headers
                    .push(("Retry-After".into(), s.to_string()));
            }
            return finish(log, resp, Vec::new());
        }
        Mode::BadRequest(msg) => {
            return finish(log, Response::new(400, msg), Vec::new());
        }
        Mode::PayloadTooLarge => {
            let resp = Response::new(413, format!("request body too large: {} bytes", log.bytes));
            return finish(log, resp, Vec::new());
        }
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Mode::Accept => None,
        Mode::RejectLinesContaining(s) => Some(s),
        Mode::RejectStructuredMetadata => None,
    };
    let reject_metadata = log.mode == Mode::RejectStructuredMetadata;

    let max_body = shared.lock().max_body_bytes;
    if let Some(max) = max_body
        && log.bytes > max
    {
        let resp = Response::new(
            413,
            format!("request body too large: {} bytes, limit {max}", log.bytes),
        );
        return finish(log, resp, Vec::new());
    }

    let entries = match decoded {
        Ok(e) => e,
        Err((status, msg)) => return finish(log, Response::new(status, msg), Vec::new()),
    };

    if reject_metadata {
        let total = entries.len();
        let (bad, good): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .partition(|e| !e.structured_metadata.is_empty());
        if bad.is_empty() {
            return finish(log, Response::new(204, ""), good);
        }
        // Loki's DisallowedStructuredMetadataErrorMsg, one per refused stream, then the count.
        let msg = format!(
            "stream '{}' includes structured metadata, but this feature is disallowed. \
             Please see `limits_config.allow_structured_metadata` or contact your Loki \
             administrator to enable it., total ignored: {} out of {}",
            format_labels(&bad[0].labels),
            bad.len(),
            total
        );
        return finish(log, Response::new(400, msg), good);
    }
    match reject_containing {
        None => finish(log, Response::new(204, ""), entries),
        Some(needle) => {
            let total = entries.len();
            let (bad, good): (Vec<_>, Vec<_>) =
                entries.into_iter().partition(|e| e.line.contains(&needle));
            if bad.is_empty() {
                finish(log, Response::new(204, ""), good)
            } else {
                let first = &bad[0];
                let msg = format!(
                    "entry for stream '{}' has line containing {:?} (injected rejection), \
                     total ignored: {} out of {}",
                    format_labels(&first.labels),
                    needle,
                    bad.len(),
                    total
                );
                finish(log, Response::new(400, msg), good)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// A stream's labels are shared by its entries: a copy per entry made the receiver's
/// decoding cost more CPU than the shipper under test.
type DecodedEntry = (
    Arc<BTreeMap<String, String>>,
    i128,
    String,
    Vec<(String, String)>,
);

/// Decode a push body. Err((status, message)).
fn decode_push(req: &Request) -> Result<(Format, Vec<DecodedEntry>), (u16, String)> {
    let encoding = req.header("content-encoding").unwrap_or("").trim();
    if !(encoding.is_empty() || encoding.eq_ignore_ascii_case("snappy")) {
        return Err((
            415,
            format!("Content-Encoding {encoding:?} not supported by the test receiver"),
        ));
    }
    let media_type = req.header("content-type").map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    match media_type.as_deref() {
        None | Some("application/x-protobuf") => {
            decode_protobuf(&req.body).map(|e| (Format::Protobuf, e))
        }
        Some("application/json") => decode_json(&req.body).map(|e| (Format::Json, e)),
        Some(other) => Err((415, format!("unsupported Content-Type {other:?}"))),
    }
}

fn decode_protobuf(body: &[u8]) -> Result<Vec<DecodedEntry>, (u16, String)> {
    use prost::Message as _;
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| (400, format!("snappy block decode failed: {e}")))?;
    let req = proto::PushRequest::decode(raw.as_slice())
        .map_err(|e| (400, format!("protobuf decode of PushRequest failed: {e}")))?;
    let mut out = Vec::new();
    for (si, stream) in req.streams.into_iter().enumerate() {
        let labels = parse_labels(&stream.labels).map_err(|e| {
            (
                400,
                format!("stream {si}: invalid labels {:?}: {e}", stream.labels),
            )
        })?;
        if labels.is_empty() {
            return Err((400, format!("stream {si}: no labels")));
        }
        let labels = Arc::new(labels);
        for (ei, entry) in stream.entries.into_iter().enumerate() {
            let Some(ts) = entry.timestamp else {
                return Err((400, format!("stream {si} entry {ei}: missing timestamp")));
            };
            if !(0..1_000_000_000).contains(&ts.nanos) {
                return Err((
                    400,
                    format!(
                        "stream {si} entry {ei}: timestamp nanos {} out of range",
                        ts.nanos
                    ),
                ));
            }
            let ts_ns = ts.seconds as i128 * 1_000_000_000 + ts.nanos as i128;
            let sm = entry
                .structured_metadata
                .into_iter()
                .map(|p| (p.name, p.value))
                .collect();
            out.push((labels.clone(), ts_ns, entry.line, sm));
        }
    }
    Ok(out)
}

/// Ordered string→string JSON object (rejects non-string values and duplicate keys).
struct StrPairs(Vec<(String, String)>);

impl<'de> serde::Deserialize<'de> for StrPairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StrPairs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<StrPairs, A::Error> {
                let mut out: Vec<(String, String)> = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, String>()? {
                    if out.iter().any(|(ok, _)| *ok == k) {
                        return Err(serde::de::Error::custom(format!("duplicate key {k:?}")));
                    }
                    out.push((k, v));
                }
                Ok(StrPairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `["<ns>", "line"]` or `["<ns>", "line", {..structured metadata..}]`.
struct JsonEntry {
    ts: String,
    line: String,
    sm: Vec<(String, String)>,
}

impl<'de> serde::Deserialize<'de> for JsonEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array [\"<unix ns>\", \"line\"(, {structured metadata})]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<JsonEntry, A::Error> {
                use serde::de::Error;
                let ts: String = s
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let line: String = s
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                let sm: Option<StrPairs> = s.next_element()?;
                if s.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::custom("entry array must have 2 or 3 elements"));
                }
                Ok(JsonEntry {
                    ts,
                    line,
                    sm: sm.map(|p| p.0).unwrap_or_default(),
                })
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(serde::Deserialize)]
struct JsonStream {
    stream: StrPairs,
    values: Vec<JsonEntry>,
}

#[derive(serde::Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

fn decode_json(body: &[u8]) -> Result<Vec<DecodedEntry>, (u16, String)> {
    let push: JsonPush =
        serde_json::from_slice(body).map_err(|e| (400, format!("JSON decode failed: {e}")))?;
    let mut out = Vec::new();
    for (si, stream) in push.streams.into_iter().enumerate() {
        let mut labels = BTreeMap::new();
        for (k, v) in stream.stream.0 {
            if !is_label_name(&k) {
                return Err((400, format!("stream {si}: invalid label name {k:?}")));
            }
            labels.insert(k, v);
        }
        if labels.is_empty() {
            return Err((400, format!("stream {si}: no labels")));
        }
        let labels = Arc::new(labels);
        for (ei, e) in stream.values.into_iter().enumerate() {
            let ts: i64 = e.ts.parse().map_err(|err| {
                (
                    400,
                    format!(
                        "stream {si} entry {ei}: invalid timestamp {:?}: {err}",
                        e.ts
                    ),
                )
            })?;
            out.push((labels.clone(), ts as i128, e.line, e.sm));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Label strings
// ---------------------------------------------------------------------------

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Render labels the way Loki/Prometheus print them: `{a="b", c="d"}`.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", quote_go(v)))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

fn quote_go(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c.is_control() => s.push_str(&format!("\\u{:04x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Parse a Loki stream selector label string such as
/// `{job="nats", container_name="n1"}`.
///
/// Strict: only `name="value"` equality pairs, separated by commas, no
/// trailing comma, no duplicate names. Values are Go string literals:
/// double-quoted with Go escapes (`\" \\ \n \t \r \a \b \f \v \xHH \ooo
/// \uHHHH \UHHHHHHHH`) or back-quoted raw strings. `{}` parses to an empty
/// map (the push decoder rejects that separately).
pub fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let b = s.as_bytes();
    let mut i = 0usize;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\n' | b'\r') {
            *i += 1;
        }
    };
    let mut out = BTreeMap::new();
    skip_ws(&mut i);
    if b.get(i) != Some(&b'{') {
        return Err(format!("expected '{{' at byte {i}"));
    }
    i += 1;
    skip_ws(&mut i);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            skip_ws(&mut i);
            // name
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let name = &s[start..i];
            if !is_label_name(name) {
                return Err(format!("invalid label name {name:?} at byte {start}"));
            }
            skip_ws(&mut i);
            if b.get(i) != Some(&b'=') {
                return Err(format!("expected '=' after label {name:?} at byte {i}"));
            }
            i += 1;
            if matches!(b.get(i), Some(b'~') | Some(b'=')) {
                return Err(format!("only '=' matchers allowed (label {name:?})"));
            }
            skip_ws(&mut i);
            let value = match b.get(i) {
                Some(b'"') => {
                    i += 1;
                    parse_go_quoted(b, &mut i)?
                }
                Some(b'`') => {
                    i += 1;
                    let start = i;
                    while i < b.len() && b[i] != b'`' {
                        i += 1;
                    }
                    if i >= b.len() {
                        return Err("unterminated raw string".into());
                    }
                    let v = s[start..i].to_string();
                    i += 1;
                    v
                }
                _ => {
                    return Err(format!(
                        "expected quoted value for label {name:?} at byte {i}"
                    ));
                }
            };
            if out.insert(name.to_string(), value).is_some() {
                return Err(format!("duplicate label name {name:?}"));
            }
            skip_ws(&mut i);
            match b.get(i) {
                Some(b',') => {
                    i += 1;
                    skip_ws(&mut i);
                    if b.get(i) == Some(&b'}') {
                        return Err("trailing comma in label set".into());
                    }
                }
                Some(b'}') => {
                    i += 1;
                    break;
                }
                Some(c) => return Err(format!("unexpected {:?} at byte {i}", *c as char)),
                None => return Err("unterminated label set (missing '}')".into()),
            }
        }
    }
    skip_ws(&mut i);
    if i != b.len() {
        return Err(format!("trailing garbage at byte {i}"));
    }
    Ok(out)
}

/// Parse the rest of a Go double-quoted string; `*i` points after the opening quote.
fn parse_go_quoted(b: &[u8], i: &mut usize) -> Result<String, String> {
    let hex = |b: &[u8], at: usize, n: usize| -> Result<u32, String> {
        let digits = b
            .get(at..at + n)
            .ok_or_else(|| "truncated escape".to_string())?;
        let s = std::str::from_utf8(digits).map_err(|_| "bad escape".to_string())?;
        u32::from_str_radix(s, 16).map_err(|_| format!("bad hex escape {s:?}"))
    };
    let mut out: Vec<u8> = Vec::new();
    loop {
        let Some(&c) = b.get(*i) else {
            return Err("unterminated quoted value".into());
        };
        *i += 1;
        match c {
            b'"' => break,
            b'\n' => return Err("newline in quoted value".into()),
            b'\\' => {
                let Some(&e) = b.get(*i) else {
                    return Err("unterminated escape".into());
                };
                *i += 1;
                match e {
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'a' => out.push(0x07),
                    b'b' => out.push(0x08),
                    b'f' => out.push(0x0c),
                    b'v' => out.push(0x0b),
                    b'x' => {
                        out.push(hex(b, *i, 2)? as u8);
                        *i += 2;
                    }
                    b'0'..=b'7' => {
                        let digits = b
                            .get(*i - 1..*i + 2)
                            .ok_or_else(|| "truncated octal escape".to_string())?;
                        let mut v: u32 = 0;
                        for d in digits {
                            if !(b'0'..=b'7').contains(d) {
                                return Err("bad octal escape".into());
                            }
                            v = v * 8 + (d - b'0') as u32;
                        }
                        if v > 255 {
                            return Err("octal escape out of range".into());
                        }
                        out.push(v as u8);
                        *i += 2;
                    }
                    b'u' | b'U' => {
                        let n = if e == b'u' { 4 } else { 8 };
                        let cp = hex(b, *i, n)?;
                        *i += n;
                        let ch = char::from_u32(cp)
                            .ok_or_else(|| format!("invalid code point U+{cp:X}"))?;
                        let mut tmp = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                    }
                    other => {
                        return Err(format!("unknown escape \\{}", other as char));
                    }
                }
            }
            c => out.push(c),
        }
    }
    String::from_utf8(out).map_err(|_| "label value is not valid UTF-8".to_string())
}
