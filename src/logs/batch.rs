//! Owns batching and delivery: entries are grouped by Loki stream, ordered by time within
//! each stream, and flushed by size, count or age. A batch is retried until Loki answers
//! (as long as the outage lasts: nothing is dropped after N tries); a 400 is counted as
//! rejected with Loki's reason and not retried; a 413 splits the batch. Checkpoints move
//! only past acknowledged entries.
//!
//! A Loki outage is one incident: one WARN at the first failed push, one INFO at the first
//! push accepted after it, every failed attempt counted. At shutdown the grace period is
//! spent delivering: retries come quickly, until 80% of the grace has passed (the rest
//! is for saving checkpoints); whatever Loki has not taken by then is read again on the
//! next start.
//!
//! Lines carry structured metadata (`metadata.rs`) unless it is off. A Loki that refuses
//! it (a 400 naming it: `allow_structured_metadata` off, or a schema before v13) is told
//! once, and the same batch and every later one go again without it: nothing is lost to
//! the refusal. The lines Loki did keep from the refused push (those without metadata)
//! come again identical, and Loki ignores an exact duplicate within a stream.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::checkpoint::Checkpoints;
use super::metadata::nats_fields;
use super::metrics::{LogMetrics, ReasonLabels};
use super::service::{LokiClient, Outcome, PushError};
use super::status::{PushResult, ShipperStatus};
use super::wire::{self, EntryRef, StreamRef};
use super::{InFlight, Incident, LogEntry, Settled};
use crate::backoff::Backoff;
use crate::config::LogSettings;
use crate::time::unix_now_ns;

pub struct Batcher {
    pub settings: LogSettings,
    pub client: LokiClient,
    pub checkpoints: Arc<Checkpoints>,
    pub metrics: Arc<LogMetrics>,
    pub in_flight: Arc<InFlight>,
    /// What the console shows: updated wherever the metrics are.
    pub status: Arc<ShipperStatus>,
    /// Time allowed to flush after shutdown starts.
    pub grace: Duration,
    /// A tailer's stream ended: push what is batched once the channel is drained.
    pub flush: Arc<Notify>,
}

/// Cap of the backoff between push retries once shutdown has begun: the grace period is
/// short, and spent best on attempts.
const SHUTDOWN_RETRY_MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Share of the shutdown grace the batcher may spend delivering; the rest is for saving
/// checkpoints and stopping.
const SHUTDOWN_DELIVERY_SHARE: f64 = 0.8;

enum Delivery {
    Done,
    /// Shutdown's grace period ran out before Loki took the batch.
    Abandoned,
}

/// What delivery carries from one batch to the next.
#[derive(Default)]
struct Flow {
    /// Set when shutdown begins: retrying stops here.
    deadline: Option<Instant>,
    /// Loki refusing or unreachable.
    loki: Incident,
    /// Checkpoints failing to save.
    saving: Incident,
    /// Loki refused structured metadata once: every later push goes without it.
    without_metadata: bool,
}

