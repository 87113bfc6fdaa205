//! Owns Docker discovery and the tailers' lifecycle. The supervisor lists the containers,
//! follows `/events` (start, die, destroy, rename) and keeps one tailer task per
//! container; when the event stream or the daemon drops it reconnects with backoff and
//! lists again. A tailer task restarts its tailer when the container's log stream breaks
//! while the container keeps running, resuming exactly after the last record read; a
//! container started again later resumes where its last tailer stopped. Docker being
//! away is one incident however many reconnects fail: one WARN with the cause, one INFO
//! when listing works again, and every failed attempt counted.
//!
//! State stays bounded under container churn: a destroyed container is retired once its
//! tailer has stopped. Its read position goes at once; its in-flight entry and its
//! checkpoint go when Loki has acknowledged its last line (never before, so nothing is
//! lost or sent twice); its metric series `container_series_grace` after that.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{EventsOptions, InspectContainerOptions, ListContainersOptions};
use futures::StreamExt;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::assemble::Assembler;
use super::checkpoint::{Checkpoints, Position};
use super::container::{ContainerMeta, DockerError, connect, selected};
use super::follow::DockerAddr;
use super::metrics::{LogMetrics, ReasonLabels};
use super::rotation;
use super::status::{ShipperStatus, TailedContainer};
use super::tailer::{StopReason, Tailer, TailerExit};
use super::{InFlight, Incident, LogEntry, Settled};
use crate::backoff::{Backoff, sleep_or_cancel};
use crate::config::LogSettings;
use crate::time::{unix_now_ns, unix_now_secs};

/// Cap of the backoff between a container's tailer restarts.
const RESTART_MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How often removed containers' series are looked at for removal.
const PRUNE_INTERVAL: Duration = Duration::from_secs(1);

pub struct Supervisor {
    pub settings: LogSettings,
    pub metrics: Arc<LogMetrics>,
    pub checkpoints: Arc<Checkpoints>,
    pub in_flight: Arc<InFlight>,
    /// What the console shows: the containers tailed and Docker's last error.
    pub status: Arc<ShipperStatus>,
    pub buffer: Arc<Semaphore>,
    pub tx: mpsc::UnboundedSender<LogEntry>,
    /// Handed to every tailer: see `Tailer::flush`.
    pub flush: Arc<Notify>,
    pub own_id: Option<String>,
}

/// A container with a live tailer task.
struct Running {
    token: CancellationToken,
    meta: Arc<ContainerMeta>,
    /// A `start` event arrived while the task ran; if the task then stops for good, the
    /// container is looked at again, so that a quick restart is not missed.
    started_again: bool,
    /// A `destroy` event arrived while the task ran: retire the container when it ends.
    destroyed: bool,
}

/// What a tailer task reports when it ends for good.
struct Done {
    id: Arc<str>,
    /// Why its last tailer stopped, and where it stopped reading.
    exit: TailerExit,
    /// The container is gone: forget its read position.
    gone: bool,
}

/// What the supervisor keeps across event-stream reconnects.
struct State {
    running: HashMap<Arc<str>, Running>,
    /// Where each container's last tailer stopped reading, so that a restart in this
    /// process resumes after lines already in the pipeline, not after the checkpoint.
    read_pos: HashMap<Arc<str>, Position>,
    /// Every container tailed in this process and not yet retired, with its name: what
    /// retiring one needs once it is gone.
    tailed: HashMap<Arc<str>, Arc<str>>,
    /// The `host` label, from the Docker daemon's name unless configured.
    host: Arc<str>,
    /// Where every tailer opens its logs stream: `--docker-host`, parsed once.
    addr: Arc<DockerAddr>,
    tracker: TaskTracker,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    /// Between reconnects to Docker.
    backoff: Backoff,
    /// Docker unreachable or its event stream broken, until a listing works again.
    docker: Incident,
    /// The last moment natsmon was watching Docker: the previous run's, then the moment
    /// each event stream broke. On a first start there is no history to catch up on.
    seen_until_ns: i64,
    token: CancellationToken,
}

