//! Owns the cluster-wide stream and consumer view built from every node's `/jsz`. Every
//! replica reports each stream, so streams and consumers are exported once, from the
//! report of their Raft leader, and `sum()` over them gives true cluster totals; replica
//! health comes from the leader's peer list.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::jsz::{ClusterInfo, ConsumerInfo, Jsz, StreamDetail};
use super::view::{ClusterView, ConsumerView, PeerView, StreamView};
use crate::config::ConsumerPolicy;
use crate::exposition::{Def, Labels, MetricSet};

pub static STREAM_INFO: Def = Def::gauge(
    "nats_stream_info",
    "A stream's leader, storage and retention, always 1; one series per stream cluster-wide.",
);
pub static STREAM_HAS_LEADER: Def = Def::gauge(
    "nats_stream_has_leader",
    "1 when a polled node's report names a leader for the stream, whether or not natsmon polls it; 0 when none does.",
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
    "1 when a polled node's report names a leader for the consumer, whether or not natsmon polls it; 0 when none does.",
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
pub static STREAM_LEADER_POLLED: Def = Def::gauge(
    "nats_stream_leader_polled",
    "1 when the stream leader's own report was used; 0 when its leader is on a node natsmon does not poll or that is down.",
);
pub static STREAM_AVAILABLE: Def = Def::gauge(
    "nats_stream_available",
    "1 while some polled node reports the stream; 0 for a stream natsmon saw whose every replica is on a node that is down or not polled.",
);
pub static CONSUMER_LEADER_POLLED: Def = Def::gauge(
    "nats_consumer_leader_polled",
    "1 when the consumer leader's own report was used; 0 when its leader is on a node natsmon does not poll or that is down.",
);
pub static CONSUMER_AVAILABLE: Def = Def::gauge(
    "nats_consumer_available",
    "1 while some polled node reports the consumer; 0 for a consumer natsmon saw whose every replica is on a node that is down or not polled.",
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
    /// A leader named by any report of the group, the chosen one or another.
    named: &'a str,
    /// The stream's last sequence as seen by the chosen report, to break ties between
    /// replicas when no leader is visible.
    last_seq: u64,
    /// The server whose report was chosen.
    from: &'a str,
}

/// Keeps the leader's report; among non-leaders, the most advanced one.
fn offer<'a, K: Ord, T>(map: &mut BTreeMap<K, Pick<'a, T>>, key: K, offered: Pick<'a, T>) {
    let Pick {
        item,
        leader,
        named,
        last_seq,
        from,
    } = offered;
    match map.entry(key) {
        Entry::Vacant(e) => {
            e.insert(offered);
        }
        Entry::Occupied(mut e) => {
            let p = e.get_mut();
            // The leader's own word on who leads wins; else any report that names one.
            let named = if leader || p.named.is_empty() {
                if named.is_empty() { p.named } else { named }
            } else {
                p.named
            };
            if (leader && !p.leader) || (leader == p.leader && last_seq > p.last_seq) {
                *p = Pick {
                    item,
                    leader,
                    named,
                    last_seq,
                    from,
                };
            } else {
                p.named = named;
            }
        }
    }
}

/// The leader a report names: its cluster block's, or itself for R1 and non-clustered
/// assets, which have none.
fn named_leader<'a>(cluster: Option<&'a ClusterInfo>, server_name: &'a str) -> &'a str {
    match cluster {
        Some(c) if !c.leader.is_empty() => &c.leader,
        _ if is_leader(cluster, server_name) => server_name,
        _ => "",
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

/// Which servers natsmon polls, by the names leader fields use.
#[derive(Debug, Default)]
pub struct Presence<'a> {
    /// Polled nodes that answered this round.
    pub up: HashSet<&'a str>,
    /// Of those, the ones whose `/jsz` holds only the streams they lead.
    pub leader_only: HashSet<&'a str>,
}

impl Presence<'_> {
    fn read_filtered(&self, server: &str) -> bool {
        self.up.contains(server) && self.leader_only.contains(server)
    }
}

