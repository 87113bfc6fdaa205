//! Owns the render loop: whenever a poller reports, it rebuilds the NATS exposition from
//! every node's latest poll and stores it, so that a scrape does no work but copying.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::aggregate::{NodeInput, collect_all};
use super::leader_view::Memory;
use super::metrics::Metrics;
use super::snapshot::{Rendered, Store};
use crate::config::Settings;

/// Renders the NATS snapshot whenever a poller reports, coalescing reports that arrive
/// together so that N nodes finishing at once cost one render.
pub async fn run(
    store: Arc<Store>,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    updated: Arc<Notify>,
    token: CancellationToken,
) {
    // What the view remembers between renders (streams whose nodes are all away).
    let memory = Arc::new(Mutex::new(Memory::default()));
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = updated.notified() => {}
        }
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(coalesce_window(settings.poll_interval)) => {}
        }
        // The reports that came during the window are in this render: drop the permit
        // they left, or it would start a second render of the same round at once.
        let _ = futures::FutureExt::now_or_never(updated.notified());
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
                store.set_rendered(rendered);
            }
            Err(e) => tracing::error!(error = %e, "Render task failed."),
        }
    }
}

/// How long a render waits after the first report of a round for the other nodes'.
/// Nodes poll independently, and their cycles end tens of milliseconds apart on a large
/// cluster: a window of a twentieth of the interval (25 ms to 500 ms) renders each
/// round once instead of once per node, and delays its figures by at most that.
fn coalesce_window(poll_interval: Duration) -> Duration {
    (poll_interval / 20).clamp(Duration::from_millis(25), Duration::from_millis(500))
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
    (Rendered::new(set.encode_openmetrics()), series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_scales_with_the_interval_within_bounds() {
        assert_eq!(
            coalesce_window(Duration::from_millis(300)),
            Duration::from_millis(25)
        );
        assert_eq!(
            coalesce_window(Duration::from_secs(5)),
            Duration::from_millis(250)
        );
        assert_eq!(
            coalesce_window(Duration::from_secs(15)),
            Duration::from_millis(500)
        );
    }
}
