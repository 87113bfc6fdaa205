//! Synthetic nats-server monitoring endpoints (2.9.10- or 2.12.8-shaped) for benchmarks.
//!
//! Every node's responses are rendered once into `Bytes` when the cluster is
//! started; request handling only slices/concatenates pre-rendered fragments
//! (for `/connz` and `/jsz` paging) so the generator is not what a benchmark
//! measures.
//!
//! Topology: `nodes` servers named `n0..n{nodes-1}` in cluster `bench`, meta
//! leader `n0`. Streams are R3 (or R`nodes` when fewer than 3 nodes): stream
//! `i` is led by node `i % nodes` and replicated on the next `R-1` nodes, so
//! each node hosts `streams_per_node` streams whatever the cluster size.
//! Consumers are spread round-robin across streams; a consumer's leader is one
//! of its stream's peers, round-robin over them (so most consumers are led
//! elsewhere than their stream).
//!
//! [`Shape::V2_12`] follows a real 2.12.8 cluster's responses (fields added
//! since 2.9: raft groups, peer hashes, API levels, metadata, `total`, ...),
//! honours `stream-leader-only=true` (only streams this node leads, each with
//! all its consumers; a consumer led elsewhere shows this node's replica view,
//! `num_pending` 0, as real servers do) and has unfiltered consumers on streams
//! without interior deletes, so a reader can derive pending from the stream.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Serialize;

pub const CLUSTER: &str = "bench";
/// Which nats-server release the responses imitate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    V2_9,
    V2_12,
}

impl Shape {
    pub fn version(self) -> &'static str {
        match self {
            Shape::V2_9 => "2.9.10",
            Shape::V2_12 => "2.12.8",
        }
    }
    fn v12(self) -> bool {
        self == Shape::V2_12
    }
}
/// Unix seconds of the synthetic "now" (2024-05-01T12:00:00Z).
const BASE_SECS: i64 = 1_714_564_800;

/// Scale parameters, expressed per node.
#[derive(Clone, Debug)]
pub struct SynthScale {
    pub nodes: usize,
    pub conns_per_node: usize,
    /// Streams hosted (as leader or follower) by each node.
    pub streams_per_node: usize,
    /// Consumers hosted (as leader or follower) by each node.
    pub consumers_per_node: usize,
    pub accounts: usize,
    pub shape: Shape,
}

impl SynthScale {
    pub fn replicas(&self) -> usize {
        self.nodes.min(3)
    }
    /// Total distinct streams in the cluster.
    pub fn total_streams(&self) -> usize {
        self.streams_per_node * self.nodes / self.replicas()
    }
    /// Total distinct consumers in the cluster.
    pub fn total_consumers(&self) -> usize {
        self.consumers_per_node * self.nodes / self.replicas()
    }
    /// Nodes hosting stream `i`, leader first.
    pub fn stream_peers(&self, i: usize) -> Vec<usize> {
        let leader = i % self.nodes;
        (0..self.replicas())
            .map(|k| (leader + k) % self.nodes)
            .collect()
    }
    pub fn stream_account(&self, i: usize) -> usize {
        i % self.accounts
    }
    /// (streams, consumers) hosted by `node` — what its `/jsz` lists.
    pub fn hosted_counts(&self, node: usize) -> (usize, usize) {
        let s = self.total_streams();
        let hosted: Vec<bool> = (0..s)
            .map(|i| self.stream_peers(i).contains(&node))
            .collect();
        let streams = hosted.iter().filter(|h| **h).count();
        let consumers = (0..self.total_consumers())
            .filter(|j| hosted[j % s])
            .count();
        (streams, consumers)
    }
}

pub fn server_name(n: usize) -> String {
    format!("n{n}")
}

pub fn account_name(a: usize) -> String {
    format!("ACC{a:03}")
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// 56-character, base32-alphabet server id starting with `N`, like nkeys.
pub fn server_id(n: usize) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut s = String::with_capacity(56);
    s.push('N');
    let mut state = n as u64 + 0xABCD;
    while s.len() < 56 {
        state = splitmix(state);
        let mut v = state;
        for _ in 0..12 {
            if s.len() == 56 {
                break;
            }
            s.push(ALPHA[(v & 31) as usize] as char);
            v >>= 5;
        }
    }
    s
}

/// 8-character peer hash (nats uses a hash of the server name).
fn peer_hash(n: usize) -> String {
    let v = splitmix(n as u64 ^ 0x5EED);
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..8)
        .map(|k| ALPHA[((v >> (k * 6)) % 62) as usize] as char)
        .collect()
}

/// RFC 3339 with nanoseconds trimmed like Go's `time.RFC3339Nano`.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // civil_from_days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

fn ts_ago(secs_ago: i64, salt: u64) -> String {
    // always strictly before the synthetic `now`
    rfc3339(
        BASE_SECS - 1 - secs_ago,
        (splitmix(salt) % 1_000_000_000) as u32,
    )
}

fn now_str() -> String {
    rfc3339(BASE_SECS, 123_456_789)
}

fn go_dur(secs: u64) -> String {
    // nats "myUptime" style: 1d2h3m4s
    let (d, h, m, s) = (
        secs / 86_400,
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
    );
    let mut out = String::new();
    if d > 0 {
        out.push_str(&format!("{d}d"));
    }
    if d > 0 || h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if d > 0 || h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}s"));
    out
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(v: &u64) -> bool {
    *v == 0
}

// ---------------------------------------------------------------- JSON shapes

#[derive(Serialize)]
struct ApiStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<u32>,
    total: u64,
    errors: u64,
}

