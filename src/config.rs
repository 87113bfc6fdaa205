//! Owns configuration in two stages: `RawConfig`, the options as given by flag,
//! `NATSMON_*` environment variable or TOML file (all optional, defaults documented), and
//! `Settings`, the validated result with parsed URLs, durations and credentials. Flags and
//! environment variables win over the file; the file wins over defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::nats::jsz::ConsumerPolicy;

pub const DEFAULT_NATS_URLS: [&str; 3] = [
    "http://127.0.0.1:8222",
    "http://127.0.0.1:8223",
    "http://127.0.0.1:8224",
];
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7778";
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(4);
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_CONNZ_PAGE_SIZE: usize = 1024;
pub const DEFAULT_CONNZ_MAX_CONNECTIONS: u64 = 1_000_000;
pub const DEFAULT_CONSUMER_METRICS_LIMIT: usize = 10_000;
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid config file {path}: {error}")]
    Parse { path: PathBuf, error: String },
    #[error("invalid NATS URL {url}: {why}")]
    NatsUrl { url: String, why: String },
    #[error("invalid value for {option}: {why}")]
    Invalid { option: &'static str, why: String },
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

impl ConfigError {
    pub fn reason(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "read",
            ConfigError::Parse { .. } => "parse",
            ConfigError::NatsUrl { .. } => "nats_url",
            ConfigError::Invalid { .. } => "invalid",
            ConfigError::Tls(_) => "tls",
        }
    }
}

