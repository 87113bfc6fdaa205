//! Owns the validated NATS side of the configuration: the nodes and their URLs, poll
//! timing and paging, TLS towards monitoring endpoints, and which consumers get series.

use std::time::Duration;

use super::raw::{
    DEFAULT_CONNZ_PAGE_SIZE, DEFAULT_CONSUMER_METRICS_LIMIT, DEFAULT_NATS_URLS,
    DEFAULT_POLL_INTERVAL, DEFAULT_POLL_TIMEOUT, RawConfig,
};
use super::{ConfigError, duration, read_file};
use crate::redact::redact_url;

/// Which consumers get per-consumer series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerPolicy {
    /// Export ephemeral consumers too (their names are random, so series churn).
    pub include_ephemeral: bool,
    /// Upper bound on exported consumers; the rest are counted, not exported.
    pub limit: usize,
}

impl Default for ConsumerPolicy {
    fn default() -> Self {
        ConsumerPolicy {
            include_ephemeral: false,
            limit: DEFAULT_CONSUMER_METRICS_LIMIT,
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
        }
    }
}

/// The configured nodes, each name given once; the defaults when none is given.
pub(super) fn nodes(urls: Option<&[String]>) -> Result<Vec<Node>, ConfigError> {
    let urls: Vec<String> = match urls {
        Some(v) if !v.is_empty() => v.to_vec(),
        _ => DEFAULT_NATS_URLS.iter().map(|s| s.to_string()).collect(),
    };
    let mut nodes = Vec::new();
    for u in urls.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let node = Node::parse(u)?;
        if nodes.iter().any(|n: &Node| n.name == node.name) {
            return Err(ConfigError::Invalid {
                option: "nats-url",
                why: format!("node name {} is given twice", node.name),
            });
        }
        nodes.push(node);
    }
    Ok(nodes)
}

/// Poll interval and timeout, both above zero.
pub(super) fn poll_timing(raw: &RawConfig) -> Result<(Duration, Duration), ConfigError> {
    let interval = duration(
        "poll-interval",
        raw.poll_interval.as_deref(),
        DEFAULT_POLL_INTERVAL,
    )?;
    let timeout = duration(
        "poll-timeout",
        raw.poll_timeout.as_deref(),
        DEFAULT_POLL_TIMEOUT,
    )?;
    if interval.is_zero() || timeout.is_zero() {
        return Err(ConfigError::Invalid {
            option: "poll-interval",
            why: "intervals and timeouts must be above zero".into(),
        });
    }
    Ok((interval, timeout))
}

pub(super) fn connz_page_size(raw: &RawConfig) -> Result<usize, ConfigError> {
    super::positive(
        raw.connz_page_size,
        DEFAULT_CONNZ_PAGE_SIZE,
        "connz-page-size",
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
        let mut parsed = reqwest::Url::parse(url).map_err(|e| ConfigError::NatsUrl {
            url: redact_url(url),
            why: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::NatsUrl {
                url: redact_url(url),
                why: "scheme must be http or https".into(),
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
        let basic_auth = (!parsed.username().is_empty()).then(|| {
            let user = percent_decode(parsed.username());
            let pass = parsed.password().map(percent_decode).unwrap_or_default();
            (user, pass)
        });
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        parsed.set_query(None);
        parsed.set_fragment(None);
        let base = parsed.as_str().trim_end_matches('/').to_string();
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
            display: base.clone(),
            base,
            basic_auth,
        })
    }

    /// The URL of an endpoint path such as `/varz`, below any configured base path.
    pub fn url_for(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
        assert!(Node::parse("=http://x:1").is_err());
    }
}
