//! Owns the cluster-wide stream and consumer view built from every node's `/jsz`. Every
//! replica reports each stream, so streams and consumers are exported once, from the
//! report of their Raft leader, and `sum()` over them gives true cluster totals; replica
//! health comes from the leader's peer list.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::jsz::{ClusterInfo, ConsumerInfo, Jsz, StreamDetail};
use crate::config::ConsumerPolicy;
use crate::exposition::{Def, Labels, MetricSet};

pub static STREAM_INFO: Def = Def::gauge(
    "nats_stream_info",
    "A stream's leader, storage and retention, always 1; one series per stream cluster-wide.",
);
pub static STREAM_HAS_LEADER: Def = Def::gauge(
    "nats_stream_has_leader",
    "1 when a polled node reports itself leader of the stream; 0 means figures come from a replica.",
);
pub static STREAM_MESSAGES: Def = Def::gauge(
    "nats_stream_messages",
    "Messages in the stream, from its leader.",
);
pub static STREAM_BYTES: Def =
    Def::gauge("nats_stream_bytes", "Bytes in the stream, from its leader.");
pub static STREAM_FIRST_SEQ: Def =
    Def::gauge("nats_stream_first_seq", "First sequence in the stream.");
pub static STREAM_LAST_SEQ: Def =
    Def::gauge("nats_stream_last_seq", "Last sequence in the stream.");
pub static STREAM_SUBJECTS: Def =
    Def::gauge("nats_stream_subjects", "Distinct subjects in the stream.");
pub static STREAM_DELETED: Def = Def::gauge(
    "nats_stream_deleted_messages",
    "Interior deleted messages in the stream.",
);
pub static STREAM_CONSUMERS: Def = Def::gauge(
    "nats_stream_consumers",
    "Consumers of the stream on all nodes, ephemeral included.",
);
pub static STREAM_MAX_BYTES: Def = Def::gauge(
    "nats_stream_max_bytes",
    "The stream's max_bytes limit; absent when unlimited.",
);
pub static STREAM_MAX_MSGS: Def = Def::gauge(
    "nats_stream_max_messages",
    "The stream's max_msgs limit; absent when unlimited.",
);
pub static STREAM_MAX_AGE: Def = Def::gauge(
    "nats_stream_max_age_seconds",
    "The stream's max_age limit; absent when unlimited.",
);
pub static STREAM_MAX_CONSUMERS: Def = Def::gauge(
    "nats_stream_max_consumers",
    "The stream's max_consumers limit; absent when unlimited.",
);
pub static STREAM_MAX_MSGS_PER_SUBJECT: Def = Def::gauge(
    "nats_stream_max_messages_per_subject",
    "The stream's max_msgs_per_subject limit; absent when unlimited.",
);
pub static STREAM_REPLICAS: Def = Def::gauge(
    "nats_stream_replicas",
    "The stream's configured replica count.",
);
pub static STREAM_REPLICA_CURRENT: Def = Def::gauge(
    "nats_stream_replica_current",
    "1 when a stream replica is current with the leader.",
);
pub static STREAM_REPLICA_OFFLINE: Def = Def::gauge(
    "nats_stream_replica_offline",
    "1 when a stream replica is offline.",
);
pub static STREAM_REPLICA_LAG: Def = Def::gauge(
    "nats_stream_replica_lag",
    "Raft entries a stream replica is behind the leader.",
);
pub static STREAM_REPLICA_ACTIVE: Def = Def::gauge(
    "nats_stream_replica_active_seconds",
    "Seconds since the stream leader last heard from a replica.",
);
pub static STREAM_SOURCE_LAG: Def = Def::gauge(
    "nats_stream_source_lag",
    "Messages a stream's source or mirror is behind its origin.",
);
pub static STREAM_SOURCE_ACTIVE: Def = Def::gauge(
    "nats_stream_source_active_seconds",
    "Seconds since a stream's source or mirror was last active.",
);