/// natsmon: NATS JetStream cluster metrics for Prometheus.
///
/// Every option can also be set by the NATSMON_* environment variable shown, or by the
/// same name in snake_case in the TOML file given by --config. Flags and environment
/// variables override the file.
#[derive(Debug, Default, Clone, Parser, Deserialize)]
#[command(name = "natsmon", version, about, long_about)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// Optional TOML file with any of the options below (snake_case keys).
    #[arg(long, env = "NATSMON_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Monitoring URL of a NATS node; repeat it or give a comma-separated list. The form
    /// NAME=URL sets the node label, otherwise it is the URL's host:port. Credentials in the
    /// URL are sent as basic auth and never shown.
    /// [default: http://127.0.0.1:8222,http://127.0.0.1:8223,http://127.0.0.1:8224]
    #[arg(
        long = "nats-url",
        env = "NATSMON_NATS_URL",
        value_delimiter = ',',
        value_name = "[NAME=]URL"
    )]
    pub nats_urls: Option<Vec<String>>,

    /// Address to serve /metrics, /healthz, /ready and the status page on. [default: 0.0.0.0:7778]
    #[arg(long, env = "NATSMON_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// How often every node is polled, e.g. 5s or 1500ms. [default: 5s]
    #[arg(long, env = "NATSMON_POLL_INTERVAL", value_name = "DURATION")]
    pub poll_interval: Option<String>,

    /// Timeout of each HTTP request to a node, body included. [default: 4s]
    #[arg(long, env = "NATSMON_POLL_TIMEOUT", value_name = "DURATION")]
    pub poll_timeout: Option<String>,

    /// Largest response body accepted from a node; larger ones fail with reason too_large.
    /// [default: 67108864]
    #[arg(long, env = "NATSMON_MAX_RESPONSE_BYTES", value_name = "BYTES")]
    pub max_response_bytes: Option<usize>,

    /// Connections per /connz page. [default: 1024]
    #[arg(long, env = "NATSMON_CONNZ_PAGE_SIZE", value_name = "N")]
    pub connz_page_size: Option<usize>,

    /// Stop paging /connz after this many connections per node (nats_connz_truncated says
    /// so); nats_connz_connections stays exact either way. [default: 1000000]
    #[arg(long, env = "NATSMON_CONNZ_MAX_CONNECTIONS", value_name = "N")]
    pub connz_max_connections: Option<u64>,

    /// Per-connection series (nats_connection_*) for up to N connections per node, oldest
    /// first. 0 turns them off. [default: 0]
    #[arg(long, env = "NATSMON_CONNECTION_METRICS_LIMIT", value_name = "N")]
    pub connection_metrics_limit: Option<usize>,

    /// Per-consumer series for at most N consumers cluster-wide, in name order; the rest are
    /// counted in natsmon_objects_not_exported{reason="limit"}. [default: 10000]
    #[arg(long, env = "NATSMON_CONSUMER_METRICS_LIMIT", value_name = "N")]
    pub consumer_metrics_limit: Option<usize>,

    /// Also export ephemeral consumers (random names, so series churn). [default: false]
    #[arg(long, env = "NATSMON_EPHEMERAL_CONSUMERS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub ephemeral_consumers: Option<bool>,

    /// PEM CA bundle to verify https monitoring endpoints with.
    #[arg(long, env = "NATSMON_NATS_CA_FILE", value_name = "FILE")]
    pub nats_ca_file: Option<PathBuf>,

    /// PEM client certificate for https monitoring endpoints (with --nats-key-file).
    #[arg(long, env = "NATSMON_NATS_CERT_FILE", value_name = "FILE")]
    pub nats_cert_file: Option<PathBuf>,

    /// PEM private key of --nats-cert-file.
    #[arg(long, env = "NATSMON_NATS_KEY_FILE", value_name = "FILE")]
    pub nats_key_file: Option<PathBuf>,

    /// Do not verify monitoring endpoint certificates (testing only). [default: false]
    #[arg(long, env = "NATSMON_NATS_INSECURE_SKIP_VERIFY", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub nats_insecure_skip_verify: Option<bool>,

    /// PEM certificate to serve natsmon's own port over TLS (with --web-tls-key-file).
    #[arg(long, env = "NATSMON_WEB_TLS_CERT_FILE", value_name = "FILE")]
    pub web_tls_cert_file: Option<PathBuf>,

    /// PEM private key of --web-tls-cert-file.
    #[arg(long, env = "NATSMON_WEB_TLS_KEY_FILE", value_name = "FILE")]
    pub web_tls_key_file: Option<PathBuf>,

    /// Require HTTP basic auth on every route but /healthz: USER:BCRYPT_HASH entries, as in
    /// Prometheus's web config (`htpasswd -nbB user pass`). Comma-separated or repeated.
    #[arg(
        long,
        env = "NATSMON_WEB_BASIC_AUTH_USERS",
        value_delimiter = ',',
        value_name = "USER:HASH"
    )]
    pub web_basic_auth_users: Option<Vec<String>>,

    /// Loki base URL; setting it turns log shipping on, e.g. http://loki:3100.
    #[arg(long, env = "NATSMON_LOKI_URL", value_name = "URL")]
    pub loki_url: Option<String>,

    /// Loki tenant, sent as X-Scope-OrgID.
    #[arg(long, env = "NATSMON_LOKI_TENANT", value_name = "TENANT")]
    pub loki_tenant: Option<String>,

    /// Basic auth user for Loki; the password comes from NATSMON_LOKI_PASSWORD or
    /// --loki-password-file, never from a flag.
    #[arg(long, env = "NATSMON_LOKI_USERNAME", value_name = "USER")]
    pub loki_username: Option<String>,

    /// File holding the Loki basic auth password.
    #[arg(long, env = "NATSMON_LOKI_PASSWORD_FILE", value_name = "FILE")]
    pub loki_password_file: Option<PathBuf>,

    /// File holding a Loki bearer token (or set NATSMON_LOKI_BEARER_TOKEN).
    #[arg(long, env = "NATSMON_LOKI_BEARER_TOKEN_FILE", value_name = "FILE")]
    pub loki_bearer_token_file: Option<PathBuf>,

    /// PEM CA bundle to verify an https Loki with.
    #[arg(long, env = "NATSMON_LOKI_CA_FILE", value_name = "FILE")]
    pub loki_ca_file: Option<PathBuf>,

    /// Push encoding: protobuf (snappy) or json. [default: protobuf]
    #[arg(long, env = "NATSMON_LOKI_FORMAT", value_name = "FORMAT")]
    pub loki_format: Option<String>,

    /// Flush a batch at this many bytes of log lines. [default: 1048576]
    #[arg(long, env = "NATSMON_BATCH_MAX_BYTES", value_name = "BYTES")]
    pub batch_max_bytes: Option<usize>,

    /// Flush a batch at this many entries. [default: 10000]
    #[arg(long, env = "NATSMON_BATCH_MAX_ENTRIES", value_name = "N")]
    pub batch_max_entries: Option<usize>,

    /// Flush a batch when its oldest entry has waited this long. [default: 1s]
    #[arg(long, env = "NATSMON_BATCH_MAX_WAIT", value_name = "DURATION")]
    pub batch_max_wait: Option<String>,

    /// Log lines read but not yet acknowledged by Loki are held up to this many bytes;
    /// beyond it natsmon stops reading from Docker (the log file is the buffer). [default: 8388608]
    #[arg(long, env = "NATSMON_BUFFER_MAX_BYTES", value_name = "BYTES")]
    pub buffer_max_bytes: Option<usize>,

    /// Lines Docker split at 16 KiB are rejoined up to this size, then truncated (and
    /// counted). Loki's default max_line_size is 256KB. [default: 262144]
    #[arg(long, env = "NATSMON_MAX_LINE_BYTES", value_name = "BYTES")]
    pub max_line_bytes: Option<usize>,

    /// Longest wait between retries of a failed push. [default: 30s]
    #[arg(long, env = "NATSMON_RETRY_MAX_BACKOFF", value_name = "DURATION")]
    pub retry_max_backoff: Option<String>,

    /// Docker Engine API address. [default: $DOCKER_HOST, else unix:///var/run/docker.sock]
    #[arg(long, env = "NATSMON_DOCKER_HOST", value_name = "URL")]
    pub docker_host: Option<String>,

    /// Directory for shipping checkpoints. [default: /var/lib/natsmon]
    #[arg(long, env = "NATSMON_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Ship only containers whose name matches one of these patterns (`*` wildcard).
    #[arg(
        long,
        env = "NATSMON_INCLUDE_CONTAINERS",
        value_delimiter = ',',
        value_name = "PATTERN"
    )]
    pub include_containers: Option<Vec<String>>,

    /// Never ship containers whose name matches one of these patterns.
    #[arg(
        long,
        env = "NATSMON_EXCLUDE_CONTAINERS",
        value_delimiter = ',',
        value_name = "PATTERN"
    )]
    pub exclude_containers: Option<Vec<String>>,

    /// Ship only containers with one of these Docker labels (KEY or KEY=VALUE).
    #[arg(
        long,
        env = "NATSMON_INCLUDE_LABELS",
        value_delimiter = ',',
        value_name = "LABEL"
    )]
    pub include_labels: Option<Vec<String>>,

    /// Never ship containers with one of these Docker labels (KEY or KEY=VALUE).
    #[arg(
        long,
        env = "NATSMON_EXCLUDE_LABELS",
        value_delimiter = ',',
        value_name = "LABEL"
    )]
    pub exclude_labels: Option<Vec<String>>,

    /// `job` label of containers that are not NATS servers; a container's own Docker label
    /// `natsmon.job` overrides it, and NATS server containers get `nats`. [default: docker]
    #[arg(long, env = "NATSMON_DEFAULT_JOB", value_name = "JOB")]
    pub default_job: Option<String>,

    /// How often acknowledged positions are written to the state directory. [default: 1s]
    #[arg(long, env = "NATSMON_CHECKPOINT_INTERVAL", value_name = "DURATION")]
    pub checkpoint_interval: Option<String>,

    /// Log filter in tracing-subscriber's EnvFilter syntax. [default: info]
    #[arg(long, env = "NATSMON_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// Log format: text or json. [default: text]
    #[arg(long, env = "NATSMON_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Time allowed for in-flight work after SIGTERM or SIGINT. [default: 5s]
    #[arg(long, env = "NATSMON_SHUTDOWN_GRACE", value_name = "DURATION")]
    pub shutdown_grace: Option<String>,
}

