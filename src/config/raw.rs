//! Owns the first configuration stage: `RawConfig`, every option as given by flag,
//! `NATSMON_*` environment variable or TOML key, all optional, with the defaults they
//! fall back to. Nothing here is validated; `Settings::from_raw` does that.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use super::ConfigError;

pub const DEFAULT_NATS_URLS: [&str; 3] = [
    "http://127.0.0.1:8222",
    "http://127.0.0.1:8223",
    "http://127.0.0.1:8224",
];
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7778";
/// Matches the usual 15 s scrape interval: polling faster only loads the servers with
/// figures no scrape reads (BENCHMARKS.md, "What natsmon costs the servers").
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(15);
/// Stream and consumer configs change rarely; they are read this often, the state every
/// poll.
pub const DEFAULT_JSZ_CONFIG_INTERVAL: Duration = Duration::from_secs(300);
/// `/raftz` is most of what natsmon reads from a clustered 2.10.17+ server (every Raft
/// group of every account, on every node): read each minute, it costs a quarter.
pub const DEFAULT_RAFTZ_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(4);
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_CONNZ_PAGE_SIZE: usize = 1024;
pub const DEFAULT_CONNZ_MAX_CONNECTIONS: u64 = 1_000_000;
pub const DEFAULT_CONSUMER_METRICS_LIMIT: usize = 10_000;
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// A member that vanished stays this long with `nats_up 0`: long enough for Prometheus to
/// scrape it and an alert to fire, short enough that a scaled-down cluster settles.
pub const DEFAULT_DISCOVER_GRACE: Duration = Duration::from_secs(300);

const EXAMPLES: &str = "\
Examples:
  # A 3-node cluster; each server has `http: 8222` (its HTTP monitoring port) in its config.
  natsmon --nats-url nats-1=http://nats-1:8222,nats-2=http://nats-2:8222,nats-3=http://nats-3:8222

  # One seed; the other members are found from its routes, on the seed's monitoring port.
  natsmon --nats-url http://nats-1:8222 --discover

  # The same, plus shipping every container's logs to Loki.
  natsmon --nats-url nats-1=http://nats-1:8222 --loki-url http://loki:3100

  # Port 7778 with TLS and basic auth (htpasswd -nbB prom 'secret' makes the hash).
  NATSMON_WEB_BASIC_AUTH_USERS='prom:$2y$05$...' natsmon --web-tls-cert-file cert.pem --web-tls-key-file key.pem

  # Everything from a file (see natsmon.example.toml).
  natsmon --config /etc/natsmon.toml

Then: the console on http://localhost:7778/, metrics on /metrics, JSON on /api/v1/status.";

