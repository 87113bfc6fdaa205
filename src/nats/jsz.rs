//! Owns `/jsz` on one node: its serde types, the node's JetStream totals and its
//! per-account usage. The cluster-wide stream and consumer view built from every node's
//! report is `leader_view`.

use serde::Deserialize;

use super::PeerInfo;
use super::varz::ApiStats;
use crate::exposition::{Def, MetricSet};

/// `consumers` implies `streams` and `accounts`; `config` adds the limits alerts need.
pub const PATH: &str = "/jsz?accounts=true&streams=true&consumers=true&config=true";

/// Accounts per page; nats-server's own default and cap.
pub const ACCOUNT_PAGE: usize = 1024;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Jsz {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub server_id: String,
    pub disabled: bool,
    pub streams: u64,
    pub consumers: u64,
    pub messages: u64,
    pub bytes: u64,
    pub meta_cluster: Option<super::varz::MetaCluster>,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub account_details: Vec<AccountDetail>,
    /// Accounts on the server, across pages; added in 2.10.28.
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccountDetail {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub name: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub id: String,
    pub memory: u64,
    pub storage: u64,
    /// Go's `-1` as a `uint64` when the account has no JetStream limit.
    #[serde(deserialize_with = "crate::nats::limit")]
    pub reserved_memory: Option<u64>,
    #[serde(deserialize_with = "crate::nats::limit")]
    pub reserved_storage: Option<u64>,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub api: ApiStats,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub stream_detail: Vec<StreamDetail>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StreamDetail {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub name: String,
    pub cluster: Option<ClusterInfo>,
    pub config: Option<StreamConfig>,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub state: StreamState,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub consumer_detail: Vec<ConsumerInfo>,
    pub mirror: Option<SourceInfo>,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub sources: Vec<SourceInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClusterInfo {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub name: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub leader: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub replicas: Vec<PeerInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StreamConfig {
    pub max_consumers: i64,
    pub max_msgs: i64,
    pub max_bytes: i64,
    /// Nanoseconds; 0 means unlimited.
    pub max_age: i64,
    pub max_msgs_per_subject: i64,
    pub num_replicas: i64,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub storage: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub retention: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StreamState {
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub num_subjects: u64,
    pub num_deleted: u64,
    pub consumer_count: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SourceInfo {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub name: String,
    pub lag: u64,
    /// Nanoseconds since the source was last active; -1 when never.
    pub active: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ConsumerInfo {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub stream_name: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub name: String,
    pub config: Option<ConsumerConfig>,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub delivered: SequenceInfo,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub ack_floor: SequenceInfo,
    pub num_ack_pending: u64,
    pub num_redelivered: u64,
    pub num_waiting: u64,
    pub num_pending: u64,
    pub cluster: Option<ClusterInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ConsumerConfig {
    pub durable_name: Option<String>,
    pub max_ack_pending: i64,
    pub max_deliver: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SequenceInfo {
    pub consumer_seq: u64,
    pub stream_seq: u64,
    /// RFC 3339 time of the last delivery (2.10+; Go's zero time when never).
    pub last_active: Option<String>,
}

impl ConsumerInfo {
    /// Ephemeral consumers have no durable name. Without config we cannot tell, and treat
    /// the consumer as durable so that it stays visible.
    pub fn is_ephemeral(&self) -> bool {
        self.config
            .as_ref()
            .is_some_and(|c| c.durable_name.as_deref().unwrap_or("").is_empty())
    }
}

pub static STREAMS: Def = Def::gauge(
    "nats_jetstream_streams",
    "Stream replicas hosted on this node; count nats_stream_messages for the cluster's streams.",
);
pub static CONSUMERS: Def = Def::gauge(
    "nats_jetstream_consumers",
    "Consumer replicas hosted on this node.",
);
pub static MESSAGES: Def = Def::gauge(
    "nats_jetstream_stored_messages",
    "Messages stored on this node, replicas included.",
);
pub static BYTES: Def = Def::gauge(
    "nats_jetstream_stored_message_bytes",
    "Message bytes stored on this node, replicas included.",
);
pub static ACC_MEMORY: Def = Def::gauge(
    "nats_jetstream_account_memory_bytes",
    "Memory an account's streams use on this node.",
);
pub static ACC_STORAGE: Def = Def::gauge(
    "nats_jetstream_account_storage_bytes",
    "Storage an account's streams use on this node.",
);
pub static ACC_RESERVED_MEMORY: Def = Def::gauge(
    "nats_jetstream_account_reserved_memory_bytes",
    "Memory reserved for an account on this node.",
);
pub static ACC_RESERVED_STORAGE: Def = Def::gauge(
    "nats_jetstream_account_reserved_storage_bytes",
    "Storage reserved for an account on this node.",
);
pub static ACC_API_REQUESTS: Def = Def::counter(
    "nats_jetstream_account_api_requests_total",
    "JetStream API requests of an account on this node.",
);
pub static ACC_API_ERRORS: Def = Def::counter(
    "nats_jetstream_account_api_errors_total",
    "Failed JetStream API requests of an account on this node.",
);

pub fn collect_node(j: &Jsz, node: &str, out: &mut MetricSet) {
    if j.disabled {
        return;
    }
    let l = || vec![("node", node.to_string())];
    out.push(&STREAMS, l(), j.streams);
    out.push(&CONSUMERS, l(), j.consumers);
    out.push(&MESSAGES, l(), j.messages);
    out.push(&BYTES, l(), j.bytes);
    for a in &j.account_details {
        let al = || vec![("node", node.to_string()), ("account", a.name.clone())];
        out.push(&ACC_MEMORY, al(), a.memory);
        out.push(&ACC_STORAGE, al(), a.storage);
        // No reservation limit is absent (see `limit`); u64::MAX would break ratios.
        out.push_opt(&ACC_RESERVED_MEMORY, al, a.reserved_memory);
        out.push_opt(&ACC_RESERVED_STORAGE, al, a.reserved_storage);
        out.push(&ACC_API_REQUESTS, al(), a.api.total);
        out.push(&ACC_API_ERRORS, al(), a.api.errors);
    }
}
