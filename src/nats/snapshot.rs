//! Owns the latest poll result of every node, replaced whole at the end of each poll so
//! that nothing from an earlier poll survives, and the rendered exposition built from it.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::Endpoint;
use super::accstatz::Accstatz;
use super::connz::ConnzSummary;
use super::gatewayz::Gatewayz;
use super::healthz::Healthz;
use super::jsz::Jsz;
use super::leafz::Leafz;
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
    /// The last error of each endpoint that failed in this poll.
    pub errors: BTreeMap<Endpoint, String>,
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
}

/// The exposition of NATS data, rendered once per poll and served as is to every scrape.
#[derive(Debug, Default)]
pub struct Rendered {
    /// OpenMetrics text without `# EOF`.
    pub openmetrics: Bytes,
    /// The same data in the Prometheus 0.0.4 text format.
    pub prometheus: Bytes,
}

#[derive(Debug)]
pub struct Store {
    nodes: RwLock<Vec<NodeStatus>>,
    rendered: RwLock<Arc<Rendered>>,
}

impl Store {
    pub fn new(nodes: usize) -> Store {
        Store {
            nodes: RwLock::new(vec![NodeStatus::default(); nodes]),
            rendered: RwLock::new(Arc::default()),
        }
    }

    pub fn update(&self, index: usize, poll: NodePoll) {
        let mut nodes = self.nodes.write().expect("store lock poisoned");
        let st = &mut nodes[index];
        if poll.up() {
            st.last_success = poll.finished_at;
        }
        st.poll = Arc::new(poll);
    }

    /// A cheap copy of every node's latest poll (the polls themselves are shared).
    pub fn nodes(&self) -> Vec<NodeStatus> {
        self.nodes.read().expect("store lock poisoned").clone()
    }

    pub fn set_rendered(&self, r: Rendered) {
        *self.rendered.write().expect("store lock poisoned") = Arc::new(r);
    }

    pub fn rendered(&self) -> Arc<Rendered> {
        self.rendered.read().expect("store lock poisoned").clone()
    }
}
