//! Owns the HTTP exchange with Loki and the classification of its answers: 2xx accepted;
//! 400 and other client errors rejected for good (Loki keeps the valid part of a request,
//! so a retry would duplicate it); 413 means "split the batch"; 429, 5xx and transport
//! failures are retried for as long as they last.

use std::time::Duration;

use reqwest::StatusCode;

use crate::config::logs::{LogSettings, LokiAuth};
use crate::redact::error_chain;

/// A final answer for a batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// Not retried; the message is Loki's explanation.
    Rejected {
        status: u16,
        message: String,
    },
    TooLarge,
}

/// A failure worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("Loki is rate limiting (HTTP 429)")]
    RateLimited { retry_after: Option<Duration> },
    #[error("Loki answered HTTP {status}: {message}")]
    Server { status: u16, message: String },
    #[error("request to Loki timed out")]
    Timeout,
    #[error("cannot reach Loki: {0}")]
    Connect(String),
}

impl PushError {
    pub fn reason(&self) -> &'static str {
        match self {
            PushError::RateLimited { .. } => "rate_limited",
            PushError::Server { .. } => "server_error",
            PushError::Timeout => "timeout",
            PushError::Connect(_) => "connection",
        }
    }
}

pub struct LokiClient {
    http: reqwest::Client,
    settings: LogSettings,
}

/// Longest Retry-After honoured; a misconfigured proxy must not park us for a day.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

impl LokiClient {
    pub fn new(settings: &LogSettings) -> Result<LokiClient, crate::config::ConfigError> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("natsmon/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &settings.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(ca).map_err(|e| {
                crate::config::ConfigError::Tls(format!("Loki CA bundle: {}", e.without_url()))
            })? {
                b = b.add_root_certificate(cert);
            }
        }
        let http = b
            .build()
            .map_err(|e| crate::config::ConfigError::Tls(e.without_url().to_string()))?;
        Ok(LokiClient {
            http,
            settings: settings.clone(),
        })
    }

    /// Adds the tenant and credentials every request to Loki carries.
    fn authorize(&self, mut req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(t) = &self.settings.tenant {
            req = req.header("X-Scope-OrgID", t);
        }
        match &self.settings.auth {
            LokiAuth::None => req,
            LokiAuth::Basic { user, password } => req.basic_auth(user, Some(password)),
            LokiAuth::Bearer(token) => req.bearer_auth(token),
        }
    }

    /// Asks Loki's `/ready`, so that reachability is known before the first push.
    pub async fn ready(&self) -> bool {
        let base = self.settings.push_url.trim_end_matches("/loki/api/v1/push");
        let req = self.authorize(self.http.get(format!("{base}/ready")));
        matches!(req.send().await, Ok(r) if r.status().is_success())
    }

    pub async fn push(&self, body: Vec<u8>) -> Result<Outcome, PushError> {
        let req = self
            .http
            .post(&self.settings.push_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                super::wire::content_type(self.settings.format),
            )
            .body(body);
        let resp = self.authorize(req).send().await.map_err(|e| {
            let e = e.without_url();
            if e.is_timeout() {
                PushError::Timeout
            } else {
                PushError::Connect(error_chain(&e))
            }
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(Outcome::Accepted);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        let message = resp.text().await.unwrap_or_default();
        let message = message.trim().chars().take(1000).collect::<String>();
        match status {
            StatusCode::TOO_MANY_REQUESTS => Err(PushError::RateLimited { retry_after }),
            StatusCode::PAYLOAD_TOO_LARGE => Ok(Outcome::TooLarge),
            s if s.is_server_error() => Err(PushError::Server {
                status: s.as_u16(),
                message,
            }),
            s => Ok(Outcome::Rejected {
                status: s.as_u16(),
                message,
            }),
        }
    }
}
