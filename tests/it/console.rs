//! The web console in a real browser: Debian's Chromium, headless, driven through the
//! DevTools protocol over its websocket (a small client below), against a real 3-node
//! cluster and natsmon. Asserts what a person sees: node rows, the ORDERS stream's exact
//! message count, a consumer's pending and ack pending, the meta leader; values changing
//! without a reload; a killed node shown down since a time, with its last known name and
//! one error; names made to break out of HTML rendered as text. Screenshots of `/`,
//! `/streams` and the node-down state go to `target/console-screenshots/`.
//!
//! A missing `/usr/bin/chromium` fails the test: `scripts/test.sh` installs it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::docker::{self, Container};
use crate::harness::shipper::ShipperSetup;
use crate::harness::*;

pub const CHROMIUM: &str = "/usr/bin/chromium";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One headless Chromium with one page, spoken to through the DevTools protocol.
struct Browser {
    _child: tokio::process::Child,
    _profile: tempfile::TempDir,
    ws: Ws,
    session: String,
    next_id: u64,
    /// Exceptions, console errors and CSP reports seen so far, and opened dialogs.
    problems: Vec<String>,
}

impl Browser {
    async fn launch() -> Browser {
        assert!(
            std::path::Path::new(CHROMIUM).is_file(),
            "\n\n*** {CHROMIUM} NOT FOUND. The console tests need Debian's chromium: \
             `apt-get install -y chromium` (scripts/test.sh does it).\n\n"
        );
        let profile = new_tempdir("natsmon-chromium-");
        let mut child = tokio::process::Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=1600,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {CHROMIUM}: {e}"));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(l)) = lines.next_line().await {
                if let Some(u) = l.strip_prefix("DevTools listening on ") {
                    return Some(u.trim().to_string());
                }
                seen.push(l);
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("Chromium gave no DevTools URL:\n{}", seen.join("\n")));
        // Chromium blocks once its stderr pipe fills; keep reading it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("connect to the DevTools websocket");
        let mut b = Browser {
            _child: child,
            _profile: profile,
            ws,
            session: String::new(),
            next_id: 0,
            problems: Vec::new(),
        };
        let target = b
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .await["targetId"]
            .clone();
        let attached = b
            .call(
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
            )
            .await;
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            b.call(domain, json!({})).await;
        }
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1600, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
        b
    }

    /// Sends a command (to the page once attached) and waits for its answer, noting the
    /// events that arrive meanwhile.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("send to Chromium");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = tokio::time::timeout(left, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer from Chromium in 30 s"))
                .unwrap_or_else(|| panic!("{method}: Chromium closed the connection"))
                .expect("read from Chromium");
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(&t).expect("DevTools JSON");
            if v["id"] == json!(id) {
                if let Some(e) = v.get("error") {
                    panic!("{method} failed: {e}");
                }
                return v["result"].clone();
            }
            self.note_event(&v);
        }
    }

    fn note_event(&mut self, v: &Value) {
        let p = &v["params"];
        match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => self.problems.push(format!(
                "exception: {}",
                p["exceptionDetails"]["exception"]["description"]
                    .as_str()
                    .unwrap_or(&p["exceptionDetails"]["text"].to_string())
            )),
            Some("Runtime.consoleAPICalled") if p["type"] == "error" => {
                self.problems.push(format!("console.error: {}", p["args"]))
            }
            // CSP violations and failed loads are reported here.
            Some("Log.entryAdded") if p["entry"]["level"] == "error" => self.problems.push(
                format!("log: {}", p["entry"]["text"].as_str().unwrap_or("")),
            ),
            Some("Page.javascriptDialogOpening") => self
                .problems
                .push(format!("dialog opened: {}", p["message"])),
            _ => {}
        }
    }

    /// The value of a JavaScript expression (promises awaited).
    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("evaluating {expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        let check = format!(
            "document.readyState === 'complete' && location.href === {}",
            json!(url)
        );
        self.wait_for(&check, Duration::from_secs(20)).await;
    }

    /// Polls a JavaScript expression until it is truthy; returns its value.
    async fn wait_for(&mut self, expr: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(expr).await;
            if !(v.is_null() || v == json!(false)) {
                return v;
            }
            if Instant::now() >= deadline {
                let body = self
                    .eval("document.body ? document.body.innerText : ''")
                    .await;
                panic!("timed out after {timeout:?} waiting for {expr}\npage text:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the page script has refreshed from `/api/v1/status` `n` more times.
    async fn wait_refreshes(&mut self, n: u64) {
        let now = self.refreshes().await;
        let expr = format!(
            "Number(document.body.getAttribute('data-refreshes') || 0) >= {}",
            now + n
        );
        self.wait_for(&expr, Duration::from_secs(20)).await;
    }

    async fn refreshes(&mut self) -> u64 {
        self.eval("Number(document.body.getAttribute('data-refreshes') || 0)")
            .await
            .as_u64()
            .unwrap_or(0)
    }

    async fn screenshot(&mut self, name: &str) -> PathBuf {
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64_decode(r["data"].as_str().expect("screenshot data"));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        let dir = repo_root().join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        eprintln!("[console] screenshot {}", path.display());
        path
    }

    /// Asserts the page raised no exception, logged no error (CSP violations among
    /// them) and opened no dialog.
    fn assert_no_problems(&self) {
        assert!(self.problems.is_empty(), "{:#?}", self.problems);
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The cells of a node row of the overview, by `data-k`; `null` until the row exists.
fn node_row_js(node: &str) -> String {
    format!(
        "(() => {{ const r = document.querySelector('tr[data-node={}]'); if (!r) return null; \
         const o = {{ class: r.className, errors: r.querySelectorAll('td[data-k=error] b').length }}; \
         r.querySelectorAll('td[data-k]').forEach(td => o[td.dataset.k] = td.textContent); return o; }})()",
        json!(node)
    )
}

/// The cells of a row of the stream or consumer table, by their column's `th[data-k]`.
fn table_row_js(attr: &str, name: &str) -> String {
    format!(
        "(() => {{ const keys = Array.from(document.querySelectorAll('#table thead th')).map(th => th.dataset.k); \
         const r = Array.from(document.querySelectorAll('#rows tr')).find(tr => tr.getAttribute({}) === {}); \
         if (!r) return null; const o = {{}}; Array.from(r.cells).forEach((td, i) => o[keys[i]] = td.textContent); \
         return o; }})()",
        json!(attr),
        json!(name)
    )
}

async fn row(b: &mut Browser, js: &str) -> BTreeMap<String, Value> {
    serde_json::from_value(b.eval(js).await).unwrap_or_default()
}

fn text(v: &BTreeMap<String, Value>, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_shows_the_cluster_live_and_a_node_going_down() {
    let mut cluster = Cluster::start().await;
    let a = connect(&cluster, "a", "a").await;
    let js = jetstream::new(a.clone());
    // 100 published, 30 delivered, 20 acknowledged: pending 70, ack pending 10.
    let (_orders, consumer) = orders_with_billing(&js, 100, 30, 20).await;
    let mut c = consumer.clone();
    let info = c.info().await.unwrap().clone();
    assert_eq!((info.num_pending, info.num_ack_pending), (70, 10));
    let leader = cluster.meta_leader(0).await.expect("a meta leader");

    let nm = Natsmon::start(&natsmon_args(&cluster, ("500ms", "400ms"), &[])).await;
    let base = nm.base_url();
    let mut b = Browser::launch().await;

    // The overview: every node up, the meta leader, the route mesh complete.
    b.goto(&format!("{base}/")).await;
    let mut versions = BTreeMap::new();
    for i in 0..3 {
        let n = cluster.server_name(i);
        let js = node_row_js(&n);
        b.wait_for(
            &format!("(({js}) || {{}}).class === 'up'"),
            Duration::from_secs(20),
        )
        .await;
        let r = row(&mut b, &js).await;
        assert_eq!(text(&r, "server"), n, "{r:?}");
        assert!(text(&r, "since").starts_with("up "), "{r:?}");
        assert!(text(&r, "version").starts_with("2."), "{r:?}");
        assert_eq!(text(&r, "error"), "", "{r:?}");
        assert_eq!(r["class"], "up");
        versions.insert(n, text(&r, "version"));
    }
    let shown_leader = b
        .wait_for(
            "(() => { const e = document.querySelector('[data-k=meta_leader]'); return e && e.textContent; })()",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(shown_leader, json!(leader));
    let leader_row = row(&mut b, &node_row_js(&leader)).await;
    assert!(
        text(&leader_row, "state").contains("meta leader"),
        "{leader_row:?}"
    );
    b.wait_for(
        "(() => { const e = document.querySelector('[data-k=routes]'); return e && e.textContent === 'Every known route is up.'; })()",
        Duration::from_secs(20),
    )
    .await;
    b.wait_refreshes(1).await;
    b.screenshot("overview.png").await;

    // /streams: ORDERS with its exact message count, as the page shows it.
    b.goto(&format!("{base}/streams")).await;
    let orders_js = table_row_js("data-stream", "ORDERS");
    b.wait_for(
        &format!("(({orders_js}) || {{}}).messages === '100'"),
        Duration::from_secs(20),
    )
    .await;
    let r = row(&mut b, &orders_js).await;
    assert_eq!(text(&r, "account"), "A", "{r:?}");
    assert_eq!(text(&r, "replicas"), "3", "{r:?}");
    assert_eq!(text(&r, "state"), "ok", "{r:?}");
    assert_eq!(text(&r, "messages_share"), " 0.0% of 1,000,000", "{r:?}");
    assert!(!text(&r, "leader").is_empty(), "{r:?}");
    b.wait_refreshes(1).await;
    b.screenshot("streams.png").await;

    // Live: more messages show up without a reload.
    b.eval("window.__marker = 'same document'").await;
    let before = b.refreshes().await;
    for i in 0..25 {
        publish_acked(
            &js,
            &format!("orders.{}", i % 4),
            "late",
            &format!("late-{i}"),
        )
        .await;
    }
    b.wait_for(
        &format!("(({orders_js}) || {{}}).messages === '125'"),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(b.eval("window.__marker").await, json!("same document"));
    assert!(b.refreshes().await > before, "updated by the script");

    // Sorting and filtering happen in place too.
    b.eval("document.querySelector('form.filter input[name=q]').value = 'ord'; document.querySelector('form.filter input[name=q]').dispatchEvent(new Event('input'))").await;
    b.wait_for(
        "document.getElementById('count').textContent === '1' && location.search.includes('q=ord')",
        Duration::from_secs(5),
    )
    .await;
    b.eval("document.querySelector('form.filter input[name=q]').value = 'nothing-matches'; document.querySelector('form.filter input[name=q]').dispatchEvent(new Event('input'))").await;
    b.wait_for(
        "document.getElementById('count').textContent === '0 of 1'",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(b.eval("window.__marker").await, json!("same document"));

    // /consumers: billing's pending and ack pending; pending follows the new messages.
    b.goto(&format!("{base}/consumers")).await;
    let billing_js = table_row_js("data-consumer", "billing");
    b.wait_for(
        &format!("(({billing_js}) || {{}}).num_pending === '95'"),
        Duration::from_secs(20),
    )
    .await;
    let r = row(&mut b, &billing_js).await;
    assert_eq!(text(&r, "num_ack_pending"), "10", "{r:?}");
    assert_eq!(text(&r, "stream"), "ORDERS", "{r:?}");
    assert_eq!(text(&r, "account"), "A", "{r:?}");
    assert!(text(&r, "name").contains("billing"));
    // The row links to its dashboard.
    let href = b
        .eval("Array.from(document.querySelectorAll('#rows tr')).find(tr => tr.dataset.consumer === 'billing').querySelector('a').href")
        .await;
    assert!(
        href.as_str()
            .unwrap()
            .contains("/d/natsmon-nats-jetstream?")
            && href.as_str().unwrap().contains("var-consumer=billing"),
        "{href}"
    );

    // A node goes down: the overview says since when, keeps its name, shows one error.
    let victim = (0..3).find(|i| cluster.server_name(*i) != leader).unwrap();
    let name = cluster.server_name(victim);
    b.goto(&format!("{base}/")).await;
    b.eval("window.__marker = 'same document'").await;
    cluster.kill(victim);
    let js = node_row_js(&name);
    b.wait_for(
        &format!("(({js}) || {{}}).class === 'down'"),
        Duration::from_secs(20),
    )
    .await;
    b.wait_refreshes(1).await;
    let r = row(&mut b, &js).await;
    assert!(text(&r, "since").starts_with("down since 20"), "{r:?}");
    assert_eq!(text(&r, "server"), name, "the last known name: {r:?}");
    assert_eq!(text(&r, "version"), versions[&name], "{r:?}");
    assert_eq!(
        r["errors"],
        json!(1),
        "one error, not one per endpoint: {r:?}"
    );
    assert!(text(&r, "error").starts_with("varz: "), "{r:?}");
    assert_eq!(text(&r, "connections"), "—", "{r:?}");
    assert_eq!(b.eval("window.__marker").await, json!("same document"));
    b.screenshot("node-down.png").await;

    // Without JavaScript the server-rendered page says the same.
    b.call(
        "Emulation.setScriptExecutionDisabled",
        json!({"value": true}),
    )
    .await;
    b.goto(&format!("{base}/")).await;
    let r = row(&mut b, &js).await;
    assert!(text(&r, "since").starts_with("down since 20"), "{r:?}");
    assert_eq!(r["errors"], json!(1), "{r:?}");
    assert_eq!(
        b.eval("document.body.hasAttribute('data-refreshes')").await,
        json!(false),
        "the script did not run"
    );
    b.assert_no_problems();
    drop(nm);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_labels_that_look_like_markup_render_as_text() {
    docker::ensure_docker();
    let _d = docker::dockerd_shared();
    let sh = ShipperSetup::start("console-xss").await;
    let job = "<img src=x onerror=alert(1)>";
    let service = "<img src=x onerror=window.__xss=1>";
    let c = Container::run(
        &sh.name("xss"),
        &[
            "--label",
            &format!("natsmon.job={job}"),
            "--label",
            &format!("com.docker.compose.service={service}"),
        ],
        &docker::as_strs(&docker::log_generator_cmd(1_000_000, "tick", 200)),
    );
    let nm = Natsmon::start(&sh.natsmon_args(&[])).await;
    let base = nm.base_url();
    let mut b = Browser::launch().await;
    b.goto(&format!("{base}/")).await;
    let row_js = format!(
        "(() => {{ const r = Array.from(document.querySelectorAll('tr[data-container]')).find(r => r.dataset.container === {}); \
         if (!r) return null; const o = {{}}; r.querySelectorAll('td[data-k]').forEach(td => o[td.dataset.k] = td.textContent); return o; }})()",
        json!(c.name)
    );
    b.wait_for(&row_js, Duration::from_secs(30)).await;
    // Both renderings: the server's, then the script's from /api/v1/status, which it
    // fetches once on load (the next only after this natsmon's 30 s poll interval).
    b.wait_for(
        "Number(document.body.getAttribute('data-refreshes') || 0) >= 1",
        Duration::from_secs(20),
    )
    .await;
    let r = row(&mut b, &row_js).await;
    assert_eq!(text(&r, "job"), job, "{r:?}");
    assert_eq!(text(&r, "service"), service, "{r:?}");
    assert_eq!(text(&r, "name"), c.name);
    let shipping = b
        .eval("document.querySelector('[data-k=shipping]').textContent")
        .await;
    assert_eq!(shipping, json!("Log shipping is on."));
    b.wait_for(
        "document.querySelector('[data-k=loki]').textContent.includes('reachable')",
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        b.eval("document.querySelectorAll('img').length").await,
        json!(0)
    );
    assert_eq!(b.eval("typeof window.__xss").await, json!("undefined"));
    // Once more without the script: the server-rendered page is as inert.
    b.call(
        "Emulation.setScriptExecutionDisabled",
        json!({"value": true}),
    )
    .await;
    b.goto(&format!("{base}/")).await;
    let r = row(&mut b, &row_js).await;
    assert_eq!(text(&r, "job"), job, "{r:?}");
    assert_eq!(
        b.eval("document.querySelectorAll('img').length").await,
        json!(0)
    );
    b.call(
        "Emulation.setScriptExecutionDisabled",
        json!({"value": false}),
    )
    .await;
    assert_eq!(b.eval("typeof window.__xss").await, json!("undefined"));
    b.assert_no_problems();
    drop(nm);
}

/// A monitoring endpoint serving the captured 2.9.10 responses of the stream leader,
/// with its server, account, stream and consumer names replaced by markup.
async fn node_with_markup_names(names: &'static [(&'static str, &'static str)]) -> String {
    use axum::http::Uri;
    let dir = repo_root().join("tests/fixtures/nats/2.9.10");
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let dir = dir.clone();
        async move {
            let file = match uri.path() {
                "/varz" => "varz.json",
                "/jsz" => "jsz.json",
                "/connz" => "connz.json",
                "/routez" => "routez.json",
                "/healthz" => "healthz.json",
                "/accstatz" => "accstatz.json",
                "/subsz" => "subsz.json",
                _ => return (axum::http::StatusCode::NOT_FOUND, String::new()),
            };
            let mut body = std::fs::read_to_string(dir.join(file)).unwrap();
            for (from, to) in names {
                body = body.replace(from, to);
            }
            (axum::http::StatusCode::OK, body)
        }
    });
    // Through free_port: a port the harness gave a cluster node is never reused here.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", crate::harness::free_port()))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_names_that_look_like_markup_render_as_text() {
    // JSON string literals of the fixtures, and what they become. No quote or backslash
    // in a payload, so the JSON stays valid.
    const NAMES: &[(&str, &str)] = &[
        ("\"ORDERS\"", "\"<img src=x onerror=window.__xss=1>\""),
        ("\"billing\"", "\"<img src=x onerror=window.__xss=2>\""),
        ("\"A\"", "\"<svg onload=window.__xss=3>\""),
        ("\"n2\"", "\"<b onmouseover=window.__xss=4>n2</b>\""),
    ];
    let url = node_with_markup_names(NAMES).await;
    let nm = Natsmon::start(&args(&[
        "--nats-url",
        &format!("n2={url}"),
        "--poll-interval",
        "1s",
    ]))
    .await;
    let base = nm.base_url();
    let mut b = Browser::launch().await;
    let inert = "document.querySelectorAll('img, svg, b[onmouseover]').length === 0 && \
                 typeof window.__xss === 'undefined' && \
                 !Array.from(document.querySelectorAll('*')).some(e => \
                   Array.from(e.attributes).some(a => a.name.startsWith('on')))";
    b.goto(&format!("{base}/")).await;
    let server = b
        .wait_for(
            &format!("(({}) || {{}}).server", node_row_js("n2")),
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(server, json!(NAMES[3].1.trim_matches('"')));
    b.wait_for(
        "Number(document.body.getAttribute('data-refreshes') || 0) >= 1",
        Duration::from_secs(20),
    )
    .await;
    let account = b
        .eval(
            "Array.from(document.querySelectorAll('tr[data-account]')).map(r => r.dataset.account)",
        )
        .await;
    assert!(
        account
            .as_array()
            .unwrap()
            .contains(&json!(NAMES[2].1.trim_matches('"'))),
        "{account}"
    );
    assert_eq!(b.eval(inert).await, json!(true));
    for (page, attr, name) in [
        ("streams", "data-stream", NAMES[0].1),
        ("consumers", "data-consumer", NAMES[1].1),
    ] {
        b.goto(&format!("{base}/{page}")).await;
        let name = name.trim_matches('"');
        let js = table_row_js(attr, name);
        b.wait_for(&js, Duration::from_secs(20)).await;
        b.wait_for(
            "Number(document.body.getAttribute('data-refreshes') || 0) >= 1",
            Duration::from_secs(20),
        )
        .await;
        let r = row(&mut b, &js).await;
        assert_eq!(text(&r, "name"), name, "{r:?}");
        assert_eq!(text(&r, "account"), NAMES[2].1.trim_matches('"'), "{r:?}");
        // Filtering by a markup name goes through the page's form and URL as text.
        b.eval(&format!(
            "document.querySelector('form.filter select[name=account]').value = {0}; \
             document.querySelector('form.filter select[name=account]').dispatchEvent(new Event('change'))",
            json!(NAMES[2].1.trim_matches('"'))
        ))
        .await;
        b.wait_for(
            "document.getElementById('count').textContent === '1'",
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(b.eval(inert).await, json!(true), "{page}");
    }
    b.assert_no_problems();
    drop(nm);
}
