//! Integration tests against a real 3-node nats-server JetStream cluster: the exact
//! values natsmon exports for streams, consumers, accounts, routes and connections.

use std::time::Duration;

use crate::harness::*;
use async_nats::jetstream::{self, consumer::pull, stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Opens a raw NATS client connection authenticated as user a and waits for PONG.
async fn raw_connection(url: &str) -> tokio::net::TcpStream {
    let addr = url.trim_start_matches("nats://");
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to nats-server");
    s.write_all(
        b"CONNECT {\"user\":\"a\",\"pass\":\"a\",\"verbose\":false,\"name\":\"bulk\"}\r\nPING\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"PONG") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("PONG in time")
            .unwrap();
        assert!(
            n > 0,
            "server closed the connection: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_consumers_accounts_and_routes_match_the_cluster() {
    let cluster = Cluster::start().await;
    let a = connect(&cluster, "a", "a").await;
    let js = jetstream::new(a.clone());
    // 30 delivered, 20 acknowledged: pending 70, ack-pending 10, lag 70.
    let (mut orders, consumer) = orders_with_billing(&js, 100, 30, 20).await;
    // An ephemeral consumer is counted by the stream but bounded out of per-consumer
    // series. It has a name, so that creating it again after a timeout on a loaded
    // machine finds the same consumer instead of adding a second one.
    until_ok("create the ephemeral consumer", || {
        orders.create_consumer(pull::Config {
            name: Some("eph".into()),
            inactive_threshold: Duration::from_secs(3600),
            ..Default::default()
        })
    })
    .await;

    let b = connect(&cluster, "b", "b").await;
    let jsb = jetstream::new(b.clone());
    create_stream(
        &jsb,
        stream::Config {
            name: "EVENTS".into(),
            subjects: vec!["events.>".into()],
            ..Default::default()
        },
    )
    .await;
    for i in 0..7 {
        publish_acked(&jsb, "events.x", "e", &format!("events-{i}")).await;
    }

    let mut c = consumer.clone();
    let info = c.info().await.unwrap().clone();
    let (client_pending, client_ack_pending) = (info.num_pending, info.num_ack_pending);
    assert_eq!((client_pending, client_ack_pending), (70, 10));
    let stream_info = orders.info().await.unwrap().clone();
    let leader = stream_leader(&js, "ORDERS").await;

    let nm = Natsmon::start(&natsmon_args(&cluster, ("500ms", "400ms"), &[])).await;
    let exp = wait_for(&nm.base_url(), Duration::from_secs(20), |e| {
        e.get("nats_stream_messages", &[("stream", "ORDERS")]) == Some(100.0)
            && e.get("nats_consumer_num_ack_pending", &[("consumer", "billing")]) == Some(10.0)
            && e.get("nats_stream_messages", &[("stream", "EVENTS")]) == Some(7.0)
            && e.count("nats_stream_replica_current", &[("stream", "ORDERS")]) == 2
            && e.count("nats_route_connections", &[]) == 6
    })
    .await;

    // Every node is up and identified by its configured name.
    let version = cluster.version();
    for i in 0..3 {
        let n = cluster.server_name(i);
        assert_eq!(exp.get("nats_up", &[("node", &n)]), Some(1.0));
        let info = exp
            .find("nats_server_info", &[("node", &n)])
            .expect("server info");
        assert_eq!(info.label("server_name"), Some(n.as_str()));
        assert_eq!(info.label("version"), Some(version.as_str()));
        assert_eq!(info.label("cluster"), Some(CLUSTER_NAME));
    }

    // One series per stream, from the leader: sum() is the real count, no replica double count.
    assert_eq!(
        exp.count("nats_stream_messages", &[("stream", "ORDERS")]),
        1
    );
    assert_eq!(
        exp.sum("nats_stream_messages", &[("account", "A")]),
        stream_info.state.messages as f64
    );
    assert_eq!(exp.sum("nats_stream_messages", &[]), 107.0);
    assert_eq!(
        exp.sum("nats_jetstream_stored_messages", &[]),
        3.0 * 100.0 + 7.0,
        "per-node figures include replicas"
    );
    assert_eq!(
        exp.get("nats_stream_has_leader", &[("stream", "ORDERS")]),
        Some(1.0)
    );
    assert_eq!(
        exp.find("nats_stream_info", &[("stream", "ORDERS")])
            .unwrap()
            .label("leader"),
        Some(leader.as_str())
    );
    assert_eq!(
        exp.get("nats_stream_last_seq", &[("stream", "ORDERS")]),
        Some(100.0)
    );
    assert_eq!(
        exp.get("nats_stream_max_bytes", &[("stream", "ORDERS")]),
        Some((1u64 << 30) as f64)
    );
    assert_eq!(
        exp.get("nats_stream_max_messages", &[("stream", "ORDERS")]),
        Some(1_000_000.0)
    );
    assert_eq!(
        exp.get("nats_stream_replicas", &[("stream", "ORDERS")]),
        Some(3.0)
    );
    // Read whole (2.9), natsmon counts every consumer any replica reports: the truth.
    // Read filtered (2.10.19+), it sees what the stream leader's /jsz reports, which can
    // leave out an ephemeral R1 consumer placed on another server.
    let filtered = ::natsmon::nats::jsz::version_at_least(
        &version,
        ::natsmon::nats::jsz::STREAM_LEADER_ONLY_SINCE,
    );
    let truth = stream_info.state.consumer_count as f64;
    let consumers = exp
        .get("nats_stream_consumers", &[("stream", "ORDERS")])
        .expect("ORDERS has a consumer count");
    if filtered {
        let li = (0..3)
            .find(|&i| cluster.server_name(i) == leader)
            .expect("the leader is a cluster node");
        let jsz = cluster.json(li, "/jsz?accounts=true&streams=true").await;
        let reported = jsz["account_details"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|a| a["stream_detail"].as_array().cloned().unwrap_or_default())
            .find(|st| st["name"] == "ORDERS")
            .and_then(|st| st["state"]["consumer_count"].as_f64())
            .expect("the leader reports ORDERS");
        assert!(
            (reported..=truth).contains(&consumers),
            "{consumers} consumers; the leader reports {reported}, the API {truth}"
        );
    } else {
        assert_eq!(consumers, truth);
    }
    assert_eq!(
        exp.get("nats_stream_max_bytes", &[("stream", "EVENTS")]),
        None,
        "unlimited limits are absent"
    );
    let peers = exp.label_values("nats_stream_replica_current", "peer");
    assert!(
        !peers.contains(&leader),
        "replica health lists followers only: {peers:?}"
    );
    assert_eq!(
        exp.sum("nats_stream_replica_current", &[("stream", "ORDERS")]),
        2.0
    );
    assert_eq!(
        exp.sum("nats_stream_replica_offline", &[("stream", "ORDERS")]),
        0.0
    );

    // Consumer figures match the client's view.
    let l = [("stream", "ORDERS"), ("consumer", "billing")];
    assert_eq!(
        exp.count("nats_consumer_num_pending", &[("consumer", "billing")]),
        1
    );
    assert_eq!(
        exp.get("nats_consumer_num_pending", &l),
        Some(client_pending as f64)
    );
    assert_eq!(
        exp.get("nats_consumer_num_ack_pending", &l),
        Some(client_ack_pending as f64)
    );
    assert_eq!(exp.get("nats_consumer_lag", &l), Some(70.0));
    assert_eq!(
        exp.get("nats_consumer_delivered_stream_seq", &l),
        Some(30.0)
    );
    assert_eq!(exp.get("nats_consumer_max_ack_pending", &l), Some(500.0));
    assert_eq!(exp.get("nats_consumer_num_redelivered", &l), Some(0.0));
    assert_eq!(
        exp.count("nats_consumer_num_pending", &[]),
        1,
        "the ephemeral consumer is not exported"
    );
    // The ephemeral consumer is seen where the stream leader reports it (see above).
    assert_eq!(
        exp.get("natsmon_objects_not_exported", &[("reason", "ephemeral")]),
        Some(consumers - 1.0)
    );
    assert_eq!(exp.get("nats_consumer_has_leader", &l), Some(1.0));
    // Replica health comes from the consumer leader's report: at the defaults a 2.10.19+
    // server read filtered gives it only where the consumer's leader is its stream's.
    let replicas = exp.count("nats_consumer_replica_current", &[("consumer", "billing")]);
    assert!(
        replicas == 2 || (replicas == 0 && filtered),
        "{replicas} replica series for billing on {version}"
    );

    // Meta leader: exactly one, and every node agrees on who.
    assert_eq!(exp.sum("nats_jetstream_meta_is_leader", &[]), 1.0);
    assert_eq!(exp.sum("nats_jetstream_meta_has_leader", &[]), 3.0);
    let meta = exp.label_values("nats_jetstream_meta_leader_info", "leader");
    assert_eq!(meta.len(), 1, "{meta:?}");
    assert_eq!(exp.count("nats_jetstream_meta_replica_current", &[]), 2);

    // Routes are named by server name on 2.9 too, never by the restart-unstable ID.
    for i in 0..3 {
        let n = cluster.server_name(i);
        let mut remotes = exp
            .filter("nats_route_connections", &[("node", &n)])
            .iter()
            .map(|s| s.label("remote").unwrap().to_string())
            .collect::<Vec<_>>();
        remotes.sort();
        let mut want: Vec<String> = (0..3)
            .filter(|j| *j != i)
            .map(|j| cluster.server_name(j))
            .collect();
        want.sort();
        assert_eq!(remotes, want);
        // A route's RTT reads 0 until its first PING round trip.
        assert!(exp.get("nats_route_rtt_seconds", &[("node", &n)]).unwrap() >= 0.0);
    }

    // Multi-tenant figures per account.
    assert!(exp.sum("nats_account_connections", &[("account", "A")]) >= 1.0);
    assert!(exp.sum("nats_account_connections", &[("account", "B")]) >= 1.0);
    assert!(exp.sum("nats_account_received_msgs_total", &[("account", "A")]) >= 100.0);
    assert!(exp.sum("nats_jetstream_account_storage_bytes", &[("account", "B")]) > 0.0);
    assert_eq!(exp.count("nats_healthz_ok", &[]), 3);

    // Counters are typed as counters, levels as gauges, and the whole text lints clean.
    assert_eq!(exp.type_of("nats_varz_in_msgs_total"), Some("counter"));
    assert_eq!(
        exp.type_of("nats_varz_accepted_connections_total"),
        Some("counter")
    );
    assert_eq!(
        exp.type_of("nats_varz_slow_consumers_total"),
        Some("counter")
    );
    assert_eq!(
        exp.type_of("nats_jetstream_api_requests_total"),
        Some("counter")
    );
    assert_eq!(exp.type_of("nats_varz_connections"), Some("gauge"));
    assert!(exp.sum("nats_varz_in_msgs_total", &[]) >= 107.0);
    let (ok, out) = promtool_check_metrics(&exp.text);
    assert!(ok && out.trim().is_empty(), "promtool check metrics: {out}");

    // OpenMetrics when asked for it.
    let om = raw_get(
        &format!("{}/metrics", nm.base_url()),
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    )
    .await
    .unwrap();
    assert!(
        om.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(om.body.ends_with("# EOF\n"));
    assert!(om.body.contains("# TYPE nats_varz_in_msgs counter\n"));

    // gzip, as Prometheus asks for it: cached NATS member plus a fresh one for natsmon's own.
    let gz = reqwest::Client::new()
        .get(format!("{}/metrics", nm.base_url()))
        .header("Accept", "application/openmetrics-text; version=1.0.0")
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers().get("content-encoding").unwrap(), "gzip");
    let compressed = gz.bytes().await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(&compressed[..]),
        &mut text,
    )
    .unwrap();
    assert!(
        text.ends_with("# EOF\n") && text.contains("nats_stream_messages{"),
        "{text}"
    );
    assert!(
        compressed.len() * 3 < text.len(),
        "{} compressed vs {} plain",
        compressed.len(),
        text.len()
    );

    // The status page lists every node.
    let page = raw_get(&format!("{}/", nm.base_url()), &[]).await.unwrap();
    for i in 0..3 {
        assert!(
            page.body.contains(&format!(
                "<td data-k=\"server\">{}</td>",
                cluster.server_name(i)
            )),
            "{}",
            page.body
        );
    }
    assert_eq!(
        raw_get(&format!("{}/ready", nm.base_url()), &[])
            .await
            .unwrap()
            .status,
        200
    );
    drop(orders);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connection_totals_stay_correct_beyond_1024() {
    let cluster = Cluster::start().await;
    let url = cluster.client_url(0);
    let mut conns = Vec::new();
    for chunk in 0..11 {
        let opens = (0..100).map(|_| raw_connection(&url));
        conns.extend(futures::future::join_all(opens).await);
        assert_eq!(conns.len(), (chunk + 1) * 100);
    }
    let n1 = cluster.server_name(0);
    let nm = Natsmon::start(&natsmon_args(
        &cluster,
        ("3s", "2s"),
        &["--connection-metrics-limit", "5"],
    ))
    .await;
    let exp = wait_for(&nm.base_url(), Duration::from_secs(30), |e| {
        e.get("nats_connz_connections", &[("node", &n1)])
            .is_some_and(|v| v >= 1100.0)
    })
    .await;
    let varz = cluster.json(0, "/varz").await;
    let server_count = varz["connections"].as_f64().unwrap();
    let total = exp.get("nats_connz_connections", &[("node", &n1)]).unwrap();
    assert_eq!(
        total, server_count,
        "natsmon agrees with the server's own count"
    );
    assert!(total >= 1100.0);
    assert_eq!(
        exp.get("nats_connz_polled_connections", &[("node", &n1)]),
        Some(total),
        "all pages were read"
    );
    assert_eq!(exp.get("nats_connz_truncated", &[("node", &n1)]), Some(0.0));
    assert!(
        exp.get("nats_connz_subscriptions", &[("node", &n1)])
            .is_some()
    );
    // Per-connection series are bounded by the limit and carry the account.
    assert_eq!(exp.count("nats_connection_up", &[("node", &n1)]), 5);
    assert!(
        exp.filter("nats_connection_up", &[("node", &n1)])
            .iter()
            .all(|s| s.label("account") == Some("A"))
    );
    // Paging used several requests: page size 1024.
    assert!(
        exp.get(
            "natsmon_polls_total",
            &[("node", &n1), ("endpoint", "connz")]
        )
        .unwrap()
            >= 2.0
    );
    drop(conns);
}
