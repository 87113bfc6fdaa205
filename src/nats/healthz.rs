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
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub account: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub stream: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub consumer: String,
}

/// Errors per node that keep their account, stream and consumer (README "Cardinality
/// bounds"): a node that cannot reach the meta leader may report every asset it hosts.
/// The rest are added to their type's series with empty `account`, `stream` and
/// `consumer`, so `sum by (type)` stays exact, and counted in
/// `natsmon_objects_not_exported{kind="health_error",reason="limit"}`.
pub const ERROR_DETAIL_LIMIT: usize = 50;

pub static OK: Def = Def::gauge("nats_healthz_ok", "1 when /healthz reports status ok.");
pub static ERRORS: Def = Def::gauge(
    "nats_healthz_errors",
    "Health check failures by type, and by account, stream and consumer up to a cap (nats-server 2.10 and later).",
);

/// Exports the node's health and its errors; returns how many errors lost their detail
/// to `ERROR_DETAIL_LIMIT`.
pub fn collect(h: &Healthz, node: &str, out: &mut MetricSet) -> u64 {
    out.push(&OK, vec![("node", node.to_string())], h.status == "ok");
    let mut errors: Vec<&HealthError> = h.errors.iter().collect();
    // Which errors keep their detail must not depend on the server's order.
    errors.sort_by(|a, b| {
        (&a.kind, &a.account, &a.stream, &a.consumer).cmp(&(
            &b.kind,
            &b.account,
            &b.stream,
            &b.consumer,
        ))
    });
    let mut series: BTreeMap<(String, &str, &str, &str), u64> = BTreeMap::new();
    let mut left_out = 0;
    for (i, e) in errors.into_iter().enumerate() {
        let kind = e.kind.to_lowercase();
        let key = if i < ERROR_DETAIL_LIMIT {
            (
                kind,
                e.account.as_str(),
                e.stream.as_str(),
                e.consumer.as_str(),
            )
        } else {
            left_out += 1;
            (kind, "", "", "")
        };
        *series.entry(key).or_default() += 1;
    }
    for ((kind, account, stream, consumer), n) in series {
        out.push(
            &ERRORS,
            vec![
                ("node", node.to_string()),
                ("type", kind),
                ("account", account.to_string()),
                ("stream", stream.to_string()),
                ("consumer", consumer.to_string()),
            ],
            n,
        );
    }
    left_out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Value;

    fn parse(json: &str) -> Healthz {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn each_error_is_a_series_with_its_stream_and_consumer() {
        let h = parse(
            r#"{"status":"error","errors":[
              {"type":"STREAM","account":"A","stream":"ORDERS","error":"not current"},
              {"type":"CONSUMER","account":"A","stream":"ORDERS","consumer":"billing","error":"x"},
              {"type":"JETSTREAM","error":"no meta leader","account":null}]}"#,
        );
        let mut m = MetricSet::default();
        assert_eq!(collect(&h, "n1", &mut m), 0);
        assert_eq!(
            m.get("nats_healthz_ok", &[("node", "n1")]),
            Some(Value::Int(0))
        );
        assert_eq!(
            m.get(
                "nats_healthz_errors",
                &[
                    ("type", "consumer"),
                    ("stream", "ORDERS"),
                    ("consumer", "billing")
                ]
            ),
            Some(Value::Uint(1))
        );
        assert_eq!(
            m.get(
                "nats_healthz_errors",
                &[("type", "stream"), ("account", "A"), ("consumer", "")]
            ),
            Some(Value::Uint(1))
        );
        assert_eq!(
            m.get(
                "nats_healthz_errors",
                &[("type", "jetstream"), ("stream", "")]
            ),
            Some(Value::Uint(1))
        );
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn errors_beyond_the_cap_keep_only_their_type() {
        let errors: Vec<String> = (0..ERROR_DETAIL_LIMIT + 10)
            .map(|i| format!(r#"{{"type":"STREAM","account":"A","stream":"S{i:03}"}}"#))
            .chain(std::iter::once(r#"{"type":"JETSTREAM"}"#.to_string()))
            .collect();
        let h = parse(&format!(
            r#"{{"status":"error","errors":[{}]}}"#,
            errors.join(",")
        ));
        let mut m = MetricSet::default();
        assert_eq!(collect(&h, "n1", &mut m), 11);
        // ok, the capped detailed series (jetstream sorts first), one for the rest.
        assert_eq!(m.len(), 1 + ERROR_DETAIL_LIMIT + 1);
        assert_eq!(
            m.get("nats_healthz_errors", &[("type", "stream"), ("stream", "")]),
            Some(Value::Uint(11))
        );
        assert_eq!(
            m.get("nats_healthz_errors", &[("type", "jetstream")]),
            Some(Value::Uint(1))
        );
        assert_eq!(
            m.get("nats_healthz_errors", &[("stream", "S000")]),
            Some(Value::Uint(1))
        );
    }

    #[test]
    fn healthy_and_old_servers_have_no_error_series() {
        for body in [r#"{"status":"ok"}"#, r#"{"status":"ok","errors":null}"#] {
            let mut m = MetricSet::default();
            assert_eq!(collect(&parse(body), "n1", &mut m), 0);
            assert_eq!(m.len(), 1);
        }
    }
}
