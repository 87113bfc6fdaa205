//! Owns one container's follow-logs stream: it asks Docker for the logs from a resume
//! position, turns the records into labelled log entries that hold buffer space until
//! acknowledged, and on return says why it stopped and how far it read, so that the
//! supervisor can decide whether to start it again.

use std::sync::Arc;

use tokio::sync::{Notify, Semaphore, TryAcquireError, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::assemble::Assembler;
use super::checkpoint::Position;
use super::container::ContainerMeta;
use super::follow::{DockerAddr, FollowError, LogStream};
use super::level::{LEVELS, parse_level};
use super::metrics::{ALERTED_LEVELS, LogMetrics, ReasonLabels};
use super::wire::render_labels;
use super::{InFlight, LogEntry};
use crate::config::LogSettings;

/// Approximate memory of one buffered entry besides its text (struct, labels handle,
/// in-flight timestamp, channel slot).
const ENTRY_OVERHEAD: usize = 128;

/// Why a tailer returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Shutdown, or the supervisor stopped it (rename).
    Cancelled,
    /// Docker closed the stream: the container stopped, or the connection was cut.
    StreamEnded,
    /// Reading the stream failed; Docker's or the transport's message.
    StreamError(String),
    /// Docker answered the logs request with a client error or 501 (the container is
    /// being removed, or its log driver cannot be read): asking again would not help.
    Refused(String),
    /// The batcher is gone, so nothing read could be shipped anyway.
    ChannelClosed,
}

impl StopReason {
    /// Low-cardinality label of a stop the tailer did not ask for.
    pub fn reason(&self) -> &'static str {
        match self {
            StopReason::Cancelled => "cancelled",
            StopReason::StreamEnded => "stream_ended",
            StopReason::StreamError(_) => "stream_error",
            StopReason::Refused(_) => "refused",
            StopReason::ChannelClosed => "channel_closed",
        }
    }

    /// True when the stream broke by itself, so that a new one may carry on: not on
    /// request, not at shutdown, not when Docker refused it.
    pub fn unasked(&self) -> bool {
        matches!(self, StopReason::StreamEnded | StopReason::StreamError(_))
    }

    fn of_error(e: FollowError) -> StopReason {
        match e {
            FollowError::Status { status, .. } if (400..500).contains(&status) || status == 501 => {
                StopReason::Refused(e.to_string())
            }
            e => StopReason::StreamError(e.to_string()),
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Cancelled => f.write_str("stopped on request"),
            StopReason::StreamEnded => f.write_str("Docker ended the log stream"),
            StopReason::StreamError(e) | StopReason::Refused(e) => f.write_str(e),
            StopReason::ChannelClosed => f.write_str("the batcher stopped"),
        }
    }
}

/// How one run of a tailer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailerExit {
    pub reason: StopReason,
    /// The position of the last record read (skipped or not), else the resume position
    /// it started from: the next run resumes after it.
    pub last_read: Option<Position>,
    /// Whether it handed on any new line (records before the resume position don't count).
    pub read_any: bool,
}

pub struct Tailer {
    /// For the supervisor's calls about this container (inspect, rotation checks).
    pub docker: bollard::Docker,
    /// Docker's address: the logs stream has its own connection (see `follow`).
    pub addr: Arc<DockerAddr>,
    pub meta: Arc<ContainerMeta>,
    /// The `host` label: the Docker daemon's name, or the configured override.
    pub host: Arc<str>,
    pub settings: LogSettings,
    pub metrics: Arc<LogMetrics>,
    pub in_flight: Arc<InFlight>,
    pub buffer: Arc<Semaphore>,
    pub tx: mpsc::UnboundedSender<LogEntry>,
    /// Told when Docker ends the stream after new lines: the container stopped, and
    /// its last lines (often the reason it stopped) go to Loki at once instead of
    /// waiting out the batch.
    pub flush: Arc<Notify>,
}