/// What the view remembers between renders: every stream and consumer seen, with the
/// servers its replicas were on, so that one whose nodes are all away stays visible as
/// unavailable instead of vanishing; and each consumer's last figures, to tell a consumer
/// whose pending rises while it delivers nothing.
#[derive(Debug, Default)]
pub struct Memory {
    streams: BTreeMap<StreamKey, (StreamView, Vec<String>)>,
    consumers: BTreeMap<ConsumerKey, (ConsumerView, Vec<String>)>,
    /// The stream and consumer samples of the last render: what an object kept quietly
    /// (see `Absence`) shows until its servers are read whole.
    last: MetricSet,
}

impl Memory {
    /// Keeps `set`'s stream and consumer samples for the next render.
    pub fn keep_last(&mut self, mut set: MetricSet) {
        set.retain_families(|d| {
            d.name.starts_with("nats_stream_") || d.name.starts_with("nats_consumer_")
        });
        self.last = set;
    }
}

/// (cluster, account, stream), owned, as the memory keeps it across renders.
type StreamKey = (String, String, String);
/// (cluster, account, stream, consumer).
type ConsumerKey = (String, String, String, String);

/// Exports every stream and consumer once, from the report of its Raft leader, and
/// builds the same picks into the console's view.
pub fn collect_cluster<'a>(
    views: &'a [JszView<'a>],
    policy: &ConsumerPolicy,
    presence: &Presence<'_>,
    memory: &mut Memory,
    out: &mut MetricSet,
    view: &mut ClusterView,
) {
    let picks = pick_leaders(views);
    emit_streams(&picks, presence, memory, out, view);
    emit_consumers(&picks, policy, presence, memory, out, view);
    emit_unavailable(&picks, presence, memory, out, view);
}

/// The servers a group's replicas are on: its leader, the peers the report lists, and
/// the server that reported it.
fn replica_servers(named: &str, from: &str, cluster: Option<&ClusterInfo>) -> Vec<String> {
    let mut v: Vec<String> = [named, from]
        .into_iter()
        .chain(
            cluster
                .iter()
                .flat_map(|c| c.replicas.iter().map(|p| p.name.as_str())),
        )
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

fn peer_views(cluster: Option<&ClusterInfo>) -> Vec<PeerView> {
    cluster
        .iter()
        .flat_map(|c| &c.replicas)
        .map(|p| PeerView {
            name: p.name.clone(),
            current: p.current,
            offline: p.offline,
            lag: p.lag,
            active_seconds: p.active.max(0) as f64 / 1e9,
        })
        .collect()
}

/// Streams and consumers seen before that no polled node reports now: kept as
/// unavailable while every server they were on is down or not polled; forgotten once
/// one of those servers answers without reporting them (then they were deleted).
fn emit_unavailable(
    picks: &Picks<'_>,
    presence: &Presence<'_>,
    memory: &mut Memory,
    out: &mut MetricSet,
    view: &mut ClusterView,
) {
    let mut absence = Absence {
        presence,
        full: &mut view.full_jsz,
        quiet: BTreeSet::new(),
    };
    keep_away(
        &mut memory.streams,
        |(c, a, st)| {
            picks
                .streams
                .contains_key(&(c.as_str(), a.as_str(), st.as_str()))
        },
        |(c, a, st)| {
            vec![
                ("cluster", c.clone()),
                ("account", a.clone()),
                ("stream", st.clone()),
            ]
        },
        [&STREAM_AVAILABLE, &STREAM_HAS_LEADER, &STREAM_LEADER_POLLED],
        &mut absence,
        out,
        &mut view.streams,
    );
    keep_away(
        &mut memory.consumers,
        |(c, a, st, name)| {
            picks
                .consumers
                .contains_key(&((c.as_str(), a.as_str(), st.as_str()), name.as_str()))
        },
        |(c, a, st, name)| {
            vec![
                ("cluster", c.clone()),
                ("account", a.clone()),
                ("stream", st.clone()),
                ("consumer", name.clone()),
            ]
        },
        [
            &CONSUMER_AVAILABLE,
            &CONSUMER_HAS_LEADER,
            &CONSUMER_LEADER_POLLED,
        ],
        &mut absence,
        out,
        &mut view.consumers,
    );
    // A stream whose leader's node just went down is in no filtered report until its
    // other servers are read whole, a round later: its last samples stand meanwhile, so
    // that its series do not blink out when one node of three dies.
    if !absence.quiet.is_empty() {
        let quiet = &absence.quiet;
        out.carry(&memory.last, |labels| {
            // The object a sample belongs to, by the same label values `quiet` holds.
            let object = ["cluster", "account", "stream", "consumer"]
                .into_iter()
                .filter_map(|k| labels.iter().find(|(lk, _)| *lk == k).map(|(_, v)| v));
            quiet.iter().any(|q| q.iter().eq(object.clone()))
        });
    }
    view.streams
        .sort_by(|x, y| (&x.cluster, &x.account, &x.name).cmp(&(&y.cluster, &y.account, &y.name)));
    view.consumers.sort_by(|x, y| {
        (&x.cluster, &x.account, &x.stream, &x.name)
            .cmp(&(&y.cluster, &y.account, &y.stream, &y.name))
    });
}

/// A remembered object that can be shown as unavailable.
trait Unavailable: Clone {
    fn mark_unavailable(&mut self);
}

impl Unavailable for StreamView {
    fn mark_unavailable(&mut self) {
        self.available = false;
        self.has_leader = false;
        self.leader_polled = false;
    }
}

impl Unavailable for ConsumerView {
    fn mark_unavailable(&mut self) {
        self.available = false;
        self.has_leader = false;
        self.leader_polled = false;
    }
}

/// Where the servers of an object no report has this round are: all away (then it is
/// kept as unavailable), or some read filtered (a filtered report leaves out streams its
/// server does not lead, so the object is only gone once its servers were read whole:
/// until then it is kept without series, and those servers go into `full`).
struct Absence<'p> {
    presence: &'p Presence<'p>,
    full: &'p mut BTreeSet<String>,
    /// The objects kept quietly this round, by their label values: cluster, account,
    /// stream, and a consumer's name.
    quiet: BTreeSet<Vec<String>>,
}

