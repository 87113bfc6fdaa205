//! natsmon: makes a NATS JetStream cluster observable. This crate root wires the modules;
//! `app::run` is the entry point for `main` and for tests.
#![forbid(unsafe_code)]

pub mod app;
pub mod backoff;
pub mod config;
pub mod exposition;
pub mod gzip;
pub mod http;
pub mod logs;
pub mod nats;
pub mod redact;
pub mod telemetry;
pub mod time;