impl Supervisor {
    pub async fn run(self, token: CancellationToken) {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let mut st = State {
            running: HashMap::new(),
            read_pos: HashMap::new(),
            tailed: HashMap::new(),
            host: self
                .settings
                .host_label
                .as_deref()
                .unwrap_or_default()
                .into(),
            addr: Arc::new(DockerAddr::parse(&self.settings.docker_host)),
            tracker: TaskTracker::new(),
            done_tx,
            done_rx,
            backoff: Backoff::new(Duration::from_secs(10)),
            docker: Incident::default(),
            seen_until_ns: self
                .checkpoints
                .previous_run_ns()
                .unwrap_or_else(unix_now_ns),
            token,
        };
        while !st.token.is_cancelled() {
            if let Some((docker, since)) = self.resync(&mut st).await {
                self.follow_events(&mut st, &docker, since).await;
            }
            if sleep_or_cancel(st.backoff.next_delay(), &st.token).await {
                break;
            }
        }
        for r in st.running.values() {
            r.token.cancel();
        }
        // The batcher ends once every sender is gone: this one and the tailers'.
        drop(self);
        st.tracker.close();
        st.tracker.wait().await;
    }

    /// Connects, lists the containers and starts their tailers. Returns the connection
    /// and the `since` its event stream must start at, so that no event falls between.
    async fn resync(&self, st: &mut State) -> Option<(Docker, i64)> {
        let docker = match connect(&self.settings.docker_host) {
            Ok(d) => d,
            Err(e) => {
                self.docker_error(&mut st.docker, &e, "Connecting to Docker failed.");
                return None;
            }
        };
        let since = unix_now_secs();
        let token = st.token.clone();
        let listed = tokio::select! {
            _ = token.cancelled() => return None,
            l = self.list(&docker, st.seen_until_ns, &mut st.docker) => l,
        };
        let (tail, existing) = match listed {
            Ok(l) => l,
            Err(e) => {
                self.docker_error(&mut st.docker, &e, "Listing containers failed.");
                return None;
            }
        };
        if self.settings.host_label.is_none() {
            let info = tokio::select! {
                _ = token.cancelled() => return None,
                i = docker.info() => i,
            };
            match info.map(|i| i.name.filter(|n| !n.is_empty())) {
                Ok(Some(name)) => st.host = name.into(),
                Ok(None) => {
                    let e = DockerError::Api("/info has no Name; set --host-label".into());
                    self.docker_error(&mut st.docker, &e, "Reading Docker's host name failed.");
                    return None;
                }
                Err(e) => {
                    let e = DockerError::of(&self.settings.docker_host, &e);
                    self.docker_error(&mut st.docker, &e, "Reading Docker's host name failed.");
                    return None;
                }
            }
        }
        st.backoff.reset();
        if let Some((down_for, failures)) = st.docker.recover() {
            info!(
                host = %crate::redact::redact_url(&self.settings.docker_host),
                down_for = ?down_for,
                failed_attempts = failures,
                "Docker is reachable again."
            );
        }
        // Containers destroyed while the event stream was down.
        let vanished: Vec<Arc<str>> = st
            .tailed
            .keys()
            .filter(|id| !existing.contains(&***id) && !st.running.contains_key(*id))
            .cloned()
            .collect();
        for id in vanished {
            st.read_pos.remove(&id);
            self.retire(st, &id);
        }
        // Positions of containers removed while natsmon was away; those still holding
        // lines in flight go when Loki has acknowledged them.
        let pending: HashSet<Arc<str>> = self.in_flight.ids().into_iter().collect();
        self.checkpoints
            .retain(|id| existing.contains(id) || pending.contains(id));
        for meta in tail {
            self.ensure_tailer(st, &docker, meta);
        }
        Some((docker, since))
    }

