//! A REAL 3-node nats-server JetStream cluster (server names `n1`, `n2`, `n3`, cluster
//! `c1`) on free loopback ports. Node indices are **0-based**: index 0 is `n1`.
//!
//! The nats-server binary is taken from `$NATS_SERVER_BIN`, then `/usr/sbin/nats-server`,
//! then `nats-server` on `$PATH`. If none exists the harness PANICS: tests never skip.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::http::{get_json, http_get};
use super::{free_port, new_tempdir, read_to_string_lossy, tail};

/// Default timeout for a cluster to become healthy.
pub const CLUSTER_START_TIMEOUT: Duration = Duration::from_secs(45);

/// The nats-server releases of the version matrix as `(version, binary)`, from
/// `NATSMON_TEST_NATS_SERVERS` (`version=path` entries separated by `;`, as
/// scripts/test.sh sets it from scripts/nats-servers.sh). Panics when it is unset under
/// scripts/test.sh, so the matrix never silently shrinks to nothing.
pub fn nats_server_matrix() -> Vec<(String, PathBuf)> {
    let Ok(spec) = std::env::var("NATSMON_TEST_NATS_SERVERS") else {
        panic!(
            "NATSMON_TEST_NATS_SERVERS is not set: run scripts/test.sh, or \
             NATSMON_TEST_NATS_SERVERS=\"$(scripts/nats-servers.sh | paste -sd ';')\" cargo test"
        );
    };
    spec.split(';')
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let (v, p) = e
                .split_once('=')
                .unwrap_or_else(|| panic!("bad NATSMON_TEST_NATS_SERVERS entry {e:?}"));
            let p = PathBuf::from(p.trim());
            assert!(p.is_file(), "nats-server {v} not found at {}", p.display());
            (v.trim().to_string(), p)
        })
        .collect()
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

/// One nats-server node of a [`Cluster`].
pub struct Node {
    pub name: String,
    /// The loopback address every listener of the node binds: `127.0.0.1` but in
    /// [`Cluster::start_on_loopbacks`].
    pub host: String,
    pub client_port: u16,
    pub cluster_port: u16,
    pub http_port: u16,
    /// The gateway listener of [`Cluster::start_with_gateway`]; none otherwise.
    pub gateway_port: Option<u16>,
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
    /// Each node's nats-server binary (a mixed-version cluster has several).
    bins: Vec<PathBuf>,
    /// Environment of every nats-server process (e.g. GOMEMLIMIT).
    env: Vec<(String, String)>,
    pub nodes: Vec<Node>,
}

/// A gateway from every node of a [`Cluster`] to another cluster: a supercluster.
pub struct GatewayTo {
    /// The other cluster's name.
    pub name: String,
    /// `nats://HOST:PORT` of the other cluster's gateway listener.
    pub url: String,
}

pub const CLUSTER_NAME: &str = "c1";
pub const ACCOUNT_B_MAX_CONNECTIONS: i64 = 10;

impl Cluster {
    /// Start the cluster and wait until every node answers `/healthz` with 200
    /// and reports a JetStream meta leader.
    pub async fn start() -> Cluster {
        Cluster::start_with(nats_server_bin()).await
    }

    /// The same cluster on another nats-server binary (a release of the version matrix).
    pub async fn start_with(bin: PathBuf) -> Cluster {
        Cluster::start_mixed([bin.clone(), bin.clone(), bin]).await
    }

    /// The same cluster with one binary per node: a mixed-version cluster.
    pub async fn start_mixed(bins: [PathBuf; 3]) -> Cluster {
        Cluster::start_at(bins, |_| ("127.0.0.1".to_string(), free_port()), None, &[]).await
    }

    /// The cluster on `bin` with a `gateway {}` block on every node towards `to`, and
    /// `env` in every server's environment, NOT waited for: in a supercluster JetStream
    /// elects no meta leader before the gateways are up, so the caller starts the other
    /// cluster and then calls [`Cluster::wait_healthy_all`].
    pub async fn spawn_with_gateway(bin: PathBuf, to: GatewayTo, env: &[(&str, &str)]) -> Cluster {
        Cluster::start_at(
            [bin.clone(), bin.clone(), bin],
            |_| ("127.0.0.1".to_string(), free_port()),
            Some(to),
            env,
        )
        .await
    }

