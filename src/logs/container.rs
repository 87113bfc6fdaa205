//! Owns what natsmon knows about one container and whether it is shipped: its metadata
//! (from Docker's inspect answer) and the `job` and `service` it is labelled with, the
//! include/exclude selection, natsmon's own container id, and the Docker connection.

use std::collections::HashMap;
use std::sync::Arc;

use bollard::Docker;
use bollard::models::ContainerInspectResponse;

use super::follow::DockerAddr;
use crate::config::LogSettings;
use crate::config::logs::glob_match;
use crate::redact::error_chain;
use crate::time::rfc3339_to_unix_nanos;

/// `job` of NATS server containers.
pub const NATS_JOB: &str = "nats";
/// A container's own Docker label that sets its `job`.
pub const JOB_LABEL: &str = "natsmon.job";

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot connect to Docker at {host}: {error}")]
    Connect { host: String, error: String },
    #[error("Docker API call failed: {0}")]
    Api(String),
}

impl DockerError {
    pub fn reason(&self) -> &'static str {
        match self {
            DockerError::Connect { .. } => "connect",
            DockerError::Api(_) => "api",
        }
    }

    /// Sorts a failed call to `host`: no daemon to talk to (connection refused, no such
    /// socket, no permission) is `Connect`, the same incident as a failed connect, however
    /// the transport reports it; an answer or a broken stream is `Api`. Both carry the
    /// whole cause chain, because bollard's and hyper's own messages do not say why
    /// (`client error (Connect)`).
    pub fn of(host: &str, e: &bollard::errors::Error) -> DockerError {
        use bollard::errors::Error as E;
        use std::io::ErrorKind as K;
        let connect = |error| DockerError::Connect {
            host: crate::redact::redact_url(host),
            error,
        };
        match e {
            // bollard's message repeats its source's; the source's chain says it once.
            E::HyperLegacyError { err } if err.is_connect() => connect(error_chain(err)),
            E::HyperLegacyError { err } => DockerError::Api(error_chain(err)),
            E::IOError { err }
                if matches!(
                    err.kind(),
                    K::ConnectionRefused | K::NotFound | K::PermissionDenied
                ) =>
            {
                connect(error_chain(err))
            }
            E::SocketNotFoundError(_) => connect(error_chain(e)),
            e => DockerError::Api(error_chain(e)),
        }
    }
}

/// What the labels and selection need to know about a container.
#[derive(Debug, Clone)]
pub struct ContainerMeta {
    pub id: Arc<str>,
    /// Without Docker's leading `/`.
    pub name: Arc<str>,
    pub image: String,
    pub command: String,
    pub labels: HashMap<String, String>,
    /// For stopped containers: when they last started and stopped, Unix nanoseconds.
    pub started_at_ns: Option<i64>,
    pub finished_at_ns: Option<i64>,
}

impl ContainerMeta {
    /// NATS servers: the `nats` image (any registry or tag) or a `nats-server` command.
    pub fn is_nats_server(&self) -> bool {
        let repo = self.image.split('@').next().unwrap_or("");
        let repo = repo.rsplit('/').next().unwrap_or(repo);
        let repo = repo.split(':').next().unwrap_or(repo);
        repo == "nats" || self.command.contains("nats-server")
    }

    pub fn job(&self, default_job: &str) -> String {
        match self.labels.get(JOB_LABEL).filter(|j| !j.is_empty()) {
            Some(j) => j.clone(),
            None if self.is_nats_server() => NATS_JOB.into(),
            None => default_job.into(),
        }
    }

    /// The compose service, else the container name.
    pub fn service(&self) -> &str {
        self.labels
            .get("com.docker.compose.service")
            .map(String::as_str)
            .unwrap_or(&self.name)
    }
}

impl ContainerMeta {
    /// The metadata in Docker's inspect answer for container `id`.
    pub fn from_inspect(id: &str, c: ContainerInspectResponse) -> ContainerMeta {
        let cfg = c.config.unwrap_or_default();
        let state = c.state;
        let mut command = c.path.unwrap_or_default();
        for a in c.args.unwrap_or_default() {
            command.push(' ');
            command.push_str(&a);
        }
        let at = |t: Option<&str>| t.and_then(rfc3339_to_unix_nanos);
        ContainerMeta {
            id: c.id.unwrap_or_else(|| id.to_string()).into(),
            name: c.name.unwrap_or_default().trim_start_matches('/').into(),
            image: cfg.image.unwrap_or_default(),
            command,
            labels: cfg.labels.unwrap_or_default(),
            started_at_ns: at(state.as_ref().and_then(|s| s.started_at.as_deref())),
            finished_at_ns: at(state.as_ref().and_then(|s| s.finished_at.as_deref())),
        }
    }
}

/// Whether a container's logs are shipped: never natsmon's own, then the include and
/// exclude rules by name and by label.
pub fn selected(s: &LogSettings, c: &ContainerMeta, own_id: Option<&str>) -> bool {
    if own_id.is_some_and(|own| c.id.starts_with(own) || own.starts_with(&*c.id)) {
        return false;
    }
    if !s.include_containers.is_empty()
        && !s.include_containers.iter().any(|p| glob_match(p, &c.name))
    {
        return false;
    }
    if s.exclude_containers.iter().any(|p| glob_match(p, &c.name)) {
        return false;
    }
    if !s.include_labels.is_empty() && !s.include_labels.iter().any(|l| l.matches(&c.labels)) {
        return false;
    }
    !s.exclude_labels.iter().any(|l| l.matches(&c.labels))
}