    /// Handles Docker events and finished tailer tasks until the event stream breaks or
    /// shutdown.
    async fn follow_events(&self, st: &mut State, docker: &Docker, since: i64) {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "event".to_string(),
                ["start", "die", "destroy", "rename"]
                    .map(String::from)
                    .to_vec(),
            ),
        ]);
        let mut events = docker.events(Some(EventsOptions {
            since: Some(since.to_string()),
            until: None,
            filters: Some(filters),
        }));
        let token = st.token.clone();
        let mut prune = tokio::time::interval(PRUNE_INTERVAL);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = prune.tick() => self.prune_series(st),
                Some(done) = st.done_rx.recv() => self.handle_done(st, docker, done).await,
                ev = events.next() => match ev {
                    Some(Ok(ev)) => self.handle_event(st, docker, ev).await,
                    Some(Err(e)) => {
                        st.seen_until_ns = unix_now_ns();
                        let e = DockerError::of(&self.settings.docker_host, &e);
                        self.docker_error(&mut st.docker, &e, "Docker event stream failed; reconnecting.");
                        return;
                    }
                    None => {
                        st.seen_until_ns = unix_now_ns();
                        self.docker_error(&mut st.docker, &DockerError::Api("event stream ended".into()), "Docker event stream ended; reconnecting.");
                        return;
                    }
                },
            }
        }
    }

    /// Acts on one Docker event.
    async fn handle_event(
        &self,
        st: &mut State,
        docker: &Docker,
        ev: bollard::models::EventMessage,
    ) {
        let action = ev.action.unwrap_or_default();
        let Some(id) = ev.actor.and_then(|a| a.id) else {
            return;
        };
        let id: Arc<str> = id.into();
        debug!(container = %id, action = %action, "Docker event.");
        match action.as_str() {
            "start" => {
                // Its task is still winding down from the previous run (or already
                // following the new one); it is looked at again when it ends.
                if let Some(r) = st.running.get_mut(&id) {
                    r.started_again = true;
                } else if let Some(meta) = self.inspect(docker, &id, &mut st.docker).await {
                    self.ensure_tailer(st, docker, meta);
                }
            }
            // A renamed container gets a new tailer with new labels, resuming exactly where
            // the old one stopped.
            a if a.starts_with("rename") => {
                let Some(r) = st.running.remove(&id) else {
                    return;
                };
                r.token.cancel();
                info!(container = %r.meta.name, "Container renamed; restarting its tailer.");
                // The old name's series go after the grace, like a removed container's.
                self.in_flight.forget_name_later(r.meta.name.clone());
                if self.wait_stopped(st, docker, &id).await
                    && let Some(meta) = self.inspect(docker, &id, &mut st.docker).await
                {
                    self.ensure_tailer(st, docker, meta);
                }
            }
            "destroy" => {
                st.read_pos.remove(&id);
                match st.running.get_mut(&id) {
                    // Its tailer may still be reading the last records: retire it when
                    // the task ends.
                    Some(r) => r.destroyed = true,
                    None => self.retire(st, &id),
                }
            }
            _ => {}
        }
    }

    /// Waits for container `id`'s tailer task to end, handling the others that end
    /// meanwhile; false at shutdown.
    async fn wait_stopped(&self, st: &mut State, docker: &Docker, id: &str) -> bool {
        let token = st.token.clone();
        loop {
            let done = tokio::select! {
                _ = token.cancelled() => return false,
                d = st.done_rx.recv() => d,
            };
            // `st` holds a sender, so the channel never closes under us.
            let Some(done) = done else { return false };
            let same = &*done.id == id;
            self.handle_done(st, docker, done).await;
            if same {
                return true;
            }
        }
    }

    /// Bookkeeping for a tailer task that ended for good.
    async fn handle_done(&self, st: &mut State, docker: &Docker, done: Done) {
        let running = st.running.remove(&done.id);
        self.publish_containers(st);
        if done.gone || running.as_ref().is_some_and(|r| r.destroyed) {
            st.read_pos.remove(&done.id);
            self.retire(st, &done.id);
            return;
        }
        if let Some(p) = done.exit.last_read {
            st.read_pos.insert(done.id.clone(), p);
        }
        // The container started again while its task was deciding that it had stopped.
        if running.is_some_and(|r| r.started_again)
            && done.exit.reason.unasked()
            && let Some(meta) = self.inspect(docker, &done.id, &mut st.docker).await
        {
            self.ensure_tailer(st, docker, meta);
        }
    }

    /// Forgets a destroyed container whose tailer has stopped: its checkpoint at once if
    /// Loki has all its lines, else when the batcher acknowledges the last of them.
    fn retire(&self, st: &mut State, id: &Arc<str>) {
        let Some(name) = st.tailed.remove(id) else {
            // Never tailed in this process: nothing in flight, no series.
            self.checkpoints.forget(id);
            return;
        };
        if self.in_flight.retire(id, &name) == Settled::Retired {
            self.checkpoints.forget(id);
            self.metrics.lag.remove(&LogMetrics::container(&name));
        }
        debug!(container = %name, "Container removed; forgetting it once Loki has its lines.");
    }

    /// Removes the series of containers retired longer than the grace ago, unless a
    /// container of the same name is tailed or holds lines (it owns them now).
    fn prune_series(&self, st: &State) {
        for name in self
            .in_flight
            .take_retired(self.settings.container_series_grace)
        {
            let live =
                st.running.values().any(|r| r.meta.name == name) || self.in_flight.has_name(&name);
            if !live {
                self.metrics.forget_container(&name);
            }
        }
    }

    /// The containers gauge and the console's list of tailed containers.
    fn publish_containers(&self, st: &State) {
        self.metrics.containers.set(st.running.len() as i64);
        self.status.set_containers(
            st.running
                .values()
                .map(|r| TailedContainer {
                    name: r.meta.name.clone(),
                    job: r.meta.job(&self.settings.default_job),
                    service: r.meta.service().to_string(),
                })
                .collect(),
        );
    }

    /// Counts a failure to reach Docker or follow its events, and logs it once per
    /// incident: WARN for the first, DEBUG for the reconnects that fail after it.
    fn docker_error(&self, incident: &mut Incident, e: &DockerError, msg: &'static str) {
        self.metrics
            .docker_errors
            .get_or_create(&ReasonLabels { reason: e.reason() })
            .inc();
        let host = crate::redact::redact_url(&self.settings.docker_host);
        self.status.record_error("docker", e.to_string());
        if incident.fail() {
            warn!(host = %host, reason = e.reason(), error = %e, "{msg}");
        } else {
            debug!(host = %host, reason = e.reason(), error = %e, "{msg}");
        }
    }

    /// Containers to tail, and the ids of all containers that exist. Besides the running
    /// ones, that is every stopped container that still has unread lines: one with a
    /// checkpoint (natsmon shipped part of it), or one that started or stopped after
    /// `seen_until`, the last moment natsmon was watching (it ran while natsmon was away).
    async fn list(
        &self,
        docker: &Docker,
        seen_until_ns: i64,
        incident: &mut Incident,
    ) -> Result<(Vec<ContainerMeta>, HashSet<String>), DockerError> {
        let all = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                ..Default::default()
            }))
            .await
            .map_err(|e| DockerError::of(&self.settings.docker_host, &e))?;
        let ids = all.iter().filter_map(|c| c.id.clone()).collect();
        let mut out = Vec::new();
        for c in all {
            let running = c.state.is_some_and(|s| s.to_string() == "running");
            let Some(id) = c.id else { continue };
            let Some(meta) = self.inspect(docker, &id, incident).await else {
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

    async fn inspect(
        &self,
        docker: &Docker,
        id: &str,
        incident: &mut Incident,
    ) -> Option<ContainerMeta> {
        match docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => Some(ContainerMeta::from_inspect(id, c)),
            Err(e) => {
                let msg = "Inspecting a container failed.";
                match DockerError::of(&self.settings.docker_host, &e) {
                    // The daemon went away: part of that incident.
                    e @ DockerError::Connect { .. } => self.docker_error(incident, &e, msg),
                    // About this container (removed right after starting): its own story.
                    e => {
                        self.status
                            .record_error("docker", format!("container {id}: {e}"));
                        self.metrics
                            .docker_errors
                            .get_or_create(&ReasonLabels { reason: e.reason() })
                            .inc();
                        warn!(container = %id, reason = e.reason(), error = %e, "{msg}");
                    }
                }
                None
            }
        }
    }

    /// Starts a tailer task for a selected container that has none.
    fn ensure_tailer(&self, st: &mut State, docker: &Docker, meta: ContainerMeta) {
        if st.running.contains_key(&meta.id)
            || !selected(&self.settings, &meta, self.own_id.as_deref())
        {
            return;
        }
        let resume = st
            .read_pos
            .get(&meta.id)
            .copied()
            .or_else(|| self.checkpoints.get(&meta.id));
        let meta = Arc::new(meta);
        let token = st.token.child_token();
        info!(container = %meta.name, job = %meta.job(&self.settings.default_job), resume = ?resume, "Tailing container.");
        st.tailed.insert(meta.id.clone(), meta.name.clone());
        st.running.insert(
            meta.id.clone(),
            Running {
                token: token.clone(),
                meta: meta.clone(),
                started_again: false,
                destroyed: false,
            },
        );
        self.publish_containers(st);
        let tailer = Tailer {
            docker: docker.clone(),
            addr: st.addr.clone(),
            meta,
            host: st.host.clone(),
            settings: self.settings.clone(),
            metrics: self.metrics.clone(),
            in_flight: self.in_flight.clone(),
            buffer: self.buffer.clone(),
            tx: self.tx.clone(),
            flush: self.flush.clone(),
        };
        let done = st.done_tx.clone();
        st.tracker.spawn(async move {
            let d = keep_tailing(tailer, resume, token).await;
            let _ = done.send(d);
        });
    }
}

