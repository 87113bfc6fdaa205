//! A unix-socket proxy in front of dockerd's real socket that injects a fault: it lets
//! every request through, but cuts each container's FIRST `/containers/{id}/logs`
//! connection a fixed time after that request was forwarded.
//!
//! natsmon talks to it with `--docker-host <DockerProxy::url()>`. The proxy reads the
//! client-to-dockerd direction as a sequence of HTTP/1.1 request heads (with
//! `Content-Length` bodies skipped), so a logs request is recognised also on a pooled
//! connection that carried other requests before.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use super::docker::{docker_host, unique_name};

/// One cut connection.
#[derive(Debug, Clone)]
pub struct Cut {
    /// The container id or name as it appears in the request path.
    pub container: String,
    /// The request line of the logs request.
    pub request_line: String,
}

#[derive(Default)]
struct State {
    /// Containers whose first logs connection was already seen.
    seen: HashSet<String>,
    cuts: Vec<Cut>,
    /// Every request line forwarded, for failure messages.
    requests: Vec<String>,
}

/// The proxy; stops serving (and closes its connections) on drop.
pub struct DockerProxy {
    path: PathBuf,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl DockerProxy {
    /// Listens on a fresh socket under `/tmp`, forwarding to the socket of
    /// [`docker_host`]; cuts each container's first logs connection `cut_after` after
    /// its request was forwarded.
    pub fn start(cut_after: Duration) -> DockerProxy {
        let upstream = docker_host();
        let upstream = PathBuf::from(upstream.strip_prefix("unix://").unwrap_or_else(|| {
            panic!("the docker proxy needs a unix:// DOCKER_HOST, not {upstream}")
        }));
        let path = PathBuf::from(format!("/tmp/{}.sock", unique_name("natsmon-dproxy")));
        let listener =
            UnixListener::bind(&path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                conns.spawn(proxy_conn(client, upstream.clone(), st.clone(), cut_after));
                while conns.try_join_next().is_some() {}
            }
        });
        DockerProxy { path, state, task }
    }

    /// `unix:///tmp/...sock`, for `--docker-host`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// The connections cut so far.
    pub fn cuts(&self) -> Vec<Cut> {
        lock(&self.state).cuts.clone()
    }

    /// Every request line forwarded so far.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state).requests.clone()
    }
}

impl Drop for DockerProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops the JoinSet, which aborts every connection.
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The container of a `GET /[v1.xx/]containers/{id}/logs?...` request line.
fn logs_container(request_line: &str) -> Option<String> {
    let target = request_line.split(' ').nth(1)?;
    let path = target.split('?').next()?;
    let mut parts = path.trim_start_matches('/').split('/');
    let mut first = parts.next()?;
    if first.starts_with('v') && first[1..].chars().all(|c| c.is_ascii_digit() || c == '.') {
        first = parts.next()?;
    }
    match (first, parts.next(), parts.next(), parts.next()) {
        ("containers", Some(id), Some("logs"), None) if !id.is_empty() => Some(id.to_string()),
        _ => None,
    }
}

async fn proxy_conn(
    client: UnixStream,
    upstream: PathBuf,
    state: Arc<Mutex<State>>,
    cut_after: Duration,
) {
    let Ok(server) = UnixStream::connect(&upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let (cut_tx, cut_rx) = tokio::sync::oneshot::channel::<()>();
    let to_server = async move {
        let mut cut_tx = Some(cut_tx);
        // Bytes of the current request head, or of a body still to skip.
        let mut head: Vec<u8> = Vec::new();
        let mut body_left = 0usize;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
            let mut data = &buf[..n];
            while !data.is_empty() {
                if body_left > 0 {
                    let k = body_left.min(data.len());
                    body_left -= k;
                    data = &data[k..];
                    continue;
                }
                head.push(data[0]);
                data = &data[1..];
                if !head.ends_with(b"\r\n\r\n") {
                    continue;
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                head.clear();
                let text = text.trim_start_matches(['\r', '\n']);
                let request_line = text.lines().next().unwrap_or("").to_string();
                body_left = text
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut st = lock(&state);
                st.requests.push(request_line.clone());
                if let Some(container) = logs_container(&request_line)
                    && st.seen.insert(container.clone())
                    && let Some(tx) = cut_tx.take()
                {
                    st.cuts.push(Cut {
                        container,
                        request_line,
                    });
                    tokio::spawn(async move {
                        tokio::time::sleep(cut_after).await;
                        let _ = tx.send(());
                    });
                }
            }
        }
    };
    let to_client = async move {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
    };
    // Whichever ends first (or the cut) closes both sockets.
    tokio::select! {
        _ = to_server => {}
        _ = to_client => {}
        _ = async { if cut_rx.await.is_err() { std::future::pending::<()>().await } } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::logs_container;

    #[test]
    fn recognises_logs_requests() {
        assert_eq!(
            logs_container("GET /v1.41/containers/abc123/logs?follow=true&stdout=true HTTP/1.1"),
            Some("abc123".into())
        );
        assert_eq!(
            logs_container("GET /containers/abc/logs HTTP/1.1"),
            Some("abc".into())
        );
        assert_eq!(
            logs_container("GET /v1.41/containers/json?all=true HTTP/1.1"),
            None
        );
        assert_eq!(
            logs_container("GET /v1.41/containers/abc/json HTTP/1.1"),
            None
        );
        assert_eq!(logs_container("GET /v1.41/events HTTP/1.1"), None);
    }
}
