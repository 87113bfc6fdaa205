//! Owns the NATS side: one module per monitoring endpoint (serde types plus a pure
//! function from a parsed response to metrics), the HTTP client that does all I/O, the
//! per-node pollers, the per-node snapshot store, its aggregation into one `MetricSet`
//! (`aggregate`, with the cluster-wide stream view in `leader_view`), and the render
//! loop (`render`).

pub mod accstatz;
pub mod aggregate;
pub mod client;
pub mod connz;
pub mod gatewayz;
pub mod healthz;
pub mod jsz;
pub mod leader_view;
pub mod leafz;
pub mod link;
pub mod metrics;
pub mod poller;
pub mod render;
pub mod routez;
pub mod snapshot;
pub mod subsz;
pub mod varz;

use serde::Deserialize;

/// A Raft peer as the group leader reports it (meta group, streams, consumers).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PeerInfo {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub name: String,
    pub current: bool,
    pub offline: bool,
    /// Nanoseconds since the leader last heard from the peer.
    pub active: i64,
    pub lag: u64,
}

/// The monitoring endpoints natsmon polls; the label values of its self-metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    Varz,
    Jsz,
    Connz,
    Routez,
    Healthz,
    Accstatz,
    Subsz,
    Gatewayz,
    Leafz,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Varz => "varz",
            Endpoint::Jsz => "jsz",
            Endpoint::Connz => "connz",
            Endpoint::Routez => "routez",
            Endpoint::Healthz => "healthz",
            Endpoint::Accstatz => "accstatz",
            Endpoint::Subsz => "subsz",
            Endpoint::Gatewayz => "gatewayz",
            Endpoint::Leafz => "leafz",
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a poll of one endpoint failed. Messages never contain the URL, which may carry
/// credentials; `reason()` is the low-cardinality metric label.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("request timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("connection closed before a response: {0}")]
    Closed(String),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("response body exceeds the {limit}-byte cap")]
    TooLarge { limit: usize },
    #[error("reading the response body failed: {0}")]
    Body(String),
    #[error("malformed JSON: {0}")]
    Decode(String),
    #[error("request failed: {0}")]
    Request(String),
}

impl PollError {
    pub fn reason(&self) -> &'static str {
        match self {
            PollError::Timeout(_) => "timeout",
            PollError::Connect(_) => "connect",
            PollError::Closed(_) => "connection_closed",
            PollError::Status(s) if *s >= 500 => "http_5xx",
            PollError::Status(_) => "http_4xx",
            PollError::TooLarge { .. } => "too_large",
            PollError::Body(_) => "body",
            PollError::Decode(_) => "decode",
            PollError::Request(_) => "request",
        }
    }
}

/// Go encodes nil slices, maps and pointers as `null`; treat that like a missing field.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
