//! Owns the validated NATS side of the configuration: the nodes and their URLs, poll
//! timing and paging, TLS towards monitoring endpoints, and which consumers get series.

use std::time::Duration;

use super::raw::{
    DEFAULT_CONNZ_PAGE_SIZE, DEFAULT_CONSUMER_METRICS_LIMIT, DEFAULT_DISCOVER_GRACE,
    DEFAULT_NATS_URLS, DEFAULT_POLL_INTERVAL, DEFAULT_POLL_TIMEOUT, RawConfig,
};
use super::{ConfigError, HOUR, MILLIS_100, duration, read_file, unquote, userinfo};
use crate::redact::redact_url;

/// Which consumers get per-consumer series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerPolicy {
    /// Export ephemeral consumers too (their names are random, so series churn).
    pub include_ephemeral: bool,
    /// Upper bound on exported consumers; the rest are counted, not exported.
    pub limit: usize,
    /// Read whole every server that leads a consumer of a stream it does not lead, for
    /// that consumer's waiting pulls and replica health (`num_pending` is exact either
    /// way). Costs most of the saving of `stream-leader-only` on consumer-heavy clusters.
    pub read_consumer_leaders: bool,
}

impl Default for ConsumerPolicy {
    fn default() -> Self {
        ConsumerPolicy {
            include_ephemeral: false,
            limit: DEFAULT_CONSUMER_METRICS_LIMIT,
            read_consumer_leaders: false,
        }
    }
}

impl ConsumerPolicy {
    pub(super) fn from_raw(raw: &RawConfig) -> ConsumerPolicy {
        ConsumerPolicy {
            include_ephemeral: raw.ephemeral_consumers.unwrap_or(false),
            limit: raw
                .consumer_metrics_limit
                .unwrap_or(DEFAULT_CONSUMER_METRICS_LIMIT),
            read_consumer_leaders: raw.jsz_read_consumer_leaders.unwrap_or(false),
        }
    }
}

/// The configured nodes, each name given once; the defaults when the option is not
/// given at all. Given but empty (`NATSMON_NATS_URL=`, `' , '`) is a mistake: natsmon
/// would poll nothing and never become ready.
pub(super) fn nodes(urls: Option<&[String]>) -> Result<Vec<Node>, ConfigError> {
    let urls: Vec<String> = match urls {
        Some(v) => v.to_vec(),
        None => DEFAULT_NATS_URLS.iter().map(|s| s.to_string()).collect(),
    };
    let mut nodes = Vec::new();
    for u in urls.iter().map(|s| unquote(s)).filter(|s| !s.is_empty()) {
        let node = Node::parse(u)?;
        if nodes.iter().any(|n: &Node| n.name == node.name) {
            return Err(ConfigError::Invalid {
                option: "nats-url",
                why: format!("node name {} is given twice", node.name),
            });
        }
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(ConfigError::Invalid {
            option: "nats-url",
            why: "no node given; name each node's HTTP monitoring URL, e.g. http://127.0.0.1:8222"
                .into(),
        });
    }
    Ok(nodes)
}

/// The node list of a natsmon without the exporter role: node URLs given anyway are a
/// mistake (they would silently not be polled), an empty or unset list is right.
pub(super) fn no_nodes(urls: Option<&[String]>) -> Result<Vec<Node>, ConfigError> {
    let given = urls
        .unwrap_or_default()
        .iter()
        .any(|u| !unquote(u).is_empty());
    if given {
        return Err(ConfigError::Invalid {
            option: "nats-url",
            why: "is set, but --roles has no exporter; add exporter to --roles or drop --nats-url"
                .into(),
        });
    }
    Ok(Vec::new())
}

/// Discovery from seeds: on with `--discover` only, so that a list of URLs means exactly
/// those nodes unless asked otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverySettings {
    /// Monitoring port of discovered members; `None`: the port of the seed they came from.
    pub port: Option<u16>,
    /// How long a member that vanished stays (polled, `nats_up 0`) before it is dropped.
    pub grace: Duration,
}

/// The discovery options, validated even when discovery is off so that a typo in the
/// file does not wait for the day it is turned on. A grace of zero would drop a member
/// at its first missed round; one second is allowed for tests, a day is plenty.
pub(super) fn discovery(raw: &RawConfig) -> Result<Option<DiscoverySettings>, ConfigError> {
    let grace = duration(
        "discover-grace",
        raw.discover_grace.as_deref(),
        DEFAULT_DISCOVER_GRACE,
        Duration::from_secs(1)..=24 * HOUR,
    )?;
    if raw.discover_port == Some(0) {
        return Err(ConfigError::Invalid {
            option: "discover-port",
            why: "0: must be between 1 and 65535".into(),
        });
    }
    Ok(raw.discover.unwrap_or(false).then_some(DiscoverySettings {
        port: raw.discover_port,
        grace,
    }))
}

