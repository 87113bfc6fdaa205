//! Owns natsmon's HTTP surface. Routes:
//! - `/metrics`: the latest NATS snapshot, rendered once per poll, plus natsmon's own
//!   registry; OpenMetrics when the scraper asks for it, else Prometheus text 0.0.4. No I/O.
//! - `/healthz`: liveness, always 200 while the process serves.
//! - `/ready`: 200 once any node has been polled successfully, else 503.
//! - `/`, `/streams`, `/consumers`: the console (`crate::console`), server-rendered HTML
//!   refreshed in place by `/console.js` (with `/console.css`, both embedded).
//! - `/api/v1/status`: everything the console shows, as JSON.
//!
//! Optional TLS and bcrypt basic auth (as in Prometheus's web config) cover every route
//! but `/healthz`, so liveness probes need no credentials. Console and API answers carry
//! a Content-Security-Policy that allows no inline script or style and nothing from
//! elsewhere, and `X-Content-Type-Options: nosniff`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use prometheus_client::registry::Registry;

use crate::config::Settings;
use crate::console::Console;
use crate::console::pages::Page;
use crate::console::query::TableQuery;
use crate::exposition::openmetrics_to_prometheus;
use crate::nats::metrics::Metrics;
use crate::nats::snapshot::Store;

pub use self::auth::BasicAuth;

mod auth;
pub mod listener;
mod negotiate;

pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub ready: Arc<AtomicBool>,
    pub settings: Arc<Settings>,
    pub auth: Arc<BasicAuth>,
    pub console: Arc<Console>,
}

pub fn router(state: AppState) -> Router {
    let console = Router::new()
        .route("/", get(overview_page))
        .route("/streams", get(streams_page))
        .route("/consumers", get(consumers_page))
        .route("/api/v1/status", get(status_api))
        .route(
            "/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", crate::console::JS) }),
        )
        .route(
            "/console.css",
            get(|| async { asset("text/css; charset=utf-8", crate::console::CSS) }),
        )
        .layer(middleware::from_fn(console_headers));
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/ready", get(ready))
        .merge(console)
        .route_layer(middleware::from_fn_with_state(state.clone(), require_auth));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(protected)
        .with_state(state)
}

async fn require_auth(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if !s.auth.enabled() || s.auth.check(req.headers()).await {
        return next.run(req).await;
    }
    let mut resp = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"natsmon\""),
    );
    resp
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    s.metrics.scrapes.inc();
    let openmetrics = negotiate::wants_openmetrics(&headers);
    let gzip = negotiate::accepts_gzip(&headers);
    let rendered = s.store.rendered();
    let mut own = String::new();
    // Writing to a String cannot fail.
    prometheus_client::encoding::text::encode_registry(&mut own, &s.registry)
        .expect("encoding to a String");
    let own = if openmetrics {
        own.push_str("# EOF\n");
        own
    } else {
        openmetrics_to_prometheus(&own)
    };
    // The NATS part is shared, not copied: the body streams the cached bytes then ours.
    let (nats, own) = match (gzip, openmetrics) {
        (true, _) => (
            rendered.gzip(openmetrics),
            Bytes::from(crate::gzip::gzip(own.as_bytes())),
        ),
        (false, true) => (rendered.openmetrics.clone(), Bytes::from(own)),
        (false, false) => (rendered.prometheus(), Bytes::from(own)),
    };
    let chunks: Vec<Result<Bytes, std::convert::Infallible>> = vec![Ok(nats), Ok(own)];
    let mut resp = Response::new(Body::from_stream(futures::stream::iter(chunks)));
    let content_type = if openmetrics {
        OPENMETRICS
    } else {
        PROMETHEUS_TEXT
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if gzip {
        resp.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    resp
}

/// Ready once the exporter has polled a node; a shipper-only natsmon is ready once it
/// runs (its own health is on the console and in `natsmon_logs_*`).
async fn ready(State(s): State<AppState>) -> impl IntoResponse {
    if !s.settings.roles.exporter || s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no node polled successfully yet\n",
        )
    }
}

/// The console's security headers: its pages load only natsmon's own script and style,
/// and no answer is ever sniffed into another type.
async fn console_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::console::CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A console answer: its chunks as they are (cached parts shared), gzipped when asked.
fn answer(a: crate::console::Answer, content_type: &'static str) -> Response {
    let gzip = a.gzip;
    let chunks: Vec<Result<Bytes, std::convert::Infallible>> =
        a.chunks.into_iter().map(Ok).collect();
    let mut resp = Response::new(Body::from_stream(futures::stream::iter(chunks)));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

fn page(s: &AppState, headers: &HeaderMap, page: Page, q: &TableQuery) -> Response {
    let a = s.console.page(
        page,
        &s.store,
        &s.settings,
        q,
        negotiate::accepts_gzip(headers),
    );
    answer(a, "text/html; charset=utf-8")
}

async fn overview_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    page(&s, &headers, Page::Overview, &TableQuery::default())
}

