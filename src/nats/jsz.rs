//! Owns `/jsz` on one node: its serde types, the node's JetStream totals and its
//! per-account usage. The cluster-wide stream and consumer view built from every node's
//! report is `leader_view`.

use std::collections::HashMap;

use serde::Deserialize;

use super::PeerInfo;
use super::varz::ApiStats;
use crate::exposition::{Def, MetricSet};

/// `consumers` implies `streams` and `accounts`; `config` adds the limits alerts need.
pub const PATH: &str = "/jsz?accounts=true&streams=true&consumers=true&config=true";

/// The first release that honours `stream-leader-only`.
pub const STREAM_LEADER_ONLY_SINCE: (u64, u64, u64) = (2, 10, 19);

/// The query of one read: `config` adds stream and consumer configs (read less often,
/// see `poller`); `leader_only` keeps only the streams this server leads, each with all
/// its consumers, whoever leads them.
pub fn path(config: bool, leader_only: bool) -> String {
    let mut p = String::from("/jsz?accounts=true&streams=true&consumers=true");
    if config {
        p.push_str("&config=true");
    }
    if leader_only {
        p.push_str("&stream-leader-only=true");
    }
    p
}

/// True when `version` (as `/varz` gives it, e.g. "2.12.8" or "2.11.0-RC.1") is at least
/// `want`. An unreadable version is treated as old: the server is asked what every
/// release answers.
pub fn version_at_least(version: &str, want: (u64, u64, u64)) -> bool {
    let core = version.trim_start_matches('v');
    let core = core.split(['-', '+']).next().unwrap_or("");
    let mut parts = core.split('.').map(|p| p.parse::<u64>());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => (a, b, c) >= want,
        _ => false,
    }
}

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
    /// Set by the poller when the read asked for `stream-leader-only`: the report then
    /// holds only the streams this server leads, so a stream missing from it is not gone.
    #[serde(skip)]
    pub stream_leader_only: bool,
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
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub filter_subject: String,
    /// 2.10 and later.
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub filter_subjects: Vec<String>,
}

impl ConsumerConfig {
    /// A consumer of every message of its stream.
    pub fn unfiltered(&self) -> bool {
        self.filter_subject.is_empty() && self.filter_subjects.is_empty()
    }
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

/// Stream and consumer configs as a node last gave them, so that most reads can leave
/// `config=true` out: configs are most of a `/jsz` body and change rarely.
#[derive(Debug, Default)]
pub struct ConfigCache {
    read_at: Option<std::time::Instant>,
    streams: HashMap<(String, String), StreamConfig>,
    consumers: HashMap<(String, String, String), ConsumerConfig>,
}

impl ConfigCache {
    /// True when the configs should be read again: never read, or older than `every`.
    pub fn due(&self, now: std::time::Instant, every: std::time::Duration) -> bool {
        self.read_at
            .is_none_or(|t| now.saturating_duration_since(t) >= every)
    }

    /// Replaces the cache with the configs of a read that asked for them.
    pub fn remember(&mut self, j: &Jsz, now: std::time::Instant) {
        self.streams.clear();
        self.consumers.clear();
        for a in &j.account_details {
            for s in &a.stream_detail {
                if let Some(c) = &s.config {
                    self.streams
                        .insert((a.name.clone(), s.name.clone()), c.clone());
                }
                for c in &s.consumer_detail {
                    if let Some(cfg) = &c.config {
                        self.consumers.insert(
                            (a.name.clone(), s.name.clone(), c.name.clone()),
                            cfg.clone(),
                        );
                    }
                }
            }
        }
        self.read_at = Some(now);
    }

    /// Gives every stream and consumer of a read without configs its cached one; false
    /// when some object has none yet (new, or newly led here), and configs must be read.
    pub fn fill(&self, j: &mut Jsz) -> bool {
        let mut all = true;
        for a in &mut j.account_details {
            for s in &mut a.stream_detail {
                s.config = self.streams.get(&(a.name.clone(), s.name.clone())).cloned();
                all &= s.config.is_some();
                for c in &mut s.consumer_detail {
                    c.config = self
                        .consumers
                        .get(&(a.name.clone(), s.name.clone(), c.name.clone()))
                        .cloned();
                    all &= c.config.is_some();
                }
            }
        }
        all
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_their_numbers() {
        let since = STREAM_LEADER_ONLY_SINCE;
        assert!(version_at_least("2.10.19", since));
        assert!(version_at_least("2.10.26", since));
        assert!(version_at_least("2.12.8", since));
        assert!(version_at_least("v2.15.1", since));
        assert!(version_at_least("2.11.0-RC.1", since));
        assert!(!version_at_least("2.10.18", since));
        assert!(!version_at_least("2.9.10", since));
        assert!(!version_at_least("", since));
        assert!(!version_at_least("dev", since));
    }

    #[test]
    fn configs_are_cached_and_a_new_object_asks_for_them() {
        let read = |config: bool| -> Jsz {
            let mut v = serde_json::json!({"account_details": [{"name": "A", "stream_detail": [{
                "name": "S", "config": {"max_msgs": 10},
                "consumer_detail": [{"name": "c", "config": {"max_ack_pending": 5, "filter_subject": "s.x"}}]
            }]}]});
            if !config {
                v["account_details"][0]["stream_detail"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("config");
                v["account_details"][0]["stream_detail"][0]["consumer_detail"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("config");
            }
            serde_json::from_value(v).unwrap()
        };
        let t0 = std::time::Instant::now();
        let every = std::time::Duration::from_secs(300);
        let mut cache = ConfigCache::default();
        assert!(cache.due(t0, every));
        cache.remember(&read(true), t0);
        assert!(!cache.due(t0 + std::time::Duration::from_secs(299), every));
        assert!(cache.due(t0 + every, every));
        let mut j = read(false);
        assert!(cache.fill(&mut j));
        let s = &j.account_details[0].stream_detail[0];
        assert_eq!(s.config.as_ref().unwrap().max_msgs, 10);
        let c = s.consumer_detail[0].config.as_ref().unwrap();
        assert_eq!((c.max_ack_pending, c.unfiltered()), (5, false));
        // A stream the cache has never seen needs a read with configs.
        let mut j = read(false);
        j.account_details[0].stream_detail[0].name = "NEW".into();
        assert!(!cache.fill(&mut j));
    }

    #[test]
    fn the_path_asks_for_what_the_read_needs() {
        assert_eq!(
            path(true, false),
            "/jsz?accounts=true&streams=true&consumers=true&config=true"
        );
        assert_eq!(
            path(false, true),
            "/jsz?accounts=true&streams=true&consumers=true&stream-leader-only=true"
        );
    }
}
