//! Self-tests for the Loki push receiver in `tests/it/harness/loki.rs`.
//!
//! Protobuf requests are encoded BY HAND (raw protobuf wire bytes built
//! below, independent of the receiver's prost structs) and snappy
//! block-compressed; JSON requests are written as literal JSON.

use std::time::{Duration, Instant};

use crate::harness::loki::{self, Format, LokiReceiver, Mode};

// ---------------------------------------------------------------------------
// Manual protobuf encoder (wire format only; no shared message types)
// ---------------------------------------------------------------------------

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(field: u64, wire_type: u64, out: &mut Vec<u8>) {
    varint((field << 3) | wire_type, out);
}

fn len_delim(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    key(field, 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// google.protobuf.Timestamp { int64 seconds = 1; int32 nanos = 2; }
fn timestamp(seconds: i64, nanos: i32) -> Vec<u8> {
    let mut o = Vec::new();
    if seconds != 0 {
        key(1, 0, &mut o);
        varint(seconds as u64, &mut o);
    }
    if nanos != 0 {
        key(2, 0, &mut o);
        varint(nanos as i64 as u64, &mut o);
    }
    o
}

/// EntryAdapter { timestamp = 1; line = 2; structuredMetadata = 3 }
fn entry(seconds: i64, nanos: i32, line: &str, sm: &[(&str, &str)]) -> Vec<u8> {
    let mut o = Vec::new();
    len_delim(1, &timestamp(seconds, nanos), &mut o);
    len_delim(2, line.as_bytes(), &mut o);
    for (k, v) in sm {
        let mut pair = Vec::new();
        len_delim(1, k.as_bytes(), &mut pair);
        len_delim(2, v.as_bytes(), &mut pair);
        len_delim(3, &pair, &mut o);
    }
    o
}

/// StreamAdapter { labels = 1; entries = 2; hash = 3 }
fn stream(labels: &str, entries: &[Vec<u8>], hash: u64) -> Vec<u8> {
    let mut o = Vec::new();
    len_delim(1, labels.as_bytes(), &mut o);
    for e in entries {
        len_delim(2, e, &mut o);
    }
    if hash != 0 {
        key(3, 0, &mut o);
        varint(hash, &mut o);
    }
    o
}

/// PushRequest { streams = 1 }, snappy block compressed.
fn push_body(streams: &[Vec<u8>]) -> Vec<u8> {
    let mut o = Vec::new();
    for s in streams {
        len_delim(1, s, &mut o);
    }
    snap::raw::Encoder::new().compress_vec(&o).unwrap()
}

fn simple_push(labels: &str, lines: &[&str]) -> Vec<u8> {
    let entries: Vec<Vec<u8>> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| entry(1_700_000_000 + i as i64, 0, l, &[]))
        .collect();
    push_body(&[stream(labels, &entries, 0)])
}

// ---------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn post_proto(rx: &LokiReceiver, body: Vec<u8>) -> reqwest::Response {
    client()
        .post(rx.push_url())
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .expect("send")
}

