//! Shared integration-test harness for `natsmon`.
//!
//! Use from a test file with `mod common;`.
//!
//! * [`Cluster`] starts a REAL 3-node nats-server JetStream cluster (server
//!   names `n1`, `n2`, `n3`, cluster `c1`) on free loopback ports. Node
//!   indices are **0-based**: index 0 is `n1`, 1 is `n2`, 2 is `n3`.
//! * [`Natsmon`] spawns the built `natsmon` binary and waits for `/healthz`.
//! * [`scrape`] / [`wait_for`] fetch and parse the Prometheus exposition.
//!
//! The nats-server binary is taken from `$NATS_SERVER_BIN`, then
//! `/usr/sbin/nats-server`, then `nats-server` on `$PATH`. If none exists the
//! harness PANICS: tests never silently skip.
//!
//! Set `NATSMON_TEST_KEEP=1` to keep the temporary directories (configs,
//! store dirs, server logs, natsmon output) after the test for debugging.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub mod docker;
pub mod loki;

/// Default timeout for a cluster to become healthy.
pub const CLUSTER_START_TIMEOUT: Duration = Duration::from_secs(45);
/// Timeout for `natsmon` to answer `/healthz`.
pub const NATSMON_START_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

/// True when `NATSMON_TEST_REQUIRE_ALL=1` (set by scripts/test.sh).
pub fn require_all() -> bool {
    matches!(
        std::env::var("NATSMON_TEST_REQUIRE_ALL").as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

fn keep_tmp() -> bool {
    matches!(
        std::env::var("NATSMON_TEST_KEEP").as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// A temp dir that `NATSMON_TEST_KEEP=1` keeps for debugging.
pub fn new_tempdir(prefix: &str) -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create temp dir");
    if keep_tmp() {
        dir.disable_cleanup(true);
        eprintln!("[harness] keeping temp dir {}", dir.path().display());
    }
    dir
}

/// Pick a free TCP port on 127.0.0.1 (bind :0, then release). Ports handed
/// out by this process are remembered so that concurrently running tests in
/// the same test binary never get the same port twice.
pub fn free_port() -> u16 {
    static USED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let used = USED.get_or_init(|| Mutex::new(HashSet::new()));
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local_addr").port();
        drop(l);
        let mut set = used.lock().unwrap();
        if set.insert(port) {
            return port;
        }
    }
    panic!("could not find a free loopback port");
}

/// Locate the nats-server binary or panic loudly.
pub fn nats_server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("NATS_SERVER_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return p;
        }
        panic!(
            "NATS_SERVER_BIN={} does not exist. Install nats-server \
             (`apt-get install -y nats-server`, or run scripts/test.sh).",
            p.display()
        );
    }
    let default = PathBuf::from("/usr/sbin/nats-server");
    if default.is_file() {
        return default;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let cand = dir.join("nats-server");
            if cand.is_file() {
                return cand;
            }
        }
    }
    panic!(
        "\n\n*** nats-server binary NOT FOUND (looked at $NATS_SERVER_BIN, \
         /usr/sbin/nats-server and $PATH).\n*** Integration tests need a real \
         nats-server: run scripts/test.sh or `sudo apt-get install -y nats-server`.\n\n"
    );
}

fn read_to_string_lossy(p: &Path) -> String {
    match std::fs::read(p) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => format!("<could not read {}: {e}>", p.display()),
    }
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    let start = v.len().saturating_sub(lines);
    v[start..].join("\n")
}

/// Poll an async condition until it returns `true` or `timeout` elapses.
/// Panics with `what` on timeout.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if f().await {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// Plain HTTP helpers
// ---------------------------------------------------------------------------

/// A reqwest client with short timeouts, for tests.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("build reqwest client")
}

/// GET `url` and return (status, body). Errors are returned as `Err(String)`.
pub async fn http_get(url: &str) -> Result<(u16, String), String> {
    let resp = http_client()
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .text()
        .await
        .map_err(|e| format!("GET {url} body: {e}"))?;
    Ok((status, body))
}

/// GET `url` and parse JSON; panics on any error or non-200 status.
pub async fn get_json(url: &str) -> serde_json::Value {
    let (status, body) = http_get(url).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200, "GET {url} returned {status}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: bad JSON ({e}): {body}"))
}

