//! Shapes added by `detect.injection.paranoia` levels 2 to 4: fragments
//! of attack syntax that CRS reports at its higher paranoia levels, and
//! that ordinary text also carries now and then. Each level adds to the
//! ones below. Also the URL checks that need the request's own host: at
//! level 1 a URL value naming a script on another host (remote file
//! inclusion) or a host dressed up as this one; from level 2 any URL to
//! another host, and user info that disguises the host. What each level
//! costs in false positives is measured by `cargo xtask conformance`
//! (README, "Paranoia levels").

use std::sync::LazyLock;

use regex::RegexSet;

use super::super::fields::Place;
use crate::finding::Kind;

/// One shape: the level it starts at, its kind, its name, its pattern
/// (over the decoded, lower-cased value) and where it looks.
struct Shape {
    level: u8,
    kind: Kind,
    name: &'static str,
    places: &'static [Place],
}

const VALUES: &[Place] = &[Place::Query, Place::Body, Place::Cookie];
const LINES: &[Place] = &[Place::Query, Place::Cookie, Place::Header];
const ARGS: &[Place] = &[Place::Query, Place::Cookie];

static SHAPES: LazyLock<(Vec<Shape>, RegexSet)> = LazyLock::new(|| {
    let words = super::patterns::WORDS;
    let tools = super::patterns::TOOLS;
    let rules: Vec<(u8, Kind, &'static str, &'static [Place], String)> = vec![
        (2, Kind::InjectionCrlf, "line break in a value", LINES, r"[\r\n]".into()),
        (
            2,
            Kind::InjectionSqli,
            "quote then sql operator or comment",
            VALUES,
            r#"['"`]\s*(?:;|--|#|/\*|\|\||&&|\b(?:or|and|xor|div|like|rlike|regexp|between|having|union|order\s+by|group\s+by)\b)"#.into(),
        ),
        (2, Kind::InjectionXss, "html tag", VALUES, r"<[a-z][a-z0-9-]*[\s/>]".into()),
        (
            2,
            Kind::InjectionSqli,
            "sql function call",
            ARGS,
            r"\b(?:abs|ascii|bin|char|chr|concat(?:_ws)?|conv|date|format|hex|unhex|instr|length|lower|ln|minute|mid|ord|pi|position|pow|rand|repeat|replace|reverse|round|sleep|space|substr|substring|sum|trim|upper|user|version|database|schema|count|group_concat|load_file|benchmark|extractvalue|updatexml|cast|convert|coalesce|ifnull|nullif|iif)\s*\(".into(),
        ),
        (
            2,
            Kind::InjectionSqli,
            "sql operator",
            ARGS,
            r"(?:^|\s|\w)(?:\|\||&&|<=>|<>|!=|->>?)(?:\s|$|\(|\w)|\bis\s+(?:not\s+)?null\b|\blike\s+null\b|\bcollate\s".into(),
        ),
        (
            2,
            Kind::InjectionCommand,
            "shell word then arguments",
            ARGS,
            format!(r"^\s*{words}\s+(?:-{{1,2}}[a-z]|/)"),
        ),
        (
            2,
            Kind::InjectionCommand,
            "tool then an argument",
            VALUES,
            // `cscli alerts list`, `'ansible-doc' plugin ping`: a tool's
            // name opening the value, with no shell syntax around it.
            format!(r#"^\s*['"]?{tools}['"]?\s+['"]?[a-z0-9_./~-]"#),
        ),
        (3, Kind::InjectionCommand, "shell metacharacter", ARGS, r"[;|`]|\$\(|&&".into()),
        (
            3,
            Kind::InjectionSqli,
            "sql keyword",
            VALUES,
            r"\b(?:select|union|insert|update|delete|drop|truncate|exec|execute|sleep|benchmark|waitfor|information_schema)\b".into(),
        ),
        (3, Kind::InjectionPathTraversal, "dot segment", VALUES, r"\.\.[/\\]".into()),
        (
            4,
            Kind::InjectionSqli,
            "many special characters",
            ARGS,
            r#"(?:[~!@#$%^&*()\-+={}\[\]|:;'"<>`][^~!@#$%^&*()\-+={}\[\]|:;'"<>`]*){6}"#.into(),
        ),
    ];
    let set = RegexSet::new(rules.iter().map(|r| r.4.as_str())).expect("patterns compile");
    let shapes = rules
        .into_iter()
        .map(|(level, kind, name, places, _)| Shape {
            level,
            kind,
            name,
            places,
        })
        .collect();
    (shapes, set)
});

/// Compiles the patterns now.
pub fn warm() {
    LazyLock::force(&SHAPES);
}

/// The host part of a URL value (`scheme://[user@]host[:port]/...`) and
/// whether its user info looks like a host (`good.example/@evil.example`).
fn url_host(lower: &str) -> Option<(&str, bool)> {
    let (scheme, rest) = lower.trim().split_once("://")?;
    if !matches!(scheme, "http" | "https" | "ftp" | "ftps") {
        return None;
    }
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let before_query = &rest[..end];
    let (userinfo, after) = match before_query.rfind('@') {
        Some(at) => (Some(&before_query[..at]), &before_query[at + 1..]),
        None => (None, before_query),
    };
    let host_port = after.split(['/', '\\']).next().unwrap_or("");
    let host = if let Some(inner) = host_port.strip_prefix('[') {
        inner.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let disguised = userinfo.is_some_and(|u| u.contains('.') && u.contains(['/', '\\', ':']));
    Some((host, disguised))
}

/// `host` dressed up as `mine` to pass a prefix or suffix check on the
/// URL: `example.com.evil.test` (at least two labels after it, so the
/// company's `example.com.au` is not one) or `evilexample.com` (glued in
/// front, where a subdomain would have a dot). Compared without case.
fn lookalike(host: &str, mine: &str) -> bool {
    if mine.len() < 4 || !mine.contains('.') || mine.parse::<std::net::IpAddr>().is_ok() {
        return false;
    }
    let n = mine.len();
    let same = |part: Option<&str>| part.is_some_and(|p| p.eq_ignore_ascii_case(mine));
    if same(host.get(..n))
        && let Some(tail) = host[n..].strip_prefix(['.', '-'])
    {
        return tail.split('.').filter(|l| !l.is_empty()).count() >= 2;
    }
    let cut = host.len().saturating_sub(n);
    host.len() > n && same(host.get(cut..)) && !host[..cut].ends_with('.')
}

/// The shapes of levels up to `level` that `lower` (at `place`, in a
/// request to `host`) matches, one per kind.
pub fn detect(
    level: u8,
    place: Place,
    lower: &str,
    host: Option<&str>,
) -> Vec<(Kind, &'static str)> {
    let mut out: Vec<(Kind, &'static str)> = Vec::new();
    if VALUES.contains(&place)
        && let Some((h, disguised)) = url_host(lower)
    {
        let mine = host.map(|m| m.split(':').next().unwrap_or(m).trim_end_matches('.'));
        let other =
            !h.is_empty() && mine.is_none_or(|m| !m.eq_ignore_ascii_case(h.trim_end_matches('.')));
        if other && remote_script(lower) {
            out.push((Kind::InjectionRfi, "script on another host"));
        } else if other && mine.is_some_and(|m| lookalike(h.trim_end_matches('.'), m)) {
            out.push((Kind::InjectionRfi, "look-alike of this host"));
        } else if level >= 2 && disguised {
            out.push((Kind::InjectionRfi, "user info disguising the host"));
        } else if level >= 2 && other && mine.is_some() {
            out.push((Kind::InjectionRfi, "url to another host"));
        }
    }
    if level < 2 {
        return out;
    }
    let (shapes, set) = &*SHAPES;
    let ascii = crate::detect::decode::ascii_view(lower);
    for i in &set.matches(&ascii) {
        let s = &shapes[i];
        if s.level <= level && s.places.contains(&place) && !out.iter().any(|(k, _)| *k == s.kind) {
            out.push((s.kind, s.name));
        }
    }
    out
}

/// A URL whose path names server-side script or include source (what a
/// remote file inclusion loads): `.php`, `.inc`, `.txt`, `.jsp`, ...
fn remote_script(lower: &str) -> bool {
    let path = lower.split(['?', '#']).next().unwrap_or("");
    let last = path.rsplit('/').next().unwrap_or("");
    [
        ".php", ".phtml", ".inc", ".txt", ".jsp", ".asp", ".aspx", ".pl", ".cgi", ".sh", ".py",
    ]
    .iter()
    .any(|e| last.ends_with(e))
        && path.matches('/').count() >= 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(level: u8, v: &str) -> Vec<&'static str> {
        detect(
            level,
            Place::Query,
            &v.to_ascii_lowercase(),
            Some("api.example.com"),
        )
        .into_iter()
        .map(|(k, _)| k.name())
        .collect()
    }

    #[test]
    fn levels_add_up() {
        assert!(kinds(1, "a\r\nb").is_empty());
        assert_eq!(
            kinds(1, "https://evil.example/shell.txt"),
            ["injection_rfi"]
        );
        assert!(kinds(1, "https://api.example.com/shell.txt").is_empty());
        assert!(kinds(1, "https://evil.example/x").is_empty());
        assert_eq!(kinds(2, "a\r\nb"), ["injection_crlf"]);
        assert_eq!(kinds(2, "https://evil.example/x"), ["injection_rfi"]);
        assert!(kinds(2, "https://api.example.com/next").is_empty());
        assert_eq!(
            kinds(2, "http://api.example.com/@evil.example/"),
            ["injection_rfi"]
        );
        assert_eq!(kinds(2, "env --version"), ["injection_command"]);
        assert_eq!(kinds(2, "cscli alerts list"), ["injection_command"]);
        assert!(kinds(1, "cscli alerts list").is_empty());
        assert!(kinds(2, "a;b").is_empty());
        assert_eq!(kinds(3, "a;b"), ["injection_command"]);
        assert_eq!(kinds(3, "select the best"), ["injection_sqli"]);
        assert!(kinds(3, "(a)-[b]").is_empty());
        assert_eq!(kinds(4, "(a)-[b]{c}"), ["injection_sqli"]);
        // Plain words at any level.
        assert!(kinds(4, "red shoes size 42").is_empty());
    }

    #[test]
    fn look_alikes_of_this_host_at_level_one() {
        for v in [
            "https://api.example.com.evil.test/cb",
            "https://api.example.com-login.evil.test/",
            "https://evilapi.example.com/",
        ] {
            assert_eq!(kinds(1, v), ["injection_rfi"], "{v}");
        }
        for v in [
            "https://api.example.com/cb",
            "https://eu.api.example.com/cb",
            "https://api.example.com.au/",
            "https://partner.test/cb",
        ] {
            assert!(kinds(1, v).is_empty(), "{v}");
        }
        assert!(!lookalike("localhostx", "localhost"));
        assert!(!lookalike("10.0.0.1.evil.test", "10.0.0.1"));
    }
}
