//! Owns `/connz`: client connection totals that stay correct beyond nats-server's
//! 1024-entry page, and opt-in per-connection series bounded by a limit. Pages are folded
//! into a `ConnzSummary` as they arrive, so memory does not grow with the connection count.

use serde::Deserialize;

use super::link::{LinkDefs, LinkSample, LinkTotals};
use crate::exposition::{Def, MetricSet};

pub const PATH: &str = "/connz";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Connz {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub server_id: String,
    pub num_connections: u64,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub connections: Vec<ConnInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ConnInfo {
    pub cid: u64,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub kind: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub ip: String,
    pub port: u64,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub rtt: String,
    pub pending_bytes: u64,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: u64,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub name: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub account: String,
}

/// A page read only for totals: deserializing just the counters skips the per-connection
/// strings, which dominate parse time at tens of thousands of connections.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ConnzCounters {
    pub total: u64,
    pub offset: u64,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub connections: Vec<ConnCounters>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct ConnCounters {
    /// Only to tell pages apart.
    pub cid: u64,
    pub pending_bytes: u64,
    pub subscriptions: u64,
}

/// The one page read when no figure needs every connection: the most backed-up one.
pub const TOP_PENDING_PATH: &str = "/connz?sort=pending&limit=1";

/// The query for one page, sorted by connection id so that paging is stable while
/// connections come and go. `auth` adds each connection's account, which only the
/// per-connection series need.
pub fn page_path(offset: u64, limit: usize, auth: bool) -> String {
    let auth = if auth { "&auth=true" } else { "" };
    format!("/connz?sort=cid&offset={offset}&limit={limit}{auth}")
}

/// What natsmon keeps of all pages of one poll.
#[derive(Debug, Clone, Default)]
pub struct ConnzSummary {
    /// The server's own count of open connections, from the first page.
    pub total: u64,
    /// Connections actually returned across pages.
    pub seen: u64,
    pub pending_bytes: u64,
    pub largest_pending_bytes: u64,
    pub subscriptions: u64,
    /// The first connections by id, up to the per-connection series limit.
    pub detailed: Vec<ConnInfo>,
    /// True when paging stopped at the configured cap before reaching `total`.
    pub truncated: bool,
    /// True when every page was read, so the sums over all connections exist.
    pub all_pages: bool,
}

impl ConnzSummary {
    /// Folds one page in; returns the next offset, or `None` when paging is complete.
    pub fn absorb(&mut self, page: Connz, detail_limit: usize) -> Option<u64> {
        let (total, offset, n) = (page.total, page.offset, page.connections.len() as u64);
        for c in page.connections {
            self.count(c.pending_bytes, c.subscriptions);
            if self.detailed.len() < detail_limit {
                self.detailed.push(c);
            }
        }
        self.next(total, offset, n)
    }

    /// Takes the one-page read sorted by pending bytes: the count and the largest
    /// pending, without the sums over every connection (`all_pages` false).
    pub fn absorb_top(&mut self, page: ConnzCounters) {
        self.total = page.total;
        self.all_pages = false;
        if let Some(c) = page.connections.first() {
            self.seen = 1;
            self.largest_pending_bytes = c.pending_bytes;
        }
    }

    /// Like `absorb`, for pages read without per-connection detail.
    pub fn absorb_counters(&mut self, page: ConnzCounters) -> Option<u64> {
        for c in &page.connections {
            self.count(c.pending_bytes, c.subscriptions);
        }
        self.next(page.total, page.offset, page.connections.len() as u64)
    }

    fn count(&mut self, pending: u64, subscriptions: u64) {
        self.seen += 1;
        self.pending_bytes += pending;
        self.largest_pending_bytes = self.largest_pending_bytes.max(pending);
        self.subscriptions += subscriptions;
    }

    fn next(&mut self, total: u64, offset: u64, n: u64) -> Option<u64> {
        if offset == 0 {
            self.total = total;
        }
        self.all_pages = true;
        let next = offset + n;
        (n > 0 && next < total).then_some(next)
    }
}

pub static CONNECTIONS: Def = Def::gauge(
    "nats_connz_connections",
    "Open client connections as counted by /connz (all pages, not only the first 1024).",
);
pub static SEEN: Def = Def::gauge(
    "nats_connz_polled_connections",
    "Connections natsmon read across /connz pages in the last poll.",
);
pub static PENDING: Def = Def::gauge(
    "nats_connz_pending_bytes",
    "Bytes pending to all client connections; only with --connz-all-pages or per-connection series.",
);
pub static LARGEST_PENDING: Def = Def::gauge(
    "nats_connz_largest_pending_bytes",
    "Bytes pending to the most backed-up client connection.",
);
pub static SUBSCRIPTIONS: Def = Def::gauge(
    "nats_connz_subscriptions",
    "Subscriptions held by client connections; only with --connz-all-pages or per-connection series.",
);
pub static TRUNCATED: Def = Def::gauge(
    "nats_connz_truncated",
    "1 when /connz paging stopped at natsmon's connz_max_connections cap before the end; only when paging.",
);
pub static DEFS: LinkDefs = LinkDefs {
    connections: Def::gauge(
        "nats_connection_up",
        "1 for each client connection given per-connection series.",
    ),
    rtt: Def::gauge(
        "nats_connection_rtt_seconds",
        "Round-trip time to the client.",
    ),
    pending: Some(Def::gauge(
        "nats_connection_pending_bytes",
        "Bytes pending to the client.",
    )),
    in_msgs: Def::counter(
        "nats_connection_in_msgs_total",
        "Messages received from the client.",
    ),
    out_msgs: Def::counter(
        "nats_connection_out_msgs_total",
        "Messages sent to the client.",
    ),
    in_bytes: Def::counter(
        "nats_connection_in_bytes_total",
        "Bytes received from the client.",
    ),
    out_bytes: Def::counter(
        "nats_connection_out_bytes_total",
        "Bytes sent to the client.",
    ),
    subscriptions: Def::gauge(
        "nats_connection_subscriptions",
        "Subscriptions of the client.",
    ),
};

pub fn collect(s: &ConnzSummary, node: &str, out: &mut MetricSet) {
    let l = || vec![("node", node.to_string())];
    out.push(&CONNECTIONS, l(), s.total);
    out.push(&SEEN, l(), s.seen);
    out.push(&LARGEST_PENDING, l(), s.largest_pending_bytes);
    // Sums over every connection exist only when every page was read.
    if s.all_pages {
        out.push(&PENDING, l(), s.pending_bytes);
        out.push(&SUBSCRIPTIONS, l(), s.subscriptions);
        out.push(&TRUNCATED, l(), s.truncated);
    }
    for c in &s.detailed {
        let mut t = LinkTotals::default();
        t.add(LinkSample {
            rtt: &c.rtt,
            pending_bytes: c.pending_bytes,
            in_msgs: c.in_msgs,
            out_msgs: c.out_msgs,
            in_bytes: c.in_bytes,
            out_bytes: c.out_bytes,
            subscriptions: c.subscriptions,
        });
        let labels = || {
            vec![
                ("node", node.to_string()),
                ("cid", c.cid.to_string()),
                ("name", c.name.clone()),
                ("account", c.account.clone()),
            ]
        };
        t.emit(&DEFS, labels(), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(offset: u64, n: u64, total: u64) -> Connz {
        Connz {
            total,
            offset,
            limit: n,
            num_connections: n,
            connections: (0..n)
                .map(|i| ConnInfo {
                    cid: offset + i,
                    pending_bytes: 1,
                    subscriptions: 2,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn pages_fold_into_full_totals() {
        let mut s = ConnzSummary::default();
        assert_eq!(s.absorb(page(0, 1024, 2500), 3), Some(1024));
        assert_eq!(s.absorb(page(1024, 1024, 2500), 3), Some(2048));
        assert_eq!(s.absorb(page(2048, 452, 2500), 3), None);
        assert_eq!(
            (s.total, s.seen, s.pending_bytes, s.subscriptions),
            (2500, 2500, 2500, 5000)
        );
        assert_eq!(
            s.detailed.iter().map(|c| c.cid).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn an_empty_page_ends_paging() {
        let mut s = ConnzSummary::default();
        assert_eq!(s.absorb(page(0, 0, 10), 0), None);
    }
}
