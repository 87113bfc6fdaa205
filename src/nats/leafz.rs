//! Owns `/leafz`, polled only on nodes with leaf nodes configured: leaf connections
//! aggregated per account, since leaf addresses and ids change on reconnect.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::link::{LinkDefs, LinkSample, LinkTotals};
use crate::exposition::{Def, MetricSet};

pub const PATH: &str = "/leafz";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Leafz {
    pub leafnodes: u64,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub leafs: Vec<LeafInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LeafInfo {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub account: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub rtt: String,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: u64,
}

pub static LEAFNODES: Def = Def::gauge(
    "nats_leafz_leafnodes",
    "Leaf node connections reported by /leafz.",
);
pub static DEFS: LinkDefs = LinkDefs {
    connections: Def::gauge(
        "nats_leafnode_connections",
        "Leaf node connections bound to an account.",
    ),
    rtt: Def::gauge(
        "nats_leafnode_rtt_seconds",
        "Round-trip time to the account's leaf nodes (largest).",
    ),
    pending: None,
    in_msgs: Def::counter(
        "nats_leafnode_in_msgs_total",
        "Messages received from the account's leaf nodes.",
    ),
    out_msgs: Def::counter(
        "nats_leafnode_out_msgs_total",
        "Messages sent to the account's leaf nodes.",
    ),
    in_bytes: Def::counter(
        "nats_leafnode_in_bytes_total",
        "Bytes received from the account's leaf nodes.",
    ),
    out_bytes: Def::counter(
        "nats_leafnode_out_bytes_total",
        "Bytes sent to the account's leaf nodes.",
    ),
    subscriptions: Def::gauge(
        "nats_leafnode_subscriptions",
        "Subscriptions over the account's leaf connections.",
    ),
};

pub fn collect(l: &Leafz, node: &str, out: &mut MetricSet) {
    out.push(&LEAFNODES, vec![("node", node.to_string())], l.leafnodes);
    let mut by_account: BTreeMap<&str, LinkTotals> = BTreeMap::new();
    for leaf in &l.leafs {
        by_account
            .entry(leaf.account.as_str())
            .or_default()
            .add(LinkSample {
                rtt: &leaf.rtt,
                pending_bytes: 0,
                in_msgs: leaf.in_msgs,
                out_msgs: leaf.out_msgs,
                in_bytes: leaf.in_bytes,
                out_bytes: leaf.out_bytes,
                subscriptions: leaf.subscriptions,
            });
    }
    for (account, t) in by_account {
        t.emit(
            &DEFS,
            vec![("node", node.to_string()), ("account", account.to_string())],
            out,
        );
    }
}
