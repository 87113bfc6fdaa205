//! Owns `/subsz`: the subscription routing table's size and cache behaviour.

use serde::Deserialize;

use crate::exposition::{Def, MetricSet};

/// Without `subs`, 2.9-2.11 return only the statistics; 2.12 always adds a (here empty) list.
pub const PATH: &str = "/subsz";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Subsz {
    pub num_subscriptions: u64,
    pub num_cache: u64,
    pub num_inserts: u64,
    pub num_removes: u64,
    pub num_matches: u64,
    pub cache_hit_rate: f64,
    pub max_fanout: u64,
    pub avg_fanout: f64,
}

pub static SUBSCRIPTIONS: Def = Def::gauge(
    "nats_subsz_subscriptions",
    "Subscriptions in the routing table.",
);
pub static CACHE: Def = Def::gauge(
    "nats_subsz_cache_entries",
    "Entries in the subject match cache.",
);
pub static INSERTS: Def = Def::counter(
    "nats_subsz_inserts_total",
    "Subscriptions inserted into the routing table.",
);
pub static REMOVES: Def = Def::counter(
    "nats_subsz_removes_total",
    "Subscriptions removed from the routing table.",
);
pub static MATCHES: Def = Def::counter("nats_subsz_matches_total", "Subject match lookups.");
pub static HIT_RATIO: Def = Def::gauge(
    "nats_subsz_cache_hit_ratio",
    "Fraction of lookups served from the match cache.",
);
pub static MAX_FANOUT: Def = Def::gauge(
    "nats_subsz_max_fanout",
    "Largest number of subscribers one message matched.",
);
pub static AVG_FANOUT: Def = Def::gauge(
    "nats_subsz_avg_fanout",
    "Average number of subscribers a message matched.",
);

pub fn collect(s: &Subsz, node: &str, out: &mut MetricSet) {
    let l = || vec![("node", node.to_string())];
    out.push(&SUBSCRIPTIONS, l(), s.num_subscriptions);
    out.push(&CACHE, l(), s.num_cache);
    out.push(&INSERTS, l(), s.num_inserts);
    out.push(&REMOVES, l(), s.num_removes);
    out.push(&MATCHES, l(), s.num_matches);
    out.push(&HIT_RATIO, l(), s.cache_hit_rate);
    out.push(&MAX_FANOUT, l(), s.max_fanout);
    out.push(&AVG_FANOUT, l(), s.avg_fanout);
}
