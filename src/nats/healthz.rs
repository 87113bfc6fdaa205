//! Owns `/healthz`: whether the server, and JetStream on it, consider themselves healthy.
//! An unhealthy server answers 503 with a JSON body; that is a successful poll of a bad
//! state, not a poll error.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::exposition::{Def, MetricSet};

/// `details` (2.10+) makes an unhealthy server list its errors with their types, which
/// `nats_healthz_errors` exports; older servers ignore the parameter.
pub const PATH: &str = "/healthz?details=true";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Healthz {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub status: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub error: String,
    /// Added in 2.10.
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub errors: Vec<HealthError>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HealthError {
    #[serde(rename = "type")]
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub kind: String,
}

pub static OK: Def = Def::gauge("nats_healthz_ok", "1 when /healthz reports status ok.");
pub static ERRORS: Def = Def::gauge(
    "nats_healthz_errors",
    "Health check failures by type (nats-server 2.10 and later).",
);

pub fn collect(h: &Healthz, node: &str, out: &mut MetricSet) {
    out.push(&OK, vec![("node", node.to_string())], h.status == "ok");
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &h.errors {
        *by_kind.entry(e.kind.as_str()).or_default() += 1;
    }
    for (kind, n) in by_kind {
        out.push(
            &ERRORS,
            vec![("node", node.to_string()), ("type", kind.to_lowercase())],
            n,
        );
    }
}
