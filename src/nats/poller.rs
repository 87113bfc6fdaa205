//! Owns the per-node poll loop: every interval it fetches all endpoints of one node
//! concurrently, each with its own timeout, records each outcome once (log line and
//! metric), and replaces the node's snapshot. Nodes have independent loops, so a slow or
//! dead node never delays another. A loop that panics or ends before shutdown leaves its
//! node down, never its last values, and is started again. An endpoint the node answers
//! 404 for is said once and asked for again only every `ABSENT_RETRY`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::client::NatsClient;
use super::connz::{self, ConnzSummary};
use super::jsz::{self, Jsz};
use super::paging::PageGuard;
use super::raftz::{self, Raftz};
use super::snapshot::{NodePoll, Store};
use super::{Endpoint, PollError, accstatz, gatewayz, healthz, leafz, routez, subsz, varz};
use crate::config::{Node, Settings};
use crate::nats::metrics::{ErrorLabels, Metrics};

/// How long an endpoint a node answered 404 for is left alone: an older server does not
/// grow it soon, and after an upgrade it comes back within this. The log lines say "10m".
pub const ABSENT_RETRY: Duration = Duration::from_secs(600);

/// The `/varz` error a node is left with when its poller stops before shutdown.
pub const POLLER_STOPPED: &str = "poller stopped";

/// What every poller shares.
pub struct PollContext {
    pub client: NatsClient,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    pub store: Arc<Store>,
    /// Woken after each poll so the renderer rebuilds the exposition.
    pub updated: Arc<Notify>,
    /// Set after the first successful poll of any node; drives `/ready`.
    pub ready: Arc<AtomicBool>,
}

/// What one node's poll loop remembers across cycles. The endpoints of a cycle run
/// concurrently and share it, hence the locks (never held across an await).
#[derive(Debug, Default)]
pub struct NodeMemory {
    /// Endpoints the node answered 404 for, and when to ask again.
    absent: Mutex<BTreeMap<Endpoint, Instant>>,
    /// Endpoints whose absence has been logged at INFO already.
    said: Mutex<BTreeSet<Endpoint>>,
    /// Endpoints failing since their WARN: an incident is logged once, not per poll.
    failing: Mutex<BTreeSet<Endpoint>>,
    /// Stream and consumer configs from the last `/jsz` read that asked for them.
    configs: Mutex<jsz::ConfigCache>,
    /// The last `/raftz` read, reused until `--raftz-interval` has passed.
    raftz: Mutex<Option<RaftzRead>>,
}

/// One `/raftz` read and what it asked about.
#[derive(Debug)]
struct RaftzRead {
    at: Instant,
    /// The accounts asked about with their replicated group counts, and the replicated
    /// groups in the cluster view then.
    asked: (Vec<(String, u64)>, u64),
    raftz: Arc<Raftz>,
}

impl NodeMemory {
    fn skip(&self, e: Endpoint, now: Instant) -> bool {
        let absent = self.absent.lock().unwrap_or_else(PoisonError::into_inner);
        absent.get(&e).is_some_and(|until| now < *until)
    }

    /// Records a 404; true the first time, when it is worth an INFO line.
    fn set_absent(&self, e: Endpoint, now: Instant) -> bool {
        self.absent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(e, now + ABSENT_RETRY);
        self.said
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(e)
    }

    /// The last `/raftz` read while it is younger than `max_age` and was asked about the
    /// same accounts with the same group counts (the node's and the cluster view's): a
    /// stream or consumer created or deleted since, or a node that was down meanwhile,
    /// has `/raftz` read again at once.
    fn recent_raftz(
        &self,
        asked: &(Vec<(String, u64)>, u64),
        now: Instant,
        max_age: Duration,
    ) -> Option<Arc<Raftz>> {
        let last = self.raftz.lock().unwrap_or_else(PoisonError::into_inner);
        last.as_ref()
            .filter(|r| now.duration_since(r.at) < max_age && r.asked == *asked)
            .map(|r| r.raftz.clone())
    }