#[derive(Serialize)]
struct PeerInfo {
    name: String,
    current: bool,
    #[serde(skip_serializing_if = "is_false")]
    offline: bool,
    active: u64,
    #[serde(skip_serializing_if = "is_zero")]
    lag: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<String>,
}

#[derive(Serialize)]
struct ClusterInfo {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    raft_group: Option<String>,
    leader: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    leader_since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_account: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traffic_account: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    replicas: Vec<PeerInfo>,
}

#[derive(Serialize)]
struct MetaClusterInfo {
    name: &'static str,
    leader: String,
    peer: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    replicas: Vec<PeerInfo>,
    cluster_size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<MetaSnapshot>,
}

#[derive(Serialize)]
struct MetaSnapshot {
    pending_entries: u64,
    pending_size: u64,
    last_time: String,
    last_duration: u64,
}

/// Serializes as `{}`, as 2.12 does for empty `limits` and `consumer_limits`.
#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Metadata {
    #[serde(rename = "_nats.level")]
    level: &'static str,
    #[serde(rename = "_nats.req.level")]
    req_level: &'static str,
    #[serde(rename = "_nats.ver")]
    ver: &'static str,
}

fn metadata() -> Metadata {
    Metadata {
        level: "1",
        req_level: "0",
        ver: "2.12.8",
    }
}

#[derive(Serialize)]
struct JsConfig {
    max_memory: i64,
    max_storage: i64,
    store_dir: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_interval: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compress_ok: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
struct JsStats {
    memory: u64,
    storage: u64,
    reserved_memory: u64,
    reserved_storage: u64,
    accounts: usize,
    ha_assets: usize,
    api: ApiStats,
}

#[derive(Serialize)]
struct VarzCluster {
    name: &'static str,
    addr: &'static str,
    cluster_port: u16,
    auth_timeout: u32,
    urls: Vec<String>,
}

#[derive(Serialize)]
struct VarzJetStream {
    config: JsConfig,
    stats: JsStats,
    meta: MetaClusterInfo,
}

#[derive(Serialize)]
struct Varz {
    server_id: String,
    server_name: String,
    version: &'static str,
    proto: u32,
    git_commit: &'static str,
    go: &'static str,
    host: &'static str,
    port: u16,
    max_connections: u64,
    ping_interval: u64,
    ping_max: u32,
    http_host: &'static str,
    http_port: u16,
    max_payload: u64,
    max_pending: u64,
    cluster: VarzCluster,
    jetstream: VarzJetStream,
    start: String,
    now: String,
    uptime: String,
    mem: u64,
    cores: u32,
    gomaxprocs: u32,
    cpu: f64,
    connections: usize,
    total_connections: u64,
    routes: usize,
    remotes: usize,
    leafnodes: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    slow_consumers: u64,
    subscriptions: u64,
    http_req_stats: HashMap<&'static str, u64>,
    config_load_time: String,
    system_account: &'static str,
}

#[derive(Serialize)]
struct ConnInfo {
    cid: u64,
    kind: &'static str,
    #[serde(rename = "type")]
    typ: &'static str,
    ip: String,
    port: u16,
    start: String,
    last_activity: String,
    rtt: String,
    uptime: String,
    idle: String,
    pending_bytes: u64,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: u32,
    name: String,
    lang: &'static str,
    version: &'static str,
    account: String,
}

#[derive(Serialize)]
struct ConnzHeader<'a> {
    server_id: &'a str,
    now: &'a str,
    num_connections: usize,
    total: usize,
    offset: usize,
    limit: usize,
}

#[derive(Serialize)]
struct StreamConfig {
    name: String,
    subjects: Vec<String>,
    retention: &'static str,
    max_consumers: i64,
    max_msgs: i64,
    max_bytes: i64,
    max_age: i64,
    max_msgs_per_subject: i64,
    max_msg_size: i64,
    discard: &'static str,
    storage: &'static str,
    num_replicas: usize,
    duplicate_window: u64,
    sealed: bool,
    deny_delete: bool,
    deny_purge: bool,
    allow_rollup_hdrs: bool,
    allow_direct: bool,
    mirror_direct: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    compression: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_limits: Option<Empty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_msg_ttl: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata>,
}

#[derive(Serialize)]
struct StreamState {
    messages: u64,
    bytes: u64,
    first_seq: u64,
    first_ts: String,
    last_seq: u64,
    last_ts: String,
    #[serde(skip_serializing_if = "is_zero")]
    num_subjects: u64,
    #[serde(skip_serializing_if = "is_zero")]
    num_deleted: u64,
    consumer_count: usize,
}

#[derive(Serialize)]
struct SequenceInfo {
    consumer_seq: u64,
    stream_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_active: Option<String>,
}

#[derive(Serialize)]
struct ConsumerConfig {
    durable_name: String,
    name: String,
    deliver_policy: &'static str,
    ack_policy: &'static str,
    ack_wait: u64,
    max_deliver: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_subject: Option<String>,
    replay_policy: &'static str,
    max_waiting: u32,
    max_ack_pending: u32,
    num_replicas: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata>,
}

#[derive(Serialize)]
struct ConsumerInfo {
    stream_name: String,
    name: String,
    created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<ConsumerConfig>,
    delivered: SequenceInfo,
    ack_floor: SequenceInfo,
    num_ack_pending: u64,
    num_redelivered: u64,
    num_waiting: u64,
    num_pending: u64,
    cluster: ClusterInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<String>,
}