impl Batcher {
    pub async fn run(self, mut rx: mpsc::UnboundedReceiver<LogEntry>, token: CancellationToken) {
        // Reachability before anything is pushed; every push answer updates it after.
        let ready = tokio::select! {
            r = tokio::time::timeout(Duration::from_secs(2), self.client.ready()) => r.unwrap_or(false),
            _ = token.cancelled() => false,
        };
        self.metrics.loki_up.set(i64::from(ready));
        self.status.set_loki_up(ready);
        let mut batch: Vec<LogEntry> = Vec::new();
        let mut bytes = 0usize;
        let mut oldest: Option<Instant> = None;
        let mut flow = Flow::default();
        let mut tick = tokio::time::interval(self.settings.checkpoint_interval);
        // Entries are taken up to this many at a time: one pass of the select (and of its
        // timer) per line was a good part of the batcher's CPU at full speed. What a full
        // batch leaves of them waits here for the next.
        const TAKE: usize = 512;
        let mut taken: Vec<LogEntry> = Vec::with_capacity(TAKE);
        // A container's stream ended: its last lines are in the channel before the word
        // arrives, so the batch goes once the channel is drained.
        let mut flush_asked = false;
        loop {
            let flush_at = oldest.map(|t| t + self.settings.batch_max_wait);
            let closed = if !taken.is_empty() {
                false
            } else {
                tokio::select! {
                    biased;
                    n = rx.recv_many(&mut taken, TAKE) => n == 0,
                    _ = async { tokio::time::sleep_until(flush_at.unwrap().into()).await }, if flush_at.is_some() => false,
                    _ = token.cancelled(), if flow.deadline.is_none() => {
                        flow.deadline = Some(self.shutdown_deadline());
                        false
                    }
                    _ = self.flush.notified() => {
                        flush_asked = true;
                        false
                    }
                    _ = tick.tick() => {
                        self.update_gauges();
                        self.heartbeat(&mut flow);
                        false
                    }
                }
            };
            // Into the batch until it is full, so that it keeps its bounds.
            let mut moved = 0;
            for e in &taken {
                if bytes >= self.settings.batch_max_bytes
                    || batch.len() >= self.settings.batch_max_entries
                {
                    break;
                }
                moved += 1;
                bytes += e.line.text.len();
            }
            if moved > 0 {
                oldest.get_or_insert_with(Instant::now);
                batch.extend(taken.drain(..moved));
            }
            let drained = flush_asked && taken.is_empty() && rx.is_empty();
            if drained {
                flush_asked = false;
            }
            let due = closed
                || drained
                || bytes >= self.settings.batch_max_bytes
                || batch.len() >= self.settings.batch_max_entries
                || oldest.is_some_and(|t| t.elapsed() >= self.settings.batch_max_wait);
            if due && !batch.is_empty() {
                let b = std::mem::take(&mut batch);
                bytes = 0;
                oldest = None;
                if let Delivery::Abandoned = self.deliver(b, &mut flow, &token).await {
                    warn!(
                        grace = ?self.grace,
                        unacknowledged_lines = self.in_flight.total(),
                        "Shutdown grace period ended before Loki accepted the last batch; it will be read again on the next start."
                    );
                    break;
                }
                self.save_checkpoints(&mut flow);
            }
            if closed {
                break;
            }
        }
        self.update_gauges();
        self.save_checkpoints(&mut flow);
    }

    /// When delivery must give up once shutdown has begun now.
    fn shutdown_deadline(&self) -> Instant {
        Instant::now() + self.grace.mul_f64(SHUTDOWN_DELIVERY_SHARE)
    }

    /// Marks natsmon as watching, so that a later start knows which stopped containers
    /// ran while it was away.
    fn heartbeat(&self, flow: &mut Flow) {
        let now = unix_now_ns();
        self.checkpoints.touch(now);
        self.save_checkpoints(flow);
    }

    /// Saves what changed. A failing disk fails every save: counted each time, told once.
    fn save_checkpoints(&self, flow: &mut Flow) {
        match self.checkpoints.save() {
            Ok(_) => {
                if let Some((down_for, failures)) = flow.saving.recover() {
                    info!(down_for = ?down_for, failed_saves = failures, "Saving checkpoints works again.");
                }
            }
            Err(e) => {
                self.status.record_error("checkpoint", e.to_string());
                self.metrics
                    .checkpoint_errors
                    .get_or_create(&ReasonLabels { reason: e.reason() })
                    .inc();
                if flow.saving.fail() {
                    warn!(error = %e, "Saving checkpoints failed; retrying at every checkpoint interval.");
                } else {
                    debug!(error = %e, "Saving checkpoints failed again.");
                }
            }
        }
    }

    pub fn update_gauges(&self) {
        let now = unix_now_ns();
        let mut max_lag = 0.0f64;
        for (name, lag) in self.in_flight.lags(now) {
            max_lag = max_lag.max(lag);
            self.metrics
                .lag
                .get_or_create(&LogMetrics::container(&name))
                .set(lag);
        }
        let (lines, bytes) = (self.in_flight.total(), self.in_flight.total_bytes());
        self.metrics.buffered_lines.set(lines as i64);
        self.metrics.buffered_bytes.set(bytes as i64);
        self.status.set_buffer(bytes, lines, max_lag);
    }