impl Tailer {
    /// Follows the container's logs after `asm`'s resume point until the stream ends or fails, the
    /// batcher goes away, or `token` is cancelled. `recovering` says an earlier run broke:
    /// the first line read then closes that incident in the log.
    pub async fn run(
        &self,
        asm: &mut Assembler,
        recovering: bool,
        token: &CancellationToken,
    ) -> TailerExit {
        let resume = asm.resume_point();
        let since = resume.map(|p| p.since_secs()).unwrap_or(0);
        let job = self.meta.job(&self.settings.default_job);
        // Per line, these are looked up by (stream, level): arrays indexed by the enums,
        // not hash maps, since every line pays for the lookup.
        let mut label_cache: [[Option<Arc<str>>; LEVELS]; 2] = Default::default();
        let cl = LogMetrics::container(&self.meta.name);
        let (lines_read, bytes_read, truncated) = (
            self.metrics.lines_read.get_or_create(&cl).clone(),
            self.metrics.bytes_read.get_or_create(&cl).clone(),
            self.metrics.lines_truncated.get_or_create(&cl).clone(),
        );
        // Per-level counters, created as levels are first seen; ERROR and FATAL from the
        // start, so an alert's `increase()` sees the first of them.
        let mut by_level: [Option<prometheus_client::metrics::counter::Counter>; LEVELS] =
            Default::default();
        for l in ALERTED_LEVELS {
            let labels = LogMetrics::level(&self.meta.name, l);
            by_level[l as usize] = Some(self.metrics.lines_by_level.get_or_create(&labels).clone());
        }
        let mut read_any = false;
        // Made once: a `cancelled()` made per line registered and removed a waiter
        // (a lock each) every time it was polled.
        let cancelled = token.cancelled();
        tokio::pin!(cancelled);
        let mut stream = tokio::select! {
            biased;
            _ = &mut cancelled => return self.exit(StopReason::Cancelled, asm, false),
            s = LogStream::open(&self.addr, &self.meta.id, since, true) => match s {
                Ok(s) => s,
                Err(e) => {
                    self.count_error();
                    return self.exit(StopReason::of_error(e), asm, false);
                }
            },
        };
        let mut over = false;
        let reason = 'read: loop {
            // Every whole record already read, then one more read from the socket: at high
            // rates a read brings many records, at low rates one.
            loop {
                let rec = match stream.next_record() {
                    Ok(Some(rec)) => rec,
                    Ok(None) => break,
                    Err(e) => {
                        self.count_error();
                        break 'read StopReason::of_error(e);
                    }
                };
                // Only a TTY's raw stream can hold several records in one item; any other
                // item is one record, taken as it is (no vector per line).
                let split;
                let records: &[&[u8]] = if rec.tty {
                    split = Assembler::split_tty(rec.bytes);
                    &split
                } else {
                    std::slice::from_ref(&rec.bytes)
                };
                let kind = rec.kind;
                for &record in records {
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
                    if !read_any && recovering {
                        info!(container = %self.meta.name, "Container log stream recovered.");
                    }
                    read_any = true;
                    lines_read.inc();
                    bytes_read.inc_by(line.bytes as u64);
                    if line.truncated {
                        truncated.inc();
                    }
                    let level = parse_level(&line.text);
                    by_level[level as usize]
                        .get_or_insert_with(|| {
                            let labels = LogMetrics::level(&self.meta.name, level);
                            self.metrics.lines_by_level.get_or_create(&labels).clone()
                        })
                        .inc();
                    let labels = label_cache[line.stream as usize][level as usize]
                        .get_or_insert_with(|| {
                            render_labels(&[
                                ("job", &job),
                                ("host", &self.host),
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
                        (line.text.len() + ENTRY_OVERHEAD).min(self.settings.buffer_max_bytes);
                    // Blocks here while the buffer is full (Loki down or slow): Docker keeps the
                    // rest in the container's log file. Room is mostly there: taken at once
                    // then, without a future and a select per line.
                    // Stopped while waiting (a rename restarts the tailer, resuming after
                    // the last record read), the line already read goes on without room:
                    // one line over the bound, rather than one line lost.
                    let mut stopped = false;
                    let permit = match self.buffer.clone().try_acquire_many_owned(want as u32) {
                        Ok(p) => Some(p),
                        Err(TryAcquireError::Closed) => break 'read StopReason::ChannelClosed,
                        Err(TryAcquireError::NoPermits) => tokio::select! {
                            _ = &mut cancelled => {
                                stopped = true;
                                None
                            }
                            p = self.buffer.clone().acquire_many_owned(want as u32) => match p {
                                Ok(p) => Some(p),
                                // Only closed when the shipper is going away.
                                Err(_) => break 'read StopReason::ChannelClosed,
                            },
                        },
                    };
                    self.in_flight
                        .read(&self.meta.id, &self.meta.name, line.ts_ns, want);
                    let entry = LogEntry::new(
                        self.meta.id.clone(),
                        self.meta.name.clone(),
                        labels,
                        line,
                        permit,
                    );
                    if self.tx.send(entry).is_err() {
                        break 'read StopReason::ChannelClosed;
                    }
                    if stopped {
                        break 'read StopReason::Cancelled;
                    }
                }
            }
            if over {
                break StopReason::StreamEnded;
            }
            tokio::select! {
                biased;
                _ = &mut cancelled => break StopReason::Cancelled,
                more = stream.fill() => match more {
                    Ok(more) => over = !more,
                    Err(e) => {
                        self.count_error();
                        break StopReason::of_error(e);
                    }
                },
            }
        };
        if reason == StopReason::StreamEnded && read_any {
            self.flush.notify_one();
        }
        self.exit(reason, asm, read_any)
    }

    fn exit(&self, reason: StopReason, asm: &Assembler, read_any: bool) -> TailerExit {
        debug!(container = %self.meta.name, reason = reason.reason(), "Tailer stopped.");
        TailerExit {
            reason,
            last_read: asm.resume_point(),
            read_any,
        }
    }

    fn count_error(&self) {
        self.metrics
            .docker_errors
            .get_or_create(&ReasonLabels { reason: "logs" })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_streams_that_broke_by_themselves_are_unasked() {
        assert!(StopReason::StreamEnded.unasked());
        assert!(StopReason::StreamError("reset".into()).unasked());
        assert!(!StopReason::Cancelled.unasked());
        assert!(!StopReason::ChannelClosed.unasked());
        assert!(!StopReason::Refused("409".into()).unasked());
        assert_eq!(StopReason::StreamError("x".into()).reason(), "stream_error");
    }

    #[test]
    fn docker_refusals_are_told_apart_from_broken_streams() {
        let answer = |status| FollowError::Status {
            status,
            message: "no".into(),
        };
        assert!(matches!(
            StopReason::of_error(answer(409)),
            StopReason::Refused(_)
        ));
        assert!(matches!(
            StopReason::of_error(answer(501)),
            StopReason::Refused(_)
        ));
        assert!(matches!(
            StopReason::of_error(answer(500)),
            StopReason::StreamError(_)
        ));
        assert!(StopReason::of_error(FollowError::Io("reset".into())).unasked());
        assert!(StopReason::of_error(FollowError::Connect("refused".into())).unasked());
    }
}