/// What Docker says about a container whose log stream broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inspected {
    Running,
    NotRunning,
    /// 404: removed.
    Gone,
    /// The daemon is away or failed to answer; it may well be running.
    Unavailable,
}

impl Inspected {
    fn of(r: &Result<ContainerInspectResponse, bollard::errors::Error>) -> Inspected {
        match r {
            Ok(c) if c.state.as_ref().and_then(|s| s.running) == Some(true) => Inspected::Running,
            Ok(_) => Inspected::NotRunning,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Inspected::Gone,
            Err(_) => Inspected::Unavailable,
        }
    }
}

/// What a tailer task does after its tailer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Tail again from the last read position.
    Restart,
    /// Stop; a later start resumes from the last read position.
    Stop,
    /// Stop and forget the container: it is gone for good.
    Forget,
}

/// Restart a stream that broke while its container runs, or when Docker cannot tell
/// (a daemon restart breaks every stream, and the containers may be back with it);
/// never after a cancel, a closed channel or a refusal. A stream that *failed* (cut, not
/// ended by Docker) on a container that has stopped meanwhile may not have delivered its
/// last lines: it is read once more (`drain`), since a follow request on a stopped
/// container reads to the end of its log and then ends.
fn next_step(reason: &StopReason, inspected: Inspected, drain: bool) -> Next {
    if !reason.unasked() {
        return Next::Stop;
    }
    match inspected {
        Inspected::Running | Inspected::Unavailable => Next::Restart,
        Inspected::NotRunning if drain && matches!(reason, StopReason::StreamError(_)) => {
            Next::Restart
        }
        Inspected::NotRunning => Next::Stop,
        Inspected::Gone => Next::Forget,
    }
}

