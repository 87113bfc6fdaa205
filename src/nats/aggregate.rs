//! Owns the aggregation of all nodes' latest polls into one `MetricSet` (not a
//! prometheus-client `Collector`: the render loop in `render` drives it). It does no I/O: it
//! joins what only a whole-cluster view can give (server names for 2.9 routes, one
//! leader-reported series per stream and consumer) and delegates the rest to the
//! endpoint modules.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::jsz;
use super::leader_view::{self, JszView, Memory, Presence};
use super::snapshot::{KnownServer, NodePoll};
use super::view::{ClusterView, MemberView, MetaView, PeerView};
use super::{accstatz, connz, gatewayz, healthz, leafz, raftz, routez, subsz, varz};
use crate::config::ConsumerPolicy;
use crate::exposition::{Def, MetricSet};

pub static UP: Def = Def::gauge(
    "nats_up",
    "1 when the node's /varz answered in the last poll, else 0.",
);

pub static NODE_INFO: Def = Def::gauge(
    "nats_node_info",
    "A configured node's server name and cluster as it last gave them, also while it is down; always 1.",
);
pub static MEMBER_POLLED: Def = Def::gauge(
    "nats_cluster_member_polled",
    "1 for a cluster member natsmon polls; 0 for one it knows from routes or the meta group but does not poll.",
);

/// One configured node as the render sees it.
pub struct NodeInput<'a> {
    pub node: &'a str,
    pub poll: &'a NodePoll,
    /// Its identity from its last successful poll, kept while it is down.
    pub known: Option<&'a KnownServer>,
}

/// Collects every configured node; `polls` pairs each node label with its latest poll.
/// A render without history: what the golden tests and one-off callers need.
pub fn collect(polls: &[(&str, &NodePoll)], policy: &ConsumerPolicy) -> MetricSet {
    let inputs: Vec<NodeInput<'_>> = polls
        .iter()
        .map(|(node, poll)| NodeInput {
            node,
            poll,
            known: None,
        })
        .collect();
    collect_all(&inputs, policy, &mut Memory::default()).0
}

