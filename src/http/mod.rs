//! Owns natsmon's HTTP surface. Routes:
//! - `/metrics`: the latest NATS snapshot, rendered once per poll, plus natsmon's own
//!   registry; OpenMetrics when the scraper asks for it, else Prometheus text 0.0.4. No I/O.
//! - `/healthz`: liveness, always 200 while the process serves.
//! - `/ready`: 200 once any node has been polled successfully, else 503.
//! - `/`: a status page with each node's last poll result, error and age.
//!
//! Optional TLS and bcrypt basic auth (as in Prometheus's web config) cover every route
//! but `/healthz`, so liveness probes need no credentials.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use prometheus_client::registry::Registry;

use crate::config::Settings;
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
}

pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/ready", get(ready))
        .route("/", get(status_page))
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

async fn ready(State(s): State<AppState>) -> impl IntoResponse {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no node polled successfully yet\n",
        )
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn status_page(State(s): State<AppState>) -> Html<String> {
    let now = SystemTime::now();
    let age = |t: Option<SystemTime>| match t.and_then(|t| now.duration_since(t).ok()) {
        Some(d) => format!("{:.1}s ago", d.as_secs_f64()),
        None => "never".to_string(),
    };
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>natsmon</title>\
         <style>body{font-family:sans-serif}td,th{padding:4px 10px;text-align:left;vertical-align:top}\
         .up{color:#080}.down{color:#b00}</style></head><body><h1>natsmon</h1>",
    );
    let _ = write!(
        h,
        "<p>Polling {} node(s) every {:?} (timeout {:?}). <a href=\"/metrics\">/metrics</a></p>\
         <table><tr><th>node</th><th>URL</th><th>status</th><th>server</th><th>last poll</th>\
         <th>poll took</th><th>last success</th><th>errors</th></tr>",
        s.settings.nodes.len(),
        s.settings.poll_interval,
        s.settings.poll_timeout
    );
    let statuses = s.store.nodes();
    for node in &s.settings.nodes {
        let Some(st) = statuses.get(&node.name) else {
            continue;
        };
        let p = &st.poll;
        let status = match (p.finished_at, p.up()) {
            (None, _) => "<span>pending</span>",
            (Some(_), true) => "<span class=\"up\">up</span>",
            (Some(_), false) => "<span class=\"down\">down</span>",
        };
        let server = p
            .varz
            .as_ref()
            .map(|v| format!("{} {}", v.name(), v.version))
            .unwrap_or_default();
        let errors: Vec<String> = p
            .errors
            .iter()
            .map(|(e, msg)| format!("<b>{e}</b>: {}", escape_html(msg)))
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{status}</td><td>{}</td><td>{}</td><td>{:.0} ms</td><td>{}</td><td>{}</td></tr>",
            escape_html(&node.name),
            escape_html(&node.display),
            escape_html(&server),
            age(p.finished_at),
            p.duration.as_secs_f64() * 1000.0,
            age(st.last_success),
            if errors.is_empty() {
                "none".to_string()
            } else {
                errors.join("<br>")
            },
        );
    }
    h.push_str("</table></body></html>\n");
    Html(h)
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
        for path in ["/metrics", "/ready", "/"] {
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
        });
        assert_eq!(
            get(&app, "/ready", &[]).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        ready.store(true, Ordering::Relaxed);
        assert_eq!(get(&app, "/ready", &[]).await.0, StatusCode::OK);
    }
}