impl Absence<'_> {
    fn away(&self, servers: &[String]) -> bool {
        !servers.is_empty()
            && servers
                .iter()
                .all(|s| !self.presence.up.contains(s.as_str()))
    }

    /// Asks for the servers read filtered whole; true when there were any.
    fn read_whole(&mut self, servers: &[String]) -> bool {
        let mut any = false;
        for s in servers {
            if self.presence.read_filtered(s) {
                any = true;
                self.full.insert(s.clone());
            }
        }
        any
    }
}

/// Keeps each remembered object no report has this round while all its servers are
/// away, exporting it as unavailable (`defs`: available, has_leader, leader_polled, all
/// 0) and showing it in `shown`; keeps it quietly while some of its servers were read
/// filtered (see `Absence`), shown as it was and its last samples carried (see
/// `emit_unavailable`); forgets it once its servers were read whole without it.
fn keep_away<K: Ord, V: Unavailable>(
    remembered: &mut BTreeMap<K, (V, Vec<String>)>,
    reported: impl Fn(&K) -> bool,
    labels: impl Fn(&K) -> Vec<(&'static str, String)>,
    defs: [&'static Def; 3],
    absence: &mut Absence<'_>,
    out: &mut MetricSet,
    shown: &mut Vec<V>,
) {
    remembered.retain(|key, (v, servers)| {
        if reported(key) {
            return true;
        }
        if !absence.away(servers) {
            let kept = absence.read_whole(servers);
            if kept {
                absence
                    .quiet
                    .insert(labels(key).into_iter().map(|(_, v)| v).collect());
                shown.push(v.clone());
            }
            return kept;
        }
        let l: Labels = labels(key).into();
        for def in defs {
            out.push(def, l.clone(), 0u64);
        }
        let mut v = v.clone();
        v.mark_unavailable();
        shown.push(v);
        true
    });
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
                let pick = Pick {
                    item: s,
                    leader: is_leader(s.cluster.as_ref(), v.server_name),
                    named: named_leader(s.cluster.as_ref(), v.server_name),
                    last_seq: s.state.last_seq,
                    from: v.server_name,
                };
                offer(&mut streams, key, pick);
                for c in &s.consumer_detail {
                    let pick = Pick {
                        item: c,
                        leader: is_leader(c.cluster.as_ref(), v.server_name),
                        named: named_leader(c.cluster.as_ref(), v.server_name),
                        last_seq: c.delivered.stream_seq,
                        from: v.server_name,
                    };
                    offer(&mut consumers, (key, c.name.as_str()), pick);
                }
            }
        }
    }
    Picks { streams, consumers }
}

