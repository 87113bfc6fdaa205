//! Log shipper tests against a real dockerd and a Loki receiver that decodes the real
//! wire format: every line exactly once with the right labels, levels, streams and
//! timestamps, across containers coming and going, long lines, TTYs, Loki outages, rate
//! limits, bad requests and a natsmon crash.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::harness::docker::{self, Container};
use crate::harness::exposition::families;
use crate::harness::loki::{Format, Mode, Received};
use crate::harness::readme::documented_families;
use crate::harness::shipper::{
    ShipperSetup, assert_exactly_once, docker_truth, for_container, stored, wait_lines,
};
use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_line_once_with_labels_levels_and_timestamps() {
    docker::ensure_docker();
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("ship1").await;
    let (loki, prefix) = (&sh.loki, &sh.prefix);
    // One container exists before natsmon starts, the others after.
    let nats = Container::run(
        &format!("{prefix}-nats"),
        &[],
        &docker::as_strs(&docker::nats_style_log_cmd(300, 2)),
    );
    let nm = Natsmon::start(&sh.natsmon_args(&["--default-job", "apps"])).await;
    let docker_host_name = docker::docker(&["info", "--format", "{{.Name}}"])
        .trim()
        .to_string();
    docker::docker(&["tag", docker::IMAGE, "natsmon-test/busybox:latest"]);
    let app = Container::run_image(
        &format!("{prefix}-app"),
        "natsmon-test/busybox:latest",
        &["--label", "com.docker.compose.service=api"],
        &docker::as_strs(&docker::log_generator_cmd(500, "app line", 1)),
    );
    let custom = Container::run_image(
        &format!("{prefix}-custom"),
        "natsmon-test/busybox:latest",
        &["--label", "natsmon.job=payments"],
        &docker::as_strs(&docker::log_generator_cmd(50, "level=warn msg=custom", 0)),
    );
    for (c, n) in [(&nats, 300), (&app, 500), (&custom, 50)] {
        c.wait_exit(Duration::from_secs(60));
        wait_lines(loki, c, n, Duration::from_secs(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = loki.entries();
    assert!(
        loki.decode_errors().is_empty(),
        "{:?}",
        loki.decode_errors()
    );
    for c in [&nats, &app, &custom] {
        assert_exactly_once(&all, c);
    }
    for e in for_container(&all, &nats.name) {
        assert_eq!(e.label("job"), Some("nats"));
        assert_eq!(
            e.label("service"),
            Some(nats.name.as_str()),
            "no compose label: the container name"
        );
        let i: usize = e.line.rsplit(' ').next().unwrap().parse().unwrap();
        let want = match docker::nats_style_level(i) {
            "ERR" => "ERROR",
            "WRN" => "WARN",
            _ => "INFO",
        };
        assert_eq!(e.label("log_level"), Some(want), "{}", e.line);
        assert_eq!(
            e.label("stream"),
            Some(if want == "ERROR" { "stderr" } else { "stdout" })
        );
    }
    for e in for_container(&all, &app.name) {
        assert_eq!(e.label("job"), Some("apps"));
        assert_eq!(e.label("service"), Some("api"));
        assert_eq!(e.label("log_level"), Some("UNKNOWN"));
    }
    for e in for_container(&all, &custom.name) {
        assert_eq!(e.label("job"), Some("payments"));
        assert_eq!(e.label("log_level"), Some("WARN"));
    }
    for e in &all {
        let names: Vec<&String> = e.labels.keys().collect();
        assert_eq!(
            names,
            [
                "container_name",
                "host",
                "job",
                "log_level",
                "service",
                "stream"
            ]
        );
        // The Docker daemon's Name, as `docker info` shows it.
        assert_eq!(e.label("host"), Some(docker_host_name.as_str()));
    }
    let exp = scrape(&nm.base_url()).await;
    assert_eq!(
        exp.get("natsmon_logs_lines_read_total", &[("container", &app.name)]),
        Some(500.0)
    );
    assert_eq!(
        exp.get("natsmon_logs_lines_sent_total", &[("container", &app.name)]),
        Some(500.0)
    );
    assert_eq!(exp.get("natsmon_logs_loki_up", &[]), Some(1.0));
    // Lines by level: the NATS container's tags counted; ERROR and FATAL exist from 0.
    for (tag, level) in [("ERR", "ERROR"), ("WRN", "WARN"), ("INF", "INFO")] {
        let want = (1..=300)
            .filter(|i| docker::nats_style_level(*i) == tag)
            .count();
        assert_eq!(
            exp.get(
                "natsmon_logs_lines_by_level_total",
                &[("container", &nats.name), ("log_level", level)]
            ),
            Some(want as f64),
            "{level}"
        );
    }
    assert_eq!(
        exp.get(
            "natsmon_logs_lines_by_level_total",
            &[("container", &app.name), ("log_level", "FATAL")]
        ),
        Some(0.0)
    );
    assert_eq!(
        exp.get(
            "natsmon_logs_lines_by_level_total",
            &[("container", &app.name), ("log_level", "UNKNOWN")]
        ),
        Some(500.0)
    );
    assert_eq!(
        exp.get("natsmon_logs_lag_seconds", &[("container", &app.name)]),
        Some(0.0)
    );
    let (ok, out) = promtool_check_metrics(&exp.text);
    assert!(ok && out.trim().is_empty(), "promtool: {out}");
    // The shipper's families and the README's metric reference agree.
    let documented: BTreeSet<String> = documented_families()
        .into_iter()
        .filter(|f| f.starts_with("natsmon_logs_"))
        .collect();
    let live: BTreeSet<String> = families(&exp.text)
        .into_iter()
        .filter(|f| f.starts_with("natsmon_logs_"))
        .collect();
    assert_eq!(
        live, documented,
        "natsmon_logs_* on /metrics vs the README reference"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn containers_coming_and_going_long_lines_and_tty() {
    docker::ensure_docker();
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("ship2").await;
    let (loki, prefix) = (&sh.loki, &sh.prefix);
    let _nm = Natsmon::start(&sh.natsmon_args(&[])).await;

    // Restarted: both runs' lines arrive, each once.
    let restarted = Container::run(
        &format!("{prefix}-restart"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(100, "r", 0)),
    );
    restarted.wait_exit(Duration::from_secs(30));
    wait_lines(loki, &restarted, 100, Duration::from_secs(20)).await;
    restarted.start();
    restarted.wait_exit(Duration::from_secs(30));
    wait_lines(loki, &restarted, 200, Duration::from_secs(20)).await;

    // Re-created under the same name: a new container id, its own lines.
    let first = Container::run(
        &format!("{prefix}-recreated"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(40, "first", 0)),
    );
    let name = first.name.clone();
    first.wait_exit(Duration::from_secs(30));
    wait_lines(loki, &first, 40, Duration::from_secs(20)).await;
    let first_truth = docker_truth(&first);
    first.rm();
    let cmd = docker::log_generator_cmd(60, "second", 0);
    let mut run = vec![
        "run",
        "-d",
        "--name",
        name.as_str(),
        "--network",
        "none",
        "--log-driver",
        "json-file",
        docker::IMAGE,
    ];
    run.extend(docker::as_strs(&cmd));
    let second = Container {
        id: docker::docker(&run),
        name: name.clone(),
    };
    second.wait_exit(Duration::from_secs(30));
    wait_lines(loki, &second, 100, Duration::from_secs(20)).await;

    // A 100 KB line arrives as one entry.
    let long = Container::run(
        &format!("{prefix}-long"),
        &[],
        &[
            "/bin/sh",
            "-c",
            "head -c 100000 /dev/zero | tr '\\0' 'x'; echo; echo after",
        ],
    );
    long.wait_exit(Duration::from_secs(30));
    wait_lines(loki, &long, 2, Duration::from_secs(20)).await;

    // A TTY container with ANSI-coloured NATS lines.
    let tty = Container::run(
        &format!("{prefix}-tty"),
        &["-t"],
        &[
            "/bin/sh",
            "-c",
            "printf '[1] 2024/01/02 15:04:05.123456 [\\033[31mERR\\033[0m] tty error\\n[1] 2024/01/02 15:04:05.123457 [\\033[32mINF\\033[0m] tty info\\n'",
        ],
    );
    tty.wait_exit(Duration::from_secs(30));
    wait_lines(loki, &tty, 2, Duration::from_secs(20)).await;

    // Removed right after writing (`--rm`): natsmon is attached while the container runs and
    // reads to the end before Docker removes it. (A container that exits within
    // milliseconds of starting can be removed before any API client attaches; Docker then
    // refuses its logs with 409, counted in natsmon_logs_docker_errors_total{reason="logs"}.)
    let gone_name = format!("{prefix}-gone");
    docker::docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--log-driver",
        "json-file",
        "--name",
        &gone_name,
        docker::IMAGE,
        "/bin/sh",
        "-c",
        "sleep 1; for i in $(seq 1 50); do echo gone $i; done",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while stored(&loki.entries())
        .iter()
        .filter(|e| e.label("container_name") == Some(gone_name.as_str()))
        .count()
        < 50
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = loki.entries();
    assert_exactly_once(&all, &restarted);
    let second_lines: Vec<String> = for_container(&all, &name)
        .iter()
        .map(|e| e.line.clone())
        .collect();
    assert_eq!(
        second_lines.len(),
        100,
        "40 from the first container and 60 from the second"
    );
    assert_eq!(
        second_lines
            .iter()
            .filter(|l| l.starts_with("first "))
            .count(),
        first_truth.len()
    );
    let second_only: Vec<Received> = all
        .iter()
        .filter(|e| e.line.starts_with("second "))
        .cloned()
        .collect();
    assert_exactly_once(&second_only, &second);
    let long_lines: Vec<&Received> = for_container(&all, &long.name);
    assert_eq!(long_lines.len(), 2);
    assert_eq!(long_lines[0].line.len(), 100_000);
    assert!(long_lines[0].line.bytes().all(|b| b == b'x'));
    assert_eq!(long_lines[1].line, "after");
    let tty_lines = for_container(&all, &tty.name);
    assert_eq!(tty_lines.len(), 2);
    assert_eq!(tty_lines[0].label("log_level"), Some("ERROR"));
    assert_eq!(tty_lines[1].label("log_level"), Some("INFO"));
    assert!(tty_lines.iter().all(|e| !e.line.ends_with('\r')));
    let gone: Vec<String> = stored(&all)
        .iter()
        .filter(|e| e.label("container_name") == Some(gone_name.as_str()))
        .map(|e| e.line.clone())
        .collect();
    assert_eq!(
        gone,
        (1..=50).map(|i| format!("gone {i}")).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loki_outage_rate_limit_and_bad_request() {
    docker::ensure_docker();
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("ship3").await;
    let (loki, prefix) = (&sh.loki, &sh.prefix);
    let nm = Natsmon::start(&sh.natsmon_args(&[])).await;

    // Loki answers 503 for 30 s while the container keeps logging; nothing lost or doubled.
    let busy = Container::run(
        &format!("{prefix}-busy"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(1500, "busy", 25)),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    loki.set_mode_until(Mode::Status(503), Duration::from_secs(30));
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during = scrape(&nm.base_url()).await;
    assert_eq!(during.get("natsmon_logs_loki_up", &[]), Some(0.0));
    assert!(
        during
            .get(
                "natsmon_logs_push_retries_total",
                &[("reason", "server_error")]
            )
            .unwrap()
            >= 1.0
    );
    assert!(
        during
            .get("natsmon_logs_lag_seconds", &[("container", &busy.name)])
            .unwrap()
            > 1.0
    );
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(t.elapsed())).await;
    busy.wait_exit(Duration::from_secs(90));
    wait_lines(loki, &busy, 1500, Duration::from_secs(40)).await;
    assert_exactly_once(&loki.entries(), &busy);

    // 429 with Retry-After: the next attempt waits at least that long.
    loki.set_mode_for(
        Mode::TooManyRequests {
            retry_after_secs: Some(2),
        },
        1,
    );
    let limited = Container::run(
        &format!("{prefix}-limited"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(20, "limited", 0)),
    );
    limited.wait_exit(Duration::from_secs(30));
    wait_lines(loki, &limited, 20, Duration::from_secs(20)).await;
    let reqs = loki.requests();
    let i = reqs
        .iter()
        .rposition(|r| r.status == 429)
        .expect("a 429 was answered");
    let next = &reqs[i + 1];
    assert!(
        next.at.duration_since(reqs[i].at) >= Duration::from_millis(1900),
        "Retry-After not honoured"
    );
    assert_exactly_once(&loki.entries(), &limited);

    // 400: counted as rejected with Loki's reason, and not retried.
    let before = loki.requests().len();
    loki.set_mode_for(Mode::BadRequest("entry too far behind".into()), 1);
    let bad = Container::run(
        &format!("{prefix}-bad"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(10, "bad", 0)),
    );
    bad.wait_exit(Duration::from_secs(30));
    let exp = wait_for(&nm.base_url(), Duration::from_secs(20), |e| {
        e.get(
            "natsmon_logs_lines_rejected_total",
            &[("reason", "bad_request")],
        )
        .is_some_and(|v| v >= 1.0)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rejected = exp
        .get(
            "natsmon_logs_lines_rejected_total",
            &[("reason", "bad_request")],
        )
        .unwrap();
    let after: Vec<_> = loki.requests().into_iter().skip(before).collect();
    assert_eq!(
        after.iter().filter(|r| r.status == 400).count(),
        1,
        "a 400 is not retried"
    );
    assert_eq!(
        after
            .iter()
            .filter(|r| r.status == 400)
            .map(|r| r.entries)
            .sum::<usize>() as f64,
        rejected
    );
    assert!(
        nm.stderr_contents().contains("entry too far behind"),
        "Loki's message is logged"
    );
    let shipped = for_container(&loki.entries(), &bad.name).len() as f64;
    assert_eq!(shipped + rejected, 10.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_and_restart_ships_every_line_once() {
    docker::ensure_docker();
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("ship4").await;
    let (loki, prefix) = (&sh.loki, &sh.prefix);
    let a = sh.natsmon_args(&[]);
    let mut nm = Natsmon::start(&a).await;
    let c = Container::run(
        &format!("{prefix}-steady"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(3000, "steady", 2)),
    );
    wait_lines(loki, &c, 300, Duration::from_secs(30)).await;
    nm.kill(); // SIGKILL
    // While natsmon is down, this container finishes, and another one runs start to end.
    c.wait_exit(Duration::from_secs(60));
    let whole = Container::run(
        &format!("{prefix}-while-down"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(200, "while down", 0)),
    );
    whole.wait_exit(Duration::from_secs(30));
    let _nm2 = Natsmon::start(&a).await;
    wait_lines(loki, &c, 3000, Duration::from_secs(40)).await;
    wait_lines(loki, &whole, 200, Duration::from_secs(40)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_exactly_once(&stored(&loki.entries()), &whole);
    let all = loki.entries();
    // What Loki stores is every line exactly once. The only re-sends possible are lines
    // acknowledged in the instant between Loki's answer and the checkpoint write; Loki
    // drops those as exact duplicates (same stream, nanosecond timestamp and line).
    assert_exactly_once(&stored(&all), &c);
    let resent = all.len() - stored(&all).len();
    assert!(resent <= 1000, "{resent} lines re-sent after the crash");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_format_413_split_auth_and_graceful_shutdown() {
    docker::ensure_docker();
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("ship5").await;
    let (loki, prefix) = (&sh.loki, &sh.prefix);
    // Loki refuses bodies over 20 kB with 413: natsmon splits batches until they fit.
    loki.set_max_body_bytes(Some(20_000));
    let token_file = sh.state.path().join("token");
    std::fs::write(&token_file, "s3cr3t-token\n").unwrap();
    let mut nm = Natsmon::start_with_env(
        &sh.natsmon_args(&[
            "--loki-format",
            "json",
            "--loki-tenant",
            "team-a",
            "--loki-bearer-token-file",
            token_file.to_str().unwrap(),
        ]),
        &[],
    )
    .await;
    let c = Container::run(
        &format!("{prefix}-json"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(
            1000,
            "json line with some padding to make the batch larger",
            0,
        )),
    );
    c.wait_exit(Duration::from_secs(30));
    wait_lines(loki, &c, 1000, Duration::from_secs(30)).await;
    let all = loki.entries();
    assert_exactly_once(&all, &c);
    assert!(all.iter().all(|e| e.format == Format::Json));
    assert!(all.iter().all(|e| e.tenant.as_deref() == Some("team-a")));
    assert!(
        all.iter()
            .all(|e| e.authorization.as_deref() == Some("Bearer s3cr3t-token"))
    );
    assert!(
        loki.requests().iter().any(|r| r.status == 413),
        "the first batch was too large"
    );
    assert!(
        !nm.stderr_contents().contains("s3cr3t"),
        "the token leaked into the log"
    );

    // SIGTERM: natsmon flushes, saves its checkpoint and exits cleanly.
    nm.terminate();
    let status = nm
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("natsmon exits after SIGTERM");
    assert!(status.success(), "{status}");
    let positions = std::fs::read_to_string(sh.state.path().join("positions.json")).unwrap();
    assert!(
        positions.contains(&c.id),
        "checkpoint saved for the container: {positions}"
    );
}

/// A container that stops has its last lines (often why it stopped) pushed when its log
/// stream ends, not after the batch wait: with a 30 s wait they arrive within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_containers_last_lines_go_at_once_not_after_the_batch_wait() {
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("lastlines").await;
    let mut a = sh.natsmon_args(&[]);
    let i = a
        .iter()
        .position(|x| x == "--batch-max-wait")
        .expect("the shipper flags set a batch wait");
    a[i + 1] = "30s".into();
    let nm = Natsmon::start(&a).await;
    let c = Container::run(
        &sh.name("last"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(5, "last words", 200)),
    );
    c.wait_exit(Duration::from_secs(30));
    let stopped = Instant::now();
    wait_lines(&sh.loki, &c, 5, Duration::from_secs(10)).await;
    eprintln!(
        "[last lines] in Loki {:?} after the container stopped",
        stopped.elapsed()
    );
    assert_exactly_once(&sh.loki.entries(), &c);
    drop(nm);
}
