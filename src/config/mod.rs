//! Owns configuration in two stages, as ripgrep's low and high args: `raw::RawConfig`, the
//! options as given by flag, `NATSMON_*` environment variable or TOML file (all optional,
//! defaults documented), and `Settings`, the validated result with parsed URLs, durations
//! and credentials. Flags and environment variables win over the file; the file wins over
//! defaults. Each area validates its own options: `nats`, `web`, `logs`.

pub mod logs;
pub mod nats;
pub mod raw;
pub mod web;

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

pub use self::logs::LogSettings;
pub use self::nats::{ConsumerPolicy, DiscoverySettings, NatsTls, Node};
pub use self::raw::RawConfig;
pub use self::web::WebSettings;

pub(crate) const KIB: usize = 1024;
pub(crate) const GIB: usize = 1024 * 1024 * 1024;
pub(crate) const MILLIS_100: Duration = Duration::from_millis(100);
pub(crate) const HOUR: Duration = Duration::from_secs(3600);

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Which of natsmon's two jobs this process does. One natsmon can do both on a single
/// host; on several Docker hosts, a shipper runs on each and one exporter (or an HA pair)
/// per cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Polls NATS nodes and exports their series.
    pub exporter: bool,
    /// Reads Docker and ships container logs to Loki.
    pub shipper: bool,
}

impl Roles {
    /// The roles that run, as `/api/v1/status` and the console name them.
    pub fn names(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.exporter {
            v.push("exporter");
        }
        if self.shipper {
            v.push("shipper");
        }
        v
    }
}

/// Validated settings; everything the program needs, nothing left to parse.
#[derive(Debug, Clone)]
pub struct Settings {
    pub roles: Roles,
    /// The nodes to poll; empty only when the exporter role is off.
    pub nodes: Vec<Node>,
    /// Discovery of cluster members from the nodes (then seeds); `None` when off.
    pub discovery: Option<DiscoverySettings>,
    pub listen: SocketAddr,
    pub poll_interval: Duration,
    pub poll_timeout: Duration,
    pub max_response_bytes: usize,
    pub connz_page_size: usize,
    pub connz_max_connections: u64,
    pub connection_metrics_limit: usize,
    /// Page all of `/connz` (sums over every connection) instead of one small page.
    pub connz_all_pages: bool,
    /// Ask nodes that support it for the streams they lead only.
    pub jsz_stream_leader_only: bool,
    pub jsz_config_interval: Duration,
    /// How long a `/raftz` read is reused.
    pub raftz_interval: Duration,
    pub consumers: ConsumerPolicy,
    pub nats_tls: NatsTls,
    pub web: WebSettings,
    pub log: String,
    pub log_format: LogFormat,
    pub shutdown_grace: Duration,
    /// Log shipping; `None` unless `--loki-url` is set.
    pub logs: Option<LogSettings>,
}

impl RawConfig {
    pub fn validate(self) -> Result<Settings, ConfigError> {
        self.validate_with_env(&|k| std::env::var(k).ok())
    }

    /// `env` supplies secrets that are only ever read from the environment, so tests can
    /// inject them without touching the process environment.
    pub fn validate_with_env(
        self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let logs = LogSettings::from_raw(&self, env)?;
        let roles = roles(self.roles.as_deref(), logs.is_some())?;
        let nodes = if roles.exporter {
            nats::nodes(self.nats_urls.as_deref())?
        } else {
            nats::no_nodes(self.nats_urls.as_deref())?
        };
        // Validated either way; it only runs with the exporter.
        let discovery = nats::discovery(&self)?.filter(|_| roles.exporter);
        let (poll_interval, poll_timeout) = nats::poll_timing(&self)?;
        let connz_page_size = nats::connz_page_size(&self)?;
        let nats_tls = NatsTls::from_raw(&self)?;
        let consumers = ConsumerPolicy::from_raw(&self);
        let listen = web::listen(self.listen.as_deref())?;
        let web = WebSettings::from_raw(&self)?;
        let log_format = log_format(self.log_format.as_deref())?;
        Ok(Settings {
            roles,
            nodes,
            discovery,
            listen,
            poll_interval,
            poll_timeout,
            max_response_bytes: bounded(
                "max-response-bytes",
                self.max_response_bytes,
                raw::DEFAULT_MAX_RESPONSE_BYTES,
                64 * KIB..=GIB,
            )?,
            connz_page_size,
            connz_max_connections: bounded(
                "connz-max-connections",
                self.connz_max_connections,
                raw::DEFAULT_CONNZ_MAX_CONNECTIONS,
                1..=u64::MAX,
            )?,
            connection_metrics_limit: self.connection_metrics_limit.unwrap_or(0),
            connz_all_pages: self.connz_all_pages.unwrap_or(false),
            jsz_stream_leader_only: self.jsz_stream_leader_only.unwrap_or(true),
            jsz_config_interval: duration(
                "jsz-config-interval",
                self.jsz_config_interval.as_deref(),
                raw::DEFAULT_JSZ_CONFIG_INTERVAL,
                Duration::from_secs(1)..=Duration::from_secs(24 * 3600),
            )?,
            raftz_interval: duration(
                "raftz-interval",
                self.raftz_interval.as_deref(),
                raw::DEFAULT_RAFTZ_INTERVAL,
                Duration::from_secs(1)..=Duration::from_secs(24 * 3600),
            )?,
            consumers,
            nats_tls,
            web,
            log: log_filter(self.log)?,
            log_format,
            shutdown_grace: duration(
                "shutdown-grace",
                self.shutdown_grace.as_deref(),
                raw::DEFAULT_SHUTDOWN_GRACE,
                MILLIS_100..=HOUR,
            )?,
            logs,
        })
    }
}

