//! Owns the validated log shipping settings, derived from `RawConfig`: the Loki URL and
//! credentials (secrets only from the environment or files), the tenant, batching and
//! buffer bounds, the Docker address, the state directory and the container selection.

use std::path::PathBuf;
use std::time::Duration;

use super::raw::RawConfig;
use super::{ConfigError, GIB, HOUR, KIB, MILLIS_100, bounded, duration, read_file, userinfo};
use crate::redact::redact_url;

pub const DEFAULT_BATCH_MAX_BYTES: usize = 1024 * 1024;
pub const DEFAULT_BATCH_MAX_ENTRIES: usize = 10_000;
pub const DEFAULT_BATCH_MAX_WAIT: Duration = Duration::from_secs(1);
pub const DEFAULT_BUFFER_MAX_BYTES: usize = 8 * 1024 * 1024;
pub const DEFAULT_MAX_LINE_BYTES: usize = 256 * 1024;
pub const DEFAULT_RETRY_MAX_BACKOFF: Duration = Duration::from_secs(30);
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/natsmon";
pub const DEFAULT_JOB: &str = "docker";
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// Several scrape intervals of a usual Prometheus, so the final values are scraped.
pub const DEFAULT_CONTAINER_SERIES_GRACE: Duration = Duration::from_secs(300);

/// How pushes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LokiFormat {
    /// Snappy block-compressed protobuf `PushRequest`, Loki's native form.
    Protobuf,
    Json,
}

