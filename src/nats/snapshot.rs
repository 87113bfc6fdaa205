//! Owns the latest poll result of every node, replaced whole at the end of each poll so
//! that nothing from an earlier poll survives, and the rendered exposition built from it.
//! The node set is fixed at startup, but for discovery, which adds and removes members.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::Endpoint;
use super::accstatz::Accstatz;
use super::connz::ConnzSummary;
use super::gatewayz::Gatewayz;
use super::healthz::Healthz;
use super::jsz::Jsz;
use super::leafz::Leafz;
use super::raftz::Raftz;
use super::routez::Routez;
use super::subsz::Subsz;
use super::varz::Varz;

/// One poll of one node. Endpoints that failed are `None` and their series vanish.
#[derive(Debug, Default, Clone)]
pub struct NodePoll {
    pub varz: Option<Varz>,
    pub jsz: Option<Jsz>,
    pub connz: Option<ConnzSummary>,
    pub routez: Option<Routez>,
    pub healthz: Option<Healthz>,
    pub accstatz: Option<Accstatz>,
    pub subsz: Option<Subsz>,
    pub gatewayz: Option<Gatewayz>,
    pub leafz: Option<Leafz>,
    /// Asked only of 2.10.17+ nodes (`raftz::supported`); shared with the poller, which
    /// reuses a read for `--raftz-interval`.
    pub raftz: Option<Arc<Raftz>>,
    /// The last error of each endpoint that failed in this poll.
    pub errors: BTreeMap<Endpoint, String>,
    /// Why `/varz` failed, when the node is down: the `reason` of its error.
    pub down_reason: Option<&'static str>,
    pub finished_at: Option<SystemTime>,
    pub duration: Duration,
}

impl NodePoll {
    /// A node is up when `/varz` answered; the other endpoints then count as its data.
    pub fn up(&self) -> bool {
        self.varz.is_some()
    }
}

/// Per-node status kept for the status page across polls.
#[derive(Debug, Default, Clone)]
pub struct NodeStatus {
    pub poll: Arc<NodePoll>,
    pub last_success: Option<SystemTime>,
    /// What the node last said about itself, kept while it is down.
    pub last_known: Option<KnownServer>,
    /// When the node went down; `None` while it is up or before its first poll.
    pub down_since: Option<SystemTime>,
    /// The monitoring URL without credentials of a discovered node; configured nodes
    /// have theirs in `Settings`.
    pub display: String,
    /// How many polls (or marks down) the node has reported: the render loop waits for
    /// every node's next one, so that a round of polls is rendered once.
    pub reports: u64,
}

/// A node's identity as its last successful `/varz` gave it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KnownServer {
    pub server_name: String,
    pub version: String,
    pub cluster: String,
}

/// Every node of `nodes` with its URL: the configured ones in their order, then the
/// discovered ones by label. Without discovery this is exactly the configured list.
pub fn ordered<'a>(
    configured: &'a [crate::config::Node],
    nodes: &'a BTreeMap<String, NodeStatus>,
) -> Vec<(&'a str, &'a str, &'a NodeStatus)> {
    let mut out: Vec<(&str, &str, &NodeStatus)> = configured
        .iter()
        .filter_map(|n| Some((n.name.as_str(), n.display.as_str(), nodes.get(&n.name)?)))
        .collect();
    for (name, st) in nodes {
        if !configured.iter().any(|n| &n.name == name) {
            out.push((name.as_str(), st.display.as_str(), st));
        }
    }
    out
}

impl NodeStatus {
    /// The one error that matters: `/varz`'s when the node is down (the others were not
    /// asked), else the first endpoint that failed.
    pub fn main_error(&self) -> Option<(Endpoint, &str)> {
        let errors = &self.poll.errors;
        errors
            .get(&Endpoint::Varz)
            .map(|e| (Endpoint::Varz, e.as_str()))
            .or_else(|| errors.iter().next().map(|(k, v)| (*k, v.as_str())))
    }
}

/// The exposition of NATS data, rendered once per poll and served as is to every scrape.
/// The other forms are derived on first request and cached with it, so a render costs
/// only what the scrapers actually ask for (Prometheus: gzipped OpenMetrics).
#[derive(Debug, Default)]
pub struct Rendered {
    /// OpenMetrics text without `# EOF`.
    pub openmetrics: Bytes,
    prometheus: OnceLock<Bytes>,
    openmetrics_gzip: OnceLock<Bytes>,
    prometheus_gzip: OnceLock<Bytes>,
}

impl Rendered {
    pub fn new(openmetrics: String) -> Rendered {
        Rendered {
            openmetrics: Bytes::from(openmetrics),
            ..Default::default()
        }
    }

    /// The same data in the Prometheus 0.0.4 text format.
    pub fn prometheus(&self) -> Bytes {
        self.prometheus
            .get_or_init(|| {
                let om = std::str::from_utf8(&self.openmetrics).expect("exposition is UTF-8");
                Bytes::from(crate::exposition::openmetrics_to_prometheus(om))
            })
            .clone()
    }

    /// A gzip member of either form; members concatenate into one valid gzip stream.
    pub fn gzip(&self, openmetrics: bool) -> Bytes {
        if openmetrics {
            self.openmetrics_gzip
                .get_or_init(|| Bytes::from(crate::gzip::gzip(&self.openmetrics)))
                .clone()
        } else {
            self.prometheus_gzip
                .get_or_init(|| Bytes::from(crate::gzip::gzip(&self.prometheus())))
                .clone()
        }
    }
}

#[derive(Debug)]
pub struct Store {
    nodes: RwLock<BTreeMap<String, NodeStatus>>,
    rendered: RwLock<Arc<Rendered>>,
    view: RwLock<Arc<super::view::ClusterView>>,
}

