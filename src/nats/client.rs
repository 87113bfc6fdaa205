//! Owns all HTTP I/O towards NATS monitoring ports: one reqwest client with the TLS
//! settings, a per-request timeout covering the whole exchange, a cap on each body and a
//! memory budget shared by all bodies, gzip decoding, redirects kept on the node, and
//! decoding into an endpoint's types. Errors are stripped of URLs before they leave.
//!
//! Memory: a body may hold at most `max_body` bytes (decompressed bytes, for gzip), and
//! all bodies in flight, across every node and endpoint, share a budget of
//! `BUDGET_FACTOR × max_body` bytes. A body buffer takes budget for its capacity before it
//! grows (as chunks arrive) and gives it back when the body is decoded or dropped, so
//! natsmon's body memory stays near that budget however many nodes send huge bodies at
//! once. A body fails with `reason="memory"` when it cannot get its first budget within
//! the poll timeout, or cannot grow while the budget is taken (see `Buffer`). The values
//! decoded from a body are not counted: they are built after the body is complete and are
//! of the order of its size.
//!
//! Redirects are followed only within the node's own scheme, host and port: data from
//! another host must never be shown as the node's, and credentials must not follow it.

use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{CONTENT_ENCODING, LOCATION};
use serde::de::DeserializeOwned;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::PollError;
use crate::config::{NatsTls, Node};
use crate::redact::error_chain;

/// All bodies in flight share this many times `max_body` bytes: one body at its cap and
/// its gzip-compressed form fit, and so do many ordinary bodies.
pub const BUDGET_FACTOR: usize = 2;

/// Redirects followed within a node before giving up (reqwest's own default).
const MAX_REDIRECTS: usize = 10;

/// First capacity of a body of unknown length; it doubles from there up to the cap.
const INITIAL_CAPACITY: usize = 16 * 1024;

/// Decompressed bytes taken from the decoder at a time.
const INFLATE_STEP: usize = 64 * 1024;

#[derive(Clone)]
pub struct NatsClient {
    http: reqwest::Client,
    timeout: Duration,
    max_body: usize,
    budget: Arc<Semaphore>,
    budget_bytes: usize,
}

/// A decoded response and how many body bytes it took on the wire.
pub struct Fetched<T> {
    pub value: T,
    pub bytes: usize,
}

