//! Owns sorting and filtering of the stream and consumer tables, from the page's query
//! (`?account=A&q=ord&sort=messages&dir=desc`), so the tables sort and filter without
//! JavaScript; `console.js` applies the same rules to the live data.

use std::cmp::Ordering;

use serde::Deserialize;

use crate::nats::view::{ConsumerView, StreamView};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct TableQuery {
    /// Exact account name; empty for all.
    pub account: String,
    /// Case-insensitive part of the name (for consumers: of the consumer or its stream).
    pub q: String,
    pub sort: String,
    /// `desc` for descending; anything else ascends.
    pub dir: String,
}

impl TableQuery {
    /// The unsorted, unfiltered table: the one rendered once per view and cached.
    pub fn is_default(&self) -> bool {
        self.account.is_empty() && self.q.is_empty() && self.sort.is_empty()
    }

    pub fn desc(&self) -> bool {
        self.dir == "desc"
    }

    fn name_matches(&self, names: &[&str]) -> bool {
        if self.q.is_empty() {
            return true;
        }
        let q = self.q.to_lowercase();
        names.iter().any(|n| n.to_lowercase().contains(&q))
    }

    fn account_matches(&self, account: &str) -> bool {
        self.account.is_empty() || self.account == account
    }

    pub fn streams<'a>(&self, all: &'a [StreamView]) -> Vec<&'a StreamView> {
        let mut v: Vec<&StreamView> = all
            .iter()
            .filter(|s| self.account_matches(&s.account) && self.name_matches(&[&s.name]))
            .collect();
        let key = STREAM_SORTS
            .iter()
            .find(|(k, _)| *k == self.sort)
            .map(|(_, f)| *f);
        let desc = self.desc();
        v.sort_by(|a, b| {
            let o = key.map_or(Ordering::Equal, |f| f(a, b));
            let o = if desc { o.reverse() } else { o };
            o.then_with(|| stream_order(a, b))
        });
        v
    }

    pub fn consumers<'a>(&self, all: &'a [ConsumerView]) -> Vec<&'a ConsumerView> {
        let mut v: Vec<&ConsumerView> = all
            .iter()
            .filter(|c| {
                self.account_matches(&c.account) && self.name_matches(&[&c.name, &c.stream])
            })
            .collect();
        let key = CONSUMER_SORTS
            .iter()
            .find(|(k, _)| *k == self.sort)
            .map(|(_, f)| *f);
        let desc = self.desc();
        v.sort_by(|a, b| {
            let o = key.map_or(Ordering::Equal, |f| f(a, b));
            let o = if desc { o.reverse() } else { o };
            o.then_with(|| consumer_order(a, b))
        });
        v
    }
}

/// The default order, and every sort's tie-breaker.
pub fn stream_order(a: &StreamView, b: &StreamView) -> Ordering {
    (&a.account, &a.name, &a.cluster).cmp(&(&b.account, &b.name, &b.cluster))
}

pub fn consumer_order(a: &ConsumerView, b: &ConsumerView) -> Ordering {
    (&a.account, &a.stream, &a.name, &a.cluster).cmp(&(&b.account, &b.stream, &b.name, &b.cluster))
}

type Cmp<T> = fn(&T, &T) -> Ordering;

fn f64_cmp(a: Option<f64>, b: Option<f64>) -> Ordering {
    // Absent values sort below any number.
    a.unwrap_or(f64::NEG_INFINITY)
        .total_cmp(&b.unwrap_or(f64::NEG_INFINITY))
}

fn share(v: u64, l: Option<u64>) -> Option<f64> {
    l.filter(|l| *l > 0).map(|l| v as f64 / l as f64)
}

/// Sort keys of the streams table, as its column headers name them.
pub const STREAM_SORTS: &[(&str, Cmp<StreamView>)] = &[
    ("cluster", |a, b| a.cluster.cmp(&b.cluster)),
    ("account", |a, b| a.account.cmp(&b.account)),
    ("name", |a, b| a.name.cmp(&b.name)),
    ("state", |a, b| {
        super::model::stream_state(a).cmp(super::model::stream_state(b))
    }),
    ("replicas", |a, b| a.replicas.cmp(&b.replicas)),
    ("leader", |a, b| a.leader.cmp(&b.leader)),
    ("messages", |a, b| a.messages.cmp(&b.messages)),
    ("messages_share", |a, b| {
        f64_cmp(share(a.messages, a.max_msgs), share(b.messages, b.max_msgs))
    }),
    ("bytes", |a, b| a.bytes.cmp(&b.bytes)),
    ("bytes_share", |a, b| {
        f64_cmp(share(a.bytes, a.max_bytes), share(b.bytes, b.max_bytes))
    }),
    ("consumers", |a, b| a.consumers.cmp(&b.consumers)),
];

/// Sort keys of the consumers table.
pub const CONSUMER_SORTS: &[(&str, Cmp<ConsumerView>)] = &[
    ("cluster", |a, b| a.cluster.cmp(&b.cluster)),
    ("account", |a, b| a.account.cmp(&b.account)),
    ("stream", |a, b| a.stream.cmp(&b.stream)),
    ("name", |a, b| a.name.cmp(&b.name)),
    ("state", |a, b| {
        super::model::consumer_state(a).cmp(super::model::consumer_state(b))
    }),
    ("num_pending", |a, b| a.num_pending.cmp(&b.num_pending)),
    ("num_ack_pending", |a, b| {
        a.num_ack_pending.cmp(&b.num_ack_pending)
    }),
    ("num_redelivered", |a, b| {
        a.num_redelivered.cmp(&b.num_redelivered)
    }),
    ("num_waiting", |a, b| a.num_waiting.cmp(&b.num_waiting)),
    ("lag", |a, b| a.lag.cmp(&b.lag)),
    ("last_active", |a, b| f64_cmp(a.last_active, b.last_active)),
    ("leader", |a, b| a.leader.cmp(&b.leader)),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(account: &str, name: &str, messages: u64) -> StreamView {
        StreamView {
            account: account.into(),
            name: name.into(),
            messages,
            ..Default::default()
        }
    }

    #[test]
    fn filters_by_account_and_name_and_sorts_by_a_column() {
        let all = vec![
            stream("B", "EVENTS", 7),
            stream("A", "ORDERS", 100),
            stream("A", "AUDIT", 5),
            stream("A", "orders_eu", 50),
        ];
        let names = |q: &TableQuery| -> Vec<String> {
            q.streams(&all).iter().map(|s| s.name.clone()).collect()
        };
        assert_eq!(
            names(&TableQuery::default()),
            ["AUDIT", "ORDERS", "orders_eu", "EVENTS"]
        );
        let q = TableQuery {
            q: "Order".into(),
            sort: "messages".into(),
            dir: "desc".into(),
            ..Default::default()
        };
        assert_eq!(names(&q), ["ORDERS", "orders_eu"]);
        let q = TableQuery {
            account: "B".into(),
            ..Default::default()
        };
        assert_eq!(names(&q), ["EVENTS"]);
        let q = TableQuery {
            sort: "no_such_column".into(),
            ..Default::default()
        };
        assert_eq!(
            names(&q)[0],
            "AUDIT",
            "an unknown key keeps the default order"
        );
    }
}