/// A raw HTTP response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Minimal HTTP/1.1 GET over a plain TCP socket that sends exactly the
/// headers given (plus Host and `Connection: close`) — in particular NO
/// `Accept` header unless you pass one. reqwest always adds `Accept: */*`,
/// which is why this exists. Only `http://host:port/path` URLs are supported.
pub async fn raw_get(url: &str, extra_headers: &[(&str, &str)]) -> Result<RawResponse, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("raw_get supports only http:// URLs, got {url}"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let fut = async {
        let mut stream = tokio::net::TcpStream::connect(hostport)
            .await
            .map_err(|e| format!("connect {hostport}: {e}"))?;
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n");
        for (k, v) in extra_headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write to {hostport}: {e}"))?;
        let mut buf = Vec::new();
        stream
            .read_to_end(&mut buf)
            .await
            .map_err(|e| format!("read from {hostport}: {e}"))?;
        Ok::<Vec<u8>, String>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| format!("GET {url}: timed out"))??;
    parse_http_response(&buf).map_err(|e| format!("GET {url}: {e}"))
}

fn parse_http_response(buf: &[u8]) -> Result<RawResponse, String> {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers in response")?;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut body = buf[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty response")?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    } else if let Some((_, cl)) = headers.iter().find(|(k, _)| k == "content-length") {
        let n: usize = cl.parse().map_err(|_| format!("bad content-length {cl}"))?;
        if body.len() < n {
            return Err(format!("short body: {} < {n}", body.len()));
        }
        body.truncate(n);
    }
    Ok(RawResponse {
        status,
        headers,
        body: String::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let nl = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk header")?;
        let size_str = String::from_utf8_lossy(&data[..nl]);
        let size_str = size_str.split(';').next().unwrap_or("").trim().to_string();
        let size = usize::from_str_radix(&size_str, 16)
            .map_err(|_| format!("bad chunk size {size_str:?}"))?;
        data = &data[nl + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

// ---------------------------------------------------------------------------
// nats-server cluster
// ---------------------------------------------------------------------------

/// One nats-server node of a [`Cluster`].
pub struct Node {
    pub name: String,
    pub client_port: u16,
    pub cluster_port: u16,
    pub http_port: u16,
    pub config_path: PathBuf,
    pub store_dir: PathBuf,
    /// stdout+stderr of the server (appended across restarts).
    pub log_path: PathBuf,
    child: Option<Child>,
}

/// A real 3-node nats-server 2.9+ JetStream cluster.
///
/// Accounts: `SYS` (system account; user sys/sys), `A` (JetStream; users
/// a/a), `B` (JetStream with limits; users b/b, max_connections 10,
/// max_subscriptions 1000, JetStream max_mem 64M / max_file 512M /
/// max_streams 10 / max_consumers 100).
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub nodes: Vec<Node>,
}

pub const CLUSTER_NAME: &str = "c1";
pub const ACCOUNT_B_MAX_CONNECTIONS: i64 = 10;

impl Cluster {
    /// Start the cluster and wait until every node answers `/healthz` with 200
    /// and reports a JetStream meta leader.
    pub async fn start() -> Cluster {
        let bin = nats_server_bin();
        let dir = new_tempdir("natsmon-cluster-");
        let mut nodes = Vec::new();
        for i in 0..3 {
            let name = format!("n{}", i + 1);
            nodes.push(Node {
                config_path: dir.path().join(format!("{name}.conf")),
                store_dir: dir.path().join(format!("{name}-store")),
                log_path: dir.path().join(format!("{name}.log")),
                name,
                client_port: free_port(),
                cluster_port: free_port(),
                http_port: free_port(),
                child: None,
            });
        }
        let routes: Vec<String> = nodes
            .iter()
            .map(|n| format!("nats-route://127.0.0.1:{}", n.cluster_port))
            .collect();
        for n in &nodes {
            std::fs::create_dir_all(&n.store_dir).expect("create store dir");
            let conf = render_config(n, &routes);
            std::fs::write(&n.config_path, conf).expect("write nats config");
        }
        let mut c = Cluster { dir, bin, nodes };
        for i in 0..3 {
            c.spawn(i);
        }
        c.wait_healthy_all(CLUSTER_START_TIMEOUT).await;
        c
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "node {} already running", node.name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .expect("open node log");
        let mut log2 = log.try_clone().expect("clone log fd");
        let _ = writeln!(log2, "===== [harness] starting {} =====", node.name);
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&node.config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .unwrap_or_else(|e| panic!("failed to spawn {}: {e}", self.bin.display()));
        node.child = Some(child);
    }

    /// Temp dir holding configs, store dirs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// `http://127.0.0.1:PORT` of node `i`'s monitoring listener (0-based).
    pub fn monitor_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].http_port)
    }

    /// All monitoring URLs.
    pub fn monitor_urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.monitor_url(i)).collect()
    }

    /// `127.0.0.1:PORT` host:port pairs of the monitor endpoints (no scheme).
    pub fn monitor_addrs(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.http_port))
            .collect()
    }

    /// `nats://127.0.0.1:PORT` of node `i` (0-based).
    pub fn client_url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].client_port)
    }

    pub fn client_urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.client_url(i)).collect()
    }

    /// `n1`, `n2`, `n3` for i = 0, 1, 2.
    pub fn server_name(&self, i: usize) -> String {
        self.nodes[i].name.clone()
    }

    /// Index of the node with the given server name.
    pub fn index_of(&self, server_name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == server_name)
    }

    pub fn is_running(&mut self, i: usize) -> bool {
        match self.nodes[i].child.as_mut() {
            None => false,
            Some(c) => matches!(c.try_wait(), Ok(None)),
        }
    }

    /// SIGKILL node `i` and reap it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start node `i` again with the same config, ports and store dir, then
    /// wait until it answers `/healthz` 200 and sees a meta leader. If it is
    /// still running it is killed first.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_healthy(&[i], CLUSTER_START_TIMEOUT).await;
    }

    /// Contents of node `i`'s log (stdout+stderr, all runs).
    pub fn log(&self, i: usize) -> String {
        read_to_string_lossy(&self.nodes[i].log_path)
    }

    /// Last lines of every node's log, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut s = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            s.push_str(&format!(
                "----- {} ({}) last {lines} lines -----\n{}\n",
                n.name,
                n.log_path.display(),
                tail(&self.log(i), lines)
            ));
        }
        s
    }

    /// JSON of `GET <monitor_url(i)><path>`, e.g. `cluster.json(0, "/jsz")`.
    pub async fn json(&self, i: usize, path_and_query: &str) -> serde_json::Value {
        get_json(&format!("{}{}", self.monitor_url(i), path_and_query)).await
    }

    /// Current JetStream meta leader server name as seen by node `i`.
    pub async fn meta_leader(&self, i: usize) -> Option<String> {
        let url = format!("{}/jsz", self.monitor_url(i));
        let (status, body) = http_get(&url).await.ok()?;
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v.pointer("/meta_cluster/leader")
            .and_then(|l| l.as_str())
            .filter(|l| !l.is_empty())
            .map(|s| s.to_string())
    }

    /// Index of the current meta leader (asks the first running node).
    pub async fn meta_leader_index(&mut self) -> Option<usize> {
        for i in 0..self.nodes.len() {
            if !self.is_running(i) {
                continue;
            }
            if let Some(l) = self.meta_leader(i).await {
                return self.index_of(&l);
            }
        }
        None
    }

    async fn node_ready(&self, i: usize) -> Result<(), String> {
        let url = format!("{}/healthz", self.monitor_url(i));
        let (status, body) = http_get(&url).await?;
        if status != 200 {
            return Err(format!("{url} -> {status} {body}"));
        }
        match self.meta_leader(i).await {
            Some(_) => Ok(()),
            None => Err(format!(
                "{}: no JetStream meta leader yet",
                self.nodes[i].name
            )),
        }
    }

    /// Wait until all nodes are ready (see [`Cluster::start`]).
    pub async fn wait_healthy_all(&mut self, timeout: Duration) {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.wait_healthy(&all, timeout).await;
    }

    /// Wait until the given nodes answer `/healthz` 200 and see a meta leader.
    pub async fn wait_healthy(&mut self, idx: &[usize], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let mut last_err = None;
            for &i in idx {
                if !self.is_running(i) {
                    panic!(
                        "nats-server {} exited during startup.\n{}",
                        self.nodes[i].name,
                        self.log_tails(60)
                    );
                }
                if let Err(e) = self.node_ready(i).await {
                    last_err = Some(e);
                    break;
                }
            }
            match last_err {
                None => return,
                Some(e) if Instant::now() >= deadline => panic!(
                    "cluster not healthy after {timeout:?}: {e}\n{}",
                    self.log_tails(40)
                ),
                Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        if std::thread::panicking() {
            eprintln!(
                "[harness] test panicked; nats-server logs in {} (set NATSMON_TEST_KEEP=1 to keep)\n{}",
                self.dir.path().display(),
                self.log_tails(30)
            );
        }
    }
}

