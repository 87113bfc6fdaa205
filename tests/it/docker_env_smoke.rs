//! Smoke tests for the Docker test environment (scripts/docker-env.sh and
//! tests/it/harness/docker.rs). They run against the REAL local dockerd and never
//! skip: if Docker cannot be provided, they fail.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::harness::docker::{
    self, Container, IMAGE, as_strs, docker, ensure_docker, is_rfc3339_nano,
};
use crate::harness::free_port;
use crate::harness::http::wait_http_ok;

#[test]
fn ensure_docker_works() {
    let _d = docker::dockerd_shared(); // restart_dockerd_keeps_stopped_containers waits for us
    ensure_docker();
    ensure_docker(); // second call is a no-op (OnceLock)
    assert_eq!(docker(&["info", "--format", "{{.Driver}}"]), "vfs");
    assert_eq!(
        docker(&["info", "--format", "{{.LoggingDriver}}"]),
        "json-file"
    );
    let cmd = docker(&["image", "inspect", "-f", "{{json .Config.Cmd}}", IMAGE]);
    assert_eq!(cmd, r#"["/usr/local/bin/nats-server"]"#);
    assert_eq!(docker::docker_host(), "unix:///var/run/docker.sock");
    assert!(
        docker::dockerd_pid().is_some(),
        "cannot find the dockerd pid"
    );
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--log-driver",
        "json-file",
        IMAGE,
        "/bin/sh",
        "-c",
        "echo ok",
    ]);
    assert_eq!(out, "ok");
}

