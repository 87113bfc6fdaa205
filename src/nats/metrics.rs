//! Owns natsmon's own metrics, all under the `natsmon_` prefix: poll counts, durations,
//! sizes and errors per node and endpoint, render cost, and scrapes served. Errors are
//! counted here and logged by the poller in one place. These live as long as the process,
//! so they are prometheus-client registry metrics; series about the cluster are `Def`s in
//! the endpoint modules instead (see the crate docs).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::Endpoint;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct NodeLabels {
    pub node: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct EndpointLabels {
    pub node: String,
    pub endpoint: EndpointLabel,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ErrorLabels {
    pub node: String,
    pub endpoint: EndpointLabel,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum EndpointLabel {
    varz,
    jsz,
    connz,
    routez,
    healthz,
    accstatz,
    subsz,
    gatewayz,
    leafz,
    raftz,
}

impl From<Endpoint> for EndpointLabel {
    fn from(e: Endpoint) -> Self {
        match e {
            Endpoint::Varz => EndpointLabel::varz,
            Endpoint::Jsz => EndpointLabel::jsz,
            Endpoint::Connz => EndpointLabel::connz,
            Endpoint::Routez => EndpointLabel::routez,
            Endpoint::Healthz => EndpointLabel::healthz,
            Endpoint::Accstatz => EndpointLabel::accstatz,
            Endpoint::Subsz => EndpointLabel::subsz,
            Endpoint::Gatewayz => EndpointLabel::gatewayz,
            Endpoint::Leafz => EndpointLabel::leafz,
            Endpoint::Raftz => EndpointLabel::raftz,
        }
    }
}

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Debug)]
pub struct Metrics {
    pub polls: Family<EndpointLabels, Counter>,
    pub poll_errors: Family<ErrorLabels, Counter>,
    pub poll_duration: Family<EndpointLabels, Histogram>,
    pub poll_last_success: Family<EndpointLabels, FloatGauge>,
    pub poll_response_bytes: Family<EndpointLabels, Counter>,
    pub poll_cycles: Family<NodeLabels, Counter>,
    pub poll_cycle_duration: Family<NodeLabels, FloatGauge>,
    pub render_duration: FloatGauge,
    pub render_bytes: Gauge,
    pub render_series: Gauge,
    pub renders: Counter,
    pub scrapes: Counter,
}

fn duration_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

impl Metrics {
    /// Registers every family under `natsmon_` in `registry`.
    pub fn register(registry: &mut Registry) -> Metrics {
        Metrics::register_for(registry, true)
    }

    /// Without the exporter role (a shipper-only natsmon) only `natsmon_build_info` and
    /// `natsmon_scrapes_total` are exported: the poll and render families would be empty
    /// or zero forever, and look like an exporter that polls nothing.
    pub fn register_for(registry: &mut Registry, exporter: bool) -> Metrics {
        let m = Metrics {
            polls: Family::default(),
            poll_errors: Family::default(),
            poll_duration: Family::new_with_constructor(duration_histogram),
            poll_last_success: Family::default(),
            poll_response_bytes: Family::default(),
            poll_cycles: Family::default(),
            poll_cycle_duration: Family::default(),
            render_duration: FloatGauge::default(),
            render_bytes: Gauge::default(),
            render_series: Gauge::default(),
            renders: Counter::default(),
            scrapes: Counter::default(),
        };
        let own = registry.sub_registry_with_prefix("natsmon");
        own.register(
            "build",
            "natsmon's version, always 1",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        own.register("scrapes", "Requests served on /metrics", m.scrapes.clone());
        let mut unexported = Registry::default();
        let target: &mut Registry = if exporter {
            &mut *registry
        } else {
            &mut unexported
        };
        let r = target.sub_registry_with_prefix("natsmon");
        r.register(
            "polls",
            "Requests made to a node's monitoring endpoint",
            m.polls.clone(),
        );
        r.register(
            "poll_errors",
            "Failed endpoint polls by reason",
            m.poll_errors.clone(),
        );
        r.register(
            "poll_duration_seconds",
            "Time to fetch and decode an endpoint",
            m.poll_duration.clone(),
        );
        r.register(
            "poll_last_success_timestamp_seconds",
            "Unix time of an endpoint's last successful poll",
            m.poll_last_success.clone(),
        );
        r.register(
            "poll_response_bytes",
            "Response body bytes read from an endpoint",
            m.poll_response_bytes.clone(),
        );
        r.register(
            "poll_cycles",
            "Completed poll cycles of a node (all endpoints)",
            m.poll_cycles.clone(),
        );
        r.register(
            "poll_cycle_duration_seconds",
            "Wall time of a node's last complete poll cycle",
            m.poll_cycle_duration.clone(),
        );
        r.register(
            "render_duration_seconds",
            "Time the last rendering of the NATS snapshot into exposition text took",
            m.render_duration.clone(),
        );
        r.register(
            "render_bytes",
            "Size of the last rendered NATS exposition text",
            m.render_bytes.clone(),
        );
        r.register(
            "render_series",
            "Series in the last rendered NATS exposition",
            m.render_series.clone(),
        );
        r.register(
            "renders",
            "Renderings of the NATS snapshot: about one per round of polls",
            m.renders.clone(),
        );
        m
    }

    /// Removes every series of a node that is no longer polled (discovery dropped it),
    /// so that natsmon's own metrics do not keep a member that left.
    pub fn forget_node(&self, node: &str) {
        let labels = NodeLabels {
            node: node.to_string(),
        };
        self.poll_cycles.remove(&labels);
        self.poll_cycle_duration.remove(&labels);
        for e in Endpoint::ALL {
            let l = Metrics::endpoint(node, e);
            self.polls.remove(&l);
            self.poll_duration.remove(&l);
            self.poll_last_success.remove(&l);
            self.poll_response_bytes.remove(&l);
            for reason in super::PollError::REASONS {
                self.poll_errors.remove(&ErrorLabels {
                    node: node.to_string(),
                    endpoint: e.into(),
                    reason,
                });
            }
        }
    }

    pub fn endpoint(node: &str, e: Endpoint) -> EndpointLabels {
        EndpointLabels {
            node: node.to_string(),
            endpoint: e.into(),
        }
    }
}
