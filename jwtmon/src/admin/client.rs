//! The CLI's side of the admin API: one blocking HTTP/1.1 request over the
//! Unix socket (the response parsed with httparse). `NotRunning` tells the
//! caller to fall back to the pinned maps.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use serde_json::Value;

/// Why a call did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("no daemon answers on {0}")]
    NotRunning(String),
    /// The connection broke or the answer was not HTTP/JSON.
    #[error("admin API: {0}")]
    Protocol(String),
}

/// Most response bytes read.
const MAX_RESPONSE: usize = 64 << 20;

/// Sends `METHOD PATH` with an optional JSON body; returns the status and
/// the JSON answer.
pub fn call(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), ClientError> {
    let mut s = UnixStream::connect(socket)
        .map_err(|_| ClientError::NotRunning(socket.display().to_string()))?;
    let proto = |e: std::io::Error| ClientError::Protocol(e.to_string());
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(proto)?;
    let body = body.map(ToString::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: jwtmon\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(proto)?;
    let mut buf = Vec::new();
    s.take(MAX_RESPONSE as u64)
        .read_to_end(&mut buf)
        .map_err(proto)?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(head)) = resp.parse(&buf) else {
        return Err(ClientError::Protocol("incomplete HTTP response".into()));
    };
    let status = resp.code.unwrap_or(0);
    let chunked = resp.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value).contains("chunked")
    });
    let raw = &buf[head..];
    let content = if chunked { dechunk(raw)? } else { raw.to_vec() };
    let value = if content.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&content)
            .map_err(|e| ClientError::Protocol(format!("answer is not JSON: {e}")))?
    };
    Ok((status, value))
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, ClientError> {
    let bad = || ClientError::Protocol("bad chunked encoding".into());
    let mut out = Vec::new();
    loop {
        let line = raw.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_text = std::str::from_utf8(&raw[..line]).map_err(|_| bad())?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad())?;
        raw = &raw[line + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size + 2 {
            return Err(bad());
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        assert!(dechunk(b"zz\r\n").is_err());
        assert!(dechunk(b"5\r\nab").is_err());
    }

    #[test]
    fn no_daemon() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            call(&dir.path().join("none.sock"), "GET", "/v1/health", None),
            Err(ClientError::NotRunning(_))
        ));
    }
}
