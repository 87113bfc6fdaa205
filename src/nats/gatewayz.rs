//! Owns `/gatewayz`, polled only on nodes with a gateway configured: one series set per
//! remote gateway and direction.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::connz::ConnInfo;
use super::link::{LinkDefs, LinkSample, LinkTotals};
use crate::exposition::{Def, MetricSet};

pub const PATH: &str = "/gatewayz";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Gatewayz {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub name: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub outbound_gateways: BTreeMap<String, RemoteGateway>,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub inbound_gateways: BTreeMap<String, Vec<RemoteGateway>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RemoteGateway {
    pub configured: bool,
    pub connection: Option<ConnInfo>,
}

pub static CONFIGURED: Def = Def::gauge(
    "nats_gateway_configured",
    "1 when an outbound gateway is explicitly configured.",
);
pub static DEFS: LinkDefs = LinkDefs {
    connections: Def::gauge(
        "nats_gateway_connections",
        "Gateway connections to a remote cluster.",
    ),
    rtt: Def::gauge(
        "nats_gateway_rtt_seconds",
        "Round-trip time to a remote gateway (largest).",
    ),
    pending: Some(Def::gauge(
        "nats_gateway_pending_bytes",
        "Bytes queued for a remote gateway.",
    )),
    in_msgs: Def::counter(
        "nats_gateway_in_msgs_total",
        "Messages received from a remote gateway.",
    ),
    out_msgs: Def::counter(
        "nats_gateway_out_msgs_total",
        "Messages sent to a remote gateway.",
    ),
    in_bytes: Def::counter(
        "nats_gateway_in_bytes_total",
        "Bytes received from a remote gateway.",
    ),
    out_bytes: Def::counter(
        "nats_gateway_out_bytes_total",
        "Bytes sent to a remote gateway.",
    ),
    subscriptions: Def::gauge(
        "nats_gateway_subscriptions",
        "Subscriptions over a gateway connection.",
    ),
};

fn add(t: &mut LinkTotals, c: &ConnInfo) {
    t.add(LinkSample {
        rtt: &c.rtt,
        pending_bytes: c.pending_bytes,
        in_msgs: c.in_msgs,
        out_msgs: c.out_msgs,
        in_bytes: c.in_bytes,
        out_bytes: c.out_bytes,
        subscriptions: c.subscriptions,
    });
}

pub fn collect(g: &Gatewayz, node: &str, out: &mut MetricSet) {
    let labels = |gw: &str, dir: &str| {
        vec![
            ("node", node.to_string()),
            ("gateway", gw.to_string()),
            ("direction", dir.to_string()),
        ]
    };
    for (name, remote) in &g.outbound_gateways {
        out.push(
            &CONFIGURED,
            vec![("node", node.to_string()), ("gateway", name.clone())],
            remote.configured,
        );
        let mut t = LinkTotals::default();
        if let Some(c) = &remote.connection {
            add(&mut t, c);
        }
        t.emit(&DEFS, labels(name, "outbound"), out);
    }
    for (name, remotes) in &g.inbound_gateways {
        let mut t = LinkTotals::default();
        for c in remotes.iter().filter_map(|r| r.connection.as_ref()) {
            add(&mut t, c);
        }
        t.emit(&DEFS, labels(name, "inbound"), out);
    }
}
