//! Owns the console's links into the bundled Grafana dashboards (`dashboards/*.json`):
//! each stream, consumer, node and account row opens its dashboard with the template
//! variables set, as `/d/<uid>?var-<name>=<value>`.
//!
//! Grafana's address is fixed at the compose file's `http://localhost:3000`; a setting
//! for it is out of scope until someone needs another one.

pub const GRAFANA_URL: &str = "http://localhost:3000";

pub const OVERVIEW_UID: &str = "natsmon-nats-overview";
pub const JETSTREAM_UID: &str = "natsmon-nats-jetstream";
pub const LOGS_UID: &str = "natsmon-nats-logs";
pub const SELF_UID: &str = "natsmon-self";

/// A dashboard URL with template variables; values are percent-encoded, so any name is
/// a plain value to Grafana and can break out of neither the URL nor an attribute.
fn dashboard(uid: &str, vars: &[(&str, &str)]) -> String {
    let mut out = format!("{GRAFANA_URL}/d/{uid}");
    for (i, (k, v)) in vars.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str("var-");
        out.push_str(k);
        out.push('=');
        encode_into(&mut out, v);
    }
    out
}

fn encode_into(out: &mut String, v: &str) {
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

pub fn stream(cluster: &str, account: &str, stream: &str) -> String {
    dashboard(
        JETSTREAM_UID,
        &[
            ("cluster", cluster),
            ("account", account),
            ("stream", stream),
        ],
    )
}

pub fn consumer(cluster: &str, account: &str, stream: &str, consumer: &str) -> String {
    dashboard(
        JETSTREAM_UID,
        &[
            ("cluster", cluster),
            ("account", account),
            ("stream", stream),
            ("consumer", consumer),
        ],
    )
}

pub fn node(cluster: &str, node: &str) -> String {
    dashboard(OVERVIEW_UID, &[("cluster", cluster), ("node", node)])
}

pub fn account(cluster: &str, account: &str) -> String {
    dashboard(OVERVIEW_UID, &[("cluster", cluster), ("account", account)])
}

/// The logs dashboard selects `job="nats"`: other containers' logs are not on it.
pub fn container_logs(job: &str, container: &str) -> Option<String> {
    (job == crate::logs::container::NATS_JOB)
        .then(|| dashboard(LOGS_UID, &[("container", container)]))
}

pub fn natsmon() -> String {
    dashboard(SELF_UID, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_percent_encoded() {
        assert_eq!(
            stream("c1", "A", "ORDERS"),
            "http://localhost:3000/d/natsmon-nats-jetstream?var-cluster=c1&var-account=A&var-stream=ORDERS"
        );
        assert_eq!(
            consumer("c1", "<img src=x>", "a&b", "\"q\""),
            "http://localhost:3000/d/natsmon-nats-jetstream?var-cluster=c1&var-account=%3Cimg%20src%3Dx%3E&var-stream=a%26b&var-consumer=%22q%22"
        );
        assert_eq!(container_logs("docker", "x"), None);
    }

    /// Each link names a dashboard that exists, and only variables it defines.
    #[test]
    fn links_match_the_bundled_dashboards() {
        let links = [
            stream("c", "a", "s"),
            consumer("c", "a", "s", "k"),
            node("c", "n"),
            account("c", "a"),
            container_logs("nats", "x").unwrap(),
            natsmon(),
        ];
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards");
        let mut dashboards = std::collections::HashMap::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json") {
                let d: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                let vars: Vec<String> = d["templating"]["list"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v["name"].as_str().unwrap().to_string())
                    .collect();
                dashboards.insert(d["uid"].as_str().unwrap().to_string(), vars);
            }
        }
        for l in links {
            let rest = l.strip_prefix(&format!("{GRAFANA_URL}/d/")).unwrap();
            let (uid, query) = rest.split_once('?').unwrap_or((rest, ""));
            let vars = dashboards
                .get(uid)
                .unwrap_or_else(|| panic!("{l}: no dashboard {uid}"));
            for kv in query.split('&').filter(|s| !s.is_empty()) {
                let name = kv.strip_prefix("var-").unwrap().split('=').next().unwrap();
                assert!(vars.iter().any(|v| v == name), "{l}: {uid} has no ${name}");
            }
        }
    }
}