async fn post_json(rx: &LokiReceiver, body: &str) -> reqwest::Response {
    client()
        .post(rx.push_url())
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("send")
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[tokio::test]
async fn protobuf_push_is_decoded_exactly() {
    let rx = LokiReceiver::start().await;
    let labels = r#"{job="nats", container_name="n1", msg="say \"hi\" C:\\dir\n", raw=`a"b\c`}"#;
    let body = push_body(&[
        stream(
            labels,
            &[
                entry(1_700_000_000, 123_456_789, "first line", &[]),
                entry(
                    1_700_000_001,
                    1,
                    "second ✓ line",
                    &[("trace_id", "abc"), ("level", "info")],
                ),
            ],
            42,
        ),
        stream(
            r#"{job="nats",container_name="n2"}"#,
            &[entry(5, 0, "other", &[])],
            0,
        ),
    ]);
    let body_len = body.len();
    let resp = client()
        .post(rx.push_url())
        .header("Content-Type", "application/x-protobuf")
        .header("X-Scope-OrgID", "tenant-a")
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);

    let entries = rx.entries();
    assert_eq!(entries.len(), 3);
    let e0 = &entries[0];
    assert_eq!(e0.format, Format::Protobuf);
    assert_eq!(e0.label("job"), Some("nats"));
    assert_eq!(e0.label("container_name"), Some("n1"));
    assert_eq!(e0.label("msg"), Some("say \"hi\" C:\\dir\n"));
    assert_eq!(e0.label("raw"), Some("a\"b\\c"));
    assert_eq!(e0.labels.len(), 4);
    assert_eq!(e0.ts_ns, 1_700_000_000_123_456_789);
    assert_eq!(e0.line, "first line");
    assert!(e0.structured_metadata.is_empty());
    assert_eq!(e0.tenant.as_deref(), Some("tenant-a"));
    assert_eq!(e0.authorization.as_deref(), Some("Basic dXNlcjpwYXNz"));

    let e1 = &entries[1];
    assert_eq!(e1.ts_ns, 1_700_000_001_000_000_001);
    assert_eq!(e1.line, "second ✓ line");
    assert_eq!(
        e1.structured_metadata,
        vec![
            ("trace_id".to_string(), "abc".to_string()),
            ("level".to_string(), "info".to_string())
        ]
    );
    assert_eq!(e1.metadata("level"), Some("info"));

    assert_eq!(entries[2].ts_ns, 5_000_000_000);
    assert_eq!(rx.lines_for("container_name", "n2"), vec!["other"]);
    assert_eq!(
        rx.lines_for("container_name", "n1"),
        vec!["first line", "second ✓ line"]
    );
    assert_eq!(rx.count(), 3);

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].status, 204);
    assert_eq!(reqs[0].entries, 3);
    assert_eq!(reqs[0].accepted, 3);
    assert_eq!(reqs[0].bytes, body_len);
    assert_eq!(
        reqs[0].content_type.as_deref(),
        Some("application/x-protobuf")
    );
    assert_eq!(reqs[0].tenant.as_deref(), Some("tenant-a"));
    assert!(rx.decode_errors().is_empty());

    rx.clear();
    assert_eq!(rx.count(), 0);
    assert!(rx.requests().is_empty());
}

#[tokio::test]
async fn protobuf_without_content_type_and_with_snappy_encoding_header() {
    // Loki treats a missing Content-Type as protobuf and ignores
    // `Content-Encoding: snappy` (pkg/loghttp/push/push.go).
    let rx = LokiReceiver::start().await;
    let resp = client()
        .post(rx.push_url())
        .header("Content-Encoding", "snappy")
        .body(simple_push(r#"{job="x"}"#, &["a"]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(rx.lines(), vec!["a"]);
    assert_eq!(rx.requests()[0].content_type, None);
}

#[tokio::test]
async fn json_push_is_decoded_exactly() {
    let rx = LokiReceiver::start().await;
    let body = r#"{"streams":[
        {"stream":{"job":"nats","container_name":"n1","q":"a\"b"},
         "values":[["1700000000123456789","hello"],
                   ["1700000000123456790","with sm",{"z":"1","a":"2"}]]},
        {"stream":{"job":"nats","container_name":"n3"},"values":[["-5","neg"]]}
    ]}"#;
    let resp = client()
        .post(rx.push_url())
        .header("Content-Type", "application/json; charset=utf-8")
        .header("X-Scope-OrgID", "t2")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204, "{:?}", rx.decode_errors());
    let e = rx.entries();
    assert_eq!(e.len(), 3);
    assert!(e.iter().all(|e| e.format == Format::Json));
    assert_eq!(e[0].ts_ns, 1_700_000_000_123_456_789);
    assert_eq!(e[0].line, "hello");
    assert_eq!(e[0].label("q"), Some("a\"b"));
    assert_eq!(e[0].tenant.as_deref(), Some("t2"));
    assert_eq!(e[0].authorization, None);
    // structured metadata keeps wire order
    assert_eq!(
        e[1].structured_metadata,
        vec![("z".into(), "1".into()), ("a".into(), "2".into())]
    );
    assert_eq!(e[2].ts_ns, -5);
    assert_eq!(rx.lines_for("container_name", "n3"), vec!["neg"]);
    assert!(rx.decode_errors().is_empty());
}