fn render_config(n: &Node, routes: &[String]) -> String {
    format!(
        r#"# generated by natsmon tests/common/mod.rs
server_name: {name}
listen: 127.0.0.1:{client}
http: 127.0.0.1:{http}

jetstream {{
  store_dir: "{store}"
  max_memory_store: 256MB
  max_file_store: 2GB
}}

cluster {{
  name: {cluster}
  listen: 127.0.0.1:{route}
  routes: [
    {routes}
  ]
}}

system_account: SYS

accounts {{
  SYS {{
    users: [ {{ user: sys, password: sys }} ]
  }}
  A {{
    jetstream: enabled
    users: [ {{ user: a, password: a }} ]
  }}
  B {{
    jetstream {{
      max_mem: 64MB
      max_file: 512MB
      max_streams: 10
      max_consumers: 100
    }}
    users: [ {{ user: b, password: b }} ]
    limits {{
      max_connections: {bmax}
      max_subscriptions: 1000
    }}
  }}
}}
"#,
        name = n.name,
        client = n.client_port,
        http = n.http_port,
        store = n.store_dir.display(),
        cluster = CLUSTER_NAME,
        route = n.cluster_port,
        routes = routes.join("\n    "),
        bmax = ACCOUNT_B_MAX_CONNECTIONS,
    )
}

