//! HTTP/1.x parsing of captured payload starts with httparse: requests
//! (several when pipelined), response status lines, and a classification of
//! malformed input. Never panics on any input.

use std::{borrow::Cow, fmt, mem::MaybeUninit, sync::OnceLock};

use sha2::{Digest, Sha256};

/// Most headers parsed per message; more is malformed (`too_many_headers`).
pub const MAX_HEADERS: usize = 96;

/// Credentials from `Authorization`. The raw value stays in memory for the
/// analysers and is never printed: `Debug` shows only the `token_id`.
///
/// The SHA-256 digest is computed on first use, not while parsing, so the
/// capture path pays for it only when an analyser or the output needs it.
#[derive(Clone)]
pub struct Credentials {
    /// Scheme as sent (`Bearer`, `Basic`, ...).
    pub scheme: String,
    secret: String,
    digest: OnceLock<[u8; 32]>,
}

impl PartialEq for Credentials {
    fn eq(&self, other: &Self) -> bool {
        self.scheme == other.scheme && self.secret == other.secret
    }
}

impl Eq for Credentials {}

impl Credentials {
    /// Splits an `Authorization` value into scheme and credentials.
    pub fn new(value: &str) -> Self {
        let value = value.trim();
        let (scheme, secret) = value.split_once(' ').unwrap_or(("", value));
        Self {
            scheme: scheme.to_string(),
            secret: secret.trim().to_string(),
            digest: OnceLock::new(),
        }
    }

    /// The raw credentials, for analysers only. Never log or store them.
    pub fn expose_secret(&self) -> &str {
        &self.secret
    }

    /// SHA-256 of the credentials (computed once).
    pub fn digest(&self) -> &[u8; 32] {
        self.digest
            .get_or_init(|| Sha256::digest(self.secret.as_bytes()).into())
    }

    /// First 16 hex chars of SHA-256 of the credentials.
    pub fn token_id(&self) -> String {
        hex16(self.digest())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({} {})", self.scheme, self.token_id())
    }
}

/// First 16 hex chars of SHA-256: how jwtmon names a token or secret.
pub fn token_id(secret: &str) -> String {
    hex16(&Sha256::digest(secret.as_bytes()).into())
}

