//! Every captured (2.9.10) and 2.12-shaped fixture parses with natsmon's tolerant types,
//! and the edge states they capture (leaderless cluster, JetStream disabled, unhealthy
//! server, standalone server) map to the right figures.

use std::path::Path;

use natsmon::config::ConsumerPolicy;
use natsmon::exposition::{MetricSet, Value};
use natsmon::nats::aggregate;
use natsmon::nats::jsz::Jsz;
use natsmon::nats::snapshot::NodePoll;
use natsmon::nats::varz::Varz;
use natsmon::nats::{accstatz, connz, gatewayz, healthz, leafz, raftz, routez, subsz};
use serde::de::DeserializeOwned;

fn load<T: DeserializeOwned>(version: &str, file: &str) -> T {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nats")
        .join(version)
        .join(file);
    let text = std::fs::read_to_string(&p).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_fixture_parses() {
    for version in ["2.9.10", "2.12", "2.15.1"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/nats")
            .join(version);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let prefix = name.split(['_', '.']).next().unwrap();
            match prefix {
                "varz" => drop(load::<Varz>(version, &name)),
                "jsz" => drop(load::<Jsz>(version, &name)),
                "connz" => drop(load::<connz::Connz>(version, &name)),
                "routez" => drop(load::<routez::Routez>(version, &name)),
                "healthz" => drop(load::<healthz::Healthz>(version, &name)),
                "accstatz" => drop(load::<accstatz::Accstatz>(version, &name)),
                "subsz" => drop(load::<subsz::Subsz>(version, &name)),
                "gatewayz" => drop(load::<gatewayz::Gatewayz>(version, &name)),
                "leafz" => drop(load::<leafz::Leafz>(version, &name)),
                "raftz" => drop(load::<raftz::Raftz>(version, &name)),
                other => panic!("fixture {name} has no parser ({other})"),
            }
            n += 1;
        }
        assert!(n >= 9, "{version}: only {n} fixtures");
    }
}

fn node(varz: Varz, jsz: Option<Jsz>) -> NodePoll {
    NodePoll {
        varz: Some(varz),
        jsz,
        finished_at: Some(std::time::UNIX_EPOCH),
        ..Default::default()
    }
}

fn get(set: &MetricSet, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    set.get(name, labels).map(|v| match v {
        Value::Int(i) => i as f64,
        Value::Uint(u) => u as f64,
        Value::Float(f) => f,
    })
}

#[test]
fn leaderless_cluster_is_visible_and_streams_fall_back_to_a_replica() {
    let p = node(
        load("2.9.10", "varz_leaderless.json"),
        Some(load("2.9.10", "jsz_leaderless.json")),
    );
    let set = aggregate::collect(&[("n2", &p)], &ConsumerPolicy::default());
    assert_eq!(
        get(&set, "nats_jetstream_meta_has_leader", &[("node", "n2")]),
        Some(0.0)
    );
    assert_eq!(
        get(&set, "nats_jetstream_meta_is_leader", &[("node", "n2")]),
        Some(0.0)
    );
    assert_eq!(
        get(&set, "nats_stream_has_leader", &[("stream", "ORDERS")]),
        Some(0.0)
    );
    assert_eq!(
        get(&set, "nats_stream_messages", &[("stream", "ORDERS")]),
        Some(40.0)
    );
    assert_eq!(
        get(&set, "nats_stream_replica_current", &[("stream", "ORDERS")]),
        None,
        "only a leader's peer list is trusted"
    );
}

#[test]
fn a_follower_alone_does_not_pose_as_leader() {
    let p = node(
        load("2.9.10", "varz_follower.json"),
        Some(load("2.9.10", "jsz_follower.json")),
    );
    let set = aggregate::collect(&[("n1", &p)], &ConsumerPolicy::default());
    // The follower names the leader, so the stream has one; natsmon just does not poll it.
    assert_eq!(
        get(&set, "nats_stream_has_leader", &[("stream", "ORDERS")]),
        Some(1.0)
    );
    assert_eq!(
        get(&set, "nats_stream_leader_polled", &[("stream", "ORDERS")]),
        Some(0.0)
    );
    assert_eq!(
        get(&set, "nats_jetstream_meta_is_leader", &[("node", "n1")]),
        Some(0.0)
    );
    assert_eq!(
        get(&set, "nats_jetstream_meta_has_leader", &[("node", "n1")]),
        Some(1.0)
    );
}

