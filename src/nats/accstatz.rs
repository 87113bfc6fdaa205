//! Owns `/accstatz`: per-account connections and traffic on each node, for multi-tenant
//! clusters. Unused accounts are requested too so an idle tenant shows zero, not nothing.

use serde::Deserialize;

use crate::exposition::{Def, MetricSet};

pub const PATH: &str = "/accstatz?unused=1";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Accstatz {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub server_id: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub account_statz: Vec<AccountStat>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccountStat {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub acc: String,
    pub conns: u64,
    pub leafnodes: u64,
    /// Added in 2.10.
    pub num_subscriptions: Option<u64>,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub sent: DataStats,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub received: DataStats,
    pub slow_consumers: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DataStats {
    pub msgs: u64,
    pub bytes: u64,
}

pub static CONNECTIONS: Def = Def::gauge(
    "nats_account_connections",
    "Client connections of an account on this node.",
);
pub static LEAFNODES: Def = Def::gauge(
    "nats_account_leafnodes",
    "Leaf node connections of an account on this node.",
);
pub static SUBSCRIPTIONS: Def = Def::gauge(
    "nats_account_subscriptions",
    "Subscriptions of an account on this node (2.10 and later).",
);
pub static SENT_MSGS: Def = Def::counter(
    "nats_account_sent_msgs_total",
    "Messages the server sent to an account's connections.",
);
pub static SENT_BYTES: Def = Def::counter(
    "nats_account_sent_bytes_total",
    "Bytes the server sent to an account's connections.",
);
pub static RECEIVED_MSGS: Def = Def::counter(
    "nats_account_received_msgs_total",
    "Messages the server received from an account's connections.",
);
pub static RECEIVED_BYTES: Def = Def::counter(
    "nats_account_received_bytes_total",
    "Bytes the server received from an account's connections.",
);
pub static SLOW_CONSUMERS: Def = Def::counter(
    "nats_account_slow_consumers_total",
    "Slow consumer events of an account on this node.",
);

pub fn collect(a: &Accstatz, node: &str, out: &mut MetricSet) {
    for s in &a.account_statz {
        let l = || vec![("node", node.to_string()), ("account", s.acc.clone())];
        out.push(&CONNECTIONS, l(), s.conns);
        out.push(&LEAFNODES, l(), s.leafnodes);
        out.push_opt(&SUBSCRIPTIONS, l, s.num_subscriptions);
        out.push(&SENT_MSGS, l(), s.sent.msgs);
        out.push(&SENT_BYTES, l(), s.sent.bytes);
        out.push(&RECEIVED_MSGS, l(), s.received.msgs);
        out.push(&RECEIVED_BYTES, l(), s.received.bytes);
        out.push(&SLOW_CONSUMERS, l(), s.slow_consumers);
    }
}