    /// `nats://HOST:PORT` of every node's gateway listener (empty without a gateway).
    pub fn gateway_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter_map(|n| n.gateway_port.map(|p| format!("nats://{}:{p}", n.host)))
            .collect()
    }

    /// The same cluster with node `i` on `127.0.0.{i+1}` and every monitoring listener on
    /// ONE port, as servers on separate hosts (pods, compose services) usually are: what
    /// discovery assumes, since the servers do not report their monitoring port.
    pub async fn start_on_loopbacks() -> Cluster {
        let bin = nats_server_bin();
        let http_port = loop {
            let p = free_port();
            let free_on_all = (2..=3)
                .all(|i| std::net::TcpListener::bind((format!("127.0.0.{i}").as_str(), p)).is_ok());
            if free_on_all {
                break p;
            }
        };
        Cluster::start_at(
            [bin.clone(), bin.clone(), bin],
            |i| (format!("127.0.0.{}", i + 1), http_port),
            None,
            &[],
        )
        .await
    }

    /// Starts the three nodes; `at(i)` is node i's address and monitoring port.
    async fn start_at(
        bins: [PathBuf; 3],
        at: impl Fn(usize) -> (String, u16),
        gateway: Option<GatewayTo>,
        env: &[(&str, &str)],
    ) -> Cluster {
        let bins = bins.to_vec();
        let dir = new_tempdir("natsmon-cluster-");
        let mut nodes = Vec::new();
        for i in 0..3 {
            let name = format!("n{}", i + 1);
            let (host, http_port) = at(i);
            nodes.push(Node {
                host,
                config_path: dir.path().join(format!("{name}.conf")),
                store_dir: dir.path().join(format!("{name}-store")),
                log_path: dir.path().join(format!("{name}.log")),
                name,
                client_port: free_port(),
                cluster_port: free_port(),
                http_port,
                gateway_port: gateway.as_ref().map(|_| free_port()),
                child: None,
            });
        }
        let routes: Vec<String> = nodes
            .iter()
            .map(|n| format!("nats-route://{}:{}", n.host, n.cluster_port))
            .collect();
        for n in &nodes {
            std::fs::create_dir_all(&n.store_dir).expect("create store dir");
            let mut conf = render_config(n, &routes);
            if let (Some(g), Some(port)) = (&gateway, n.gateway_port) {
                conf.push_str(&format!(
                    "\ngateway {{\n  name: {CLUSTER_NAME}\n  listen: {}:{port}\n  gateways: [ \
                     {{ name: {}, url: \"{}\" }} ]\n}}\n",
                    n.host, g.name, g.url
                ));
            }
            std::fs::write(&n.config_path, conf).expect("write nats config");
        }
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut c = Cluster {
            dir,
            bins,
            env,
            nodes,
        };
        for i in 0..3 {
            c.spawn(i);
        }
        // See spawn_with_gateway.
        if c.nodes[0].gateway_port.is_none() {
            c.wait_healthy_all(CLUSTER_START_TIMEOUT).await;
        }
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
        let bin = &self.bins[i];
        let child = Command::new(bin)
            .arg("-c")
            .arg(&node.config_path)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .unwrap_or_else(|e| panic!("failed to spawn {}: {e}", bin.display()));
        node.child = Some(child);
    }

    /// The nats-server binary node 0 runs (every node's, but in a mixed cluster).
    pub fn bin(&self) -> &std::path::Path {
        &self.bins[0]
    }

    /// The version node 0's binary reports (`nats-server --version`), e.g. `2.9.10`.
    pub fn version(&self) -> String {
        let out = std::process::Command::new(self.bin())
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("{} --version: {e}", self.bin().display()));
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim()
            .rsplit(['v', ' '])
            .next()
            .unwrap_or_default()
            .to_string()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// `http://HOST:PORT` of node `i`'s monitoring listener (0-based).
    pub fn monitor_url(&self, i: usize) -> String {
        let n = &self.nodes[i];
        format!("http://{}:{}", n.host, n.http_port)
    }

    /// `nats://HOST:PORT` of node `i` (0-based).
    pub fn client_url(&self, i: usize) -> String {
        let n = &self.nodes[i];
        format!("nats://{}:{}", n.host, n.client_port)
    }

    pub fn client_urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.client_url(i)).collect()
    }

    /// `n1`, `n2`, `n3` for i = 0, 1, 2.
    pub fn server_name(&self, i: usize) -> String {
        self.nodes[i].name.clone()
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

    /// Ok once the meta leader reports every other node as a current,
    /// online replica of the meta group.
    async fn meta_peers_current(&self) -> Result<(), String> {
        let leader = self
            .meta_leader(0)
            .await
            .ok_or_else(|| "no JetStream meta leader yet".to_string())?;
        let li = (0..self.nodes.len())
            .find(|&i| self.server_name(i) == leader)
            .ok_or_else(|| format!("meta leader {leader} is not a cluster node"))?;
        let (status, body) = http_get(&format!("{}/jsz", self.monitor_url(li))).await?;
        if status != 200 {
            return Err(format!("{leader} /jsz -> {status}"));
        }
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let replicas = v
            .pointer("/meta_cluster/replicas")
            .and_then(|r| r.as_array())
            .cloned()
            .unwrap_or_default();
        let ready = replicas
            .iter()
            .filter(|r| {
                r["current"].as_bool() == Some(true) && r["offline"].as_bool() != Some(true)
            })
            .count();
        if ready + 1 < self.nodes.len() {
            return Err(format!(
                "meta leader {leader} sees {ready} of {} peers current: {}",
                self.nodes.len() - 1,
                serde_json::Value::Array(replicas)
            ));
        }
        Ok(())
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
            // A leader alone is not enough: right after the election the
            // leader may not have heard from every peer yet, and an R3 stream
            // created then fails with "no suitable peers for placement, peer
            // offline" (10005). With the whole cluster up, also wait until the
            // leader lists every other node as a current, online replica.
            if last_err.is_none()
                && (0..self.nodes.len()).all(|i| self.is_running(i))
                && let Err(e) = self.meta_peers_current().await
            {
                last_err = Some(e);
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
        r#"# generated by natsmon tests/it/harness/cluster.rs
server_name: {name}
listen: {host}:{client}
http: {host}:{http}
# One tag per pair of nodes this node belongs to: a stream placed with the tag `pair:13`
# lands on n1 and n3, whatever the placement would have preferred.
server_tags: [{tags}]

jetstream {{
  store_dir: "{store}"
  max_memory_store: 256MB
  max_file_store: 2GB
}}

cluster {{
  name: {cluster}
  listen: {host}:{route}
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
        host = n.host,
        client = n.client_port,
        http = n.http_port,
        store = n.store_dir.display(),
        cluster = CLUSTER_NAME,
        route = n.cluster_port,
        routes = routes.join("\n    "),
        bmax = ACCOUNT_B_MAX_CONNECTIONS,
        tags = pair_tags(&n.name).join(", "),
    )
}

/// `pair:12` and `pair:13` for n1, and so on: the tags of the node pairs `name` is in.
pub fn pair_tags(name: &str) -> Vec<String> {
    let me: u32 = name.trim_start_matches('n').parse().unwrap_or(0);
    (1..=3)
        .filter(|&o| o != me)
        .map(|o| format!("\"pair:{}{}\"", me.min(o), me.max(o)))
        .collect()
}

/// Connect to the cluster (all client URLs) as `user`/`pass`.
pub async fn connect(cluster: &Cluster, user: &str, pass: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into())
        .connection_timeout(Duration::from_secs(5))
        .connect(cluster.client_urls())
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"))
}

/// Runs `attempt` until it succeeds, for up to 30 s, 250 ms apart: a JetStream API
/// request on a loaded machine can time out or find placement not ready yet. Only for
/// requests that are safe to repeat (named objects, identical configs). Panics with
/// `what` and the last error.
pub async fn until_ok<T, E, F, Fut>(what: &str, mut attempt: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match attempt().await {
            Ok(v) => return v,
            Err(e) if Instant::now() < deadline => {
                eprintln!("[test] {what} again: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

/// Creates a stream, again while its creation times out or finds placement not ready
/// (creating a stream again with the same config finds it).
pub async fn create_stream(
    js: &async_nats::jetstream::Context,
    config: async_nats::jetstream::stream::Config,
) -> async_nats::jetstream::stream::Stream {
    let what = format!("create stream {}", config.name);
    until_ok(&what, || js.create_stream(config.clone())).await
}

/// Publishes one message and waits for the stream's acknowledgement, again while it
/// times out or the stream has no leader yet. `id` is the message's `Nats-Msg-Id`, so a
/// repeat after a lost acknowledgement is a duplicate the stream drops: unique per
/// message in the stream's two-minute duplicate window.
pub async fn publish_acked(
    js: &async_nats::jetstream::Context,
    subject: &str,
    payload: &str,
    id: &str,
) -> async_nats::jetstream::publish::PublishAck {
    use async_nats::jetstream::message::PublishMessage;
    let payload = bytes::Bytes::copy_from_slice(payload.as_bytes());
    until_ok(&format!("publish {id} to {subject}"), || async {
        let msg = PublishMessage::build()
            .message_id(id)
            .payload(payload.clone());
        js.send_publish(subject.to_string(), msg).await?.await
    })
    .await
}

/// The server name of stream `name`'s leader, once it has one: a stream's own Raft
/// group elects a moment after its creation returns (until then a publish finds no
/// responder, and nothing is stored).
pub async fn stream_leader(js: &async_nats::jetstream::Context, name: &str) -> String {
    until_ok(&format!("{name}'s leader"), || async {
        let s = js.get_stream(name).await.map_err(|e| e.to_string())?;
        s.cached_info()
            .cluster
            .as_ref()
            .and_then(|c| c.leader.clone())
            .filter(|l| !l.is_empty())
            .ok_or_else(|| "no leader yet".to_string())
    })
    .await
}

/// The known JetStream state several tests assert exactly: an R3 stream `ORDERS`
/// (subjects `orders.>`) with `published` messages, and a durable pull consumer
/// `billing` that has had `delivered` of them delivered and the first `acked` of those
/// acknowledged (each ack confirmed by the server, so the counts are settled). A new
/// consumer on a loaded machine may answer 503 for a moment; fetching goes on until
/// `delivered` arrive.
pub async fn orders_with_billing(
    js: &async_nats::jetstream::Context,
    published: usize,
    delivered: usize,
    acked: usize,
) -> (
    async_nats::jetstream::stream::Stream,
    async_nats::jetstream::consumer::Consumer<async_nats::jetstream::consumer::pull::Config>,
) {
    use async_nats::jetstream::{consumer::pull, stream};
    use futures::StreamExt;
    // Placement needs every peer's server stats at the meta leader, which reach it a
    // little after the election: until then creation fails with 10005 "no suitable
    // peers for placement, peer offline", and is tried again (as is a timeout).
    let config = stream::Config {
        name: "ORDERS".into(),
        subjects: vec!["orders.>".into()],
        num_replicas: 3,
        max_bytes: 1 << 30,
        max_messages: 1_000_000,
        ..Default::default()
    };
    let orders = create_stream(js, config).await;
    stream_leader(js, "ORDERS").await;
    for i in 0..published {
        publish_acked(
            js,
            &format!("orders.{}", i % 4),
            &format!("order {i}"),
            &format!("order-{i}"),
        )
        .await;
    }
    let billing = pull::Config {
        durable_name: Some("billing".into()),
        max_ack_pending: 500,
        ..Default::default()
    };
    let consumer = until_ok("create consumer billing", || {
        orders.create_consumer(billing.clone())
    })
    .await;
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < delivered {
        assert!(
            Instant::now() < deadline,
            "only {got} of {delivered} messages fetched"
        );
        let Ok(mut batch) = consumer
            .fetch()
            .max_messages(delivered - got)
            .messages()
            .await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        while let Some(m) = batch.next().await {
            let Ok(m) = m else { break };
            if got < acked {
                m.double_ack().await.unwrap();
            }
            got += 1;
        }
    }
    (orders, consumer)
}