/// Connect to the cluster (all client URLs) as `user`/`pass`.
pub async fn connect(cluster: &Cluster, user: &str, pass: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into())
        .connection_timeout(Duration::from_secs(5))
        .connect(cluster.client_urls())
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"))
}

/// Connect to one specific node `i` as `user`/`pass`.
pub async fn connect_node(
    cluster: &Cluster,
    i: usize,
    user: &str,
    pass: &str,
) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into())
        .connection_timeout(Duration::from_secs(5))
        .connect(cluster.client_url(i))
        .await
        .unwrap_or_else(|e| panic!("connect to node {i} as {user}: {e}"))
}

// ---------------------------------------------------------------------------
// natsmon process
// ---------------------------------------------------------------------------

/// A running `natsmon` binary. Killed on drop.
pub struct Natsmon {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub listen: String,
    stderr_path: PathBuf,
    stdout_path: PathBuf,
}

pub fn natsmon_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_natsmon"))
}

impl Natsmon {
    /// Spawn `natsmon <args> --listen 127.0.0.1:<free port>` and wait until
    /// `GET /healthz` answers 200 (20 s). Panics with the process output if
    /// it exits or never becomes healthy.
    pub async fn start(args: &[String]) -> Natsmon {
        Self::start_with_env(args, &[]).await
    }

    /// Like [`Natsmon::start`] with extra environment variables.
    pub async fn start_with_env(args: &[String], envs: &[(&str, &str)]) -> Natsmon {
        let mut m = Self::spawn(args, envs);
        m.wait_healthy(NATSMON_START_TIMEOUT).await;
        m
    }