#[test]
fn log_generator_lines_arrive_exactly_once() {
    let _d = docker::dockerd_shared(); // restart_dockerd_keeps_stopped_containers waits for us
    let cmd = docker::log_generator_cmd(100, "smoke-line", 0);
    let c = Container::run("natsmon-smoke-gen", &[], &as_strs(&cmd));
    assert_eq!(c.wait_exit(Duration::from_secs(60)), 0);
    assert_eq!(c.inspect("{{.HostConfig.LogConfig.Type}}"), "json-file");
    assert_eq!(c.inspect("{{.HostConfig.NetworkMode}}"), "none");

    let (out, err) = c.logs_with(&[]);
    let out_lines: Vec<&str> = out.lines().collect();
    let err_lines: Vec<&str> = err.lines().collect();
    assert_eq!(out_lines.len(), 90, "stdout: {out}");
    assert_eq!(err_lines.len(), 10, "stderr: {err}");
    // stdout keeps order
    let expected_out: Vec<String> = (1..=100)
        .filter(|i| i % 10 != 0)
        .map(|i| format!("smoke-line {i}"))
        .collect();
    assert_eq!(out_lines, expected_out);
    let expected_err: Vec<String> = (10..=100)
        .step_by(10)
        .map(|i| format!("smoke-line {i}"))
        .collect();
    assert_eq!(err_lines, expected_err);
    // union is exactly 1..=100, each once
    let all: BTreeSet<&str> = out_lines.iter().chain(err_lines.iter()).copied().collect();
    assert_eq!(all.len(), 100);

    // The NATS-style generator
    let cmd = docker::nats_style_log_cmd(35, 0);
    let n = Container::run("natsmon-smoke-natslog", &[], &as_strs(&cmd));
    assert_eq!(n.wait_exit(Duration::from_secs(60)), 0);
    let (out, err) = n.logs_with(&[]);
    let mut seen = 0;
    for line in out.lines().chain(err.lines()) {
        // [1] 2024/01/02 15:04:05.123456 [INF] message 3
        let parts: Vec<&str> = line.splitn(5, ' ').collect();
        assert_eq!(parts.len(), 5, "{line}");
        assert_eq!(parts[0], "[1]");
        assert_eq!(parts[1].len(), 10, "{line}");
        assert_eq!(parts[2].len(), 15, "{line}");
        let i: usize = parts[4].strip_prefix("message ").unwrap().parse().unwrap();
        assert_eq!(
            parts[3],
            format!("[{}]", docker::nats_style_level(i)),
            "{line}"
        );
        seen += 1;
    }
    assert_eq!(seen, 35);
    assert_eq!(err.lines().count(), 5); // 7,14,21,28,35
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_in_container_answers_varz() {
    let _d = docker::dockerd_shared(); // restart_dockerd_keeps_stopped_containers waits for us
    let client_port = free_port();
    let http_port = free_port();
    let (cp, hp) = (client_port.to_string(), http_port.to_string());
    let c = Container::run(
        "natsmon-smoke-nats",
        &["--network", "host"],
        &[
            docker::NATS_SERVER_IN_IMAGE,
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &cp,
            "-m",
            &hp,
            "-sd",
            "/tmp/js",
        ],
    );
    let body = wait_http_ok(
        &format!("http://127.0.0.1:{http_port}/varz"),
        Duration::from_secs(30),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("varz JSON");
    assert_eq!(v["version"], "2.9.10", "{body}");
    assert_eq!(v["port"], client_port, "{body}");
    assert_eq!(v["http_port"], http_port, "{body}");
    assert!(v["jetstream"].is_object(), "{body}");
    // nats-server logs to stderr
    let (_out, err) = c.logs_with(&[]);
    assert!(err.contains("Server is ready"), "logs: {err}");
    c.signal("TERM");
    let code = c.wait_exit(Duration::from_secs(20));
    assert!(code == 0 || code == 1, "exit code {code}");
}

#[test]
fn docker_logs_timestamps_are_rfc3339nano() {
    let _d = docker::dockerd_shared(); // restart_dockerd_keeps_stopped_containers waits for us
    let cmd = docker::log_generator_cmd_opts(20, "ts-line", 10, 0);
    let c = Container::run("natsmon-smoke-ts", &[], &as_strs(&cmd));
    assert_eq!(c.wait_exit(Duration::from_secs(60)), 0);
    let (out, _) = c.logs_with(&["--timestamps"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 20, "{out}");
    for (n, line) in lines.iter().enumerate() {
        let (ts, msg) = line.split_once(' ').unwrap();
        assert!(is_rfc3339_nano(ts), "not RFC3339Nano: {ts:?} in {line:?}");
        assert!(ts.ends_with('Z'), "{ts}");
        assert_eq!(msg, format!("ts-line {}", n + 1));
    }
    assert!(is_rfc3339_nano("2024-01-02T15:04:05.123456789Z"));
    assert!(is_rfc3339_nano("2024-01-02T15:04:05.1Z"));
    assert!(is_rfc3339_nano("2024-01-02T15:04:05Z"));
    assert!(!is_rfc3339_nano("2024/01/02 15:04:05.123456"));
}

#[test]
fn restart_dockerd_keeps_stopped_containers() {
    ensure_docker();
    let cmd = docker::log_generator_cmd_opts(5, "persist", 0, 0);
    let c = Container::run("natsmon-smoke-persist", &[], &as_strs(&cmd));
    assert_eq!(c.wait_exit(Duration::from_secs(60)), 0);
    assert_eq!(
        c.inspect(&format!(
            "{{{{index .Config.Labels \"{}\"}}}}",
            docker::PID_LABEL
        )),
        std::process::id().to_string()
    );
    let before = docker::dockerd_pid();
    let t = Instant::now();
    docker::restart_dockerd();
    eprintln!("restart_dockerd took {:.1}s", t.elapsed().as_secs_f64());
    assert_ne!(before, docker::dockerd_pid());
    // the stopped container and its logs survived
    assert_eq!(c.inspect("{{.State.Status}}"), "exited");
    assert_eq!(
        c.logs_stdout(),
        "persist 1\npersist 2\npersist 3\npersist 4\npersist 5\n"
    );
    // and it can run again (logs are appended)
    c.start();
    assert_eq!(c.wait_exit(Duration::from_secs(60)), 0);
    assert_eq!(c.logs_stdout().lines().count(), 10);
}