#[derive(Serialize)]
struct StreamDetail {
    name: String,
    created: String,
    cluster: ClusterInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<StreamConfig>,
    state: StreamState,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_detail: Option<Vec<ConsumerInfo>>,
}

#[derive(Serialize)]
struct AccountDetail {
    name: String,
    id: String,
    memory: u64,
    storage: u64,
    reserved_memory: u64,
    reserved_storage: u64,
    accounts: usize,
    ha_assets: usize,
    api: ApiStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_detail: Option<Vec<StreamDetail>>,
}

#[derive(Serialize)]
struct Jsz {
    server_id: String,
    now: String,
    config: JsConfig,
    memory: u64,
    storage: u64,
    reserved_memory: u64,
    reserved_storage: u64,
    accounts: usize,
    ha_assets: usize,
    api: ApiStats,
    streams: usize,
    consumers: usize,
    messages: u64,
    bytes: u64,
    meta_cluster: MetaClusterInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<Empty>,
}

#[derive(Serialize)]
struct RouteInfo {
    rid: u64,
    remote_id: String,
    did_solicit: bool,
    is_configured: bool,
    ip: String,
    port: u16,
    start: String,
    last_activity: String,
    rtt: String,
    uptime: String,
    idle: String,
    pending_size: u64,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: u64,
}

#[derive(Serialize)]
struct Routez {
    server_id: String,
    now: String,
    num_routes: usize,
    routes: Vec<RouteInfo>,
}

#[derive(Serialize)]
struct DataStats {
    msgs: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct AccountStat {
    acc: String,
    conns: usize,
    leafnodes: usize,
    total_conns: usize,
    sent: DataStats,
    received: DataStats,
    slow_consumers: u64,
}

#[derive(Serialize)]
struct Accstatz<'a> {
    server_id: &'a str,
    now: &'a str,
    account_statz: &'a [AccountStat],
}

#[derive(Serialize)]
struct Subsz {
    num_subscriptions: u64,
    num_cache: u64,
    num_inserts: u64,
    num_removes: u64,
    num_matches: u64,
    cache_hit_rate: f64,
    max_fanout: u32,
    avg_fanout: f64,
}

// ------------------------------------------------------------- node rendering

/// jsz detail level: index into per-node variant caches.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct JszLevel {
    accounts: bool,
    streams: bool,
    consumers: bool,
    config: bool,
    /// `stream-leader-only=true` (2.12 shape only; 2.9 ignores the parameter).
    leader_only: bool,
}

impl JszLevel {
    fn normalize(mut self) -> Self {
        // consumers implies streams implies accounts
        if self.consumers {
            self.streams = true;
        }
        if self.streams {
            self.accounts = true;
        }
        if !self.streams {
            self.config = false;
            self.leader_only = false;
        }
        self
    }
    fn index(self) -> usize {
        let l = self.normalize();
        let filtered = if l.leader_only { 6 } else { 0 };
        filtered
            + match (l.accounts, l.streams, l.consumers, l.config) {
                (false, ..) => 0,
                (true, false, ..) => 1,
                (true, true, false, false) => 2,
                (true, true, false, true) => 3,
                (true, true, true, false) => 4,
                (true, true, true, true) => 5,
            }
    }
    const FULL: JszLevel = JszLevel {
        accounts: true,
        streams: true,
        consumers: true,
        config: true,
        leader_only: false,
    };
}

struct JszVariant {
    /// Per-account `account_details[]` element (accounts sorted by name).
    accounts: Vec<Bytes>,
    /// Whole response for offset=0 and limit >= #accounts.
    full: Bytes,
}

pub struct NodeData {
    pub index: usize,
    pub name: String,
    pub id: String,
    scale: SynthScale,
    varz: Bytes,
    routez: Bytes,
    healthz: Bytes,
    subsz: Bytes,
    accstatz_all: Bytes,
    accstatz_used: Bytes,
    /// `/jsz` top-level object, serialized (ends with `}`).
    jsz_head: Vec<u8>,
    jsz: [OnceLock<JszVariant>; 12],
    /// Connection objects joined by `,`; `conn_starts[k]` is where conn k
    /// starts, with a sentinel `buf.len()+1` at the end.
    conn_buf: Bytes,
    conn_starts: Vec<usize>,
}