    /// Spawn without waiting for health (e.g. to test startup failures).
    pub fn spawn(args: &[String], envs: &[(&str, &str)]) -> Natsmon {
        let dir = new_tempdir("natsmon-proc-");
        let stderr_path = dir.path().join("stderr.log");
        let stdout_path = dir.path().join("stdout.log");
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(natsmon_bin());
        cmd.args(args)
            .arg("--listen")
            .arg(&listen)
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                File::create(&stdout_path).expect("create stdout file"),
            ))
            .stderr(Stdio::from(
                File::create(&stderr_path).expect("create stderr file"),
            ));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("failed to spawn {}: {e}", natsmon_bin().display()));
        Natsmon {
            child: Some(child),
            dir,
            listen,
            stderr_path,
            stdout_path,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.listen)
    }

    pub fn stderr_contents(&self) -> String {
        read_to_string_lossy(&self.stderr_path)
    }

    pub fn stdout_contents(&self) -> String {
        read_to_string_lossy(&self.stdout_path)
    }

    /// stderr followed by stdout, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- natsmon stderr ---\n{}\n--- natsmon stdout ---\n{}",
            self.stderr_contents(),
            self.stdout_contents()
        )
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `Some(status)` if the process has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Wait up to `timeout` for the process to exit on its own.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Send SIGTERM (via `kill -TERM <pid>`) for graceful-shutdown tests.
    pub fn terminate(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn wait_healthy(&mut self, timeout: Duration) {
        let url = format!("{}/healthz", self.base_url());
        let deadline = Instant::now() + timeout;
        let mut last: String;
        loop {
            if let Some(status) = self.try_wait() {
                panic!(
                    "natsmon exited during startup with {status}\n{}",
                    self.output()
                );
            }
            match http_get(&url).await {
                Ok((200, _)) => return,
                Ok((s, b)) => last = format!("{s} {b}"),
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                panic!(
                    "natsmon not healthy after {timeout:?} (last: {last})\n{}",
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Natsmon {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "[harness] test panicked; natsmon output:\n{}",
                self.output()
            );
        }
    }
}

/// Run `natsmon <args>` to completion (no `--listen` added), killing it after
/// `timeout`. Returns (exit status or None if killed, stdout, stderr).
pub async fn run_natsmon(
    args: &[String],
    timeout: Duration,
) -> (Option<std::process::ExitStatus>, String, String) {
    let mut child = tokio::process::Command::new(natsmon_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn natsmon");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let rd_out = tokio::spawn(async move {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s).await;
        s
    });
    let rd_err = tokio::spawn(async move {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s).await;
        s
    });
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(s) => s.ok(),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    let o = String::from_utf8_lossy(&rd_out.await.unwrap_or_default()).into_owned();
    let e = String::from_utf8_lossy(&rd_err.await.unwrap_or_default()).into_owned();
    (status, o, e)
}

/// Pretty args helper: `args(&["--poll-interval", "1s"])`.
pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------
// Prometheus exposition parsing
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels.get(k).map(|s| s.as_str())
    }

    fn matches(&self, labels: &[(&str, &str)]) -> bool {
        labels
            .iter()
            .all(|(k, v)| self.labels.get(*k).map(|x| x.as_str()) == Some(*v))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// metric family name -> type (from `# TYPE`)
    pub types: BTreeMap<String, String>,
    /// metric family name -> help text (from `# HELP`, unescaped)
    pub help: BTreeMap<String, String>,
    /// The raw exposition text.
    pub text: String,
    /// Response Content-Type header (empty if parsed from a string).
    pub content_type: String,
}

impl Exposition {
    /// Parse Prometheus text format 0.0.4 (also accepts OpenMetrics text:
    /// `# EOF`, `# UNIT`, exemplars are ignored). Panics on malformed lines.
    pub fn parse(text: &str) -> Exposition {
        match parse_exposition(text) {
            Ok(e) => e,
            Err(e) => panic!("invalid exposition: {e}\n----- text -----\n{text}"),
        }
    }

    /// Value of the first sample named `name` whose labels include all `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.find(name, labels).map(|s| s.value)
    }

    /// First sample named `name` whose labels include all `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&Sample> {
        self.samples
            .iter()
            .find(|s| s.name == name && s.matches(labels))
    }

    /// All samples named `name`.
    pub fn all(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    /// All samples named `name` whose labels include all `labels`.
    pub fn filter(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name && s.matches(labels))
            .collect()
    }

    /// Sum of samples named `name` whose labels include all `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.filter(name, labels).iter().map(|s| s.value).sum()
    }

    /// Count of samples named `name` whose labels include all `labels`.
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        self.filter(name, labels).len()
    }

    /// Does any sample named `name` exist?
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    /// Distinct sample names, sorted.
    pub fn names(&self) -> Vec<String> {
        let set: std::collections::BTreeSet<&str> =
            self.samples.iter().map(|s| s.name.as_str()).collect();
        set.into_iter().map(|s| s.to_string()).collect()
    }

    /// Distinct values of label `label` among samples named `name`.
    pub fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let set: std::collections::BTreeSet<&str> = self
            .all(name)
            .into_iter()
            .filter_map(|s| s.label(label))
            .collect();
        set.into_iter().map(|s| s.to_string()).collect()
    }

    /// `# TYPE` of a family.
    pub fn type_of(&self, family: &str) -> Option<&str> {
        self.types.get(family).map(|s| s.as_str())
    }
}