    /// Remembers a `/raftz` read, or forgets the last one when the read failed.
    fn remember_raftz(&self, read: Option<RaftzRead>) {
        *self.raftz.lock().unwrap_or_else(PoisonError::into_inner) = read;
    }

    /// Forgets every absence: when `/varz` fails too, the 404s more likely come from a
    /// wrong URL or a proxy than from an older server, so everything is asked again.
    fn forget_absent(&self) {
        self.remember_raftz(None);
        self.absent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        // A down node's other endpoints were not asked; they start afresh when it is back.
        self.failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Records a failure; true when it starts an incident (worth a WARN).
    fn set_failing(&self, e: Endpoint) -> bool {
        self.failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(e)
    }

    /// Records an answer; true when it ends an incident (worth an INFO).
    fn set_answering(&self, e: Endpoint) -> bool {
        self.failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&e)
    }

    /// Records an answer; true when the endpoint had been absent.
    fn set_present(&self, e: Endpoint) -> bool {
        self.absent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&e)
            .is_some()
    }
}

/// Polls `node` until `token` is cancelled. The loop runs as its own task so that a panic
/// in it is caught here: the node is then marked down and the loop started again.
pub async fn run(ctx: Arc<PollContext>, node: Node, token: CancellationToken) {
    let name = node.name.clone();
    let pause = ctx.settings.poll_interval;
    supervise(&name, &token, pause, || {
        poll_loop(ctx.clone(), node.clone(), token.clone())
    })
    .await;
    debug!(node = %name, "Poller stopped.");
}

/// Runs the future `start` makes as a task, and makes and runs another (after `pause`)
/// whenever one panics or ends before `token` is cancelled.
async fn supervise<F, Fut>(node: &str, token: &CancellationToken, pause: Duration, mut start: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let ended = tokio::spawn(start()).await;
        if token.is_cancelled() {
            return;
        }
        match ended {
            Err(e) if e.is_panic() => {
                let p = e.into_panic();
                let why = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                error!(node = %node, error = %why, "Poller panicked; starting it again.");
            }
            _ => error!(node = %node, "Poller ended; starting it again."),
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Leaves the node down when its poll loop ends for any reason but shutdown (a panic
/// included): a poll that is no longer refreshed must not look current on /metrics.
struct DownOnDrop<'a> {
    store: &'a Store,
    updated: &'a Notify,
    node: &'a str,
    token: &'a CancellationToken,
}

impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        if !self.token.is_cancelled() {
            self.store.mark_down(self.node, POLLER_STOPPED);
            self.updated.notify_one();
        }
    }
}

async fn poll_loop(ctx: Arc<PollContext>, node: Node, token: CancellationToken) {
    let _down = DownOnDrop {
        store: &ctx.store,
        updated: &ctx.updated,
        node: &node.name,
        token: &token,
    };
    let memory = NodeMemory::default();
    let mut tick = tokio::time::interval(ctx.settings.poll_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut state = NodeState::default();
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tick.tick() => {}
        }
        let poll = tokio::select! {
            _ = token.cancelled() => break,
            p = poll_node(&ctx, &node, &memory) => p,
        };
        let up = poll.up();
        state.observe(&node, &poll, Instant::now());
        if up {
            ctx.ready.store(true, Ordering::Relaxed);
        }
        ctx.store.update(&node.name, poll);
        ctx.updated.notify_one();
    }
}

/// How often a node that stays down is mentioned again.
pub const DOWN_REMINDER: Duration = Duration::from_secs(300);

/// A node's up/down history, for logging state changes instead of attempts: one WARN
/// when it goes down (with the error that matters), one INFO when it is back, and a
/// reminder every `DOWN_REMINDER` in between. Every failed attempt is still counted.
#[derive(Debug, Default)]
struct NodeState {
    up: Option<bool>,
    down_since: Option<Instant>,
    reminded: Option<Instant>,
}