impl NodeData {
    fn build(scale: &SynthScale, n: usize) -> NodeData {
        let name = server_name(n);
        let id = server_id(n);
        let now = now_str();
        let nodes = scale.nodes;
        let k = scale.conns_per_node;

        // ---- connections
        let mut conn_buf = Vec::with_capacity(k * 480);
        let mut conn_starts = Vec::with_capacity(k + 1);
        let mut per_acc_conns = vec![0usize; scale.accounts];
        for c in 0..k {
            if c > 0 {
                conn_buf.push(b',');
            }
            conn_starts.push(conn_buf.len());
            let salt = (n as u64) << 32 | c as u64;
            let r = splitmix(salt);
            let acc = c % scale.accounts;
            per_acc_conns[acc] += 1;
            let up = 3600 + (r % 86_400);
            let ci = ConnInfo {
                cid: 5 + c as u64,
                kind: "Client",
                typ: "nats",
                ip: format!("10.{}.{}.{}", n % 250, (c >> 8) & 255, c & 255),
                port: 30_000 + (c % 30_000) as u16,
                start: ts_ago(up as i64, salt),
                last_activity: ts_ago((r % 5) as i64, salt ^ 1),
                rtt: format!("{}.{}ms", 1 + r % 3, r % 10),
                uptime: go_dur(up),
                idle: go_dur(r % 5),
                pending_bytes: 0,
                in_msgs: r % 1_000_000,
                out_msgs: (r >> 20) % 1_000_000,
                in_bytes: (r % 1_000_000) * 128,
                out_bytes: ((r >> 20) % 1_000_000) * 128,
                subscriptions: (1 + r % 5) as u32,
                name: format!("svc-{}-{}", acc, c),
                lang: "go",
                version: "1.30.0",
                account: account_name(acc),
            };
            serde_json::to_writer(&mut conn_buf, &ci).unwrap();
        }
        conn_starts.push(conn_buf.len() + 1);

        // ---- jsz totals (from hosted streams)
        let s_total = scale.total_streams();
        let c_total = scale.total_consumers();
        let mut hosted_streams = 0usize;
        let mut hosted_consumers = 0usize;
        let mut msgs = 0u64;
        let mut bytes_ = 0u64;
        let mut js_accounts = vec![false; scale.accounts];
        for i in 0..s_total {
            if scale.stream_peers(i).contains(&n) {
                hosted_streams += 1;
                let (m, b) = stream_msgs(i);
                msgs += m;
                bytes_ += b;
                js_accounts[scale.stream_account(i)] = true;
                hosted_consumers += consumers_of_stream(scale, i).len();
            }
        }
        let _ = c_total;
        let v12 = scale.shape.v12();
        let js_acc_count = js_accounts.iter().filter(|x| **x).count();
        let meta = || MetaClusterInfo {
            name: CLUSTER,
            leader: server_name(0),
            peer: peer_hash(0),
            replicas: if n == 0 {
                (1..nodes)
                    .map(|p| PeerInfo {
                        name: server_name(p),
                        current: true,
                        offline: false,
                        active: 150_000_000 + p as u64 * 1_000,
                        lag: 0,
                        peer: v12.then(|| peer_hash(p)),
                    })
                    .collect()
            } else {
                vec![]
            },
            cluster_size: nodes,
            pending: v12.then_some(0),
            snapshot: v12.then(|| MetaSnapshot {
                pending_entries: 3,
                pending_size: 1342,
                last_time: ts_ago(60, 0x5A),
                last_duration: 1_873_423,
            }),
        };
        let js_config = || JsConfig {
            max_memory: 6_442_450_944,
            max_storage: 1_099_511_627_776,
            store_dir: "/data/jetstream".into(),
            sync_interval: v12.then_some(120_000_000_000),
            compress_ok: v12.then_some(true),
            strict: v12.then_some(true),
        };
        let api = || ApiStats {
            level: v12.then_some(3),
            total: 1_000_000 + n as u64,
            errors: 17,
        };
        let ha = hosted_streams + hosted_consumers + 1;

        let uptime_secs = 3 * 86_400 + 3723;
        let varz = Varz {
            server_id: id.clone(),
            server_name: name.clone(),
            version: scale.shape.version(),
            proto: 1,
            git_commit: if v12 { "b692325" } else { "7cb0d9a" },
            go: if v12 { "go1.26.2" } else { "go1.19.4" },
            host: "0.0.0.0",
            port: 4222,
            max_connections: 65_536,
            ping_interval: 120_000_000_000,
            ping_max: 2,
            http_host: "0.0.0.0",
            http_port: 8222,
            max_payload: 1_048_576,
            max_pending: 67_108_864,
            cluster: VarzCluster {
                name: CLUSTER,
                addr: "0.0.0.0",
                cluster_port: 6222,
                auth_timeout: 2,
                urls: (0..nodes)
                    .filter(|p| *p != n)
                    .map(|p| format!("{}:6222", server_name(p)))
                    .collect(),
            },
            jetstream: VarzJetStream {
                config: js_config(),
                stats: JsStats {
                    memory: 0,
                    storage: bytes_,
                    reserved_memory: 0,
                    reserved_storage: 0,
                    accounts: js_acc_count,
                    ha_assets: ha,
                    api: api(),
                },
                meta: meta(),
            },
            start: ts_ago(uptime_secs as i64, n as u64),
            now: now.clone(),
            uptime: go_dur(uptime_secs),
            mem: 512 * 1024 * 1024 + n as u64 * 4096,
            cores: 8,
            gomaxprocs: 8,
            cpu: 12.5,
            connections: k,
            total_connections: k as u64 * 3 + 17,
            routes: nodes - 1,
            remotes: nodes - 1,
            leafnodes: 0,
            in_msgs: 123_456_789 + n as u64,
            out_msgs: 987_654_321 + n as u64,
            in_bytes: 12_345_678_901,
            out_bytes: 98_765_432_109,
            slow_consumers: 3,
            subscriptions: k as u64 * 3 + 250,
            http_req_stats: HashMap::from([("/varz", 1000), ("/jsz", 1000), ("/connz", 1000)]),
            config_load_time: ts_ago(uptime_secs as i64, 99),
            system_account: "$SYS",
        };
        let varz = if v12 {
            Bytes::from(serde_json::to_vec(&varz_2_12(varz, n, nodes, k)).unwrap())
        } else {
            Bytes::from(serde_json::to_vec(&varz).unwrap())
        };

        let jsz_head = serde_json::to_vec(&Jsz {
            server_id: id.clone(),
            now: now.clone(),
            config: js_config(),
            memory: 0,
            storage: bytes_,
            reserved_memory: 0,
            reserved_storage: 0,
            accounts: js_acc_count,
            ha_assets: ha,
            api: api(),
            streams: hosted_streams,
            consumers: hosted_consumers,
            messages: msgs,
            bytes: bytes_,
            meta_cluster: meta(),
            limits: v12.then_some(Empty {}),
        })
        .unwrap();

        let routez = Routez {
            server_id: id.clone(),
            now: now.clone(),
            num_routes: nodes - 1,
            routes: (0..nodes)
                .filter(|p| *p != n)
                .map(|p| RouteInfo {
                    rid: 1 + p as u64,
                    remote_id: server_id(p),
                    did_solicit: p < n,
                    is_configured: p < n,
                    ip: format!("10.0.0.{}", p + 1),
                    port: 6222,
                    start: ts_ago(uptime_secs as i64 - 5, p as u64),
                    last_activity: ts_ago(0, p as u64 + 7),
                    rtt: "412µs".into(),
                    uptime: go_dur(uptime_secs - 5),
                    idle: "0s".into(),
                    pending_size: 0,
                    in_msgs: 1_000_000 + p as u64,
                    out_msgs: 2_000_000 + p as u64,
                    in_bytes: 300_000_000,
                    out_bytes: 600_000_000,
                    subscriptions: 300,
                })
                .collect(),
        };
        let routez = Bytes::from(serde_json::to_vec(&routez).unwrap());

        let mut stats: Vec<AccountStat> = Vec::new();
        let mut names: Vec<(String, usize)> = (0..scale.accounts)
            .map(|a| (account_name(a), per_acc_conns[a]))
            .collect();
        names.push(("$G".into(), 0));
        names.push(("$SYS".into(), 0));
        for (acc, conns) in names {
            stats.push(AccountStat {
                acc,
                conns,
                leafnodes: 0,
                total_conns: conns,
                sent: DataStats {
                    msgs: conns as u64 * 1000,
                    bytes: conns as u64 * 128_000,
                },
                received: DataStats {
                    msgs: conns as u64 * 900,
                    bytes: conns as u64 * 115_200,
                },
                slow_consumers: 0,
            });
        }
        let accstatz_all = Bytes::from(
            serde_json::to_vec(&Accstatz {
                server_id: &id,
                now: &now,
                account_statz: &stats,
            })
            .unwrap(),
        );
        let used: Vec<AccountStat> = stats.into_iter().filter(|s| s.conns > 0).collect();
        let accstatz_used = Bytes::from(
            serde_json::to_vec(&Accstatz {
                server_id: &id,
                now: &now,
                account_statz: &used,
            })
            .unwrap(),
        );

        let subsz = Bytes::from(
            serde_json::to_vec(&Subsz {
                num_subscriptions: k as u64 * 3 + 250,
                num_cache: 4096,
                num_inserts: k as u64 * 4,
                num_removes: k as u64,
                num_matches: 77_777_777,
                cache_hit_rate: 0.9731,
                max_fanout: 12,
                avg_fanout: 1.7,
            })
            .unwrap(),
        );

        let node = NodeData {
            index: n,
            name,
            id,
            scale: scale.clone(),
            varz,
            routez,
            healthz: Bytes::from_static(br#"{"status":"ok"}"#),
            subsz,
            accstatz_all,
            accstatz_used,
            jsz_head,
            jsz: Default::default(),
            conn_buf: Bytes::from(conn_buf),
            conn_starts,
        };
        // Pre-render what an exporter asks for; other levels render lazily.
        node.jsz_variant(JszLevel::FULL);
        node.jsz_variant(JszLevel {
            accounts: false,
            streams: false,
            consumers: false,
            config: false,
            leader_only: false,
        });
        if scale.shape.v12() {
            // natsmon's reads of a 2.10.19+ node: filtered, configs only when due, and
            // whole without configs where the render asks for it.
            for (config, leader_only) in [(false, false), (true, true), (false, true)] {
                node.jsz_variant(JszLevel {
                    config,
                    leader_only,
                    ..JszLevel::FULL
                });
            }
        }
        node
    }

    fn jsz_variant(&self, level: JszLevel) -> &JszVariant {
        let level = level.normalize();
        self.jsz[level.index()].get_or_init(|| self.render_jsz(level))
    }

    fn render_jsz(&self, level: JszLevel) -> JszVariant {
        let scale = &self.scale;
        let n = self.index;
        let mut accounts = Vec::new();
        if level.accounts {
            let s_total = scale.total_streams();
            let mut per_acc: Vec<Vec<usize>> = vec![Vec::new(); scale.accounts];
            for i in 0..s_total {
                if scale.stream_peers(i).contains(&n) {
                    per_acc[scale.stream_account(i)].push(i);
                }
            }
            let v12 = scale.shape.v12();
            // accounts sorted by name; account_name() is zero padded.
            for (a, streams) in per_acc.iter().enumerate() {
                if streams.is_empty() {
                    continue;
                }
                let storage: u64 = streams.iter().map(|i| stream_msgs(*i).1).sum();
                let detail = AccountDetail {
                    name: account_name(a),
                    id: account_name(a),
                    memory: 0,
                    storage,
                    reserved_memory: 0,
                    reserved_storage: 0,
                    accounts: 0,
                    ha_assets: 0,
                    api: ApiStats {
                        level: v12.then_some(0),
                        total: 10_000 + a as u64,
                        errors: a as u64,
                    },
                    // The account stays listed when the filter leaves it no stream, as
                    // on 2.12, with `stream_detail` omitted (omitempty).
                    stream_detail: Some(
                        streams
                            .iter()
                            .filter(|i| !level.leader_only || scale.stream_peers(**i)[0] == n)
                            .map(|i| stream_detail(scale, n, *i, level))
                            .collect::<Vec<_>>(),
                    )
                    .filter(|d| level.streams && !d.is_empty()),
                };
                accounts.push(Bytes::from(serde_json::to_vec(&detail).unwrap()));
            }
        }
        let full = Bytes::from(self.assemble_jsz(level, &accounts, 0, usize::MAX));
        JszVariant { accounts, full }
    }

    fn assemble_jsz(
        &self,
        level: JszLevel,
        accounts: &[Bytes],
        offset: usize,
        limit: usize,
    ) -> Vec<u8> {
        if !level.accounts {
            return self.jsz_head.clone();
        }
        let start = offset.min(accounts.len());
        let end = start.saturating_add(limit).min(accounts.len());
        let page = &accounts[start..end];
        let len: usize = page.iter().map(|b| b.len() + 1).sum();
        let mut out = Vec::with_capacity(self.jsz_head.len() + len + 32);
        out.extend_from_slice(&self.jsz_head[..self.jsz_head.len() - 1]);
        out.extend_from_slice(b",\"account_details\":[");
        for (k, b) in page.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b);
        }
        out.push(b']');
        if self.scale.shape.v12() {
            // 2.10.28+ say how many accounts there are in all.
            out.extend_from_slice(format!(",\"total\":{}", accounts.len()).as_bytes());
        }
        out.push(b'}');
        out
    }

    fn connz(&self, offset: usize, limit: usize) -> Vec<u8> {
        let total = self.conn_starts.len() - 1;
        let start = offset.min(total);
        let end = start.saturating_add(limit).min(total);
        let now = now_str();
        let head = serde_json::to_vec(&ConnzHeader {
            server_id: &self.id,
            now: &now,
            num_connections: end - start,
            total,
            offset,
            limit,
        })
        .unwrap();
        let body = if end > start {
            &self.conn_buf[self.conn_starts[start]..self.conn_starts[end] - 1]
        } else {
            &[][..]
        };
        let mut out = Vec::with_capacity(head.len() + body.len() + 20);
        out.extend_from_slice(&head[..head.len() - 1]);
        out.extend_from_slice(b",\"connections\":[");
        out.extend_from_slice(body);
        out.extend_from_slice(b"]}");
        out
    }

    /// Size in bytes of every pre-rendered default response (for reporting).
    pub fn prerendered_bytes(&self) -> usize {
        self.varz.len()
            + self.routez.len()
            + self.subsz.len()
            + self.accstatz_all.len()
            + self.conn_buf.len()
            + self
                .jsz
                .iter()
                .filter_map(|v| v.get())
                .map(|v| v.full.len())
                .sum::<usize>()
    }
}