/// natsmon: NATS JetStream cluster metrics for Prometheus.
///
/// Every option can also be set by the NATSMON_* environment variable shown, or by the
/// same name in snake_case in the TOML file given by --config. Flags and environment
/// variables override the file.
#[derive(Debug, Default, Clone, Parser, Deserialize)]
#[command(name = "natsmon", version, about, long_about, after_help = EXAMPLES)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// Optional TOML file with any of the options below (snake_case keys).
    #[arg(long, env = "NATSMON_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// What this natsmon does: exporter (poll NATS, serve its metrics), shipper (ship
    /// container logs to Loki), or both, comma-separated. A shipper on each Docker host and
    /// one exporter per cluster is the multi-host layout.
    /// [default: exporter, plus shipper when --loki-url is set]
    #[arg(
        long,
        env = "NATSMON_ROLES",
        value_delimiter = ',',
        value_name = "ROLE"
    )]
    pub roles: Option<Vec<String>>,

    /// Monitoring URL of a NATS node; repeat it or give a comma-separated list. The form
    /// NAME=URL sets the node label, otherwise it is the URL's host:port. Credentials in the
    /// URL are sent as basic auth and never shown.
    /// [default: http://127.0.0.1:8222,http://127.0.0.1:8223,http://127.0.0.1:8224]
    #[arg(
        help_heading = "NATS",
        long = "nats-url",
        env = "NATSMON_NATS_URL",
        value_delimiter = ',',
        value_name = "[NAME=]URL"
    )]
    pub nats_urls: Option<Vec<String>>,

    /// Find the other members of each node's cluster from its /varz and /routez, and poll
    /// them too, labelled by server name. Every --nats-url is then a seed: a name that
    /// resolves to several addresses is one seed per address. [default: false]
    #[arg(help_heading = "NATS", long, env = "NATSMON_DISCOVER", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub discover: Option<bool>,

    /// Monitoring port of discovered members: the servers do not report it, so natsmon
    /// assumes the seed's. [default: the seed's port]
    #[arg(
        help_heading = "NATS",
        long,
        env = "NATSMON_DISCOVER_PORT",
        value_name = "PORT"
    )]
    pub discover_port: Option<u16>,

    /// How long a discovered member that left stays polled, with nats_up 0, before its
    /// series are dropped. [default: 5m]
    #[arg(
        help_heading = "NATS",
        long,
        env = "NATSMON_DISCOVER_GRACE",
        value_name = "DURATION"
    )]
    pub discover_grace: Option<String>,

    /// Address to serve /metrics, /healthz, /ready and the status page on. [default: 0.0.0.0:7778]
    #[arg(
        help_heading = "HTTP (port 7778)",
        long,
        env = "NATSMON_LISTEN",
        value_name = "ADDR"
    )]
    pub listen: Option<String>,

    /// How often every node is polled, e.g. 15s or 1500ms. [default: 15s]
    #[arg(
        help_heading = "NATS",
        long,
        env = "NATSMON_POLL_INTERVAL",
        value_name = "DURATION"
    )]
    pub poll_interval: Option<String>,

    /// Timeout of each HTTP request to a node, body included. [default: 4s]
    #[arg(
        help_heading = "NATS",
        long,
        env = "NATSMON_POLL_TIMEOUT",
        value_name = "DURATION"
    )]
    pub poll_timeout: Option<String>,

    /// Largest response body accepted from a node; larger ones fail with reason too_large.
    /// [default: 67108864]
    #[arg(
        help_heading = "NATS",
        long,
        env = "NATSMON_MAX_RESPONSE_BYTES",
        value_name = "BYTES"
    )]
    pub max_response_bytes: Option<usize>,

    /// Connections per /connz page. [default: 1024]
    #[arg(
        help_heading = "NATS",
        long,
        env = "NATSMON_CONNZ_PAGE_SIZE",
        value_name = "N"
    )]
    pub connz_page_size: Option<usize>,

    /// Stop paging /connz after this many connections per node (nats_connz_truncated says
    /// so); nats_connz_connections stays exact either way. [default: 1000000]
    #[arg(
        help_heading = "NATS",
        long,
        env = "NATSMON_CONNZ_MAX_CONNECTIONS",
        value_name = "N"
    )]
    pub connz_max_connections: Option<u64>,

    /// Per-connection series (nats_connection_*) for up to N connections per node, oldest
    /// first. 0 turns them off. [default: 0]
    #[arg(
        help_heading = "NATS",
        long,
        env = "NATSMON_CONNECTION_METRICS_LIMIT",
        value_name = "N"
    )]
    pub connection_metrics_limit: Option<usize>,

    /// Per-consumer series for at most N consumers cluster-wide, in name order; the rest are
    /// counted in natsmon_objects_not_exported{reason="limit"}. [default: 10000]
    #[arg(
        help_heading = "NATS",
        long,
        env = "NATSMON_CONSUMER_METRICS_LIMIT",
        value_name = "N"
    )]
    pub consumer_metrics_limit: Option<usize>,

    /// Read each stream from its leader only (`/jsz?stream-leader-only=true`, nats-server
    /// 2.10.19 and later), about a third of `/jsz` on R3 clusters; older nodes are read
    /// whole. [default: true]
    #[arg(help_heading = "NATS", long, env = "NATSMON_JSZ_STREAM_LEADER_ONLY", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub jsz_stream_leader_only: Option<bool>,

    /// With stream-leader-only, also read whole every server that leads a consumer of a
    /// stream it does not lead, for that consumer's nats_consumer_num_waiting and replica
    /// series; num_pending is exact either way. [default: false]
    #[arg(help_heading = "NATS", long, env = "NATSMON_JSZ_READ_CONSUMER_LEADERS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub jsz_read_consumer_leaders: Option<bool>,

    /// How often stream and consumer configs (limits, replicas, filters) are read; between
    /// reads the last ones are used, and an object natsmon has no config for yet is read at
    /// once. [default: 5m]
    #[arg(
        help_heading = "NATS",
        long,
        env = "NATSMON_JSZ_CONFIG_INTERVAL",
        value_name = "DURATION"
    )]
    pub jsz_config_interval: Option<String>,

    /// How often /raftz (2.10.17+ clusters) is read; between reads the last one is used,
    /// and a stream or consumer created or deleted has it read at once. [default: 1m]
    #[arg(
        help_heading = "NATS",
        long,
        env = "NATSMON_RAFTZ_INTERVAL",
        value_name = "DURATION"
    )]
    pub raftz_interval: Option<String>,

    /// Page through every /connz connection for nats_connz_pending_bytes and
    /// nats_connz_subscriptions. Off, one small page per poll (sorted by pending bytes)
    /// gives the connection count and the most backed-up connection; every page makes the
    /// server sort all its connections. [default: false]
    #[arg(help_heading = "NATS", long, env = "NATSMON_CONNZ_ALL_PAGES", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub connz_all_pages: Option<bool>,

    /// Also export ephemeral consumers (random names, so series churn). [default: false]
    #[arg(help_heading = "NATS", long, env = "NATSMON_EPHEMERAL_CONSUMERS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub ephemeral_consumers: Option<bool>,

    /// PEM CA bundle to verify https monitoring endpoints with.
    #[arg(
        help_heading = "NATS",
        long,
        env = "NATSMON_NATS_CA_FILE",
        value_name = "FILE"
    )]
    pub nats_ca_file: Option<PathBuf>,

    /// PEM client certificate for https monitoring endpoints (with --nats-key-file).
    #[arg(
        help_heading = "NATS",
        long,
        env = "NATSMON_NATS_CERT_FILE",
        value_name = "FILE"
    )]
    pub nats_cert_file: Option<PathBuf>,

    /// PEM private key of --nats-cert-file.
    #[arg(
        help_heading = "NATS",
        long,
        env = "NATSMON_NATS_KEY_FILE",
        value_name = "FILE"
    )]
    pub nats_key_file: Option<PathBuf>,

    /// Do not verify monitoring endpoint certificates (testing only). [default: false]
    #[arg(help_heading = "NATS", long, env = "NATSMON_NATS_INSECURE_SKIP_VERIFY", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub nats_insecure_skip_verify: Option<bool>,

    /// PEM certificate to serve natsmon's own port over TLS (with --web-tls-key-file).
    #[arg(
        help_heading = "HTTP (port 7778)",
        long,
        env = "NATSMON_WEB_TLS_CERT_FILE",
        value_name = "FILE"
    )]
    pub web_tls_cert_file: Option<PathBuf>,

    /// PEM private key of --web-tls-cert-file.
    #[arg(
        help_heading = "HTTP (port 7778)",
        long,
        env = "NATSMON_WEB_TLS_KEY_FILE",
        value_name = "FILE"
    )]
    pub web_tls_key_file: Option<PathBuf>,

    /// Require HTTP basic auth on every route but /healthz: USER:BCRYPT_HASH entries, as in
    /// Prometheus's web config (`htpasswd -nbB user pass`). Comma-separated or repeated.
    #[arg(
        help_heading = "HTTP (port 7778)",
        long,
        env = "NATSMON_WEB_BASIC_AUTH_USERS",
        value_delimiter = ',',
        value_name = "USER:HASH"
    )]
    pub web_basic_auth_users: Option<Vec<String>>,

    /// Loki base URL; setting it turns log shipping on, e.g. http://loki:3100.
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_LOKI_URL",
        value_name = "URL"
    )]
    pub loki_url: Option<String>,

    /// Loki tenant, sent as X-Scope-OrgID.
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_LOKI_TENANT",
        value_name = "TENANT"
    )]
    pub loki_tenant: Option<String>,

    /// Basic auth user for Loki; the password comes from NATSMON_LOKI_PASSWORD or
    /// --loki-password-file, never from a flag.
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_LOKI_USERNAME",
        value_name = "USER"
    )]
    pub loki_username: Option<String>,

    /// File holding the Loki basic auth password.
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_LOKI_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub loki_password_file: Option<PathBuf>,

    /// File holding a Loki bearer token (or set NATSMON_LOKI_BEARER_TOKEN).
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_LOKI_BEARER_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub loki_bearer_token_file: Option<PathBuf>,

    /// PEM CA bundle to verify an https Loki with.
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_LOKI_CA_FILE",
        value_name = "FILE"
    )]
    pub loki_ca_file: Option<PathBuf>,

    /// Push encoding: protobuf (snappy) or json. [default: protobuf]
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_LOKI_FORMAT",
        value_name = "FORMAT"
    )]
    pub loki_format: Option<String>,

    /// Send nats-server lines' connection id, remote address and account as Loki 3
    /// structured metadata (not labels). A Loki that refuses it gets lines without it.
    /// [default: true]
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_LOKI_STRUCTURED_METADATA",
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub loki_structured_metadata: Option<bool>,

    /// Flush a batch at this many bytes of log lines. [default: 1048576]
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_BATCH_MAX_BYTES",
        value_name = "BYTES"
    )]
    pub batch_max_bytes: Option<usize>,

    /// Flush a batch at this many entries. [default: 10000]
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_BATCH_MAX_ENTRIES",
        value_name = "N"
    )]
    pub batch_max_entries: Option<usize>,

    /// Flush a batch when its oldest entry has waited this long. [default: 1s]
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_BATCH_MAX_WAIT",
        value_name = "DURATION"
    )]
    pub batch_max_wait: Option<String>,

    /// Log lines read but not yet acknowledged by Loki are held up to this many bytes;
    /// beyond it natsmon stops reading from Docker (the log file is the buffer). [default: 8388608]
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_BUFFER_MAX_BYTES",
        value_name = "BYTES"
    )]
    pub buffer_max_bytes: Option<usize>,

    /// Lines Docker split at 16 KiB are rejoined up to this size, then truncated (and
    /// counted). Loki's default max_line_size is 256KB. [default: 262144]
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_MAX_LINE_BYTES",
        value_name = "BYTES"
    )]
    pub max_line_bytes: Option<usize>,

    /// Longest wait between retries of a failed push. [default: 30s]
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_RETRY_MAX_BACKOFF",
        value_name = "DURATION"
    )]
    pub retry_max_backoff: Option<String>,

    /// Docker Engine API address. [default: $DOCKER_HOST, else unix:///var/run/docker.sock]
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_DOCKER_HOST",
        value_name = "URL"
    )]
    pub docker_host: Option<String>,

    /// Directory for shipping checkpoints. [default: /var/lib/natsmon]
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_STATE_DIR",
        value_name = "DIR"
    )]
    pub state_dir: Option<PathBuf>,

    /// Ship only containers whose name matches one of these patterns (`*` wildcard).
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_INCLUDE_CONTAINERS",
        value_delimiter = ',',
        value_name = "PATTERN"
    )]
    pub include_containers: Option<Vec<String>>,

    /// Never ship containers whose name matches one of these patterns.
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_EXCLUDE_CONTAINERS",
        value_delimiter = ',',
        value_name = "PATTERN"
    )]
    pub exclude_containers: Option<Vec<String>>,

    /// Ship only containers with one of these Docker labels (KEY or KEY=VALUE).
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_INCLUDE_LABELS",
        value_delimiter = ',',
        value_name = "LABEL"
    )]
    pub include_labels: Option<Vec<String>>,

    /// Never ship containers with one of these Docker labels (KEY or KEY=VALUE).
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_EXCLUDE_LABELS",
        value_delimiter = ',',
        value_name = "LABEL"
    )]
    pub exclude_labels: Option<Vec<String>>,

    /// `job` label of containers that are not NATS servers; a container's own Docker label
    /// `natsmon.job` overrides it, and NATS server containers get `nats`. [default: docker]
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_DEFAULT_JOB",
        value_name = "JOB"
    )]
    pub default_job: Option<String>,

    /// How often acknowledged positions are written to the state directory. [default: 1s]
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_CHECKPOINT_INTERVAL",
        value_name = "DURATION"
    )]
    pub checkpoint_interval: Option<String>,

    /// `host` label of every shipped line. [default: the Docker daemon's name, from /info]
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_HOST_LABEL",
        value_name = "NAME"
    )]
    pub host_label: Option<String>,

    /// How long a removed container's natsmon_logs_* series stay after its last line was
    /// acknowledged, so that Prometheus scrapes their final values. [default: 5m]
    #[arg(
        help_heading = "Log shipping (Loki and Docker)",
        long,
        env = "NATSMON_CONTAINER_SERIES_GRACE",
        value_name = "DURATION"
    )]
    pub container_series_grace: Option<String>,

    /// Log filter in tracing-subscriber's EnvFilter syntax. [default: info]
    #[arg(
        help_heading = "Logging",
        long,
        env = "NATSMON_LOG",
        value_name = "FILTER"
    )]
    pub log: Option<String>,

    /// Log format: text or json. [default: text]
    #[arg(
        help_heading = "Logging",
        long,
        env = "NATSMON_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    pub log_format: Option<String>,

    /// Time allowed for in-flight work after SIGTERM or SIGINT. [default: 5s]
    #[arg(long, env = "NATSMON_SHUTDOWN_GRACE", value_name = "DURATION")]
    pub shutdown_grace: Option<String>,
}