pub static CONSUMER_PENDING: Def = Def::gauge(
    "nats_consumer_num_pending",
    "Messages matching the consumer not yet delivered.",
);
pub static CONSUMER_ACK_PENDING: Def = Def::gauge(
    "nats_consumer_num_ack_pending",
    "Messages delivered and awaiting acknowledgement.",
);
pub static CONSUMER_REDELIVERED: Def = Def::gauge(
    "nats_consumer_num_redelivered",
    "Messages currently redelivered at least once.",
);
pub static CONSUMER_WAITING: Def = Def::gauge(
    "nats_consumer_num_waiting",
    "Pull requests waiting for messages.",
);
pub static CONSUMER_LAG: Def = Def::gauge(
    "nats_consumer_lag",
    "Stream last sequence minus the consumer's delivered stream sequence.",
);
pub static CONSUMER_DELIVERED_STREAM_SEQ: Def = Def::gauge(
    "nats_consumer_delivered_stream_seq",
    "Last stream sequence delivered by the consumer.",
);
pub static CONSUMER_DELIVERED_CONSUMER_SEQ: Def = Def::gauge(
    "nats_consumer_delivered_consumer_seq",
    "Last consumer sequence delivered.",
);
pub static CONSUMER_ACK_FLOOR_STREAM_SEQ: Def = Def::gauge(
    "nats_consumer_ack_floor_stream_seq",
    "Stream sequence below which all messages are acknowledged.",
);
pub static CONSUMER_MAX_ACK_PENDING: Def = Def::gauge(
    "nats_consumer_max_ack_pending",
    "The consumer's max_ack_pending limit; absent when unlimited.",
);
pub static CONSUMER_HAS_LEADER: Def = Def::gauge(
    "nats_consumer_has_leader",
    "1 when a polled node reports itself leader of the consumer; 0 means figures come from a replica.",
);
pub static CONSUMER_REPLICA_CURRENT: Def = Def::gauge(
    "nats_consumer_replica_current",
    "1 when a consumer replica is current with the leader.",
);
pub static CONSUMER_REPLICA_OFFLINE: Def = Def::gauge(
    "nats_consumer_replica_offline",
    "1 when a consumer replica is offline.",
);
pub static CONSUMER_REPLICA_LAG: Def = Def::gauge(
    "nats_consumer_replica_lag",
    "Raft entries a consumer replica is behind the leader.",
);
pub static NOT_EXPORTED: Def = Def::gauge(
    "natsmon_objects_not_exported",
    "Objects seen but given no per-object series, by kind and reason (ephemeral, limit).",
);

/// One node's `/jsz`, with what the collector knows about the node.
pub struct JszView<'a> {
    pub node: &'a str,
    /// The server name other servers use for this node (leader fields hold it).
    pub server_name: &'a str,
    /// The cluster name to key streams by when the report has none.
    pub cluster: &'a str,
    pub jsz: &'a Jsz,
}

/// (cluster, account, stream), borrowed from the polls for the duration of a render.
type Key<'a> = (&'a str, &'a str, &'a str);

struct Pick<'a, T> {
    item: &'a T,
    leader: bool,
    /// The stream's last sequence as seen by the chosen report, to break ties between
    /// replicas when no leader is visible.
    last_seq: u64,
}

/// Keeps the leader's report; among non-leaders, the most advanced one.
fn offer<'a, K: Ord, T>(
    map: &mut BTreeMap<K, Pick<'a, T>>,
    key: K,
    item: &'a T,
    leader: bool,
    last_seq: u64,
) {
    match map.entry(key) {
        Entry::Vacant(e) => {
            e.insert(Pick {
                item,
                leader,
                last_seq,
            });
        }
        Entry::Occupied(mut e) => {
            let p = e.get();
            if (leader && !p.leader) || (leader == p.leader && last_seq > p.last_seq) {
                e.insert(Pick {
                    item,
                    leader,
                    last_seq,
                });
            }
        }
    }
}

/// A report is authoritative when its node is the group's leader. R1 and non-clustered
/// assets report the local server as leader, or no cluster block at all.
fn is_leader(cluster: Option<&ClusterInfo>, server_name: &str) -> bool {
    match cluster {
        None => true,
        Some(c) => {
            c.leader == server_name
                || (c.leader.is_empty() && c.replicas.is_empty() && c.name.is_empty())
        }
    }
}

fn cluster_of<'a>(cluster: Option<&'a ClusterInfo>, view: &'a JszView<'_>) -> &'a str {
    match cluster {
        Some(c) if !c.name.is_empty() => &c.name,
        _ => view.cluster,
    }
}