impl Store {
    /// A store with an empty status for each node label.
    pub fn new<'a>(nodes: impl IntoIterator<Item = &'a str>) -> Store {
        Store {
            nodes: RwLock::new(
                nodes
                    .into_iter()
                    .map(|n| (n.to_string(), NodeStatus::default()))
                    .collect(),
            ),
            rendered: RwLock::new(Arc::default()),
            view: RwLock::new(Arc::default()),
        }
    }

    /// Adds a discovered node, not yet polled; false when the label is taken.
    pub fn add(&self, node: &str, display: &str) -> bool {
        let mut nodes = self.nodes.write().expect("store lock poisoned");
        if nodes.contains_key(node) {
            return false;
        }
        let st = NodeStatus {
            display: display.to_string(),
            ..Default::default()
        };
        nodes.insert(node.to_string(), st);
        true
    }

    /// Records the new URL of a discovered node that moved.
    pub fn set_display(&self, node: &str, display: &str) {
        let mut nodes = self.nodes.write().expect("store lock poisoned");
        if let Some(st) = nodes.get_mut(node) {
            st.display = display.to_string();
        }
    }

    /// Removes a node, so that its series vanish at the next render; its poller must be
    /// stopped first (an update for a label the store does not have is ignored anyway).
    pub fn remove(&self, node: &str) -> bool {
        let mut nodes = self.nodes.write().expect("store lock poisoned");
        nodes.remove(node).is_some()
    }

    /// Replaces a node's latest poll; a label the store was not built with is ignored.
    pub fn update(&self, node: &str, poll: NodePoll) {
        let mut nodes = self.nodes.write().expect("store lock poisoned");
        let Some(st) = nodes.get_mut(node) else {
            return;
        };
        match &poll.varz {
            Some(v) => {
                st.last_success = poll.finished_at;
                st.down_since = None;
                st.last_known = Some(KnownServer {
                    server_name: v.name().to_string(),
                    version: v.version.clone(),
                    cluster: v.cluster.name.clone(),
                });
            }
            None if poll.finished_at.is_some() => {
                st.down_since = st.down_since.or(poll.finished_at);
            }
            None => {}
        }
        st.poll = Arc::new(poll);
        st.reports += 1;
    }

    /// Replaces a node's latest poll with a down one whose `/varz` error says `why`: for a
    /// poller that stopped, whose last poll must not stay on /metrics as current. Never
    /// panics, since it runs while a panicking poller unwinds.
    pub fn mark_down(&self, node: &str, why: &str) {
        let mut nodes = self
            .nodes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(st) = nodes.get_mut(node) else {
            return;
        };
        let mut poll = NodePoll {
            finished_at: Some(SystemTime::now()),
            ..Default::default()
        };
        poll.errors.insert(Endpoint::Varz, why.to_string());
        st.poll = Arc::new(poll);
        st.reports += 1;
    }

    /// Every node's report count, by label.
    pub fn reports(&self) -> BTreeMap<String, u64> {
        self.read_nodes()
            .iter()
            .map(|(n, st)| (n.clone(), st.reports))
            .collect()
    }

    /// Whether every node has reported since `seen` (an earlier `reports()`).
    pub fn all_reported_since(&self, seen: &BTreeMap<String, u64>) -> bool {
        self.read_nodes()
            .iter()
            .all(|(n, st)| st.reports > seen.get(n).copied().unwrap_or(0))
    }

    /// The render loop reads the nodes between polls; a poisoned lock still holds them.
    fn read_nodes(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, NodeStatus>> {
        self.nodes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A cheap copy of every node's latest poll by node label (the polls themselves are
    /// shared).
    pub fn nodes(&self) -> BTreeMap<String, NodeStatus> {
        self.nodes.read().expect("store lock poisoned").clone()
    }

    pub fn set_rendered(&self, r: Rendered) {
        *self.rendered.write().expect("store lock poisoned") = Arc::new(r);
    }

    pub fn set_view(&self, v: super::view::ClusterView) {
        *self.view.write().expect("store lock poisoned") = Arc::new(v);
    }

    /// The cluster view of the latest render.
    pub fn view(&self) -> Arc<super::view::ClusterView> {
        self.view.read().expect("store lock poisoned").clone()
    }

    pub fn rendered(&self) -> Arc<Rendered> {
        self.rendered.read().expect("store lock poisoned").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Node;

    #[test]
    fn discovered_nodes_come_after_the_configured_ones_and_can_leave() {
        let configured = [
            Node::parse("z=http://h:1").unwrap(),
            Node::parse("a=http://h:2").unwrap(),
            Node::parse("gone=http://h:3").unwrap(),
        ];
        let store = Store::new(["z", "a"]);
        assert!(store.add("n2", "http://10.0.0.2:8222"));
        assert!(store.add("n1", "http://10.0.0.1:8222"));
        assert!(!store.add("a", "http://x:1"), "a taken label is kept");
        let nodes = store.nodes();
        let order: Vec<_> = ordered(&configured, &nodes)
            .into_iter()
            .map(|(n, d, _)| (n, d))
            .collect();
        assert_eq!(
            order,
            [
                ("z", "http://h:1"),
                ("a", "http://h:2"),
                ("n1", "http://10.0.0.1:8222"),
                ("n2", "http://10.0.0.2:8222")
            ]
        );
        assert!(store.remove("n1"));
        assert!(!store.remove("n1"));
        store.update("n1", NodePoll::default());
        assert!(
            !store.nodes().contains_key("n1"),
            "a removed node stays gone"
        );
    }
}