/// Times a stopped container's failed stream is read again before giving up on it (it
/// resumes at its next start).
const STOPPED_DRAINS: u32 = 3;

/// Runs one container's tailer, restarting it with backoff while its stream breaks and
/// the container keeps running. Logs once per incident: a WARN when a healthy stream
/// breaks, DEBUG for further failures before a line is read again, and the tailer's INFO
/// when it reads one. When Docker itself is unreachable every stream breaks at once; that
/// outage is the supervisor's to tell (its event stream breaks too), so the tailers keep
/// to DEBUG and do not announce their recovery either.
async fn keep_tailing(tailer: Tailer, resume: Option<Position>, token: CancellationToken) -> Done {
    // One assembler across restarts, so that a long line cut mid-way is completed, not
    // shipped in two halves or lost.
    let mut asm = Assembler::new(resume, tailer.settings.max_line_bytes);
    let name = tailer.meta.name.clone();
    if let Some(resume) = resume {
        tokio::select! {
            _ = token.cancelled() => {}
            _ = check_rotation(&tailer, resume) => {}
        }
    }
    let mut backoff = Backoff::new(RESTART_MAX_BACKOFF);
    // An incident is open: a stream broke and no line has been read since.
    let mut broken = false;
    // It was told at WARN, so its end is told at INFO.
    let mut told = false;
    // Reads of a stopped container whose stream failed, see `next_step`.
    let mut drains = 0;
    loop {
        let exit = tailer.run(&mut asm, broken && told, &token).await;
        asm.rearm();
        if exit.read_any {
            backoff.reset();
            broken = false;
            told = false;
        }
        let done = |exit: TailerExit, gone| Done {
            id: tailer.meta.id.clone(),
            exit,
            gone,
        };
        if !exit.reason.unasked() {
            if let StopReason::Refused(e) = &exit.reason {
                warn!(container = %name, error = %e, "Reading container logs failed.");
            }
            return done(exit, false);
        }
        // Docker ends a stopped container's stream a moment before its state says so;
        // waiting first also spaces restarts out.
        if sleep_or_cancel(backoff.next_delay(), &token).await {
            return done(exit, false);
        }
        let r = tokio::select! {
            _ = token.cancelled() => return done(exit, false),
            r = tailer.docker.inspect_container(&tailer.meta.id, None::<InspectContainerOptions>) => r,
        };
        if let Err(e) = &r {
            debug!(container = %name, error = %e, "Inspecting a container whose log stream broke failed.");
        }
        let reason = exit.reason.reason();
        let inspected = Inspected::of(&r);
        let drain = drains < STOPPED_DRAINS;
        match next_step(&exit.reason, inspected, drain) {
            Next::Restart => {
                if inspected == Inspected::NotRunning {
                    drains += 1;
                }
                tailer
                    .metrics
                    .tailer_restarts
                    .get_or_create(&ReasonLabels { reason })
                    .inc();
                if broken {
                    debug!(container = %name, reason, error = %exit.reason, "Container log stream broke again; restarting its tailer.");
                } else if inspected == Inspected::Unavailable {
                    debug!(container = %name, reason, error = %exit.reason, "Container log stream broke while Docker does not answer; restarting its tailer.");
                } else {
                    warn!(container = %name, reason, error = %exit.reason, "Container log stream broke; restarting its tailer.");
                    told = true;
                }
                broken = true;
            }
            next @ (Next::Stop | Next::Forget) => {
                // The usual end: the container stopped, and with it its stream.
                debug!(container = %name, reason, error = %exit.reason, "Container stopped; its tailer too.");
                return done(exit, next == Next::Forget);
            }
        }
    }
}