    /// Delivers a batch, splitting it on 413. Stops retrying only at the shutdown deadline.
    async fn deliver(
        &self,
        batch: Vec<LogEntry>,
        flow: &mut Flow,
        token: &CancellationToken,
    ) -> Delivery {
        let mut stack = vec![batch];
        let mut backoff = Backoff::new(self.settings.retry_max_backoff);
        let mut shutdown_backoff = false;
        while let Some(b) = stack.pop() {
            let metadata = self.settings.structured_metadata && !flow.without_metadata;
            let body = encode(self.settings.format, &b, metadata);
            let started = Instant::now();
            let Some(r) = self.push_within(body, &mut flow.deadline, token).await else {
                return Delivery::Abandoned;
            };
            let took = started.elapsed();
            self.metrics.push_duration.observe(took.as_secs_f64());
            self.status
                .record_push(push_result(&r, b.len()), b.len(), took);
            if r.is_ok() {
                self.metrics.loki_up.set(1);
                if let Some((down_for, failures)) = flow.loki.recover() {
                    info!(url = %self.settings.display_url, down_for = ?down_for, failed_attempts = failures, "Loki accepts pushes again.");
                }
            }
            match r {
                Ok(Outcome::Accepted) => {
                    backoff.reset();
                    self.ack(&b);
                }
                Ok(Outcome::Rejected {
                    status: 400,
                    message,
                }) if metadata && names_structured_metadata(&message) => {
                    flow.without_metadata = true;
                    self.metrics
                        .push_retries
                        .get_or_create(&ReasonLabels {
                            reason: "structured_metadata",
                        })
                        .inc();
                    warn!(loki_message = %message, lines = b.len(), "Loki refuses structured metadata; sending every line without it from now on. Enable allow_structured_metadata (schema v13 or later) in Loki to keep cid, remote_addr and account.");
                    self.status.record_error(
                        "loki",
                        format!(
                            "Loki refuses structured metadata, so lines go without it: {message}"
                        ),
                    );
                    stack.push(b);
                }
                Ok(Outcome::Rejected { status, message }) => {
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
                    self.status.record_error(
                        "loki",
                        format!(
                            "Loki rejected {} lines with HTTP {status}: {message}",
                            b.len()
                        ),
                    );
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
                    self.status.record_error(
                        "loki",
                        format!(
                            "Loki refused a line of {} bytes from {} as too large",
                            b[0].line.text.len(),
                            b[0].container_name
                        ),
                    );
                    self.ack(&b);
                }
                Err(e) => {
                    self.metrics.loki_up.set(0);
                    self.status.record_error("loki", e.to_string());
                    // Lag keeps growing while we wait; keep the gauge honest.
                    self.update_gauges();
                    self.metrics
                        .push_retries
                        .get_or_create(&ReasonLabels { reason: e.reason() })
                        .inc();
                    if flow.deadline.is_some() && !shutdown_backoff {
                        // The long waits of an outage would let the grace period pass idle.
                        backoff = Backoff::new(SHUTDOWN_RETRY_MAX_BACKOFF);
                        shutdown_backoff = true;
                    }
                    let delay = match &e {
                        PushError::RateLimited {
                            retry_after: Some(d),
                        } => *d,
                        _ => backoff.next_delay(),
                    };
                    if flow.loki.fail() {
                        warn!(url = %self.settings.display_url, reason = e.reason(), error = %e, retry_in = ?delay, lines = b.len(), "Push to Loki failed; retrying until Loki accepts it.");
                    } else {
                        debug!(url = %self.settings.display_url, reason = e.reason(), error = %e, retry_in = ?delay, lines = b.len(), "Push to Loki failed again.");
                    }
                    stack.push(b);
                    // Containers removed during the outage whose lines Loki already had
                    // were forgotten meanwhile; the file says so without waiting for Loki.
                    self.save_checkpoints(flow);
                    if flow.deadline.is_some_and(|d| Instant::now() + delay >= d) {
                        return Delivery::Abandoned;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        // Shutdown cuts the wait short: the next attempt starts now.
                        _ = token.cancelled(), if flow.deadline.is_none() => {
                            flow.deadline = Some(self.shutdown_deadline());
                        }
                    }
                }
            }
        }
        Delivery::Done
    }

