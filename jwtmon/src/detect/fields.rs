//! What detectors read from a request beyond its head: query, cookie and
//! body values (percent- and form-decoded; JSON keys and string values;
//! XML attribute values and text), the username of a login attempt, and
//! login-path matching.

use std::borrow::Cow;

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::Value;

use crate::parse::Request;

/// Where a value came from (finding detail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The path.
    Path,
    /// A query parameter.
    Query,
    /// The sampled body.
    Body,
    /// A cookie name or value.
    Cookie,
    /// A header value (`User-Agent`, `Referer`, custom headers).
    Header,
}

impl Place {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Place::Path => "path",
            Place::Query => "query",
            Place::Body => "body",
            Place::Cookie => "cookie",
            Place::Header => "header",
        }
    }

    /// Whether a value from here may be quoted in a finding: bodies and
    /// cookies may hold passwords and sessions, so never.
    pub fn quotable(self) -> bool {
        matches!(self, Place::Path | Place::Query)
    }
}

/// The request's Content-Type says so.
pub(crate) fn is_json(req: &Request) -> bool {
    req.content_type
        .as_deref()
        .is_some_and(|c| c.to_ascii_lowercase().contains("json"))
}

/// The request's Content-Type says so.
pub(crate) fn is_form(req: &Request) -> bool {
    req.content_type.as_deref().is_some_and(|c| {
        c.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    })
}

/// The request's Content-Type says so.
pub(crate) fn is_multipart(req: &Request) -> bool {
    req.content_type.as_deref().is_some_and(|c| {
        c.trim_start()
            .to_ascii_lowercase()
            .starts_with("multipart/")
    })
}

fn is_xml(req: &Request, body: &[u8]) -> bool {
    req.content_type
        .as_deref()
        .is_some_and(|c| c.to_ascii_lowercase().contains("xml"))
        || body.trim_ascii_start().starts_with(b"<?xml")
}

/// JSON keys and string values (keys carry operators such as `$ne`).
fn json_strings(v: &Value, out: &mut Vec<(Place, Cow<'_, str>)>) {
    match v {
        Value::String(s) => out.push((Place::Body, Cow::Owned(s.clone()))),
        Value::Array(a) => a.iter().for_each(|v| json_strings(v, out)),
        Value::Object(o) => o.iter().for_each(|(k, v)| {
            out.push((Place::Body, Cow::Owned(k.clone())));
            json_strings(v, out);
        }),
        _ => {}
    }
}

/// The five predefined XML entities and numeric references.
fn xml_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let near = &rest.as_bytes()[..rest.len().min(12)];
        let Some(end) = near.iter().position(|b| *b == b';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..end];
        let c = match name {
            "quot" => Some('"'),
            "apos" => Some('\''),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            _ => name
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        if let Some(c) = c {
            out.push(c);
            rest = &rest[end + 1..];
        } else {
            out.push('&');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// XML attribute values and text between tags (no DTDs, no nesting
/// rules: a tolerant scan of possibly truncated bodies).
fn xml_values(text: &str, out: &mut Vec<(Place, Cow<'_, str>)>) {
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let between = rest[..open].trim();
        if !between.is_empty() {
            out.push((Place::Body, Cow::Owned(xml_unescape(between))));
        }
        let tag_end = rest[open..].find('>').map_or(rest.len(), |e| open + e);
        let mut tag = &rest[open..tag_end];
        while let Some(q) = tag.find(['"', '\'']) {
            let quote = tag.as_bytes()[q] as char;
            let Some(len) = tag[q + 1..].find(quote) else {
                break;
            };
            let value = &tag[q + 1..q + 1 + len];
            if !value.is_empty() {
                out.push((Place::Body, Cow::Owned(xml_unescape(value))));
            }
            tag = &tag[q + 2 + len..];
        }
        rest = &rest[(tag_end + 1).min(rest.len())..];
    }
    if !rest.trim().is_empty() {
        out.push((Place::Body, Cow::Owned(xml_unescape(rest.trim()))));
    }
}

/// `application/x-www-form-urlencoded` pairs, `+` a space, escapes
/// undone; bytes that are not UTF-8 read as Latin-1 (not U+FFFD, which
/// would hide what a charset trick spells).
pub(crate) fn form_pairs(text: &[u8]) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    fn part(p: &[u8]) -> Cow<'_, str> {
        let spaced: Cow<'_, [u8]> = if p.contains(&b'+') {
            Cow::Owned(
                p.iter()
                    .map(|&b| if b == b'+' { b' ' } else { b })
                    .collect(),
            )
        } else {
            Cow::Borrowed(p)
        };
        let decoded: Cow<'_, [u8]> = match spaced {
            Cow::Borrowed(b) => percent_encoding::percent_decode(b).into(),
            Cow::Owned(b) => Cow::Owned(percent_encoding::percent_decode(&b).collect()),
        };
        crate::detect::decode::utf8_or_latin1(decoded)
    }
    text.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[..0]),
            };
            (part(k), part(v))
        })
}

