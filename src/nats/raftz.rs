//! Owns `/raftz` (nats-server 2.10.17 and later): the state of every Raft group a node
//! takes part in (the JetStream meta group, and each replicated stream's and consumer's
//! group), by account, and the pure mapping of one node's groups to metrics. Without
//! `acc` the server lists only the system account (the meta group); the poller asks
//! once more per JetStream account (`?acc=`) and merges the answers into one `Raftz`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use crate::exposition::{Def, MetricSet};

pub const PATH: &str = "/raftz";

/// The first release that serves `/raftz`; older nodes are not asked.
pub const MIN_VERSION: (u64, u64, u64) = (2, 10, 17);

/// Raft groups exported per node (README "Cardinality bounds"): meta first, then
/// streams and consumers by account and group name. The rest are counted in
/// `natsmon_objects_not_exported{kind="raft_group",reason="limit"}` and still counted
/// in `nats_raft_groups` and `nats_raft_groups_behind`.
pub const GROUP_LIMIT: usize = 1000;

/// Whether a server of this `/varz` version serves `/raftz`. A version that does not
/// parse (a custom build) is asked: a 404 is handled as absent anyway.
pub fn supported(version: &str) -> bool {
    let core = version.trim_start_matches('v');
    let core = core.split(['-', '+', ' ']).next().unwrap_or_default();
    let mut parts = core.split('.').map(|p| p.parse::<u64>());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => (a, b, c) >= MIN_VERSION,
        (Some(Ok(a)), Some(Ok(b)), None) => (a, b, 0) >= MIN_VERSION,
        _ => true,
    }
}

/// One node's Raft groups: account -> group name -> group.
#[derive(Debug, Clone, Default)]
pub struct Raftz {
    pub accounts: BTreeMap<String, BTreeMap<String, RaftGroup>>,
    /// Groups the poller knows of but did not ask for, because the node already had
    /// `GROUP_LIMIT` groups in the accounts asked before (estimated from `/jsz`).
    pub not_asked: u64,
}

impl<'de> Deserialize<'de> for Raftz {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        type Wire = Option<BTreeMap<String, Option<BTreeMap<String, Option<RaftGroup>>>>>;
        let accounts = Wire::deserialize(d)?
            .unwrap_or_default()
            .into_iter()
            .map(|(acc, groups)| {
                let groups = groups
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(g, v)| (g, v.unwrap_or_default()))
                    .collect();
                (acc, groups)
            })
            .collect();
        Ok(Raftz {
            accounts,
            not_asked: 0,
        })
    }
}

impl Raftz {
    /// Adds another answer (one account's groups) to this one.
    pub fn merge(&mut self, other: Raftz) {
        for (acc, groups) in other.accounts {
            self.accounts.entry(acc).or_default().extend(groups);
        }
        self.not_asked += other.not_asked;
    }

    pub fn group_count(&self) -> usize {
        self.accounts.values().map(BTreeMap::len).sum()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RaftGroup {
    /// This node's peer ID in the group (Raft IDs are not server names).
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub id: String,
    /// `LEADER`, `FOLLOWER`, `CANDIDATE` or `CLOSED`.
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub state: String,
    pub size: u64,
    pub quorum_needed: u64,
    pub observer: bool,
    pub paused: bool,
    pub committed: u64,
    pub applied: u64,
    pub catching_up: bool,
    /// The leader's peer ID; empty while the group has none.
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub leader: String,
    pub term: u64,
    /// Set when the group's write-ahead log failed; the group stops.
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub wal_error: String,
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub peers: BTreeMap<String, RaftPeer>,
}

/// Another member of the group as this node knows it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RaftPeer {
    #[serde(deserialize_with = "crate::nats::null_default")]
    pub name: String,
    pub known: bool,
    /// The last index the leader replicated to the peer; only the leader fills it.
    pub last_replicated_index: Option<u64>,
}

impl RaftGroup {
    pub fn is_leader(&self) -> bool {
        self.state.eq_ignore_ascii_case("leader") || (!self.id.is_empty() && self.id == self.leader)
    }

    /// Committed entries this node has not applied yet.
    pub fn apply_lag(&self) -> u64 {
        self.committed.saturating_sub(self.applied)
    }

    /// Behind: catching up from the leader, or not applying what was committed.
    pub fn behind(&self) -> bool {
        self.catching_up || self.apply_lag() > 0
    }

    /// On the leader, peers the leader has replicated everything applied to (as
    /// nats-server's own `current`); `None` off the leader, which does not know.
    pub fn peers_current(&self) -> Option<u64> {
        self.is_leader().then(|| {
            self.peers
                .values()
                .filter(|p| p.known && p.last_replicated_index.unwrap_or(0) >= self.applied)
                .count() as u64
        })
    }
}

/// What kind of asset a group replicates, from nats-server's group naming.
pub fn kind(group: &str) -> &'static str {
    if group == "_meta_" {
        "meta"
    } else if group.starts_with("S-") {
        "stream"
    } else if group.starts_with("C-") {
        "consumer"
    } else {
        "other"
    }
}