/// Fills every option the flags and environment left unset from the file. The file's
/// struct is destructured without `..`, so an option added to `RawConfig` but not here
/// fails to compile.
macro_rules! overlay {
    ($hi:expr, $lo:expr, $($f:ident),* $(,)?) => {
        let RawConfig { config: _, $($f),* } = $lo;
        $( if $hi.$f.is_none() { $hi.$f = $f; } )*
    };
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
            roles,
            nats_urls,
            discover,
            discover_port,
            discover_grace,
            listen,
            poll_interval,
            poll_timeout,
            max_response_bytes,
            connz_page_size,
            connz_max_connections,
            connection_metrics_limit,
            consumer_metrics_limit,
            ephemeral_consumers,
            jsz_stream_leader_only,
            jsz_read_consumer_leaders,
            jsz_config_interval,
            raftz_interval,
            connz_all_pages,
            nats_ca_file,
            nats_cert_file,
            nats_key_file,
            nats_insecure_skip_verify,
            web_tls_cert_file,
            web_tls_key_file,
            web_basic_auth_users,
            loki_url,
            loki_tenant,
            loki_username,
            loki_password_file,
            loki_bearer_token_file,
            loki_ca_file,
            loki_format,
            loki_structured_metadata,
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
            checkpoint_interval,
            host_label,
            container_series_grace,
            log,
            log_format,
            shutdown_grace,
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
}