impl NodeState {
    fn observe(&mut self, node: &Node, poll: &NodePoll, now: Instant) {
        let up = poll.up();
        let error = poll
            .errors
            .get(&Endpoint::Varz)
            .map(String::as_str)
            .unwrap_or("");
        match (self.up, up) {
            (Some(true) | None, false) => {
                let reason = poll.down_reason.unwrap_or("unknown");
                warn!(node = %node.name, url = %node.display, endpoint = "varz", reason = %reason, error = %error, "Node is down.");
                self.down_since = Some(now);
                self.reminded = Some(now);
            }
            (Some(false), false) => {
                if self
                    .reminded
                    .is_some_and(|t| now.duration_since(t) >= DOWN_REMINDER)
                {
                    let down_for = self.down_since.map(|t| now.duration_since(t).as_secs());
                    warn!(node = %node.name, url = %node.display, down_for_seconds = ?down_for, error = %error, "Node is still down.");
                    self.reminded = Some(now);
                }
            }
            (Some(false), true) => {
                let down_for = self.down_since.map(|t| now.duration_since(t).as_secs());
                info!(node = %node.name, url = %node.display, down_for_seconds = ?down_for, "Node is up again.");
                self.down_since = None;
            }
            (None, true) => info!(node = %node.name, url = %node.display, "Node is up."),
            (Some(true), true) => {}
        }
        self.up = Some(up);
    }
}

/// One endpoint's result in a cycle.
enum Outcome<T> {
    Ok(T),
    Failed(PollError),
    /// The node does not serve the endpoint (404, now or earlier): no series, no warning.
    Absent,
}