#[derive(Clone)]
pub enum LokiAuth {
    None,
    Basic { user: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for LokiAuth {
    // Never print secrets, even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LokiAuth::None => f.write_str("None"),
            LokiAuth::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            LokiAuth::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// A Docker label selector: a key, or a key with a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    pub key: String,
    pub value: Option<String>,
}

impl LabelSelector {
    pub fn parse(s: &str) -> LabelSelector {
        match s.split_once('=') {
            Some((k, v)) => LabelSelector {
                key: k.trim().into(),
                value: Some(v.trim().into()),
            },
            None => LabelSelector {
                key: s.trim().into(),
                value: None,
            },
        }
    }

    pub fn matches(&self, labels: &std::collections::HashMap<String, String>) -> bool {
        match (labels.get(&self.key), &self.value) {
            (Some(_), None) => true,
            (Some(v), Some(want)) => v == want,
            (None, _) => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    /// The push endpoint, `<loki>/loki/api/v1/push`.
    pub push_url: String,
    /// The same without credentials or query, for logs and the status page.
    pub display_url: String,
    pub tenant: Option<String>,
    pub auth: LokiAuth,
    pub ca_pem: Option<Vec<u8>>,
    pub format: LokiFormat,
    /// Send `cid`, `remote_addr` and `account` of nats-server lines as structured metadata.
    pub structured_metadata: bool,
    pub batch_max_bytes: usize,
    pub batch_max_entries: usize,
    pub batch_max_wait: Duration,
    pub buffer_max_bytes: usize,
    pub max_line_bytes: usize,
    pub retry_max_backoff: Duration,
    pub docker_host: String,
    pub state_dir: PathBuf,
    pub include_containers: Vec<String>,
    pub exclude_containers: Vec<String>,
    pub include_labels: Vec<LabelSelector>,
    pub exclude_labels: Vec<LabelSelector>,
    pub default_job: String,
    pub checkpoint_interval: Duration,
    /// The `host` label; `None`: the Docker daemon's name.
    pub host_label: Option<String>,
    /// How long a removed container's per-container series outlive its last acknowledged line.
    pub container_series_grace: Duration,
}

/// Where and how to push.
struct Endpoint {
    push_url: String,
    /// Userinfo given in the URL itself.
    url_user: Option<(String, String)>,
}

/// Batching and buffer bounds, each above zero.
struct Bounds {
    batch_max_bytes: usize,
    batch_max_entries: usize,
    buffer_max_bytes: usize,
    max_line_bytes: usize,
}

/// Which containers are shipped.
struct Selection {
    include_containers: Vec<String>,
    exclude_containers: Vec<String>,
    include_labels: Vec<LabelSelector>,
    exclude_labels: Vec<LabelSelector>,
}

impl LogSettings {
    /// `None` when `--loki-url` is unset: shipping is off.
    pub fn from_raw(
        raw: &RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<LogSettings>, ConfigError> {
        let Some(url) = raw
            .loki_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        else {
            return Ok(None);
        };
        let Endpoint { push_url, url_user } = endpoint(url)?;
        let auth = auth(raw, url_user, env)?;
        let tenant = tenant(raw.loki_tenant.as_deref())?;
        let bounds = bounds(raw)?;
        let selection = selection(raw);
        let default_job = raw
            .default_job
            .clone()
            .unwrap_or_else(|| DEFAULT_JOB.into());
        if default_job.is_empty() {
            return Err(ConfigError::Invalid {
                option: "default-job",
                why: "must not be empty".into(),
            });
        }
        let docker_host = raw
            .docker_host
            .clone()
            .or_else(|| env("DOCKER_HOST"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.into());
        Ok(Some(LogSettings {
            display_url: redact_url(&push_url),
            push_url,
            tenant,
            auth,
            ca_pem: read_file(&raw.loki_ca_file, "loki-ca-file")?,
            format: format(raw.loki_format.as_deref())?,
            structured_metadata: raw.loki_structured_metadata.unwrap_or(true),
            batch_max_bytes: bounds.batch_max_bytes,
            batch_max_entries: bounds.batch_max_entries,
            batch_max_wait: duration(
                "batch-max-wait",
                raw.batch_max_wait.as_deref(),
                DEFAULT_BATCH_MAX_WAIT,
                Duration::from_millis(1)..=Duration::from_secs(60),
            )?,
            buffer_max_bytes: bounds.buffer_max_bytes,
            max_line_bytes: bounds.max_line_bytes,
            retry_max_backoff: duration(
                "retry-max-backoff",
                raw.retry_max_backoff.as_deref(),
                DEFAULT_RETRY_MAX_BACKOFF,
                MILLIS_100..=HOUR,
            )?,
            docker_host,
            state_dir: raw
                .state_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            include_containers: selection.include_containers,
            exclude_containers: selection.exclude_containers,
            include_labels: selection.include_labels,
            exclude_labels: selection.exclude_labels,
            default_job,
            checkpoint_interval: duration(
                "checkpoint-interval",
                raw.checkpoint_interval.as_deref(),
                DEFAULT_CHECKPOINT_INTERVAL,
                MILLIS_100..=HOUR,
            )?,
            host_label: host_label(raw.host_label.as_deref())?,
            container_series_grace: duration(
                "container-series-grace",
                raw.container_series_grace.as_deref(),
                DEFAULT_CONTAINER_SERIES_GRACE,
                Duration::from_secs(1)..=HOUR,
            )?,
        }))
    }
}

/// `--host-label`: given, it must say something (an empty one would be a missing label).
fn host_label(v: Option<&str>) -> Result<Option<String>, ConfigError> {
    match v.map(str::trim) {
        None => Ok(None),
        Some("") => Err(ConfigError::Invalid {
            option: "host-label",
            why: "must not be empty".into(),
        }),
        Some(h) => Ok(Some(h.to_string())),
    }
}

/// The push URL, `<loki>/loki/api/v1/push`, without the userinfo it may carry.
fn endpoint(url: &str) -> Result<Endpoint, ConfigError> {
    let mut parsed = reqwest::Url::parse(url).map_err(|e| ConfigError::Invalid {
        option: "loki-url",
        why: format!("{}: {e}", redact_url(url)),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ConfigError::Invalid {
            option: "loki-url",
            why: "scheme must be http or https".into(),
        });
    }
    let url_user = userinfo(&parsed);
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    let base = parsed.as_str().trim_end_matches('/').to_string();
    let push_url = if base.ends_with("/loki/api/v1/push") {
        base
    } else {
        format!("{base}/loki/api/v1/push")
    };
    Ok(Endpoint { push_url, url_user })
}

/// Basic auth or a bearer token; secrets only from files or the environment.
fn auth(
    raw: &RawConfig,
    url_user: Option<(String, String)>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LokiAuth, ConfigError> {
    let read_secret = |file: &Option<PathBuf>,
                       var: &str,
                       what: &'static str|
     -> Result<Option<String>, ConfigError> {
        if let Some(f) = file {
            let s = std::fs::read_to_string(f).map_err(|e| ConfigError::Invalid {
                option: what,
                why: format!("{}: {e}", f.display()),
            })?;
            return Ok(Some(s.trim_end_matches(['\n', '\r']).to_string()));
        }
        Ok(env(var).filter(|s| !s.is_empty()))
    };
    let password = read_secret(
        &raw.loki_password_file,
        "NATSMON_LOKI_PASSWORD",
        "loki-password-file",
    )?;
    let bearer = read_secret(
        &raw.loki_bearer_token_file,
        "NATSMON_LOKI_BEARER_TOKEN",
        "loki-bearer-token-file",
    )?;
    Ok(
        match (raw.loki_username.clone(), password, bearer, url_user) {
            (_, _, Some(_), Some(_)) | (Some(_), _, Some(_), _) => {
                return Err(ConfigError::Invalid {
                    option: "loki-bearer-token-file",
                    why: "choose basic auth or a bearer token, not both".into(),
                });
            }
            (Some(user), Some(password), None, _) => LokiAuth::Basic { user, password },
            (Some(_), None, None, _) => {
                return Err(ConfigError::Invalid {
                    option: "loki-username",
                    why: "needs NATSMON_LOKI_PASSWORD or --loki-password-file".into(),
                });
            }
            (None, Some(_), None, _) => {
                let from = if raw.loki_password_file.is_some() {
                    "--loki-password-file"
                } else {
                    "NATSMON_LOKI_PASSWORD"
                };
                return Err(ConfigError::Invalid {
                    option: "loki-username",
                    why: format!(
                        "a Loki password is given by {from} but no user; set --loki-username"
                    ),
                });
            }
            (None, None, Some(token), None) => LokiAuth::Bearer(token),
            (None, None, None, Some((user, password))) => LokiAuth::Basic { user, password },
            _ => LokiAuth::None,
        },
    )
}

/// Loki's tenant ID rules: up to 150 of `[A-Za-z0-9!-_.*'()]`, not `.` or `..`.
fn tenant(t: Option<&str>) -> Result<Option<String>, ConfigError> {
    let Some(t) = t else { return Ok(None) };
    let ok = !t.is_empty()
        && t.len() <= 150
        && t != "."
        && t != ".."
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!-_.*'()".contains(c));
    if !ok {
        return Err(ConfigError::Invalid {
            option: "loki-tenant",
            why: "Loki tenant IDs are up to 150 of [A-Za-z0-9!-_.*'()]".into(),
        });
    }
    Ok(Some(t.to_string()))
}

fn format(v: Option<&str>) -> Result<LokiFormat, ConfigError> {
    match v.unwrap_or("protobuf") {
        "protobuf" | "proto" => Ok(LokiFormat::Protobuf),
        "json" => Ok(LokiFormat::Json),
        other => Err(ConfigError::Invalid {
            option: "loki-format",
            why: format!("{other}: expected protobuf or json"),
        }),
    }
}

/// Batching and buffer sizes. The buffer is counted in semaphore permits and a line
/// takes at most `u32::MAX` of them, so sizes stay well below that.
fn bounds(raw: &RawConfig) -> Result<Bounds, ConfigError> {
    let max_line_bytes = bounded(
        "max-line-bytes",
        raw.max_line_bytes,
        DEFAULT_MAX_LINE_BYTES,
        256..=64 * 1024 * KIB,
    )?;
    let buffer_max_bytes = bounded(
        "buffer-max-bytes",
        raw.buffer_max_bytes,
        DEFAULT_BUFFER_MAX_BYTES,
        KIB..=GIB,
    )?;
    if buffer_max_bytes < max_line_bytes {
        return Err(ConfigError::Invalid {
            option: "buffer-max-bytes",
            why: "must hold at least one line of max-line-bytes".into(),
        });
    }
    Ok(Bounds {
        batch_max_bytes: bounded(
            "batch-max-bytes",
            raw.batch_max_bytes,
            DEFAULT_BATCH_MAX_BYTES,
            KIB..=GIB,
        )?,
        batch_max_entries: bounded(
            "batch-max-entries",
            raw.batch_max_entries,
            DEFAULT_BATCH_MAX_ENTRIES,
            1..=1_000_000,
        )?,
        buffer_max_bytes,
        max_line_bytes,
    })
}

fn selection(raw: &RawConfig) -> Selection {
    let list = |v: &Option<Vec<String>>| {
        v.iter()
            .flatten()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
    };
    let selectors = |v: &Option<Vec<String>>| {
        list(v)
            .iter()
            .map(|s| LabelSelector::parse(s))
            .collect::<Vec<_>>()
    };
    Selection {
        include_containers: list(&raw.include_containers),
        exclude_containers: list(&raw.exclude_containers),
        include_labels: selectors(&raw.include_labels),
        exclude_labels: selectors(&raw.exclude_labels),
    }
}

/// `*` matches any run of characters; everything else is literal.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let mut rest = s;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(p) => rest = &rest[p + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(args: &[&str]) -> RawConfig {
        use clap::Parser;
        let mut a = vec!["natsmon"];
        a.extend_from_slice(args);
        RawConfig::try_parse_from(a).unwrap()
    }

    #[test]
    fn off_without_a_url_and_secrets_only_from_env_or_file() {
        assert!(
            LogSettings::from_raw(&raw(&[]), &|_| None)
                .unwrap()
                .is_none()
        );
        let env = |k: &str| (k == "NATSMON_LOKI_PASSWORD").then(|| "pw".to_string());
        let s = LogSettings::from_raw(
            &raw(&["--loki-url", "http://loki:3100", "--loki-username", "u"]),
            &env,
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.push_url, "http://loki:3100/loki/api/v1/push");
        assert!(
            matches!(s.auth, LokiAuth::Basic { ref user, ref password } if user == "u" && password == "pw")
        );
        assert!(!format!("{:?}", s.auth).contains("pw"));
        assert!(
            LogSettings::from_raw(
                &raw(&["--loki-url", "http://loki:3100", "--loki-username", "u"]),
                &|_| None
            )
            .is_err()
        );
        let s = LogSettings::from_raw(&raw(&["--loki-url", "http://a:b@loki:3100/"]), &|_| None)
            .unwrap()
            .unwrap();
        assert_eq!(s.display_url, "http://loki:3100/loki/api/v1/push");
        assert!(
            LogSettings::from_raw(
                &raw(&["--loki-url", "http://l", "--loki-tenant", "bad tenant"]),
                &|_| None
            )
            .is_err()
        );
    }

    #[test]
    fn host_label_and_series_grace() {
        let s = LogSettings::from_raw(&raw(&["--loki-url", "http://l"]), &|_| None)
            .unwrap()
            .unwrap();
        assert_eq!(s.host_label, None, "the Docker daemon's name");
        assert_eq!(s.container_series_grace, DEFAULT_CONTAINER_SERIES_GRACE);
        let s = LogSettings::from_raw(
            &raw(&[
                "--loki-url",
                "http://l",
                "--host-label",
                "edge-7",
                "--container-series-grace",
                "10s",
            ]),
            &|_| None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.host_label.as_deref(), Some("edge-7"));
        assert_eq!(s.container_series_grace, Duration::from_secs(10));
        for bad in [
            &["--host-label", " "][..],
            &["--container-series-grace", "0s"],
            &["--container-series-grace", "2h"],
        ] {
            let mut a = vec!["--loki-url", "http://l"];
            a.extend_from_slice(bad);
            assert!(
                LogSettings::from_raw(&raw(&a), &|_| None).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn globs_and_label_selectors() {
        assert!(glob_match("nats-*", "nats-1"));
        assert!(glob_match("*nats*", "my-nats-server"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("nats-*", "xnats-1"));
        assert!(glob_match("exact", "exact"));
        let mut labels = std::collections::HashMap::new();
        labels.insert("tier".to_string(), "db".to_string());
        assert!(LabelSelector::parse("tier").matches(&labels));
        assert!(LabelSelector::parse("tier=db").matches(&labels));
        assert!(!LabelSelector::parse("tier=web").matches(&labels));
    }
}