#[tokio::test]
async fn strict_decoding_rejects_garbage() {
    let rx = LokiReceiver::start().await;

    // 1. not snappy at all
    let r = post_proto(&rx, b"definitely not snappy".to_vec()).await;
    assert_eq!(r.status().as_u16(), 400);
    // 2. framed snappy instead of block snappy
    let mut framed = Vec::new();
    {
        use std::io::Write;
        let mut w = snap::write::FrameEncoder::new(&mut framed);
        w.write_all(b"\x0a\x00").unwrap();
        w.flush().unwrap();
    }
    let r = post_proto(&rx, framed).await;
    assert_eq!(r.status().as_u16(), 400);
    // 3. valid snappy, invalid protobuf (truncated length-delimited field)
    let bad = snap::raw::Encoder::new()
        .compress_vec(&[0x0a, 0x10, 0x01])
        .unwrap();
    assert_eq!(post_proto(&rx, bad).await.status().as_u16(), 400);
    // 4. protobuf with an unparsable label string
    let r = post_proto(&rx, simple_push(r#"{job="unterminated}"#, &["x"])).await;
    assert_eq!(r.status().as_u16(), 400);
    // 5. protobuf entry without timestamp
    let mut e = Vec::new();
    len_delim(2, b"no ts", &mut e);
    let r = post_proto(&rx, push_body(&[stream(r#"{job="a"}"#, &[e], 0)])).await;
    assert_eq!(r.status().as_u16(), 400);
    // 6. invalid JSON
    assert_eq!(
        post_json(&rx, "{\"streams\":[").await.status().as_u16(),
        400
    );
    // 7. JSON timestamp as a number (Loki requires a string)
    let j = r#"{"streams":[{"stream":{"job":"a"},"values":[[1700000000000000000,"x"]]}]}"#;
    assert_eq!(post_json(&rx, j).await.status().as_u16(), 400);
    // 8. JSON entry with 4 elements
    let j = r#"{"streams":[{"stream":{"job":"a"},"values":[["1","x",{},"extra"]]}]}"#;
    assert_eq!(post_json(&rx, j).await.status().as_u16(), 400);
    // 9. JSON with empty labels
    let j = r#"{"streams":[{"stream":{},"values":[["1","x"]]}]}"#;
    assert_eq!(post_json(&rx, j).await.status().as_u16(), 400);
    // 10. unknown content type → 415
    let r = client()
        .post(rx.push_url())
        .header("Content-Type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // 11. unsupported content encoding → 415
    let r = client()
        .post(rx.push_url())
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "br")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);

    assert_eq!(rx.count(), 0);
    let errs = rx.decode_errors();
    assert_eq!(errs.len(), 11, "{errs:#?}");
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 11);
    assert!(
        reqs.iter()
            .all(|r| r.decode_error.is_some() && r.accepted == 0)
    );
    assert_eq!(reqs[0].status, 400);
    assert_eq!(reqs[9].status, 415);
}

#[tokio::test]
async fn fault_modes_answer_with_the_right_status() {
    let rx = LokiReceiver::start().await;
    let body = || simple_push(r#"{job="f"}"#, &["l1", "l2"]);

    rx.set_mode(Mode::Status(503));
    assert_eq!(post_proto(&rx, body()).await.status().as_u16(), 503);
    rx.set_mode(Mode::Status(500));
    assert_eq!(post_proto(&rx, body()).await.status().as_u16(), 500);

    rx.set_mode(Mode::TooManyRequests {
        retry_after_secs: Some(7),
    });
    let r = post_proto(&rx, body()).await;
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers().get("retry-after").unwrap(), "7");

    rx.set_mode(Mode::TooManyRequests {
        retry_after_secs: None,
    });
    let r = post_proto(&rx, body()).await;
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_none());

    rx.set_mode(Mode::BadRequest("entry too far behind".into()));
    let r = post_proto(&rx, body()).await;
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.text().await.unwrap(), "entry too far behind");

    rx.set_mode(Mode::PayloadTooLarge);
    assert_eq!(post_proto(&rx, body()).await.status().as_u16(), 413);

    assert_eq!(rx.count(), 0, "fault modes must store nothing");
    let statuses: Vec<u16> = rx.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 500, 429, 429, 400, 413]);
    // Bodies were still decoded for bookkeeping.
    assert!(
        rx.requests()
            .iter()
            .all(|r| r.entries == 2 && r.accepted == 0)
    );
    assert!(rx.decode_errors().is_empty());

    rx.set_mode(Mode::Slow(Duration::from_millis(300)));
    let t = Instant::now();
    assert_eq!(post_proto(&rx, body()).await.status().as_u16(), 204);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(rx.count(), 2);

    rx.set_mode(Mode::Accept);
    assert_eq!(post_proto(&rx, body()).await.status().as_u16(), 204);
    assert_eq!(rx.count(), 4);
}

