//! Owns the aggregation of all nodes' latest polls into one `MetricSet` (not a
//! prometheus-client `Collector`: the render loop in `render` drives it). It does no I/O: it
//! joins what only a whole-cluster view can give (server names for 2.9 routes, one
//! leader-reported series per stream and consumer) and delegates the rest to the
//! endpoint modules.

use std::collections::HashMap;

use super::jsz;
use super::leader_view::{self, JszView};
use super::snapshot::NodePoll;
use super::{accstatz, connz, gatewayz, healthz, leafz, routez, subsz, varz};
use crate::config::ConsumerPolicy;
use crate::exposition::{Def, MetricSet};

pub static UP: Def = Def::gauge(
    "nats_up",
    "1 when the node's /varz answered in the last poll, else 0.",
);

/// Collects every configured node; `polls` pairs each node label with its latest poll.
pub fn collect(polls: &[(&str, &NodePoll)], policy: &ConsumerPolicy) -> MetricSet {
    let mut out = MetricSet::default();
    let mut names: HashMap<String, String> = HashMap::new();
    for (_, p) in polls {
        if let Some(v) = &p.varz {
            names.insert(v.server_id.clone(), v.name().to_string());
        }
    }
    for (node, p) in polls {
        out.push(&UP, vec![("node", node.to_string())], p.up());
        let Some(v) = &p.varz else { continue };
        varz::collect(v, node, &mut out);
        if let Some(j) = &p.jsz {
            jsz::collect_node(j, node, &mut out);
        }
        if let Some(c) = &p.connz {
            connz::collect(c, node, &mut out);
        }
        if let Some(r) = &p.routez {
            routez::collect(r, node, &names, &mut out);
        }
        if let Some(h) = &p.healthz {
            healthz::collect(h, node, &mut out);
        }
        if let Some(a) = &p.accstatz {
            accstatz::collect(a, node, &mut out);
        }
        if let Some(s) = &p.subsz {
            subsz::collect(s, node, &mut out);
        }
        if let Some(g) = &p.gatewayz {
            gatewayz::collect(g, node, &mut out);
        }
        if let Some(l) = &p.leafz {
            leafz::collect(l, node, &mut out);
        }
    }
    let views: Vec<JszView<'_>> = polls
        .iter()
        .filter_map(|(node, p)| {
            let v = p.varz.as_ref()?;
            let j = p.jsz.as_ref()?;
            let cluster = j
                .meta_cluster
                .as_ref()
                .map(|m| m.name.as_str())
                .filter(|n| !n.is_empty())
                .unwrap_or(if v.cluster.name.is_empty() {
                    v.name()
                } else {
                    &v.cluster.name
                });
            Some(JszView {
                node,
                server_name: v.name(),
                cluster,
                jsz: j,
            })
        })
        .collect();
    leader_view::collect_cluster(&views, policy, &mut out);
    out
}