fn parse_exposition(text: &str) -> Result<Exposition, String> {
    let mut exp = Exposition {
        text: text.to_string(),
        ..Default::default()
    };
    for (lineno, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let ctx = |e: String| format!("line {}: {e}: {line:?}", lineno + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix("TYPE ") {
                let mut it = r.trim().splitn(2, ' ');
                let fam = it.next().unwrap_or("").to_string();
                let ty = it.next().unwrap_or("").trim().to_string();
                exp.types.insert(fam, ty);
            } else if let Some(r) = rest.strip_prefix("HELP ") {
                let mut it = r.splitn(2, ' ');
                let fam = it.next().unwrap_or("").to_string();
                let help = unescape(it.next().unwrap_or(""), false).map_err(ctx)?;
                exp.help.insert(fam, help);
            }
            continue;
        }
        exp.samples.push(parse_sample_line(line).map_err(ctx)?);
    }
    Ok(exp)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn parse_sample_line(line: &str) -> Result<Sample, String> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    if i >= chars.len() || !is_name_start(chars[i]) {
        return Err("expected metric name".into());
    }
    while i < chars.len() && is_name_char(chars[i]) {
        i += 1;
    }
    let name: String = chars[..i].iter().collect();
    let mut labels = BTreeMap::new();
    if i < chars.len() && chars[i] == '{' {
        i += 1;
        loop {
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            if i >= chars.len() {
                return Err("unterminated label set".into());
            }
            if chars[i] == '}' {
                i += 1;
                break;
            }
            let start = i;
            if !is_name_start(chars[i]) || chars[i] == ':' {
                return Err(format!("bad label name at column {}", i + 1));
            }
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let lname: String = chars[start..i].iter().collect();
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            if i >= chars.len() || chars[i] != '=' {
                return Err(format!("expected '=' after label {lname}"));
            }
            i += 1;
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            if i >= chars.len() || chars[i] != '"' {
                return Err(format!("expected '\"' for label {lname}"));
            }
            i += 1;
            let mut val = String::new();
            loop {
                if i >= chars.len() {
                    return Err(format!("unterminated value for label {lname}"));
                }
                match chars[i] {
                    '"' => {
                        i += 1;
                        break;
                    }
                    '\\' => {
                        i += 1;
                        match chars.get(i) {
                            Some('\\') => val.push('\\'),
                            Some('"') => val.push('"'),
                            Some('n') => val.push('\n'),
                            other => {
                                return Err(format!("bad escape \\{other:?} in label {lname}"));
                            }
                        }
                        i += 1;
                    }
                    c => {
                        val.push(c);
                        i += 1;
                    }
                }
            }
            if labels.insert(lname.clone(), val).is_some() {
                return Err(format!("duplicate label {lname}"));
            }
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            match chars.get(i) {
                Some(',') => i += 1,
                Some('}') => {}
                _ => return Err("expected ',' or '}' in label set".into()),
            }
        }
    }
    let rest: String = chars[i..].iter().collect();
    // Drop an OpenMetrics exemplar (" # {...} v [ts]").
    let rest = match rest.find(" # ") {
        Some(p) => rest[..p].to_string(),
        None => rest,
    };
    let mut parts = rest.split_whitespace();
    let vstr = parts.next().ok_or("missing value")?;
    let value = parse_value(vstr)?;
    if let Some(ts) = parts.next() {
        ts.parse::<f64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if parts.next().is_some() {
        return Err("trailing garbage after value/timestamp".into());
    }
    Ok(Sample {
        name,
        labels,
        value,
    })
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Ok(f64::INFINITY),
        "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
        "NaN" | "nan" => Ok(f64::NAN),
        _ => s.parse::<f64>().map_err(|_| format!("bad value {s:?}")),
    }
}

fn unescape(s: &str, quotes: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => return Err("dangling backslash".into()),
        }
    }
    Ok(out)
}

/// GET `<base_url>/metrics` (plain request, no Accept header) and parse it.
/// Returns Err on connection errors, non-200 status or malformed text.
pub async fn try_scrape(base_url: &str) -> Result<Exposition, String> {
    let url = format!("{}/metrics", base_url.trim_end_matches('/'));
    let resp = raw_get(&url, &[]).await?;
    if resp.status != 200 {
        return Err(format!("GET {url} -> {}: {}", resp.status, resp.body));
    }
    let mut exp = parse_exposition(&resp.body).map_err(|e| {
        format!(
            "invalid exposition from {url}: {e}\n----- text -----\n{}",
            resp.body
        )
    })?;
    exp.content_type = resp.header("content-type").unwrap_or("").to_string();
    Ok(exp)
}

