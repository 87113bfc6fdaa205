//! Plain HTTP helpers: reqwest with short timeouts, and a raw HTTP/1.1 GET that sends
//! exactly the headers given.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A reqwest client with short timeouts, for tests.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("build reqwest client")
}

/// GET `url` and return (status, body). Errors are returned as `Err(String)`.
pub async fn http_get(url: &str) -> Result<(u16, String), String> {
    let resp = http_client()
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .text()
        .await
        .map_err(|e| format!("GET {url} body: {e}"))?;
    Ok((status, body))
}

/// GET `url` and parse JSON; panics on any error or non-200 status.
pub async fn get_json(url: &str) -> serde_json::Value {
    let (status, body) = http_get(url).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200, "GET {url} returned {status}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: bad JSON ({e}): {body}"))
}

/// A raw HTTP response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Minimal HTTP/1.1 GET over a plain TCP socket that sends exactly the
/// headers given (plus Host and `Connection: close`) — in particular NO
/// `Accept` header unless you pass one. reqwest always adds `Accept: */*`,
/// which is why this exists. Only `http://host:port/path` URLs are supported.
pub async fn raw_get(url: &str, extra_headers: &[(&str, &str)]) -> Result<RawResponse, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("raw_get supports only http:// URLs, got {url}"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let fut = async {
        let mut stream = tokio::net::TcpStream::connect(hostport)
            .await
            .map_err(|e| format!("connect {hostport}: {e}"))?;
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n");
        for (k, v) in extra_headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write to {hostport}: {e}"))?;
        let mut buf = Vec::new();
        stream
            .read_to_end(&mut buf)
            .await
            .map_err(|e| format!("read from {hostport}: {e}"))?;
        Ok::<Vec<u8>, String>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| format!("GET {url}: timed out"))??;
    parse_http_response(&buf).map_err(|e| format!("GET {url}: {e}"))
}

fn parse_http_response(buf: &[u8]) -> Result<RawResponse, String> {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers in response")?;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut body = buf[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty response")?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    } else if let Some((_, cl)) = headers.iter().find(|(k, _)| k == "content-length") {
        let n: usize = cl.parse().map_err(|_| format!("bad content-length {cl}"))?;
        if body.len() < n {
            return Err(format!("short body: {} < {n}", body.len()));
        }
        body.truncate(n);
    }
    Ok(RawResponse {
        status,
        headers,
        body: String::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let nl = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk header")?;
        let size_str = String::from_utf8_lossy(&data[..nl]);
        let size_str = size_str.split(';').next().unwrap_or("").trim().to_string();
        let size = usize::from_str_radix(&size_str, 16)
            .map_err(|_| format!("bad chunk size {size_str:?}"))?;
        data = &data[nl + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// GETs `url` until it answers 200 or `timeout` elapses; returns the body. Panics with
/// the last answer or error on timeout.
pub async fn wait_http_ok(url: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut last: String;
    loop {
        match http_get(url).await {
            Ok((200, body)) => return body,
            Ok((code, body)) => last = format!("HTTP {code}: {body}"),
            Err(e) => last = e,
        }
        assert!(
            Instant::now() < deadline,
            "GET {url} not OK after {timeout:?}: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_chunked() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let r = parse_http_response(raw).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "hello world");
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
    }
}
