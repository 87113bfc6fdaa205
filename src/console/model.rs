//! Owns what the console shows, as the values `/api/v1/status` serializes: natsmon
//! itself, each cluster's nodes, meta group and route mesh, the accounts, log shipping,
//! and every stream and consumer with the state the pages flag. The pages render from
//! these same values and the browser script refreshes from their JSON, so the HTML, the
//! live page and `curl | jq` never disagree.
//!
//! Everything is built from one copy of the store (node polls and the cluster view) and
//! borrows from it; times are Unix seconds, so a cached part stays true until the next
//! render and the browser computes ages itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::links;
use crate::config::Settings;
use crate::logs::status::ShipperSnapshot;
use crate::nats::snapshot::{NodeStatus, ordered};
use crate::nats::view::{ClusterView, ConsumerView, MemberView, MetaView, PeerView, StreamView};

pub fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// What a page is built from: one consistent copy of everything, taken per request.
pub struct Inputs {
    pub settings: Arc<Settings>,
    pub nodes: BTreeMap<String, NodeStatus>,
    pub view: Arc<ClusterView>,
    /// `None` when log shipping is off.
    pub shipper: Option<ShipperSnapshot>,
    pub started_at: SystemTime,
    pub now: SystemTime,
}

/// Everything but the streams and consumers, which are cached per render (see `Console`).
#[derive(Debug, Serialize)]
pub struct Overview<'a> {
    pub generated_at: f64,
    pub natsmon: SelfStatus,
    pub grafana_url: &'static str,
    pub clusters: Vec<ClusterStatus<'a>>,
    pub accounts: Vec<AccountRow<'a>>,
    pub log_shipping: Shipping<'a>,
    pub totals: Totals,
}

#[derive(Debug, Serialize)]
pub struct SelfStatus {
    pub version: &'static str,
    /// `exporter`, `shipper` or both (`--roles`).
    pub roles: Vec<&'static str>,
    pub started_at: f64,
    pub uptime_seconds: f64,
    pub poll_interval_seconds: f64,
    pub poll_timeout_seconds: f64,
    /// When the latest poll of any node finished, and the longest of the nodes' latest
    /// poll cycles: the cycle time that matters against the interval.
    pub last_cycle_at: Option<f64>,
    pub last_cycle_seconds: Option<f64>,
    pub nodes: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub streams: usize,
    pub consumers: usize,
    pub streams_unavailable: usize,
    pub consumers_stalled: usize,
}

#[derive(Debug, Serialize)]
pub struct ClusterStatus<'a> {
    /// Empty for nodes never seen up, whose cluster is not known.
    pub name: &'a str,
    pub nodes: Vec<NodeRow<'a>>,
    pub meta: Option<MetaRow<'a>>,
    pub routes: Mesh<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Not polled yet.
    Pending,
    Up,
    Down,
}

#[derive(Debug, Serialize)]
pub struct ErrorRow<'a> {
    pub endpoint: &'static str,
    pub message: &'a str,
}

#[derive(Debug, Serialize)]
pub struct JetStreamUse {
    pub memory_bytes: u64,
    pub memory_limit_bytes: Option<u64>,
    pub storage_bytes: u64,
    pub storage_limit_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct NodeRow<'a> {
    /// natsmon's `node` label.
    pub node: &'a str,
    /// The monitoring URL without credentials.
    pub url: &'a str,
    pub state: NodeState,
    /// While down: what the node last said about itself.
    pub server_name: Option<&'a str>,
    pub version: Option<&'a str>,
    pub down_since: Option<f64>,
    pub last_poll_at: Option<f64>,
    pub last_success_at: Option<f64>,
    pub poll_duration_seconds: f64,
    /// The one error that matters (`/varz`'s when down), not one per endpoint.
    pub error: Option<ErrorRow<'a>>,
    /// Endpoints that failed in the last poll.
    pub failed_endpoints: usize,
    pub started_at: Option<f64>,
    pub uptime_seconds: Option<f64>,
    pub connections: Option<u64>,
    pub max_connections: Option<u64>,
    pub subscriptions: Option<u64>,
    pub slow_consumers: Option<u64>,
    pub memory_bytes: Option<u64>,
    /// Percent of one core, as the server reports it.
    pub cpu_percent: Option<f64>,
    pub cores: Option<u64>,
    pub routes: Option<u64>,
    pub jetstream: Option<JetStreamUse>,
    pub meta_leader: bool,
    pub dashboard: String,
}