/// GET `<base_url>/metrics` and parse it; panics on error.
pub async fn scrape(base_url: &str) -> Exposition {
    try_scrape(base_url).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Scrape `base_url` repeatedly until `pred` holds; returns that exposition.
/// Panics on timeout with the last exposition text (or last error).
pub async fn wait_for<F>(base_url: &str, timeout: Duration, mut pred: F) -> Exposition
where
    F: FnMut(&Exposition) -> bool,
{
    let deadline = Instant::now() + timeout;
    let mut last: Result<Exposition, String>;
    loop {
        last = try_scrape(base_url).await;
        if let Ok(exp) = &last
            && pred(exp)
        {
            return last.unwrap();
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    match last {
        Ok(exp) => panic!(
            "wait_for: condition not met within {timeout:?}; last exposition:\n{}",
            exp.text
        ),
        Err(e) => panic!("wait_for: condition not met within {timeout:?}; last scrape error: {e}"),
    }
}

/// Run `promtool check metrics` on `text`. Returns (passed, combined output).
/// Panics if promtool is not installed (install `prometheus` via apt).
pub fn promtool_check_metrics(text: &str) -> (bool, String) {
    let bin = std::env::var("PROMTOOL_BIN").unwrap_or_else(|_| "promtool".to_string());
    let mut child = Command::new(&bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "\n\n*** promtool NOT FOUND ({bin}: {e}). Install it with \
                 `sudo apt-get install -y prometheus` or run scripts/test.sh.\n\n"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("wait promtool");
    let combined = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), combined)
}

// ---------------------------------------------------------------------------
// README metric reference
// ---------------------------------------------------------------------------

/// Family names listed in the README's metric reference.
pub fn readme_families() -> std::collections::BTreeSet<String> {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let start = readme
        .find("<!-- metric-reference:start -->")
        .expect("README has the reference start marker");
    let end = readme
        .find("<!-- metric-reference:end -->")
        .expect("README has the reference end marker");
    readme[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

/// Family names declared by `# TYPE` lines of an exposition.
pub fn families(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// natsmon's arguments for the cluster; `timing` is the poll interval and timeout.
pub fn natsmon_args(cluster: &Cluster, timing: (&str, &str), extra: &[&str]) -> Vec<String> {
    let mut a = Vec::new();
    for i in 0..cluster.len() {
        a.push("--nats-url".to_string());
        a.push(format!(
            "{}={}",
            cluster.server_name(i),
            cluster.monitor_url(i)
        ));
    }
    a.extend(args(&[
        "--poll-interval",
        timing.0,
        "--poll-timeout",
        timing.1,
    ]));
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[cfg(test)]
mod parser_tests {
    use super::*;

    #[test]
    fn parses_labels_and_escapes() {
        let t = "# HELP x_total Some \\\\ help\n# TYPE x_total counter\n\
                 x_total{a=\"b\\\"c\",d=\"e\\\\f\",g=\"h\\ni\",} 3 1700000000\n\
                 y 4.5e1\nz{a=\"1\"} +Inf\nw NaN\n# EOF\n";
        let e = Exposition::parse(t);
        assert_eq!(e.samples.len(), 4);
        let s = e.find("x_total", &[("a", "b\"c")]).unwrap();
        assert_eq!(s.label("d"), Some("e\\f"));
        assert_eq!(s.label("g"), Some("h\ni"));
        assert_eq!(s.value, 3.0);
        assert_eq!(e.get("y", &[]), Some(45.0));
        assert_eq!(e.get("z", &[("a", "1")]), Some(f64::INFINITY));
        assert!(e.get("w", &[]).unwrap().is_nan());
        assert_eq!(e.type_of("x_total"), Some("counter"));
        assert_eq!(
            e.help.get("x_total").map(|s| s.as_str()),
            Some("Some \\ help")
        );
        assert_eq!(e.sum("x_total", &[]), 3.0);
    }

    #[test]
    fn http_chunked() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let r = parse_http_response(raw).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "hello world");
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
    }
}