/// `--roles`: unset, natsmon exports and also ships when `--loki-url` is given (the
/// single-host layout). Given, it is exactly what runs, and each role needs its own
/// options: a shipper needs `--loki-url`, and a `--loki-url` nobody ships to is a mistake.
fn roles(v: Option<&[String]>, loki_url: bool) -> Result<Roles, ConfigError> {
    let Some(list) = v else {
        return Ok(Roles {
            exporter: true,
            shipper: loki_url,
        });
    };
    let mut roles = Roles {
        exporter: false,
        shipper: false,
    };
    for r in list.iter().map(|r| unquote(r)) {
        match r.to_ascii_lowercase().as_str() {
            "" => {}
            "exporter" => roles.exporter = true,
            "shipper" => roles.shipper = true,
            other => {
                return Err(ConfigError::Invalid {
                    option: "roles",
                    why: format!("{other}: expected exporter, shipper or both"),
                });
            }
        }
    }
    if !roles.exporter && !roles.shipper {
        return Err(ConfigError::Invalid {
            option: "roles",
            why: "no role given: natsmon would do nothing; give exporter, shipper or exporter,shipper"
                .into(),
        });
    }
    if roles.shipper && !loki_url {
        return Err(ConfigError::Invalid {
            option: "roles",
            why: "the shipper role needs --loki-url (NATSMON_LOKI_URL)".into(),
        });
    }
    if !roles.shipper && loki_url {
        return Err(ConfigError::Invalid {
            option: "loki-url",
            why: "is set, but --roles has no shipper; add shipper to --roles or drop --loki-url"
                .into(),
        });
    }
    Ok(roles)
}

/// A tracing-subscriber `EnvFilter`; a typo is an error, not a silent `info`.
fn log_filter(v: Option<String>) -> Result<String, ConfigError> {
    let spec = v.unwrap_or_else(|| "info".into());
    tracing_subscriber::EnvFilter::try_new(&spec).map_err(|e| ConfigError::Invalid {
        option: "log",
        why: format!("{spec}: {e}"),
    })?;
    Ok(spec)
}

fn log_format(v: Option<&str>) -> Result<LogFormat, ConfigError> {
    match v.unwrap_or("text") {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(ConfigError::Invalid {
            option: "log-format",
            why: format!("{other}: expected text or json"),
        }),
    }
}

/// A `humantime` duration such as `500ms` or `1m`, or `default` when unset, within
/// `range`: zero or absurd values (a 1 ns poll interval, a 1000-year timer) are mistakes.
pub(crate) fn duration(
    option: &'static str,
    v: Option<&str>,
    default: Duration,
    range: RangeInclusive<Duration>,
) -> Result<Duration, ConfigError> {
    let Some(s) = v else { return Ok(default) };
    let d = humantime::parse_duration(s.trim()).map_err(|e| ConfigError::Invalid {
        option,
        why: format!("{s}: {e}"),
    })?;
    if !range.contains(&d) {
        return Err(ConfigError::Invalid {
            option,
            why: format!(
                "{s}: must be between {} and {}",
                humantime::format_duration(*range.start()),
                humantime::format_duration(*range.end())
            ),
        });
    }
    Ok(d)
}

/// A count or size, or `default` when unset, within `range` (never zero).
pub(crate) fn bounded<T>(
    option: &'static str,
    v: Option<T>,
    default: T,
    range: RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    let n = v.unwrap_or(default);
    if !range.contains(&n) {
        return Err(ConfigError::Invalid {
            option,
            why: format!("{n}: must be between {} and {}", range.start(), range.end()),
        });
    }
    Ok(n)
}

/// A list item as meant: quotes survive in env files (`NATSMON_NATS_URL=''`), and are
/// not part of a value.
pub(crate) fn unquote(s: &str) -> &str {
    s.trim().trim_matches(['\'', '"']).trim()
}

/// Percent-decodes URL userinfo: `p%40ss` is the password `p@ss`.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
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

/// The user and password a parsed URL carries, decoded; `None` without a user.
pub(crate) fn userinfo(url: &reqwest::Url) -> Option<(String, String)> {
    (!url.username().is_empty()).then(|| {
        (
            percent_decode(url.username()),
            url.password().map(percent_decode).unwrap_or_default(),
        )
    })
}

/// Reads a file named by an option, naming the option when it cannot be read.
pub(crate) fn read_file(
    p: &Option<PathBuf>,
    option: &'static str,
) -> Result<Option<Vec<u8>>, ConfigError> {
    p.as_ref()
        .map(|p| {
            std::fs::read(p).map_err(|e| ConfigError::Invalid {
                option,
                why: format!("{}: {e}", p.display()),
            })
        })
        .transpose()
}
#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use raw::DEFAULT_POLL_INTERVAL;
    use std::path::Path;

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
        assert_eq!(s.discovery, d.discovery);
        let raw = RawConfig::from_toml_file(&path).unwrap();
        assert_eq!(
            raw.discover_grace.as_deref().map(humantime::parse_duration),
            Some(Ok(raw::DEFAULT_DISCOVER_GRACE))
        );
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
