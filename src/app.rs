//! Owns the program's lifetime: builds the subsystems from `Settings`, runs them under
//! one `CancellationToken` and `TaskTracker`, and shuts down within the grace period.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::{ConfigError, Node, Settings};
use crate::console::Console;
use crate::http::listener::Listener;
use crate::http::{AppState, BasicAuth};
use crate::logs::status::ShipperStatus;
use crate::nats::client::NatsClient;
use crate::nats::discovery::Discovery;
use crate::nats::metrics::Metrics;
use crate::nats::poller::{self, PollContext};
use crate::nats::snapshot::Store;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Listen(#[from] crate::http::listener::ListenError),
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Checkpoint(#[from] crate::logs::checkpoint::CheckpointError),
}

/// Wires the log shipper: supervisor and tailers, the byte-bounded buffer, the batcher.
/// Returns the status handle the console reads.
fn start_log_shipping(
    logs: &crate::config::LogSettings,
    grace: std::time::Duration,
    registry: &mut Registry,
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> Result<Arc<ShipperStatus>, AppError> {
    use crate::logs::{
        InFlight, batch::Batcher, checkpoint::Checkpoints, metrics::LogMetrics,
        supervisor::Supervisor,
    };
    let metrics = Arc::new(LogMetrics::register(registry));
    // Before anything is read: a state dir that refuses writes stops natsmon here, and a
    // corrupt positions file is kept aside and counted.
    let checkpoints = Arc::new(Checkpoints::open(&logs.state_dir, &metrics)?);
    let client = crate::logs::service::LokiClient::new(logs)?;
    let in_flight = Arc::new(InFlight::default());
    let status = Arc::new(ShipperStatus::default());
    let buffer = Arc::new(tokio::sync::Semaphore::new(logs.buffer_max_bytes));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let flush = Arc::new(Notify::new());
    let own_id = crate::logs::container::own_container_id();
    info!(
        loki = %logs.display_url,
        docker = %crate::redact::redact_url(&logs.docker_host),
        state_dir = %logs.state_dir.display(),
        own_container = ?own_id,
        "Shipping container logs."
    );
    let supervisor = Supervisor {
        settings: logs.clone(),
        metrics: metrics.clone(),
        checkpoints: checkpoints.clone(),
        in_flight: in_flight.clone(),
        status: status.clone(),
        buffer,
        tx,
        flush: flush.clone(),
        own_id,
    };
    let batcher = Batcher {
        settings: logs.clone(),
        client,
        checkpoints,
        metrics,
        in_flight,
        status: status.clone(),
        grace,
        flush,
    };
    tracker.spawn(supervisor.run(token.child_token()));
    tracker.spawn(batcher.run(rx, token.child_token()));
    Ok(status)
}

/// Runs until `token` is cancelled, then stops every task within the grace period.
pub async fn run(settings: Settings, token: CancellationToken) -> Result<(), AppError> {
    let started_at = std::time::SystemTime::now();
    let settings = Arc::new(settings);
    let listener = Listener::bind(settings.listen, settings.web.tls.as_ref()).await?;
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register_for(
        &mut registry,
        settings.roles.exporter,
    ));
    // With discovery, an unnamed URL is only a seed: the server behind it is polled as a
    // discovered member, labelled by its server name. A named one keeps its name.
    let polled: Vec<&Node> = settings
        .nodes
        .iter()
        .filter(|n| settings.discovery.is_none() || n.named)
        .collect();
    let store = Arc::new(Store::new(polled.iter().map(|n| n.name.as_str())));
    let ready = Arc::new(AtomicBool::new(false));
    let updated = Arc::new(Notify::new());
    let client = NatsClient::new(
        &settings.nats_tls,
        settings.poll_timeout,
        settings.max_response_bytes,
    )?;
    if settings.poll_timeout >= settings.poll_interval {
        warn!(
            poll_timeout = ?settings.poll_timeout,
            poll_interval = ?settings.poll_interval,
            "Poll timeout is not below the poll interval; a slow node will be polled back to back."
        );
    }

    let tracker = TaskTracker::new();
    let shipper = match &settings.logs {
        Some(logs) => Some(start_log_shipping(
            logs,
            settings.shutdown_grace,
            &mut registry,
            &tracker,
            &token,
        )?),
        None => None,
    };
    let ctx = Arc::new(PollContext {
        client,
        settings: settings.clone(),
        metrics: metrics.clone(),
        store: store.clone(),
        updated: updated.clone(),
        ready: ready.clone(),
    });
    for node in polled {
        info!(node = %node.name, url = %node.display, "Polling node.");
        if node.looks_like_client_port() {
            warn!(node = %node.name, url = %node.display, "Port 4222 is usually the NATS client port, which does not speak HTTP; natsmon needs the HTTP monitoring port (`http: 8222` in the server's config).");
        }
        tracker.spawn(poller::run(ctx.clone(), node.clone(), token.child_token()));
    }
    // A shipper-only natsmon has no nodes: no poller, no discovery, no render, no NATS
    // series.
    if settings.roles.exporter {
        if let Some(d) = &settings.discovery {
            info!(
                seeds = settings.nodes.len(),
                port = ?d.port,
                grace = %humantime::format_duration(d.grace),
                "Discovering cluster members from the seeds."
            );
            let discovery = Discovery::new(
                ctx.clone(),
                tracker.clone(),
                d.clone(),
                settings.nodes.clone(),
            );
            tracker.spawn(discovery.run(token.child_token()));
        }
        tracker.spawn(crate::nats::render::run(
            store.clone(),
            settings.clone(),
            metrics.clone(),
            updated,
            token.child_token(),
        ));
    }

    let state = AppState {
        store,
        registry: Arc::new(registry),
        metrics,
        ready,
        settings: settings.clone(),
        auth: Arc::new(BasicAuth::new(settings.web.basic_auth_users.clone())),
        console: Arc::new(Console::new(started_at, shipper)),
    };
    let app = crate::http::router(state);
    // One grace period for everything, counted from the moment shutdown began: the HTTP
    // server may spend it all, and the other tasks get only what is left, not another.
    let shutdown_began = Arc::new(std::sync::OnceLock::new());
    tracker.spawn({
        let token = token.clone();
        let began = shutdown_began.clone();
        async move {
            token.cancelled().await;
            let _ = began.set(tokio::time::Instant::now());
        }
    });
    let serve_result = listener
        .serve(app, settings.shutdown_grace, &tracker, &token)
        .await;
    // The server only returns early on error; make sure everything else stops too.
    token.cancel();
    tracker.close();
    let began = shutdown_began
        .get()
        .copied()
        .unwrap_or_else(tokio::time::Instant::now);
    if tokio::time::timeout_at(began + settings.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        warn!(grace = ?settings.shutdown_grace, "Tasks did not stop within the grace period.");
    }
    serve_result.map_err(AppError::Serve)
}
