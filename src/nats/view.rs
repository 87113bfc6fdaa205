//! Owns the cluster-wide view of one render, as the console and `/api/v1/status` show
//! it: every stream and consumer once (from its leader, else the most advanced replica,
//! else remembered while all its nodes are away), the meta group, and which cluster
//! members natsmon polls. Built by `aggregate` from the same picks as the exposition, so
//! the pages and `/metrics` never disagree.

use serde::Serialize;

/// One render's view of every cluster natsmon polls.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ClusterView {
    pub streams: Vec<StreamView>,
    pub consumers: Vec<ConsumerView>,
    /// One entry per cluster that has a JetStream meta group.
    pub meta: Vec<MetaView>,
    /// Every member natsmon knows of (its nodes, their routes, the meta group's peers).
    pub members: Vec<MemberView>,
    /// Servers (by server name) whose next `/jsz` must be read whole, not filtered to
    /// the streams they lead: they lead a consumer whose figures only their own report
    /// has, or host a stream no filtered report shows (leaderless, or gone).
    #[serde(skip)]
    pub full_jsz: std::collections::BTreeSet<String>,
}

/// A replica as its leader reports it.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PeerView {
    pub name: String,
    pub current: bool,
    pub offline: bool,
    /// Raft entries behind the leader.
    pub lag: u64,
    /// Seconds since the leader last heard from it.
    pub active_seconds: f64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct StreamView {
    pub cluster: String,
    pub account: String,
    pub name: String,
    /// The configured replica count; 0 when the config is not known.
    pub replicas: u64,
    /// The leader's server name; empty when no report names one.
    pub leader: String,
    /// Some report names a leader.
    pub has_leader: bool,
    /// The leader's own report was used: natsmon polls it and it is up.
    pub leader_polled: bool,
    /// False for a stream seen before whose nodes are all down or not polled.
    pub available: bool,
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Limits; `None` when unlimited or not known.
    pub max_msgs: Option<u64>,
    pub max_bytes: Option<u64>,
    pub consumers: u64,
    pub storage: String,
    /// Replicas other than the leader; only the leader's report has them.
    pub peers: Vec<PeerView>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct ConsumerView {
    pub cluster: String,
    pub account: String,
    pub stream: String,
    pub name: String,
    pub leader: String,
    pub has_leader: bool,
    pub leader_polled: bool,
    pub available: bool,
    pub num_pending: u64,
    pub num_ack_pending: u64,
    pub num_redelivered: u64,
    pub num_waiting: u64,
    /// Stream last sequence minus delivered stream sequence; `None` without the stream.
    pub lag: Option<u64>,
    pub delivered_stream_seq: u64,
    pub ack_floor_stream_seq: u64,
    /// Unix seconds of the last delivery, where the server reports it.
    pub last_active: Option<f64>,
    /// Pending rose since the previous render while nothing was delivered.
    pub stalled: bool,
    pub peers: Vec<PeerView>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct MetaView {
    pub cluster: String,
    /// The meta leader's server name; empty when no polled node sees one.
    pub leader: String,
    pub leader_polled: bool,
    pub cluster_size: u64,
    pub peers: Vec<PeerView>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct MemberView {
    pub cluster: String,
    pub server_name: String,
    /// natsmon's `node` label when it polls this member.
    pub node: Option<String>,
    pub polled: bool,
    /// Route peers this member has (from its `/routez`); empty when unknown.
    pub routes: Vec<String>,
}
