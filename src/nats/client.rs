//! Owns all HTTP I/O towards NATS monitoring ports: one reqwest client with the TLS
//! settings, a per-request timeout covering the whole exchange, a cap on body size, and
//! decoding into an endpoint's types. Errors are stripped of URLs before they leave.

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::PollError;
use crate::config::{NatsTls, Node};
use crate::redact::error_chain;

#[derive(Clone)]
pub struct NatsClient {
    http: reqwest::Client,
    timeout: Duration,
    max_body: usize,
}

/// A decoded response and how many body bytes it took.
pub struct Fetched<T> {
    pub value: T,
    pub bytes: usize,
}

impl NatsClient {
    pub fn new(
        tls: &NatsTls,
        timeout: Duration,
        max_body: usize,
    ) -> Result<NatsClient, crate::config::ConfigError> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("natsmon/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &tls.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(ca).map_err(|e| {
                crate::config::ConfigError::Tls(format!("CA bundle: {}", e.without_url()))
            })? {
                b = b.add_root_certificate(cert);
            }
        }
        if let Some(identity) = &tls.identity_pem {
            let id = reqwest::Identity::from_pem(identity).map_err(|e| {
                crate::config::ConfigError::Tls(format!("client certificate: {}", e.without_url()))
            })?;
            b = b.identity(id);
        }
        if tls.insecure_skip_verify {
            b = b.danger_accept_invalid_certs(true);
        }
        let http = b
            .build()
            .map_err(|e| crate::config::ConfigError::Tls(e.without_url().to_string()))?;
        Ok(NatsClient {
            http,
            timeout,
            max_body,
        })
    }

    /// GETs `path` from the node and decodes it. `ok_statuses` lists non-2xx statuses whose
    /// body is still a valid answer (`/healthz` says 503 when unhealthy).
    pub async fn get<T: DeserializeOwned>(
        &self,
        node: &Node,
        path: &str,
        ok_statuses: &[u16],
    ) -> Result<Fetched<T>, PollError> {
        let body = match tokio::time::timeout(self.timeout, self.get_body(node, path, ok_statuses))
            .await
        {
            Ok(r) => r?,
            Err(_) => return Err(PollError::Timeout(self.timeout)),
        };
        let bytes = body.len();
        let value = serde_json::from_slice(&body).map_err(|e| PollError::Decode(e.to_string()))?;
        Ok(Fetched { value, bytes })
    }

    async fn get_body(
        &self,
        node: &Node,
        path: &str,
        ok_statuses: &[u16],
    ) -> Result<Vec<u8>, PollError> {
        let url = node.url_for(path);
        let mut req = self.http.get(url);
        if let Some((user, pass)) = &node.basic_auth {
            req = req.basic_auth(user, Some(pass));
        }
        let mut resp = req.send().await.map_err(|e| {
            let e = e.without_url();
            if e.is_timeout() {
                PollError::Timeout(self.timeout)
            } else if e.is_connect() {
                PollError::Connect(error_chain(&e))
            } else {
                let chain = error_chain(&e);
                // hyper's IncompleteMessage: the peer accepted and hung up without answering.
                if chain.contains("connection closed before message completed") {
                    PollError::Closed(chain)
                } else {
                    PollError::Request(chain)
                }
            }
        })?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() && !ok_statuses.contains(&status) {
            return Err(PollError::Status(status));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(PollError::TooLarge {
                limit: self.max_body,
            });
        }
        let mut body = Vec::with_capacity(
            resp.content_length()
                .unwrap_or(16 * 1024)
                .min(self.max_body as u64) as usize,
        );
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| PollError::Body(error_chain(&e.without_url())))?
        {
            if body.len() + chunk.len() > self.max_body {
                return Err(PollError::TooLarge {
                    limit: self.max_body,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
