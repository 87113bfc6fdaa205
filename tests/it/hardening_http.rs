//! Hardening: natsmon's own port and process under hostile clients and a careless
//! environment: wrong-password floods, half-sent requests at shutdown, idle connections
//! under a small file limit, `q=0`, and a closed stderr.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::natsmon::natsmon_bin;
use crate::harness::*;

/// `prom` / `s3cret` at bcrypt cost 10, about 50 ms per verification, like a real
/// `htpasswd -nbB` hash.
fn users() -> String {
    format!("prom:{}", bcrypt::hash("s3cret", 10).unwrap())
}

fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn counter_sum(exp: &Exposition, name: &str, want: &[(&str, &str)]) -> f64 {
    exp.samples
        .iter()
        .filter(|s| {
            s.name == name
                && want
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_passwords_do_not_make_a_healthy_node_look_down() {
    let mut cluster = Cluster::start().await;
    cluster.wait_healthy_all(Duration::from_secs(45)).await;
    let users = users();
    let nm = Natsmon::start_with_env(
        &natsmon_args(&cluster, ("1s", "800ms"), &[]),
        &[("NATSMON_WEB_BASIC_AUTH_USERS", &users)],
    )
    .await;
    let base = nm.base_url();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let good = async |client: &reqwest::Client| {
        let t = Instant::now();
        let r = client
            .get(format!("{base}/metrics"))
            .basic_auth("prom", Some("s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        (r.text().await.unwrap(), t.elapsed())
    };
    // Verified once, then cached.
    let (before, _) = good(&client).await;
    let before = Exposition::parse(&before);
    let errors_before = counter_sum(&before, "natsmon_poll_errors_total", &[]);

    // 200 clients sending wrong passwords (and unknown users) for 6 s.
    let stop = Instant::now() + Duration::from_secs(6);
    let mut flood = Vec::new();
    for i in 0..200 {
        let base = base.clone();
        let client = client.clone();
        flood.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < stop {
                let user = if i % 2 == 0 { "prom" } else { "mallory" };
                let r = client
                    .get(format!("{base}/metrics"))
                    .basic_auth(user, Some(format!("guess{n}")))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                if let Ok(r) = r {
                    assert_eq!(r.status(), 401);
                }
                n += 1;
            }
        }));
    }
    let mut slowest = Duration::ZERO;
    while Instant::now() < stop {
        let (_, took) = good(&client).await;
        slowest = slowest.max(took);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for f in flood {
        f.await.unwrap();
    }
    let (after, _) = good(&client).await;
    let after = Exposition::parse(&after);
    for i in 0..cluster.len() {
        let node = cluster.server_name(i);
        assert_eq!(
            after.get("nats_up", &[("node", &node)]),
            Some(1.0),
            "{node}"
        );
    }
    let errors_after = counter_sum(&after, "natsmon_poll_errors_total", &[]);
    assert_eq!(
        errors_after,
        errors_before,
        "polls failed during the flood:\n{}",
        nm.output()
    );
    assert!(!nm.output().contains("Node is down"), "{}", nm.output());
    assert!(
        slowest < Duration::from_secs(2),
        "a valid scrape took {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_does_not_hold_up_shutdown() {
    let dead = format!("n1=http://127.0.0.1:{}", free_port());
    let mut nm = Natsmon::start(&args(&[
        "--nats-url",
        &dead,
        "--poll-interval",
        "1s",
        "--shutdown-grace",
        "2s",
    ]))
    .await;
    let addr = nm.base_url().trim_start_matches("http://").to_string();
    let mut socks = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: half")
            .unwrap();
        socks.push(s);
    }
    // And one that sent a whole request and keeps the connection open.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    let _ = idle.read(&mut buf).unwrap();
    socks.push(idle);
    let t = Instant::now();
    nm.terminate();
    let status = nm.wait_exit(Duration::from_secs(10)).await;
    assert!(
        status.is_some(),
        "still running 10 s after SIGTERM with a 2 s grace:\n{}",
        nm.output()
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    drop(socks);
}

#[test]
fn a_slow_client_is_cut_off_at_the_header_timeout() {
    let port = free_port();
    let mut child = Command::new(natsmon_bin())
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--nats-url",
            &format!("n1=http://127.0.0.1:{}", free_port()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if t.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("natsmon did not listen: {e}"),
        }
    };
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let t = Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let took = t.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        took < Duration::from_secs(10),
        "a client that never finished its headers kept the connection {took:?}"
    );
}

#[test]
fn idle_connections_under_a_small_file_limit_leave_scrapes_working() {
    let port = free_port();
    let dir = new_tempdir("natsmon-nofile-");
    let err_path = dir.path().join("stderr.log");
    let mut child = Command::new("prlimit")
        .arg("--nofile=128:128")
        .arg(natsmon_bin())
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--nats-url",
            &format!("n1=http://127.0.0.1:{}", free_port()),
            "--poll-interval",
            "1s",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("prlimit (util-linux) runs natsmon");
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "natsmon did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // 200 clients connect and say nothing.
    let idle: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(idle.len() > 100, "only {} connections opened", idle.len());
    // A scraper retrying as Prometheus does gets its metrics within the header timeout.
    let t = Instant::now();
    let mut ok = false;
    while t.elapsed() < Duration::from_secs(15) && !ok {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            if s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .is_ok()
            {
                let mut r = BufReader::new(s);
                let mut status = String::new();
                if r.read_line(&mut status).is_ok() && status.starts_with("HTTP/1.1 200") {
                    ok = true;
                }
            }
        }
        if !ok {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(idle);
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(ok, "no scrape succeeded within 15 s:\n{}", tail(&err, 20));
    assert!(!err.contains("Too many open files"), "{}", tail(&err, 20));
    let warns = err
        .lines()
        .filter(|l| l.contains("Connection limit reached"))
        .count();
    assert!(
        warns <= 1,
        "{warns} connection-limit warnings:\n{}",
        tail(&err, 20)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_headers_with_q_zero_are_honoured() {
    let dead = format!("n1=http://127.0.0.1:{}", free_port());
    let nm = Natsmon::start(&args(&["--nats-url", &dead])).await;
    let url = format!("{}/metrics", nm.base_url());
    let r = raw_get(
        &url,
        &[
            ("Accept", "application/openmetrics-text;q=0, text/plain"),
            ("Accept-Encoding", "gzip;q=0, identity"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type").unwrap().starts_with("text/plain"),
        "{:?}",
        r.header("content-type")
    );
    assert_eq!(r.header("content-encoding"), None);
    let text = &r.body;
    assert!(!text.contains("# EOF"), "{text}");
}

/// `natsmon … 2>&1 | head -n 3`: once the reader of stderr is gone every log write
/// fails. natsmon must keep polling (a killed node goes to `nats_up 0`) and still stop
/// on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stderr_neither_kills_natsmon_nor_leaves_a_dead_node_up() {
    let mut cluster = Cluster::start().await;
    cluster.wait_healthy_all(Duration::from_secs(45)).await;
    let port = free_port();
    let mut a = natsmon_args(&cluster, ("300ms", "250ms"), &[]);
    a.extend(args(&["--listen", &format!("127.0.0.1:{port}")]));
    let mut child = Command::new(natsmon_bin())
        .args(&a)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        // Read three lines, then close the pipe, as `head -n 3` does.
        let mut r = BufReader::new(child.stderr.take().unwrap());
        for _ in 0..3 {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
        }
    }
    let base = format!("http://127.0.0.1:{port}");
    let victim = cluster.server_name(2);
    wait_for(&base, Duration::from_secs(20), |e| {
        e.get("nats_up", &[("node", &victim)]) == Some(1.0)
    })
    .await;
    cluster.kill(2);
    // Each failed poll of the dead node logs a WARN into the closed pipe.
    let exp = wait_for(&base, Duration::from_secs(20), |e| {
        e.get("nats_up", &[("node", &victim)]) == Some(0.0)
    })
    .await;
    assert_eq!(
        exp.get("nats_up", &[("node", &cluster.server_name(0))]),
        Some(1.0)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Still polling: the healthy nodes' poll counters move on.
    let later = scrape(&base).await;
    let polls = |e: &Exposition| {
        counter_sum(
            e,
            "natsmon_poll_cycles_total",
            &[("node", &cluster.server_name(0))],
        )
    };
    assert!(polls(&later) > polls(&exp), "the pollers stopped");
    assert_eq!(later.get("nats_up", &[("node", &victim)]), Some(0.0));
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(10));
    if status.is_none() {
        let _ = child.kill();
    }
    assert!(status.is_some(), "SIGTERM was ignored after stderr closed");
}