/// Collects every configured node into the exposition and the console's view, with what
/// earlier renders left in `memory`.
pub fn collect_all(
    nodes: &[NodeInput<'_>],
    policy: &ConsumerPolicy,
    memory: &mut Memory,
) -> (MetricSet, ClusterView) {
    let polls: Vec<(&str, &NodePoll)> = nodes.iter().map(|n| (n.node, n.poll)).collect();
    let mut view = ClusterView::default();
    let mut out = MetricSet::default();
    for n in nodes {
        let known = n
            .poll
            .varz
            .as_ref()
            .map(|v| (v.name(), v.cluster.name.as_str()));
        let known = known.or(n
            .known
            .map(|k| (k.server_name.as_str(), k.cluster.as_str())));
        if let Some((name, cluster)) = known {
            out.push(
                &NODE_INFO,
                vec![
                    ("node", n.node.to_string()),
                    ("server_name", name.to_string()),
                    ("cluster", cluster.to_string()),
                ],
                1u64,
            );
        }
    }
    let mut names: HashMap<String, String> = HashMap::new();
    for (_, p) in &polls {
        if let Some(v) = &p.varz {
            names.insert(v.server_id.clone(), v.name().to_string());
        }
    }
    // Per-node objects beyond their caps, summed like the consumers' count.
    let (mut raft_left_out, mut raft_seen) = (0u64, false);
    let (mut health_left_out, mut health_seen) = (0u64, false);
    for (node, p) in &polls {
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
            health_left_out += healthz::collect(h, node, &mut out);
            health_seen |= !h.errors.is_empty();
        }
        if let Some(r) = &p.raftz {
            raft_left_out += raftz::collect(r, node, &mut out);
            raft_seen = true;
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
    for (kind, seen, n) in [
        ("raft_group", raft_seen, raft_left_out),
        ("health_error", health_seen, health_left_out),
    ] {
        if seen {
            out.push(
                &leader_view::NOT_EXPORTED,
                vec![("kind", kind.into()), ("reason", "limit".into())],
                n,
            );
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
    let presence = Presence {
        up: polls
            .iter()
            .filter_map(|(_, p)| p.varz.as_ref().map(|v| v.name()))
            .collect(),
        leader_only: polls
            .iter()
            .filter_map(|(_, p)| {
                let j = p.jsz.as_ref().filter(|j| j.stream_leader_only)?;
                Some(p.varz.as_ref()?.name()).filter(|_| !j.disabled)
            })
            .collect(),
    };
    leader_view::collect_cluster(&views, policy, &presence, memory, &mut out, &mut view);
    members(nodes, &mut out, &mut view);
    view.meta = meta(&polls, &presence);
    // Every node-level series carries its node's cluster, also while the node is down
    // (its last known one): the dashboards' `cluster` variable filters them all.
    let clusters: HashMap<&str, &str> = nodes
        .iter()
        .filter_map(|n| {
            let c = match &n.poll.varz {
                Some(v) => v.cluster.name.as_str(),
                None => n.known?.cluster.as_str(),
            };
            (!c.is_empty()).then_some((n.node, c))
        })
        .collect();
    out.label_clusters(&clusters);
    (out, view)
}

/// Every cluster member natsmon knows of: its own nodes (by their server names, also
/// while down), the routes they have, and the meta group's peers. The ones it does not
/// poll are what an operator must add.
fn members(nodes: &[NodeInput<'_>], out: &mut MetricSet, view: &mut ClusterView) {
    // server name -> (cluster, natsmon node label, routes)
    let mut all: BTreeMap<String, (String, Option<String>, Vec<String>)> = BTreeMap::new();
    let ids: HashMap<&str, &str> = nodes
        .iter()
        .filter_map(|n| n.poll.varz.as_ref())
        .map(|v| (v.server_id.as_str(), v.name()))
        .collect();
    for n in nodes {
        let (name, cluster) = match (&n.poll.varz, n.known) {
            (Some(v), _) => (v.name().to_string(), v.cluster.name.clone()),
            (None, Some(k)) => (k.server_name.clone(), k.cluster.clone()),
            (None, None) => continue,
        };
        // 2.9 routes carry only the remote's ID; the polled nodes' /varz name it.
        let routes: Vec<String> = n
            .poll
            .routez
            .iter()
            .flat_map(|r| &r.routes)
            .filter_map(|r| {
                if r.remote_name.is_empty() {
                    ids.get(r.remote_id.as_str()).map(|s| s.to_string())
                } else {
                    Some(r.remote_name.clone())
                }
            })
            .collect();
        let e = all
            .entry(name)
            .or_insert_with(|| (cluster.clone(), None, Vec::new()));
        e.1 = Some(n.node.to_string());
        e.2 = routes.clone();
        e.2.sort();
        e.2.dedup();
        let meta_peers = n
            .poll
            .jsz
            .as_ref()
            .and_then(|j| j.meta_cluster.as_ref())
            .into_iter()
            .chain(n.poll.varz.as_ref().and_then(|v| v.jetstream.meta.as_ref()))
            .flat_map(|m| {
                // The meta leader by name, and its peer list where this node leads.
                std::iter::once(m.leader.clone()).chain(m.replicas.iter().map(|p| p.name.clone()))
            })
            .collect::<Vec<_>>();
        // 2.9 names neither route peers nor, off the meta leader, meta peers; the Raft
        // groups of this cluster's streams and consumers still name their servers.
        let group_members = n
            .poll
            .jsz
            .iter()
            .flat_map(|j| &j.account_details)
            .flat_map(|a| &a.stream_detail)
            .flat_map(|st| {
                st.cluster
                    .iter()
                    .chain(st.consumer_detail.iter().filter_map(|c| c.cluster.as_ref()))
            })
            .filter(|c| c.name.is_empty() || c.name == cluster)
            .flat_map(|c| {
                std::iter::once(c.leader.clone()).chain(c.replicas.iter().map(|p| p.name.clone()))
            })
            .collect::<Vec<_>>();
        for other in routes.into_iter().chain(meta_peers).chain(group_members) {
            if !other.is_empty() {
                all.entry(other)
                    .or_insert_with(|| (cluster.clone(), None, Vec::new()));
            }
        }
    }
    for (server_name, (cluster, node, routes)) in all {
        if cluster.is_empty() && node.is_some() && routes.is_empty() {
            // A standalone server: no cluster to be a member of.
            continue;
        }
        out.push(
            &MEMBER_POLLED,
            vec![
                ("cluster", cluster.clone()),
                ("server_name", server_name.clone()),
            ],
            node.is_some(),
        );
        view.members.push(MemberView {
            cluster,
            server_name,
            polled: node.is_some(),
            node,
            routes,
        });
    }
    // A member natsmon does not poll may lead streams, which no filtered `/jsz` of the
    // others reports: the polled members of such a cluster are read whole, so that those
    // streams show, from their most advanced replica, with their leader not polled.
    let partial: BTreeSet<&str> = view
        .members
        .iter()
        .filter(|m| !m.polled)
        .map(|m| m.cluster.as_str())
        .collect();
    let whole: Vec<String> = view
        .members
        .iter()
        .filter(|m| m.polled && partial.contains(m.cluster.as_str()))
        .map(|m| m.server_name.clone())
        .collect();
    view.full_jsz.extend(whole);
}

/// The meta group of each cluster: its leader as the polled nodes see it, and its peers
/// from the leader's report where natsmon polls the leader.
fn meta(polls: &[(&str, &NodePoll)], presence: &Presence<'_>) -> Vec<MetaView> {
    let mut by_cluster: BTreeMap<String, MetaView> = BTreeMap::new();
    for (_, p) in polls {
        let Some(v) = &p.varz else { continue };
        let Some(m) = v.jetstream.meta.as_ref() else {
            continue;
        };
        let cluster = if m.name.is_empty() {
            v.cluster.name.clone()
        } else {
            m.name.clone()
        };
        let e = by_cluster
            .entry(cluster.clone())
            .or_insert_with(|| MetaView {
                cluster,
                ..Default::default()
            });
        if e.leader.is_empty() && !m.leader.is_empty() {
            e.leader = m.leader.clone();
        }
        e.cluster_size = e.cluster_size.max(m.cluster_size);
        if v.is_meta_leader() || (e.peers.is_empty() && !m.replicas.is_empty()) {
            e.peers = m
                .replicas
                .iter()
                .map(|r| PeerView {
                    name: r.name.clone(),
                    current: r.current,
                    offline: r.offline,
                    lag: r.lag,
                    active_seconds: r.active.max(0) as f64 / 1e9,
                })
                .collect();
        }
    }
    by_cluster
        .into_values()
        .map(|mut m| {
            m.leader_polled = presence.up.contains(m.leader.as_str());
            m
        })
        .collect()
}