/// Form pairs of `text` as values at `place`, names included; a value
/// that is itself `name=value` (double-encoded forms) adds its parts.
fn form_values<'a>(text: &'a [u8], place: Place, out: &mut Vec<(Place, Cow<'a, str>)>) {
    for (k, v) in form_pairs(text) {
        for x in [k, v] {
            if x.is_empty() {
                continue;
            }
            if let Some((_, inner)) = x.split_once('=')
                && !inner.trim().is_empty()
            {
                out.push((place, Cow::Owned(inner.to_string())));
            }
            out.push((place, x));
        }
    }
}

/// Cookie names and values (`a=b; c=d`), percent-decoded.
fn cookie_values(header: &str, out: &mut Vec<(Place, Cow<'_, str>)>) {
    for pair in header.split(';') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        for x in [k.trim(), v.trim()] {
            if !x.is_empty() {
                let d = percent_encoding::percent_decode_str(x).decode_utf8_lossy();
                out.push((Place::Cookie, Cow::Owned(d.into_owned())));
            }
        }
    }
}

fn cut_to(s: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(s[..end].to_string())
}

/// Headers with a fixed grammar (media types, languages, dates, tokens,
/// client hints, trace ids): not free text, so not judged as text.
fn structured(name: &str) -> bool {
    const NAMES: [&str; 20] = [
        "cache-control",
        "pragma",
        "te",
        "dnt",
        "priority",
        "range",
        "origin",
        "upgrade-insecure-requests",
        "x-requested-with",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-real-ip",
        "via",
        "traceparent",
        "tracestate",
        "baggage",
        "content-encoding",
        "keep-alive",
        "expect",
    ];
    let prefix = |p: &str| {
        name.get(..p.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(p))
    };
    prefix("accept")
        || prefix("sec-")
        || prefix("if-")
        || NAMES.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// Header values that are free text (`User-Agent`, `Referer`, custom
/// headers), and, with `all`, the structured ones too (for families that
/// ride any header, such as JNDI lookups). Raw: [`values`] decodes them.
pub fn header_values(req: &Request, all: bool) -> Vec<Cow<'_, str>> {
    headers(req, all).map(|(_, v)| Cow::Borrowed(v)).collect()
}

/// [`header_values`] with their names (`User-Agent` first).
fn headers(req: &Request, all: bool) -> impl Iterator<Item = (&str, &str)> {
    req.user_agent
        .iter()
        .map(|u| ("user-agent", u.as_str()))
        .chain(
            req.other_headers()
                .filter(move |(n, _)| all || !structured(n)),
        )
}

