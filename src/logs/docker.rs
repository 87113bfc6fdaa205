//! Owns Docker discovery and tailing. The supervisor lists running containers, follows
//! `/events` (start, die, destroy, rename) and runs one tailer task per container; when
//! the event stream or the daemon drops it reconnects with backoff and lists again. A
//! tailer follows one container's logs from its resume position and hands complete
//! lines to the batcher; a restarted container resumes where its last tailer stopped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::{
    EventsOptions, InspectContainerOptions, ListContainersOptions, LogsOptions,
};
use futures::StreamExt;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::assemble::{Assembler, StreamKind};
use super::checkpoint::{Checkpoints, Position};
use crate::config::LogSettings;
use crate::config::logs::glob_match;
use super::labels::{Level, parse_level};
use super::metrics::{LogMetrics, ReasonLabels};
use crate::backoff::{Backoff, sleep_or_cancel};
use super::wire::render_labels;
use super::{InFlight, LogEntry};
use crate::time::{rfc3339_to_unix_nanos, unix_now_ns, unix_now_secs};

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

pub fn connect(host: &str) -> Result<Docker, DockerError> {
    let r = if let Some(path) = host.strip_prefix("unix://") {
        Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(
            &host.replacen("tcp://", "http://", 1),
            120,
            bollard::API_DEFAULT_VERSION,
        )
    } else {
        Docker::connect_with_unix(host, 120, bollard::API_DEFAULT_VERSION)
    };
    r.map_err(|e| DockerError::Connect {
        host: crate::redact::redact_url(host),
        error: e.to_string(),
    })
}

pub struct Supervisor {
    pub settings: LogSettings,
    pub metrics: Arc<LogMetrics>,
    pub checkpoints: Arc<Checkpoints>,
    pub in_flight: Arc<InFlight>,
    pub buffer: Arc<Semaphore>,
    pub tx: mpsc::UnboundedSender<LogEntry>,
    pub own_id: Option<String>,
}

struct Running {
    token: CancellationToken,
    meta: Arc<ContainerMeta>,
}