#[tokio::test]
async fn max_body_bytes_gives_413() {
    let rx = LokiReceiver::start().await;
    rx.set_max_body_bytes(Some(10));
    let r = post_proto(&rx, simple_push(r#"{job="big"}"#, &["a long enough line"])).await;
    assert_eq!(r.status().as_u16(), 413);
    rx.set_max_body_bytes(None);
    let r = post_proto(&rx, simple_push(r#"{job="big"}"#, &["a long enough line"])).await;
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(rx.count(), 1);
}

#[tokio::test]
async fn drop_connection_is_a_client_side_error() {
    let rx = LokiReceiver::start().await;
    rx.set_mode(Mode::DropConnection);
    let c = client();
    let err = c
        .post(rx.push_url())
        .header("Content-Type", "application/x-protobuf")
        .body(simple_push(r#"{job="d"}"#, &["x"]))
        .send()
        .await
        .expect_err("dropped connection must be a client error");
    assert!(err.status().is_none(), "no HTTP status expected: {err:?}");
    assert_eq!(rx.count(), 0);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].status, 0);
    assert_eq!(reqs[0].mode, Mode::DropConnection);

    // Same client (connection pool) recovers once the receiver accepts again.
    rx.set_mode(Mode::Accept);
    let r = c
        .post(rx.push_url())
        .header("Content-Type", "application/x-protobuf")
        .body(simple_push(r#"{job="d"}"#, &["y"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(rx.lines(), vec!["y"]);
}

#[tokio::test]
async fn set_mode_for_reverts_after_n_requests() {
    let rx = LokiReceiver::start().await;
    rx.set_mode_for(Mode::Status(500), 2);
    assert_eq!(rx.mode(), Mode::Status(500));
    let mut statuses = Vec::new();
    for i in 0..4 {
        let r = post_proto(&rx, simple_push(r#"{job="n"}"#, &[&format!("l{i}")])).await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![500, 500, 204, 204]);
    assert_eq!(rx.lines(), vec!["l2", "l3"]);
    assert_eq!(rx.mode(), Mode::Accept);

    // DropConnection for exactly one request, then normal service.
    rx.set_mode_for(Mode::DropConnection, 1);
    assert!(
        client()
            .post(rx.push_url())
            .header("Content-Type", "application/x-protobuf")
            .body(simple_push(r#"{job="n"}"#, &["dropped"]))
            .send()
            .await
            .is_err()
    );
    let r = post_proto(&rx, simple_push(r#"{job="n"}"#, &["after"])).await;
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(rx.lines(), vec!["l2", "l3", "after"]);
}

#[tokio::test]
async fn set_mode_until_reverts_after_deadline() {
    let rx = LokiReceiver::start().await;
    rx.set_mode_until(Mode::Status(503), Duration::from_millis(300));
    let r = post_proto(&rx, simple_push(r#"{job="u"}"#, &["a"])).await;
    assert_eq!(r.status().as_u16(), 503);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let r = post_proto(&rx, simple_push(r#"{job="u"}"#, &["b"])).await;
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(rx.lines(), vec!["b"]);
}

#[tokio::test]
async fn partial_rejection_stores_valid_entries_and_answers_400() {
    let rx = LokiReceiver::start().await;
    rx.set_mode(Mode::RejectLinesContaining("BAD".into()));
    let r = post_proto(
        &rx,
        simple_push(r#"{job="p"}"#, &["ok 1", "BAD 1", "ok 2", "BAD 2", "ok 3"]),
    )
    .await;
    assert_eq!(r.status().as_u16(), 400);
    let text = r.text().await.unwrap();
    assert!(text.contains("total ignored: 2 out of 5"), "{text}");
    assert_eq!(rx.lines(), vec!["ok 1", "ok 2", "ok 3"]);
    let req = &rx.requests()[0];
    assert_eq!((req.status, req.entries, req.accepted), (400, 5, 3));

    // Nothing matching → plain success.
    let j = r#"{"streams":[{"stream":{"job":"p"},"values":[["1","fine"]]}]}"#;
    assert_eq!(post_json(&rx, j).await.status().as_u16(), 204);
    assert_eq!(rx.count(), 4);
}

#[tokio::test]
async fn chunked_body_keep_alive_ready_and_routing() {
    let rx = LokiReceiver::start().await;
    let c = client();

    let r = c.get(format!("{}/ready", rx.url())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "ready");
    assert_eq!(
        c.get(format!("{}/nope", rx.url()))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        c.get(rx.push_url()).send().await.unwrap().status().as_u16(),
        405
    );

    // Streamed body → Transfer-Encoding: chunked, split into several chunks.
    let body = simple_push(r#"{job="chunked"}"#, &["c1", "c2", "c3"]);
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(7).map(|c| Ok(c.to_vec())).collect();
    let r = c
        .post(rx.push_url())
        .header("Content-Type", "application/x-protobuf")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204, "{:?}", rx.decode_errors());
    assert_eq!(rx.lines_for("job", "chunked"), vec!["c1", "c2", "c3"]);

    // Many sequential requests over the same keep-alive client.
    for i in 0..20 {
        let r = c
            .post(rx.push_url())
            .header("Content-Type", "application/x-protobuf")
            .body(simple_push(r#"{job="ka"}"#, &[&format!("k{i}")]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
    }
    assert_eq!(rx.lines_for("job", "ka").len(), 20);
    let reqs = rx.requests();
    // Only push-path requests are logged (the GET to the push path is a 405).
    assert_eq!(reqs.len(), 22);
    assert_eq!(reqs[0].status, 405);
    assert!(reqs[1].chunked);
}

#[tokio::test]
async fn raw_http_pipelining_and_expect_continue() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rx = LokiReceiver::start().await;
    let j1 = r#"{"streams":[{"stream":{"job":"raw"},"values":[["1","p1"]]}]}"#;
    let j2 = r#"{"streams":[{"stream":{"job":"raw"},"values":[["2","p2"]]}]}"#;
    let mut s = tokio::net::TcpStream::connect(rx.addr()).await.unwrap();
    // Two pipelined requests, the second one closes the connection.
    let req = format!(
        "POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}\
         POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        j1.len(),
        j1,
        j2.len(),
        j2
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert_eq!(
        out.matches("HTTP/1.1 204 No Content\r\n").count(),
        2,
        "{out}"
    );
    assert_eq!(rx.lines(), vec!["p1", "p2"]);

    // Expect: 100-continue gets an interim response before the body is sent.
    let mut s = tokio::net::TcpStream::connect(rx.addr()).await.unwrap();
    let head = format!(
        "POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        j1.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 100 Continue\r\n"));
    s.write_all(j1.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.contains("204 No Content"), "{out}");
    assert_eq!(rx.count(), 3);
}

#[tokio::test]
async fn wait_for_count_and_stop() {
    let rx = LokiReceiver::start().await;
    assert!(!rx.wait_for_count(1, Duration::from_millis(100)).await);
    let url = rx.push_url();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        client()
            .post(url)
            .header("Content-Type", "application/x-protobuf")
            .body(simple_push(r#"{job="w"}"#, &["a", "b"]))
            .send()
            .await
            .unwrap();
    });
    assert!(rx.wait_for_count(2, Duration::from_secs(5)).await);

    let addr = rx.addr();
    rx.stop();
    let err = client()
        .post(rx.push_url())
        .body(simple_push(r#"{job="w"}"#, &["c"]))
        .send()
        .await
        .expect_err("stopped receiver must refuse connections");
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    // Data survives stop; a new receiver can come back on the same port.
    assert_eq!(rx.count(), 2);
    drop(rx);
    let rx2 = LokiReceiver::start_on(addr)
        .await
        .expect("rebind same port");
    assert_eq!(
        post_proto(&rx2, simple_push(r#"{job="w"}"#, &["again"]))
            .await
            .status()
            .as_u16(),
        204
    );
}

#[tokio::test]
async fn count_only_counts_without_keeping_entries() {
    // The shipper benchmark's mode: millions of lines counted, none kept.
    let rx = LokiReceiver::start().await;
    rx.set_count_only(true);
    let r = post_proto(&rx, simple_push(r#"{job="bench"}"#, &["a", "b", "c"])).await;
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(rx.count(), 3);
    assert!(rx.entries().is_empty());
    rx.set_count_only(false);
    post_proto(&rx, simple_push(r#"{job="bench"}"#, &["d"])).await;
    assert_eq!(rx.count(), 4);
    assert_eq!(rx.lines(), vec!["d"]);
}

#[test]
fn receiver_serves_while_test_thread_blocks() {
    // The receiver has its own runtime, so blocking code in a test is fine.
    let rx = LokiReceiver::start_blocking();
    let url = rx.push_url();
    let h = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            client()
                .post(url)
                .header("Content-Type", "application/x-protobuf")
                .body(simple_push(r#"{job="b"}"#, &["blocking"]))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    assert!(rx.wait_for_count_blocking(1, Duration::from_secs(5)));
    assert_eq!(h.join().unwrap(), 204);
}

#[test]
fn label_parser() {
    let p = loki::parse_labels;
    let m = p(r#"{a="1",b="two", c = "x\"y\\z"}"#).unwrap();
    assert_eq!(m["a"], "1");
    assert_eq!(m["b"], "two");
    assert_eq!(m["c"], "x\"y\\z");
    let m = p(r#"{e="\t\n\x41\101\u00e9\U0001F600", r=`raw\n`}"#).unwrap();
    assert_eq!(m["e"], "\t\nAAé😀");
    assert_eq!(m["r"], "raw\\n");
    assert_eq!(p(" { } ").unwrap().len(), 0);
    assert_eq!(p(r#"{a="{},=\""}"#).unwrap()["a"], "{},=\"");
    for bad in [
        "",
        "a=\"b\"",
        r#"{a="b",}"#,
        r#"{a="b""#,
        r#"{a="b"} x"#,
        r#"{a=~"b"}"#,
        r#"{a!="b"}"#,
        r#"{1a="b"}"#,
        r#"{a="b",a="c"}"#,
        r#"{a="\q"}"#,
        r#"{a=b}"#,
        r#"{a="b" c="d"}"#,
        r#"{a="\xff"}"#,
    ] {
        assert!(p(bad).is_err(), "should reject {bad:?}");
    }
    // format_labels round-trips through the parser.
    let m = p(r#"{job="nats", msg="q\"\\\n"}"#).unwrap();
    assert_eq!(p(&loki::format_labels(&m)).unwrap(), m);
}