/// `/varz` with what 2.12.8 adds to 2.9's (small, so merged as a `Value`).
fn varz_2_12(varz: Varz, n: usize, nodes: usize, conns: usize) -> serde_json::Value {
    let mut v = serde_json::to_value(varz).unwrap();
    let o = v.as_object_mut().unwrap();
    let zeros = || serde_json::json!({"clients": 0, "routes": 0, "gateways": 0, "leafs": 0});
    let extra = serde_json::json!({
        "connect_urls": (0..nodes).map(|p| format!("10.0.0.{}:4222", p + 1)).collect::<Vec<_>>(),
        "auth_timeout": 2,
        "max_control_line": 4096,
        "http_base_path": "",
        "https_port": 0,
        "gateway": {},
        "leaf": {},
        "mqtt": {},
        "websocket": {},
        "tls_timeout": 2,
        "write_deadline": 10_000_000_000u64,
        "in_client_msgs": 61_000_000 + n,
        "in_client_bytes": 5_126_000_000u64,
        "out_client_msgs": 38_000_000 + n,
        "out_client_bytes": 4_907_000_000u64,
        "stale_connections": 0,
        "stalled_clients": 0,
        "config_digest": "sha256:6f1c0e3a9b5d47e2c8a1f0d9b3e7c6a5d4f2e1b0c9a8d7e6f5a4b3c2d1e0f9a8",
        "slow_consumer_stats": zeros(),
        "stale_connection_stats": zeros(),
        "disk_io_wait_stats": {"waiters": 0, "waits": 0, "wait_time": 0, "max_wait_time": 0},
    });
    o.extend(extra.as_object().unwrap().clone());
    o["routes"] = serde_json::json!((nodes - 1) * 4);
    o["subscriptions"] = serde_json::json!(conns * 3 + 250);
    let js = o["jetstream"].as_object_mut().unwrap();
    js.insert("limits".into(), serde_json::json!({}));
    js["stats"]["api"]["inflight"] = serde_json::json!(1);
    js["meta"]["snapshot"] = serde_json::Value::Null;
    v
}