/// natsmon's own container id, when it runs in one: Docker bind-mounts the container's
/// hostname, hosts and resolv.conf files from `/var/lib/docker/containers/<id>/`.
pub fn own_container_id() -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|l| {
        let i = l.find("/containers/")?;
        let id: String = l[i + 12..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        (id.len() == 64).then_some(id)
    })
}

/// A client for `host`; no request is made yet, so a TCP daemon that is away shows only
/// at the first call. A unix socket is looked at first, so that a missing one is
/// reported with the OS's reason rather than bollard's bare "Socket not found".
pub fn connect(host: &str) -> Result<Docker, DockerError> {
    let r = match DockerAddr::parse(host) {
        DockerAddr::Unix(path) => {
            if let Err(e) = std::fs::metadata(&path) {
                return Err(DockerError::Connect {
                    host: crate::redact::redact_url(host),
                    error: error_chain(&e),
                });
            }
            Docker::connect_with_unix(&path.to_string_lossy(), 120, bollard::API_DEFAULT_VERSION)
        }
        // bollard is given the address as written (its own reading of it), only with
        // the scheme it knows.
        DockerAddr::Tcp(_) => Docker::connect_with_http(
            &host.replacen("tcp://", "http://", 1),
            120,
            bollard::API_DEFAULT_VERSION,
        ),
    };
    r.map_err(|e| DockerError::of(host, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, image: &str, command: &str, labels: &[(&str, &str)]) -> ContainerMeta {
        ContainerMeta {
            id: format!("{name}0000").into(),
            name: name.into(),
            image: image.into(),
            command: command.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            started_at_ns: None,
            finished_at_ns: None,
        }
    }

    #[test]
    fn jobs() {
        assert_eq!(
            meta("n1", "nats:2.10-alpine", "", &[]).job("docker"),
            "nats"
        );
        assert_eq!(
            meta("n1", "docker.io/library/nats@sha256:ab", "", &[]).job("docker"),
            "nats"
        );
        assert_eq!(
            meta("n1", "natsmon-test/nats:2.9.10", "", &[]).job("docker"),
            "nats"
        );
        assert_eq!(
            meta("x", "busybox", "/usr/local/bin/nats-server -js", &[]).job("docker"),
            "nats"
        );
        assert_eq!(
            meta("natsmon", "natsmon:latest", "natsmon", &[]).job("docker"),
            "docker"
        );
        assert_eq!(
            meta("app", "busybox", "sh", &[(JOB_LABEL, "payments")]).job("docker"),
            "payments"
        );
        assert_eq!(
            meta(
                "app",
                "busybox",
                "sh",
                &[("com.docker.compose.service", "api")]
            )
            .service(),
            "api"
        );
        assert_eq!(meta("app", "busybox", "sh", &[]).service(), "app");
    }

    #[test]
    fn docker_unreachable_is_a_connect_error_with_its_cause() {
        let missing = connect("unix:///nonexistent/natsmon-test.sock").unwrap_err();
        assert_eq!(missing.reason(), "connect");
        assert!(
            missing.to_string().contains("No such file or directory"),
            "{missing}"
        );
        let refused = bollard::errors::Error::IOError {
            err: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
        };
        let e = DockerError::of("tcp://user:pw@127.0.0.1:1", &refused);
        assert_eq!(e.reason(), "connect");
        assert!(!e.to_string().contains("pw"), "{e}");
        let answer = bollard::errors::Error::DockerResponseServerError {
            status_code: 500,
            message: "boom".into(),
        };
        let e = DockerError::of("unix:///var/run/docker.sock", &answer);
        assert_eq!(e.reason(), "api");
        assert!(e.to_string().contains("boom"), "{e}");
    }

    #[test]
    fn meta_from_inspect() {
        let c: ContainerInspectResponse = serde_json::from_value(serde_json::json!({
            "Id": "abc123",
            "Name": "/n1",
            "Path": "nats-server",
            "Args": ["-js", "-m", "8222"],
            "Config": {"Image": "nats:2.10", "Labels": {"com.docker.compose.service": "nats"}},
            "State": {"StartedAt": "2024-01-02T03:04:05.000000006Z", "FinishedAt": "0001-01-01T00:00:00Z"}
        }))
        .unwrap();
        let m = ContainerMeta::from_inspect("abc", c);
        assert_eq!(&*m.id, "abc123");
        assert_eq!(&*m.name, "n1");
        assert_eq!(m.command, "nats-server -js -m 8222");
        assert_eq!(m.job("docker"), NATS_JOB);
        assert_eq!(m.service(), "nats");
        assert_eq!(m.started_at_ns, Some(1_704_164_645_000_000_006));
        assert_eq!(m.finished_at_ns, None, "Docker's zero time means never");
    }
}
