//! Fault tests: a node killed and restarted mid-run, and nodes that answer slowly, with
//! HTTP 500, with malformed, truncated or huge bodies, or drop the connection. Each gives
//! a clear log line and an error counter with a reason, never a crash, and never delays
//! the healthy nodes. Credentials in node URLs never leak.

use std::time::{Duration, Instant};

use crate::harness::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How a fake monitoring endpoint misbehaves.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Slow,
    Status500,
    Malformed,
    /// Promises more body than it sends, then closes.
    Truncated,
    /// Declares a body larger than natsmon's cap.
    HugeDeclared,
    /// Streams a body larger than the cap without declaring its length.
    HugeChunked,
    /// Closes the connection without answering.
    Drop,
}

/// Serves `fault` on every request to a fresh loopback port; returns its base URL.
async fn fake_node(fault: Fault) -> String {
    // Through free_port: a port the harness gave a cluster node is never reused here.
    let listener = TcpListener::bind(("127.0.0.1", free_port())).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = match fault {
                    Fault::Slow => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").await
                    }
                    Fault::Status500 => {
                        sock.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops").await
                    }
                    Fault::Malformed => {
                        let body = b"{\"server_id\": \"X\", \"connections\": [1, 2,";
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
                        sock.write_all(head.as_bytes()).await.and(sock.write_all(body).await)
                    }
                    Fault::Truncated => sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n{\"server_id\":").await,
                    Fault::HugeDeclared => {
                        sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n{\"server_id\":\"").await
                    }
                    Fault::HugeChunked => {
                        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await;
                        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "a".repeat(64 * 1024));
                        for _ in 0..64 {
                            if sock.write_all(chunk.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        sock.write_all(b"0\r\n\r\n").await
                    }
                    Fault::Drop => Ok(()),
                };
            });
        }
    });
    format!("127.0.0.1:{}", addr.port())
}

