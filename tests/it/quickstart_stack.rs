//! The quick start's optional stack (`docker-compose.quickstart.yaml`): docker-compose 1.29
//! accepts it, its Prometheus config passes promtool, and every service can reach the
//! demo cluster and natsmon on the host (host networking, 127.0.0.1 addresses).

use std::process::Command;

use crate::harness::{read_repo, repo_root};

fn compose(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut c = Command::new("docker-compose");
    c.current_dir(repo_root())
        .args(["-f", "docker-compose.quickstart.yaml"])
        .args(args)
        .env_remove("GRAFANA_ADMIN_PASSWORD");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output()
        .expect("docker-compose must be installed (scripts/test.sh installs it)")
}

#[test]
fn the_quickstart_stack_validates_and_reaches_the_host() {
    let ok = compose(
        &[("GRAFANA_ADMIN_PASSWORD", "test-only")],
        &["config", "-q"],
    );
    assert!(
        ok.status.success(),
        "config -q: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        !compose(&[], &["config", "-q"]).status.success(),
        "the Grafana password must be required"
    );
    let full = compose(&[("GRAFANA_ADMIN_PASSWORD", "test-only")], &["config"]);
    let text = String::from_utf8_lossy(&full.stdout);
    for service in ["prometheus", "alertmanager", "loki", "grafana"] {
        assert!(
            text.contains(&format!("  {service}:")),
            "{service} missing:\n{text}"
        );
    }
    // Every service on the host's network, so 127.0.0.1 is the demo cluster's host.
    assert_eq!(text.matches("network_mode: host").count(), 4, "{text}");

    let prom = read_repo("scripts/quickstart/prometheus.yml");
    assert!(
        prom.contains("127.0.0.1:7778"),
        "Prometheus must scrape the host's natsmon"
    );
    assert!(prom.contains("127.0.0.1:9093"));
    let out = Command::new("promtool")
        .args(["check", "config", "--syntax-only"])
        .arg(repo_root().join("scripts/quickstart/prometheus.yml"))
        .output()
        .expect("promtool must be installed (scripts/test.sh installs prometheus)");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ds = read_repo("scripts/quickstart/grafana/datasources.yml");
    assert!(
        ds.contains("http://127.0.0.1:9090") && ds.contains("http://127.0.0.1:3100"),
        "{ds}"
    );
    assert!(
        ds.contains("uid: prometheus") && ds.contains("uid: loki"),
        "{ds}"
    );
    let qs = read_repo("scripts/quickstart.sh");
    assert!(qs.contains("docker-compose.quickstart.yaml") && qs.contains("QUICKSTART_STACK"));
    assert!(
        qs.contains("nats-1=http://127.0.0.1:8222"),
        "the quick start names its nodes"
    );
}