#[test]
fn leader_report_wins_whatever_the_node_order() {
    let leader = node(
        load("2.9.10", "varz.json"),
        Some(load("2.9.10", "jsz.json")),
    );
    let follower = node(
        load("2.9.10", "varz_follower.json"),
        Some(load("2.9.10", "jsz_follower.json")),
    );
    for order in [
        [("n1", &follower), ("n2", &leader)],
        [("n2", &leader), ("n1", &follower)],
    ] {
        let set = aggregate::collect(&order, &ConsumerPolicy::default());
        assert_eq!(
            get(&set, "nats_stream_has_leader", &[("stream", "ORDERS")]),
            Some(1.0)
        );
        // The follower's report has stale peer data (n3 lag 41, not current); the leader's does not.
        assert_eq!(
            get(
                &set,
                "nats_stream_replica_current",
                &[("stream", "ORDERS"), ("peer", "n3")]
            ),
            Some(1.0)
        );
        assert_eq!(
            get(
                &set,
                "nats_consumer_num_pending",
                &[("consumer", "billing")]
            ),
            Some(20.0)
        );
    }
}

#[test]
fn disabled_jetstream_and_standalone_servers() {
    let p = node(
        load("2.9.10", "varz_standalone.json"),
        Some(load("2.9.10", "jsz_disabled.json")),
    );
    let set = aggregate::collect(&[("solo", &p)], &ConsumerPolicy::default());
    assert_eq!(get(&set, "nats_up", &[("node", "solo")]), Some(1.0));
    assert_eq!(
        get(&set, "nats_jetstream_streams", &[("node", "solo")]),
        None
    );
    assert!(
        get(&set, "nats_jetstream_meta_has_leader", &[("node", "solo")]).is_none(),
        "no meta group, no meta series"
    );
}

#[test]
fn unhealthy_server_is_a_successful_poll_of_a_bad_state() {
    for version in ["2.9.10", "2.12"] {
        let h: healthz::Healthz = load(version, "healthz_unavailable.json");
        let mut set = MetricSet::default();
        healthz::collect(&h, "n", &mut set);
        assert_eq!(
            get(&set, "nats_healthz_ok", &[("node", "n")]),
            Some(0.0),
            "{version}"
        );
    }
}

#[test]
fn gateway_and_leaf_configuration_is_detected() {
    let v: Varz = load("2.9.10", "varz_gateway_leaf.json");
    assert!(v.gateway_configured());
    assert!(v.leafnodes_configured());
    let v: Varz = load("2.9.10", "varz.json");
    assert!(!v.gateway_configured());
    assert!(!v.leafnodes_configured());
}

/// The live captures of `/raftz` (tests/it/capture.rs): merged as the poller merges the
/// system account's answer and account A's, the leader leads all three R3 groups and
/// sees both peers current; the follower leads none and has no peers_current.
#[test]
fn captured_raftz_gives_every_group_once_with_its_leader() {
    for version in ["2.12", "2.15.1"] {
        let merged = |stem: &str| {
            let mut r: raftz::Raftz = load(version, &format!("{stem}.json"));
            r.merge(load(version, &format!("{stem}_A.json")));
            r
        };
        let mut set = MetricSet::default();
        assert_eq!(raftz::collect(&merged("raftz"), "lead", &mut set), 0);
        assert_eq!(
            raftz::collect(&merged("raftz_follower"), "follow", &mut set),
            0
        );
        for kind in ["meta", "stream", "consumer"] {
            let l = |node| [("node", node), ("kind", kind)];
            assert_eq!(
                get(&set, "nats_raft_group_is_leader", &l("lead")),
                Some(1.0)
            );
            assert_eq!(
                get(&set, "nats_raft_group_is_leader", &l("follow")),
                Some(0.0)
            );
            assert_eq!(
                get(&set, "nats_raft_group_peers_current", &l("lead")),
                Some(2.0)
            );
            assert_eq!(
                get(&set, "nats_raft_group_peers_current", &l("follow")),
                None
            );
            assert_eq!(get(&set, "nats_raft_group_size", &l("follow")), Some(3.0));
            assert_eq!(
                get(&set, "nats_raft_group_apply_lag", &l("lead")),
                Some(0.0)
            );
        }
        assert_eq!(
            get(&set, "nats_raft_groups", &[("node", "lead")]),
            Some(3.0)
        );
        // Account B's only stream is R1: no Raft group.
        let b: raftz::Raftz = load(version, "raftz_B.json");
        assert_eq!(b.group_count(), 0, "{version}");
    }
}

/// A standalone server with a TLS listener and GOMEMLIMIT (captured live).
#[test]
fn captured_tls_varz_has_certificate_expiry_and_memory_limit() {
    for version in ["2.12", "2.15.1"] {
        let v: Varz = load(version, "varz_tls.json");
        let mut set = MetricSet::default();
        natsmon::nats::varz::collect(&v, "t", &mut set);
        let t = get(
            &set,
            "nats_varz_tls_cert_not_after_seconds",
            &[("listener", "client")],
        )
        .unwrap();
        assert!(t > 1.7e9, "{version}: {t}");
        assert_eq!(
            get(&set, "nats_varz_gomemlimit_bytes", &[]),
            Some(536_870_912.0),
            "{version}"
        );
        // Only the client listener has TLS.
        assert_eq!(
            set.get(
                "nats_varz_tls_cert_not_after_seconds",
                &[("listener", "cluster")]
            ),
            None
        );
    }
}