#[derive(Debug, Serialize)]
pub struct MetaRow<'a> {
    pub leader: &'a str,
    pub leader_polled: bool,
    pub cluster_size: u64,
    pub peers: Vec<PeerRow<'a>>,
}

/// A Raft replica and its state word: `current`, `behind` or `offline`.
#[derive(Debug, Serialize)]
pub struct PeerRow<'a> {
    #[serde(flatten)]
    pub peer: &'a PeerView,
    pub state: &'static str,
}

impl<'a> PeerRow<'a> {
    pub fn of(peer: &'a PeerView) -> PeerRow<'a> {
        PeerRow {
            peer,
            state: peer_state(peer),
        }
    }
}

pub fn peer_state(p: &PeerView) -> &'static str {
    if p.offline {
        "offline"
    } else if p.current {
        "current"
    } else {
        "behind"
    }
}

/// The full route mesh a cluster should have, and the routes each member lacks.
#[derive(Debug, Serialize)]
pub struct Mesh<'a> {
    /// Every member natsmon knows of, by server name.
    pub members: Vec<&'a str>,
    pub rows: Vec<MeshRow<'a>>,
    pub missing: usize,
}

#[derive(Debug, Serialize)]
pub struct MeshRow<'a> {
    pub server_name: &'a str,
    pub node: Option<&'a str>,
    /// natsmon polls it and its `/routez` answered: its routes are known.
    pub known: bool,
    pub routes: Vec<&'a str>,
    /// Members it has no route to; only for members whose routes are known.
    pub missing: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct AccountRow<'a> {
    pub cluster: &'a str,
    pub name: &'a str,
    /// Summed over the cluster's nodes that are up.
    pub connections: u64,
    pub leafnodes: u64,
    pub subscriptions: Option<u64>,
    pub slow_consumers: u64,
    /// The account's use across the cluster (replicas included) and its limits.
    pub jetstream: Option<JetStreamUse>,
    pub dashboard: String,
}

#[derive(Debug, Serialize)]
pub struct Shipping<'a> {
    pub enabled: bool,
    #[serde(flatten)]
    pub details: Option<ShippingDetails<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ShippingDetails<'a> {
    /// Without credentials.
    pub loki_url: &'a str,
    /// `null` until Loki first answered.
    pub loki_up: Option<bool>,
    pub last_push: Option<PushRow>,
    pub containers_tailed: usize,
    pub containers: Vec<ContainerRow<'a>>,
    pub buffered_bytes: usize,
    pub buffered_lines: usize,
    pub buffer_max_bytes: usize,
    pub buffer_fill: f64,
    pub max_lag_seconds: f64,
    pub last_error: Option<ShipErrorRow<'a>>,
}

#[derive(Debug, Serialize)]
pub struct PushRow {
    pub at: f64,
    /// `accepted`, `rejected`, `split`, `too_large` or `failed`.
    pub result: &'static str,
    /// The HTTP status of a rejected push; the metric reason of a failed one.
    pub status: Option<u16>,
    pub reason: Option<&'static str>,
    pub lines: usize,
    pub duration_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct ContainerRow<'a> {
    pub name: &'a str,
    pub job: &'a str,
    pub service: &'a str,
    pub logs: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ShipErrorRow<'a> {
    pub at: f64,
    pub source: &'static str,
    pub message: &'a str,
}

/// A stream with the state the page flags and its shares of its limits.
#[derive(Debug, Serialize)]
pub struct StreamRow<'a> {
    #[serde(flatten)]
    pub view: &'a StreamView,
    /// `ok`, `degraded` (a replica offline or behind), `no_leader`, `leader_not_polled`
    /// (the leader is on a node natsmon does not poll) or `unavailable`.
    pub state: &'static str,
    pub messages_share: Option<f64>,
    pub bytes_share: Option<f64>,
    pub dashboard: String,
}

#[derive(Debug, Serialize)]
pub struct ConsumerRow<'a> {
    #[serde(flatten)]
    pub view: &'a ConsumerView,
    /// As a stream's, plus `stalled`: pending rises while nothing is delivered.
    pub state: &'static str,
    pub dashboard: String,
}

pub fn stream_state(s: &StreamView) -> &'static str {
    if !s.available {
        "unavailable"
    } else if !s.has_leader {
        "no_leader"
    } else if !s.leader_polled {
        "leader_not_polled"
    } else if s.peers.iter().any(|p| p.offline || !p.current) {
        "degraded"
    } else {
        "ok"
    }
}

