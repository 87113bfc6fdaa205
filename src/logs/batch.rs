//! Owns batching and delivery: entries are grouped by Loki stream, ordered by time within
//! each stream, and flushed by size, count or age. A batch is retried until Loki answers
//! (as long as the outage lasts: nothing is dropped after N tries); a 400 is counted as
//! rejected with Loki's reason and not retried; a 413 splits the batch. Checkpoints move
//! only past acknowledged entries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::checkpoint::Checkpoints;
use super::metrics::{LogMetrics, ReasonLabels};
use super::service::{LokiClient, Outcome, PushError};
use super::wire::{self, StreamRef};
use super::{InFlight, LogEntry};
use crate::backoff::Backoff;
use crate::config::LogSettings;
use crate::time::unix_now_ns;

pub struct Batcher {
    pub settings: LogSettings,
    pub client: LokiClient,
    pub checkpoints: Arc<Checkpoints>,
    pub metrics: Arc<LogMetrics>,
    pub in_flight: Arc<InFlight>,
    /// Time allowed to flush after shutdown starts.
    pub grace: Duration,
}

enum Delivery {
    Done,
    /// Shutdown's grace period ran out before Loki took the batch.
    Abandoned,
}

impl Batcher {
    pub async fn run(self, mut rx: mpsc::UnboundedReceiver<LogEntry>, token: CancellationToken) {
        // Reachability before anything is pushed; every push answer updates it after.
        let ready = tokio::select! {
            r = tokio::time::timeout(Duration::from_secs(2), self.client.ready()) => r.unwrap_or(false),
            _ = token.cancelled() => false,
        };
        self.metrics.loki_up.set(i64::from(ready));
        let mut batch: Vec<LogEntry> = Vec::new();
        let mut bytes = 0usize;
        let mut oldest: Option<Instant> = None;
        let mut deadline: Option<Instant> = None;
        let mut tick = tokio::time::interval(self.settings.checkpoint_interval);
        loop {
            let flush_at = oldest.map(|t| t + self.settings.batch_max_wait);
            let closed = tokio::select! {
                biased;
                e = rx.recv() => match e {
                    Some(e) => {
                        bytes += e.line.text.len();
                        oldest.get_or_insert_with(Instant::now);
                        batch.push(e);
                        false
                    }
                    None => true,
                },
                _ = async { tokio::time::sleep_until(flush_at.unwrap().into()).await }, if flush_at.is_some() => false,
                _ = token.cancelled(), if deadline.is_none() => {
                    deadline = Some(Instant::now() + self.grace.mul_f64(0.8));
                    false
                }
                _ = tick.tick() => {
                    self.update_gauges();
                    self.heartbeat();
                    false
                }
            };
            let due = closed
                || bytes >= self.settings.batch_max_bytes
                || batch.len() >= self.settings.batch_max_entries
                || oldest.is_some_and(|t| t.elapsed() >= self.settings.batch_max_wait);
            if due && !batch.is_empty() {
                let b = std::mem::take(&mut batch);
                bytes = 0;
                oldest = None;
                if let Delivery::Abandoned = self.deliver(b, &mut deadline, &token).await {
                    warn!(
                        "Shutdown grace period ended before Loki accepted the last batch; it will be re-read on restart."
                    );
                    break;
                }
                self.save_checkpoints();
            }
            if closed {
                break;
            }
        }
        self.update_gauges();
        self.save_checkpoints();
    }

    /// Marks natsmon as watching, so that a later start knows which stopped containers
    /// ran while it was away.
    fn heartbeat(&self) {
        let now = unix_now_ns();
        self.checkpoints.touch(now);
        self.save_checkpoints();
    }

    fn save_checkpoints(&self) {
        if let Err(e) = self.checkpoints.save() {
            self.metrics
                .checkpoint_errors
                .get_or_create(&ReasonLabels { reason: e.reason() })
                .inc();
            warn!(error = %e, "Saving checkpoints failed.");
        }
    }

    pub fn update_gauges(&self) {
        let now = unix_now_ns();
        for (name, lag) in self.in_flight.lags(now) {
            self.metrics
                .lag
                .get_or_create(&LogMetrics::container(&name))
                .set(lag);
        }
        self.metrics
            .buffered_lines
            .set(self.in_flight.total() as i64);
        self.metrics
            .buffered_bytes
            .set(self.in_flight.total_bytes() as i64);
    }