/// Every value an injection could ride in: the decoded path, each query
/// and cookie name and value, the free-text header values and each of
/// the Referer's query values, and the body's
/// values (form fields, JSON keys and strings, multipart text fields, XML
/// attributes and text, or the raw text; nothing of a binary upload or a
/// binary file part, where a body labelled binary that is text is text).
/// Percent-encoding is
/// undone to a fixed point and character references resolved. Each is cut
/// to `max` bytes.
pub fn values(req: &Request, max: usize) -> Vec<(Place, Cow<'_, str>)> {
    let mut out = vec![(
        Place::Path,
        percent_encoding::percent_decode_str(&req.path).decode_utf8_lossy(),
    )];
    if let Some(q) = &req.query {
        form_values(q.as_bytes(), Place::Query, &mut out);
    }
    if let Some(c) = &req.cookies {
        cookie_values(&c.0, &mut out);
    }
    for (name, v) in headers(req, false) {
        out.push((Place::Header, Cow::Borrowed(v)));
        // The Referer's own query parameters, one value each, as the page
        // that logs or reflects them reads them.
        if name.eq_ignore_ascii_case("referer")
            && let Some((_, q)) = v.split_once('?')
        {
            let q = q.split('#').next().unwrap_or("");
            form_values(q.as_bytes(), Place::Header, &mut out);
        }
    }
    match body(req) {
        Cow::Borrowed(b) => body_values(req, b, &mut out),
        // Inflated: its values cannot borrow from the request.
        Cow::Owned(b) => {
            let mut inner = Vec::new();
            body_values(req, &b, &mut inner);
            out.extend(
                inner
                    .into_iter()
                    .map(|(p, v)| (p, Cow::Owned(v.into_owned()))),
            );
        }
    }
    // Same element type: the cut reuses the vector.
    out.into_iter()
        .map(|(p, v)| {
            let v = cut_to(v, max);
            let d = crate::detect::decode::deep(&v);
            let v = match d {
                Cow::Owned(d) => Cow::Owned(d),
                Cow::Borrowed(_) => v,
            };
            (p, v)
        })
        .collect()
}

/// The values of a body (JSON keys and strings, multipart text fields
/// and file names, XML attributes and text, form fields, or the raw
/// text); nothing of a binary body.
fn body_values<'a>(req: &'a Request, body: &'a [u8], out: &mut Vec<(Place, Cow<'a, str>)>) {
    if body.is_empty() || (binary(req) && !crate::detect::multipart::looks_text(body)) {
        return;
    }
    if is_json(req)
        && let Ok(v) = serde_json::from_slice::<Value>(body)
    {
        json_strings(&v, out);
    } else if is_multipart(req) {
        // Text fields and text files are values, and so are file
        // names; binary files are not text.
        for part in crate::detect::multipart::multipart(req) {
            if let Some(f) = part.filename {
                out.push((Place::Body, f));
            }
            if !part.binary {
                out.push((Place::Body, String::from_utf8_lossy(part.body)));
            }
        }
    } else if is_xml(req, body) {
        xml_values(&String::from_utf8_lossy(body), out);
    } else if let Some(v) = sniffed_json(req, body) {
        json_strings(&v, out);
    } else if is_form(req) || (!is_json(req) && body.contains(&b'=')) {
        form_values(body, Place::Body, out);
    } else {
        out.push((Place::Body, String::from_utf8_lossy(body)));
    }
}

/// A body that is a JSON object or array whatever its declared type (a
/// form or text label does not change what the application parses).
fn sniffed_json(req: &Request, body: &[u8]) -> Option<Value> {
    let start = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if is_json(req) || !matches!(start, b'{' | b'[') {
        return None;
    }
    serde_json::from_slice::<Value>(body).ok()
}

/// Bytes of an inflated body kept at most...
pub const MAX_INFLATED: usize = 256 * 1024;
/// ...and the most it may grow over its compressed size (a decompression
/// bomb stops there).
pub const MAX_RATIO: usize = 100;