pub static GROUPS: Def = Def::gauge(
    "nats_raft_groups",
    "Raft groups this node takes part in, from /raftz (2.10.17 and later).",
);
pub static GROUPS_BEHIND: Def = Def::gauge(
    "nats_raft_groups_behind",
    "Raft groups on this node that are catching up or have committed entries not yet applied.",
);
pub static IS_LEADER: Def = Def::gauge(
    "nats_raft_group_is_leader",
    "1 when this node leads the Raft group.",
);
pub static HAS_LEADER: Def = Def::gauge(
    "nats_raft_group_has_leader",
    "1 when this node knows a leader of the Raft group.",
);
pub static TERM: Def = Def::gauge("nats_raft_group_term", "Current Raft term of the group.");
pub static COMMITTED: Def = Def::gauge(
    "nats_raft_group_committed_index",
    "Highest Raft log index this node knows to be committed.",
);
pub static APPLIED: Def = Def::gauge(
    "nats_raft_group_applied_index",
    "Highest Raft log index this node has applied.",
);
pub static APPLY_LAG: Def = Def::gauge(
    "nats_raft_group_apply_lag",
    "Committed Raft entries this node has not applied yet (committed minus applied).",
);
pub static CATCHING_UP: Def = Def::gauge(
    "nats_raft_group_catching_up",
    "1 while this node catches up with the group's leader.",
);
pub static SIZE: Def = Def::gauge(
    "nats_raft_group_size",
    "Members of the Raft group, this node included.",
);
pub static QUORUM_NEEDED: Def = Def::gauge(
    "nats_raft_group_quorum_needed",
    "Members the Raft group needs for a quorum.",
);
pub static PEERS: Def = Def::gauge(
    "nats_raft_group_peers",
    "Other members of the Raft group this node knows of.",
);
pub static PEERS_CURRENT: Def = Def::gauge(
    "nats_raft_group_peers_current",
    "Other members the leader has replicated every applied entry to; on the leader only.",
);
pub static WAL_ERROR: Def = Def::gauge(
    "nats_raft_group_wal_error",
    "1 when the Raft group's write-ahead log reported an error.",
);

