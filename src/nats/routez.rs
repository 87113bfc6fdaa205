//! Owns `/routez`: the cluster's route mesh as each node sees it, one series set per
//! remote server with RTT, pending bytes and traffic.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::link::{LinkDefs, LinkSample, LinkTotals};
use crate::exposition::{Def, MetricSet};

pub const PATH: &str = "/routez";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Routez {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub server_id: String,
    pub num_routes: u64,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub routes: Vec<RouteInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RouteInfo {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub remote_id: String,
    /// Added in 2.10.
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub remote_name: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub ip: String,
    pub port: u64,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub rtt: String,
    pub pending_size: u64,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: u64,
}

pub static NUM_ROUTES: Def = Def::gauge(
    "nats_routez_routes",
    "Route connections reported by /routez.",
);
pub static DEFS: LinkDefs = LinkDefs {
    connections: Def::gauge(
        "nats_route_connections",
        "Route connections from this node to a remote server.",
    ),
    rtt: Def::gauge(
        "nats_route_rtt_seconds",
        "Round-trip time to a remote server (largest over its routes).",
    ),
    pending: Some(Def::gauge(
        "nats_route_pending_bytes",
        "Bytes queued for a remote server.",
    )),
    in_msgs: Def::counter(
        "nats_route_in_msgs_total",
        "Messages received from a remote server over routes.",
    ),
    out_msgs: Def::counter(
        "nats_route_out_msgs_total",
        "Messages sent to a remote server over routes.",
    ),
    in_bytes: Def::counter(
        "nats_route_in_bytes_total",
        "Bytes received from a remote server over routes.",
    ),
    out_bytes: Def::counter(
        "nats_route_out_bytes_total",
        "Bytes sent to a remote server over routes.",
    ),
    subscriptions: Def::gauge(
        "nats_route_subscriptions",
        "Subscriptions a remote server has registered here.",
    ),
};

/// `names` maps server IDs to server names from the other nodes' `/varz`, so 2.9 routes,
/// which carry only the remote's ID, still get a name that survives restarts.
pub fn collect(r: &Routez, node: &str, names: &HashMap<String, String>, out: &mut MetricSet) {
    out.push(&NUM_ROUTES, vec![("node", node.to_string())], r.num_routes);
    let mut by_remote: BTreeMap<&str, LinkTotals> = BTreeMap::new();
    for route in &r.routes {
        let remote = if !route.remote_name.is_empty() {
            route.remote_name.as_str()
        } else {
            names
                .get(&route.remote_id)
                .map(String::as_str)
                .unwrap_or(route.remote_id.as_str())
        };
        by_remote.entry(remote).or_default().add(LinkSample {
            rtt: &route.rtt,
            pending_bytes: route.pending_size,
            in_msgs: route.in_msgs,
            out_msgs: route.out_msgs,
            in_bytes: route.in_bytes,
            out_bytes: route.out_bytes,
            subscriptions: route.subscriptions,
        });
    }
    for (remote, t) in by_remote {
        t.emit(
            &DEFS,
            vec![("node", node.to_string()), ("remote", remote.to_string())],
            out,
        );
    }
}