/// Poll interval and timeout. Below 100 ms a poll interval only loads the cluster (each
/// poll is several requests per node); a timeout below 10 ms cannot be met.
pub(super) fn poll_timing(raw: &RawConfig) -> Result<(Duration, Duration), ConfigError> {
    let interval = duration(
        "poll-interval",
        raw.poll_interval.as_deref(),
        DEFAULT_POLL_INTERVAL,
        MILLIS_100..=HOUR,
    )?;
    let timeout = duration(
        "poll-timeout",
        raw.poll_timeout.as_deref(),
        DEFAULT_POLL_TIMEOUT,
        Duration::from_millis(10)..=Duration::from_secs(600),
    )?;
    Ok((interval, timeout))
}

pub(super) fn connz_page_size(raw: &RawConfig) -> Result<usize, ConfigError> {
    super::bounded(
        "connz-page-size",
        raw.connz_page_size,
        DEFAULT_CONNZ_PAGE_SIZE,
        1..=100_000,
    )
}

#[derive(Debug, Clone, Default)]
pub struct NatsTls {
    pub ca_pem: Option<Vec<u8>>,
    /// Certificate chain followed by its key, as reqwest's `Identity::from_pem` wants it.
    pub identity_pem: Option<Vec<u8>>,
    pub insecure_skip_verify: bool,
}

impl NatsTls {
    pub(super) fn from_raw(raw: &RawConfig) -> Result<NatsTls, ConfigError> {
        let identity_pem = match (
            read_file(&raw.nats_cert_file, "nats-cert-file")?,
            read_file(&raw.nats_key_file, "nats-key-file")?,
        ) {
            (Some(mut cert), Some(key)) => {
                cert.push(b'\n');
                cert.extend_from_slice(&key);
                Some(cert)
            }
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid {
                    option: "nats-cert-file",
                    why: "needs --nats-key-file too".into(),
                });
            }
        };
        Ok(NatsTls {
            ca_pem: read_file(&raw.nats_ca_file, "nats-ca-file")?,
            identity_pem,
            insecure_skip_verify: raw.nats_insecure_skip_verify.unwrap_or(false),
        })
    }
}

/// A configured NATS node. `name` is its stable label; `display` is the URL with any
/// credentials removed, the only form that reaches logs, labels or pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// The name was given (`NAME=URL`), not derived from the URL.
    pub named: bool,
    base: String,
    pub display: String,
    pub basic_auth: Option<(String, String)>,
}