/// One poll cycle of one node: all endpoints, then the optional ones `/varz` asks for.
pub async fn poll_node(ctx: &PollContext, node: &Node, memory: &NodeMemory) -> NodePoll {
    let started = Instant::now();
    let mut poll = NodePoll::default();
    // `/varz` first: a node that does not answer it is down, and asking its other
    // endpoints would only add six more failures of the same cause.
    let varz = single::<varz::Varz>(ctx, node, memory, Endpoint::Varz, varz::PATH, &[]).await;
    poll.varz = keep(&mut poll, Endpoint::Varz, varz);
    if poll.varz.is_none() {
        memory.forget_absent();
        return finish(ctx, node, poll, started);
    }
    let leader_only = poll.varz.as_ref().is_some_and(|v| {
        ctx.settings.jsz_stream_leader_only
            && jsz::version_at_least(&v.version, jsz::STREAM_LEADER_ONLY_SINCE)
            && !ctx.store.view().full_jsz.contains(v.name())
    });
    let (jsz, connz, routez, healthz, accstatz, subsz) = tokio::join!(
        endpoint(
            ctx,
            node,
            memory,
            Endpoint::Jsz,
            fetch_jsz(ctx, node, memory, leader_only)
        ),
        endpoint(ctx, node, memory, Endpoint::Connz, fetch_connz(ctx, node)),
        single::<routez::Routez>(ctx, node, memory, Endpoint::Routez, routez::PATH, &[]),
        // An unhealthy server answers 503 with its reasons in the body.
        single::<healthz::Healthz>(ctx, node, memory, Endpoint::Healthz, healthz::PATH, &[503]),
        single::<accstatz::Accstatz>(ctx, node, memory, Endpoint::Accstatz, accstatz::PATH, &[]),
        single::<subsz::Subsz>(ctx, node, memory, Endpoint::Subsz, subsz::PATH, &[]),
    );
    poll.jsz = keep(&mut poll, Endpoint::Jsz, jsz);
    poll.connz = keep(&mut poll, Endpoint::Connz, connz);
    poll.routez = keep(&mut poll, Endpoint::Routez, routez);
    poll.healthz = keep(&mut poll, Endpoint::Healthz, healthz);
    poll.accstatz = keep(&mut poll, Endpoint::Accstatz, accstatz);
    poll.subsz = keep(&mut poll, Endpoint::Subsz, subsz);
    if let Some(v) = &poll.varz {
        let (gw, leaf) = (v.gateway_configured(), v.leafnodes_configured());
        // 2.9 nodes have no /raftz: they are not asked, and poll exactly as before.
        // Raft groups exist only in a JetStream cluster: a standalone server answers 404.
        let clustered = v.jetstream.meta.is_some();
        let raft_accounts = (clustered && raftz::supported(&v.version)).then(|| {
            let mut accounts = raft_accounts(poll.jsz.as_ref());
            // Replicated groups the cluster view knows: with the node's own report, what
            // tells a reused `/raftz` read from a stale one.
            let mut view_groups = 0u64;
            // A filtered `/jsz` leaves out the accounts where the node leads no stream,
            // yet it may host replicas there: ask about every account the cluster view
            // has streams in too.
            if poll.jsz.as_ref().is_some_and(|j| j.stream_leader_only) {
                let view = ctx.store.view();
                // Consumers per stream, counted once: a scan of every consumer per
                // stream cost 1,000 x 5,000 comparisons per node and poll at scale (b).
                let mut consumers: HashMap<(&str, &str), u64> = HashMap::new();
                for c in &view.consumers {
                    *consumers
                        .entry((c.account.as_str(), c.stream.as_str()))
                        .or_default() += 1;
                }
                // Counted from what stays put between polls: replicated streams and the
                // consumers with series (a consumer's peers are known only where its
                // leader's report was read, so counting by them would flip). Ephemeral
                // consumers, which come and go, have no series by default.
                view_groups = (view.streams.iter().filter(|s| s.replicas > 1).count()
                    + view.consumers.len()) as u64;
                for s in view.streams.iter().filter(|s| s.replicas > 1) {
                    // The stream's group and those of its consumers.
                    let groups = 1 + consumers
                        .get(&(s.account.as_str(), s.name.as_str()))
                        .copied()
                        .unwrap_or(0);
                    match accounts.iter_mut().find(|(a, _)| *a == s.account) {
                        Some((_, n)) => *n = (*n).max(groups),
                        None => accounts.push((s.account.clone(), groups)),
                    }
                }
            }
            (accounts, view_groups)
        });
        let (g, l, r) = tokio::join!(
            async {
                if gw {
                    Some(
                        single::<gatewayz::Gatewayz>(
                            ctx,
                            node,
                            memory,
                            Endpoint::Gatewayz,
                            gatewayz::PATH,
                            &[],
                        )
                        .await,
                    )
                } else {
                    None
                }
            },
            async {
                if leaf {
                    Some(
                        single::<leafz::Leafz>(
                            ctx,
                            node,
                            memory,
                            Endpoint::Leafz,
                            leafz::PATH,
                            &[],
                        )
                        .await,
                    )
                } else {
                    None
                }
            },
            async {
                let (mut accounts, view_groups) = raft_accounts?;
                accounts.sort();
                let now = Instant::now();
                let asked = (accounts, view_groups);
                if let Some(r) = memory.recent_raftz(&asked, now, ctx.settings.raftz_interval) {
                    return Some(Outcome::Ok(r));
                }
                let r = endpoint(ctx, node, memory, Endpoint::Raftz, async {
                    fetch_raftz(ctx, node, &asked.0).await.map(Arc::new)
                })
                .await;
                memory.remember_raftz(match &r {
                    Outcome::Ok(raftz) => Some(RaftzRead {
                        at: now,
                        asked,
                        raftz: Arc::clone(raftz),
                    }),
                    _ => None,
                });
                Some(r)
            },
        );
        if let Some(r) = r {
            poll.raftz = keep(&mut poll, Endpoint::Raftz, r);
        }
        if let Some(g) = g {
            poll.gatewayz = keep(&mut poll, Endpoint::Gatewayz, g);
        }
        if let Some(l) = l {
            poll.leafz = keep(&mut poll, Endpoint::Leafz, l);
        }
    }
    finish(ctx, node, poll, started)
}

