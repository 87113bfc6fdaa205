//! Owns discovery: from the configured URLs (the seeds) it finds the members of their
//! clusters and keeps the polled node set in step with them. Peers come from a server's
//! `/varz` (`cluster.urls`, its configured routes) and `/routez` (each route's remote
//! IP); a DNS name with several addresses is one candidate per address. The servers do
//! not report their monitoring port, so a peer is assumed to serve it on the seed's port
//! (or `--discover-port`), with the seed's scheme, base path and credentials. A candidate
//! is a member once its `/varz` answers; candidates are told apart by `server_id` (a
//! seed's name and a route's IP may be the same server), and labelled by server name. A
//! member no round finds any more stays polled (so `nats_up 0`) for the grace period,
//! then its poller stops and its series go.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::poller::{self, PollContext};
use super::routez::{self, Routez};
use super::varz::{self, Varz};
use crate::config::{DiscoverySettings, Node};

/// Most `/varz` probes in one round: a cluster is a handful of servers, and a round must
/// stay bounded whatever the responses claim.
const MAX_PROBES: usize = 64;

/// Hosts to try from one server's answers: its configured routes and the remote IPs of
/// its routes, without brackets.
pub fn peer_hosts(varz: &Varz, routez: Option<&Routez>) -> BTreeSet<String> {
    let mut hosts: BTreeSet<String> = varz
        .cluster
        .urls
        .iter()
        .filter_map(|u| route_host(u))
        .collect();
    for r in routez.map(|r| r.routes.as_slice()).unwrap_or_default() {
        let ip = r.ip.trim().trim_start_matches('[').trim_end_matches(']');
        if !ip.is_empty() {
            hosts.insert(ip.to_string());
        }
    }
    hosts
}

/// The host of a route as `/varz` lists it: `host:port` or `[v6]:port`, also with a
/// scheme and credentials as in a route URL.
pub fn route_host(u: &str) -> Option<String> {
    let s = u.trim();
    let s = s.split_once("://").map_or(s, |(_, rest)| rest);
    let s = s.split('/').next().unwrap_or_default();
    let s = s.rsplit_once('@').map_or(s, |(_, rest)| rest);
    let host = if let Some(rest) = s.strip_prefix('[') {
        rest.split_once(']')?.0
    } else if s.matches(':').count() > 1 {
        s
    } else {
        s.split(':').next().unwrap_or_default()
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// The candidates a name stands for: one address, the name itself (a certificate names
/// it, and it follows the server when the address changes); several (a headless service,
/// a compose service scaled to 3), one per address, for every address is a node.
pub fn expand(host: &str, addrs: &[IpAddr]) -> Vec<String> {
    let mut ips: Vec<String> = Vec::new();
    for a in addrs {
        let ip = a.to_string();
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    if ips.len() > 1 {
        ips
    } else {
        vec![host.to_string()]
    }
}

/// `expand` after a DNS lookup; an IP is itself, and a name that does not resolve is
/// kept (its probe then fails and says why).
async fn resolve(host: &str, port: u16, timeout: Duration) -> Vec<String> {
    if host.parse::<IpAddr>().is_ok() {
        return vec![host.to_string()];
    }
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(addrs)) => expand(host, &addrs.map(|a| a.ip()).collect::<Vec<_>>()),
        _ => vec![host.to_string()],
    }
}

#[derive(Debug)]
struct Member {
    node: Node,
    /// When a round that reached the cluster first missed it.
    missing_since: Option<Instant>,
}

/// The discovered members, by label, and the rules that change them; no I/O, so that
/// they are tested without a cluster.
#[derive(Debug, Default)]
pub struct Membership {
    members: BTreeMap<String, Member>,
}

/// What one round changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<Node>,
    /// Found at another URL than the one polled (a pod that came back with a new IP).
    pub moved: Vec<Node>,
    /// Missed for the first time: polled on for the grace period.
    pub missing: Vec<String>,
    /// Missed before, found again.
    pub returned: Vec<String>,
    /// Missed for the whole grace period: to stop and forget.
    pub dropped: Vec<String>,
}

