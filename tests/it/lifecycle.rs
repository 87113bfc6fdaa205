//! Process lifecycle: SIGTERM stops natsmon promptly even while a poll hangs on a node
//! that never answers, and bad configuration is refused with a clear message.

use std::time::{Duration, Instant};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_promptly_while_a_poll_hangs() {
    // A listener that accepts and never answers: every poll of it hangs until the timeout.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("hang=http://{}", hang.local_addr().unwrap());
    let mut nm = Natsmon::start(&args(&[
        "--nats-url",
        &url,
        "--poll-interval",
        "30s",
        "--poll-timeout",
        "25s",
        "--shutdown-grace",
        "3s",
    ]))
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    nm.terminate();
    let status = nm
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("natsmon exits after SIGTERM");
    assert!(status.success(), "exit status {status}\n{}", nm.output());
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}: the hung poll must not hold shutdown",
        t.elapsed()
    );
    assert!(nm.stderr_contents().contains("Shutdown requested."));
    drop(hang);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_is_refused_clearly() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--nats-url", "ftp://127.0.0.1:8222"],
            "scheme must be http or https",
        ),
        (&["--poll-interval", "soon"], "poll-interval"),
        (
            &["--web-basic-auth-users", "prom:plaintext"],
            "not a bcrypt hash",
        ),
        (
            &["--nats-url", "a=http://u:topsecret@[bad"],
            "invalid NATS URL",
        ),
    ];
    for (a, want) in cases {
        let (status, _out, err) = run_natsmon(&args(a), Duration::from_secs(10)).await;
        let status = status.expect("natsmon exits on bad configuration");
        assert!(!status.success(), "{a:?} was accepted");
        assert!(err.contains(want), "{a:?}: stderr lacks {want:?}:\n{err}");
        assert!(
            !err.contains("topsecret"),
            "a password leaked into the error: {err}"
        );
    }
    let (status, out, _) = run_natsmon(&args(&["--help"]), Duration::from_secs(10)).await;
    assert!(status.unwrap().success());
    for flag in [
        "--nats-url",
        "--listen",
        "--poll-interval",
        "--poll-timeout",
        "--config",
        "NATSMON_NATS_URL",
        "7778",
    ] {
        assert!(out.contains(flag), "--help lacks {flag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_listen_port_fails_fast() {
    // Someone else holds the port natsmon is told to listen on.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let node = format!("n1=http://127.0.0.1:{}", free_port());
    let t = Instant::now();
    let (status, out, err) = run_natsmon(
        &args(&[
            "--listen",
            &addr,
            "--nats-url",
            &node,
            "--poll-interval",
            "200ms",
            "--poll-timeout",
            "100ms",
        ]),
        Duration::from_secs(10),
    )
    .await;
    let took = t.elapsed();
    let output = format!("--- stderr ---\n{err}\n--- stdout ---\n{out}");
    let status = status.unwrap_or_else(|| panic!("natsmon still running after 10 s:\n{output}"));
    assert!(!status.success(), "exit status {status}:\n{output}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        output.contains(&addr),
        "the error does not name {addr}:\n{output}"
    );
    // It binds before it starts polling.
    assert!(
        !output.contains("Polling node"),
        "pollers started before the listener was bound:\n{output}"
    );
    drop(busy);
}
