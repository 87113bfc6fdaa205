//! Roles: a shipper-only natsmon (one per Docker host) ships with real dockerd and polls no
//! NATS node nor exports a NATS series; an exporter-only one reads no Docker; a natsmon
//! with no role, or a role without its options, is refused at startup.

use std::time::Duration;

use crate::harness::docker::{self, Container};
use crate::harness::docker_proxy::DockerProxy;
use crate::harness::http::{get_json, http_get};
use crate::harness::natsmon::refused;
use crate::harness::shipper::{ShipperSetup, assert_exactly_once, wait_lines};
use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_role_or_a_role_without_its_options_is_refused() {
    let loki = ["--loki-url", "http://127.0.0.1:3100"];
    let cases: [(&[&str], &str); 6] = [
        (&["--roles", ""], "no role given"),
        (&["--roles", " , "], "no role given"),
        (
            &["--roles", "exporter,collector"],
            "collector: expected exporter",
        ),
        (&["--roles", "shipper"], "the shipper role needs --loki-url"),
        (
            &["--roles", "exporter", loki[0], loki[1]],
            "--roles has no shipper",
        ),
        (
            &[
                "--roles",
                "shipper",
                loki[0],
                loki[1],
                "--nats-url",
                "http://127.0.0.1:8222",
            ],
            "--roles has no exporter",
        ),
    ];
    for (args, want) in cases {
        let mut a = vec!["--listen", "127.0.0.1:0"];
        a.extend_from_slice(args);
        let (code, err) = refused(&a, &[]).await;
        assert_ne!(code, 0, "{args:?} was accepted:\n{err}");
        assert!(err.contains(want), "{args:?}: wanted {want:?} in:\n{err}");
    }
    // The environment variable says the same.
    let (code, err) = refused(&["--listen", "127.0.0.1:0"], &[("NATSMON_ROLES", "")]).await;
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("no role given"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shipper_only_natsmon_ships_and_exports_nothing_of_nats() {
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("roleship").await;
    let nm = Natsmon::start(&sh.natsmon_args(&[])).await;
    let c = Container::run(
        &sh.name("w"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(50, "role line", 5)),
    );
    c.wait_exit(Duration::from_secs(60));
    wait_lines(&sh.loki, &c, 50, Duration::from_secs(30)).await;
    assert_exactly_once(&sh.loki.entries(), &c);

    let base = nm.base_url();
    // Ready at once: there is no node whose first poll it waits for.
    let (status, body) = http_get(&format!("{base}/ready")).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let exp = scrape(&base).await;
    let families = crate::harness::exposition::families(&exp.text);
    let foreign: Vec<&String> = families
        .iter()
        .filter(|f| !f.starts_with("natsmon_logs_"))
        .filter(|f| !matches!(f.as_str(), "natsmon_build_info" | "natsmon_scrapes_total"))
        .collect();
    assert!(
        foreign.is_empty(),
        "a shipper exports {foreign:?}:\n{}",
        exp.text
    );
    assert!(exp.has("natsmon_logs_lines_sent_total"), "{}", exp.text);
    // The console and its API say what runs.
    let status = get_json(&format!("{base}/api/v1/status")).await;
    assert_eq!(status["natsmon"]["roles"], serde_json::json!(["shipper"]));
    assert_eq!(status["clusters"], serde_json::json!([]));
    assert_eq!(status["log_shipping"]["enabled"], true);
    let (_, page) = http_get(&format!("{base}/")).await.unwrap();
    assert!(page.contains("ships logs only"), "{page}");
    assert!(!nm.stderr_contents().contains("Polling node"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exporter_only_natsmon_reads_no_docker() {
    let _d = docker::dockerd_shared();
    // Every request natsmon would make of Docker goes through this proxy.
    let proxy = DockerProxy::start(Duration::from_secs(3600));
    let dead = format!("n1=http://127.0.0.1:{}", free_port());
    let nm = Natsmon::start(&args(&[
        "--roles",
        "exporter",
        "--nats-url",
        &dead,
        "--poll-interval",
        "500ms",
        "--poll-timeout",
        "400ms",
        "--docker-host",
        &proxy.url(),
    ]))
    .await;
    let exp = wait_for(&nm.base_url(), Duration::from_secs(10), |e| {
        e.get("nats_up", &[("node", "n1")]) == Some(0.0)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        proxy.requests().is_empty(),
        "an exporter asked Docker: {:?}",
        proxy.requests()
    );
    assert!(!exp.text.contains("natsmon_logs_"), "{}", exp.text);
    let status = get_json(&format!("{}/api/v1/status", nm.base_url())).await;
    assert_eq!(status["natsmon"]["roles"], serde_json::json!(["exporter"]));
    assert_eq!(status["log_shipping"]["enabled"], false);
}