pub fn consumer_state(c: &ConsumerView) -> &'static str {
    if !c.available {
        "unavailable"
    } else if !c.has_leader {
        "no_leader"
    } else if !c.leader_polled {
        "leader_not_polled"
    } else if c.stalled {
        "stalled"
    } else if c.peers.iter().any(|p| p.offline || !p.current) {
        "degraded"
    } else {
        "ok"
    }
}

fn share(v: u64, limit: Option<u64>) -> Option<f64> {
    limit.filter(|l| *l > 0).map(|l| v as f64 / l as f64)
}

pub fn stream_row(s: &StreamView) -> StreamRow<'_> {
    StreamRow {
        view: s,
        state: stream_state(s),
        messages_share: share(s.messages, s.max_msgs),
        bytes_share: share(s.bytes, s.max_bytes),
        dashboard: links::stream(&s.cluster, &s.account, &s.name),
    }
}

pub fn consumer_row(c: &ConsumerView) -> ConsumerRow<'_> {
    ConsumerRow {
        view: c,
        state: consumer_state(c),
        dashboard: links::consumer(&c.cluster, &c.account, &c.stream, &c.name),
    }
}

impl Inputs {
    /// The cluster a node belongs to: what it says now, else what it said last.
    fn cluster_of<'a>(&'a self, st: &'a NodeStatus) -> &'a str {
        match &st.poll.varz {
            Some(v) => &v.cluster.name,
            None => st
                .last_known
                .as_ref()
                .map(|k| k.cluster.as_str())
                .unwrap_or(""),
        }
    }