fn emit_streams(
    picks: &Picks<'_>,
    presence: &Presence<'_>,
    memory: &mut Memory,
    out: &mut MetricSet,
    view: &mut ClusterView,
) {
    let Picks { streams, consumers } = picks;
    // What a stream without a config (none read yet) is taken to have; made once, not
    // cloned per stream and render.
    let no_config = Default::default();
    for ((cluster, account, stream), pick) in streams {
        let s = pick.item;
        let shared: Labels = vec![
            ("cluster", cluster.to_string()),
            ("account", account.to_string()),
            ("stream", stream.to_string()),
        ]
        .into();
        let l = || shared.clone();
        let cfg = s.config.as_ref().unwrap_or(&no_config);
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
        out.push(&STREAM_HAS_LEADER, l(), !pick.named.is_empty());
        out.push(&STREAM_LEADER_POLLED, l(), pick.leader);
        out.push(&STREAM_AVAILABLE, l(), 1u64);
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
        let sv = StreamView {
            cluster: cluster.to_string(),
            account: account.to_string(),
            name: stream.to_string(),
            replicas: u64::try_from(cfg.num_replicas).unwrap_or(0),
            leader: pick.named.to_string(),
            has_leader: !pick.named.is_empty(),
            leader_polled: pick.leader,
            available: true,
            messages: s.state.messages,
            bytes: s.state.bytes,
            first_seq: s.state.first_seq,
            last_seq: s.state.last_seq,
            max_msgs: u64::try_from(cfg.max_msgs).ok().filter(|n| *n > 0),
            max_bytes: u64::try_from(cfg.max_bytes).ok().filter(|n| *n > 0),
            consumers: s.state.consumer_count.max(seen),
            storage: cfg.storage.clone(),
            peers: if pick.leader {
                peer_views(s.cluster.as_ref())
            } else {
                Vec::new()
            },
        };
        let servers = replica_servers(pick.named, pick.from, s.cluster.as_ref());
        // A filtered report leaves a leaderless stream out: while it has no leader, its
        // servers are read whole, so that it stays in view with has_leader 0.
        if pick.named.is_empty() {
            view.full_jsz.extend(
                servers
                    .iter()
                    .filter(|s| presence.up.contains(s.as_str()))
                    .cloned(),
            );
        }
        memory.streams.insert(
            (cluster.to_string(), account.to_string(), stream.to_string()),
            (sv.clone(), servers),
        );
        view.streams.push(sv);
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
                let pl = with(&shared, "peer", &p.name);
                let pl = || pl.clone();
                out.push(&STREAM_REPLICA_CURRENT, pl(), p.current);
                out.push(&STREAM_REPLICA_OFFLINE, pl(), p.offline);
                out.push(&STREAM_REPLICA_LAG, pl(), p.lag);
                out.push(&STREAM_REPLICA_ACTIVE, pl(), p.active.max(0) as f64 / 1e9);
            }
        }
        for src in s.mirror.iter().chain(&s.sources) {
            let sl = with(&shared, "source", &src.name);
            let sl = || sl.clone();
            out.push(&STREAM_SOURCE_LAG, sl(), src.lag);
            if src.active >= 0 {
                out.push(&STREAM_SOURCE_ACTIVE, sl(), src.active as f64 / 1e9);
            }
        }
    }
}

/// What a consumer's chosen report says of its pending messages. Only the consumer's
/// leader counts them: a replica reports 0. From a replica's report the figure is
/// derived where that is exact (see `derivable`); else the consumer's leader must be
/// read whole (`None`).
fn pending(
    pick: &Pick<'_, ConsumerInfo>,
    stream: Option<&Pick<'_, StreamDetail>>,
    presence: &Presence<'_>,
) -> Option<u64> {
    let c = pick.item;
    if pick.leader {
        return Some(c.num_pending);
    }
    let st = &stream?.item.state;
    derivable(pick, stream, presence).then(|| {
        st.last_seq
            .saturating_sub(c.delivered.stream_seq.max(st.first_seq.saturating_sub(1)))
    })
}