impl Supervisor {
    pub async fn run(self, token: CancellationToken) {
        let tracker = TaskTracker::new();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Arc<str>, Option<Position>)>();
        let mut running: HashMap<Arc<str>, Running> = HashMap::new();
        // Where each container's last tailer stopped reading, so that a restart in this
        // process resumes after lines already in the pipeline, not after the checkpoint.
        let mut read_pos: HashMap<Arc<str>, Position> = HashMap::new();
        let mut backoff = Backoff::new(Duration::from_secs(10));
        // The last moment natsmon was watching Docker: the previous run's, then the moment
        // each event stream broke. On a first start there is no history to catch up on.
        let mut seen_until_ns = self
            .checkpoints
            .previous_run_ns()
            .unwrap_or_else(unix_now_ns);
        'outer: while !token.is_cancelled() {
            let docker = match connect(&self.settings.docker_host) {
                Ok(d) => d,
                Err(e) => {
                    self.docker_error(&e, "Connecting to Docker failed.");
                    if sleep_or_cancel(backoff.next_delay(), &token).await {
                        break;
                    }
                    continue;
                }
            };
            let since = unix_now_secs();
            let listed = match self.list(&docker, seen_until_ns).await {
                Ok(l) => l,
                Err(e) => {
                    self.docker_error(&e, "Listing containers failed.");
                    if sleep_or_cancel(backoff.next_delay(), &token).await {
                        break;
                    }
                    continue;
                }
            };
            backoff.reset();
            let existing: std::collections::HashSet<String> = listed.1.iter().cloned().collect();
            self.checkpoints.retain(|id| existing.contains(id));
            for meta in listed.0 {
                self.ensure_tailer(
                    &docker,
                    meta,
                    &mut running,
                    &read_pos,
                    &tracker,
                    &done_tx,
                    &token,
                );
            }
            let mut filters = HashMap::new();
            filters.insert("type".to_string(), vec!["container".to_string()]);
            filters.insert(
                "event".to_string(),
                ["start", "die", "destroy", "rename"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            );
            let mut events = docker.events(Some(EventsOptions {
                since: Some(since.to_string()),
                until: None,
                filters: Some(filters),
            }));
            loop {
                tokio::select! {
                    _ = token.cancelled() => break 'outer,
                    Some((id, pos)) = done_rx.recv() => {
                        running.remove(&id);
                        if let Some(p) = pos {
                            read_pos.insert(id, p);
                        }
                        self.metrics.containers.set(running.len() as i64);
                    }
                    ev = events.next() => match ev {
                        Some(Ok(ev)) => {
                            let action = ev.action.unwrap_or_default();
                            let Some(id) = ev.actor.and_then(|a| a.id) else { continue };
                            let id: Arc<str> = id.into();
                            debug!(container = %id, action = %action, "Docker event.");
                            match action.as_str() {
                                "start" => {
                                    if let Some(meta) = self.inspect(&docker, &id).await {
                                        self.ensure_tailer(&docker, meta, &mut running, &read_pos, &tracker, &done_tx, &token);
                                    }
                                }
                                // A renamed container gets a new tailer with new labels,
                                // resuming exactly where the old one stopped.
                                a if a.starts_with("rename") => {
                                    if let Some(r) = running.remove(&id) {
                                        r.token.cancel();
                                        info!(container = %r.meta.name, "Container renamed; restarting its tailer.");
                                        // Wait for the old tailer's read position before resuming.
                                        while let Some((done_id, pos)) = done_rx.recv().await {
                                            let same = done_id == id;
                                            if let Some(p) = pos { read_pos.insert(done_id.clone(), p); }
                                            if !same { running.remove(&done_id); } else { break; }
                                        }
                                        if let Some(meta) = self.inspect(&docker, &id).await {
                                            self.ensure_tailer(&docker, meta, &mut running, &read_pos, &tracker, &done_tx, &token);
                                        }
                                    }
                                }
                                "destroy" => {
                                    read_pos.remove(&id);
                                }
                                _ => {}
                            }
                        }
                        Some(Err(e)) => {
                            seen_until_ns = unix_now_ns();
                            self.docker_error(&DockerError::Api(e.to_string()), "Docker event stream failed; reconnecting.");
                            break;
                        }
                        None => {
                            seen_until_ns = unix_now_ns();
                            self.docker_error(&DockerError::Api("event stream ended".into()), "Docker event stream ended; reconnecting.");
                            break;
                        }
                    }
                }
            }
            if sleep_or_cancel(backoff.next_delay(), &token).await {
                break;
            }
        }
        for r in running.values() {
            r.token.cancel();
        }
        drop(self.tx);
        tracker.close();
        tracker.wait().await;
    }

    fn docker_error(&self, e: &DockerError, msg: &'static str) {
        self.metrics
            .docker_errors
            .get_or_create(&ReasonLabels { reason: e.reason() })
            .inc();
        warn!(host = %crate::redact::redact_url(&self.settings.docker_host), error = %e, "{msg}");
    }

    /// Containers to tail, and the ids of all containers that exist. Besides the running
    /// ones, that is every stopped container that still has unread lines: one with a
    /// checkpoint (natsmon shipped part of it), or one that started or stopped after
    /// `seen_until`, the last moment natsmon was watching (it ran while natsmon was away).
    async fn list(
        &self,
        docker: &Docker,
        seen_until_ns: i64,
    ) -> Result<(Vec<ContainerMeta>, Vec<String>), DockerError> {
        let all = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                ..Default::default()
            }))
            .await
            .map_err(|e| DockerError::Api(e.to_string()))?;
        let ids: Vec<String> = all.iter().filter_map(|c| c.id.clone()).collect();
        let mut out = Vec::new();
        for c in all {
            let running = c.state.map(|s| s.to_string() == "running").unwrap_or(false);
            let Some(id) = c.id else { continue };
            let Some(meta) = self.inspect(docker, &id).await else {
                continue;
            };
            let recent = |t: Option<i64>| t.is_some_and(|t| t >= seen_until_ns);
            if running
                || self.checkpoints.get(&id).is_some()
                || recent(meta.started_at_ns)
                || recent(meta.finished_at_ns)
            {
                out.push(meta);
            }
        }
        Ok((out, ids))
    }

    async fn inspect(&self, docker: &Docker, id: &str) -> Option<ContainerMeta> {
        match docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => {
                let cfg = c.config.unwrap_or_default();
                let state = c.state;
                let mut command = c.path.unwrap_or_default();
                for a in c.args.unwrap_or_default() {
                    command.push(' ');
                    command.push_str(&a);
                }
                Some(ContainerMeta {
                    id: c.id.unwrap_or_else(|| id.to_string()).into(),
                    name: c.name.unwrap_or_default().trim_start_matches('/').into(),
                    image: cfg.image.unwrap_or_default(),
                    command,
                    labels: cfg.labels.unwrap_or_default(),
                    started_at_ns: state
                        .as_ref()
                        .and_then(|s| s.started_at.as_deref())
                        .and_then(rfc3339_to_unix_nanos),
                    finished_at_ns: state
                        .as_ref()
                        .and_then(|s| s.finished_at.as_deref())
                        .and_then(rfc3339_to_unix_nanos),
                })
            }
            Err(e) => {
                // Gone already (removed right after starting) or the daemon is away.
                self.docker_error(
                    &DockerError::Api(e.to_string()),
                    "Inspecting a container failed.",
                );
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn ensure_tailer(
        &self,
        docker: &Docker,
        meta: ContainerMeta,
        running: &mut HashMap<Arc<str>, Running>,
        read_pos: &HashMap<Arc<str>, Position>,
        tracker: &TaskTracker,
        done: &mpsc::UnboundedSender<(Arc<str>, Option<Position>)>,
        token: &CancellationToken,
    ) {
        if running.contains_key(&meta.id)
            || !selected(&self.settings, &meta, self.own_id.as_deref())
        {
            return;
        }
        let resume = read_pos
            .get(&meta.id)
            .copied()
            .or_else(|| self.checkpoints.get(&meta.id));
        let meta = Arc::new(meta);
        let t = token.child_token();
        info!(container = %meta.name, job = %meta.job(&self.settings.default_job), resume = ?resume, "Tailing container.");
        running.insert(
            meta.id.clone(),
            Running {
                token: t.clone(),
                meta: meta.clone(),
            },
        );
        self.metrics.containers.set(running.len() as i64);
        let tailer = Tailer {
            docker: docker.clone(),
            meta,
            settings: self.settings.clone(),
            metrics: self.metrics.clone(),
            in_flight: self.in_flight.clone(),
            buffer: self.buffer.clone(),
            tx: self.tx.clone(),
        };
        let done = done.clone();
        tracker.spawn(async move {
            let id = tailer.meta.id.clone();
            let pos = tailer.run(resume, t).await;
            let _ = done.send((id, pos));
        });
    }
}



/// Approximate memory of one buffered entry besides its text (struct, labels handle,
/// in-flight timestamp, channel slot).
const ENTRY_OVERHEAD: usize = 128;

struct Tailer {
    docker: Docker,
    meta: Arc<ContainerMeta>,
    settings: LogSettings,
    metrics: Arc<LogMetrics>,
    in_flight: Arc<InFlight>,
    buffer: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<LogEntry>,
}

impl Tailer {
    /// Follows the container's logs until it stops, the daemon drops, or shutdown.
    /// Returns the position of the last record read.
    async fn run(self, resume: Option<Position>, token: CancellationToken) -> Option<Position> {
        let opts = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            timestamps: true,
            since: resume
                .map(|p| p.since_secs().clamp(0, i64::from(i32::MAX)) as i32)
                .unwrap_or(0),
            ..Default::default()
        };
        let mut asm = Assembler::new(resume, self.settings.max_line_bytes);
        let mut stream = self.docker.logs(&self.meta.id, Some(opts));
        let job = self.meta.job(&self.settings.default_job);
        let mut label_cache: HashMap<(StreamKind, Level), Arc<str>> = HashMap::new();
        let cl = LogMetrics::container(&self.meta.name);
        let (lines_read, bytes_read, truncated) = (
            self.metrics.lines_read.get_or_create(&cl).clone(),
            self.metrics.bytes_read.get_or_create(&cl).clone(),
            self.metrics.lines_truncated.get_or_create(&cl).clone(),
        );
        loop {
            let item = tokio::select! {
                _ = token.cancelled() => break,
                item = stream.next() => item,
            };
            let (kind, message) = match item {
                None => break,
                Some(Err(e)) => {
                    self.metrics
                        .docker_errors
                        .get_or_create(&ReasonLabels { reason: "logs" })
                        .inc();
                    warn!(container = %self.meta.name, error = %e, "Reading container logs failed.");
                    break;
                }
                Some(Ok(LogOutput::StdOut { message })) => (StreamKind::Stdout, message),
                Some(Ok(LogOutput::StdErr { message })) => (StreamKind::Stderr, message),
                // A TTY container: one raw stream, which is the terminal's stdout.
                Some(Ok(LogOutput::Console { message })) => (StreamKind::Stdout, message),
                Some(Ok(LogOutput::StdIn { .. })) => continue,
            };
            for record in Assembler::split_tty(&message) {
                let line = match asm.push(kind, record) {
                    Ok(Some(l)) => l,
                    Ok(None) => continue,
                    Err(e) => {
                        self.metrics
                            .lines_dropped
                            .get_or_create(&ReasonLabels {
                                reason: "no_timestamp",
                            })
                            .inc();
                        debug!(container = %self.meta.name, error = %e, "Skipping a log record.");
                        continue;
                    }
                };
                lines_read.inc();
                bytes_read.inc_by(line.bytes as u64);
                if line.truncated {
                    truncated.inc();
                }
                let level = parse_level(&line.text);
                let labels = label_cache
                    .entry((line.stream, level))
                    .or_insert_with(|| {
                        render_labels(&[
                            ("job", &job),
                            ("container_name", &self.meta.name),
                            ("service", self.meta.service()),
                            ("stream", line.stream.as_str()),
                            ("log_level", level.as_str()),
                        ])
                        .into()
                    })
                    .clone();
                // Each entry also costs its bookkeeping, so empty lines cannot pile up for free.
                let want =
                    (line.text.len() + ENTRY_OVERHEAD).min(self.settings.buffer_max_bytes) as u32;
                // Blocks here while the buffer is full (Loki down or slow): Docker keeps the
                // rest in the container's log file.
                let permit = tokio::select! {
                    _ = token.cancelled() => break,
                    p = self.buffer.clone().acquire_many_owned(want) => match p { Ok(p) => p, Err(_) => break },
                };
                self.in_flight
                    .read(&self.meta.id, &self.meta.name, line.ts_ns);
                let entry = LogEntry::new(
                    self.meta.id.clone(),
                    self.meta.name.clone(),
                    labels,
                    line,
                    permit,
                );
                if self.tx.send(entry).is_err() {
                    break;
                }
            }
            if token.is_cancelled() {
                break;
            }
        }
        debug!(container = %self.meta.name, "Tailer stopped.");
        asm.last_read
    }
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
}