/// Stamps a cycle's duration and end, and counts it.
fn finish(ctx: &PollContext, node: &Node, mut poll: NodePoll, started: Instant) -> NodePoll {
    poll.duration = started.elapsed();
    poll.finished_at = Some(SystemTime::now());
    let labels = crate::nats::metrics::NodeLabels {
        node: node.name.clone(),
    };
    ctx.metrics.poll_cycles.get_or_create(&labels).inc();
    ctx.metrics
        .poll_cycle_duration
        .get_or_create(&labels)
        .set(poll.duration.as_secs_f64());
    poll
}

fn keep<T>(poll: &mut NodePoll, e: Endpoint, r: Outcome<T>) -> Option<T> {
    match r {
        Outcome::Ok(v) => Some(v),
        Outcome::Failed(err) => {
            if e == Endpoint::Varz {
                poll.down_reason = Some(err.reason());
            }
            poll.errors.insert(e, err.to_string());
            None
        }
        Outcome::Absent => {
            // Said on the status page, which shows why the series are missing.
            poll.errors.insert(
                e,
                "not served by this node (HTTP 404); asked again every 10m".into(),
            );
            None
        }
    }
}

/// The JetStream accounts of a node's `/jsz` that host streams, each with the number of
/// replicated groups (streams and consumers with peers) it has there: what `/raftz` is
/// asked about beside the system account, and the estimate of what is left unasked.
fn raft_accounts(jsz: Option<&Jsz>) -> Vec<(String, u64)> {
    jsz.into_iter()
        .flat_map(|j| &j.account_details)
        .filter(|a| !a.stream_detail.is_empty())
        .map(|a| {
            let groups = a
                .stream_detail
                .iter()
                .map(|s| {
                    let replicated = |c: Option<&jsz::ClusterInfo>| {
                        u64::from(c.is_some_and(|c| !c.replicas.is_empty()))
                    };
                    replicated(s.cluster.as_ref())
                        + s.consumer_detail
                            .iter()
                            .map(|c| replicated(c.cluster.as_ref()))
                            .sum::<u64>()
                })
                .sum();
            (a.name.clone(), groups)
        })
        .collect()
}

