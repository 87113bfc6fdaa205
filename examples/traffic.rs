//! Light, continuous JetStream traffic for trying natsmon against a real
//! cluster (used by scripts/quickstart.sh).
//!
//! Creates stream ORDERS (subjects `orders.>`, R3 by default, max_bytes 1 GiB,
//! max_age 1h) and durable pull consumer `billing`, then publishes ~20 msg/s
//! and every second fetches up to one and a half times what was published,
//! acking most but not all messages: the consumer shows non-zero
//! `num_pending` and `num_ack_pending` (and, after ack_wait, redeliveries)
//! while keeping up, so the demo is healthy and no lag alert fires.
//!
//! ```text
//! cargo run --release --example traffic -- \
//!     --server nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224 \
//!     --user app --password app [--rate 20] [--replicas 3] [--count N] [--max-bytes B]
//! ```
//!
//! `--count N` publishes N messages, does one fetch round, and exits.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::AckPolicy, consumer::pull, stream};
use futures::StreamExt;

struct Opts {
    servers: String,
    user: Option<String>,
    password: Option<String>,
    stream: String,
    consumer: String,
    replicas: usize,
    rate: f64,
    count: Option<u64>,
    max_bytes: i64,
}

fn usage() -> ! {
    eprintln!(
        "usage: traffic [--server URLS] [--user U --password P] [--stream ORDERS] \
         [--consumer billing] [--replicas 3] [--rate 20] [--count N] \
         [--max-bytes 1073741824]"
    );
    std::process::exit(2)
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        servers: "nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224".into(),
        user: None,
        password: None,
        stream: "ORDERS".into(),
        consumer: "billing".into(),
        replicas: 3,
        rate: 20.0,
        count: None,
        max_bytes: 1 << 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--server" | "-s" => o.servers = val(),
            "--user" => o.user = Some(val()),
            "--password" => o.password = Some(val()),
            "--stream" => o.stream = val(),
            "--consumer" => o.consumer = val(),
            "--replicas" => o.replicas = val().parse().unwrap_or_else(|_| usage()),
            "--rate" => o.rate = val().parse().unwrap_or_else(|_| usage()),
            "--count" => o.count = Some(val().parse().unwrap_or_else(|_| usage())),
            "--max-bytes" => o.max_bytes = val().parse().unwrap_or_else(|_| usage()),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    o
}

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let o = parse_opts();
    let servers: Vec<String> = o.servers.split(',').map(|s| s.trim().to_string()).collect();
    let mut copts = async_nats::ConnectOptions::new()
        .name("natsmon-traffic")
        .retry_on_initial_connect();
    if let (Some(u), Some(p)) = (o.user.clone(), o.password.clone()) {
        copts = async_nats::ConnectOptions::with_user_and_password(u, p)
            .name("natsmon-traffic")
            .retry_on_initial_connect();
    }
    let client = copts.connect(servers).await?;
    let js = jetstream::new(client.clone());

    let subject_root = o.stream.to_lowercase();
    let stream = js
        .get_or_create_stream(stream::Config {
            name: o.stream.clone(),
            subjects: vec![format!("{subject_root}.>")],
            num_replicas: o.replicas,
            max_bytes: o.max_bytes,
            max_age: Duration::from_secs(3600),
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let consumer = stream
        .get_or_create_consumer(
            &o.consumer,
            pull::Config {
                durable_name: Some(o.consumer.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 1000,
                ..Default::default()
            },
        )
        .await?;
    eprintln!(
        "traffic: stream {} (R{}) consumer {} ready; publishing at {}/s",
        o.stream, o.replicas, o.consumer, o.rate
    );

    // A core-NATS subscriber too, so connections/subscriptions are non-trivial.
    let mut core_sub = client.subscribe(format!("{subject_root}.>")).await?;
    tokio::spawn(async move { while core_sub.next().await.is_some() {} });

    let kinds = ["created", "paid", "shipped"];
    let interval = Duration::from_secs_f64(1.0 / o.rate.max(0.1));
    let mut tick = tokio::time::interval(interval);
    let per_second = o.rate.max(1.0).round() as u64;
    let mut published: u64 = 0;
    let mut acked: u64 = 0;
    let mut fetched: u64 = 0;
    loop {
        tick.tick().await;
        let kind = kinds[(published % 3) as usize];
        let payload = format!(
            "{{\"order\":{published},\"kind\":\"{kind}\",\"amount\":{}}}",
            (published * 37) % 1000
        );
        js.publish(format!("{subject_root}.{kind}"), payload.into())
            .await?
            .await?;
        published += 1;

        let done = o.count.is_some_and(|c| published >= c);
        if published.is_multiple_of(per_second) || done {
            // Fetch up to 1.5x what was published this second, so the backlog
            // (redeliveries included) does not grow; ack 80% of fetched
            // messages and leave every 5th un-acked, so ack-pending stays
            // non-zero (they are redelivered after ack_wait).
            let want = (per_second * 3 / 2).max(1) as usize;
            let mut batch = consumer
                .fetch()
                .max_messages(want)
                .expires(Duration::from_millis(500))
                .messages()
                .await?;
            while let Some(m) = batch.next().await {
                let m = m?;
                fetched += 1;
                if !fetched.is_multiple_of(5) {
                    m.ack().await?;
                    acked += 1;
                }
            }
            if published.is_multiple_of(per_second * 10) || done {
                eprintln!("traffic: published={published} acked={acked}");
            }
        }
        if done {
            client.flush().await?;
            return Ok(());
        }
    }
}