impl Membership {
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.members.values().map(|m| &m.node)
    }

    /// Applies one round: `found` holds the members it reached, by label. A round in which
    /// no candidate answered (`reached` false) says nothing about membership, since
    /// natsmon's own network may be what failed: nobody ages then.
    pub fn apply(
        &mut self,
        found: &BTreeMap<String, Node>,
        reached: bool,
        now: Instant,
        grace: Duration,
    ) -> Changes {
        let mut ch = Changes::default();
        for (name, node) in found {
            match self.members.get_mut(name) {
                None => {
                    self.members.insert(
                        name.clone(),
                        Member {
                            node: node.clone(),
                            missing_since: None,
                        },
                    );
                    ch.added.push(node.clone());
                }
                Some(m) => {
                    if m.missing_since.take().is_some() {
                        ch.returned.push(name.clone());
                    }
                    if m.node.url_for("") != node.url_for("") {
                        m.node = node.clone();
                        ch.moved.push(node.clone());
                    }
                }
            }
        }
        if !reached {
            return ch;
        }
        for (name, m) in self.members.iter_mut() {
            if found.contains_key(name) {
                continue;
            }
            match m.missing_since {
                None => {
                    m.missing_since = Some(now);
                    ch.missing.push(name.clone());
                }
                Some(t) if now.duration_since(t) >= grace => ch.dropped.push(name.clone()),
                Some(_) => {}
            }
        }
        for name in &ch.dropped {
            self.members.remove(name);
        }
        ch
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A seed the user named: polled as configured, never a discovered member.
    Named,
    Seed,
    /// A member from an earlier round, at the URL it is polled at.
    Member,
    /// Learned from a server's routes.
    Peer,
}

struct Candidate {
    node: Node,
    kind: Kind,
    /// The monitoring port its peers are assumed to serve on.
    peer_port: u16,
}

/// What one round found.
struct Round {
    /// Members by label.
    found: BTreeMap<String, Node>,
    /// Whether any candidate answered.
    reached: bool,
}

/// The discovery task: one round every poll interval.
pub struct Discovery {
    ctx: Arc<PollContext>,
    tracker: TaskTracker,
    settings: DiscoverySettings,
    seeds: Vec<Node>,
    /// The clusters of the seeds: a member reached at its old URL, or a peer, is only
    /// taken in one of them (an address may now belong to another server).
    clusters: BTreeSet<String>,
    membership: Membership,
    pollers: BTreeMap<String, CancellationToken>,
}

impl Discovery {
    pub fn new(
        ctx: Arc<PollContext>,
        tracker: TaskTracker,
        settings: DiscoverySettings,
        seeds: Vec<Node>,
    ) -> Discovery {
        Discovery {
            ctx,
            tracker,
            settings,
            seeds,
            clusters: BTreeSet::new(),
            membership: Membership::default(),
            pollers: BTreeMap::new(),
        }
    }

