//! Named request inputs, for the schema model: query and form fields,
//! JSON body members (nested names as `a.b`, array elements as `a[]`),
//! multipart fields, cookies and custom `X-*` headers, each with its
//! value. Names that are themselves identifiers (`{"1234": ...}`,
//! `item[7]`) are folded to a placeholder so they do not look like ever
//! new parameters.

use std::borrow::Cow;

use serde_json::Value;

use super::{
    fields::{self, Place},
    multipart::multipart,
    schema::shape::kind,
};
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
    // The body as the injection fields read it (inflated when encoded).
    let body = fields::body(req);
    if fields::is_json(req) {
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
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
    } else if fields::is_form(req) {
        out.extend(form_urlencoded::parse(&body).map(|(k, v)| {
            text(
                Place::Body,
                (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())),
            )
        }));
    } else if fields::is_multipart(req) {
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
}