/// The body as the application reads it: `Content-Encoding: gzip`,
/// `x-gzip` or `deflate` (zlib or raw) inflated, at most
/// [`MAX_INFLATED`] bytes and [`MAX_RATIO`] times its size; anything else,
/// or a body that does not inflate, as captured.
pub fn body(req: &Request) -> Cow<'_, [u8]> {
    use std::io::Read;
    let raw = &req.body;
    let Some((_, coding)) = req
        .other_headers()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-encoding"))
    else {
        return Cow::Borrowed(raw);
    };
    let coding = coding.trim().to_ascii_lowercase();
    let cap = MAX_INFLATED.min(raw.len().saturating_mul(MAX_RATIO)) as u64;
    let mut out = Vec::new();
    let read = match coding.as_str() {
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(&raw[..])
            .take(cap)
            .read_to_end(&mut out),
        "deflate" => {
            // RFC 9110 says zlib; some clients send raw deflate.
            let z = flate2::read::ZlibDecoder::new(&raw[..])
                .take(cap)
                .read_to_end(&mut out);
            if z.is_err() || out.is_empty() {
                out.clear();
                flate2::read::DeflateDecoder::new(&raw[..])
                    .take(cap)
                    .read_to_end(&mut out)
            } else {
                z
            }
        }
        _ => return Cow::Borrowed(raw),
    };
    // A body cut by the capture inflates only in part: keep that part.
    if read.is_err() && out.is_empty() {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(out)
}

/// A body that is not text: images, audio, video, archives, fonts,
/// octet streams. Its bytes "contain" anything; they are not judged.
fn binary(req: &Request) -> bool {
    req.content_type.as_deref().is_some_and(|c| {
        let c = c.to_ascii_lowercase();
        ["image/", "audio/", "video/", "font/"]
            .iter()
            .any(|p| c.starts_with(p))
            || [
                "application/octet-stream",
                "application/zip",
                "application/gzip",
                "application/pdf",
                "application/x-protobuf",
                "application/grpc",
            ]
            .iter()
            .any(|p| c.starts_with(p))
    })
}

/// The username a login attempt names: Basic auth, else the first of
/// `fields` in a JSON or form body. (A truncated JSON body is scanned for
/// `"field": "value"`.)
pub fn username(req: &Request, fields: &[String]) -> Option<String> {
    if let Some(c) = &req.credentials
        && c.scheme.eq_ignore_ascii_case("basic")
        && let Ok(raw) = STANDARD.decode(c.expose_secret())
        && let Ok(text) = String::from_utf8(raw)
        && let Some((user, _)) = text.split_once(':')
        && !user.is_empty()
    {
        return Some(user.to_string());
    }
    if req.body.is_empty() {
        return None;
    }
    if is_json(req) {
        return match serde_json::from_slice::<Value>(&req.body) {
            Ok(v) => fields
                .iter()
                .find_map(|f| v.get(f)?.as_str().map(str::to_string)),
            Err(_) => scan_json_field(&String::from_utf8_lossy(&req.body), fields),
        };
    }
    form_urlencoded::parse(&req.body)
        .find(|(k, v)| !v.is_empty() && fields.iter().any(|f| f == k))
        .map(|(_, v)| v.into_owned())
}

fn scan_json_field(text: &str, fields: &[String]) -> Option<String> {
    fields.iter().find_map(|f| {
        let at = text.find(&format!("\"{f}\""))? + f.len() + 2;
        let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
        let rest = rest.strip_prefix('"')?;
        let end = rest.find('"')?;
        Some(rest[..end].to_string())
    })
}

/// Whether `path` matches a login pattern: the whole path or its trailing
/// segments, `*` matching within one segment.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    if pat.len() > segs.len() {
        return false;
    }
    segs[segs.len() - pat.len()..]
        .iter()
        .zip(&pat)
        .all(|(s, p)| segment_matches(p, s))
}