/// Names of samples that still carry `node`, other than its up flag, its last known
/// identity (`nats_node_info`, kept on purpose while it is down) and natsmon's own.
fn node_series(exp: &Exposition, node: &str) -> Vec<String> {
    exp.samples
        .iter()
        .filter(|s| {
            s.label("node") == Some(node)
                && s.name != "nats_up"
                && s.name != "nats_node_info"
                && !s.name.starts_with("natsmon_")
        })
        .map(|s| s.name.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_node_goes_down_within_two_polls_and_comes_back() {
    let mut cluster = Cluster::start().await;
    let a = connect(&cluster, "a", "a").await;
    let js = async_nats::jetstream::new(a);
    create_stream(
        &js,
        async_nats::jetstream::stream::Config {
            name: "KV".into(),
            subjects: vec!["kv.>".into()],
            num_replicas: 3,
            ..Default::default()
        },
    )
    .await;
    publish_acked(&js, "kv.a", "1", "kv-a-1").await;
    // The node killed is the stream's leader: from 2.10.19 a node's /jsz holds only the
    // streams it leads, so KV is then in no report until the others are read whole.
    let leader = stream_leader(&js, "KV").await;
    let v = (0..cluster.len())
        .find(|&i| cluster.server_name(i) == leader)
        .expect("KV's leader is a node of the cluster");

    let interval = Duration::from_secs(1);
    let nm = Natsmon::start(&natsmon_args(&cluster, ("1s", "500ms"), &[])).await;
    let victim = cluster.server_name(v);
    wait_for(&nm.base_url(), Duration::from_secs(20), |e| {
        e.sum("nats_up", &[]) == 3.0
            && e.get("nats_stream_messages", &[("stream", "KV")]) == Some(1.0)
    })
    .await;

    cluster.kill(v);
    let killed_at = Instant::now();
    let exp = wait_for(&nm.base_url(), Duration::from_secs(10), |e| {
        e.get("nats_up", &[("node", &victim)]) == Some(0.0)
    })
    .await;
    let took = killed_at.elapsed();
    assert!(
        took <= 2 * interval + Duration::from_millis(300),
        "nats_up went to 0 after {took:?}"
    );
    assert_eq!(
        node_series(&exp, &victim),
        Vec::<String>::new(),
        "no stale series for the dead node"
    );
    for i in (0..cluster.len()).filter(|&i| i != v) {
        let n = cluster.server_name(i);
        assert_eq!(exp.get("nats_up", &[("node", &n)]), Some(1.0));
        assert!(
            exp.find("nats_server_info", &[("node", &n)]).is_some(),
            "{n} keeps its series"
        );
        assert!(
            exp.get("nats_varz_in_msgs_total", &[("node", &n)])
                .is_some()
        );
    }
    assert_eq!(
        exp.get("nats_stream_messages", &[("stream", "KV")]),
        Some(1.0),
        "the stream stays visible"
    );
    assert!(
        exp.get(
            "natsmon_poll_errors_total",
            &[
                ("node", &victim),
                ("endpoint", "varz"),
                ("reason", "connect")
            ]
        )
        .unwrap()
            >= 1.0
    );
    assert!(nm.stderr_contents().contains("Node is down."));

    cluster.restart(v).await;
    let exp = wait_for(&nm.base_url(), Duration::from_secs(20), |e| {
        e.get("nats_up", &[("node", &victim)]) == Some(1.0)
            && e.find("nats_server_info", &[("node", &victim)]).is_some()
    })
    .await;
    let info = exp.find("nats_server_info", &[("node", &victim)]).unwrap();
    assert_eq!(
        info.label("server_name"),
        Some(victim.as_str()),
        "same node label after restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn misbehaving_nodes_get_clear_errors_and_never_delay_healthy_ones() {
    let cluster = Cluster::start().await;
    let faults = [
        ("slow", Fault::Slow, "timeout"),
        ("err500", Fault::Status500, "http_5xx"),
        ("malformed", Fault::Malformed, "decode"),
        ("truncated", Fault::Truncated, "body"),
        ("huge", Fault::HugeDeclared, "too_large"),
        ("hugechunked", Fault::HugeChunked, "too_large"),
        ("dropper", Fault::Drop, "connection_closed"),
    ];
    let mut a = natsmon_args(&cluster, ("1s", "500ms"), &[]);
    a.extend(args(&["--max-response-bytes", "1048576"]));
    for (name, fault, _) in faults {
        let addr = fake_node(fault).await;
        a.push("--nats-url".into());
        // Credentials in a URL must never surface anywhere.
        a.push(format!("{name}=http://admin:hunter2@{addr}"));
    }
    let nm = Natsmon::start(&a).await;
    let exp = wait_for(&nm.base_url(), Duration::from_secs(20), |e| {
        faults.iter().all(|(name, _, reason)| {
            e.get(
                "natsmon_poll_errors_total",
                &[("node", name), ("endpoint", "varz"), ("reason", reason)],
            )
            .is_some_and(|v| v >= 2.0)
        }) && e.sum("nats_up", &[]) == 3.0
    })
    .await;
    for (name, _, _) in faults {
        assert_eq!(exp.get("nats_up", &[("node", name)]), Some(0.0), "{name}");
        assert_eq!(
            node_series(&exp, name),
            Vec::<String>::new(),
            "{name} has no data series"
        );
    }
    // The healthy nodes' cycles are not held up by the slow one.
    for i in 0..3 {
        let n = cluster.server_name(i);
        let cycle = exp
            .get("natsmon_poll_cycle_duration_seconds", &[("node", &n)])
            .unwrap();
        assert!(cycle < 0.4, "{n} cycle took {cycle}s");
        assert!(
            exp.get("natsmon_poll_cycles_total", &[("node", &n)])
                .unwrap()
                >= 2.0
        );
    }
    assert!(
        exp.get("natsmon_poll_cycle_duration_seconds", &[("node", "slow")])
            .unwrap()
            >= 0.5
    );

    let log = nm.stderr_contents();
    for (name, _, reason) in faults {
        let line = log
            .lines()
            .find(|l| {
                // A node whose /varz fails is down, and says so once, with the reason.
                (l.contains("Poll failed.") || l.contains("Node is down."))
                    && l.contains(&format!("node={name} "))
                    && l.contains(&format!("reason={reason}"))
            })
            .unwrap_or_else(|| panic!("no failure line for {name}/{reason} in:\n{log}"));
        assert!(line.contains("error="), "{line}");
    }
    let page = raw_get(&format!("{}/", nm.base_url()), &[])
        .await
        .unwrap()
        .body;
    assert!(page.contains("malformed JSON"), "{page}");
    assert!(page.contains("timed out"), "{page}");
    for text in [&exp.text, &page, &log] {
        assert!(!text.contains("hunter2"), "a password leaked");
        assert!(!text.contains("admin:"), "a user name leaked");
    }
    // Still serving, still ready (healthy nodes exist), still lint-clean.
    assert_eq!(
        raw_get(&format!("{}/healthz", nm.base_url()), &[])
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        raw_get(&format!("{}/ready", nm.base_url()), &[])
            .await
            .unwrap()
            .status,
        200
    );
    let (ok, out) = promtool_check_metrics(&exp.text);
    assert!(ok && out.trim().is_empty(), "promtool: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_only_after_a_successful_poll() {
    let dead = format!("dead=http://127.0.0.1:{}", free_port());
    let nm = Natsmon::start(&args(&[
        "--nats-url",
        &dead,
        "--poll-interval",
        "200ms",
        "--poll-timeout",
        "100ms",
    ]))
    .await;
    let exp = wait_for(&nm.base_url(), Duration::from_secs(10), |e| {
        e.get("nats_up", &[("node", "dead")]) == Some(0.0)
    })
    .await;
    assert_eq!(
        exp.get(
            "natsmon_poll_errors_total",
            &[
                ("node", "dead"),
                ("endpoint", "varz"),
                ("reason", "connect")
            ]
        )
        .map(|v| v >= 1.0),
        Some(true)
    );
    assert_eq!(
        raw_get(&format!("{}/ready", nm.base_url()), &[])
            .await
            .unwrap()
            .status,
        503
    );
    assert_eq!(
        raw_get(&format!("{}/healthz", nm.base_url()), &[])
            .await
            .unwrap()
            .status,
        200
    );
}

/// Every node polls on the same tick, and a node that does not answer ends its round at
/// the poll timeout: the render waits for it, so each round is rendered once (rendering a
/// large cluster is most of natsmon's CPU), not once for the healthy nodes and again
/// for the slow one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_with_a_slow_node_is_rendered_once() {
    let cluster = Cluster::start().await;
    let slow = fake_node(Fault::Slow).await;
    let mut a = natsmon_args(&cluster, ("2s", "500ms"), &[]);
    a.extend(args(&["--nats-url", &format!("slow=http://{slow}")]));
    let nm = Natsmon::start(&a).await;
    let base = nm.base_url();
    let n1 = cluster.server_name(0);
    let counts = |e: &Exposition| {
        (
            e.get("natsmon_renders_total", &[]).unwrap_or(0.0),
            e.get("natsmon_poll_cycles_total", &[("node", &n1)])
                .unwrap_or(0.0),
        )
    };
    let first = wait_for(&base, Duration::from_secs(20), |e| {
        e.sum("nats_up", &[]) == 3.0 && counts(e).1 >= 2.0
    })
    .await;
    let (r0, c0) = counts(&first);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let last = scrape(&base).await;
    let (r1, c1) = counts(&last);
    let (renders, rounds) = (r1 - r0, c1 - c0);
    assert!(rounds >= 4.0, "{rounds} rounds in 10 s at a 2 s interval");
    assert!(
        renders <= rounds + 1.0,
        "{renders} renders for {rounds} rounds: a round was rendered more than once"
    );
    assert!(
        renders >= rounds - 1.0,
        "{renders} renders for {rounds} rounds"
    );
    assert_eq!(last.get("nats_up", &[("node", "slow")]), Some(0.0));
}