/// Each stream's and consumer's chosen report: its leader's, else the most advanced
/// replica's.
struct Picks<'a> {
    streams: BTreeMap<Key<'a>, Pick<'a, StreamDetail>>,
    consumers: BTreeMap<(Key<'a>, &'a str), Pick<'a, ConsumerInfo>>,
}

/// Exports every stream and consumer once, from the report of its Raft leader.
pub fn collect_cluster<'a>(views: &'a [JszView<'a>], policy: &ConsumerPolicy, out: &mut MetricSet) {
    let picks = pick_leaders(views);
    emit_streams(&picks, out);
    emit_consumers(&picks, policy, out);
}

fn pick_leaders<'a>(views: &'a [JszView<'a>]) -> Picks<'a> {
    let mut streams: BTreeMap<Key<'a>, Pick<'a, StreamDetail>> = BTreeMap::new();
    let mut consumers: BTreeMap<(Key<'a>, &'a str), Pick<'a, ConsumerInfo>> = BTreeMap::new();
    for v in views {
        if v.jsz.disabled {
            continue;
        }
        for acc in &v.jsz.account_details {
            for s in &acc.stream_detail {
                let key = (
                    cluster_of(s.cluster.as_ref(), v),
                    acc.name.as_str(),
                    s.name.as_str(),
                );
                let leader = is_leader(s.cluster.as_ref(), v.server_name);
                offer(&mut streams, key, s, leader, s.state.last_seq);
                for c in &s.consumer_detail {
                    let leader = is_leader(c.cluster.as_ref(), v.server_name);
                    offer(
                        &mut consumers,
                        (key, c.name.as_str()),
                        c,
                        leader,
                        c.delivered.stream_seq,
                    );
                }
            }
        }
    }
    Picks { streams, consumers }
}

fn emit_streams(picks: &Picks<'_>, out: &mut MetricSet) {
    let Picks { streams, consumers } = picks;
    for ((cluster, account, stream), pick) in streams {
        let s = pick.item;
        let shared: Labels = vec![
            ("cluster", cluster.to_string()),
            ("account", account.to_string()),
            ("stream", stream.to_string()),
        ]
        .into();
        let l = || shared.clone();
        let cfg = s.config.clone().unwrap_or_default();
        let leader_name = s
            .cluster
            .as_ref()
            .map(|c| c.leader.clone())
            .unwrap_or_default();
        let mut info = l().to_vec();
        info.push(("leader", leader_name));
        info.push(("storage", cfg.storage.clone()));
        info.push(("retention", cfg.retention.clone()));
        out.push(&STREAM_INFO, info, 1u64);
        out.push(&STREAM_HAS_LEADER, l(), pick.leader);
        out.push(&STREAM_MESSAGES, l(), s.state.messages);
        out.push(&STREAM_BYTES, l(), s.state.bytes);
        out.push(&STREAM_FIRST_SEQ, l(), s.state.first_seq);
        out.push(&STREAM_LAST_SEQ, l(), s.state.last_seq);
        out.push(&STREAM_SUBJECTS, l(), s.state.num_subjects);
        out.push(&STREAM_DELETED, l(), s.state.num_deleted);
        // A node's report counts only consumers it hosts, and an R1 consumer may live off the
        // stream leader; the distinct consumers seen on all nodes fill that gap.
        let seen = consumers
            .range(((*cluster, *account, *stream), "")..)
            .take_while(|(((c, a, st), _), _)| c == cluster && a == account && st == stream)
            .count() as u64;
        out.push(&STREAM_CONSUMERS, l(), s.state.consumer_count.max(seen));
        if let Some(c) = &s.config {
            out.push_opt(
                &STREAM_MAX_BYTES,
                l,
                (c.max_bytes > 0).then_some(c.max_bytes),
            );
            out.push_opt(&STREAM_MAX_MSGS, l, (c.max_msgs > 0).then_some(c.max_msgs));
            out.push_opt(
                &STREAM_MAX_AGE,
                l,
                (c.max_age > 0).then_some(c.max_age as f64 / 1e9),
            );
            out.push_opt(
                &STREAM_MAX_CONSUMERS,
                l,
                (c.max_consumers > 0).then_some(c.max_consumers),
            );
            out.push_opt(
                &STREAM_MAX_MSGS_PER_SUBJECT,
                l,
                (c.max_msgs_per_subject > 0).then_some(c.max_msgs_per_subject),
            );
            out.push_opt(
                &STREAM_REPLICAS,
                l,
                (c.num_replicas > 0).then_some(c.num_replicas),
            );
        }
        if pick.leader {
            for p in s.cluster.iter().flat_map(|c| &c.replicas) {
                let pl = || with(&l(), "peer", &p.name);
                out.push(&STREAM_REPLICA_CURRENT, pl(), p.current);
                out.push(&STREAM_REPLICA_OFFLINE, pl(), p.offline);
                out.push(&STREAM_REPLICA_LAG, pl(), p.lag);
                out.push(&STREAM_REPLICA_ACTIVE, pl(), p.active.max(0) as f64 / 1e9);
            }
        }
        for src in s.mirror.iter().chain(&s.sources) {
            let sl = || with(&l(), "source", &src.name);
            out.push(&STREAM_SOURCE_LAG, sl(), src.lag);
            if src.active >= 0 {
                out.push(&STREAM_SOURCE_ACTIVE, sl(), src.active as f64 / 1e9);
            }
        }
    }
}

fn emit_consumers(picks: &Picks<'_>, policy: &ConsumerPolicy, out: &mut MetricSet) {
    let Picks { streams, consumers } = picks;
    let (mut ephemeral, mut over_limit, mut exported) = (0u64, 0u64, 0usize);
    for (((cluster, account, stream), name), pick) in consumers {
        let c = pick.item;
        if c.is_ephemeral() && !policy.include_ephemeral {
            ephemeral += 1;
            continue;
        }
        if exported >= policy.limit {
            over_limit += 1;
            continue;
        }
        exported += 1;
        let shared: Labels = vec![
            ("cluster", cluster.to_string()),
            ("account", account.to_string()),
            ("stream", stream.to_string()),
            ("consumer", name.to_string()),
        ]
        .into();
        let l = || shared.clone();
        out.push(&CONSUMER_HAS_LEADER, l(), pick.leader);
        out.push(&CONSUMER_PENDING, l(), c.num_pending);
        out.push(&CONSUMER_ACK_PENDING, l(), c.num_ack_pending);
        out.push(&CONSUMER_REDELIVERED, l(), c.num_redelivered);
        out.push(&CONSUMER_WAITING, l(), c.num_waiting);
        // The stream's authoritative last sequence, not the consumer replica's view.
        if let Some(sp) = streams.get(&(*cluster, *account, *stream)) {
            out.push(
                &CONSUMER_LAG,
                l(),
                sp.item
                    .state
                    .last_seq
                    .saturating_sub(c.delivered.stream_seq),
            );
        }
        out.push(&CONSUMER_DELIVERED_STREAM_SEQ, l(), c.delivered.stream_seq);
        out.push(
            &CONSUMER_DELIVERED_CONSUMER_SEQ,
            l(),
            c.delivered.consumer_seq,
        );
        out.push(&CONSUMER_ACK_FLOOR_STREAM_SEQ, l(), c.ack_floor.stream_seq);
        if let Some(cfg) = &c.config {
            out.push_opt(
                &CONSUMER_MAX_ACK_PENDING,
                l,
                (cfg.max_ack_pending > 0).then_some(cfg.max_ack_pending),
            );
        }
        if pick.leader {
            for p in c.cluster.iter().flat_map(|cl| &cl.replicas) {
                let pl = || with(&l(), "peer", &p.name);
                out.push(&CONSUMER_REPLICA_CURRENT, pl(), p.current);
                out.push(&CONSUMER_REPLICA_OFFLINE, pl(), p.offline);
                out.push(&CONSUMER_REPLICA_LAG, pl(), p.lag);
            }
        }
    }
    if !consumers.is_empty() {
        for (reason, n) in [("ephemeral", ephemeral), ("limit", over_limit)] {
            out.push(
                &NOT_EXPORTED,
                vec![("kind", "consumer".into()), ("reason", reason.into())],
                n,
            );
        }
    }
}

fn with(labels: &Labels, k: &'static str, v: &str) -> Labels {
    let mut l = labels.to_vec();
    l.push((k, v.to_string()));
    l.into()
}