/// Case-insensitive glob of one segment: `*` matches any run of bytes.
fn segment_matches(pattern: &str, seg: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
            Some((c, rest)) => {
                s.first().is_some_and(|d| d.eq_ignore_ascii_case(c)) && glob(rest, &s[1..])
            }
        }
    }
    glob(pattern.as_bytes(), seg.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Credentials;

    fn req(ct: &str, body: &str) -> Request {
        Request {
            method: "POST".into(),
            path: "/api/v1/login".into(),
            content_type: Some(ct.into()),
            body: body.as_bytes().to_vec(),
            ..Request::default()
        }
    }

    fn fields() -> Vec<String> {
        vec!["username".into(), "email".into()]
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn parsed(head: &str, body: &[u8]) -> Request {
        let mut raw = head.as_bytes().to_vec();
        raw.extend_from_slice(body);
        crate::parse::parse_requests(&raw, true).remove(0).unwrap()
    }

    #[test]
    fn compressed_and_chunked_bodies_are_read_as_the_server_reads_them() {
        let z = gzip(b"q=1' UNION SELECT password FROM users--");
        let r = parsed(
            &format!(
                "POST /s HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                z.len()
            ),
            &z,
        );
        let v = values(&r, 4096);
        assert!(
            v.iter()
                .any(|(p, v)| *p == Place::Body && v.contains("UNION SELECT")),
            "{v:?}"
        );
        // A payload split over chunks is one value again.
        let r = parsed(
            "POST /s HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"7\r\nq=1' UN\r\n10\r\nION SELECT 1,2--\r\n0\r\n\r\n",
        );
        let v = values(&r, 4096);
        assert!(v.iter().any(|(_, v)| v == "1' UNION SELECT 1,2--"), "{v:?}");
        // A decompression bomb stops at the cap.
        let bomb = gzip(&vec![b'a'; 50 * 1024 * 1024]);
        let r = Request {
            body: bomb.clone(),
            headers: crate::parse::http::Hidden("Content-Encoding: gzip\n".into()),
            ..Request::default()
        };
        let out = body(&r);
        assert!(
            out.len() <= MAX_INFLATED && out.len() <= bomb.len() * MAX_RATIO,
            "{}",
            out.len()
        );
        // Not gzip after all: the bytes as they came.
        let r = Request {
            body: b"plain".to_vec(),
            headers: crate::parse::http::Hidden("Content-Encoding: gzip\n".into()),
            ..Request::default()
        };
        assert_eq!(&*body(&r), b"plain");
    }

    #[test]
    fn usernames_from_json_form_and_basic() {
        let r = req("application/json", r#"{"username":"alice","password":"x"}"#);
        assert_eq!(username(&r, &fields()).as_deref(), Some("alice"));
        let r = req(
            "application/json",
            r#"{"email": "bob@x.test", "password": "tru"#,
        );
        assert_eq!(username(&r, &fields()).as_deref(), Some("bob@x.test"));
        let r = req(
            "application/x-www-form-urlencoded",
            "username=carol%40x&password=y",
        );
        assert_eq!(username(&r, &fields()).as_deref(), Some("carol@x"));
        let mut r = req("text/plain", "");
        r.credentials = Some(Credentials::new("Basic ZGF2ZTpzZWNyZXQ="));
        assert_eq!(username(&r, &fields()).as_deref(), Some("dave"));
        assert_eq!(username(&req("application/json", "{}"), &fields()), None);
    }

    #[test]
    fn login_paths() {
        assert!(path_matches("/login", "/login"));
        assert!(path_matches("/login", "/api/v1/login"));
        assert!(path_matches("/oauth/token", "/x/oauth/token"));
        assert!(!path_matches("/oauth/token", "/token"));
        assert!(!path_matches("/login", "/login/help"));
        assert!(path_matches("/sign*", "/signin"));
        assert!(!path_matches("/sign*", "/logout"));
    }

    #[test]
    fn values_are_decoded() {
        let mut r = req("application/x-www-form-urlencoded", "q=1%27+OR+1%3D1");
        r.path = "/a%2F..%2Fetc".into();
        r.query = Some("id=5&name=x%3Cscript%3E".into());
        let v: Vec<String> = values(&r, 100).into_iter().map(|(_, s)| s.into()).collect();
        assert_eq!(
            v,
            [
                "/a/../etc",
                "id",
                "5",
                "name",
                "x<script>",
                "q",
                // The part after `=`, as a double-encoded form would hold it.
                "1",
                "1' OR 1=1"
            ]
        );
        let r = req("application/json", r#"{"a":{"b":["x","y"]},"n":1}"#);
        let v: Vec<String> = values(&r, 100).into_iter().map(|(_, s)| s.into()).collect();
        assert_eq!(v, ["/api/v1/login", "a", "b", "x", "y", "n"]);
    }

    #[test]
    fn free_text_headers_are_values_and_binary_bodies_are_not() {
        let mut r = req("image/png", "\u{0}\u{1}; rm -rf / | sh ../../etc");
        r.user_agent = Some("Mozilla/5.0".into());
        r.headers = crate::parse::Hidden(
            "Referer:https://x.test/a%3Fb\nAccept:text/html,*/*;q=0.8\nX-Note:%2527hi\n".into(),
        );
        let v: Vec<(Place, String)> = values(&r, 100)
            .into_iter()
            .map(|(p, s)| (p, s.into()))
            .collect();
        let headers: Vec<&str> = v
            .iter()
            .filter(|(p, _)| *p == Place::Header)
            .map(|(_, s)| s.as_str())
            .collect();
        // Decoded to a fixed point; the structured Accept is not text.
        assert_eq!(headers, ["Mozilla/5.0", "https://x.test/a?b", "'hi"]);
        assert!(v.iter().all(|(p, _)| *p != Place::Body), "{v:?}");
        assert_eq!(header_values(&r, true).len(), 4);
    }

    #[test]
    fn referer_query_values_are_values_of_their_own() {
        let mut r = req("text/plain", "");
        r.headers =
            crate::parse::Hidden("Referer:https://x.test/p?args=env%20--version&n=1#frag\n".into());
        let headers: Vec<String> = values(&r, 100)
            .into_iter()
            .filter(|(p, _)| *p == Place::Header)
            .map(|(_, s)| s.into())
            .collect();
        assert_eq!(
            headers,
            [
                "https://x.test/p?args=env --version&n=1#frag",
                "args",
                "env --version",
                "n",
                "1"
            ]
        );
    }

    #[test]
    fn cookies_and_xml_are_values() {
        let mut r = req(
            "text/xml",
            r#"<?xml version="1.0"?><root><a probe="1 &amp; 2">x &lt; y</a><b k='v'/></root>"#,
        );
        r.cookies = Some(crate::parse::Hidden("sid=abc%27; theme = dark ".into()));
        let v: Vec<(Place, String)> = values(&r, 100)
            .into_iter()
            .map(|(p, s)| (p, s.into()))
            .collect();
        let at = |p: Place| -> Vec<&str> {
            v.iter()
                .filter(|(q, _)| *q == p)
                .map(|(_, s)| s.as_str())
                .collect()
        };
        assert_eq!(at(Place::Cookie), ["sid", "abc'", "theme", "dark"]);
        assert_eq!(at(Place::Body), ["1.0", "1 & 2", "x < y", "v"]);
        assert!(!Place::Cookie.quotable() && !Place::Body.quotable());
        // Truncated XML never panics.
        let r = req("application/xml", r#"<a b="unterminated"#);
        let _ = values(&r, 100);
        let r = req("application/xml", "&#xZZ; &#99999999; <<>>& &ééééééé; ü&");
        let _ = values(&r, 100);
    }
}
