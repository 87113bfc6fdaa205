//! The monitoring stack's files are valid for the real tools: docker-compose 1.29 accepts
//! `docker-compose.monitoring.yaml`, promtool accepts the Prometheus config, amtool (Debian's
//! `prometheus-alertmanager`, or `$AMTOOL_BIN`) accepts the Alertmanager config, and the
//! pieces point at each other (scrape target, rules, alerting, provisioning, retention,
//! socket).

use std::process::Command;

use crate::harness::{read_repo, repo_root};

fn compose(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut c = Command::new("docker-compose");
    c.current_dir(repo_root())
        .args(["-f", "docker-compose.monitoring.yaml"])
        .args(args);
    c.env_remove("GRAFANA_ADMIN_PASSWORD");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect(
        "docker-compose must be installed (scripts/test.sh installs Debian's docker-compose)",
    )
}

#[test]
fn compose_file_validates_with_docker_compose() {
    let ok = compose(
        &[("GRAFANA_ADMIN_PASSWORD", "test-only")],
        &["config", "-q"],
    );
    assert!(
        ok.status.success(),
        "config -q: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // The admin password is required, never defaulted.
    let missing = compose(&[], &["config", "-q"]);
    assert!(
        !missing.status.success(),
        "config passed without GRAFANA_ADMIN_PASSWORD"
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("GRAFANA_ADMIN_PASSWORD"));
    let full = compose(
        &[
            ("GRAFANA_ADMIN_PASSWORD", "test-only"),
            ("NATS_NETWORK", "mycluster_default"),
        ],
        &["config"],
    );
    let text = String::from_utf8_lossy(&full.stdout);
    for service in [
        "natsmon:",
        "prometheus:",
        "loki:",
        "grafana:",
        "alertmanager:",
    ] {
        assert!(
            text.contains(&format!("  {service}")),
            "service {service} missing:\n{text}"
        );
    }
    assert!(
        text.contains("name: mycluster_default"),
        "natsmon joins the NATS cluster's network:\n{text}"
    );
    assert!(
        text.contains("/var/run/docker.sock:/var/run/docker.sock:ro"),
        "socket read-only:\n{text}"
    );
}

/// The shipper-only stack for the cluster's other Docker hosts: valid for docker-compose,
/// a shipper that needs the monitoring host's Loki and polls no NATS node.
#[test]
fn shipper_compose_file_validates_and_ships_only() {
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut c = Command::new("docker-compose");
        c.current_dir(repo_root())
            .args(["-f", "docker-compose.shipper.yaml"])
            .args(args)
            .env_remove("LOKI_URL");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("docker-compose must be installed")
    };
    let ok = run(&[("LOKI_URL", "http://monitoring:3100")], &["config"]);
    assert!(
        ok.status.success(),
        "config: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(text.contains("NATSMON_ROLES: shipper"), "{text}");
    assert!(!text.contains("NATSMON_NATS_URL"), "{text}");
    assert!(
        text.contains("NATSMON_LOKI_URL: http://monitoring:3100"),
        "{text}"
    );
    assert!(
        text.contains("/var/run/docker.sock:/var/run/docker.sock:ro"),
        "{text}"
    );
    // Without a Loki to ship to, it does not start.
    let missing = run(&[], &["config", "-q"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("LOKI_URL"));
}

#[test]
fn pieces_point_at_each_other() {
    let compose = read_repo("docker-compose.monitoring.yaml");
    let prom = read_repo("deploy/prometheus/prometheus.yml");
    let loki = read_repo("deploy/loki/loki.yml");
    let dockerfile = read_repo("Dockerfile");
    assert!(prom.contains("natsmon:7778"), "Prometheus scrapes natsmon");
    assert!(
        prom.contains("/etc/prometheus/rules/*.yml")
            && compose.contains("alerting_rules/natsmon.rules.yml:/etc/prometheus/rules/")
    );
    assert!(
        compose.contains("./alerting_rules/loki:/etc/loki/rules/fake"),
        "Loki ruler rules for the single tenant"
    );
    assert!(loki.contains("retention_period: 168h") && loki.contains("retention_enabled: true"));
    assert!(compose.contains("./dashboards/provisioning:/etc/grafana/provisioning"));
    assert!(compose.contains("./dashboards:/var/lib/grafana/dashboards"));
    assert!(compose.contains("NATSMON_LOKI_URL: http://loki:3100"));
    // Prometheus sends to the compose Alertmanager, which runs the deploy config.
    assert!(
        prom.contains("alertmanager:9093"),
        "Prometheus sends alerts to the Alertmanager service"
    );
    assert!(
        compose.contains(
            "./deploy/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"
        ) && compose.contains("--config.file=/etc/alertmanager/alertmanager.yml"),
        "the compose Alertmanager runs deploy/alertmanager/alertmanager.yml"
    );
    // Multi-stage, small runtime, non-root.
    assert!(dockerfile.matches("FROM ").count() >= 2);
    assert!(dockerfile.contains("USER 10001") && !dockerfile.contains("USER root"));
    // The Grafana datasource's timeInterval matches the scrape interval ($__rate_interval).
    let ds = read_repo("dashboards/provisioning/datasources/natsmon.yml");
    assert!(prom.contains("scrape_interval: 15s") && ds.contains("timeInterval: 15s"));
}

#[test]
fn prometheus_config_passes_promtool() {
    let dir = tempfile::tempdir().unwrap();
    // promtool resolves rule globs; point them at the real rules file.
    let cfg = read_repo("deploy/prometheus/prometheus.yml").replace(
        "/etc/prometheus/rules/*.yml",
        repo_root()
            .join("alerting_rules/natsmon.rules.yml")
            .to_str()
            .unwrap(),
    );
    let path = dir.path().join("prometheus.yml");
    std::fs::write(&path, cfg).unwrap();
    let out = Command::new("promtool")
        .args(["check", "config", path.to_str().unwrap()])
        .output()
        .expect("promtool must be installed (scripts/test.sh installs Debian's prometheus)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alertmanager_config_passes_amtool() {
    let bin = std::env::var("AMTOOL_BIN").unwrap_or_else(|_| "amtool".to_string());
    let out = Command::new(&bin)
        .args(["check-config", "deploy/alertmanager/alertmanager.yml"])
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "\n\n*** amtool NOT FOUND ({bin}: {e}). Install it with `apt-get install -y \
                 prometheus-alertmanager` (scripts/test.sh does), or set AMTOOL_BIN. This \
                 test never skips. ***\n\n"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("SUCCESS"),
        "amtool check-config failed:\n{text}"
    );
    assert!(
        text.contains("inhibit rules") && !text.contains(" 0 inhibit rules"),
        "the bundled config has inhibit rules:\n{text}"
    );
}
