//! Named request inputs, for the schema model: query and form fields,
//! JSON body members (nested names as `a.b`, array elements as `a[]`),
//! multipart fields, cookies and custom `X-*` headers, each with its
//! value. Names that are themselves identifiers (`{"1234": ...}`,
//! `item[7]`) are folded to a placeholder so they do not look like ever
//! new parameters. Also the multipart reader the injection fields use.

use std::borrow::Cow;

use serde_json::Value;

use super::{fields::Place, schema::shape::kind};
use crate::parse::Request;

/// One named input.
#[derive(Clone, Debug, PartialEq)]
pub struct Param<'a> {
    /// Where it was.
    pub place: Place,
    /// Its name, folded.
    pub name: Cow<'a, str>,
    /// Its value as text (`""` for objects, arrays and files).
    pub text: Cow<'a, str>,
    /// A JSON object, array or null, or a file part: the kind it has
    /// without text.
    pub structural: Option<u16>,
}

/// Members of one JSON body considered at most (and nesting depth).
const MAX_PARAMS: usize = 128;
const MAX_DEPTH: usize = 4;
/// Longest name kept as is.
const MAX_NAME: usize = 64;

/// A name as the model keys it: identifiers become `{id}`, array indexes
/// `[]`, overlong names `{long}`.
pub fn fold(name: &str) -> Cow<'_, str> {
    if name.len() > MAX_NAME {
        return Cow::Borrowed("{long}");
    }
    let b = name.as_bytes();
    let id = (!b.is_empty() && b.iter().all(u8::is_ascii_digit))
        || (b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit))
        || super::schema::shape::fits(kind::UUID, name);
    if id {
        return Cow::Borrowed("{id}");
    }
    if name.contains('[') {
        let mut out = String::with_capacity(name.len());
        let mut rest = name;
        while let Some(open) = rest.find('[') {
            out.push_str(&rest[..=open]);
            rest = &rest[open + 1..];
            let close = rest.find(']').unwrap_or(rest.len());
            if !rest[..close].bytes().all(|c| c.is_ascii_digit()) {
                out.push_str(&rest[..close]);
            }
            rest = &rest[close..];
        }
        out.push_str(rest);
        return Cow::Owned(out);
    }
    Cow::Borrowed(name)
}

fn json<'a>(prefix: &str, v: &'a Value, depth: usize, out: &mut Vec<Param<'a>>) {
    if out.len() >= MAX_PARAMS {
        return;
    }
    let mut push = |text: Cow<'a, str>, structural: Option<u16>| {
        out.push(Param {
            place: Place::Body,
            name: Cow::Owned(prefix.to_string()),
            text,
            structural,
        });
    };
    match v {
        Value::String(s) => push(Cow::Borrowed(s), None),
        Value::Number(n) => push(Cow::Owned(n.to_string()), None),
        Value::Bool(b) => push(Cow::Borrowed(if *b { "true" } else { "false" }), None),
        Value::Null => push(Cow::Borrowed(""), Some(kind::EMPTY)),
        Value::Array(a) => {
            push(Cow::Borrowed(""), Some(kind::ARRAY));
            if depth < MAX_DEPTH {
                let name = format!("{prefix}[]");
                // Elements share one name; a few tell their shape.
                for e in a.iter().take(8) {
                    json(&name, e, depth + 1, out);
                }
            }
        }
        Value::Object(o) => {
            if !prefix.is_empty() {
                push(Cow::Borrowed(""), Some(kind::OBJECT));
            }
            if depth < MAX_DEPTH {
                for (k, v) in o {
                    let k = fold(k);
                    let name = if prefix.is_empty() {
                        k.into_owned()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    json(&name, v, depth + 1, out);
                }
            }
        }
    }
}

/// One multipart part: its field name, file name, and body.
pub struct Part<'a> {
    /// `name=` of its `Content-Disposition`.
    pub name: Cow<'a, str>,
    /// It carries a file (`filename=`).
    pub file: bool,
    /// The file's name, if it has one.
    pub filename: Option<Cow<'a, str>>,
    /// Not text: a binary content type (image, audio, octet-stream, ...),
    /// or NUL bytes.
    pub binary: bool,
    /// The part's bytes (possibly cut by the capture).
    pub body: &'a [u8],
}