/// `scheme://host:port` of a URL: what identifies a node, and all of a URL that may be
/// shown (userinfo, path and query may carry secrets).
fn origin(u: &Url) -> String {
    let host = u.host_str().unwrap_or_default();
    match u.port_or_known_default() {
        Some(p) => format!("{}://{host}:{p}", u.scheme()),
        None => format!("{}://{host}", u.scheme()),
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Follows a redirect only within the node that was asked; otherwise reqwest hands back
/// the 3xx response, which `get_body` turns into `PollError::Redirect`.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let within = attempt
            .previous()
            .first()
            .is_some_and(|first| same_origin(first, attempt.url()));
        // `previous` starts with the original request, which is not a redirect.
        if within && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// A body buffer whose capacity is paid for from the shared budget.
///
/// Only a buffer that holds no budget yet may wait for it (`may_wait`, first
/// reservation); one that holds some and cannot grow at once fails with
/// `PollError::Memory`, giving back what it holds. Bodies therefore never wait on each
/// other while holding memory: no set of bodies can stall one another until the
/// timeout, and a small body of a healthy node waits only for budget that is being
/// released.
struct Buffer<'a> {
    data: Vec<u8>,
    held: usize,
    permit: Option<SemaphorePermit<'a>>,
    client: &'a NatsClient,
    /// False when the request already holds budget elsewhere (gzip's compressed body).
    may_wait: bool,
}

impl<'a> Buffer<'a> {
    fn new(client: &'a NatsClient, may_wait: bool) -> Buffer<'a> {
        Buffer {
            data: Vec::new(),
            held: 0,
            permit: None,
            client,
            may_wait,
        }
    }

    /// Appends `bytes`, growing the capacity (and the budget held) when needed.
    async fn extend(&mut self, bytes: &[u8], waiting: &AtomicBool) -> Result<(), PollError> {
        let max = self.client.max_body;
        let need = self.data.len() + bytes.len();
        if need > max {
            return Err(PollError::TooLarge { limit: max });
        }
        if need > self.held {
            let cap = need
                .max(self.held.saturating_mul(2))
                .max(INITIAL_CAPACITY)
                .min(max);
            self.reserve(cap, waiting).await?;
        }
        self.data.extend_from_slice(bytes);
        Ok(())
    }

    /// Takes budget for a capacity of `cap` bytes, then allocates it. `waiting` is set
    /// while the buffer waits, so that a timeout then is reported as a memory shortage
    /// rather than a slow node.
    async fn reserve(&mut self, cap: usize, waiting: &AtomicBool) -> Result<(), PollError> {
        let c = self.client;
        let cap = cap.min(c.max_body);
        if cap <= self.held {
            return Ok(());
        }
        let short = || PollError::Memory {
            budget: c.budget_bytes,
        };
        // `cap` is at most max_body, which configuration bounds to 1 GiB.
        let more = u32::try_from(cap - self.held).map_err(|_| short())?;
        let permit = match &mut self.permit {
            None if self.may_wait => {
                waiting.store(true, Ordering::Relaxed);
                let p = c.budget.acquire_many(more).await;
                waiting.store(false, Ordering::Relaxed);
                // The semaphore is never closed.
                p.map_err(|_| short())?
            }
            _ => c.budget.try_acquire_many(more).map_err(|_| short())?,
        };
        match &mut self.permit {
            Some(p) => p.merge(permit),
            None => self.permit = Some(permit),
        }
        self.held = cap;
        self.data.reserve_exact(cap - self.data.len());
        Ok(())
    }
}

/// How the body of a response is encoded.
enum Encoding {
    Identity,
    Gzip,
}

fn encoding(resp: &reqwest::Response) -> Result<Encoding, PollError> {
    let Some(v) = resp.headers().get(CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let v = v.to_str().unwrap_or("?").trim().to_ascii_lowercase();
    match v.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        _ => Err(PollError::Encoding(format!(
            "unsupported Content-Encoding {v:?}"
        ))),
    }
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
            .redirect(redirect_policy())
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
        let budget_bytes = max_body
            .saturating_mul(BUDGET_FACTOR)
            .min(Semaphore::MAX_PERMITS);
        Ok(NatsClient {
            http,
            timeout,
            max_body,
            budget: Arc::new(Semaphore::new(budget_bytes)),
            budget_bytes,
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
        let waiting = AtomicBool::new(false);
        let fetch = self.get_body(node, path, ok_statuses, &waiting);
        let (body, bytes) = match tokio::time::timeout(self.timeout, fetch).await {
            Ok(r) => r?,
            Err(_) if waiting.load(Ordering::Relaxed) => {
                return Err(PollError::Memory {
                    budget: self.budget_bytes,
                });
            }
            Err(_) => return Err(PollError::Timeout(self.timeout)),
        };
        let value =
            serde_json::from_slice(&body.data).map_err(|e| PollError::Decode(e.to_string()))?;
        Ok(Fetched { value, bytes })
    }

    /// The (decompressed) body and the number of bytes read from the wire.
    async fn get_body(
        &self,
        node: &Node,
        path: &str,
        ok_statuses: &[u16],
        waiting: &AtomicBool,
    ) -> Result<(Buffer<'_>, usize), PollError> {
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
        if resp.status().is_redirection() {
            return Err(redirect_error(&resp));
        }
        if !resp.status().is_success() && !ok_statuses.contains(&status) {
            return Err(PollError::Status(status));
        }
        let enc = encoding(&resp)?;
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(PollError::TooLarge {
                limit: self.max_body,
            });
        }
        let mut wire = Buffer::new(self, true);
        if let Some(n) = resp.content_length() {
            // Bounded by max_body just above.
            wire.reserve(n as usize, waiting).await?;
        }
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| PollError::Body(error_chain(&e.without_url())))?
        {
            wire.extend(&chunk, waiting).await?;
        }
        let bytes = wire.data.len();
        let body = match enc {
            Encoding::Identity => wire,
            Encoding::Gzip => self.gunzip(wire, waiting).await?,
        };
        Ok((body, bytes))
    }

    /// Inflates a gzip body into a second buffer under the same cap and budget; the
    /// compressed one is released when done.
    async fn gunzip<'a>(
        &'a self,
        compressed: Buffer<'a>,
        waiting: &AtomicBool,
    ) -> Result<Buffer<'a>, PollError> {
        let mut out = Buffer::new(self, false);
        let mut decoder = flate2::read::MultiGzDecoder::new(&compressed.data[..]);
        let mut step = vec![0u8; INFLATE_STEP];
        loop {
            let n = decoder
                .read(&mut step)
                .map_err(|e| PollError::Encoding(format!("gzip: {e}")))?;
            if n == 0 {
                break;
            }
            out.extend(&step[..n], waiting).await?;
        }
        Ok(out)
    }
}

