//! natsmon's integration tests: ONE test binary (`cargo test --test it`), one module per
//! area, and the shared harness in [`harness`]. Select an area with its module path, e.g.
//! `cargo test --test it -- exporter::` or `cargo test --test it -- shipper`.

mod harness;

mod alertmanager;
mod capture;
mod compose;
mod console;
mod dashboards;
mod discovery;
mod docker_env_smoke;
mod exporter;
mod faults;
mod fixtures_parse;
mod golden;
mod hardening_config;
mod hardening_http;
mod hardening_logs;
mod hardening_nats;
mod harness_smoke;
mod lifecycle;
mod loki_receiver_selftest;
mod outages;
mod prometheus_stack;
mod quickstart_stack;
mod reference;
mod roles;
mod rules;
mod security;
mod shipper;
mod shipper_churn;
mod shipper_dockerd;
mod shipper_faults;
mod shipper_metadata;
mod supercluster;
mod versions;
