//! `multipart/form-data` bodies: the parts, each with its field name, its
//! file name, whether it is binary, and its bytes. Tolerant of a body the
//! capture cut, and of bare-LF line ends.

use std::borrow::Cow;

use crate::parse::Request;

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
    // Asked of every request (upload names): no lowercase copy.
    if !ct
        .trim_start()
        .get(..10)
        .is_some_and(|p| p.eq_ignore_ascii_case("multipart/"))
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
        let mut declared_binary = false;
        for line in head.lines() {
            let (h, v) = line.split_once(':').unwrap_or((line, ""));
            if h.trim().eq_ignore_ascii_case("content-disposition") {
                name = disposition_param(v, "name").map(str::to_string);
                filename = disposition_param(v, "filename").map(str::to_string);
            } else if h.trim().eq_ignore_ascii_case("content-type") {
                let v = v.trim().to_ascii_lowercase();
                declared_binary |= [
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
        // A part labelled binary whose bytes are text is read as text: a
        // script sent as `image/jpeg` is still a script.
        let binary = body.contains(&0) || (declared_binary && !looks_text(body));
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

/// Bytes that are text: their first 4 KiB are UTF-8 (a character cut at
/// the end allowed) with no control character but tab, line ends and form
/// feed. Images, archives and other binary formats fail within their
/// first bytes (magic numbers, lengths); a polyglot that opens like an
/// image (`GIF89a;<?php`) and goes on as text does not.
pub fn looks_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !text
        .bytes()
        .any(|b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)) || b == 0x7f)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ct: &str, body: &str) -> Request {
        Request {
            method: "POST".into(),
            path: "/a".into(),
            content_type: Some(ct.into()),
            content_length: Some(body.len() as u64),
            body: body.as_bytes().to_vec(),
            ..Request::default()
        }
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
        let p = crate::detect::params::params(&r);
        let photo = p.iter().find(|p| p.name == "photo").unwrap();
        assert_eq!(
            (photo.text.as_ref(), photo.structural),
            ("", Some(crate::detect::schema::shape::kind::EMPTY))
        );
        // A cut body is not whole: only query and headers.
        let mut cut = r.clone();
        cut.content_length = Some(10_000);
        assert!(
            crate::detect::params::params(&cut)
                .iter()
                .all(|p| p.place != crate::detect::fields::Place::Body)
        );
    }
}