async fn streams_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TableQuery>,
) -> Response {
    page(&s, &headers, Page::Streams, &q)
}

async fn consumers_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TableQuery>,
) -> Response {
    page(&s, &headers, Page::Consumers, &q)
}

async fn status_api(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let a = s
        .console
        .status(&s.store, &s.settings, negotiate::accepts_gzip(&headers));
    answer(a, "application/json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use tower::ServiceExt as _;

    /// The real router over a real (empty) store and registry; no socket.
    fn app(users: &[(&str, &str)]) -> Router {
        let settings = crate::config::RawConfig::default().validate().unwrap();
        let mut registry = Registry::default();
        let metrics = Arc::new(Metrics::register(&mut registry));
        let users = users
            .iter()
            .map(|(u, p)| (u.to_string(), bcrypt::hash(p, 4).unwrap()))
            .collect();
        router(AppState {
            store: Arc::new(Store::new(settings.nodes.iter().map(|n| n.name.as_str()))),
            registry: Arc::new(registry),
            metrics,
            ready: Arc::new(AtomicBool::new(false)),
            settings: Arc::new(settings),
            auth: Arc::new(BasicAuth::new(users)),
            console: Arc::new(Console::new(std::time::SystemTime::now(), None)),
        })
    }

    async fn get(
        app: &Router,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::get(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, parts.headers, body.to_vec())
    }

    fn basic(user: &str, pass: &str) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let raw = format!("{user}:{pass}");
        let mut out = String::new();
        for c in raw.as_bytes().chunks(3) {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |a, (i, b)| a | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= c.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        format!("Basic {out}")
    }

    #[tokio::test]
    async fn metrics_negotiate_openmetrics_and_prometheus_text() {
        let app = app(&[]);
        let (st, h, body) = get(
            &app,
            "/metrics",
            &[("accept", "application/openmetrics-text;version=1.0.0")],
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(h[header::CONTENT_TYPE], OPENMETRICS);
        let text = String::from_utf8(body).unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("natsmon_scrapes_total"), "{text}");
        let (st, h, body) = get(&app, "/metrics", &[("accept", "text/plain")]).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(h[header::CONTENT_TYPE], PROMETHEUS_TEXT);
        let text = String::from_utf8(body).unwrap();
        assert!(!text.contains("# EOF"), "{text}");
        assert!(
            text.contains("# TYPE natsmon_scrapes_total counter"),
            "{text}"
        );
        assert_eq!(h[header::VARY], "Accept, Accept-Encoding");
    }

    #[tokio::test]
    async fn metrics_are_gzipped_when_asked() {
        use std::io::Read as _;
        let app = app(&[]);
        let (st, h, body) = get(&app, "/metrics", &[("accept-encoding", "gzip, deflate")]).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(h[header::CONTENT_ENCODING], "gzip");
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&body[..])
            .read_to_string(&mut text)
            .unwrap();
        assert!(
            text.contains("# TYPE natsmon_scrapes_total counter"),
            "{text}"
        );
        let (_, h, body) = get(&app, "/metrics", &[]).await;
        assert!(h.get(header::CONTENT_ENCODING).is_none());
        assert!(
            String::from_utf8(body)
                .unwrap()
                .contains("natsmon_scrapes_total")
        );
    }

    #[tokio::test]
    async fn basic_auth_guards_every_route_but_healthz() {
        let app = app(&[("prom", "s3cret")]);
        for path in [
            "/metrics",
            "/ready",
            "/",
            "/streams",
            "/consumers",
            "/api/v1/status",
            "/console.js",
            "/console.css",
        ] {
            for auth in [
                None,
                Some(basic("prom", "wrong")),
                Some(basic("nobody", "s3cret")),
            ] {
                let h: Vec<(&str, &str)> =
                    auth.iter().map(|a| ("authorization", a.as_str())).collect();
                let (st, headers, body) = get(&app, path, &h).await;
                assert_eq!(st, StatusCode::UNAUTHORIZED, "{path} {auth:?}");
                assert_eq!(headers[header::WWW_AUTHENTICATE], "Basic realm=\"natsmon\"");
                assert!(!String::from_utf8_lossy(&body).contains("natsmon_"));
            }
            let good = basic("prom", "s3cret");
            let (st, _, _) = get(&app, path, &[("authorization", &good)]).await;
            // /ready is 503 until a node was polled; what matters is that auth let it through.
            assert_ne!(st, StatusCode::UNAUTHORIZED, "{path}");
        }
        let (st, _, body) = get(&app, "/healthz", &[]).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(body, b"ok\n");
    }

    #[tokio::test]
    async fn console_and_api_send_csp_and_nosniff() {
        for (path, content_type) in [
            ("/", "text/html; charset=utf-8"),
            ("/streams", "text/html; charset=utf-8"),
            (
                "/consumers?sort=num_pending&dir=desc&account=A&q=x",
                "text/html; charset=utf-8",
            ),
            ("/api/v1/status", "application/json"),
            ("/console.js", "text/javascript; charset=utf-8"),
            ("/console.css", "text/css; charset=utf-8"),
        ] {
            let (st, h, body) = get(&app(&[]), path, &[]).await;
            assert_eq!(st, StatusCode::OK, "{path}");
            assert_eq!(h[header::CONTENT_TYPE], content_type, "{path}");
            assert_eq!(
                h[header::CONTENT_SECURITY_POLICY],
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
                "{path}"
            );
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            assert!(!body.is_empty(), "{path}");
        }
        let (_, _, body) = get(&app(&[]), "/", &[]).await;
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains("<script src=\"/console.js\" defer></script>"));
        assert!(html.contains("<link rel=\"stylesheet\" href=\"/console.css\">"));
    }

    #[tokio::test]
    async fn the_status_api_has_its_documented_shape() {
        let good = basic("prom", "s3cret");
        let app = app(&[("prom", "s3cret")]);
        let (st, _, _) = get(&app, "/api/v1/status", &[]).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let (st, h, body) = get(&app, "/api/v1/status", &[("authorization", &good)]).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        // serde_json's map is ordered by key.
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "accounts",
                "clusters",
                "consumers",
                "generated_at",
                "grafana_url",
                "log_shipping",
                "natsmon",
                "streams",
                "totals"
            ]
        );
        assert_eq!(v["log_shipping"]["enabled"], false);
        assert_eq!(v["natsmon"]["nodes"], 3);
        // Nodes never polled: pending, in the cluster not known yet.
        let nodes = v["clusters"][0]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 3);
        assert!(nodes.iter().all(|n| n["state"] == "pending"), "{nodes:?}");
        assert_eq!(v["streams"], serde_json::json!([]));
    }

    #[tokio::test]
    async fn console_answers_are_gzipped_when_asked() {
        use std::io::Read as _;
        let app = app(&[]);
        for path in ["/", "/streams", "/consumers?q=x", "/api/v1/status"] {
            let (st, h, body) = get(&app, path, &[("accept-encoding", "gzip")]).await;
            assert_eq!(st, StatusCode::OK, "{path}");
            assert_eq!(h[header::CONTENT_ENCODING], "gzip", "{path}");
            assert_eq!(h[header::VARY], "Accept-Encoding", "{path}");
            // One member: decoders that stop after the first one see everything.
            let mut d = flate2::read::GzDecoder::new(&body[..]);
            let mut text = String::new();
            d.read_to_string(&mut text).unwrap();
            assert!(d.into_inner().is_empty(), "{path}: bytes after the member");
            if path.starts_with("/api") {
                serde_json::from_str::<serde_json::Value>(&text).unwrap();
            } else {
                assert!(text.starts_with("<!doctype html>"), "{path}");
                assert!(text.ends_with("</html>\n"), "{path}");
            }
            let (_, h, _) = get(&app, path, &[]).await;
            assert!(h.get(header::CONTENT_ENCODING).is_none(), "{path}");
        }
    }

    #[tokio::test]
    async fn a_query_the_tables_cannot_use_is_a_400() {
        let (st, _, _) = get(&app(&[]), "/streams?account=A&account=B", &[]).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn unknown_paths_are_404() {
        for app in [app(&[]), app(&[("prom", "s3cret")])] {
            for path in ["/nope", "/metrics/x", "/api"] {
                let (st, _, body) = get(&app, path, &[]).await;
                assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
                assert!(body.is_empty() || !String::from_utf8_lossy(&body).contains("natsmon_"));
            }
        }
    }

    #[tokio::test]
    async fn ready_follows_the_first_successful_poll() {
        let settings = crate::config::RawConfig::default().validate().unwrap();
        let mut registry = Registry::default();
        let metrics = Arc::new(Metrics::register(&mut registry));
        let ready = Arc::new(AtomicBool::new(false));
        let app = router(AppState {
            store: Arc::new(Store::new(settings.nodes.iter().map(|n| n.name.as_str()))),
            registry: Arc::new(registry),
            metrics,
            ready: ready.clone(),
            settings: Arc::new(settings),
            auth: Arc::new(BasicAuth::default()),
            console: Arc::new(Console::new(std::time::SystemTime::now(), None)),
        });
        assert_eq!(
            get(&app, "/ready", &[]).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        ready.store(true, Ordering::Relaxed);
        assert_eq!(get(&app, "/ready", &[]).await.0, StatusCode::OK);
    }
}
