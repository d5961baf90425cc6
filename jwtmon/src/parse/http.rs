//! HTTP/1.x parsing of captured payload starts with httparse: requests
//! (several when pipelined), response status lines, and a classification of
//! malformed input. Never panics on any input.

use std::fmt;

use sha2::{Digest, Sha256};

/// Most headers parsed per message; more is malformed (`too_many_headers`).
pub const MAX_HEADERS: usize = 96;

/// Credentials from `Authorization`. The raw value stays in memory for the
/// analysers and is never printed: `Debug` shows only the `token_id`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Scheme as sent (`Bearer`, `Basic`, ...).
    pub scheme: String,
    /// First 16 hex chars of SHA-256 of the credentials.
    pub token_id: String,
    secret: String,
}

impl Credentials {
    fn new(value: &str) -> Self {
        let value = value.trim();
        let (scheme, secret) = value.split_once(' ').unwrap_or(("", value));
        Self {
            scheme: scheme.to_string(),
            token_id: token_id(secret.trim()),
            secret: secret.trim().to_string(),
        }
    }

    /// The raw credentials, for analysers only. Never log or store them.
    pub fn expose_secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({} {})", self.scheme, self.token_id)
    }
}

/// First 16 hex chars of SHA-256: how jwtmon names a token or secret.
pub fn token_id(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A parsed request head plus the body bytes that were captured.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Request {
    /// Method token.
    pub method: String,
    /// Path without the query (raw, not decoded).
    pub path: String,
    /// Raw query string without `?`.
    pub query: Option<String>,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// `Host`.
    pub host: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `Authorization`, hashed for display.
    pub credentials: Option<Credentials>,
    /// Names of the cookies sent (values are credentials too; not kept).
    pub cookie_names: Vec<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Length`.
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// `X-Forwarded-For` hops, leftmost first.
    pub forwarded_for: Vec<String>,
    /// `Forwarded: for=` hops, leftmost first.
    pub forwarded: Vec<String>,
    /// The captured start of the body.
    pub body: Vec<u8>,
    /// The header block was cut by the capture limit (what was parsed is
    /// still usable).
    pub truncated: bool,
}

/// Why a request is malformed. Names are stable (metrics labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Malformed {
    /// Bad method token or request line.
    RequestLine,
    /// Unsupported or malformed HTTP version.
    Version,
    /// Invalid header name (includes obs-fold continuation lines).
    HeaderName,
    /// Invalid bytes in a header value.
    HeaderValue,
    /// Bare CR or LF where CRLF belongs.
    NewLine,
    /// More than [`MAX_HEADERS`] headers.
    TooManyHeaders,
    /// Both Content-Length and Transfer-Encoding (request smuggling shape).
    ContentLengthAndTransferEncoding,
    /// Several different Content-Length values, or a non-numeric one.
    ContentLength,
    /// A Transfer-Encoding other than a final `chunked`.
    TransferEncoding,
    /// The request line alone exceeds the capture.
    Oversize,
}

impl Malformed {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::RequestLine => "request_line",
            Malformed::Version => "version",
            Malformed::HeaderName => "header_name",
            Malformed::HeaderValue => "header_value",
            Malformed::NewLine => "new_line",
            Malformed::TooManyHeaders => "too_many_headers",
            Malformed::ContentLengthAndTransferEncoding => "cl_and_te",
            Malformed::ContentLength => "content_length",
            Malformed::TransferEncoding => "transfer_encoding",
            Malformed::Oversize => "oversize",
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn classify(e: httparse::Error) -> Malformed {
    match e {
        httparse::Error::HeaderName => Malformed::HeaderName,
        httparse::Error::HeaderValue => Malformed::HeaderValue,
        httparse::Error::NewLine => Malformed::NewLine,
        httparse::Error::TooManyHeaders => Malformed::TooManyHeaders,
        httparse::Error::Version => Malformed::Version,
        httparse::Error::Token | httparse::Error::Status => Malformed::RequestLine,
    }
}

/// Parses every request that starts in `data`. `complete` tells whether
/// `data` is the whole segment payload (else a cut head is `truncated`).
/// Parsing stops at the first malformed request (its end is unknown) or
/// when the next request's start lies beyond the captured bytes.
pub fn parse_requests(data: &[u8], complete: bool) -> Vec<Result<Request, Malformed>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        match parse_one(&data[at..], complete) {
            Ok((req, used, body_len)) => {
                let next = used.saturating_add(body_len);
                let chunked = req.chunked;
                let truncated = req.truncated;
                out.push(Ok(req));
                if truncated || chunked || next == 0 {
                    break;
                }
                at = at.saturating_add(next);
            }
            Err(e) => {
                out.push(Err(e));
                break;
            }
        }
    }
    out
}

/// Parses one request head; returns it, the head length and the body length.
fn parse_one(data: &[u8], complete: bool) -> Result<(Request, usize, usize), Malformed> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(data).map_err(classify)? {
        httparse::Status::Complete(head_len) => {
            let parsed = build(&req, false)?;
            let body_len = parsed.content_length.unwrap_or(0).min(usize::MAX as u64) as usize;
            let body_end = head_len.saturating_add(body_len).min(data.len());
            let mut parsed = parsed;
            parsed.body = data[head_len..body_end].to_vec();
            Ok((parsed, head_len, body_len))
        }
        httparse::Status::Partial => {
            // A head cut by the capture (or spanning segments): parse the
            // complete lines we have.
            let Some(last_line) = data.windows(2).rposition(|w| w == b"\r\n") else {
                return Err(if complete {
                    Malformed::RequestLine
                } else {
                    Malformed::Oversize
                });
            };
            let mut head = data[..last_line + 2].to_vec();
            head.extend_from_slice(b"\r\n");
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&head).map_err(classify)? {
                httparse::Status::Complete(_) => {
                    let parsed = build(&req, true)?;
                    Ok((parsed, data.len(), 0))
                }
                httparse::Status::Partial => Err(Malformed::RequestLine),
            }
        }
    }
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).trim().to_string()
}

fn build(req: &httparse::Request<'_, '_>, truncated: bool) -> Result<Request, Malformed> {
    let target = req.path.unwrap_or("");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    let mut r = Request {
        method: req.method.unwrap_or("").to_string(),
        path,
        query,
        version: req.version.unwrap_or(1),
        truncated,
        ..Request::default()
    };
    let mut te: Option<String> = None;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            r.host = Some(text(h.value));
        } else if name.eq_ignore_ascii_case("user-agent") {
            r.user_agent = Some(text(h.value));
        } else if name.eq_ignore_ascii_case("authorization") {
            r.credentials = Some(Credentials::new(&String::from_utf8_lossy(h.value)));
        } else if name.eq_ignore_ascii_case("cookie") {
            for pair in String::from_utf8_lossy(h.value).split(';') {
                let n = pair.split_once('=').map_or(pair, |(n, _)| n).trim();
                if !n.is_empty() {
                    r.cookie_names.push(n.to_string());
                }
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            r.content_type = Some(text(h.value));
        } else if name.eq_ignore_ascii_case("content-length") {
            let v: u64 = text(h.value)
                .parse()
                .map_err(|_| Malformed::ContentLength)?;
            if r.content_length.is_some_and(|old| old != v) {
                return Err(Malformed::ContentLength);
            }
            r.content_length = Some(v);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let v = text(h.value).to_ascii_lowercase();
            te = Some(match te {
                Some(prev) => format!("{prev}, {v}"),
                None => v,
            });
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            r.forwarded_for.extend(
                String::from_utf8_lossy(h.value)
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            );
        } else if name.eq_ignore_ascii_case("forwarded") {
            for element in String::from_utf8_lossy(h.value).split(',') {
                for pair in element.split(';') {
                    if let Some((k, v)) = pair.trim().split_once('=')
                        && k.trim().eq_ignore_ascii_case("for")
                    {
                        r.forwarded.push(v.trim().trim_matches('"').to_string());
                    }
                }
            }
        }
    }
    if let Some(te) = te {
        if r.content_length.is_some() {
            return Err(Malformed::ContentLengthAndTransferEncoding);
        }
        if te.rsplit(',').next().map(str::trim) != Some("chunked") {
            return Err(Malformed::TransferEncoding);
        }
        r.chunked = true;
    }
    Ok(r)
}

/// A parsed response status line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
}

/// Parses the responses that start in `data` (pipelined responses with a
/// Content-Length follow each other; parsing stops where that is unknown).
pub fn parse_responses(data: &[u8]) -> Vec<Response> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let status = match resp.parse(&data[at..]) {
            Ok(httparse::Status::Complete(head)) => {
                let len = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| text(h.value).parse::<usize>().ok());
                if let Some(code) = resp.code {
                    out.push(Response { status: code });
                }
                match len {
                    Some(len) => head.saturating_add(len),
                    None => break,
                }
            }
            Ok(httparse::Status::Partial) => {
                // The status line alone is enough.
                if let Some(code) = status_code(&data[at..]) {
                    out.push(Response { status: code });
                }
                break;
            }
            Err(_) => break,
        };
        at = at.saturating_add(status);
    }
    out
}

/// The status code of a bare `HTTP/1.x NNN` prefix.
fn status_code(data: &[u8]) -> Option<u16> {
    let line = data.get(..12)?;
    if !line.starts_with(b"HTTP/1.") || line[8] != b' ' {
        return None;
    }
    std::str::from_utf8(&line[9..12]).ok()?.parse().ok()
}
