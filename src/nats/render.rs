//! Owns the render loop: whenever a poller reports, it rebuilds the NATS exposition from
//! every node's latest poll and stores it, so that a scrape does no work but copying.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::snapshot::{NodePoll, Rendered, Store};
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
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = updated.notified() => {}
        }
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(25)) => {}
        }
        let store2 = store.clone();
        let settings2 = settings.clone();
        let started = Instant::now();
        // Rendering a large cluster takes milliseconds of CPU; keep it off the reactor.
        let r = tokio::task::spawn_blocking(move || render(&store2, &settings2)).await;
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

/// One render: every configured node that has finished a poll, joined by its label.
pub fn render(store: &Store, settings: &Settings) -> (Rendered, usize) {
    let nodes = store.nodes();
    let polls: Vec<(&str, &NodePoll)> = settings
        .nodes
        .iter()
        .filter_map(|n| {
            let st = nodes.get(&n.name)?;
            st.poll
                .finished_at
                .is_some()
                .then_some((n.name.as_str(), &*st.poll))
        })
        .collect();
    let set = super::aggregate::collect(&polls, &settings.consumers);
    let series = set.len();
    (Rendered::new(set.encode_openmetrics()), series)
}
