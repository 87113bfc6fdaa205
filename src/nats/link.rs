//! Owns the aggregation shared by routes, gateways and leaf nodes: several connections to
//! the same peer (route pools, per-account routes, reconnects) are summed into one series
//! per peer, so labels never carry connection ids that change on every reconnect.

use crate::exposition::{Def, Labels, MetricSet};

use crate::time::go_duration_seconds;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct LinkTotals {
    pub connections: u64,
    pub rtt_max_seconds: Option<f64>,
    pub pending_bytes: u64,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: u64,
}

/// The fields every link-like NATS connection report carries.
pub struct LinkSample<'a> {
    pub rtt: &'a str,
    pub pending_bytes: u64,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: u64,
}

impl LinkTotals {
    pub fn add(&mut self, s: LinkSample<'_>) {
        self.connections += 1;
        if let Some(rtt) = go_duration_seconds(s.rtt) {
            self.rtt_max_seconds = Some(self.rtt_max_seconds.map_or(rtt, |m: f64| m.max(rtt)));
        }
        self.pending_bytes += s.pending_bytes;
        self.in_msgs += s.in_msgs;
        self.out_msgs += s.out_msgs;
        self.in_bytes += s.in_bytes;
        self.out_bytes += s.out_bytes;
        self.subscriptions += s.subscriptions;
    }
}

/// The family set for one kind of link.
pub struct LinkDefs {
    pub connections: Def,
    pub rtt: Def,
    /// `None` where the endpoint does not report pending bytes.
    pub pending: Option<Def>,
    pub in_msgs: Def,
    pub out_msgs: Def,
    pub in_bytes: Def,
    pub out_bytes: Def,
    pub subscriptions: Def,
}

impl LinkTotals {
    pub fn emit(&self, defs: &'static LinkDefs, labels: impl Into<Labels>, out: &mut MetricSet) {
        let labels: Labels = labels.into();
        let labels = || labels.clone();
        out.push(&defs.connections, labels(), self.connections);
        out.push_opt(&defs.rtt, labels, self.rtt_max_seconds);
        if let Some(d) = &defs.pending {
            out.push(d, labels(), self.pending_bytes);
        }
        out.push(&defs.in_msgs, labels(), self.in_msgs);
        out.push(&defs.out_msgs, labels(), self.out_msgs);
        out.push(&defs.in_bytes, labels(), self.in_bytes);
        out.push(&defs.out_bytes, labels(), self.out_bytes);
        out.push(&defs.subscriptions, labels(), self.subscriptions);
    }
}
