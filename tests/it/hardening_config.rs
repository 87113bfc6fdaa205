//! Hardening: configuration mistakes refused at startup, with the option named and no
//! secret shown; and credentials in URLs decoded as the user meant them.

use std::time::Duration;

use crate::harness::docker::{self, Container};
use crate::harness::natsmon::refused;
use crate::harness::shipper::{ShipperSetup, wait_lines};
use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_a_url_never_leaks_through_an_error() {
    for (flag, url) in [
        ("--nats-url", "http://user:abc/def@127.0.0.1:8222"),
        ("--nats-url", "n1=http://user:abc/def@127.0.0.1:8222"),
        ("--nats-url", "http://user:abc?def@127.0.0.1:8222"),
        ("--nats-url", "http://user:abc#def@127.0.0.1:8222"),
        ("--loki-url", "http://luser:abc/def@127.0.0.1:3100"),
        ("--loki-url", "ftp://luser:abc/def@127.0.0.1:3100"),
    ] {
        let (code, err) = refused(&["--listen", "127.0.0.1:0", flag, url], &[]).await;
        assert_ne!(code, 0, "{url} was accepted:\n{err}");
        assert!(
            !err.contains("abc"),
            "{flag} {url}: the password leaked:\n{err}"
        );
        assert!(
            err.contains("REDACTED@127.0.0.1"),
            "{flag} {url}: which URL?\n{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_and_absurd_durations_and_sizes_are_refused_by_name() {
    let loki = ["--loki-url", "http://127.0.0.1:3100"];
    let cases: &[(&[&str], &str)] = &[
        (&["--poll-interval", "0s"], "poll-interval"),
        (&["--poll-interval", "1ns"], "poll-interval"),
        (&["--poll-interval", "1000y"], "poll-interval"),
        (&["--poll-timeout", "0s"], "poll-timeout"),
        (&["--shutdown-grace", "0s"], "shutdown-grace"),
        (&["--max-response-bytes", "0"], "max-response-bytes"),
        (&["--connz-page-size", "0"], "connz-page-size"),
        (&["--connz-max-connections", "0"], "connz-max-connections"),
        (&["--checkpoint-interval", "0s"], "checkpoint-interval"),
        (&["--batch-max-wait", "0s"], "batch-max-wait"),
        (&["--retry-max-backoff", "0s"], "retry-max-backoff"),
        (&["--batch-max-bytes", "0"], "batch-max-bytes"),
        (&["--batch-max-entries", "0"], "batch-max-entries"),
        (&["--buffer-max-bytes", "0"], "buffer-max-bytes"),
        (&["--max-line-bytes", "0"], "max-line-bytes"),
    ];
    for (a, option) in cases {
        let mut argv = vec!["--listen", "127.0.0.1:0"];
        argv.extend_from_slice(a);
        argv.extend_from_slice(&loki);
        let (code, err) = refused(&argv, &[]).await;
        assert_ne!(code, 0, "{a:?} was accepted:\n{err}");
        assert!(
            err.contains(&format!("invalid value for {option}:")),
            "{a:?}: the error does not name {option}:\n{err}"
        );
        assert!(!err.contains("panicked"), "{a:?}:\n{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_node_list_is_a_startup_error() {
    for v in ["", "''", " , ", ","] {
        let (code, err) = refused(&["--listen", "127.0.0.1:0"], &[("NATSMON_NATS_URL", v)]).await;
        assert_ne!(code, 0, "NATSMON_NATS_URL={v:?} was accepted:\n{err}");
        assert!(
            err.contains("nats-url") && err.contains("monitoring URL"),
            "NATSMON_NATS_URL={v:?}:\n{err}"
        );
        let (code, err) = refused(&["--listen", "127.0.0.1:0", "--nats-url", v], &[]).await;
        assert_ne!(code, 0, "--nats-url {v:?} was accepted:\n{err}");
        assert!(err.contains("nats-url"), "--nats-url {v:?}:\n{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_log_filter_is_refused_not_ignored() {
    let (code, err) = refused(
        &["--listen", "127.0.0.1:0"],
        &[("NATSMON_LOG", "info,natsmon=loud")],
    )
    .await;
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("invalid value for log:"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loki_password_without_a_user_names_where_it_came_from() {
    let (code, err) = refused(
        &[
            "--listen",
            "127.0.0.1:0",
            "--loki-url",
            "http://127.0.0.1:3100",
        ],
        &[("NATSMON_LOKI_PASSWORD", "pw-from-env")],
    )
    .await;
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("NATSMON_LOKI_PASSWORD"), "{err}");
    assert!(err.contains("--loki-username"), "{err}");
    assert!(!err.contains("loki-password-file"), "{err}");
    assert!(!err.contains("pw-from-env"), "{err}");
}

/// A password with `@ : / # ? %` can only be written percent-encoded in a URL; Loki must
/// receive it decoded, as NATS nodes already do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_url_credentials_are_percent_decoded() {
    docker::ensure_docker();
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("lokicreds").await;
    let with_creds = sh
        .loki
        .url()
        .replacen("http://", "http://l%40user:p%40ss%3A%2F%23%3F%25@", 1);
    let mut a = sh.natsmon_args(&[]);
    let i = a.iter().position(|x| x == "--loki-url").unwrap();
    a[i + 1] = with_creds;
    let nm = Natsmon::start(&a).await;
    let c = Container::run(
        &sh.name("app"),
        &[],
        &docker::as_strs(&docker::log_generator_cmd(5, "creds line", 1)),
    );
    wait_lines(&sh.loki, &c, 5, Duration::from_secs(30)).await;
    // base64("l@user:p@ss:/#?%")
    let want = "Basic bEB1c2VyOnBAc3M6LyM/JQ==";
    for e in sh.loki.entries() {
        assert_eq!(e.authorization.as_deref(), Some(want));
    }
    let out = nm.output();
    assert!(!out.contains("p@ss") && !out.contains("p%40ss"), "{out}");
}