fn boundary(content_type: &str) -> Option<&str> {
    content_type.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"'))
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

fn disposition_param<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// The parts of a `multipart/form-data` body (at most 64; a part cut by
/// the capture ends at the data's end).
pub fn multipart(req: &Request) -> Vec<Part<'_>> {
    let Some(ct) = req.content_type.as_deref() else {
        return Vec::new();
    };
    if !ct
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/")
    {
        return Vec::new();
    }
    let Some(b) = boundary(ct) else {
        return Vec::new();
    };
    let delim = format!("--{b}");
    let finder = memchr_split(&req.body, delim.as_bytes());
    let mut out = Vec::new();
    for chunk in finder.into_iter().skip(1).take(64) {
        // Lines end in CRLF, or (from lax clients) a bare LF.
        let chunk = chunk
            .strip_prefix(b"\r\n")
            .or_else(|| chunk.strip_prefix(b"\n"))
            .unwrap_or(chunk);
        if chunk.starts_with(b"--") {
            break;
        }
        let crlf = chunk
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, 4));
        let lf = chunk.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
        let Some((head_end, sep)) = [crlf, lf].into_iter().flatten().min() else {
            continue;
        };
        let head = String::from_utf8_lossy(&chunk[..head_end]);
        let mut body = &chunk[head_end + sep..];
        body = body
            .strip_suffix(b"\r\n")
            .or_else(|| body.strip_suffix(b"\n"))
            .unwrap_or(body);
        let mut name = None;
        let mut filename = None;
        let mut binary = body.contains(&0);
        for line in head.lines() {
            let (h, v) = line.split_once(':').unwrap_or((line, ""));
            if h.trim().eq_ignore_ascii_case("content-disposition") {
                name = disposition_param(v, "name").map(str::to_string);
                filename = disposition_param(v, "filename").map(str::to_string);
            } else if h.trim().eq_ignore_ascii_case("content-type") {
                let v = v.trim().to_ascii_lowercase();
                binary |= [
                    "image/",
                    "audio/",
                    "video/",
                    "font/",
                    "application/octet-stream",
                    "application/zip",
                    "application/gzip",
                    "application/pdf",
                ]
                .iter()
                .any(|p| v.starts_with(p));
            }
        }
        if let Some(name) = name {
            out.push(Part {
                name: Cow::Owned(name),
                file: filename.is_some(),
                filename: filename.map(Cow::Owned),
                binary,
                body,
            });
        }
    }
    out
}

/// `data` split at each occurrence of `delim`.
fn memchr_split<'a>(data: &'a [u8], delim: &[u8]) -> Vec<&'a [u8]> {
    let finder = aho_corasick::AhoCorasick::new([delim]).ok();
    let mut out = Vec::new();
    let mut at = 0;
    if let Some(f) = finder {
        for m in f.find_iter(data) {
            out.push(&data[at..m.start()]);
            at = m.end();
        }
    }
    out.push(&data[at..]);
    out
}

fn is_type(req: &Request, what: &str) -> bool {
    req.content_type
        .as_deref()
        .is_some_and(|c| c.to_ascii_lowercase().contains(what))
}

/// Custom headers the model learns: `X-*`, except the proxy and browser
/// ones every client varies in.
fn custom_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("x-")
        && !n.starts_with("x-forwarded-")
        && !matches!(
            n.as_str(),
            "x-real-ip" | "x-requested-with" | "x-api-key" | "x-amzn-trace-id" | "x-request-id"
        )
}