fn stream_msgs(i: usize) -> (u64, u64) {
    let m = 1_000 + (splitmix(i as u64) % 100_000);
    (m, m * 256 + 37)
}

fn consumers_of_stream(scale: &SynthScale, i: usize) -> Vec<usize> {
    let s = scale.total_streams();
    (i..scale.total_consumers()).step_by(s.max(1)).collect()
}

fn replicas_except(scale: &SynthScale, peers: &[usize], me: usize, salt: u64) -> Vec<PeerInfo> {
    peers
        .iter()
        .filter(|p| **p != me)
        .map(|p| {
            let r = splitmix(salt ^ (*p as u64) << 40);
            let lagging = r.is_multiple_of(20);
            PeerInfo {
                name: server_name(*p),
                current: !lagging,
                offline: false,
                active: 100_000 + r % 900_000_000,
                lag: if lagging { 1 + r % 50 } else { 0 },
                peer: scale.shape.v12().then(|| peer_hash(*p)),
            }
        })
        .collect()
}

/// A 2.12 raft group name (`S-R3F-xxxxxxxx`, `C-R3F-...`).
fn raft_group(kind: char, replicas: usize, salt: u64) -> String {
    format!("{kind}-R{replicas}F-{}", &peer_hash(salt as usize ^ 0x7A11))
}

