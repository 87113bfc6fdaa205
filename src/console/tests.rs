//! The console's pages and JSON over a real store holding a cluster with every state the
//! pages tell apart, and names made to break out of HTML.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Console;
use super::pages::Page;
use super::query::TableQuery;
use crate::config::{RawConfig, Settings};
use crate::logs::status::{PushResult, ShipperStatus, TailedContainer};
use crate::nats::Endpoint;
use crate::nats::accstatz::{AccountStat, Accstatz};
use crate::nats::jsz::{AccountDetail, Jsz};
use crate::nats::routez::{RouteInfo, Routez};
use crate::nats::snapshot::{NodePoll, Store};
use crate::nats::varz::{
    ClusterOpts, JetStreamConfig, JetStreamStats, JetStreamVarz, MetaCluster, Varz,
};
use crate::nats::view::{ClusterView, ConsumerView, MemberView, MetaView, PeerView, StreamView};

pub const XSS: &str = "<img src=x onerror=alert(1)>";
const XSS_ESCAPED: &str = "&lt;img src=x onerror=alert(1)&gt;";

fn settings(loki: bool) -> Arc<Settings> {
    let mut raw = RawConfig {
        nats_urls: Some(vec![
            "n1=http://127.0.0.1:8222".into(),
            "n2=http://user:secret@127.0.0.1:8223".into(),
            "n3=http://127.0.0.1:8224".into(),
        ]),
        ..Default::default()
    };
    if loki {
        raw.loki_url = Some("http://loki:3100".into());
        raw.state_dir = Some(std::env::temp_dir());
    }
    Arc::new(raw.validate_with_env(&|_| None).unwrap())
}

fn varz(name: &str, leader: bool) -> Varz {
    Varz {
        server_id: format!("ID{name}"),
        server_name: name.into(),
        version: "2.9.10".into(),
        start: Some("2024-05-01T12:00:00Z".into()),
        mem: Some(20 << 20),
        cpu: Some(1.5),
        connections: Some(4),
        subscriptions: Some(120),
        slow_consumers: Some(0),
        routes: Some(2),
        cluster: ClusterOpts {
            name: "c1".into(),
            ..Default::default()
        },
        jetstream: JetStreamVarz {
            config: Some(JetStreamConfig {
                max_memory: Some(256 << 20),
                max_storage: Some(2 << 30),
                domain: String::new(),
            }),
            stats: Some(JetStreamStats {
                memory: 0,
                storage: 10038,
                ..Default::default()
            }),
            meta: Some(MetaCluster {
                name: "c1".into(),
                leader: if leader { name.into() } else { "n1".into() },
                cluster_size: 3,
                replicas: Vec::new(),
                ..Default::default()
            }),
        },
        ..Default::default()
    }
}

