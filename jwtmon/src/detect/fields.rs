//! What detectors read from a request beyond its head: query and body
//! values (percent- and form-decoded, JSON string values), the username of
//! a login attempt, and login-path matching.

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
}

impl Place {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Place::Path => "path",
            Place::Query => "query",
            Place::Body => "body",
        }
    }
}

fn is_json(req: &Request) -> bool {
    req.content_type
        .as_deref()
        .is_some_and(|c| c.to_ascii_lowercase().contains("json"))
}

fn is_form(req: &Request) -> bool {
    req.content_type.as_deref().is_some_and(|c| {
        c.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    })
}

fn json_strings(v: &Value, out: &mut Vec<(Place, Cow<'static, str>)>) {
    match v {
        Value::String(s) => out.push((Place::Body, Cow::Owned(s.clone()))),
        Value::Array(a) => a.iter().for_each(|v| json_strings(v, out)),
        Value::Object(o) => o.values().for_each(|v| json_strings(v, out)),
        _ => {}
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

/// Every value an injection could ride in: the decoded path, each query
/// value and key, and the body's values (form fields, JSON strings, or the
/// raw text). Each is cut to `max` bytes.
pub fn values(req: &Request, max: usize) -> Vec<(Place, Cow<'_, str>)> {
    let cut = |s| cut_to(s, max);
    let mut out = Vec::new();
    out.push((
        Place::Path,
        cut(percent_encoding::percent_decode_str(&req.path).decode_utf8_lossy()),
    ));
    if let Some(q) = &req.query {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            for x in [k, v] {
                if !x.is_empty() {
                    out.push((Place::Query, cut(x)));
                }
            }
        }
    }
    if req.body.is_empty() {
        return out;
    }
    if is_json(req)
        && let Ok(v) = serde_json::from_slice::<Value>(&req.body)
    {
        let mut strings = Vec::new();
        json_strings(&v, &mut strings);
        out.extend(strings.into_iter().map(|(p, s)| (p, cut(s))));
    } else if is_form(req) || (!is_json(req) && req.body.contains(&b'=')) {
        for (k, v) in form_urlencoded::parse(&req.body) {
            for x in [k, v] {
                if !x.is_empty() {
                    out.push((Place::Body, cut(Cow::Owned(x.into_owned()))));
                }
            }
        }
    } else {
        out.push((Place::Body, cut(String::from_utf8_lossy(&req.body))));
    }
    out
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
                "1' OR 1=1"
            ]
        );
        let r = req("application/json", r#"{"a":{"b":["x","y"]},"n":1}"#);
        let v: Vec<String> = values(&r, 100).into_iter().map(|(_, s)| s.into()).collect();
        assert_eq!(v, ["/api/v1/login", "x", "y"]);
    }
}
