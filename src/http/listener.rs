//! Owns natsmon's listening socket: binding (before anything else starts), TLS, a bound
//! on open connections, header-read and idle timeouts, and a shutdown that keeps to the
//! grace period whatever the clients do. A client that sends half a request, or a few
//! hundred that hold connections open, can neither stop natsmon from shutting down nor
//! exhaust its file descriptors.

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::{Accept, DefaultAcceptor};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// A client must send a request's headers within this time, and an idle keep-alive
/// connection is closed after it: scrapers reconnect cheaply, slow clients do not pile up.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {addr}: {error}")]
    Bind { addr: SocketAddr, error: io::Error },
    #[error("web TLS certificate or key: {0}")]
    Tls(io::Error),
}

/// A bound socket, ready to serve.
pub struct Listener {
    socket: std::net::TcpListener,
    tls: Option<RustlsConfig>,
    max_connections: usize,
}

impl Listener {
    /// Binds `addr` now, so that a busy address fails before any node is polled.
    pub async fn bind(
        addr: SocketAddr,
        tls: Option<&(std::path::PathBuf, std::path::PathBuf)>,
    ) -> Result<Listener, ListenError> {
        let tls = match tls {
            Some((cert, key)) => Some(
                RustlsConfig::from_pem_file(cert, key)
                    .await
                    .map_err(ListenError::Tls)?,
            ),
            None => None,
        };
        let bind_err = |error| ListenError::Bind { addr, error };
        let socket = std::net::TcpListener::bind(addr).map_err(bind_err)?;
        socket.set_nonblocking(true).map_err(bind_err)?;
        Ok(Listener {
            socket,
            tls,
            max_connections: max_connections(open_files_limit()),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Serves `app` until `token` is cancelled, then lets requests in flight finish for
    /// at most `grace`; connections still open after it are closed.
    pub async fn serve(
        self,
        app: axum::Router,
        grace: Duration,
        tracker: &TaskTracker,
        token: &CancellationToken,
    ) -> io::Result<()> {
        let addr = self.local_addr()?;
        let handle = axum_server::Handle::new();
        let h = handle.clone();
        let t = token.clone();
        tracker.spawn(async move {
            t.cancelled().await;
            h.graceful_shutdown(Some(grace));
        });
        let limit = Limit {
            slots: Arc::new(Semaphore::new(self.max_connections)),
        };
        info!(addr = %addr, tls = self.tls.is_some(), max_connections = self.max_connections, "Serving metrics.");
        match self.tls {
            None => {
                let mut server = axum_server::from_tcp(self.socket)?
                    .acceptor(limit)
                    .handle(handle);
                tune(server.http_builder());
                server.serve(app.into_make_service()).await
            }
            Some(tls) => {
                let acceptor = RustlsAcceptor::new(tls)
                    .handshake_timeout(HEADER_READ_TIMEOUT)
                    .acceptor(limit);
                let mut server = axum_server::from_tcp(self.socket)?
                    .acceptor(acceptor)
                    .handle(handle);
                tune(server.http_builder());
                server.serve(app.into_make_service()).await
            }
        }
    }
}

fn tune(b: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>) {
    b.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    b.http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Some(HEADER_READ_TIMEOUT))
        .keep_alive_timeout(HEADER_READ_TIMEOUT)
        .max_concurrent_streams(32);
}

/// Half the process's file descriptors go to clients, the rest stay for polling NATS,
/// Docker, Loki and checkpoints; never fewer than 8 or more than 1,024 connections.
fn max_connections(open_files: Option<u64>) -> usize {
    let n = open_files.unwrap_or(1024) / 2;
    n.clamp(8, 1024) as usize
}

/// The soft `RLIMIT_NOFILE`, read from `/proc/self/limits` (no unsafe `getrlimit`).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Closes connections beyond the bound at once instead of letting them hold descriptors.
#[derive(Clone)]
struct Limit {
    slots: Arc<Semaphore>,
}

impl<I, S> Accept<I, S> for Limit
where
    I: Send + 'static,
    S: Send + 'static,
{
    type Stream = Counted<I>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Counted<I>, S)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let r = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => DefaultAcceptor
                .accept(stream, service)
                .into_inner()
                .map(|(stream, s)| (Counted::new(stream, permit), s)),
            Err(_) => {
                warn_full_once();
                Err(io::Error::other("connection limit reached"))
            }
        };
        std::future::ready(r)
    }
}

/// One WARN per minute at most while clients are being turned away.
fn warn_full_once() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = crate::time::unix_now_secs() as u64;
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + 60
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        warn!("Connection limit reached; closing new connections until clients leave.");
    }
}

/// A connection holding one of the bounded slots until it closes, and closed when
/// nothing has moved either way for `HEADER_READ_TIMEOUT`. hyper's own header timeout
/// starts only once it knows the protocol, and a client that connects and says nothing
/// never lets it get that far.
struct Counted<I> {
    inner: I,
    idle: Pin<Box<tokio::time::Sleep>>,
    _permit: OwnedSemaphorePermit,
}

impl<I> Counted<I> {
    fn new(inner: I, permit: OwnedSemaphorePermit) -> Counted<I> {
        Counted {
            inner,
            idle: Box::pin(tokio::time::sleep(HEADER_READ_TIMEOUT)),
            _permit: permit,
        }
    }

    fn progressed(&mut self) {
        self.idle
            .as_mut()
            .reset(tokio::time::Instant::now() + HEADER_READ_TIMEOUT);
    }

    /// When the inner stream is pending: an error once the connection has been idle too long.
    fn check_idle<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.idle.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "idle connection",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.progressed();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.check_idle(cx),
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.progressed();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.check_idle(cx),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_bound_follows_the_file_limit() {
        assert_eq!(max_connections(Some(128)), 64);
        assert_eq!(max_connections(Some(10)), 8);
        assert_eq!(max_connections(Some(1 << 20)), 1024);
        assert_eq!(max_connections(None), 512);
        assert!(open_files_limit().is_some_and(|n| n > 0));
    }
}
