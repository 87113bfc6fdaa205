//! Owns the per-node poll loop: every interval it fetches all endpoints of one node
//! concurrently, each with its own timeout, records each outcome once (log line and
//! metric), and replaces the node's snapshot. Nodes have independent loops, so a slow or
//! dead node never delays another.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::client::NatsClient;
use super::connz::{self, ConnzSummary};
use super::jsz::{self, Jsz};
use super::snapshot::{NodePoll, Store};
use super::{Endpoint, PollError, accstatz, gatewayz, healthz, leafz, routez, subsz, varz};
use crate::config::{Node, Settings};
use crate::nats::metrics::{ErrorLabels, Metrics};

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

pub async fn run(ctx: Arc<PollContext>, node: Node, token: CancellationToken) {
    let mut tick = tokio::time::interval(ctx.settings.poll_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut was_up: Option<bool> = None;
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tick.tick() => {}
        }
        let poll = tokio::select! {
            _ = token.cancelled() => break,
            p = poll_node(&ctx, &node) => p,
        };
        let up = poll.up();
        if was_up != Some(up) {
            if up {
                info!(node = %node.name, url = %node.display, "Node is up.");
            } else {
                warn!(node = %node.name, url = %node.display, "Node is down.");
            }
            was_up = Some(up);
        }
        if up {
            ctx.ready.store(true, Ordering::Relaxed);
        }
        ctx.store.update(&node.name, poll);
        ctx.updated.notify_one();
    }
    debug!(node = %node.name, "Poller stopped.");
}

/// One poll cycle of one node: all endpoints, then the optional ones `/varz` asks for.
pub async fn poll_node(ctx: &PollContext, node: &Node) -> NodePoll {
    let started = Instant::now();
    let mut poll = NodePoll::default();
    let (varz, jsz, connz, routez, healthz, accstatz, subsz) = tokio::join!(
        fetch::<varz::Varz>(ctx, node, Endpoint::Varz, varz::PATH, &[]),
        fetch_jsz(ctx, node),
        fetch_connz(ctx, node),
        fetch::<routez::Routez>(ctx, node, Endpoint::Routez, routez::PATH, &[]),
        // An unhealthy server answers 503 with its reasons in the body.
        fetch::<healthz::Healthz>(ctx, node, Endpoint::Healthz, healthz::PATH, &[503]),
        fetch::<accstatz::Accstatz>(ctx, node, Endpoint::Accstatz, accstatz::PATH, &[]),
        fetch::<subsz::Subsz>(ctx, node, Endpoint::Subsz, subsz::PATH, &[]),
    );
    poll.varz = keep(&mut poll, Endpoint::Varz, varz);
    poll.jsz = keep(&mut poll, Endpoint::Jsz, jsz);
    poll.connz = keep(&mut poll, Endpoint::Connz, connz);
    poll.routez = keep(&mut poll, Endpoint::Routez, routez);
    poll.healthz = keep(&mut poll, Endpoint::Healthz, healthz);
    poll.accstatz = keep(&mut poll, Endpoint::Accstatz, accstatz);
    poll.subsz = keep(&mut poll, Endpoint::Subsz, subsz);
    if let Some(v) = &poll.varz {
        let (gw, leaf) = (v.gateway_configured(), v.leafnodes_configured());
        let (g, l) = tokio::join!(
            async {
                if gw {
                    Some(
                        fetch::<gatewayz::Gatewayz>(
                            ctx,
                            node,
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
                    Some(fetch::<leafz::Leafz>(ctx, node, Endpoint::Leafz, leafz::PATH, &[]).await)
                } else {
                    None
                }
            },
        );
        if let Some(g) = g {
            poll.gatewayz = keep(&mut poll, Endpoint::Gatewayz, g);
        }
        if let Some(l) = l {
            poll.leafz = keep(&mut poll, Endpoint::Leafz, l);
        }
    }
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

fn keep<T>(poll: &mut NodePoll, e: Endpoint, r: Result<T, PollError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(err) => {
            poll.errors.insert(e, err.to_string());
            None
        }
    }
}

/// Fetches one endpoint request and records its outcome: counters, duration, size, and
/// on failure one WARN line and one error count with the reason.
async fn fetch<T: DeserializeOwned>(
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
    match r {
        Ok(f) => {
            m.poll_response_bytes
                .get_or_create(&labels)
                .inc_by(f.bytes as u64);
            m.poll_last_success
                .get_or_create(&labels)
                .set(crate::time::unix_now_f64());
            Ok(f.value)
        }
        Err(err) => {
            m.poll_errors
                .get_or_create(&ErrorLabels {
                    node: node.name.clone(),
                    endpoint: e.into(),
                    reason: err.reason(),
                })
                .inc();
            warn!(node = %node.name, endpoint = %e, reason = %err.reason(), error = %err, "Poll failed.");
            Err(err)
        }
    }
}

/// `/jsz` pages its account list; walk the pages so large multi-tenant servers are whole.
async fn fetch_jsz(ctx: &PollContext, node: &Node) -> Result<Jsz, PollError> {
    let mut offset = 0;
    let mut all: Option<Jsz> = None;
    loop {
        let path = format!("{}&offset={offset}&limit={}", jsz::PATH, jsz::ACCOUNT_PAGE);
        let page: Jsz = fetch(ctx, node, Endpoint::Jsz, &path, &[]).await?;
        let n = page.account_details.len();
        match &mut all {
            None => all = Some(page),
            Some(a) => a.account_details.extend(page.account_details),
        }
        if n < jsz::ACCOUNT_PAGE {
            break;
        }
        offset += n;
    }
    Ok(all.unwrap_or_default())
}

async fn fetch_connz(ctx: &PollContext, node: &Node) -> Result<ConnzSummary, PollError> {
    let s = &ctx.settings;
    let mut summary = ConnzSummary::default();
    let mut offset = 0;
    let detail = s.connection_metrics_limit > 0;
    loop {
        let path = connz::page_path(offset, s.connz_page_size, detail);
        let next = if detail {
            let page: connz::Connz = fetch(ctx, node, Endpoint::Connz, &path, &[]).await?;
            summary.absorb(page, s.connection_metrics_limit)
        } else {
            let page: connz::ConnzCounters = fetch(ctx, node, Endpoint::Connz, &path, &[]).await?;
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
