//! Owns `/varz`: the server's identity, traffic counters, resource use and JetStream
//! configuration and usage, and the pure mapping of one response to metrics.

use serde::Deserialize;

use crate::exposition::{Def, Labels, MetricSet};
use crate::time::rfc3339_to_unix;

pub const PATH: &str = "/varz";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Varz {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub server_id: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub server_name: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub version: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub go: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub git_commit: String,
    pub start: Option<String>,
    pub mem: Option<u64>,
    pub cores: Option<u64>,
    pub gomaxprocs: Option<u64>,
    pub cpu: Option<f64>,
    pub connections: Option<u64>,
    pub total_connections: Option<u64>,
    /// Limits are `-1` when unlimited (`max_connections: -1` in the server config).
    #[serde(deserialize_with = "crate::nats::limit")]
    pub max_connections: Option<u64>,
    #[serde(deserialize_with = "crate::nats::limit")]
    pub max_payload: Option<u64>,
    #[serde(deserialize_with = "crate::nats::limit")]
    pub max_pending: Option<u64>,
    pub routes: Option<u64>,
    pub remotes: Option<u64>,
    pub leafnodes: Option<u64>,
    pub in_msgs: Option<u64>,
    pub out_msgs: Option<u64>,
    pub in_bytes: Option<u64>,
    pub out_bytes: Option<u64>,
    pub slow_consumers: Option<u64>,
    pub subscriptions: Option<u64>,
    pub config_load_time: Option<String>,
    /// Added in 2.10.
    pub slow_consumer_stats: Option<SlowConsumerStats>,
    /// Added in 2.12: connections closed for missing pings (all kinds), and clients
    /// whose writes stalled, since the server started.
    pub stale_connections: Option<u64>,
    pub stalled_clients: Option<u64>,
    /// Added in 2.12, per connection kind as `slow_consumer_stats`.
    pub stale_connection_stats: Option<SlowConsumerStats>,
    /// Expiry of the client listener's certificate (2.11.12+, with TLS only).
    pub tls_cert_not_after: Option<String>,
    /// The Go runtime's soft memory limit (2.11.11+, when GOMEMLIMIT is set).
    pub gomemlimit: Option<u64>,
    /// Added in 2.12.14: contention on the disk I/O semaphore.
    pub disk_io_wait_stats: Option<DiskIoWaitStats>,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub cluster: ClusterOpts,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub gateway: GatewayOpts,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub leaf: LeafOpts,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub jetstream: JetStreamVarz,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SlowConsumerStats {
    pub clients: u64,
    pub routes: u64,
    pub gateways: u64,
    pub leafs: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DiskIoWaitStats {
    /// Goroutines waiting for the semaphore now.
    pub waiters: u64,
    /// Waits since the server started.
    pub waits: u64,
    /// Nanoseconds waited in total, and the longest wait.
    pub wait_time: u64,
    pub max_wait_time: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClusterOpts {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub name: String,
    /// The configured routes as host:port (cluster ports, not monitoring ports): where
    /// discovery looks for the other members.
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub urls: Vec<String>,
    pub tls_cert_not_after: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GatewayOpts {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub name: String,
    pub port: u64,
    pub tls_cert_not_after: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LeafOpts {
    pub port: u64,
    pub tls_cert_not_after: Option<String>,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub remotes: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JetStreamVarz {
    pub config: Option<JetStreamConfig>,
    pub stats: Option<JetStreamStats>,
    pub meta: Option<MetaCluster>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JetStreamConfig {
    /// `-1` when not set.
    #[serde(deserialize_with = "crate::nats::limit")]
    pub max_memory: Option<u64>,
    #[serde(deserialize_with = "crate::nats::limit")]
    pub max_storage: Option<u64>,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub domain: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JetStreamStats {
    pub memory: u64,
    pub storage: u64,
    /// Go's `-1` as a `uint64` when an account has no reservation limit.
    #[serde(deserialize_with = "crate::nats::limit")]
    pub reserved_memory: Option<u64>,
    #[serde(deserialize_with = "crate::nats::limit")]
    pub reserved_storage: Option<u64>,
    pub accounts: u64,
    pub ha_assets: u64,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub api: ApiStats,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApiStats {
    pub total: u64,
    pub errors: u64,
    /// Left out while zero (`omitempty`, every release), so absent means none.
    pub inflight: Option<u64>,
    /// The JetStream API level the server supports (2.11+).
    pub level: Option<u64>,
}

/// The meta group as a node sees it; `replicas` is only filled on the meta leader.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MetaCluster {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub name: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub leader: String,
    pub cluster_size: u64,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub replicas: Vec<super::PeerInfo>,
    /// Meta proposals not applied yet (2.10+).
    pub pending: Option<u64>,
    /// The meta group's snapshot state (2.11.11+; `null` in 2.12.8's /varz).
    pub snapshot: Option<MetaSnapshot>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MetaSnapshot {
    /// Raft entries and bytes the next meta snapshot will compact.
    pub pending_entries: u64,
    pub pending_size: u64,
    /// Go's zero time (`0001-01-01T00:00:00Z`) until the first snapshot.
    pub last_time: Option<String>,
    /// Nanoseconds the last snapshot took.
    pub last_duration: Option<u64>,
}

impl Varz {
    /// The name other servers use for this one: `server_name` defaults to the ID.
    pub fn name(&self) -> &str {
        if self.server_name.is_empty() {
            &self.server_id
        } else {
            &self.server_name
        }
    }

    pub fn jetstream_enabled(&self) -> bool {
        self.jetstream.config.is_some()
    }

    pub fn gateway_configured(&self) -> bool {
        !self.gateway.name.is_empty() || self.gateway.port > 0
    }

    pub fn leafnodes_configured(&self) -> bool {
        self.leaf.port > 0 || !self.leaf.remotes.is_empty() || self.leafnodes.unwrap_or(0) > 0
    }

    pub fn is_meta_leader(&self) -> bool {
        self.jetstream
            .meta
            .as_ref()
            .is_some_and(|m| !m.leader.is_empty() && m.leader == self.name())
    }
}

pub static SERVER_INFO: Def = Def::gauge(
    "nats_server_info",
    "Identity of the server behind a node, always 1; server_id changes on every restart, node does not.",
);
pub static START_TIME: Def = Def::gauge(
    "nats_varz_start_time_seconds",
    "Unix time the server started.",
);
pub static CONFIG_LOAD_TIME: Def = Def::gauge(
    "nats_varz_config_load_time_seconds",
    "Unix time the server last loaded its configuration.",
);
pub static MEMORY: Def = Def::gauge(
    "nats_varz_memory_bytes",
    "Resident memory of the server process.",
);
pub static CPU: Def = Def::gauge(
    "nats_varz_cpu_ratio",
    "CPU use of the server process as a fraction of one core.",
);
pub static CORES: Def = Def::gauge("nats_varz_cores", "CPU cores the server sees.");
pub static GOMAXPROCS: Def = Def::gauge("nats_varz_gomaxprocs", "GOMAXPROCS of the server.");
pub static CONNECTIONS: Def = Def::gauge(
    "nats_varz_connections",
    "Client connections currently open.",
);
pub static MAX_CONNECTIONS: Def = Def::gauge(
    "nats_varz_max_connections",
    "Configured client connection limit.",
);
pub static ACCEPTED_CONNECTIONS: Def = Def::counter(
    "nats_varz_accepted_connections_total",
    "Client connections accepted since the server started (varz total_connections).",
);
pub static SUBSCRIPTIONS: Def = Def::gauge(
    "nats_varz_subscriptions",
    "Subscriptions currently registered.",
);
pub static SLOW_CONSUMERS: Def = Def::counter(
    "nats_varz_slow_consumers_total",
    "Slow consumer events since the server started.",
);
pub static SLOW_CONSUMERS_BY_KIND: Def = Def::counter(
    "nats_varz_slow_consumers_by_kind_total",
    "Slow consumer events by connection kind (nats-server 2.10 and later).",
);
pub static STALE_CONNECTIONS: Def = Def::counter(
    "nats_varz_stale_connections_total",
    "Connections closed as stale (no answer to pings) since the server started (2.12 and later).",
);
pub static STALE_CONNECTIONS_BY_KIND: Def = Def::counter(
    "nats_varz_stale_connections_by_kind_total",
    "Stale connections by connection kind (2.12 and later).",
);
pub static STALLED_CLIENTS: Def = Def::counter(
    "nats_varz_stalled_clients_total",
    "Times a client's writes stalled because its pending buffer was full (2.12 and later).",
);
pub static TLS_CERT_NOT_AFTER: Def = Def::gauge(
    "nats_varz_tls_cert_not_after_seconds",
    "Unix time the listener's TLS certificate expires, by listener (2.11.12 and later, TLS only).",
);
pub static GOMEMLIMIT: Def = Def::gauge(
    "nats_varz_gomemlimit_bytes",
    "The server's Go soft memory limit (GOMEMLIMIT), when set (2.11.11 and later).",
);
pub static DISK_IO_WAITERS: Def = Def::gauge(
    "nats_varz_disk_io_waiters",
    "Goroutines waiting for the disk I/O semaphore (2.12.14 and later).",
);
pub static DISK_IO_WAITS: Def = Def::counter(
    "nats_varz_disk_io_waits_total",
    "Waits for the disk I/O semaphore since the server started (2.12.14 and later).",
);
pub static DISK_IO_WAIT_TIME: Def = Def::counter(
    "nats_varz_disk_io_wait_seconds_total",
    "Time spent waiting for the disk I/O semaphore (2.12.14 and later).",
);
pub static DISK_IO_MAX_WAIT: Def = Def::gauge(
    "nats_varz_disk_io_max_wait_seconds",
    "Longest wait for the disk I/O semaphore since the server started (2.12.14 and later).",
);
pub static IN_MSGS: Def = Def::counter(
    "nats_varz_in_msgs_total",
    "Messages received by the server.",
);
pub static OUT_MSGS: Def = Def::counter("nats_varz_out_msgs_total", "Messages sent by the server.");
pub static IN_BYTES: Def = Def::counter(
    "nats_varz_in_bytes_total",
    "Payload bytes received by the server.",
);
pub static OUT_BYTES: Def = Def::counter(
    "nats_varz_out_bytes_total",
    "Payload bytes sent by the server.",
);
pub static ROUTES: Def = Def::gauge(
    "nats_varz_routes",
    "Route connections to other servers of the cluster.",
);
pub static REMOTES: Def = Def::gauge("nats_varz_remotes", "Remote servers known through routes.");
pub static LEAFNODES: Def = Def::gauge("nats_varz_leafnodes", "Leaf node connections.");
pub static MAX_PAYLOAD: Def = Def::gauge(
    "nats_varz_max_payload_bytes",
    "Largest message payload the server accepts.",
);

pub static JS_ENABLED: Def = Def::gauge(
    "nats_jetstream_enabled",
    "1 when JetStream is enabled on the server.",
);
pub static JS_MAX_MEMORY: Def = Def::gauge(
    "nats_jetstream_max_memory_bytes",
    "Memory JetStream may use on this server (configured limit).",
);
pub static JS_MAX_STORAGE: Def = Def::gauge(
    "nats_jetstream_max_storage_bytes",
    "Storage JetStream may use on this server (configured limit).",
);
pub static JS_MEMORY: Def = Def::gauge(
    "nats_jetstream_memory_bytes",
    "Memory used by JetStream streams on this server.",
);
pub static JS_STORAGE: Def = Def::gauge(
    "nats_jetstream_storage_bytes",
    "Storage used by JetStream streams on this server.",
);
pub static JS_RESERVED_MEMORY: Def = Def::gauge(
    "nats_jetstream_reserved_memory_bytes",
    "Memory reserved by account limits on this server.",
);
pub static JS_RESERVED_STORAGE: Def = Def::gauge(
    "nats_jetstream_reserved_storage_bytes",
    "Storage reserved by account limits on this server.",
);
pub static JS_ACCOUNTS: Def = Def::gauge(
    "nats_jetstream_accounts",
    "Accounts with JetStream enabled on this server.",
);
pub static JS_HA_ASSETS: Def = Def::gauge(
    "nats_jetstream_ha_assets",
    "Replicated streams and consumers on this server.",
);
pub static JS_API_REQUESTS: Def = Def::counter(
    "nats_jetstream_api_requests_total",
    "JetStream API requests handled.",
);
pub static JS_API_ERRORS: Def = Def::counter(
    "nats_jetstream_api_errors_total",
    "JetStream API requests that failed.",
);
pub static JS_API_INFLIGHT: Def = Def::gauge(
    "nats_jetstream_api_inflight_requests",
    "JetStream API requests in flight.",
);
pub static JS_API_LEVEL: Def = Def::gauge(
    "nats_jetstream_api_level",
    "JetStream API level the server supports (2.11 and later).",
);
pub static META_PENDING: Def = Def::gauge(
    "nats_jetstream_meta_pending",
    "Meta group proposals not applied yet, as this node sees it (2.10 and later).",
);
pub static META_SNAPSHOT_PENDING_ENTRIES: Def = Def::gauge(
    "nats_jetstream_meta_snapshot_pending_entries",
    "Meta group Raft entries since the last meta snapshot (2.11.11 and later).",
);
pub static META_SNAPSHOT_PENDING_BYTES: Def = Def::gauge(
    "nats_jetstream_meta_snapshot_pending_bytes",
    "Size of the meta group Raft entries since the last meta snapshot (2.11.11 and later).",
);
pub static META_SNAPSHOT_LAST_TIME: Def = Def::gauge(
    "nats_jetstream_meta_snapshot_last_time_seconds",
    "Unix time of the last meta snapshot; absent before the first (2.11.11 and later).",
);
pub static META_SNAPSHOT_LAST_DURATION: Def = Def::gauge(
    "nats_jetstream_meta_snapshot_last_duration_seconds",
    "How long the last meta snapshot took (2.11.11 and later).",
);
pub static META_IS_LEADER: Def = Def::gauge(
    "nats_jetstream_meta_is_leader",
    "1 when this node is the JetStream meta leader.",
);
pub static META_HAS_LEADER: Def = Def::gauge(
    "nats_jetstream_meta_has_leader",
    "1 when this node sees an elected JetStream meta leader.",
);
pub static META_LEADER_INFO: Def = Def::gauge(
    "nats_jetstream_meta_leader_info",
    "The meta leader's server name as this node sees it, always 1.",
);
pub static META_CLUSTER_SIZE: Def = Def::gauge(
    "nats_jetstream_meta_cluster_size",
    "Size of the JetStream meta group as this node sees it.",
);
pub static META_REPLICA_CURRENT: Def = Def::gauge(
    "nats_jetstream_meta_replica_current",
    "1 when a meta group peer is current, from the meta leader.",
);
pub static META_REPLICA_OFFLINE: Def = Def::gauge(
    "nats_jetstream_meta_replica_offline",
    "1 when a meta group peer is offline, from the meta leader.",
);
pub static META_REPLICA_LAG: Def = Def::gauge(
    "nats_jetstream_meta_replica_lag",
    "Raft entries a meta group peer is behind the meta leader.",
);
pub static META_REPLICA_ACTIVE: Def = Def::gauge(
    "nats_jetstream_meta_replica_active_seconds",
    "Seconds since the meta leader last heard from a meta group peer.",
);

/// An RFC 3339 time as Unix seconds; Go's zero time (year 1, "never") is `None`.
fn unix_time(t: Option<&str>) -> Option<f64> {
    t.and_then(rfc3339_to_unix).filter(|&s| s > 0.0)
}

fn node_labels(node: &str) -> Labels {
    vec![("node", node.to_string())].into()
}

pub fn collect(v: &Varz, node: &str, out: &mut MetricSet) {
    let shared = node_labels(node);
    let l = || shared.clone();
    out.push(
        &SERVER_INFO,
        vec![
            ("node", node.to_string()),
            ("server_name", v.name().to_string()),
            ("server_id", v.server_id.clone()),
            ("version", v.version.clone()),
            ("go", v.go.clone()),
            ("cluster", v.cluster.name.clone()),
            (
                "domain",
                v.jetstream
                    .config
                    .as_ref()
                    .map(|c| c.domain.clone())
                    .unwrap_or_default(),
            ),
        ],
        1u64,
    );
    out.push_opt(&START_TIME, l, v.start.as_deref().and_then(rfc3339_to_unix));
    out.push_opt(
        &CONFIG_LOAD_TIME,
        l,
        v.config_load_time.as_deref().and_then(rfc3339_to_unix),
    );
    out.push_opt(&MEMORY, l, v.mem);
    out.push_opt(&CPU, l, v.cpu.map(|c| c / 100.0));
    out.push_opt(&CORES, l, v.cores);
    out.push_opt(&GOMAXPROCS, l, v.gomaxprocs);
    out.push_opt(&CONNECTIONS, l, v.connections);
    out.push_opt(&MAX_CONNECTIONS, l, v.max_connections);
    out.push_opt(&ACCEPTED_CONNECTIONS, l, v.total_connections);
    out.push_opt(&SUBSCRIPTIONS, l, v.subscriptions);
    out.push_opt(&SLOW_CONSUMERS, l, v.slow_consumers);
    if let Some(s) = &v.slow_consumer_stats {
        for (kind, n) in [
            ("client", s.clients),
            ("route", s.routes),
            ("gateway", s.gateways),
            ("leaf", s.leafs),
        ] {
            out.push(
                &SLOW_CONSUMERS_BY_KIND,
                vec![("node", node.to_string()), ("kind", kind.to_string())],
                n,
            );
        }
    }
    out.push_opt(&STALE_CONNECTIONS, l, v.stale_connections);
    if let Some(s) = &v.stale_connection_stats {
        for (kind, n) in [
            ("client", s.clients),
            ("route", s.routes),
            ("gateway", s.gateways),
            ("leaf", s.leafs),
        ] {
            out.push(
                &STALE_CONNECTIONS_BY_KIND,
                vec![("node", node.to_string()), ("kind", kind.to_string())],
                n,
            );
        }
    }
    out.push_opt(&STALLED_CLIENTS, l, v.stalled_clients);
    for (listener, t) in [
        ("client", &v.tls_cert_not_after),
        ("cluster", &v.cluster.tls_cert_not_after),
        ("gateway", &v.gateway.tls_cert_not_after),
        ("leafnode", &v.leaf.tls_cert_not_after),
    ] {
        out.push_opt(
            &TLS_CERT_NOT_AFTER,
            || {
                vec![
                    ("node", node.to_string()),
                    ("listener", listener.to_string()),
                ]
            },
            unix_time(t.as_deref()),
        );
    }
    out.push_opt(
        &GOMEMLIMIT,
        l,
        v.gomemlimit.filter(|&m| m > 0 && m < i64::MAX as u64),
    );
    if let Some(d) = &v.disk_io_wait_stats {
        out.push(&DISK_IO_WAITERS, l(), d.waiters);
        out.push(&DISK_IO_WAITS, l(), d.waits);
        out.push(&DISK_IO_WAIT_TIME, l(), d.wait_time as f64 / 1e9);
        out.push(&DISK_IO_MAX_WAIT, l(), d.max_wait_time as f64 / 1e9);
    }
    out.push_opt(&IN_MSGS, l, v.in_msgs);
    out.push_opt(&OUT_MSGS, l, v.out_msgs);
    out.push_opt(&IN_BYTES, l, v.in_bytes);
    out.push_opt(&OUT_BYTES, l, v.out_bytes);
    out.push_opt(&ROUTES, l, v.routes);
    out.push_opt(&REMOTES, l, v.remotes);
    out.push_opt(&LEAFNODES, l, v.leafnodes);
    out.push_opt(&MAX_PAYLOAD, l, v.max_payload);

    let js = &v.jetstream;
    out.push(&JS_ENABLED, l(), v.jetstream_enabled());
    if let Some(c) = &js.config {
        // An unset limit is absent (see `limit`); exporting -1 would break ratio alerts.
        out.push_opt(&JS_MAX_MEMORY, l, c.max_memory);
        out.push_opt(&JS_MAX_STORAGE, l, c.max_storage);
    }
    if let Some(s) = &js.stats {
        out.push(&JS_MEMORY, l(), s.memory);
        out.push(&JS_STORAGE, l(), s.storage);
        out.push_opt(&JS_RESERVED_MEMORY, l, s.reserved_memory);
        out.push_opt(&JS_RESERVED_STORAGE, l, s.reserved_storage);
        out.push(&JS_ACCOUNTS, l(), s.accounts);
        out.push(&JS_HA_ASSETS, l(), s.ha_assets);
        out.push(&JS_API_REQUESTS, l(), s.api.total);
        out.push(&JS_API_ERRORS, l(), s.api.errors);
        // The server leaves the field out while it is zero: an idle server has 0, not
        // an absent series (a panel or alert on it would show nothing).
        out.push(&JS_API_INFLIGHT, l(), s.api.inflight.unwrap_or(0));
        out.push_opt(&JS_API_LEVEL, l, s.api.level);
    }
    if let Some(meta) = &js.meta {
        out.push(&META_IS_LEADER, l(), v.is_meta_leader());
        out.push(&META_HAS_LEADER, l(), !meta.leader.is_empty());
        if !meta.leader.is_empty() {
            out.push(
                &META_LEADER_INFO,
                vec![("node", node.to_string()), ("leader", meta.leader.clone())],
                1u64,
            );
        }
        out.push(&META_CLUSTER_SIZE, l(), meta.cluster_size);
        out.push_opt(&META_PENDING, l, meta.pending);
        if let Some(snap) = &meta.snapshot {
            out.push(&META_SNAPSHOT_PENDING_ENTRIES, l(), snap.pending_entries);
            out.push(&META_SNAPSHOT_PENDING_BYTES, l(), snap.pending_size);
            out.push_opt(
                &META_SNAPSHOT_LAST_TIME,
                l,
                unix_time(snap.last_time.as_deref()),
            );
            out.push_opt(
                &META_SNAPSHOT_LAST_DURATION,
                l,
                snap.last_duration.map(|d| d as f64 / 1e9),
            );
        }
        if v.is_meta_leader() {
            for p in &meta.replicas {
                let pl = || vec![("cluster", meta.name.clone()), ("peer", p.name.clone())];
                out.push(&META_REPLICA_CURRENT, pl(), p.current);
                out.push(&META_REPLICA_OFFLINE, pl(), p.offline);
                out.push(&META_REPLICA_LAG, pl(), p.lag);
                out.push(&META_REPLICA_ACTIVE, pl(), p.active as f64 / 1e9);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Value;

    /// The fields newer servers add, as 2.15.1 sends them (TLS on and GOMEMLIMIT set);
    /// `disk_io_wait_stats` values are made up, 2.15.1 idles at zeros.
    const NEW_FIELDS: &str = r#"{
      "server_id": "X", "server_name": "n1", "version": "2.15.1",
      "slow_consumer_stats": {"clients": 1, "routes": 2, "gateways": 0, "leafs": 0},
      "stale_connections": 3, "stalled_clients": 4,
      "stale_connection_stats": {"clients": 3, "routes": 0, "gateways": 0, "leafs": 0},
      "tls_cert_not_after": "2026-12-05T00:30:26Z",
      "cluster": {"name": "c1", "tls_cert_not_after": "0001-01-01T00:00:00Z"},
      "gomemlimit": 536870912,
      "disk_io_wait_stats": {"waiters": 2, "waits": 10, "wait_time": 1500000000, "max_wait_time": 250000000},
      "jetstream": {
        "config": {"max_memory": 1024},
        "stats": {"memory": 0, "storage": 0, "api": {"level": 5, "total": 7, "errors": 0}},
        "meta": {"name": "c1", "leader": "n1", "cluster_size": 3, "pending": 2,
                 "snapshot": {"pending_entries": 4, "pending_size": 3714,
                              "last_time": "0001-01-01T00:00:00Z"}}
      }
    }"#;

    fn collect_str(json: &str) -> MetricSet {
        let v: Varz = serde_json::from_str(json).unwrap();
        let mut m = MetricSet::default();
        collect(&v, "n1", &mut m);
        m
    }

    #[test]
    fn newer_fields_are_exported_in_their_units() {
        let m = collect_str(NEW_FIELDS);
        let g = |name: &str, l: &[(&str, &str)]| m.get(name, l);
        assert_eq!(
            g(
                "nats_varz_slow_consumers_by_kind_total",
                &[("kind", "route")]
            ),
            Some(Value::Uint(2))
        );
        assert_eq!(
            g("nats_varz_stale_connections_total", &[]),
            Some(Value::Uint(3))
        );
        assert_eq!(
            g(
                "nats_varz_stale_connections_by_kind_total",
                &[("kind", "client")]
            ),
            Some(Value::Uint(3))
        );
        assert_eq!(
            g("nats_varz_stalled_clients_total", &[]),
            Some(Value::Uint(4))
        );
        assert_eq!(
            g(
                "nats_varz_tls_cert_not_after_seconds",
                &[("listener", "client")]
            ),
            Some(Value::Float(1_796_430_626.0))
        );
        // Go's zero time is "no certificate", not a date in year 1.
        assert_eq!(
            g(
                "nats_varz_tls_cert_not_after_seconds",
                &[("listener", "cluster")]
            ),
            None
        );
        assert_eq!(
            g("nats_varz_gomemlimit_bytes", &[]),
            Some(Value::Uint(536_870_912))
        );
        assert_eq!(g("nats_varz_disk_io_waiters", &[]), Some(Value::Uint(2)));
        assert_eq!(
            g("nats_varz_disk_io_waits_total", &[]),
            Some(Value::Uint(10))
        );
        assert_eq!(
            g("nats_varz_disk_io_wait_seconds_total", &[]),
            Some(Value::Float(1.5))
        );
        assert_eq!(
            g("nats_varz_disk_io_max_wait_seconds", &[]),
            Some(Value::Float(0.25))
        );
        assert_eq!(g("nats_jetstream_api_level", &[]), Some(Value::Uint(5)));
        assert_eq!(g("nats_jetstream_meta_pending", &[]), Some(Value::Uint(2)));
        assert_eq!(
            g("nats_jetstream_meta_snapshot_pending_entries", &[]),
            Some(Value::Uint(4))
        );
        assert_eq!(
            g("nats_jetstream_meta_snapshot_pending_bytes", &[]),
            Some(Value::Uint(3714))
        );
        assert_eq!(
            g("nats_jetstream_meta_snapshot_last_time_seconds", &[]),
            None
        );
        assert_eq!(
            g("nats_jetstream_meta_snapshot_last_duration_seconds", &[]),
            None
        );
    }

    #[test]
    fn older_servers_and_nulls_have_no_series_for_them() {
        let m = collect_str(
            r#"{"server_name": "n1", "version": "2.9.10", "disk_io_wait_stats": null,
                "jetstream": {"config": {}, "stats": {"api": {"total": 1}},
                              "meta": {"leader": "n1", "snapshot": null}}}"#,
        );
        for name in [
            "nats_varz_slow_consumers_by_kind_total",
            "nats_varz_stale_connections_total",
            "nats_varz_stalled_clients_total",
            "nats_varz_tls_cert_not_after_seconds",
            "nats_varz_gomemlimit_bytes",
            "nats_varz_disk_io_waits_total",
            "nats_jetstream_api_level",
            "nats_jetstream_meta_pending",
            "nats_jetstream_meta_snapshot_pending_entries",
        ] {
            assert_eq!(m.get(name, &[]), None, "{name}");
        }
    }
}