fn cluster_info(
    scale: &SynthScale,
    peers: &[usize],
    leader: usize,
    me: usize,
    kind: char,
    salt: u64,
) -> ClusterInfo {
    let v12 = scale.shape.v12();
    ClusterInfo {
        name: CLUSTER.into(),
        raft_group: v12.then(|| raft_group(kind, peers.len(), salt)),
        leader: server_name(leader),
        // Only the leader itself knows when it took over.
        leader_since: (v12 && leader == me).then(|| ts_ago(3600, salt ^ 0x1EAD)),
        system_account: v12.then_some(true),
        traffic_account: v12.then_some("$SYS"),
        replicas: replicas_except(scale, peers, me, salt),
    }
}

fn stream_detail(scale: &SynthScale, me: usize, i: usize, level: JszLevel) -> StreamDetail {
    let v12 = scale.shape.v12();
    let peers = scale.stream_peers(i);
    let name = format!("STREAM_{i:05}");
    let (msgs, bytes_) = stream_msgs(i);
    let consumers = consumers_of_stream(scale, i);
    let salt = (i as u64) << 8 | me as u64;
    StreamDetail {
        name: name.clone(),
        created: ts_ago(86_400 * 2 + i as i64, i as u64),
        cluster: cluster_info(scale, &peers, peers[0], me, 'S', salt),
        config: level.config.then(|| StreamConfig {
            name: name.clone(),
            subjects: vec![format!("bench.s{i}.>")],
            retention: "limits",
            max_consumers: -1,
            max_msgs: -1,
            max_bytes: 1_073_741_824,
            max_age: 0,
            max_msgs_per_subject: -1,
            max_msg_size: -1,
            discard: "old",
            storage: "file",
            num_replicas: scale.replicas(),
            duplicate_window: 120_000_000_000,
            sealed: false,
            deny_delete: false,
            deny_purge: false,
            allow_rollup_hdrs: false,
            allow_direct: false,
            mirror_direct: false,
            compression: v12.then_some("none"),
            consumer_limits: v12.then_some(Empty {}),
            allow_msg_ttl: v12.then_some(false),
            metadata: v12.then(metadata),
        }),
        state: StreamState {
            messages: msgs,
            bytes: bytes_,
            first_seq: 1,
            first_ts: ts_ago(86_400, i as u64 + 1),
            last_seq: msgs,
            last_ts: ts_ago((i % 60) as i64, i as u64 + 2),
            num_subjects: 1 + (i as u64 % 10),
            num_deleted: 0,
            consumer_count: consumers.len(),
        },
        consumer_detail: level.consumers.then(|| {
            consumers
                .iter()
                .enumerate()
                .map(|(k, j)| {
                    let cname = format!("C{j:06}");
                    let r = splitmix(*j as u64);
                    let delivered = msgs - (r % 100).min(msgs);
                    let ack = delivered - (r % 7).min(delivered);
                    let leader = peers[k % peers.len()];
                    ConsumerInfo {
                        stream_name: name.clone(),
                        name: cname.clone(),
                        created: ts_ago(86_400 + *j as i64, *j as u64),
                        config: level.config.then(|| ConsumerConfig {
                            durable_name: cname.clone(),
                            name: cname.clone(),
                            deliver_policy: "all",
                            ack_policy: "explicit",
                            ack_wait: 30_000_000_000,
                            max_deliver: -1,
                            // 2.12-shaped consumers read the whole stream, so pending
                            // is derivable from a replica's report.
                            filter_subject: (!v12).then(|| format!("bench.s{i}.{k}")),
                            replay_policy: "instant",
                            max_waiting: 512,
                            max_ack_pending: 1000,
                            num_replicas: 0,
                            metadata: v12.then(metadata),
                        }),
                        delivered: SequenceInfo {
                            consumer_seq: delivered,
                            stream_seq: delivered,
                            last_active: Some(ts_ago((r % 30) as i64, r)),
                        },
                        ack_floor: SequenceInfo {
                            consumer_seq: ack,
                            stream_seq: ack,
                            last_active: Some(ts_ago((r % 30) as i64 + 1, r ^ 3)),
                        },
                        num_ack_pending: delivered - ack,
                        num_redelivered: r % 3,
                        num_waiting: r % 4,
                        // A replica does not count pending messages (real 2.10+ servers
                        // report 0 where they do not lead the consumer).
                        num_pending: if !v12 || leader == me {
                            msgs - delivered
                        } else {
                            0
                        },
                        cluster: cluster_info(scale, &peers, leader, me, 'C', r),
                        ts: v12.then(now_str),
                    }
                })
                .collect()
        }),
    }
}

// ----------------------------------------------------------------- HTTP serve

/// Go `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn parse_query(q: &Option<String>) -> HashMap<String, String> {
    let mut m = HashMap::new();
    if let Some(q) = q {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            m.insert(k.to_string(), v.to_string());
        }
    }
    m
}