macro_rules! overlay {
    ($hi:expr, $lo:expr, $($f:ident),*) => { $( if $hi.$f.is_none() { $hi.$f = $lo.$f; } )* };
}

impl RawConfig {
    /// Reads the TOML file named by `--config`, if any, and fills what flags left unset.
    pub fn with_file(mut self) -> Result<RawConfig, ConfigError> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let file = RawConfig::from_toml_file(&path)?;
        overlay!(
            self,
            file,
            nats_urls,
            listen,
            poll_interval,
            poll_timeout,
            max_response_bytes,
            connz_page_size,
            connz_max_connections,
            connection_metrics_limit,
            consumer_metrics_limit,
            ephemeral_consumers,
            nats_ca_file,
            nats_cert_file,
            nats_key_file,
            nats_insecure_skip_verify,
            web_tls_cert_file,
            web_tls_key_file,
            web_basic_auth_users,
            log,
            log_format,
            shutdown_grace,
            loki_url,
            loki_tenant,
            loki_username,
            loki_password_file,
            loki_bearer_token_file,
            loki_ca_file,
            loki_format,
            batch_max_bytes,
            batch_max_entries,
            batch_max_wait,
            buffer_max_bytes,
            max_line_bytes,
            retry_max_backoff,
            docker_host,
            state_dir,
            include_containers,
            exclude_containers,
            include_labels,
            exclude_labels,
            default_job,
            checkpoint_interval
        );
        Ok(self)
    }

    pub fn from_toml_file(path: &Path) -> Result<RawConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.into(),
            error,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            error: e.to_string(),
        })
    }

    pub fn validate(self) -> Result<Settings, ConfigError> {
        self.validate_with_env(&|k| std::env::var(k).ok())
    }

    /// `env` supplies secrets that are only ever read from the environment, so tests can
    /// inject them without touching the process environment.
    pub fn validate_with_env(
        self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let logs = crate::logs::config::LogSettings::from_raw(&self, env)?;
        let urls: Vec<String> = match self.nats_urls {
            Some(v) if !v.is_empty() => v,
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
        let listen = self.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen: SocketAddr = listen.parse().map_err(|e| ConfigError::Invalid {
            option: "listen",
            why: format!("{listen}: {e}"),
        })?;
        let poll_interval = duration(
            "poll-interval",
            self.poll_interval.as_deref(),
            DEFAULT_POLL_INTERVAL,
        )?;
        let poll_timeout = duration(
            "poll-timeout",
            self.poll_timeout.as_deref(),
            DEFAULT_POLL_TIMEOUT,
        )?;
        if poll_interval.is_zero() || poll_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                option: "poll-interval",
                why: "intervals and timeouts must be above zero".into(),
            });
        }
        let connz_page_size = self.connz_page_size.unwrap_or(DEFAULT_CONNZ_PAGE_SIZE);
        if connz_page_size == 0 {
            return Err(ConfigError::Invalid {
                option: "connz-page-size",
                why: "must be above zero".into(),
            });
        }
        let read =
            |p: &Option<PathBuf>, what: &'static str| -> Result<Option<Vec<u8>>, ConfigError> {
                p.as_ref()
                    .map(|p| {
                        std::fs::read(p).map_err(|e| ConfigError::Invalid {
                            option: what,
                            why: format!("{}: {e}", p.display()),
                        })
                    })
                    .transpose()
            };
        let identity_pem = match (
            read(&self.nats_cert_file, "nats-cert-file")?,
            read(&self.nats_key_file, "nats-key-file")?,
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
        let nats_tls = NatsTls {
            ca_pem: read(&self.nats_ca_file, "nats-ca-file")?,
            identity_pem,
            insecure_skip_verify: self.nats_insecure_skip_verify.unwrap_or(false),
        };
        let tls = match (self.web_tls_cert_file, self.web_tls_key_file) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid {
                    option: "web-tls-cert-file",
                    why: "needs --web-tls-key-file too".into(),
                });
            }
        };
        let mut basic_auth_users = BTreeMap::new();
        for entry in self.web_basic_auth_users.unwrap_or_default() {
            let Some((user, hash)) = entry.trim().split_once(':') else {
                return Err(ConfigError::Invalid {
                    option: "web-basic-auth-users",
                    why: "expected USER:BCRYPT_HASH".into(),
                });
            };
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(ConfigError::Invalid {
                    option: "web-basic-auth-users",
                    why: format!("the hash of user {user} is not a bcrypt hash"),
                });
            }
            basic_auth_users.insert(user.to_string(), hash.to_string());
        }
        let log_format = match self.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::Invalid {
                    option: "log-format",
                    why: format!("{other}: expected text or json"),
                });
            }
        };
        Ok(Settings {
            nodes,
            listen,
            poll_interval,
            poll_timeout,
            max_response_bytes: self
                .max_response_bytes
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            connz_page_size,
            connz_max_connections: self
                .connz_max_connections
                .unwrap_or(DEFAULT_CONNZ_MAX_CONNECTIONS),
            connection_metrics_limit: self.connection_metrics_limit.unwrap_or(0),
            consumers: ConsumerPolicy {
                include_ephemeral: self.ephemeral_consumers.unwrap_or(false),
                limit: self
                    .consumer_metrics_limit
                    .unwrap_or(DEFAULT_CONSUMER_METRICS_LIMIT),
            },
            nats_tls,
            web: WebSettings {
                tls,
                basic_auth_users,
            },
            log: self.log.unwrap_or_else(|| "info".into()),
            log_format,
            shutdown_grace: duration(
                "shutdown-grace",
                self.shutdown_grace.as_deref(),
                DEFAULT_SHUTDOWN_GRACE,
            )?,
            logs,
        })
    }
}