/// A 3xx that the policy did not follow: it leaves the node, loops, or says nowhere.
fn redirect_error(resp: &reqwest::Response) -> PollError {
    let target = resp
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| resp.url().join(l).ok());
    match target {
        Some(t) if same_origin(&t, resp.url()) => PollError::Redirect {
            target: origin(&t),
            why: "too many redirects",
        },
        Some(t) => PollError::Redirect {
            target: origin(&t),
            why: "it leaves the node",
        },
        None => PollError::Redirect {
            target: "nowhere".into(),
            why: "no valid Location",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_drops_credentials_path_and_query() {
        let u = Url::parse("http://spy:secret@10.0.0.9:8222/varz?token=abc").unwrap();
        assert_eq!(origin(&u), "http://10.0.0.9:8222");
        let v6 = Url::parse("https://[::1]/varz").unwrap();
        assert_eq!(origin(&v6), "https://[::1]:443");
    }

    #[test]
    fn same_origin_needs_scheme_host_and_port() {
        let a = Url::parse("http://h:8222/varz").unwrap();
        assert!(same_origin(
            &a,
            &Url::parse("http://h:8222/other?x=1").unwrap()
        ));
        assert!(!same_origin(&a, &Url::parse("http://h:8223/varz").unwrap()));
        assert!(!same_origin(&a, &Url::parse("http://g:8222/varz").unwrap()));
        assert!(!same_origin(
            &a,
            &Url::parse("https://h:8222/varz").unwrap()
        ));
    }

    fn client(max_body: usize) -> NatsClient {
        NatsClient::new(&NatsTls::default(), Duration::from_secs(1), max_body).unwrap()
    }

    #[tokio::test]
    async fn buffers_pay_for_their_capacity_and_give_it_back() {
        let c = client(100 * 1024);
        let waiting = AtomicBool::new(false);
        let budget = c.budget.available_permits();
        assert_eq!(budget, 200 * 1024);
        {
            let mut b = Buffer::new(&c, true);
            b.extend(&[b'x'; 1000], &waiting).await.unwrap();
            assert_eq!(b.held, INITIAL_CAPACITY);
            b.extend(&[b'x'; 20 * 1024], &waiting).await.unwrap();
            assert_eq!(b.held, 2 * INITIAL_CAPACITY);
            assert!(b.data.capacity() >= b.data.len());
            assert_eq!(c.budget.available_permits(), budget - b.held);
            let too_much = vec![b'x'; 100 * 1024];
            assert!(matches!(
                b.extend(&too_much, &waiting).await,
                Err(PollError::TooLarge { .. })
            ));
        }
        assert_eq!(c.budget.available_permits(), budget);
    }

    #[tokio::test]
    async fn only_a_buffer_that_holds_nothing_waits_for_budget() {
        let c = client(64 * 1024);
        let waiting = AtomicBool::new(false);
        let mut a = Buffer::new(&c, true);
        a.reserve(64 * 1024, &waiting).await.unwrap();
        let mut b = Buffer::new(&c, true);
        b.reserve(48 * 1024, &waiting).await.unwrap();
        let mut x = Buffer::new(&c, true);
        x.reserve(16 * 1024, &waiting).await.unwrap();
        assert_eq!(c.budget.available_permits(), 0);
        // Growing while holding budget: fail at once rather than wait on the others.
        assert!(matches!(
            b.extend(&[b'x'; 50 * 1024], &waiting).await,
            Err(PollError::Memory { .. })
        ));
        // A new body waits, and says it waits for memory.
        let mut third = Buffer::new(&c, true);
        let r =
            tokio::time::timeout(Duration::from_millis(50), third.extend(b"{}", &waiting)).await;
        assert!(r.is_err(), "no budget left");
        assert!(waiting.load(Ordering::Relaxed), "the wait is for memory");
        // ... unless the request already holds budget elsewhere.
        let mut inflated = Buffer::new(&c, false);
        assert!(matches!(
            inflated.extend(b"{}", &waiting).await,
            Err(PollError::Memory { .. })
        ));
        drop((a, b, x));
        let mut fourth = Buffer::new(&c, true);
        fourth.extend(b"{}", &waiting).await.unwrap();
    }
}