/// The named inputs of a request (the body only when it is whole).
pub fn params(req: &Request) -> Vec<Param<'_>> {
    let mut out = Vec::new();
    fn text<'a>(place: Place, (k, v): (Cow<'a, str>, Cow<'a, str>)) -> Param<'a> {
        Param {
            place,
            name: {
                let f = fold(&k);
                if f == k {
                    k
                } else {
                    Cow::Owned(f.into_owned())
                }
            },
            text: v,
            structural: None,
        }
    }
    if let Some(q) = &req.query {
        out.extend(form_urlencoded::parse(q.as_bytes()).map(|kv| text(Place::Query, kv)));
    }
    if let Some(c) = &req.cookies {
        for pair in c.0.split(';') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !k.trim().is_empty() {
                out.push(text(
                    Place::Cookie,
                    (Cow::Borrowed(k.trim()), Cow::Borrowed(v.trim())),
                ));
            }
        }
    }
    for (n, v) in req.other_headers() {
        if custom_header(n) {
            out.push(text(
                Place::Header,
                (Cow::Owned(n.to_ascii_lowercase()), Cow::Borrowed(v.trim())),
            ));
        }
    }
    if req.body.is_empty() || !body_whole(req) {
        return out;
    }
    if is_type(req, "json") {
        if let Ok(v) = serde_json::from_slice::<Value>(&req.body) {
            let mut body = Vec::new();
            json("", &v, 0, &mut body);
            // Owned names and values borrowed from `v` cannot outlive it.
            out.extend(body.into_iter().map(|p| Param {
                place: p.place,
                name: Cow::Owned(p.name.into_owned()),
                text: Cow::Owned(p.text.into_owned()),
                structural: p.structural,
            }));
        }
    } else if is_type(req, "x-www-form-urlencoded") {
        out.extend(form_urlencoded::parse(&req.body).map(|kv| text(Place::Body, kv)));
    } else if is_type(req, "multipart/") {
        for p in multipart(req) {
            out.push(Param {
                place: Place::Body,
                name: p.name,
                text: if p.file {
                    Cow::Borrowed("")
                } else {
                    String::from_utf8_lossy(p.body)
                },
                structural: p.file.then_some(kind::EMPTY),
            });
        }
    }
    out
}

/// The captured body is the whole body.
pub fn body_whole(req: &Request) -> bool {
    !req.truncated
        && !req.chunked
        && req
            .content_length
            .is_none_or(|n| n == req.body.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ct: &str, body: &str) -> Request {
        Request {
            method: "POST".into(),
            path: "/a".into(),
            query: Some("sort=asc&item[3]=x&12345=y".into()),
            content_type: Some(ct.into()),
            content_length: Some(body.len() as u64),
            body: body.as_bytes().to_vec(),
            headers: crate::parse::http::Hidden("X-Tenant: t1\nX-Forwarded-Proto: https\n".into()),
            ..Request::default()
        }
    }

    fn names<'a>(p: &'a [Param<'_>]) -> Vec<(&'static str, &'a str)> {
        p.iter()
            .map(|p| (p.place.as_str(), p.name.as_ref()))
            .collect()
    }

    #[test]
    fn query_json_and_headers() {
        let r = req(
            "application/json",
            r#"{"amount": 5, "to": {"iban": "X"}, "tags": ["a", "b"], "x": null}"#,
        );
        let p = params(&r);
        assert_eq!(
            names(&p),
            [
                ("query", "sort"),
                ("query", "item[]"),
                ("query", "{id}"),
                ("header", "x-tenant"),
                ("body", "amount"),
                ("body", "tags"),
                ("body", "tags[]"),
                ("body", "tags[]"),
                ("body", "to"),
                ("body", "to.iban"),
                ("body", "x"),
            ]
        );
        assert_eq!(p[4].text, "5");
        assert_eq!(p[8].structural, Some(kind::OBJECT));
    }

    #[test]
    fn multipart_fields_and_files() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHoliday\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n\
                    Content-Type: image/png\r\n\r\n\x00\x01;|`\r\n--XyZ--\r\n";
        let r = req("multipart/form-data; boundary=XyZ", body);
        let parts = multipart(&r);
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_ref(), parts[0].file, parts[0].body),
            ("title", false, &b"Holiday"[..])
        );
        assert!(parts[1].file && parts[1].binary);
        assert_eq!(parts[1].filename.as_deref(), Some("a.png"));
        let p = params(&r);
        let photo = p.iter().find(|p| p.name == "photo").unwrap();
        assert_eq!(
            (photo.text.as_ref(), photo.structural),
            ("", Some(kind::EMPTY))
        );
        // A cut body is not whole: only query and headers.
        let mut cut = r.clone();
        cut.content_length = Some(10_000);
        assert!(params(&cut).iter().all(|p| p.place != Place::Body));
    }
}