/// Query-string form of an account name (names are usually NKeys or plain words).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/raftz` lists only the system account's groups unless asked for an account: ask
/// for it, then for each account that hosts replicated streams or consumers, until the
/// node has `raftz::GROUP_LIMIT` groups; the accounts left are counted from `/jsz`. A
/// 404 for the first request means the node has no Raft groups (the endpoint is absent).
async fn fetch_raftz(
    ctx: &PollContext,
    node: &Node,
    accounts: &[(String, u64)],
) -> Result<Raftz, PollError> {
    let mut all: Raftz = request(ctx, node, Endpoint::Raftz, raftz::PATH, &[]).await?;
    for (account, groups) in accounts.iter().map(|(a, g)| (a, *g)) {
        // R1 streams and consumers have no Raft group: nothing to ask about.
        if groups == 0 || all.accounts.contains_key(account) {
            continue;
        }
        if all.group_count() >= raftz::GROUP_LIMIT {
            all.not_asked += groups;
            continue;
        }
        let path = format!("{}?acc={}", raftz::PATH, query_escape(account));
        match request::<Raftz>(ctx, node, Endpoint::Raftz, &path, &[]).await {
            Ok(r) => all.merge(r),
            // The account's groups went away between /jsz and now.
            Err(PollError::Status(404)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(all)
}

/// Runs one endpoint's fetch (all its pages) unless the node is known not to serve it,
/// and records the outcome once: its success time, or one error count and one log line.
/// A 404 is said once at INFO and counted once per `ABSENT_RETRY`; `/varz` is never
/// skipped, since without it the node is down.
async fn endpoint<T>(
    ctx: &PollContext,
    node: &Node,
    memory: &NodeMemory,
    e: Endpoint,
    fetch: impl Future<Output = Result<T, PollError>>,
) -> Outcome<T> {
    if memory.skip(e, Instant::now()) {
        return Outcome::Absent;
    }
    let r = fetch.await;
    let m = &ctx.metrics;
    match r {
        Ok(v) => {
            m.poll_last_success
                .get_or_create(&Metrics::endpoint(&node.name, e))
                .set(crate::time::unix_now_f64());
            if memory.set_present(e) {
                info!(node = %node.name, endpoint = %e, "Node serves this endpoint now.");
            }
            if memory.set_answering(e) {
                info!(node = %node.name, endpoint = %e, "Endpoint answers again.");
            }
            Outcome::Ok(v)
        }
        Err(err) => {
            m.poll_errors
                .get_or_create(&ErrorLabels {
                    node: node.name.clone(),
                    endpoint: e.into(),
                    reason: err.reason(),
                })
                .inc();
            if e != Endpoint::Varz && matches!(err, PollError::Status(404)) {
                if memory.set_absent(e, Instant::now()) {
                    info!(node = %node.name, endpoint = %e, reason = %err.reason(), "Node does not serve this endpoint; asking again in 10m.");
                } else {
                    debug!(node = %node.name, endpoint = %e, reason = %err.reason(), "Node still does not serve this endpoint; asking again in 10m.");
                }
                return Outcome::Absent;
            }
            // `/varz` failing is the node being down, which the poll loop says once.
            if e == Endpoint::Varz {
                debug!(node = %node.name, endpoint = %e, reason = %err.reason(), error = %err, "Poll failed.");
            } else if memory.set_failing(e) {
                warn!(node = %node.name, endpoint = %e, reason = %err.reason(), error = %err, "Poll failed.");
            } else {
                debug!(node = %node.name, endpoint = %e, reason = %err.reason(), error = %err, "Poll failed again.");
            }
            Outcome::Failed(err)
        }
    }
}

/// An endpoint of one request.
async fn single<T: DeserializeOwned>(
    ctx: &PollContext,
    node: &Node,
    memory: &NodeMemory,
    e: Endpoint,
    path: &str,
    ok_statuses: &[u16],
) -> Outcome<T> {
    endpoint(
        ctx,
        node,
        memory,
        e,
        request(ctx, node, e, path, ok_statuses),
    )
    .await
}

/// Makes one request and counts it: requests, duration and body size. Failures are
/// recorded by `endpoint`, once per endpoint, whatever page they happened on.
async fn request<T: DeserializeOwned>(
    ctx: &PollContext,
    node: &Node,
    e: Endpoint,
    path: &str,
    ok_statuses: &[u16],
) -> Result<T, PollError> {
    let labels = Metrics::endpoint(&node.name, e);
    let started = Instant::now();
    let r = ctx.client.get::<T>(node, path, ok_statuses).await;
    let m = &ctx.metrics;
    m.polls.get_or_create(&labels).inc();
    m.poll_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    let f = r?;
    m.poll_response_bytes
        .get_or_create(&labels)
        .inc_by(f.bytes as u64);
    Ok(f.value)
}

/// One `/jsz` read: filtered to the streams the node leads when `leader_only` (the render
/// asks for a whole read where a filtered one cannot give exact figures), and with
/// configs only when the cached ones are older than `--jsz-config-interval` or an object
/// has none yet. So configs are at most that old, except that a change is seen at once
/// where it creates a stream or consumer or moves a stream's leader.
async fn fetch_jsz(
    ctx: &PollContext,
    node: &Node,
    memory: &NodeMemory,
    leader_only: bool,
) -> Result<Jsz, PollError> {
    let now = Instant::now();
    let lock = || {
        memory
            .configs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    };
    let due = lock().due(now, ctx.settings.jsz_config_interval);
    let mut j = read_jsz(ctx, node, &jsz::path(due, leader_only)).await?;
    if due || !lock().fill(&mut j) {
        if !due {
            j = read_jsz(ctx, node, &jsz::path(true, leader_only)).await?;
        }
        lock().remember(&j, now);
    }
    j.stream_leader_only = leader_only;
    Ok(j)
}

/// `/jsz` pages its account list; walk the pages so large multi-tenant servers are whole.
async fn read_jsz(ctx: &PollContext, node: &Node, query: &str) -> Result<Jsz, PollError> {
    let mut guard = PageGuard::new(jsz::ACCOUNT_PAGE);
    let mut offset = 0;
    let mut all: Option<Jsz> = None;
    loop {
        let path = format!("{query}&offset={offset}&limit={}", jsz::ACCOUNT_PAGE);
        let page: Jsz = request(ctx, node, Endpoint::Jsz, &path, &[]).await?;
        guard.check(
            offset as u64,
            None,
            page.total,
            page.account_details.first().map(|a| a.name.clone()),
        )?;
        let n = page.account_details.len();
        let total = match &mut all {
            None => {
                let t = page.total;
                all = Some(page);
                t
            }
            Some(a) => {
                a.account_details.extend(page.account_details);
                a.total
            }
        };
        // 2.10.28 and later say how many accounts there are, which saves an empty page.
        if n < jsz::ACCOUNT_PAGE || total.is_some_and(|t| (offset + n) as u64 >= t) {
            break;
        }
        offset += n;
    }
    Ok(all.unwrap_or_default())
}

async fn fetch_connz(ctx: &PollContext, node: &Node) -> Result<ConnzSummary, PollError> {
    let s = &ctx.settings;
    let mut summary = ConnzSummary::default();
    let mut guard = PageGuard::new(s.connz_page_size);
    let mut offset = 0;
    let detail = s.connection_metrics_limit > 0;
    if !detail && !s.connz_all_pages {
        // One connection, the most backed-up: the server's count and the largest pending
        // need no more, and every page costs the server a sort of all its connections.
        let page: connz::ConnzCounters =
            request(ctx, node, Endpoint::Connz, connz::TOP_PENDING_PATH, &[]).await?;
        summary.absorb_top(page);
        return Ok(summary);
    }
    loop {
        let path = connz::page_path(offset, s.connz_page_size, detail);
        let next = if detail {
            let page: connz::Connz = request(ctx, node, Endpoint::Connz, &path, &[]).await?;
            let first = page.connections.first().map(|c| c.cid);
            guard.check(offset, Some(page.offset), Some(page.total), first)?;
            summary.absorb(page, s.connection_metrics_limit)
        } else {
            let page: connz::ConnzCounters =
                request(ctx, node, Endpoint::Connz, &path, &[]).await?;
            let first = page.connections.first().map(|c| c.cid);
            guard.check(offset, Some(page.offset), Some(page.total), first)?;
            summary.absorb_counters(page)
        };
        match next {
            None => break,
            Some(next) if next >= s.connz_max_connections => {
                summary.truncated = true;
                break;
            }
            Some(next) => offset = next,
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn raftz_is_asked_for_accounts_with_streams_with_their_replicated_groups() {
        let j: Jsz = serde_json::from_str(
            r#"{"account_details": [
              {"name": "A", "stream_detail": [
                {"name": "ORDERS", "cluster": {"leader": "n1", "replicas": [{"name": "n2"}]},
                 "consumer_detail": [
                   {"name": "billing", "cluster": {"leader": "n1", "replicas": [{"name": "n2"}]}},
                   {"name": "r1", "cluster": {"leader": "n1"}}]},
                {"name": "R1", "cluster": {"leader": "n1", "replicas": null}}]},
              {"name": "EMPTY", "stream_detail": null},
              {"name": "B/x y", "stream_detail": [{"name": "E"}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            raft_accounts(Some(&j)),
            vec![("A".to_string(), 2), ("B/x y".to_string(), 0)]
        );
        assert!(raft_accounts(None).is_empty());
        assert_eq!(query_escape("B/x y"), "B%2Fx%20y");
        assert_eq!(query_escape("ACC-1_a.b~"), "ACC-1_a.b~");
    }

    fn up_poll() -> NodePoll {
        NodePoll {
            varz: Some(Default::default()),
            finished_at: Some(SystemTime::now()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_poller_that_stops_leaves_its_node_down_not_stale() {
        let store = Store::new(["n1"]);
        let updated = Notify::new();
        let token = CancellationToken::new();
        store.update("n1", up_poll());
        drop(DownOnDrop {
            store: &store,
            updated: &updated,
            node: "n1",
            token: &token,
        });
        let st = &store.nodes()["n1"];
        assert!(!st.poll.up());
        assert!(st.poll.finished_at.is_some(), "rendered as nats_up 0");
        assert_eq!(st.poll.errors[&Endpoint::Varz], POLLER_STOPPED);
        tokio::time::timeout(Duration::from_secs(1), updated.notified())
            .await
            .expect("the renderer is told");
    }

    #[tokio::test]
    async fn a_shutdown_keeps_the_last_poll() {
        let store = Store::new(["n1"]);
        let updated = Notify::new();
        let token = CancellationToken::new();
        store.update("n1", up_poll());
        token.cancel();
        drop(DownOnDrop {
            store: &store,
            updated: &updated,
            node: "n1",
            token: &token,
        });
        assert!(store.nodes()["n1"].poll.up());
    }

    #[tokio::test]
    async fn a_panicking_poller_is_started_again_and_its_node_is_down_meanwhile() {
        let store = Arc::new(Store::new(["n1"]));
        let updated = Arc::new(Notify::new());
        let token = CancellationToken::new();
        let starts = Arc::new(AtomicUsize::new(0));
        let seen_down = Arc::new(AtomicBool::new(false));
        let (s, u, t, n, d) = (
            store.clone(),
            updated.clone(),
            token.clone(),
            starts.clone(),
            seen_down.clone(),
        );
        supervise("n1", &token, Duration::from_millis(1), move || {
            let (store, updated, token) = (s.clone(), u.clone(), t.clone());
            let (starts, seen_down) = (n.clone(), d.clone());
            async move {
                let _down = DownOnDrop {
                    store: &store,
                    updated: &updated,
                    node: "n1",
                    token: &token,
                };
                if starts.fetch_add(1, Ordering::SeqCst) == 0 {
                    store.update("n1", up_poll());
                    panic!("boom");
                }
                // Started again: the panicked run left the node down.
                seen_down.store(!store.nodes()["n1"].poll.up(), Ordering::SeqCst);
                token.cancel();
            }
        })
        .await;
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        assert!(seen_down.load(Ordering::SeqCst));
    }

    #[test]
    fn a_404_is_remembered_until_the_retry() {
        let m = NodeMemory::default();
        let now = Instant::now();
        assert!(!m.skip(Endpoint::Subsz, now));
        assert!(m.set_absent(Endpoint::Subsz, now), "said the first time");
        assert!(m.skip(Endpoint::Subsz, now + Duration::from_secs(1)));
        assert!(!m.skip(Endpoint::Accstatz, now));
        assert!(!m.skip(Endpoint::Subsz, now + ABSENT_RETRY));
        assert!(
            !m.set_absent(Endpoint::Subsz, now + ABSENT_RETRY),
            "not again"
        );
        assert!(m.set_present(Endpoint::Subsz));
        assert!(!m.skip(Endpoint::Subsz, now + Duration::from_secs(1)));
        m.set_absent(Endpoint::Routez, now);
        m.forget_absent();
        assert!(!m.skip(Endpoint::Routez, now + Duration::from_secs(1)));
    }
}