pub(crate) fn duration(
    option: &'static str,
    v: Option<&str>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => humantime::parse_duration(s.trim()).map_err(|e| ConfigError::Invalid {
            option,
            why: format!("{s}: {e}"),
        }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Default)]
pub struct NatsTls {
    pub ca_pem: Option<Vec<u8>>,
    /// Certificate chain followed by its key, as reqwest's `Identity::from_pem` wants it.
    pub identity_pem: Option<Vec<u8>>,
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, Default)]
pub struct WebSettings {
    pub tls: Option<(PathBuf, PathBuf)>,
    /// User to bcrypt hash.
    pub basic_auth_users: BTreeMap<String, String>,
}

/// Validated settings; everything the program needs, nothing left to parse.
#[derive(Debug, Clone)]
pub struct Settings {
    pub nodes: Vec<Node>,
    pub listen: SocketAddr,
    pub poll_interval: Duration,
    pub poll_timeout: Duration,
    pub max_response_bytes: usize,
    pub connz_page_size: usize,
    pub connz_max_connections: u64,
    pub connection_metrics_limit: usize,
    pub consumers: ConsumerPolicy,
    pub nats_tls: NatsTls,
    pub web: WebSettings,
    pub log: String,
    pub log_format: LogFormat,
    pub shutdown_grace: Duration,
    /// Log shipping; `None` unless `--loki-url` is set.
    pub logs: Option<crate::logs::config::LogSettings>,
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

/// Removes userinfo and query from anything URL-like, for error messages about URLs that
/// failed to parse and so could not be cleaned structurally.
pub fn redact_url(s: &str) -> String {
    let (scheme, rest) = match s.split_once("://") {
        Some((a, b)) => (Some(a), b),
        None => (None, s),
    };
    let rest = match rest.rfind('@') {
        Some(at) if rest[..at].find('/').is_none() => format!("REDACTED@{}", &rest[at + 1..]),
        _ => rest.to_string(),
    };
    let rest = rest.split('?').next().unwrap_or_default().to_string();
    match scheme {
        Some(sc) => format!("{sc}://{rest}"),
        None => rest,
    }
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

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("http://user:secret@host:1/x?token=abc"),
            "http://REDACTED@host:1/x"
        );
        assert!(!redact_url("user:secret@host").contains("secret"));
    }

    #[test]
    fn defaults_match_the_users_layout() {
        let s = RawConfig::default().validate().unwrap();
        let names: Vec<_> = s.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            ["127.0.0.1:8222", "127.0.0.1:8223", "127.0.0.1:8224"]
        );
        assert_eq!(s.listen.to_string(), "0.0.0.0:7778");
        assert_eq!(s.poll_interval, DEFAULT_POLL_INTERVAL);
    }

    #[test]
    fn flags_beat_file_and_lists_split() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("natsmon.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:9999\"\npoll_interval = \"2s\"\nnats_urls = [\"a=http://h:1\"]\n",
        )
        .unwrap();
        let raw = RawConfig::try_parse_from([
            "natsmon",
            "--config",
            f.to_str().unwrap(),
            "--nats-url",
            "x=http://h:2,y=http://h:3",
            "--poll-interval",
            "750ms",
        ])
        .unwrap()
        .with_file()
        .unwrap();
        let s = raw.validate().unwrap();
        assert_eq!(
            s.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
            ["x", "y"]
        );
        assert_eq!(s.poll_interval, Duration::from_millis(750));
        assert_eq!(s.listen.to_string(), "127.0.0.1:9999");
    }

    #[test]
    fn the_example_file_parses_and_states_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("natsmon.example.toml");
        let s = RawConfig::from_toml_file(&path)
            .unwrap()
            .validate()
            .unwrap();
        let d = RawConfig::default().validate().unwrap();
        assert_eq!(
            s.nodes.iter().map(|n| n.url_for("")).collect::<Vec<_>>(),
            d.nodes.iter().map(|n| n.url_for("")).collect::<Vec<_>>()
        );
        assert_eq!(
            (s.listen, s.poll_interval, s.poll_timeout),
            (d.listen, d.poll_interval, d.poll_timeout)
        );
        assert_eq!(
            (
                s.max_response_bytes,
                s.connz_page_size,
                s.connz_max_connections
            ),
            (
                d.max_response_bytes,
                d.connz_page_size,
                d.connz_max_connections
            )
        );
        assert_eq!(
            (s.connection_metrics_limit, &s.consumers, s.shutdown_grace),
            (d.connection_metrics_limit, &d.consumers, d.shutdown_grace)
        );
        assert_eq!((&s.log, s.log_format), (&d.log, d.log_format));
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("natsmon.toml");
        std::fs::write(&f, "poll_intervall = \"2s\"\n").unwrap();
        assert!(matches!(
            RawConfig::from_toml_file(&f),
            Err(ConfigError::Parse { .. })
        ));
    }
}
