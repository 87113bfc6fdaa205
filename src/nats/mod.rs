//! Owns the NATS side: one module per monitoring endpoint (serde types plus a pure
//! function from a parsed response to metrics), the HTTP client that does all I/O, the
//! per-node pollers, the per-node snapshot store, its aggregation into one `MetricSet`
//! (`aggregate`, with the cluster-wide stream view in `leader_view`), and the render
//! loop (`render`). `paging` keeps paged endpoints finite.

pub mod accstatz;
pub mod aggregate;
pub mod client;
pub mod connz;
pub mod discovery;
pub mod gatewayz;
pub mod healthz;
pub mod jsz;
pub mod leader_view;
pub mod leafz;
pub mod link;
pub mod metrics;
pub mod paging;
pub mod poller;
pub mod raftz;
pub mod render;
pub mod routez;
pub mod snapshot;
pub mod subsz;
pub mod varz;
pub mod view;

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
    Raftz,
}

impl Endpoint {
    pub const ALL: [Endpoint; 10] = [
        Endpoint::Varz,
        Endpoint::Jsz,
        Endpoint::Connz,
        Endpoint::Routez,
        Endpoint::Healthz,
        Endpoint::Accstatz,
        Endpoint::Subsz,
        Endpoint::Gatewayz,
        Endpoint::Leafz,
        Endpoint::Raftz,
    ];

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
            Endpoint::Raftz => "raftz",
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
    /// The node answered pages that do not advance (it ignores `offset`, or repeats a
    /// page), or more pages than its own `total` allows.
    #[error("paging did not advance: {0}")]
    Paging(String),
    /// Every body in flight shares one memory budget; this one found none (in time).
    #[error("no memory left for the response body: all bodies in flight share {budget} bytes")]
    Memory { budget: usize },
    #[error("cannot decode the response body: {0}")]
    Encoding(String),
    /// `target` is scheme://host:port only: a Location may carry credentials or a token.
    #[error("redirect to {target} not followed: {why}")]
    Redirect { target: String, why: &'static str },
}

impl PollError {
    /// Every `reason()`, so that a dropped node's error series can be removed.
    pub const REASONS: [&'static str; 14] = [
        "timeout",
        "connect",
        "connection_closed",
        "http_5xx",
        "not_found",
        "http_4xx",
        "too_large",
        "body",
        "decode",
        "request",
        "paging",
        "memory",
        "encoding",
        "redirect",
    ];

    pub fn reason(&self) -> &'static str {
        match self {
            PollError::Timeout(_) => "timeout",
            PollError::Connect(_) => "connect",
            PollError::Closed(_) => "connection_closed",
            PollError::Status(s) if *s >= 500 => "http_5xx",
            PollError::Status(404) => "not_found",
            PollError::Status(_) => "http_4xx",
            PollError::TooLarge { .. } => "too_large",
            PollError::Body(_) => "body",
            PollError::Decode(_) => "decode",
            PollError::Request(_) => "request",
            PollError::Paging(_) => "paging",
            PollError::Memory { .. } => "memory",
            PollError::Encoding(_) => "encoding",
            PollError::Redirect { .. } => "redirect",
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

/// A limit field: Go reports an unset or unlimited limit as `-1`, and a `-1` that went
/// through an unsigned field reads as `u64::MAX`; both are `None`, which the exposition
/// leaves out (README: unlimited limits have no series). Anything that is not a
/// non-negative integer is `None` too, so that no limit can fail a whole endpoint.
///
/// Audit of the numeric fields natsmon reads (Go types in nats-server's monitor.go):
/// counters and levels (`int`, `int64`, `uint32`, `uint64`) are never negative and stay
/// plain `u64`; configured limits that may be `-1` use this helper (`/varz`
/// `max_connections`, `max_payload`, `max_pending`, JetStream `max_memory`,
/// `max_storage`) or are signed and filtered where exported (stream and consumer
/// config); reservations that are `-1` cast to `uint64` (JetStream `reserved_*`) use
/// this helper; durations that are `-1` for "never" (`active`) are signed.
pub(crate) fn limit<'de, D>(d: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<serde_json::Number>::deserialize(d)?
        .and_then(|n| n.as_u64())
        .filter(|&v| v != u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct L {
        #[serde(default, deserialize_with = "limit")]
        v: Option<u64>,
    }

    fn parse(json: &str) -> Option<u64> {
        serde_json::from_str::<L>(json).unwrap().v
    }

    #[test]
    fn unlimited_encodings_read_as_none() {
        assert_eq!(parse(r#"{"v":-1}"#), None);
        assert_eq!(parse(r#"{"v":18446744073709551615}"#), None);
        assert_eq!(parse(r#"{"v":null}"#), None);
        assert_eq!(parse(r#"{}"#), None);
        assert_eq!(parse(r#"{"v":1.5}"#), None);
        assert_eq!(parse(r#"{"v":0}"#), Some(0));
        assert_eq!(parse(r#"{"v":65536}"#), Some(65536));
    }

    #[test]
    fn every_reason_is_listed() {
        let all = [
            PollError::Timeout(Default::default()),
            PollError::Connect(String::new()),
            PollError::Closed(String::new()),
            PollError::Status(500),
            PollError::Status(404),
            PollError::Status(400),
            PollError::TooLarge { limit: 0 },
            PollError::Body(String::new()),
            PollError::Decode(String::new()),
            PollError::Request(String::new()),
            PollError::Paging(String::new()),
            PollError::Memory { budget: 0 },
            PollError::Encoding(String::new()),
            PollError::Redirect {
                target: String::new(),
                why: "",
            },
        ];
        let reasons: Vec<_> = all.iter().map(PollError::reason).collect();
        assert_eq!(reasons, PollError::REASONS);
    }

    #[test]
    fn not_found_has_its_own_reason() {
        assert_eq!(PollError::Status(404).reason(), "not_found");
        assert_eq!(PollError::Status(403).reason(), "http_4xx");
        assert_eq!(PollError::Status(503).reason(), "http_5xx");
    }
}