impl Node {
    pub fn parse(spec: &str) -> Result<Node, ConfigError> {
        let (name, url) = match spec.split_once('=') {
            Some((n, u)) if !n.contains("://") && !n.contains('/') => (Some(n.trim()), u.trim()),
            _ => (None, spec),
        };
        if let Some(hint) = hint(url) {
            return Err(ConfigError::NatsUrl {
                url: redact_url(url),
                why: hint,
            });
        }
        let mut parsed = reqwest::Url::parse(url).map_err(|e| ConfigError::NatsUrl {
            url: redact_url(url),
            why: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::NatsUrl {
                url: redact_url(url),
                why: "scheme must be http or https; natsmon needs the node's HTTP monitoring URL, e.g. http://127.0.0.1:8222".into(),
            });
        }
        let host = parsed.host_str().ok_or_else(|| ConfigError::NatsUrl {
            url: redact_url(url),
            why: "no host".into(),
        })?;
        let host_port = match parsed.port_or_known_default() {
            Some(p) if host.contains(':') => format!("[{host}]:{p}"),
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let basic_auth = userinfo(&parsed);
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        parsed.set_query(None);
        parsed.set_fragment(None);
        let base = parsed.as_str().trim_end_matches('/').to_string();
        let named = name.is_some();
        let name = match name {
            Some("") => {
                return Err(ConfigError::NatsUrl {
                    url: redact_url(url),
                    why: "empty node name".into(),
                });
            }
            Some(n) => n.to_string(),
            None => host_port,
        };
        Ok(Node {
            name,
            named,
            display: base.clone(),
            base,
            basic_auth,
        })
    }

    /// Port 4222 is NATS's client port, which does not speak HTTP: probably a mistake,
    /// worth a startup warning (a monitoring port there is possible, so not an error).
    pub fn looks_like_client_port(&self) -> bool {
        self.display.ends_with(":4222") || self.display.contains(":4222/")
    }

    /// The port of the monitoring URL (the scheme's default when none is written).
    pub fn port(&self) -> Option<u16> {
        reqwest::Url::parse(&self.base)
            .ok()?
            .port_or_known_default()
    }

    /// The host of the monitoring URL, without IPv6 brackets.
    pub fn host(&self) -> Option<String> {
        let u = reqwest::Url::parse(&self.base).ok()?;
        u.host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
    }

    /// The same endpoint (scheme, base path, credentials) on another host and port, named
    /// host:port like an unnamed `--nats-url`: how discovery reaches a peer. `None` when
    /// `host` is not a valid host.
    pub fn at(&self, host: &str, port: u16) -> Option<Node> {
        let mut u = reqwest::Url::parse(&self.base).ok()?;
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        u.set_host(Some(&bracketed)).ok()?;
        u.set_port(Some(port)).ok()?;
        let base = u.as_str().trim_end_matches('/').to_string();
        Some(Node {
            name: format!("{bracketed}:{port}"),
            named: false,
            display: base.clone(),
            base,
            basic_auth: self.basic_auth.clone(),
        })
    }

    /// The same node under another label (a discovered member takes its server name).
    pub fn with_name(mut self, name: &str) -> Node {
        self.name = name.to_string();
        self
    }

    /// The URL of an endpoint path such as `/varz`, below any configured base path.
    pub fn url_for(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// The usual mistakes, with what to write instead: a bare `host:port`, and the NATS
/// client URL where the HTTP monitoring URL belongs.
fn hint(url: &str) -> Option<String> {
    const NEEDS: &str = "natsmon needs the node's HTTP monitoring URL, e.g. http://127.0.0.1:8222";
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("nats://") || lower.starts_with("tls://") || lower.starts_with("ws://") {
        return Some(format!(
            "that is a NATS client URL; {NEEDS} (the port of `http: 8222` in the server's config, not the client port 4222)"
        ));
    }
    if !url.contains("://") {
        return Some(format!("no scheme; {NEEDS}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_forms() {
        let n = Node::parse("http://127.0.0.1:8222").unwrap();
        assert_eq!(n.name, "127.0.0.1:8222");
        assert_eq!(n.url_for("/varz"), "http://127.0.0.1:8222/varz");
        let n = Node::parse("nats-1=https://u:p%40ss@nats-1.example:8222/mon/").unwrap();
        assert_eq!(n.name, "nats-1");
        assert_eq!(n.basic_auth, Some(("u".into(), "p@ss".into())));
        assert_eq!(n.display, "https://nats-1.example:8222/mon");
        assert!(!format!("{n:?}").contains("mon/varz"));
        assert_eq!(n.url_for("/varz"), "https://nats-1.example:8222/mon/varz");
        assert!(Node::parse("ftp://x").is_err());
        for bare in ["127.0.0.1:8222", "localhost:8222", "n1=localhost:8222"] {
            let e = Node::parse(bare).unwrap_err().to_string();
            assert!(e.contains("e.g. http://127.0.0.1:8222"), "{bare}: {e}");
        }
        let e = Node::parse("nats://127.0.0.1:4222")
            .unwrap_err()
            .to_string();
        assert!(e.contains("client URL") && e.contains("8222"), "{e}");
        assert!(
            Node::parse("http://127.0.0.1:4222")
                .unwrap()
                .looks_like_client_port()
        );
        assert!(
            !Node::parse("http://127.0.0.1:8222")
                .unwrap()
                .looks_like_client_port()
        );
        assert!(Node::parse("=http://x:1").is_err());
    }

    #[test]
    fn a_peer_keeps_the_seeds_scheme_path_and_credentials() {
        let seed = Node::parse("s=https://u:p@nats.example:8222/mon").unwrap();
        assert!(seed.named);
        assert_eq!(
            (seed.host().unwrap(), seed.port()),
            ("nats.example".into(), Some(8222))
        );
        let p = seed.at("10.0.0.7", 9222).unwrap();
        assert_eq!(p.name, "10.0.0.7:9222");
        assert!(!p.named);
        assert_eq!(p.url_for("/varz"), "https://10.0.0.7:9222/mon/varz");
        assert_eq!(p.basic_auth, seed.basic_auth);
        assert_eq!(p.display, "https://10.0.0.7:9222/mon");
        let v6 = seed.at("fd00::1", 8222).unwrap();
        assert_eq!(v6.url_for("/varz"), "https://[fd00::1]:8222/mon/varz");
        assert_eq!(v6.host().unwrap(), "fd00::1");
        assert_eq!(v6.with_name("n2").name, "n2");
        assert!(!Node::parse("http://h:1").unwrap().named);
    }

    #[test]
    fn discovery_is_off_unless_asked_and_its_grace_is_bounded() {
        let raw = |discover, grace: Option<&str>, port| RawConfig {
            discover,
            discover_grace: grace.map(str::to_string),
            discover_port: port,
            ..Default::default()
        };
        assert_eq!(discovery(&raw(None, Some("3s"), Some(9))).unwrap(), None);
        let d = discovery(&raw(Some(true), None, None)).unwrap().unwrap();
        assert_eq!((d.port, d.grace), (None, DEFAULT_DISCOVER_GRACE));
        let d = discovery(&raw(Some(true), Some("1s"), Some(9222)))
            .unwrap()
            .unwrap();
        assert_eq!((d.port, d.grace), (Some(9222), Duration::from_secs(1)));
        for bad in ["0s", "500ms", "2d", "soon"] {
            assert!(
                discovery(&raw(Some(true), Some(bad), None)).is_err(),
                "{bad}"
            );
        }
        assert!(discovery(&raw(Some(true), None, Some(0))).is_err());
    }
}