    pub fn overview(&self) -> Overview<'_> {
        let view = &*self.view;
        let mut by_cluster: BTreeMap<&str, Vec<NodeRow<'_>>> = BTreeMap::new();
        for (name, display, st) in ordered(&self.settings.nodes, &self.nodes) {
            by_cluster
                .entry(self.cluster_of(st))
                .or_default()
                .push(self.node_row(name, display, st));
        }
        // Clusters known only from the view (all their nodes gone) still show their meta.
        for m in &view.meta {
            by_cluster.entry(&m.cluster).or_default();
        }
        let mut clusters: Vec<ClusterStatus<'_>> = by_cluster
            .into_iter()
            .map(|(name, nodes)| ClusterStatus {
                name,
                meta: self.meta(name),
                routes: self.mesh(name),
                nodes,
            })
            .collect();
        // The unknown cluster (nodes never seen up) goes last.
        clusters.sort_by_key(|c| (c.name.is_empty(), c.name));
        Overview {
            generated_at: unix(self.now),
            natsmon: self.self_status(),
            grafana_url: links::GRAFANA_URL,
            clusters,
            accounts: self.accounts(),
            log_shipping: self.shipping(),
            totals: Totals {
                streams: view.streams.len(),
                consumers: view.consumers.len(),
                streams_unavailable: view.streams.iter().filter(|s| !s.available).count(),
                consumers_stalled: view.consumers.iter().filter(|c| c.stalled).count(),
            },
        }
    }

    fn self_status(&self) -> SelfStatus {
        let latest = self
            .nodes
            .values()
            .filter_map(|st| st.poll.finished_at)
            .max();
        let longest = self
            .nodes
            .values()
            .filter(|st| st.poll.finished_at.is_some())
            .map(|st| st.poll.duration.as_secs_f64())
            .reduce(f64::max);
        SelfStatus {
            version: env!("CARGO_PKG_VERSION"),
            roles: self.settings.roles.names(),
            started_at: unix(self.started_at),
            uptime_seconds: self
                .now
                .duration_since(self.started_at)
                .unwrap_or_default()
                .as_secs_f64(),
            poll_interval_seconds: self.settings.poll_interval.as_secs_f64(),
            poll_timeout_seconds: self.settings.poll_timeout.as_secs_f64(),
            last_cycle_at: latest.map(unix),
            last_cycle_seconds: longest,
            nodes: self.nodes.len(),
        }
    }

    fn node_row<'a>(&'a self, name: &'a str, url: &'a str, st: &'a NodeStatus) -> NodeRow<'a> {
        let p = &*st.poll;
        let state = match (p.finished_at, p.up()) {
            (None, _) => NodeState::Pending,
            (Some(_), true) => NodeState::Up,
            (Some(_), false) => NodeState::Down,
        };
        let v = p.varz.as_ref();
        let known = st.last_known.as_ref();
        let started_at = v
            .and_then(|v| v.start.as_deref())
            .and_then(crate::time::rfc3339_to_unix);
        let cluster = self.cluster_of(st);
        let jetstream = v.and_then(|v| {
            let s = v.jetstream.stats.as_ref()?;
            let c = v.jetstream.config.as_ref();
            Some(JetStreamUse {
                memory_bytes: s.memory,
                memory_limit_bytes: c.and_then(|c| c.max_memory),
                storage_bytes: s.storage,
                storage_limit_bytes: c.and_then(|c| c.max_storage),
            })
        });
        NodeRow {
            node: name,
            url,
            state,
            server_name: v
                .map(|v| v.name())
                .or(known.map(|k| k.server_name.as_str())),
            version: v
                .map(|v| v.version.as_str())
                .or(known.map(|k| k.version.as_str())),
            down_since: st.down_since.map(unix),
            last_poll_at: p.finished_at.map(unix),
            last_success_at: st.last_success.map(unix),
            poll_duration_seconds: p.duration.as_secs_f64(),
            error: st.main_error().map(|(e, m)| ErrorRow {
                endpoint: e.as_str(),
                message: m,
            }),
            failed_endpoints: p.errors.len(),
            started_at,
            uptime_seconds: started_at.map(|s| (unix(self.now) - s).max(0.0)),
            connections: v.and_then(|v| v.connections),
            max_connections: v.and_then(|v| v.max_connections),
            subscriptions: v.and_then(|v| v.subscriptions),
            slow_consumers: v.and_then(|v| v.slow_consumers),
            memory_bytes: v.and_then(|v| v.mem),
            cpu_percent: v.and_then(|v| v.cpu),
            cores: v.and_then(|v| v.cores),
            routes: v.and_then(|v| v.routes),
            jetstream,
            meta_leader: v.is_some_and(|v| v.is_meta_leader()),
            dashboard: links::node(cluster, name),
        }
    }

    /// The view's meta group; before the view has one, the meta leader's own `/varz`.
    fn meta(&self, cluster: &str) -> Option<MetaRow<'_>> {
        if let Some(m) = self.view.meta.iter().find(|m| m.cluster == cluster) {
            return Some(meta_row(m));
        }
        let metas = self
            .nodes
            .values()
            .filter_map(|st| st.poll.varz.as_ref())
            .filter(|v| v.cluster.name == cluster)
            .filter_map(|v| Some((v, v.jetstream.meta.as_ref()?)));
        let mut found = None;
        for (v, m) in metas {
            // The leader's report lists the replicas; a follower's only names the leader.
            if v.is_meta_leader() || found.is_none() {
                found = Some(m);
            }
        }
        found.map(|m| MetaRow {
            leader: &m.leader,
            leader_polled: self.nodes.values().any(|st| {
                st.poll
                    .varz
                    .as_ref()
                    .is_some_and(|v| !m.leader.is_empty() && v.name() == m.leader)
            }),
            cluster_size: m.cluster_size,
            peers: Vec::new(),
        })
    }

    /// The route mesh from the view's members; before the view has them, from the polled
    /// nodes' own `/varz` and `/routez`.
    fn mesh(&self, cluster: &str) -> Mesh<'_> {
        let members: Vec<&MemberView> = self
            .view
            .members
            .iter()
            .filter(|m| m.cluster == cluster)
            .collect();
        let mut rows: Vec<MeshRow<'_>> = Vec::new();
        if members.is_empty() {
            for (name, _, st) in ordered(&self.settings.nodes, &self.nodes) {
                let Some(v) = st.poll.varz.as_ref().filter(|v| v.cluster.name == cluster) else {
                    continue;
                };
                let routez = st.poll.routez.as_ref();
                rows.push(MeshRow {
                    server_name: v.name(),
                    node: Some(name),
                    known: routez.is_some(),
                    routes: routez
                        .map(|r| {
                            r.routes
                                .iter()
                                .map(|r| r.remote_name.as_str())
                                .filter(|n| !n.is_empty())
                                .collect()
                        })
                        .unwrap_or_default(),
                    missing: Vec::new(),
                });
            }
        } else {
            for m in members {
                let known = m.polled
                    && m.node
                        .as_ref()
                        .and_then(|n| self.nodes.get(n))
                        .is_some_and(|st| st.poll.up() && st.poll.routez.is_some());
                rows.push(MeshRow {
                    server_name: &m.server_name,
                    node: m.node.as_deref(),
                    known,
                    routes: m.routes.iter().map(String::as_str).collect(),
                    missing: Vec::new(),
                });
            }
        }
        let mut all: BTreeSet<&str> = BTreeSet::new();
        for r in &rows {
            all.insert(r.server_name);
            all.extend(r.routes.iter().copied());
        }
        let mut missing = 0;
        for r in &mut rows {
            r.routes.sort_unstable();
            r.routes.dedup();
            if r.known {
                r.missing = all
                    .iter()
                    .copied()
                    .filter(|m| *m != r.server_name && !r.routes.contains(m))
                    .collect();
                missing += r.missing.len();
            }
        }
        rows.sort_by_key(|r| r.server_name);
        Mesh {
            members: all.into_iter().collect(),
            rows,
            missing,
        }
    }

    /// Accounts per cluster: connections summed over the nodes that are up; JetStream
    /// use as the nodes report it, the same cluster-wide figure on each.
    fn accounts(&self) -> Vec<AccountRow<'_>> {
        let mut out: BTreeMap<(&str, &str), AccountRow<'_>> = BTreeMap::new();
        for st in self.nodes.values() {
            if !st.poll.up() {
                continue;
            }
            let cluster = self.cluster_of(st);
            if let Some(a) = &st.poll.accstatz {
                for s in &a.account_statz {
                    let row = out
                        .entry((cluster, s.acc.as_str()))
                        .or_insert_with(|| account_row(cluster, &s.acc));
                    row.connections += s.conns;
                    row.leafnodes += s.leafnodes;
                    row.slow_consumers += s.slow_consumers;
                    if let Some(n) = s.num_subscriptions {
                        *row.subscriptions.get_or_insert(0) += n;
                    }
                }
            }
            if let Some(j) = &st.poll.jsz {
                for a in &j.account_details {
                    let row = out
                        .entry((cluster, a.name.as_str()))
                        .or_insert_with(|| account_row(cluster, &a.name));
                    let js = row.jetstream.get_or_insert(JetStreamUse {
                        memory_bytes: 0,
                        memory_limit_bytes: None,
                        storage_bytes: 0,
                        storage_limit_bytes: None,
                    });
                    js.memory_bytes = js.memory_bytes.max(a.memory);
                    js.storage_bytes = js.storage_bytes.max(a.storage);
                    js.memory_limit_bytes = js.memory_limit_bytes.max(a.reserved_memory);
                    js.storage_limit_bytes = js.storage_limit_bytes.max(a.reserved_storage);
                }
            }
        }
        out.into_values().collect()
    }

    fn shipping(&self) -> Shipping<'_> {
        let (Some(logs), Some(s)) = (&self.settings.logs, &self.shipper) else {
            return Shipping {
                enabled: false,
                details: None,
            };
        };
        let max = logs.buffer_max_bytes;
        Shipping {
            enabled: true,
            details: Some(ShippingDetails {
                loki_url: &logs.display_url,
                loki_up: s.loki_up,
                last_push: s.last_push.as_ref().map(|p| PushRow {
                    at: unix(p.at),
                    result: p.result.as_str(),
                    status: match p.result {
                        crate::logs::status::PushResult::Rejected { status } => Some(status),
                        _ => None,
                    },
                    reason: match p.result {
                        crate::logs::status::PushResult::Failed { reason } => Some(reason),
                        _ => None,
                    },
                    lines: p.lines,
                    duration_seconds: p.duration.as_secs_f64(),
                }),
                containers_tailed: s.containers.len(),
                containers: s
                    .containers
                    .iter()
                    .map(|c| ContainerRow {
                        name: &c.name,
                        job: &c.job,
                        service: &c.service,
                        logs: links::container_logs(&c.job, &c.name),
                    })
                    .collect(),
                buffered_bytes: s.buffered_bytes,
                buffered_lines: s.buffered_lines,
                buffer_max_bytes: max,
                buffer_fill: if max == 0 {
                    0.0
                } else {
                    s.buffered_bytes as f64 / max as f64
                },
                max_lag_seconds: s.max_lag_seconds,
                last_error: s.last_error.as_ref().map(|e| ShipErrorRow {
                    at: unix(e.at),
                    source: e.source,
                    message: &e.message,
                }),
            }),
        }
    }
}

fn account_row<'a>(cluster: &'a str, name: &'a str) -> AccountRow<'a> {
    AccountRow {
        cluster,
        name,
        connections: 0,
        leafnodes: 0,
        subscriptions: None,
        slow_consumers: 0,
        jetstream: None,
        dashboard: links::account(cluster, name),
    }
}

fn meta_row(m: &MetaView) -> MetaRow<'_> {
    MetaRow {
        leader: &m.leader,
        leader_polled: m.leader_polled,
        cluster_size: m.cluster_size,
        peers: m.peers.iter().map(PeerRow::of).collect(),
    }
}