fn up_poll(name: &str, leader: bool, routes: &[&str]) -> NodePoll {
    NodePoll {
        varz: Some(varz(name, leader)),
        jsz: Some(Jsz {
            account_details: vec![AccountDetail {
                name: XSS.into(),
                memory: 0,
                storage: 10038,
                reserved_memory: Some(64 << 20),
                reserved_storage: Some(512 << 20),
                ..Default::default()
            }],
            ..Default::default()
        }),
        accstatz: Some(Accstatz {
            account_statz: vec![AccountStat {
                acc: XSS.into(),
                conns: 2,
                ..Default::default()
            }],
            ..Default::default()
        }),
        routez: Some(Routez {
            routes: routes
                .iter()
                .map(|r| RouteInfo {
                    remote_name: (*r).into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        finished_at: Some(SystemTime::now()),
        duration: Duration::from_millis(12),
        ..Default::default()
    }
}

fn peer(name: &str, current: bool, offline: bool, lag: u64) -> PeerView {
    PeerView {
        name: name.into(),
        current,
        offline,
        lag,
        active_seconds: 0.5,
    }
}

fn stream(name: &str, account: &str) -> StreamView {
    StreamView {
        cluster: "c1".into(),
        account: account.into(),
        name: name.into(),
        replicas: 3,
        leader: "n1".into(),
        has_leader: true,
        leader_polled: true,
        available: true,
        messages: 100,
        bytes: 3346,
        last_seq: 100,
        max_msgs: Some(1_000_000),
        max_bytes: Some(1 << 30),
        consumers: 1,
        storage: "file".into(),
        peers: vec![peer("n2", true, false, 0), peer("n3", false, true, 7)],
        ..Default::default()
    }
}

/// n1 (meta leader) and n2 up, n3 down after having been up; streams in every state.
fn store() -> Store {
    let store = Store::new(["n1", "n2", "n3"]);
    store.update("n1", up_poll("n1", true, &["n2"]));
    store.update("n2", up_poll("n2", false, &["n1"]));
    store.update("n3", up_poll(XSS, false, &["n1", "n2"]));
    let mut down = NodePoll {
        finished_at: Some(SystemTime::now()),
        ..Default::default()
    };
    down.errors
        .insert(Endpoint::Varz, "connection refused".into());
    down.errors
        .insert(Endpoint::Jsz, "the second error, not shown".into());
    store.update("n3", down);
    let mut unavailable = stream("GONE", "A");
    unavailable.available = false;
    let mut elsewhere = stream("FAR", "A");
    elsewhere.leader_polled = false;
    elsewhere.leader = "n9".into();
    store.set_view(ClusterView {
        streams: vec![
            stream(XSS, XSS),
            stream("ORDERS", "A"),
            unavailable,
            elsewhere,
        ],
        consumers: vec![
            ConsumerView {
                cluster: "c1".into(),
                account: XSS.into(),
                stream: XSS.into(),
                name: XSS.into(),
                leader: "n1".into(),
                has_leader: true,
                leader_polled: true,
                available: true,
                num_pending: 70,
                num_ack_pending: 10,
                lag: Some(70),
                last_active: Some(crate::time::unix_now_f64() - 3.0),
                stalled: true,
                ..Default::default()
            },
            ConsumerView {
                cluster: "c1".into(),
                account: "A".into(),
                stream: "ORDERS".into(),
                name: "billing".into(),
                has_leader: true,
                leader_polled: true,
                available: true,
                num_pending: 5,
                ..Default::default()
            },
        ],
        meta: vec![MetaView {
            cluster: "c1".into(),
            leader: "n1".into(),
            leader_polled: true,
            cluster_size: 3,
            peers: vec![peer("n2", true, false, 0), peer(XSS, false, true, 42)],
        }],
        members: vec![
            MemberView {
                cluster: "c1".into(),
                server_name: "n1".into(),
                node: Some("n1".into()),
                polled: true,
                routes: vec!["n2".into()],
            },
            MemberView {
                cluster: "c1".into(),
                server_name: "n2".into(),
                node: Some("n2".into()),
                polled: true,
                routes: vec!["n1".into()],
            },
            MemberView {
                cluster: "c1".into(),
                server_name: XSS.into(),
                node: Some("n3".into()),
                polled: true,
                routes: Vec::new(),
            },
        ],
        ..Default::default()
    });
    store
}

fn shipper() -> Arc<ShipperStatus> {
    let s = Arc::new(ShipperStatus::default());
    s.set_loki_up(true);
    s.record_push(PushResult::Accepted, 42, Duration::from_millis(8));
    s.set_containers(vec![TailedContainer {
        name: "app-1".into(),
        job: XSS.into(),
        service: XSS.into(),
    }]);
    s.set_buffer(4096, 10, 1.5);
    s.record_error("loki", format!("Loki answered HTTP 500: {XSS}"));
    s
}

/// The cells of the table row that starts with `marker`, by their column's `th[data-k]`,
/// as text without tags.
fn cells(html: &str, marker: &str) -> std::collections::HashMap<String, String> {
    let keys: Vec<&str> = html
        .split("<th data-k=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    let row = html
        .split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("no row {marker}: {html}"))
        .split("</tr>")
        .next()
        .unwrap();
    let texts = row.split("</td>").filter(|c| c.contains("<td")).map(|c| {
        let mut out = String::new();
        let mut in_tag = false;
        for ch in c[c.find("<td").unwrap()..].chars() {
            match ch {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    });
    keys.iter().map(|k| k.to_string()).zip(texts).collect()
}

fn all_pages(console: &Console, store: &Store, settings: &Arc<Settings>) -> Vec<String> {
    let mut out = Vec::new();
    for page in [Page::Overview, Page::Streams, Page::Consumers] {
        out.push(console.page_html(page, store, settings, &TableQuery::default()));
        let filtered = TableQuery {
            account: XSS.into(),
            q: XSS.into(),
            sort: XSS.into(),
            dir: XSS.into(),
        };
        out.push(console.page_html(page, store, settings, &filtered));
    }
    out
}

#[test]
fn every_name_is_escaped_on_every_page() {
    let (settings, store) = (settings(true), store());
    let console = Console::new(SystemTime::now(), Some(shipper()));
    for html in all_pages(&console, &store, &settings) {
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("onerror=alert(1)>"), "{html}");
        assert!(html.contains(XSS_ESCAPED), "{html}");
        // Nothing inline for the CSP to refuse.
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "{html}"
        );
        assert!(!html.contains("secret"), "credentials never shown: {html}");
    }
}

#[test]
fn the_overview_tells_each_node_state_with_one_error() {
    let (settings, store) = (settings(false), store());
    let console = Console::new(SystemTime::now(), None);
    let html = console.page_html(Page::Overview, &store, &settings, &TableQuery::default());
    let n3 = html
        .split("<tr data-node=\"n3\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(n3.contains("class=\"down\""), "{n3}");
    assert!(n3.contains("down since "), "{n3}");
    assert!(
        n3.contains(&format!("<td data-k=\"server\">{XSS_ESCAPED}</td>")),
        "the last known name: {n3}"
    );
    assert!(n3.contains("<td data-k=\"version\">2.9.10</td>"), "{n3}");
    assert!(n3.contains("<b>varz</b>: connection refused"), "{n3}");
    assert!(
        !n3.contains("second error"),
        "one error, not one per endpoint: {n3}"
    );
    let n1 = html.split("<tr data-node=\"n1\"").nth(1).unwrap();
    assert!(n1.starts_with(" class=\"up\""), "{n1}");
    assert!(n1.contains("meta leader"));
    assert!(
        html.contains("Leader: <b data-k=\"meta_leader\">n1</b>"),
        "{html}"
    );
    assert!(
        html.contains("2 routes missing."),
        "n1 and n2 lack the down member: {html}"
    );
    assert!(html.contains("Log shipping is <b>off</b>"), "{html}");
    assert!(!html.contains("secret"));
}

#[test]
fn streams_show_their_state_and_shares() {
    let (settings, store) = (settings(false), store());
    let console = Console::new(SystemTime::now(), None);
    let html = console.page_html(Page::Streams, &store, &settings, &TableQuery::default());
    let row = |name: &str| -> String {
        html.split(&format!("data-stream=\"{name}\">"))
            .nth(1)
            .unwrap_or_else(|| panic!("no row {name}: {html}"))
            .split("</tr>")
            .next()
            .unwrap()
            .to_string()
    };
    let orders = row("ORDERS");
    let c = cells(&html, "data-stream=\"ORDERS\">");
    assert_eq!(c["messages"], "100", "{c:?}");
    assert_eq!(c["messages_share"], " 0.0% of 1,000,000", "{c:?}");
    assert_eq!(c["bytes"], "3.3 KiB", "{c:?}");
    assert_eq!(c["leader"], "n1");
    assert_eq!(c["peers"], "n1 leader n2 current n3 offline, lag 7");
    assert_eq!(c["state"], "degraded");
    assert_eq!(c["account"], "A");
    assert!(
        orders.contains("var-stream=ORDERS"),
        "links to its dashboard: {orders}"
    );
    assert!(row("GONE").contains(">unavailable<"));
    assert!(row("FAR").contains(">leader on a node natsmon does not poll<"));
    // Filtered on the server: only account A, by messages.
    let q = TableQuery {
        account: "A".into(),
        q: "or".into(),
        ..Default::default()
    };
    let html = console.page_html(Page::Streams, &store, &settings, &q);
    assert!(html.contains("data-stream=\"ORDERS\""));
    assert!(!html.contains("data-stream=\"GONE\""));
    assert!(
        html.contains("<span id=\"count\" class=\"count\">1 of 4</span>"),
        "{html}"
    );
}

#[test]
fn consumers_flag_stalled_ones() {
    let (settings, store) = (settings(false), store());
    let console = Console::new(SystemTime::now(), None);
    let html = console.page_html(Page::Consumers, &store, &settings, &TableQuery::default());
    let c = cells(&html, &format!("data-consumer=\"{XSS_ESCAPED}\">"));
    assert_eq!(c["num_pending"], "70", "{c:?}");
    assert_eq!(c["num_ack_pending"], "10");
    assert_eq!(c["lag"], "70");
    assert_eq!(c["state"], "stalled");
    assert_eq!(c["last_active"], "3s ago");
    assert_eq!(c["name"], XSS_ESCAPED, "escaped text");
}

#[test]
fn the_json_has_everything_the_pages_show() {
    let (settings, store) = (settings(true), store());
    let console = Console::new(SystemTime::now(), Some(shipper()));
    let v: serde_json::Value =
        serde_json::from_slice(&console.status_json(&store, &settings)).unwrap();
    for key in [
        "generated_at",
        "natsmon",
        "grafana_url",
        "clusters",
        "accounts",
        "log_shipping",
        "totals",
        "streams",
        "consumers",
    ] {
        assert!(v.get(key).is_some(), "{key} missing: {v}");
    }
    assert_eq!(v["natsmon"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["natsmon"]["poll_interval_seconds"], 15.0);
    let c = &v["clusters"][0];
    assert_eq!(c["name"], "c1");
    let n3 = &c["nodes"][2];
    assert_eq!(n3["node"], "n3");
    assert_eq!(n3["state"], "down");
    assert_eq!(n3["server_name"], XSS);
    assert_eq!(n3["error"]["endpoint"], "varz");
    assert_eq!(n3["failed_endpoints"], 2);
    assert!(n3["down_since"].as_f64().unwrap() > 0.0);
    assert_eq!(
        c["nodes"][1]["url"], "http://127.0.0.1:8223",
        "no credentials"
    );
    assert_eq!(c["meta"]["leader"], "n1");
    assert_eq!(c["meta"]["peers"][1]["state"], "offline");
    assert_eq!(c["routes"]["missing"], 2);
    assert_eq!(v["accounts"][0]["name"], XSS);
    assert_eq!(
        v["accounts"][0]["connections"], 4,
        "summed over nodes that are up"
    );
    assert_eq!(v["accounts"][0]["jetstream"]["storage_bytes"], 10038);
    assert_eq!(
        v["accounts"][0]["jetstream"]["storage_limit_bytes"],
        512 << 20
    );
    let ship = &v["log_shipping"];
    assert_eq!(ship["enabled"], true);
    assert_eq!(ship["loki_up"], true);
    assert_eq!(ship["last_push"]["result"], "accepted");
    assert_eq!(ship["containers"][0]["job"], XSS);
    assert_eq!(ship["buffered_bytes"], 4096);
    assert_eq!(ship["buffer_max_bytes"], 8 << 20);
    assert_eq!(ship["last_error"]["source"], "loki");
    let orders = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ORDERS")
        .unwrap();
    assert_eq!(orders["messages"], 100);
    assert_eq!(orders["state"], "degraded");
    assert_eq!(orders["messages_share"], 100.0 / 1_000_000.0);
    assert_eq!(v["consumers"][0]["state"], "stalled");
    assert_eq!(v["consumers"][0]["num_ack_pending"], 10);
    assert_eq!(v["totals"]["streams_unavailable"], 1);
}

#[test]
fn members_natsmon_does_not_poll_are_named() {
    let (settings, store) = (settings(false), store());
    let mut view = (*store.view()).clone();
    view.members.push(MemberView {
        cluster: "c1".into(),
        server_name: "n4<b>".into(),
        node: None,
        polled: false,
        routes: Vec::new(),
    });
    store.set_view(view);
    let console = Console::new(SystemTime::now(), None);
    let html = console.page_html(Page::Overview, &store, &settings, &TableQuery::default());
    assert!(
        html.contains("Not polled by natsmon: n4&lt;b&gt;."),
        "{html}"
    );
    assert!(
        html.contains("<th>n4&lt;b&gt; <small>(not polled)</small></th>"),
        "{html}"
    );
    // Polled members are not named so.
    let store = self::store();
    let html = console.page_html(Page::Overview, &store, &settings, &TableQuery::default());
    assert!(!html.contains("Not polled by natsmon"), "{html}");
}

#[test]
fn log_shipping_off_is_said_in_the_json() {
    let (settings, store) = (settings(false), store());
    let console = Console::new(SystemTime::now(), None);
    let v: serde_json::Value =
        serde_json::from_slice(&console.status_json(&store, &settings)).unwrap();
    assert_eq!(v["log_shipping"], serde_json::json!({"enabled": false}));
}

#[test]
fn a_new_view_replaces_the_cached_rows() {
    let (settings, store) = (settings(false), store());
    let console = Console::new(SystemTime::now(), None);
    let q = TableQuery::default();
    assert!(
        console
            .page_html(Page::Streams, &store, &settings, &q)
            .contains("data-stream=\"ORDERS\"")
    );
    store.set_view(ClusterView {
        streams: vec![stream("AUDIT", "A")],
        ..Default::default()
    });
    let html = console.page_html(Page::Streams, &store, &settings, &q);
    assert!(html.contains("data-stream=\"AUDIT\"") && !html.contains("ORDERS"));
    let v: serde_json::Value =
        serde_json::from_slice(&console.status_json(&store, &settings)).unwrap();
    assert_eq!(v["streams"].as_array().unwrap().len(), 1);
}

#[test]
fn an_empty_store_renders() {
    let settings = settings(false);
    let store = Store::new(settings.nodes.iter().map(|n| n.name.as_str()));
    let console = Console::new(SystemTime::now(), None);
    for html in all_pages(&console, &store, &settings) {
        assert!(html.starts_with("<!doctype html>"));
    }
    let html = console.page_html(Page::Overview, &store, &settings, &TableQuery::default());
    assert!(html.contains("Nodes not seen up yet"), "{html}");
    assert!(html.contains(">pending<"), "{html}");
}