    /// One push, bounded by the shutdown deadline once shutdown has begun (also when it
    /// begins while the push is under way); `None` when the deadline came first.
    async fn push_within(
        &self,
        body: Vec<u8>,
        deadline: &mut Option<Instant>,
        token: &CancellationToken,
    ) -> Option<Result<Outcome, PushError>> {
        let push = self.client.push(body);
        tokio::pin!(push);
        loop {
            match *deadline {
                None => tokio::select! {
                    r = &mut push => return Some(r),
                    _ = token.cancelled() => *deadline = Some(self.shutdown_deadline()),
                },
                Some(d) => tokio::select! {
                    r = &mut push => return Some(r),
                    _ = tokio::time::sleep_until(d.into()) => return None,
                },
            }
        }
    }

    fn ack(&self, batch: &[LogEntry]) {
        // A batch holds runs of one container's lines in read order: each run costs one
        // counter update, one checkpoint move (to its last line) and one in-flight lock.
        for run in batch.chunk_by(|a, b| a.container_id == b.container_id) {
            let (first, last) = (&run[0], &run[run.len() - 1]);
            self.metrics
                .lines_sent
                .get_or_create(&LogMetrics::container(&first.container_name))
                .inc_by(run.len() as u64);
            self.checkpoints.advance(&last.container_id, last.line.pos);
            let e = last;
            // A destroyed container's last line: nothing of it is left to resume, so its
            // position goes (saved below with the others) and its lag is over. Its other
            // series wait out the grace for Prometheus to see their final values.
            if self.in_flight.done_n(&e.container_id, run.len()) == Settled::Retired {
                self.checkpoints.forget(&e.container_id);
                self.metrics
                    .lag
                    .remove(&LogMetrics::container(&e.container_name));
            }
        }
        self.update_gauges();
    }
}

/// A push's answer as the console tells it; 413 splits unless the batch is one line.
fn push_result(r: &Result<Outcome, PushError>, lines: usize) -> PushResult {
    match r {
        Ok(Outcome::Accepted) => PushResult::Accepted,
        Ok(Outcome::Rejected { status, .. }) => PushResult::Rejected { status: *status },
        Ok(Outcome::TooLarge) if lines > 1 => PushResult::Split,
        Ok(Outcome::TooLarge) => PushResult::TooLarge,
        Err(e) => PushResult::Failed { reason: e.reason() },
    }
}

/// Loki's 400 for structured metadata it does not take ("includes structured metadata,
/// but this feature is disallowed", or a schema that lacks it) names it.
fn names_structured_metadata(message: &str) -> bool {
    message.to_ascii_lowercase().contains("structured metadata")
}

/// Groups a batch by stream and orders each stream by time, as Loki prefers.
fn encode(format: wire::Format, batch: &[LogEntry], metadata: bool) -> Vec<u8> {
    let mut streams: BTreeMap<&str, Vec<EntryRef<'_>>> = BTreeMap::new();
    for e in batch {
        streams.entry(&e.labels).or_default().push(EntryRef {
            ts_ns: e.line.ts_ns,
            line: &e.line.text,
            metadata: if metadata {
                nats_fields(&e.line.text)
            } else {
                Vec::new()
            },
        });
    }
    let refs: Vec<StreamRef<'_>> = streams
        .into_iter()
        .map(|(labels, mut entries)| {
            entries.sort_by_key(|e| e.ts_ns);
            StreamRef { labels, entries }
        })
        .collect();
    wire::encode(format, &refs)
}