fn json(body: impl Into<Bytes>) -> Response {
    let mut r = (StatusCode::OK, body.into()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

fn bad_request(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, msg).into_response()
}

fn q_bool(q: &HashMap<String, String>, key: &str) -> Result<bool, String> {
    match q.get(key) {
        None => Ok(false),
        Some(v) if v.is_empty() => Ok(false),
        Some(v) => {
            parse_bool(v).ok_or_else(|| format!("strconv.ParseBool: parsing {v:?}: invalid syntax"))
        }
    }
}

fn q_int(q: &HashMap<String, String>, key: &str) -> Result<i64, String> {
    match q.get(key) {
        None => Ok(0),
        Some(v) if v.is_empty() => Ok(0),
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| format!("strconv.Atoi: parsing {v:?}: invalid syntax")),
    }
}

async fn h_varz(State(n): State<Arc<NodeData>>) -> Response {
    json(n.varz.clone())
}
async fn h_routez(State(n): State<Arc<NodeData>>) -> Response {
    json(n.routez.clone())
}
async fn h_healthz(State(n): State<Arc<NodeData>>) -> Response {
    json(n.healthz.clone())
}
async fn h_subsz(State(n): State<Arc<NodeData>>) -> Response {
    json(n.subsz.clone())
}
async fn h_accstatz(State(n): State<Arc<NodeData>>, RawQuery(q): RawQuery) -> Response {
    let q = parse_query(&q);
    match q_bool(&q, "unused") {
        Ok(true) => json(n.accstatz_all.clone()),
        Ok(false) => json(n.accstatz_used.clone()),
        Err(e) => bad_request(e),
    }
}
async fn h_connz(State(n): State<Arc<NodeData>>, RawQuery(q): RawQuery) -> Response {
    let q = parse_query(&q);
    let (offset, limit) = match (q_int(&q, "offset"), q_int(&q, "limit")) {
        (Ok(o), Ok(l)) => (o.max(0) as usize, if l <= 0 { 1024 } else { l as usize }),
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    // `sort=pending` (natsmon's one-page read) needs no reordering: every synthetic
    // connection has 0 pending bytes, so cid order is already a valid answer.
    match q.get("sort").map(String::as_str) {
        None | Some("" | "cid" | "pending") => {}
        Some(other) => return bad_request(format!("invalid sorting option: {other}")),
    }
    json(n.connz(offset, limit))
}
async fn h_jsz(State(n): State<Arc<NodeData>>, RawQuery(q): RawQuery) -> Response {
    let q = parse_query(&q);
    let level = match (|| {
        Ok::<_, String>(JszLevel {
            accounts: q_bool(&q, "accounts")?,
            streams: q_bool(&q, "streams")?,
            consumers: q_bool(&q, "consumers")?,
            config: q_bool(&q, "config")?,
            // 2.9 does not know the parameter and ignores it.
            leader_only: n.scale.shape.v12() && q_bool(&q, "stream-leader-only")?,
        })
    })() {
        Ok(l) => l.normalize(),
        Err(e) => return bad_request(e),
    };
    let (offset, limit) = match (q_int(&q, "offset"), q_int(&q, "limit")) {
        (Ok(o), Ok(l)) => (o.max(0) as usize, if l <= 0 { 1024 } else { l as usize }),
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    let v = n.jsz_variant(level);
    if offset == 0 && limit >= v.accounts.len() {
        json(v.full.clone())
    } else {
        json(n.assemble_jsz(level, &v.accounts, offset, limit))
    }
}

pub fn router(node: Arc<NodeData>) -> Router {
    Router::new()
        .route("/varz", get(h_varz))
        .route("/jsz", get(h_jsz))
        .route("/connz", get(h_connz))
        .route("/routez", get(h_routez))
        .route("/healthz", get(h_healthz))
        .route("/accstatz", get(h_accstatz))
        .route("/subsz", get(h_subsz))
        .with_state(node)
}

pub struct SynthNode {
    pub name: String,
    pub addr: SocketAddr,
    pub data: Arc<NodeData>,
}

impl SynthNode {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub struct SynthCluster {
    pub scale: SynthScale,
    pub nodes: Vec<SynthNode>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SynthCluster {
    /// Render every node's data (in parallel on plain threads), then serve each
    /// node on its own `127.0.0.1:0` listener on `rt`.
    pub fn start(rt: &tokio::runtime::Runtime, scale: &SynthScale) -> SynthCluster {
        assert!(scale.nodes >= 1 && scale.accounts >= 1);
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let mut data: Vec<Option<Arc<NodeData>>> = (0..scale.nodes).map(|_| None).collect();
        std::thread::scope(|s| {
            let chunks: Vec<_> = data.chunks_mut(scale.nodes.div_ceil(threads)).collect();
            let mut base = 0;
            for chunk in chunks {
                let start = base;
                base += chunk.len();
                s.spawn(move || {
                    for (k, slot) in chunk.iter_mut().enumerate() {
                        *slot = Some(Arc::new(NodeData::build(scale, start + k)));
                    }
                });
            }
        });
        let mut nodes = Vec::new();
        let mut tasks = Vec::new();
        for d in data.into_iter().map(Option::unwrap) {
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .expect("bind synthetic node");
            let addr = listener.local_addr().unwrap();
            let app = router(d.clone());
            tasks.push(rt.spawn(async move {
                axum::serve(listener, app).await.expect("synthetic server");
            }));
            nodes.push(SynthNode {
                name: d.name.clone(),
                addr,
                data: d,
            });
        }
        SynthCluster {
            scale: scale.clone(),
            nodes,
            tasks,
        }
    }

    /// `name=url` arguments for natsmon's `--nats-url`.
    pub fn nats_url_args(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("{}={}", n.name, n.url()))
            .collect()
    }
}

impl Drop for SynthCluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
