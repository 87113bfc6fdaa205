//! natsmon: makes a NATS JetStream cluster observable. This crate root wires the modules;
//! `app::run` is the entry point for `main` and for tests.
//!
//! Rooms: `nats/` (the exporter) and `logs/` (the shipper) are siblings that never import
//! each other; both build on the ground floor: `config/`, `time`, `redact`, `backoff`,
//! `gzip`, `exposition`, `telemetry`. `app` wires them, `http` serves them, and `console`
//! shows them to people (reading `nats/` and `logs/`, which never read it).
//!
//! Two metric systems, on purpose: NATS data is a snapshot rebuilt whole on every poll, so
//! series appear and vanish with the cluster and it is a `MetricSet` rendered once per poll
//! through `exposition`; natsmon's own metrics live as long as the process and are updated
//! in place, so they are prometheus-client registry metrics (`nats/metrics.rs`,
//! `logs/metrics.rs`). A new series about the cluster is a `Def` in its endpoint module; a
//! new series about natsmon itself goes into one of those two self-metrics structs.
#![forbid(unsafe_code)]

pub mod app;
pub mod backoff;
pub mod config;
pub mod console;
pub mod exposition;
pub mod gzip;
pub mod http;
pub mod logs;
pub mod nats;
pub mod redact;
pub mod telemetry;
pub mod time;
