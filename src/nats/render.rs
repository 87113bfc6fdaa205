//! Owns the render loop: whenever a poller reports, it rebuilds the NATS exposition from
//! every node's latest poll and stores it, so that a scrape does no work but copying.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::aggregate::{NodeInput, collect_all};
use super::leader_view::Memory;
use super::metrics::Metrics;
use super::snapshot::{Rendered, Store};
use crate::config::Settings;

/// Renders the NATS snapshot whenever a poller reports, once per round of polls: after
/// the first report it waits for every other node's, up to a window, so that N nodes
/// finishing a cycle tens of milliseconds apart cost one render instead of N (rendering a
/// large cluster is most of natsmon's CPU).
pub async fn run(
    store: Arc<Store>,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    updated: Arc<Notify>,
    token: CancellationToken,
) {
    // What the view remembers between renders (streams whose nodes are all away).
    let memory = Arc::new(Mutex::new(Memory::default()));
    // Every node's report count at the last render.
    let mut seen = BTreeMap::new();
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = updated.notified() => {}
        }
        let deadline = tokio::time::Instant::now()
            + round_window(settings.poll_interval, settings.poll_timeout);
        while !store.all_reported_since(&seen) {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep_until(deadline) => break,
                _ = updated.notified() => {}
            }
        }
        // The reports that came meanwhile are in this render: drop the permit they left,
        // or it would start a second render of the same round at once.
        let _ = futures::FutureExt::now_or_never(updated.notified());
        seen = store.reports();
        let store2 = store.clone();
        let settings2 = settings.clone();
        let memory2 = memory.clone();
        let started = Instant::now();
        // Rendering a large cluster takes milliseconds of CPU; keep it off the reactor.
        let r = tokio::task::spawn_blocking(move || {
            let mut memory = memory2.lock().unwrap_or_else(PoisonError::into_inner);
            render(&store2, &settings2, &mut memory)
        })
        .await;
        match r {
            Ok((rendered, series)) => {
                metrics.render_duration.set(started.elapsed().as_secs_f64());
                metrics.render_bytes.set(rendered.openmetrics.len() as i64);
                metrics.render_series.set(series as i64);
                metrics.renders.inc();
                store.set_rendered(rendered);
            }
            Err(e) => tracing::error!(error = %e, "Render task failed."),
        }
    }
}

/// How long a render waits, after the first report of a round, for the other nodes'.
/// Pollers tick together, so a healthy round ends within milliseconds, and a node that
/// does not answer ends its round at the poll timeout: waiting that long (plus a margin)
/// renders a round with a dead node once, not twice. The wait never exceeds half the
/// interval, so a node slower than that is rendered with the next round's.
fn round_window(poll_interval: Duration, poll_timeout: Duration) -> Duration {
    (poll_timeout + Duration::from_millis(250))
        .min(poll_interval / 2)
        .max(Duration::from_millis(25))
}

/// One render: every node (configured or discovered) that has finished a poll, joined by its label.
/// Stores the cluster view beside it; returns the exposition and its series count.
pub fn render(store: &Store, settings: &Settings, memory: &mut Memory) -> (Rendered, usize) {
    let nodes = store.nodes();
    let inputs: Vec<NodeInput<'_>> = super::snapshot::ordered(&settings.nodes, &nodes)
        .into_iter()
        .filter_map(|(name, _, st)| {
            st.poll.finished_at.is_some().then_some(NodeInput {
                node: name,
                poll: &st.poll,
                known: st.last_known.as_ref(),
            })
        })
        .collect();
    let (set, view) = collect_all(&inputs, &settings.consumers, memory);
    store.set_view(view);
    let series = set.len();
    let rendered = Rendered::new(set.encode_openmetrics());
    memory.keep_last(set);
    (rendered, series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_outlasts_the_timeout_within_half_the_interval() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        // Defaults: 15 s interval, 4 s timeout.
        assert_eq!(round_window(s(15), s(4)), ms(4250));
        assert_eq!(round_window(s(2), ms(500)), ms(750));
        assert_eq!(round_window(s(1), s(1)), ms(500));
        assert_eq!(round_window(ms(40), ms(10)), ms(25));
    }
}