/// Whether a replica's report gives a consumer's exact pending count: a consumer of
/// every subject of a stream without interior deletes has every message after its
/// delivered sequence pending, and a replica of 2.10 and later keeps the delivered
/// sequence current (one of 2.9 does not: it reported delivered 0 while its leader had
/// delivered 12). So the stream's leader, whose report carries every consumer of the
/// stream, must have been read filtered (2.10.19 and later); the most advanced replica
/// is then at least as current as its report. The answer depends on the stream's
/// leader, not on whose consumer report was chosen, so the reads it asks for do not
/// flip between polls.
fn derivable(
    pick: &Pick<'_, ConsumerInfo>,
    stream: Option<&Pick<'_, StreamDetail>>,
    presence: &Presence<'_>,
) -> bool {
    let unfiltered = pick
        .item
        .config
        .as_ref()
        .is_some_and(|cfg| cfg.unfiltered());
    unfiltered
        && stream
            .is_some_and(|s| presence.leader_only.contains(s.from) && s.item.state.num_deleted == 0)
}

fn emit_consumers(
    picks: &Picks<'_>,
    policy: &ConsumerPolicy,
    presence: &Presence<'_>,
    memory: &mut Memory,
    out: &mut MetricSet,
    view: &mut ClusterView,
) {
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
        out.push(&CONSUMER_HAS_LEADER, l(), !pick.named.is_empty());
        out.push(&CONSUMER_LEADER_POLLED, l(), pick.leader);
        out.push(&CONSUMER_AVAILABLE, l(), 1u64);
        let key = (
            cluster.to_string(),
            account.to_string(),
            stream.to_string(),
            name.to_string(),
        );
        let stream_pick = streams.get(&(*cluster, *account, *stream));
        // Pending, waiting pulls and replica health are the consumer leader's alone, and
        // a filtered read of it leaves out the streams it does not lead. A consumer led
        // elsewhere than its stream has its leader read whole when its pending cannot be
        // derived (or when asked to, for waiting pulls and replica health), every poll,
        // so that the choice does not flip between polls.
        if !pick.named.is_empty()
            && presence.up.contains(pick.named)
            && stream_pick.is_none_or(|sp| sp.named != pick.named)
            && (policy.read_consumer_leaders || !derivable(pick, stream_pick, presence))
        {
            view.full_jsz.insert(pick.named.to_string());
        }
        // Until that read arrives, the figure is derived where exact, else the last one
        // stands.
        let num_pending = pending(pick, stream_pick, presence).or_else(|| {
            memory
                .consumers
                .get(&key)
                .filter(|(prev, _)| prev.available)
                .map(|(prev, _)| prev.num_pending)
        });
        out.push_opt(&CONSUMER_PENDING, l, num_pending);
        out.push(&CONSUMER_ACK_PENDING, l(), c.num_ack_pending);
        out.push(&CONSUMER_REDELIVERED, l(), c.num_redelivered);
        // Pull requests wait at the consumer's leader; a replica always reports none.
        if pick.leader {
            out.push(&CONSUMER_WAITING, l(), c.num_waiting);
        }
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
        let num_pending = num_pending.unwrap_or(0);
        // Pending rose since the last render while the delivered sequence stood still.
        let stalled = memory.consumers.get(&key).is_some_and(|(prev, _)| {
            prev.available
                && num_pending > prev.num_pending
                && c.delivered.stream_seq == prev.delivered_stream_seq
        });
        let cv = ConsumerView {
            cluster: key.0.clone(),
            account: key.1.clone(),
            stream: key.2.clone(),
            name: key.3.clone(),
            leader: pick.named.to_string(),
            has_leader: !pick.named.is_empty(),
            leader_polled: pick.leader,
            available: true,
            num_pending,
            num_ack_pending: c.num_ack_pending,
            num_redelivered: c.num_redelivered,
            num_waiting: c.num_waiting,
            lag: streams.get(&(*cluster, *account, *stream)).map(|sp| {
                sp.item
                    .state
                    .last_seq
                    .saturating_sub(c.delivered.stream_seq)
            }),
            delivered_stream_seq: c.delivered.stream_seq,
            ack_floor_stream_seq: c.ack_floor.stream_seq,
            last_active: c
                .delivered
                .last_active
                .as_deref()
                .and_then(crate::time::rfc3339_to_unix),
            stalled,
            peers: if pick.leader {
                peer_views(c.cluster.as_ref())
            } else {
                Vec::new()
            },
        };
        memory.consumers.insert(
            key,
            (
                cv.clone(),
                replica_servers(pick.named, pick.from, c.cluster.as_ref()),
            ),
        );
        view.consumers.push(cv);
        if pick.leader {
            for p in c.cluster.iter().flat_map(|cl| &cl.replicas) {
                let pl = with(&shared, "peer", &p.name);
                let pl = || pl.clone();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Value;

    fn jsz(leader: &str) -> Jsz {
        serde_json::from_value(serde_json::json!({
            "account_details": [{
                "name": "A",
                "stream_detail": [{
                    "name": "ONE",
                    "cluster": {"name": "c1", "leader": leader, "replicas": []},
                    "state": {"messages": 7, "last_seq": 7},
                    "consumer_detail": [{
                        "name": "c", "num_pending": 3,
                        "delivered": {"stream_seq": 4},
                        "cluster": {"name": "c1", "leader": leader, "replicas": []}
                    }]
                }]
            }]
        }))
        .unwrap()
    }

    fn render(views: &[JszView<'_>], up: &[&str], memory: &mut Memory) -> (MetricSet, ClusterView) {
        let presence = Presence {
            up: up.iter().copied().collect(),
            leader_only: Default::default(),
        };
        let (mut out, mut view) = (MetricSet::default(), ClusterView::default());
        collect_cluster(
            views,
            &ConsumerPolicy::default(),
            &presence,
            memory,
            &mut out,
            &mut view,
        );
        (out, view)
    }

    fn get(set: &MetricSet, name: &str) -> Option<f64> {
        set.get(name, &[("stream", "ONE")]).map(|v| match v {
            Value::Int(n) => n as f64,
            Value::Uint(n) => n as f64,
            Value::Float(f) => f,
        })
    }

    #[test]
    fn a_stream_whose_nodes_are_away_stays_visible_until_one_answers_without_it() {
        let j = jsz("n1");
        let views = [JszView {
            node: "n1",
            server_name: "n1",
            cluster: "c1",
            jsz: &j,
        }];
        let mut memory = Memory::default();
        let (out, view) = render(&views, &["n1"], &mut memory);
        assert_eq!(get(&out, "nats_stream_available"), Some(1.0));
        assert_eq!(get(&out, "nats_stream_leader_polled"), Some(1.0));
        assert!(view.streams[0].available && view.consumers[0].available);

        // n1 is down: nobody reports ONE, and it stays, unavailable, without figures.
        let (out, view) = render(&[], &["n2"], &mut memory);
        assert_eq!(get(&out, "nats_stream_available"), Some(0.0));
        assert_eq!(get(&out, "nats_stream_has_leader"), Some(0.0));
        assert_eq!(get(&out, "nats_stream_messages"), None);
        assert_eq!(view.streams.len(), 1);
        assert!(!view.streams[0].available && !view.consumers[0].available);

        // n1 answers and does not report it: it was deleted.
        let (out, view) = render(&[], &["n1", "n2"], &mut memory);
        assert_eq!(get(&out, "nats_stream_available"), None);
        assert!(view.streams.is_empty() && view.consumers.is_empty());
    }

    #[test]
    fn a_leader_on_an_unpolled_node_is_named_not_missing() {
        // n2 is a follower whose report names n3, which natsmon does not poll.
        let j = jsz("n3");
        let views = [JszView {
            node: "n2",
            server_name: "n2",
            cluster: "c1",
            jsz: &j,
        }];
        let (out, view) = render(&views, &["n2"], &mut Memory::default());
        assert_eq!(get(&out, "nats_stream_has_leader"), Some(1.0));
        assert_eq!(get(&out, "nats_stream_leader_polled"), Some(0.0));
        assert_eq!(view.streams[0].leader, "n3");
        assert_eq!(get(&out, "nats_stream_messages"), Some(7.0));
    }

    #[test]
    fn a_consumer_whose_pending_rises_while_nothing_is_delivered_is_stalled() {
        let mut memory = Memory::default();
        let j1 = jsz("n1");
        let v1 = [JszView {
            node: "n1",
            server_name: "n1",
            cluster: "c1",
            jsz: &j1,
        }];
        let (_, view) = render(&v1, &["n1"], &mut memory);
        assert!(!view.consumers[0].stalled);
        let mut j2 = jsz("n1");
        j2.account_details[0].stream_detail[0].consumer_detail[0].num_pending = 9;
        let v2 = [JszView {
            node: "n1",
            server_name: "n1",
            cluster: "c1",
            jsz: &j2,
        }];
        let (_, view) = render(&v2, &["n1"], &mut memory);
        assert!(view.consumers[0].stalled);
    }

    /// A filtered report of n1, which leads ONE (first 3, last 10, no deletes); its
    /// consumer `c` is led by n2 and, in n1's replica view, has pending 0.
    fn filtered(filter_subject: &str, num_deleted: u64) -> Jsz {
        let mut j: Jsz = serde_json::from_value(serde_json::json!({
            "account_details": [{
                "name": "A",
                "stream_detail": [{
                    "name": "ONE",
                    "cluster": {"name": "c1", "leader": "n1", "replicas": [{"name": "n2"}, {"name": "n3"}]},
                    "state": {"messages": 8, "first_seq": 3, "last_seq": 10, "num_deleted": num_deleted},
                    "consumer_detail": [{
                        "name": "c", "num_pending": 0, "num_waiting": 0, "num_ack_pending": 2,
                        "delivered": {"stream_seq": 6},
                        "config": {"durable_name": "c", "filter_subject": filter_subject},
                        "cluster": {"name": "c1", "leader": "n2", "replicas": [{"name": "n1"}, {"name": "n3"}]}
                    }]
                }]
            }]
        }))
        .unwrap();
        j.stream_leader_only = true;
        j
    }

    fn filtered_render(j: &Jsz, memory: &mut Memory) -> (MetricSet, ClusterView) {
        let views = [JszView {
            node: "n1",
            server_name: "n1",
            cluster: "c1",
            jsz: j,
        }];
        let presence = Presence {
            up: ["n1", "n2", "n3"].into_iter().collect(),
            leader_only: ["n1", "n2", "n3"].into_iter().collect(),
        };
        let (mut out, mut view) = (MetricSet::default(), ClusterView::default());
        collect_cluster(
            &views,
            &ConsumerPolicy::default(),
            &presence,
            memory,
            &mut out,
            &mut view,
        );
        (out, view)
    }

    fn consumer(set: &MetricSet, name: &str) -> Option<f64> {
        set.get(name, &[("stream", "ONE"), ("consumer", "c")])
            .map(|v| match v {
                Value::Int(n) => n as f64,
                Value::Uint(n) => n as f64,
                Value::Float(f) => f,
            })
    }

    #[test]
    fn a_replica_view_of_an_unfiltered_consumer_gets_its_exact_pending() {
        let (out, view) = filtered_render(&filtered("", 0), &mut Memory::default());
        // Messages 7..=10 are after the delivered sequence 6.
        assert_eq!(consumer(&out, "nats_consumer_num_pending"), Some(4.0));
        assert_eq!(consumer(&out, "nats_consumer_leader_polled"), Some(0.0));
        assert_eq!(consumer(&out, "nats_consumer_num_ack_pending"), Some(2.0));
        // Only the leader knows its waiting pulls.
        assert_eq!(consumer(&out, "nats_consumer_num_waiting"), None);
        assert_eq!(view.consumers[0].num_pending, 4);
        assert!(view.full_jsz.is_empty(), "{:?}", view.full_jsz);
    }

    #[test]
    fn asked_to_read_consumer_leaders_it_reads_them_whole() {
        let views = [JszView {
            node: "n1",
            server_name: "n1",
            cluster: "c1",
            jsz: &filtered("", 0),
        }];
        let presence = Presence {
            up: ["n1", "n2", "n3"].into_iter().collect(),
            leader_only: ["n1", "n2", "n3"].into_iter().collect(),
        };
        let policy = ConsumerPolicy {
            read_consumer_leaders: true,
            ..Default::default()
        };
        let (mut out, mut view) = (MetricSet::default(), ClusterView::default());
        let mut memory = Memory::default();
        collect_cluster(&views, &policy, &presence, &mut memory, &mut out, &mut view);
        let want: std::collections::BTreeSet<String> = ["n2".to_string()].into();
        assert_eq!(view.full_jsz, want);
    }

    #[test]
    fn a_replica_view_that_cannot_give_pending_asks_for_the_leader_whole() {
        for (filter, deleted) in [("orders.eu", 0), ("", 2)] {
            let mut memory = Memory::default();
            let (out, view) = filtered_render(&filtered(filter, deleted), &mut memory);
            assert_eq!(
                consumer(&out, "nats_consumer_num_pending"),
                None,
                "{filter} {deleted}"
            );
            assert!(view.full_jsz.contains("n2"), "{:?}", view.full_jsz);
            assert!(!view.full_jsz.contains("n1"));
        }
    }

    #[test]
    fn a_stream_missing_from_filtered_reports_is_kept_until_read_whole() {
        let mut memory = Memory::default();
        let (out, _) = filtered_render(&filtered("", 0), &mut memory);
        assert_eq!(get(&out, "nats_stream_messages"), Some(8.0));
        assert_eq!(consumer(&out, "nats_consumer_num_pending"), Some(4.0));
        memory.keep_last(out);
        // ONE is in no filtered report now (its leader's node died, or it was deleted):
        // kept with its last samples, and its servers are to be read whole.
        let empty = Jsz {
            stream_leader_only: true,
            ..Default::default()
        };
        let (out, view) = filtered_render(&empty, &mut memory);
        assert_eq!(get(&out, "nats_stream_available"), Some(1.0));
        assert_eq!(get(&out, "nats_stream_messages"), Some(8.0));
        assert_eq!(consumer(&out, "nats_consumer_num_pending"), Some(4.0));
        assert_eq!(
            out.get(
                "nats_stream_messages",
                &[("stream", "ONE"), ("consumer", "c")]
            ),
            None,
            "a consumer's samples are not the stream's"
        );
        assert_eq!(view.streams.len(), 1, "the console keeps showing it");
        assert_eq!(view.consumers.len(), 1);
        let want: std::collections::BTreeSet<String> =
            ["n1", "n2", "n3"].into_iter().map(String::from).collect();
        assert_eq!(view.full_jsz, want);
        memory.keep_last(out);
        // Read whole and still absent: deleted.
        let whole = Jsz::default();
        let views = [JszView {
            node: "n1",
            server_name: "n1",
            cluster: "c1",
            jsz: &whole,
        }];
        let (out, view) = render(&views, &["n1", "n2", "n3"], &mut memory);
        assert!(view.streams.is_empty() && view.full_jsz.is_empty());
        assert!(out.is_empty(), "nothing of it is carried once read whole");
    }

    #[test]
    fn a_leaderless_stream_keeps_its_servers_read_whole() {
        let mut j = jsz("");
        j.account_details[0].stream_detail[0].cluster = Some(ClusterInfo {
            name: "c1".into(),
            leader: String::new(),
            replicas: vec![super::super::PeerInfo {
                name: "n2".into(),
                ..Default::default()
            }],
        });
        let views = [JszView {
            node: "n1",
            server_name: "n1",
            cluster: "c1",
            jsz: &j,
        }];
        let (out, view) = render(&views, &["n1", "n2"], &mut Memory::default());
        assert_eq!(get(&out, "nats_stream_has_leader"), Some(0.0));
        let want: std::collections::BTreeSet<String> =
            ["n1", "n2"].into_iter().map(String::from).collect();
        assert_eq!(view.full_jsz, want);
    }
}
