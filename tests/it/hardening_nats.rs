//! Hardening: misbehaving and unusually configured NATS nodes: paging, unlimited values, redirects, memory.
//!
//! Misbehaving nodes are small fake HTTP servers on loopback (one request per connection,
//! each request recorded); unusual configurations are REAL nats-server processes started
//! here with the settings under test.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::http::http_get;
use crate::harness::*;

/// A `/varz` with the fields natsmon needs to call a node up.
const VARZ: &str = r#"{"server_id":"NFAKE","server_name":"fake","version":"2.9.10","go":"go1.19.8","start":"2024-01-01T00:00:00Z","mem":1000,"cores":2,"connections":3,"total_connections":7}"#;

/// What a fake node answers to one request.
enum Reply {
    /// A whole response written at once; the connection is closed after it.
    Raw(Vec<u8>),
    /// A chunked 200 that sends `bytes` of body as fast as the client reads, then holds
    /// the connection open without finishing the body for `hold`.
    Stall { bytes: usize, hold: Duration },
}

fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut r = head.into_bytes();
    r.extend_from_slice(body);
    Reply::Raw(r)
}

fn json(body: &str) -> Reply {
    response(
        "200 OK",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn gzip_json(body: &[u8]) -> Reply {
    response(
        "200 OK",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(body),
    )
}

/// A fake monitoring server on a fresh loopback port that records every request's path
/// and query.
struct FakeNode {
    addr: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl FakeNode {
    async fn start(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> FakeNode {
        // Through free_port: a port the harness gave a cluster node (killed, so free
        // again) is never reused by a fake node of this test.
        let listener = TcpListener::bind(("127.0.0.1", free_port())).await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(handler);
        let seen2 = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (handler, seen) = (handler.clone(), seen2.clone());
                tokio::spawn(async move { serve_one(sock, &*handler, &seen).await });
            }
        });
        FakeNode { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests whose path starts with `prefix`.
    fn requests(&self, prefix: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.starts_with(prefix))
            .count()
    }

    fn all_requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve_one(
    mut sock: TcpStream,
    handler: &(dyn Fn(&str) -> Reply + Send + Sync),
    seen: &Mutex<Vec<String>>,
) {
    let mut buf = vec![0u8; 8192];
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    seen.lock().unwrap().push(path.clone());
    match handler(&path) {
        Reply::Raw(r) => {
            let _ = sock.write_all(&r).await;
        }
        Reply::Stall { bytes, hold } => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            if sock.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = 64 * 1024;
            let data = format!("{chunk:x}\r\n{}\r\n", " ".repeat(chunk));
            for _ in 0..bytes / chunk {
                if sock.write_all(data.as_bytes()).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(hold).await;
        }
    }
    let _ = sock.shutdown().await;
}

/// The lines of natsmon's log that contain every one of `parts`.
fn log_lines<'a>(log: &'a str, parts: &[&str]) -> Vec<&'a str> {
    log.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .collect()
}

fn node_arg(name: &str, url: &str) -> [String; 2] {
    ["--nats-url".to_string(), format!("{name}={url}")]
}

// ---------------------------------------------------------------------------------------
// 1. Paging that never ends.

/// A `/connz` page of `limit` connections (cids 1..=limit) claiming a million in total:
/// `echo` reports the offset asked for, else always 0, as if the node ignored it.
fn connz_page(path: &str, echo: bool) -> String {
    let q = |k: &str| {
        path.split(['?', '&'])
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let limit = q("limit").unwrap_or(1024);
    let offset = if echo { q("offset").unwrap_or(0) } else { 0 };
    let conns: Vec<String> = (1..=limit)
        .map(|cid| {
            format!(
                r#"{{"cid":{cid},"kind":"Client","ip":"127.0.0.1","port":{p},"rtt":"1ms","pending_bytes":0,"in_msgs":1,"out_msgs":1,"in_bytes":1,"out_bytes":1,"subscriptions":1,"name":"c{cid}","account":"A"}}"#,
                p = 40000 + cid
            )
        })
        .collect();
    format!(
        r#"{{"server_id":"NFAKE","num_connections":{limit},"total":1000000,"offset":{offset},"limit":{limit},"connections":[{}]}}"#,
        conns.join(",")
    )
}

/// A full `/jsz` page of 1024 accounts, the same for every offset; `total` as 2.10.28+
/// reports it, else absent as before.
fn jsz_page(total: Option<u64>) -> String {
    let accounts: Vec<String> = (0..1024)
        .map(|i| {
            format!(
                r#"{{"name":"ACC{i:04}","id":"ACC{i:04}","memory":0,"storage":0,"reserved_memory":0,"reserved_storage":0,"api":{{"total":0,"errors":0}}}}"#
            )
        })
        .collect();
    let total = total
        .map(|t| format!(r#""total":{t},"#))
        .unwrap_or_default();
    format!(
        r#"{{"server_id":"NFAKE",{total}"streams":0,"consumers":0,"messages":0,"bytes":0,"account_details":[{}]}}"#,
        accounts.join(",")
    )
}

fn paging_node(path: &str, echo: bool) -> Reply {
    if path.starts_with("/varz") {
        json(VARZ)
    } else if path.starts_with("/connz") {
        json(&connz_page(path, echo))
    } else if path.starts_with("/jsz") {
        json(&jsz_page(echo.then_some(1_000_000)))
    } else {
        json("{}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paging_that_never_ends_fails_with_reason_paging_and_stays_bounded() {
    // `ignorer` answers every page with offset 0; `echoer` echoes the offset but still
    // sends the same connections, and a jsz `total` that would allow ~1000 pages.
    let ignorer = FakeNode::start(|p| paging_node(p, false)).await;
    let echoer = FakeNode::start(|p| paging_node(p, true)).await;
    let mut a = args(&[
        "--poll-interval",
        "300ms",
        "--poll-timeout",
        "3s",
        "--connz-page-size",
        "4",
        "--connz-all-pages",
    ]);
    a.extend(node_arg("ignorer", &ignorer.url()));
    a.extend(node_arg("echoer", &echoer.url()));
    let nm = Natsmon::start(&a).await;
    let nodes = [("ignorer", &ignorer), ("echoer", &echoer)];
    let exp = wait_for(&nm.base_url(), Duration::from_secs(30), |e| {
        nodes.iter().all(|(n, _)| {
            e.get("nats_up", &[("node", n)]) == Some(1.0)
                && ["connz", "jsz"].iter().all(|ep| {
                    e.get(
                        "natsmon_poll_errors_total",
                        &[("node", n), ("endpoint", ep), ("reason", "paging")],
                    )
                    .is_some_and(|v| v >= 3.0)
                })
        })
    })
    .await;
    for (n, fake) in nodes {
        let cycles = exp
            .get("natsmon_poll_cycles_total", &[("node", n)])
            .unwrap();
        // A first page and the page that gives the repeat away, per cycle, plus the
        // cycles in flight since the scrape.
        for path in ["/connz", "/jsz"] {
            let seen = fake.requests(path) as f64;
            assert!(
                seen <= 2.0 * (cycles + 2.0),
                "{n}: {seen} {path} requests in {cycles} cycles"
            );
        }
        assert_eq!(
            exp.get("nats_varz_connections", &[("node", n)]),
            Some(3.0),
            "{n} keeps its /varz data"
        );
        assert!(
            exp.get("nats_connz_connections", &[("node", n)]).is_none(),
            "{n}: a failed /connz has no series"
        );
        let log = nm.stderr_contents();
        for ep in ["connz", "jsz"] {
            let lines = log_lines(
                &log,
                &[
                    "Poll failed.",
                    &format!("node={n} "),
                    &format!("endpoint={ep} "),
                    "reason=paging",
                ],
            );
            assert!(
                !lines.is_empty(),
                "no paging failure of {n}/{ep} in:\n{log}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 2. Go's "unlimited" encodings from real servers.

/// One standalone nats-server with extra configuration; killed on drop.
struct Server {
    child: Child,
    http_port: u16,
    client_port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// `conf` is added to the listen lines; `{store}` in it becomes a store directory.
    async fn start(conf: &str) -> Server {
        let dir = new_tempdir("natsmon-hardening-");
        let (client_port, http_port) = (free_port(), free_port());
        let store = dir.path().join("store");
        let conf = format!(
            "listen: 127.0.0.1:{client_port}\nhttp: 127.0.0.1:{http_port}\n{}",
            conf.replace("{store}", &store.display().to_string())
        );
        let path = dir.path().join("server.conf");
        std::fs::write(&path, &conf).unwrap();
        let log = dir.path().join("server.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(nats_server_bin())
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("spawn nats-server");
        let mut s = Server {
            child,
            http_port,
            client_port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("nats-server exited with {status}:\n{}", s.log_text());
            }
            if let Ok((200, _)) = http_get(&format!("{}/healthz", s.monitor_url())).await {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server not healthy:\n{}",
                s.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    fn client_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unlimited_settings_of_real_servers_are_absent_not_a_dead_node() {
    // Server limits that 2.9 reports as -1 in /varz.
    let limits = Server::start(
        "max_connections: -1\nmax_subscriptions: -1\nmax_payload: -1\nmax_pending: -1\n",
    )
    .await;
    // JetStream and account limits of -1, and a stream and consumer without limits.
    let js_server = Server::start(
        r#"
jetstream { store_dir: "{store}", max_memory_store: -1, max_file_store: -1 }
system_account: SYS
accounts {
  SYS { users: [ { user: sys, password: sys } ] }
  U {
    jetstream { max_mem: -1, max_file: -1, max_streams: -1, max_consumers: -1 }
    users: [ { user: u, password: u } ]
    limits { max_connections: -1, max_subscriptions: -1 }
  }
}
"#,
    )
    .await;
    let nc = async_nats::ConnectOptions::with_user_and_password("u".into(), "u".into())
        .connect(js_server.client_url())
        .await
        .expect("connect as u");
    let js = jetstream::new(nc);
    let s = create_stream(
        &js,
        stream::Config {
            name: "UNL".into(),
            subjects: vec!["unl.>".into()],
            max_messages: -1,
            max_bytes: -1,
            max_consumers: -1,
            max_messages_per_subject: -1,
            max_message_size: -1,
            ..Default::default()
        },
    )
    .await;
    publish_acked(&js, "unl.a", "1", "unl-a-1").await;
    until_ok("create consumer without limits", || {
        s.create_consumer(pull::Config {
            durable_name: Some("C".into()),
            max_ack_pending: -1,
            max_deliver: -1,
            ..Default::default()
        })
    })
    .await;

    let mut a = args(&["--poll-interval", "300ms", "--poll-timeout", "2s"]);
    a.extend(node_arg("limits", &limits.monitor_url()));
    a.extend(node_arg("js", &js_server.monitor_url()));
    let nm = Natsmon::start(&a).await;
    let exp = wait_for(&nm.base_url(), Duration::from_secs(20), |e| {
        e.get("nats_up", &[("node", "limits")]) == Some(1.0)
            && e.get("nats_up", &[("node", "js")]) == Some(1.0)
            && e.get("nats_stream_messages", &[("stream", "UNL")]) == Some(1.0)
            && e.get("nats_consumer_num_pending", &[("consumer", "C")])
                .is_some()
            && e.get("nats_jetstream_account_memory_bytes", &[("account", "U")])
                .is_some()
            && e.get("natsmon_poll_cycles_total", &[("node", "limits")])
                .is_some_and(|v| v >= 3.0)
    })
    .await;
    let absent: &[(&str, &[(&str, &str)])] = &[
        ("nats_varz_max_connections", &[("node", "limits")]),
        ("nats_varz_max_payload_bytes", &[("node", "limits")]),
        (
            "nats_jetstream_account_reserved_memory_bytes",
            &[("account", "U")],
        ),
        (
            "nats_jetstream_account_reserved_storage_bytes",
            &[("account", "U")],
        ),
        ("nats_stream_max_messages", &[("stream", "UNL")]),
        ("nats_stream_max_bytes", &[("stream", "UNL")]),
        ("nats_stream_max_consumers", &[("stream", "UNL")]),
        ("nats_stream_max_messages_per_subject", &[("stream", "UNL")]),
        ("nats_stream_max_age_seconds", &[("stream", "UNL")]),
        ("nats_consumer_max_ack_pending", &[("consumer", "C")]),
    ];
    for (name, labels) in absent {
        assert!(
            exp.find(name, labels).is_none(),
            "{name}{labels:?} is unlimited and must be absent:\n{}",
            exp.text
        );
    }
    // Nothing exported is negative or Go's -1 as an unsigned number.
    for s in &exp.samples {
        assert!(
            s.value >= 0.0 && s.value < 1.8e19,
            "{} {:?} = {}",
            s.name,
            s.labels,
            s.value
        );
    }
    // The rest of both nodes is there, limits that are set included.
    assert_eq!(
        exp.get("nats_varz_connections", &[("node", "limits")]),
        Some(0.0)
    );
    assert!(
        exp.get("nats_varz_max_connections", &[("node", "js")])
            .is_some()
    );
    assert!(exp.get("nats_stream_replicas", &[("stream", "UNL")]) == Some(1.0));
    assert_eq!(
        exp.sum("natsmon_poll_errors_total", &[]),
        0.0,
        "no poll errors:\n{}",
        exp.text
    );
    let log = nm.stderr_contents();
    assert!(log_lines(&log, &["Poll failed."]).is_empty(), "{log}");
}

// ---------------------------------------------------------------------------------------
// 3. Total body memory.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn body_memory_is_bounded_across_all_nodes_and_endpoints() {
    // 8 nodes answer /varz (so natsmon goes on to their other endpoints), and their 6
    // other endpoints each send 3.5 MiB of a 4 MiB cap and then stall: held at once
    // without a shared budget that is ~170 MiB of bodies.
    const MIB: usize = 1024 * 1024;
    let mut fakes = Vec::new();
    for _ in 0..8 {
        fakes.push(
            FakeNode::start(|p| {
                if p.starts_with("/varz") {
                    json(VARZ)
                } else {
                    Reply::Stall {
                        bytes: 7 * MIB / 2,
                        hold: Duration::from_secs(20),
                    }
                }
            })
            .await,
        );
    }
    let mut a = args(&[
        "--poll-interval",
        "3s",
        "--poll-timeout",
        "2s",
        "--max-response-bytes",
        &(4 * MIB).to_string(),
    ]);
    for (i, f) in fakes.iter().enumerate() {
        a.extend(node_arg(&format!("f{i}"), &f.url()));
    }
    let nm = Natsmon::start(&a).await;
    let pid = nm.pid().unwrap();
    let exp = wait_for(&nm.base_url(), Duration::from_secs(30), |e| {
        (0..8).all(|i| {
            e.get("natsmon_poll_cycles_total", &[("node", &format!("f{i}"))])
                .is_some_and(|v| v >= 2.0)
        })
    })
    .await;
    let hwm_mib = natsmon_testkit::proc::status_kib(pid, "VmHWM:") as f64 / 1024.0;
    eprintln!("natsmon VmHWM: {hwm_mib:.1} MiB");
    for f in &fakes {
        assert!(f.requests("/") >= 7, "{:?}", f.all_requests());
    }
    assert!(
        hwm_mib < 100.0,
        "natsmon peaked at {hwm_mib:.0} MiB of RSS with a 4 MiB body cap"
    );
    assert!(
        exp.sum("natsmon_poll_errors_total", &[("reason", "memory")]) >= 1.0,
        "bodies that found no budget fail with reason memory:\n{}",
        exp.text
    );
}

// ---------------------------------------------------------------------------------------
// 4. Content-Encoding.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gzip_bodies_are_decoded_within_the_cap_and_other_encodings_fail_clearly() {
    let gz = FakeNode::start(|p| {
        if p.starts_with("/varz") {
            gzip_json(VARZ.as_bytes())
        } else if p.starts_with("/subsz") {
            gzip_json(br#"{"num_subscriptions":42,"num_cache":1}"#)
        } else {
            gzip_json(b"{}")
        }
    })
    .await;
    // 8 MiB of whitespace is ~8 KiB compressed: it must hit the 1 MiB cap decompressed.
    let bomb = FakeNode::start(|p| {
        if p.starts_with("/varz") {
            gzip_json(VARZ.as_bytes())
        } else if p.starts_with("/subsz") {
            let mut b = vec![b' '; 8 * 1024 * 1024];
            b.extend_from_slice(b"{}");
            gzip_json(&b)
        } else {
            json("{}")
        }
    })
    .await;
    let brotli = FakeNode::start(|_| {
        response(
            "200 OK",
            &[
                ("Content-Type", "application/json"),
                ("Content-Encoding", "br"),
            ],
            b"\x1b\x03\x00\xf8\xa5\x40\x02",
        )
    })
    .await;
    let mut a = args(&[
        "--poll-interval",
        "300ms",
        "--poll-timeout",
        "2s",
        "--max-response-bytes",
        "1048576",
    ]);
    a.extend(node_arg("gz", &gz.url()));
    a.extend(node_arg("bomb", &bomb.url()));
    a.extend(node_arg("br", &brotli.url()));
    let nm = Natsmon::start(&a).await;
    let exp = wait_for(&nm.base_url(), Duration::from_secs(20), |e| {
        e.get("nats_up", &[("node", "gz")]) == Some(1.0)
            && e.get(
                "natsmon_poll_errors_total",
                &[
                    ("node", "bomb"),
                    ("endpoint", "subsz"),
                    ("reason", "too_large"),
                ],
            )
            .is_some()
            && e.get(
                "natsmon_poll_errors_total",
                &[("node", "br"), ("endpoint", "varz"), ("reason", "encoding")],
            )
            .is_some()
            && e.get("natsmon_poll_cycles_total", &[("node", "gz")])
                .is_some_and(|v| v >= 2.0)
    })
    .await;
    assert_eq!(
        exp.get("nats_varz_connections", &[("node", "gz")]),
        Some(3.0)
    );
    assert_eq!(
        exp.get("nats_subsz_subscriptions", &[("node", "gz")]),
        Some(42.0)
    );
    assert_eq!(
        exp.sum("natsmon_poll_errors_total", &[("node", "gz")]),
        0.0,
        "gzip is decoded:\n{}",
        exp.text
    );
    assert_eq!(exp.get("nats_up", &[("node", "bomb")]), Some(1.0));
    assert!(
        exp.get("nats_subsz_subscriptions", &[("node", "bomb")])
            .is_none()
    );
    assert_eq!(exp.get("nats_up", &[("node", "br")]), Some(0.0));
    let log = nm.stderr_contents();
    let br = log_lines(&log, &["Node is down.", "node=br ", "reason=encoding"]);
    assert!(
        br.first().is_some_and(|l| l.contains("br")),
        "the encoding is named:\n{log}"
    );
    assert!(log_lines(&log, &["malformed JSON"]).is_empty(), "{log}");
}

// ---------------------------------------------------------------------------------------
// 5. Endpoints an older server does not have.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endpoint_that_404s_is_said_once_and_asked_for_rarely() {
    let old = FakeNode::start(|p| {
        if p.starts_with("/varz") {
            json(VARZ)
        } else if p.starts_with("/accstatz") || p.starts_with("/subsz") {
            response(
                "404 Not Found",
                &[("Content-Type", "text/plain")],
                b"404 page not found\n",
            )
        } else {
            json("{}")
        }
    })
    .await;
    // A generous timeout: a /varz timeout would (rightly) make natsmon ask again.
    let mut a = args(&["--poll-interval", "200ms", "--poll-timeout", "1s"]);
    a.extend(node_arg("old", &old.url()));
    let nm = Natsmon::start(&a).await;
    let exp = wait_for(&nm.base_url(), Duration::from_secs(20), |e| {
        e.get("natsmon_poll_cycles_total", &[("node", "old")])
            .is_some_and(|v| v >= 10.0)
    })
    .await;
    assert_eq!(exp.get("nats_up", &[("node", "old")]), Some(1.0));
    let log = nm.stderr_contents();
    for (ep, series) in [
        ("accstatz", "nats_account_connections"),
        ("subsz", "nats_subsz_subscriptions"),
    ] {
        let lines = log_lines(&log, &[&format!("endpoint={ep} ")]);
        assert!(lines.len() <= 1, "{ep}: {lines:#?}");
        assert!(
            lines
                .first()
                .is_some_and(|l| l.contains("INFO") && l.contains("does not serve")),
            "{ep} is said once, at INFO:\n{log}"
        );
        let errors = exp.sum(
            "natsmon_poll_errors_total",
            &[("node", "old"), ("endpoint", ep)],
        );
        assert!(errors <= 1.0, "{ep}: {errors} errors counted");
        assert!(
            exp.get(
                "natsmon_poll_errors_total",
                &[("node", "old"), ("endpoint", ep), ("reason", "not_found")]
            )
            .is_some(),
            "{}",
            exp.text
        );
        assert_eq!(
            old.requests(&format!("/{ep}")),
            1,
            "{ep} is not asked again"
        );
        assert!(exp.find(series, &[("node", "old")]).is_none());
    }
    // The endpoints it has are still polled every cycle.
    assert!(old.requests("/routez") >= 10);
}

// ---------------------------------------------------------------------------------------
// 6. Redirects.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redirect_to_another_host_is_refused_and_one_on_the_node_is_followed() {
    let impostor = FakeNode::start(|p| {
        if p.starts_with("/varz") {
            json(&VARZ.replace(r#""server_name":"fake""#, r#""server_name":"impostor""#))
        } else {
            json("{}")
        }
    })
    .await;
    let target = format!("http://spy:hunter2@{}/varz?token=sekrit", impostor.addr);
    let away = FakeNode::start(move |p| {
        if p.starts_with("/varz") {
            response("302 Found", &[("Location", &target)], b"")
        } else {
            json("{}")
        }
    })
    .await;
    let here = FakeNode::start(|p| {
        if p.starts_with("/varz") {
            response("302 Found", &[("Location", "/moved/varz")], b"")
        } else if p.starts_with("/moved/varz") {
            json(&VARZ.replace(r#""server_name":"fake""#, r#""server_name":"here""#))
        } else {
            json("{}")
        }
    })
    .await;
    let mut a = args(&["--poll-interval", "300ms", "--poll-timeout", "2s"]);
    a.extend(node_arg("away", &away.url()));
    a.extend(node_arg("here", &here.url()));
    let nm = Natsmon::start(&a).await;
    let exp = wait_for(&nm.base_url(), Duration::from_secs(20), |e| {
        e.get(
            "natsmon_poll_errors_total",
            &[
                ("node", "away"),
                ("endpoint", "varz"),
                ("reason", "redirect"),
            ],
        )
        .is_some_and(|v| v >= 2.0)
            && e.get("nats_up", &[("node", "here")]) == Some(1.0)
    })
    .await;
    assert_eq!(exp.get("nats_up", &[("node", "away")]), Some(0.0));
    let names = exp.label_values("nats_server_info", "server_name");
    assert_eq!(names, vec!["here".to_string()], "no impostor data");
    assert_eq!(impostor.requests("/"), 0, "{:?}", impostor.all_requests());
    let log = nm.stderr_contents();
    let lines = log_lines(&log, &["Node is down.", "node=away ", "reason=redirect"]);
    let line = lines.first().unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains(&impostor.addr),
        "the target host is named: {line}"
    );
    let page = raw_get(&format!("{}/", nm.base_url()), &[])
        .await
        .unwrap()
        .body;
    for text in [&log, &page, &exp.text] {
        assert!(!text.contains("hunter2"), "a password leaked");
        assert!(!text.contains("spy"), "a user name leaked");
        assert!(!text.contains("sekrit"), "a query leaked");
    }
}