/// Exports one node's groups, at most `GROUP_LIMIT` of them (meta first); returns how
/// many were left out, the unasked ones included.
pub fn collect(r: &Raftz, node: &str, out: &mut MetricSet) -> u64 {
    let mut all: Vec<(&str, &str, &RaftGroup)> = r
        .accounts
        .iter()
        .flat_map(|(acc, gs)| gs.iter().map(move |(g, v)| (acc.as_str(), g.as_str(), v)))
        .collect();
    // Meta first, then by account and name: the cap keeps the group that matters most.
    all.sort_by_key(|(acc, g, _)| (kind(g) != "meta", *acc, *g));
    out.push(
        &GROUPS,
        vec![("node", node.to_string())],
        all.len() as u64 + r.not_asked,
    );
    out.push(
        &GROUPS_BEHIND,
        vec![("node", node.to_string())],
        all.iter().filter(|(_, _, g)| g.behind()).count() as u64,
    );
    for (acc, name, g) in all.iter().take(GROUP_LIMIT) {
        let l: crate::exposition::Labels = vec![
            ("node", node.to_string()),
            ("account", acc.to_string()),
            ("kind", kind(name).to_string()),
            ("group", name.to_string()),
        ]
        .into();
        out.push(&IS_LEADER, l.clone(), g.is_leader());
        out.push(&HAS_LEADER, l.clone(), !g.leader.is_empty());
        out.push(&TERM, l.clone(), g.term);
        out.push(&COMMITTED, l.clone(), g.committed);
        out.push(&APPLIED, l.clone(), g.applied);
        out.push(&APPLY_LAG, l.clone(), g.apply_lag());
        out.push(&CATCHING_UP, l.clone(), g.catching_up);
        out.push(&SIZE, l.clone(), g.size);
        out.push(&QUORUM_NEEDED, l.clone(), g.quorum_needed);
        out.push(&PEERS, l.clone(), g.peers.len());
        out.push_opt(&PEERS_CURRENT, || l.clone(), g.peers_current());
        out.push(&WAL_ERROR, l, !g.wal_error.is_empty());
    }
    all.len().saturating_sub(GROUP_LIMIT) as u64 + r.not_asked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Value;

    const LEADER: &str = r#"{
      "A": {
        "S-R3F-abc": {"id": "p1", "state": "LEADER", "size": 3, "quorum_needed": 2,
          "committed": 10, "applied": 10, "leader": "p1", "term": 2,
          "peers": {"p2": {"name": "n2", "known": true, "last_replicated_index": 10},
                    "p3": {"name": "n3", "known": true, "last_replicated_index": 7}},
          "future_field": {"x": 1}},
        "C-R3F-def": {"id": "p1", "state": "FOLLOWER", "committed": 9, "applied": 4,
          "catching_up": true, "leader": "", "wal_error": "disk full", "peers": null}
      },
      "SYS": {"_meta_": {"id": "p1", "state": "FOLLOWER", "committed": 3, "applied": 3,
          "leader": "p9", "term": 1, "size": 3, "quorum_needed": 2, "peers": {}}},
      "X": null
    }"#;

    fn get(m: &MetricSet, name: &str, group: &str) -> Option<Value> {
        m.get(name, &[("node", "n1"), ("group", group)])
    }

    #[test]
    fn parses_groups_tolerantly_and_exports_them() {
        let r: Raftz = serde_json::from_str(LEADER).unwrap();
        assert_eq!(r.group_count(), 3);
        let mut m = MetricSet::default();
        assert_eq!(collect(&r, "n1", &mut m), 0);
        assert_eq!(
            get(&m, "nats_raft_group_is_leader", "S-R3F-abc"),
            Some(Value::Int(1))
        );
        assert_eq!(
            get(&m, "nats_raft_group_is_leader", "_meta_"),
            Some(Value::Int(0))
        );
        assert_eq!(
            get(&m, "nats_raft_group_peers_current", "S-R3F-abc"),
            Some(Value::Uint(1))
        );
        assert_eq!(get(&m, "nats_raft_group_peers_current", "_meta_"), None);
        assert_eq!(
            get(&m, "nats_raft_group_peers", "S-R3F-abc"),
            Some(Value::Uint(2))
        );
        assert_eq!(
            get(&m, "nats_raft_group_apply_lag", "C-R3F-def"),
            Some(Value::Uint(5))
        );
        assert_eq!(
            get(&m, "nats_raft_group_catching_up", "C-R3F-def"),
            Some(Value::Int(1))
        );
        assert_eq!(
            get(&m, "nats_raft_group_wal_error", "C-R3F-def"),
            Some(Value::Int(1))
        );
        assert_eq!(
            get(&m, "nats_raft_group_has_leader", "C-R3F-def"),
            Some(Value::Int(0))
        );
        assert_eq!(
            get(&m, "nats_raft_group_term", "_meta_"),
            Some(Value::Uint(1))
        );
        assert_eq!(
            m.get(
                "nats_raft_group_size",
                &[("kind", "meta"), ("account", "SYS")]
            ),
            Some(Value::Uint(3))
        );
        assert_eq!(
            m.get(
                "nats_raft_group_quorum_needed",
                &[("kind", "stream"), ("account", "A")]
            ),
            Some(Value::Uint(2))
        );
        assert_eq!(
            m.get("nats_raft_groups", &[("node", "n1")]),
            Some(Value::Uint(3))
        );
        assert_eq!(
            m.get("nats_raft_groups_behind", &[("node", "n1")]),
            Some(Value::Uint(1))
        );
    }

    #[test]
    fn null_and_empty_answers_are_no_groups() {
        for body in ["null", "{}"] {
            let r: Raftz = serde_json::from_str(body).unwrap();
            let mut m = MetricSet::default();
            assert_eq!(collect(&r, "n1", &mut m), 0);
            assert_eq!(m.get("nats_raft_groups", &[]), Some(Value::Uint(0)));
        }
    }

    #[test]
    fn groups_beyond_the_limit_are_counted_not_exported_and_meta_is_kept() {
        let mut r = Raftz::default();
        let streams = r.accounts.entry("A".into()).or_default();
        for i in 0..GROUP_LIMIT + 5 {
            streams.insert(format!("S-R3F-{i:05}"), RaftGroup::default());
        }
        r.accounts
            .entry("SYS".into())
            .or_default()
            .insert("_meta_".into(), RaftGroup::default());
        r.not_asked = 7;
        let mut m = MetricSet::default();
        assert_eq!(collect(&r, "n1", &mut m), 6 + 7);
        assert!(get(&m, "nats_raft_group_term", "_meta_").is_some());
        let exported = m.len();
        // 2 per-node series, and 11 or 12 per exported group.
        assert!(exported < 2 + 12 * GROUP_LIMIT + 1, "{exported}");
        assert_eq!(
            m.get("nats_raft_groups", &[]),
            Some(Value::Uint((GROUP_LIMIT + 6 + 7) as u64))
        );
    }

    #[test]
    fn merge_keeps_every_account() {
        let mut a: Raftz = serde_json::from_str(r#"{"SYS":{"_meta_":{}}}"#).unwrap();
        a.merge(serde_json::from_str(r#"{"A":{"S-R3F-x":{}}}"#).unwrap());
        a.merge(serde_json::from_str("{}").unwrap());
        assert_eq!(a.group_count(), 2);
    }

    #[test]
    fn versions_before_2_10_17_are_not_asked() {
        assert!(!supported("2.9.10"));
        assert!(!supported("2.10.16"));
        assert!(supported("2.10.17"));
        assert!(supported("2.10.26"));
        assert!(supported("2.11.0-RC.1"));
        assert!(supported("2.15.1"));
        assert!(!supported("2.9"));
        assert!(supported("custom"));
    }

    #[test]
    fn kinds_follow_group_names() {
        assert_eq!(kind("_meta_"), "meta");
        assert_eq!(kind("S-R3F-abc"), "stream");
        assert_eq!(kind("C-R3F-abc"), "consumer");
        assert_eq!(kind("weird"), "other");
    }
}
