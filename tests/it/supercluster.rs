//! A supercluster watched by one natsmon: two clusters joined by a gateway, each of one
//! real nats-server of the newest release in the matrix. Every node-level series must
//! carry its node's cluster, so that the dashboards' `cluster` variable filters each
//! panel to one cluster.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use natsmon_testkit::ports::free_port;

use crate::harness::*;

struct Server {
    child: Child,
    http: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(
    bin: &std::path::Path,
    dir: &std::path::Path,
    name: &str,
    cluster: &str,
    gw: u16,
    other: (&str, u16),
) -> Server {
    let http = free_port();
    let conf = format!(
        "server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{http}\n\
         cluster {{ name: {cluster}, listen: 127.0.0.1:{route} }}\n\
         gateway {{ name: {cluster}, listen: 127.0.0.1:{gw}, \
         gateways: [ {{ name: {oname}, url: \"nats://127.0.0.1:{oport}\" }} ] }}\n",
        client = free_port(),
        route = free_port(),
        oname = other.0,
        oport = other.1,
    );
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, conf).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    Server { child, http }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_series_carries_its_cluster_across_a_gateway() {
    let (version, bin) = nats_server_matrix()
        .pop()
        .expect("the version matrix is empty");
    let dir = tempfile::tempdir().unwrap();
    let (gw1, gw2) = (free_port(), free_port());
    let east = start(&bin, dir.path(), "east-1", "east", gw1, ("west", gw2));
    let west = start(&bin, dir.path(), "west-1", "west", gw2, ("east", gw1));
    let nm = Natsmon::start(&args(&[
        "--nats-url",
        &format!("east-1=http://127.0.0.1:{}", east.http),
        "--nats-url",
        &format!("west-1=http://127.0.0.1:{}", west.http),
        "--poll-interval",
        "500ms",
        "--poll-timeout",
        "400ms",
    ]))
    .await;
    let exp = wait_for(&nm.base_url(), Duration::from_secs(30), |e| {
        e.sum("nats_up", &[]) == 2.0
            && ["east-1", "west-1"]
                .iter()
                .all(|n| e.sum("nats_gateway_connections", &[("node", n)]) >= 1.0)
    })
    .await;
    let want = [("east-1", "east"), ("west-1", "west")];
    let mut checked = 0;
    for x in exp.samples.iter().filter(|x| x.name.starts_with("nats_")) {
        let Some(node) = x.label("node") else {
            continue;
        };
        let (_, cluster) = want
            .iter()
            .find(|(n, _)| *n == node)
            .unwrap_or_else(|| panic!("{version}: unknown node in {x:?}"));
        assert_eq!(
            x.label("cluster"),
            Some(*cluster),
            "{version}: {} of {node} lacks its cluster",
            x.name
        );
        checked += 1;
    }
    assert!(checked > 50, "{version}: only {checked} node series");
    // A panel filtered to one cluster sees that cluster's node only.
    for (node, cluster) in want {
        let ups = exp.filter("nats_up", &[("cluster", cluster)]);
        assert_eq!(ups.len(), 1, "{version}: {cluster}");
        assert_eq!(ups[0].label("node"), Some(node));
        assert!(
            exp.count("nats_gateway_connections", &[("cluster", cluster)]) >= 1,
            "{version}: {cluster} gateways"
        );
    }
}