/// Compares the resume position with the oldest line Docker still has, and counts and
/// tells a gap: lines rotated away before natsmon read them (see [`super::rotation`]).
async fn check_rotation(tailer: &Tailer, resume: Position) {
    let name = &tailer.meta.name;
    let oldest = match rotation::oldest_record_ns(&tailer.docker, &tailer.meta.id).await {
        Ok(o) => o,
        Err(e) => {
            // The follow request right after says what is wrong, and is the one told.
            debug!(container = %name, error = %e, "Reading the oldest log line failed; not checking for rotated lines.");
            return;
        }
    };
    if let Some(g) = rotation::gap(resume, oldest) {
        tailer.metrics.rotation_gaps.inc();
        tailer.metrics.rotation_gap_seconds.inc_by(g.seconds());
        warn!(
            container = %name,
            last_read = %rotation::rfc3339(g.after_ns),
            oldest_available = %rotation::rfc3339(g.oldest_ns),
            lost_seconds = g.seconds(),
            "Docker rotated away log lines natsmon had not read; lines between these times are lost."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_stream_restarts_only_while_the_container_may_run() {
        use Inspected::*;
        let ended = StopReason::StreamEnded;
        let failed = StopReason::StreamError("connection reset".into());
        for r in [&ended, &failed] {
            for drain in [true, false] {
                assert_eq!(next_step(r, Running, drain), Next::Restart);
                assert_eq!(next_step(r, Unavailable, drain), Next::Restart);
                assert_eq!(next_step(r, Gone, drain), Next::Forget);
            }
            assert_eq!(next_step(r, NotRunning, false), Next::Stop);
        }
        // Docker ended the stream of a stopped container: it has read everything.
        assert_eq!(next_step(&ended, NotRunning, true), Next::Stop);
        // A cut stream of a container that stopped meanwhile: read its last lines.
        assert_eq!(next_step(&failed, NotRunning, true), Next::Restart);
        for r in [
            StopReason::Cancelled,
            StopReason::ChannelClosed,
            StopReason::Refused("409".into()),
        ] {
            for i in [Running, Unavailable, NotRunning, Gone] {
                assert_eq!(next_step(&r, i, true), Next::Stop, "{r:?} {i:?}");
            }
        }
    }

    #[test]
    fn inspect_answers() {
        let with_state = |running| {
            Ok(serde_json::from_value::<ContainerInspectResponse>(
                serde_json::json!({"Id": "a", "State": {"Running": running}}),
            )
            .unwrap())
        };
        assert_eq!(Inspected::of(&with_state(true)), Inspected::Running);
        assert_eq!(Inspected::of(&with_state(false)), Inspected::NotRunning);
        assert_eq!(
            Inspected::of(&Ok(ContainerInspectResponse::default())),
            Inspected::NotRunning
        );
        let answer = |status_code| {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code,
                message: "x".into(),
            })
        };
        assert_eq!(Inspected::of(&answer(404)), Inspected::Gone);
        assert_eq!(Inspected::of(&answer(500)), Inspected::Unavailable);
        let away = Err(bollard::errors::Error::IOError {
            err: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
        });
        assert_eq!(Inspected::of(&away), Inspected::Unavailable);
    }
}