/// Lower-case hex of the first 8 bytes of a digest.
pub fn hex16(digest: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(16);
    for b in &digest[..8] {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// A string that holds a credential: `Debug` prints only its length.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Hidden(pub String);

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hidden({} bytes)", self.0.len())
    }
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
    /// `Authorization`, hashed for display (the last one sent).
    pub credentials: Option<Credentials>,
    /// Earlier `Authorization` headers of the same request (a second one
    /// is a smuggling attempt: each is analysed). At most 4.
    pub other_credentials: Vec<Credentials>,
    /// The raw `Cookie` header (values are credentials: `Debug` hides it;
    /// use [`Request::cookie_names`] or [`Request::cookie`]).
    pub cookies: Option<Hidden>,
    /// `X-API-Key` or `Api-Key` (a credential: hash it before output).
    pub api_key: Option<Hidden>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Length`.
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// The connection leaves HTTP/1.x after this request (CONNECT, PRI, or
    /// `Connection: upgrade` with `Upgrade`): later bytes are not parsed.
    pub upgrade: bool,
    /// `X-Forwarded-For` hops, leftmost first.
    pub forwarded_for: Vec<String>,
    /// `Forwarded: for=` hops, leftmost first.
    pub forwarded: Vec<String>,
    /// The other headers, for the detectors: `name: value` lines in one
    /// buffer (one allocation per request), read with
    /// [`Request::other_headers`]. Values may be credentials, so `Debug`
    /// hides them. At most [`MAX_OTHER_HEADERS`].
    pub headers: Hidden,
    /// The captured start of the body.
    pub body: Vec<u8>,
    /// The header block was cut by the capture limit (what was parsed is
    /// still usable).
    pub truncated: bool,
}

/// Headers kept beyond the ones parsed into fields.
pub const MAX_OTHER_HEADERS: usize = 32;

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
    // RFC 9112 2.2: ignore empty lines before a request line.
    while let Some(mut rest) = data.get(at..) {
        while let Some(r) = rest.strip_prefix(b"\r\n").or(rest.strip_prefix(b"\n")) {
            rest = r;
        }
        if rest.is_empty() {
            break;
        }
        at = data.len() - rest.len();
        match parse_one(rest, complete) {
            Ok((req, used, body_len)) => {
                let next = used.saturating_add(body_len);
                let stop = req.chunked || req.truncated || req.upgrade;
                out.push(Ok(req));
                if stop || next == 0 {
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
    // Left uninitialised: httparse writes only the headers it finds.
    let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match req
        .parse_with_uninit_headers(data, &mut headers)
        .map_err(classify)?
    {
        httparse::Status::Complete(head_len) => {
            check_head(&data[..head_len])?;
            let parsed = build(&req, false)?;
            let mut parsed = parsed;
            if parsed.chunked {
                // The body as the server reads it: the chunks' data joined
                // (what was captured of it; a payload split over chunks is
                // one value again).
                let mut body = Vec::new();
                let whole = walk_chunks(&data[head_len..], |c| {
                    body.extend_from_slice(c);
                });
                parsed.body = body;
                return Ok((parsed, head_len, whole.unwrap_or(data.len() - head_len)));
            }
            let body_len = parsed.content_length.unwrap_or(0).min(usize::MAX as u64) as usize;
            let body_end = head_len.saturating_add(body_len).min(data.len());
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
                    check_head(&head)?;
                    let parsed = build(&req, true)?;
                    Ok((parsed, data.len(), 0))
                }
                httparse::Status::Partial => Err(Malformed::RequestLine),
            }
        }
    }
}

/// What httparse lets through but RFC 9112 forbids and request smuggling
/// uses: a bare LF as line end, and control bytes in header values.
#[expect(
    clippy::needless_bitwise_bool,
    reason = "without short-circuits the folds vectorize (bench-parse: 0.44x to 0.74x of httparse)"
)]
fn check_head(head: &[u8]) -> Result<(), Malformed> {
    // Folds without short-circuits, so the compiler vectorizes them; the
    // exact reason is only worked out when something is wrong.
    let ctl = head.iter().fold(false, |bad, &b| {
        bad | ((b < 0x20) & (b != b'\t') & (b != b'\r') & (b != b'\n')) | (b == 0x7f)
    });
    if ctl {
        return Err(Malformed::HeaderValue);
    }
    let first_lf = head.first() == Some(&b'\n');
    let last_cr = head.last() == Some(&b'\r');
    // Every LF follows a CR and every CR precedes an LF: for each pair of
    // neighbours, "this is LF" equals "the one before is CR".
    let lone = head[1.min(head.len())..]
        .iter()
        .zip(head)
        .fold(false, |bad, (&b, &prev)| {
            bad | ((b == b'\n') != (prev == b'\r'))
        });
    if first_lf || last_cr || lone {
        return Err(Malformed::NewLine);
    }
    Ok(())
}

/// Bytes as text: borrowed when valid UTF-8 (the usual case), lossy else.
fn str_of(v: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(v) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v),
    }
}

fn text(v: &[u8]) -> String {
    str_of(v).trim().to_string()
}

impl Request {
    /// The other headers as `(name, value)`, names as sent.
    pub fn other_headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.0.lines().filter_map(|l| l.split_once(':'))
    }

    /// Heap bytes its fields hold (what a waiting request costs besides
    /// its fixed size).
    pub fn held_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        self.method.len()
            + self.path.len()
            + opt(&self.query)
            + opt(&self.host)
            + opt(&self.user_agent)
            + opt(&self.content_type)
            + self.cookies.as_ref().map_or(0, |c| c.0.len())
            + self.api_key.as_ref().map_or(0, |c| c.0.len())
            + self
                .credentials
                .as_ref()
                .map_or(0, |c| c.expose_secret().len() + 64)
            + self
                .forwarded_for
                .iter()
                .chain(&self.forwarded)
                .map(String::len)
                .sum::<usize>()
            + self
                .other_credentials
                .iter()
                .map(|c| c.expose_secret().len() + 64)
                .sum::<usize>()
            + self.headers.0.len()
            + self.body.len()
    }

    /// Names of the cookies sent, in order.
    pub fn cookie_names(&self) -> Vec<&str> {
        self.cookie_pairs().map(|(n, _)| n).collect()
    }

    /// The value of cookie `name` (a credential: hash it before output).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookie_pairs()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    fn cookie_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.cookies
            .as_ref()
            .map_or("", |c| c.0.as_str())
            .split(';')
            .map(|pair| {
                let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
                (n.trim(), v.trim())
            })
            .filter(|(n, _)| !n.is_empty())
    }
}

/// Splits an absolute-form request target (`http://host:8080/path?q`, as
/// proxies and some clients send it) into its authority and the origin
/// form (`/path?q`); `None` for every other form. Userinfo (`user:pass@`)
/// is dropped: it is a credential.
pub fn absolute_form(target: &str) -> Option<(&str, Cow<'_, str>)> {
    let (scheme, rest) = target.split_once("://")?;
    let mut chars = scheme.chars();
    if !chars.next()?.is_ascii_alphabetic()
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let rest = &rest[end..];
    let rest = rest.split_once('#').map_or(rest, |(t, _)| t);
    let origin = if rest.starts_with('/') {
        Cow::Borrowed(rest)
    } else {
        Cow::Owned(format!("/{rest}"))
    };
    Some((authority, origin))
}

fn build(req: &httparse::Request<'_, '_>, truncated: bool) -> Result<Request, Malformed> {
    let raw_target = req.path.unwrap_or("");
    let absolute = absolute_form(raw_target);
    let target = absolute.as_ref().map_or(raw_target, |(_, origin)| origin);
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
    let (mut connection_upgrade, mut upgrade) = (false, false);
    let mut others = 0;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("connection") {
            connection_upgrade |= str_of(h.value)
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        } else if name.eq_ignore_ascii_case("host") {
            r.host = Some(text(h.value));
        } else if name.eq_ignore_ascii_case("user-agent") {
            r.user_agent = Some(text(h.value));
        } else if name.eq_ignore_ascii_case("authorization") {
            if let Some(prev) = r.credentials.take()
                && r.other_credentials.len() < 4
            {
                r.other_credentials.push(prev);
            }
            r.credentials = Some(Credentials::new(&str_of(h.value)));
        } else if name.eq_ignore_ascii_case("cookie") {
            r.cookies = Some(Hidden(match r.cookies.take() {
                Some(prev) => format!("{}; {}", prev.0, str_of(h.value)),
                None => text(h.value),
            }));
        } else if name.eq_ignore_ascii_case("x-api-key") || name.eq_ignore_ascii_case("api-key") {
            r.api_key = Some(Hidden(text(h.value)));
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
                str_of(h.value)
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            );
        } else if name.eq_ignore_ascii_case("forwarded") {
            for element in str_of(h.value).split(',') {
                for pair in element.split(';') {
                    if let Some((k, v)) = pair.trim().split_once('=')
                        && k.trim().eq_ignore_ascii_case("for")
                    {
                        r.forwarded.push(v.trim().trim_matches('"').to_string());
                    }
                }
            }
        } else if others < MAX_OTHER_HEADERS {
            others += 1;
            let v = str_of(h.value);
            let b = &mut r.headers.0;
            b.reserve(name.len() + v.len() + 2);
            b.push_str(name);
            b.push(':');
            // A value never holds a line break (the parser refuses them).
            b.push_str(v.trim());
            b.push('\n');
        }
    }
    r.upgrade = (connection_upgrade && upgrade) || r.method == "CONNECT" || r.method == "PRI";
    if let Some(te) = te {
        if r.content_length.is_some() {
            return Err(Malformed::ContentLengthAndTransferEncoding);
        }
        if te.rsplit(',').next().map(str::trim) != Some("chunked") {
            return Err(Malformed::TransferEncoding);
        }
        r.chunked = true;
    }
    // RFC 9112 3.2.2: with an absolute-form target, its authority is the
    // host, whatever a Host header says.
    if let Some((authority, _)) = &absolute {
        r.host = Some(authority.to_string());
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
        let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let status = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut resp,
            &data[at..],
            &mut headers,
        ) {
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

/// Walks the chunked body at the start of `b`, handing each chunk's data
/// to `each` (the last one possibly cut where `b` ends); returns the
/// body's whole length once it is complete (trailers included), `None`
/// while it is not (or when the framing is broken: `each` has then seen
/// what came before the break).
pub fn walk_chunks(b: &[u8], mut each: impl FnMut(&[u8])) -> Option<usize> {
    let line = |from: usize| -> Option<usize> {
        Some(from + b.get(from..)?.windows(2).position(|w| w == b"\r\n")?)
    };
    let mut at = 0;
    loop {
        let end = line(at)?;
        let size_text = std::str::from_utf8(&b[at..end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = end + 2;
        each(&b[at.min(b.len())..at.saturating_add(size).min(b.len())]);
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let end = line(at)?;
                let empty = end == at;
                at = end + 2;
                if empty {
                    return Some(at);
                }
            }
        }
        at = at.checked_add(size)?.checked_add(2)?;
        if at > b.len() {
            return None;
        }
    }
}