    /// Runs rounds until `token` is cancelled; the pollers it starts stop with it.
    pub async fn run(mut self, token: CancellationToken) {
        let mut tick = tokio::time::interval(self.ctx.settings.poll_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tick.tick() => {}
            }
            let round = tokio::select! {
                _ = token.cancelled() => break,
                r = self.round() => r,
            };
            let ch = self.membership.apply(
                &round.found,
                round.reached,
                Instant::now(),
                self.settings.grace,
            );
            self.enact(ch, &token);
        }
        debug!("Discovery stopped.");
    }

    fn spawn(&mut self, node: Node, token: &CancellationToken) {
        let child = token.child_token();
        if let Some(old) = self.pollers.insert(node.name.clone(), child.clone()) {
            old.cancel();
        }
        self.tracker
            .spawn(poller::run(self.ctx.clone(), node, child));
    }

    fn enact(&mut self, ch: Changes, token: &CancellationToken) {
        let grace = humantime::format_duration(self.settings.grace);
        for node in ch.added {
            if self.ctx.store.add(&node.name, &node.display) {
                info!(node = %node.name, url = %node.display, "Discovered node.");
                self.spawn(node, token);
            } else {
                warn!(node = %node.name, url = %node.display, "Discovered node has the label of a configured node; not polled.");
            }
        }
        for node in ch.moved {
            info!(node = %node.name, url = %node.display, "Node moved; polling it at its new URL.");
            self.ctx.store.set_display(&node.name, &node.display);
            self.spawn(node, token);
        }
        for name in ch.returned {
            info!(node = %name, "Node is back in the cluster.");
        }
        for name in ch.missing {
            warn!(node = %name, grace = %grace, "Node is gone from the cluster; it stays, with nats_up 0, for the grace period.");
        }
        for name in ch.dropped {
            if let Some(t) = self.pollers.remove(&name) {
                t.cancel();
            }
            self.ctx.store.remove(&name);
            self.ctx.metrics.forget_node(&name);
            self.ctx.updated.notify_one();
            info!(node = %name, grace = %grace, "Node was gone for the grace period; no longer polled.");
        }
    }

    /// One round: probes the current members, the seeds and every peer they name, once
    /// per URL, and returns the members by label.
    async fn round(&mut self) -> Round {
        let timeout = self.ctx.settings.poll_timeout;
        let mut queue = VecDeque::new();
        // Members first: a member still answering where it is polled keeps that URL.
        for m in self.membership.nodes() {
            let peer_port = self.settings.port.or(m.port()).unwrap_or_default();
            queue.push_back(Candidate {
                node: m.clone(),
                kind: Kind::Member,
                peer_port,
            });
        }
        for seed in &self.seeds {
            let (Some(host), Some(port)) = (seed.host(), seed.port()) else {
                continue;
            };
            let peer_port = self.settings.port.unwrap_or(port);
            if seed.named {
                queue.push_back(Candidate {
                    node: seed.clone(),
                    kind: Kind::Named,
                    peer_port,
                });
            }
            let hosts = resolve(&host, port, timeout).await;
            // A named seed is one server, but a name with several addresses is more.
            if seed.named && hosts.len() < 2 {
                continue;
            }
            for h in hosts {
                let node = if h == host {
                    Some(seed.clone())
                } else {
                    seed.at(&h, port)
                };
                if let Some(node) = node {
                    queue.push_back(Candidate {
                        node,
                        kind: Kind::Seed,
                        peer_port,
                    });
                }
            }
        }

        let mut visited = HashSet::new();
        let mut found: Vec<(String, String, Node)> = Vec::new();
        let mut named_ids = BTreeSet::new();
        let mut reached = false;
        let mut probes = 0;
        while let Some(c) = queue.pop_front() {
            if !visited.insert(c.node.url_for("")) {
                continue;
            }
            if probes == MAX_PROBES {
                warn!(
                    probes = MAX_PROBES,
                    "Discovery round stopped at its probe limit."
                );
                break;
            }
            probes += 1;
            let v = match self.ctx.client.get::<Varz>(&c.node, varz::PATH, &[]).await {
                Ok(f) => f.value,
                Err(e) => {
                    debug!(url = %c.node.display, error = %e, "Discovery candidate did not answer.");
                    continue;
                }
            };
            reached = true;
            match c.kind {
                Kind::Named => {
                    named_ids.insert(v.server_id.clone());
                    self.clusters.insert(v.cluster.name.clone());
                }
                Kind::Seed => {
                    self.clusters.insert(v.cluster.name.clone());
                }
                Kind::Member | Kind::Peer => {
                    if !self.clusters.contains(&v.cluster.name) {
                        debug!(url = %c.node.display, cluster = %v.cluster.name, "Discovery candidate is in another cluster.");
                        continue;
                    }
                }
            }
            let routez = self
                .ctx
                .client
                .get::<Routez>(&c.node, routez::PATH, &[])
                .await
                .ok()
                .map(|f| f.value);
            for h in peer_hosts(&v, routez.as_ref()) {
                for addr in resolve(&h, c.peer_port, timeout).await {
                    if let Some(node) = c.node.at(&addr, c.peer_port) {
                        queue.push_back(Candidate {
                            node,
                            kind: Kind::Peer,
                            peer_port: c.peer_port,
                        });
                    }
                }
            }
            if c.kind != Kind::Named {
                found.push((v.server_id.clone(), v.name().to_string(), c.node));
            }
        }

        // The first URL a server answered at is its URL; a named seed stays its own.
        let mut ids = named_ids;
        let mut members = BTreeMap::new();
        for (id, name, node) in found {
            if !ids.insert(id) || self.seeds.iter().any(|s| s.named && s.name == name) {
                continue;
            }
            members
                .entry(name.clone())
                .or_insert_with(|| node.with_name(&name));
        }
        Round {
            found: members,
            reached,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varz(json: &str) -> Varz {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn peers_come_from_configured_routes_and_route_ips() {
        let v = varz(
            r#"{"server_id":"A","server_name":"n1","cluster":{"name":"c1","urls":
            ["nats-0.nats:6222","127.0.0.2:6222","[fd00::3]:6222",""]}}"#,
        );
        let r: Routez = serde_json::from_str(
            r#"{"routes":[{"remote_id":"B","remote_name":"n2","ip":"10.0.0.2","port":41234},
            {"remote_id":"C","ip":"fd00::4","port":6222},{"remote_id":"D","ip":""}]}"#,
        )
        .unwrap();
        let hosts: Vec<_> = peer_hosts(&v, Some(&r)).into_iter().collect();
        assert_eq!(
            hosts,
            ["10.0.0.2", "127.0.0.2", "fd00::3", "fd00::4", "nats-0.nats"]
        );
        assert!(peer_hosts(&varz(r#"{"cluster":null}"#), None).is_empty());
        assert!(peer_hosts(&varz(r#"{"cluster":{"urls":null}}"#), None).is_empty());
    }

    #[test]
    fn route_hosts_in_every_form() {
        for (u, h) in [
            ("h:6222", "h"),
            ("nats-route://u:p@h:6222", "h"),
            ("nats://h:6222/", "h"),
            ("[::1]:6222", "::1"),
            ("fd00::1", "fd00::1"),
            ("h", "h"),
        ] {
            assert_eq!(route_host(u).as_deref(), Some(h), "{u}");
        }
        assert_eq!(route_host(""), None);
        assert_eq!(route_host(":6222"), None);
    }

    #[test]
    fn a_name_with_several_addresses_is_one_candidate_per_address() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(expand("nats", &[ip("10.0.0.1")]), ["nats"]);
        assert_eq!(expand("nats", &[]), ["nats"]);
        assert_eq!(
            expand("nats", &[ip("10.0.0.1"), ip("10.0.0.1")]),
            ["nats"],
            "one address listed twice (A over two families of lookups) is one"
        );
        assert_eq!(
            expand("nats", &[ip("10.0.0.1"), ip("10.0.0.3"), ip("fd00::2")]),
            ["10.0.0.1", "10.0.0.3", "fd00::2"]
        );
    }

    fn found(nodes: &[(&str, &str)]) -> BTreeMap<String, Node> {
        nodes
            .iter()
            .map(|(n, u)| (n.to_string(), Node::parse(u).unwrap().with_name(n)))
            .collect()
    }

    #[test]
    fn members_join_move_leave_after_the_grace_and_come_back() {
        let grace = Duration::from_secs(10);
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut m = Membership::default();
        let all = found(&[("n1", "http://a:8222"), ("n2", "http://b:8222")]);
        let ch = m.apply(&all, true, at(0), grace);
        let added: Vec<_> = ch.added.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(added, ["n1", "n2"]);
        assert_eq!(m.apply(&all, true, at(1), grace), Changes::default());

        let only_n1 = found(&[("n1", "http://a:8222")]);
        let ch = m.apply(&only_n1, true, at(2), grace);
        assert_eq!(ch.missing, ["n2"]);
        assert!(ch.dropped.is_empty());
        // A round that reached nobody ages nobody.
        let ch = m.apply(&BTreeMap::new(), false, at(20), grace);
        assert_eq!(ch, Changes::default());
        assert_eq!(m.nodes().count(), 2);
        assert_eq!(
            m.apply(&only_n1, true, at(11), grace),
            Changes::default(),
            "still within the grace"
        );
        let ch = m.apply(&only_n1, true, at(12), grace);
        assert_eq!(ch.dropped, ["n2"]);
        assert_eq!(m.nodes().count(), 1);

        // Back after being dropped: a new member again.
        let ch = m.apply(&all, true, at(13), grace);
        assert_eq!(ch.added.len(), 1);
        // Missed, then back within the grace at a new address.
        m.apply(&only_n1, true, at(14), grace);
        let moved = found(&[("n1", "http://a:8222"), ("n2", "http://c:8222")]);
        let ch = m.apply(&moved, true, at(15), grace);
        assert_eq!(ch.returned, ["n2"]);
        assert_eq!(ch.moved.len(), 1);
        assert_eq!(ch.moved[0].url_for("/varz"), "http://c:8222/varz");
        assert_eq!(ch.moved[0].name, "n2");
    }
}