    /// Delivers a batch, splitting it on 413. Stops retrying only at the shutdown deadline.
    async fn deliver(
        &self,
        batch: Vec<LogEntry>,
        deadline: &mut Option<Instant>,
        token: &CancellationToken,
    ) -> Delivery {
        let mut stack = vec![batch];
        let mut backoff = Backoff::new(self.settings.retry_max_backoff);
        while let Some(b) = stack.pop() {
            let body = encode(self.settings.format, &b);
            let started = Instant::now();
            let r = self.client.push(body).await;
            self.metrics
                .push_duration
                .observe(started.elapsed().as_secs_f64());
            match r {
                Ok(Outcome::Accepted) => {
                    self.metrics.loki_up.set(1);
                    backoff.reset();
                    self.ack(&b);
                }
                Ok(Outcome::Rejected { status, message }) => {
                    self.metrics.loki_up.set(1);
                    let reason = if status == 400 {
                        "bad_request"
                    } else {
                        "client_error"
                    };
                    self.metrics
                        .lines_rejected
                        .get_or_create(&ReasonLabels { reason })
                        .inc_by(b.len() as u64);
                    warn!(status, lines = b.len(), loki_message = %message, "Loki rejected a batch; it is not retried.");
                    // Loki stored what it could; the rest will never be accepted.
                    self.ack(&b);
                }
                Ok(Outcome::TooLarge) if b.len() > 1 => {
                    let mut b = b;
                    let second = b.split_off(b.len() / 2);
                    info!(
                        lines = b.len() + second.len(),
                        "Loki answered 413; splitting the batch."
                    );
                    stack.push(second);
                    stack.push(b);
                }
                Ok(Outcome::TooLarge) => {
                    self.metrics
                        .lines_rejected
                        .get_or_create(&ReasonLabels {
                            reason: "too_large",
                        })
                        .inc();
                    warn!(container = %b[0].container_name, bytes = b[0].line.text.len(), "Loki refused a single line as too large.");
                    self.ack(&b);
                }
                Err(e) => {
                    self.metrics.loki_up.set(0);
                    // Lag keeps growing while we wait; keep the gauge honest.
                    self.update_gauges();
                    self.metrics
                        .push_retries
                        .get_or_create(&ReasonLabels { reason: e.reason() })
                        .inc();
                    let delay = match &e {
                        PushError::RateLimited {
                            retry_after: Some(d),
                        } => *d,
                        _ => backoff.next_delay(),
                    };
                    warn!(url = %self.settings.display_url, reason = e.reason(), error = %e, retry_in = ?delay, lines = b.len(), "Push to Loki failed; retrying.");
                    stack.push(b);
                    if deadline.is_some_and(|d| Instant::now() + delay >= d) {
                        return Delivery::Abandoned;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        // Shutdown bounds the retries that are left by the grace period.
                        _ = token.cancelled(), if deadline.is_none() => {
                            *deadline = Some(Instant::now() + self.grace.mul_f64(0.8));
                        }
                    }
                }
            }
        }
        Delivery::Done
    }

    fn ack(&self, batch: &[LogEntry]) {
        for e in batch {
            self.checkpoints.advance(&e.container_id, e.line.pos);
            self.in_flight.done(&e.container_id);
            self.metrics
                .lines_sent
                .get_or_create(&LogMetrics::container(&e.container_name))
                .inc();
        }
        self.update_gauges();
    }
}

/// Groups a batch by stream and orders each stream by time, as Loki prefers.
fn encode(format: wire::Format, batch: &[LogEntry]) -> Vec<u8> {
    let mut streams: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
    for e in batch {
        streams
            .entry(&e.labels)
            .or_default()
            .push((e.line.ts_ns, &e.line.text));
    }
    let refs: Vec<StreamRef<'_>> = streams
        .into_iter()
        .map(|(labels, mut entries)| {
            entries.sort_by_key(|(ts, _)| *ts);
            StreamRef { labels, entries }
        })
        .collect();
    wire::encode(format, &refs)
}
