//! Requests shaped so that the filter in front and the application behind
//! read them differently (parser differentials): parameter names with
//! text after an array index, and RFC 2109 `$Version` cookies. Neither is
//! sent by a browser or an HTTP library; both are how parameter pollution
//! and cookie smuggling get a value past a filter.

use crate::{
    detect::fields::{form_pairs, is_form},
    parse::Request,
};

use super::super::fields::Place;

/// What shape of differential a request carries, and where.
pub fn confusion(req: &Request) -> Vec<(Place, &'static str)> {
    let mut out = Vec::new();
    // Only a name with a closing bracket can have text after one.
    let bracket = |t: &&[u8]| t.contains(&b']');
    let sources = [
        (
            Place::Query,
            req.query.as_deref().map(str::as_bytes).filter(bracket),
        ),
        (
            Place::Body,
            Some(req.body.as_slice()).filter(|b| bracket(b) && is_form(req)),
        ),
    ];
    for (place, text) in sources {
        if let Some(text) = text
            && form_pairs(text).any(|(k, _)| text_after_index(&k))
        {
            out.push((place, "text after a parameter's array index"));
        }
    }
    if req.cookies.as_ref().is_some_and(|c| rfc2109_cookie(&c.0)) {
        out.push((Place::Cookie, "rfc 2109 $Version cookie"));
    }
    out
}

/// `foo[1]a` or `foo[1]a[2]`: after the first `[`, the name must be a run
/// of `[...]` groups. PHP drops what follows a closing bracket, other
/// parsers keep it, so the two see different parameters.
fn text_after_index(name: &str) -> bool {
    let Some(open) = name.find('[') else {
        return false;
    };
    let mut rest = &name[open..];
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            // An unclosed bracket is read as part of the name everywhere.
            return false;
        };
        rest = &inner[close + 1..];
    }
    !rest.is_empty()
}

/// A `$Version` attribute (RFC 2109, obsoleted in 2011) as a cookie of
/// its own: servers that still honour it switch to a quoting grammar in
/// which one quoted value swallows the cookies after it.
fn rfc2109_cookie(header: &str) -> bool {
    header.contains('$')
        && header.split([';', ',']).any(|pair| {
            let name = pair.trim().trim_start_matches('"').split('=').next();
            name.is_some_and(|n| n.trim().eq_ignore_ascii_case("$version"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_names_with_trailing_text_are_differentials() {
        for name in ["foo[1]a", "foo[1]a[2]", "a[]b", "x[y]]"] {
            assert!(text_after_index(name), "{name}");
        }
        for name in [
            "foo",
            "foo[1]",
            "foo[1][2]",
            "foo[]",
            "foo[",
            "a[b",
            "ids[0][name]",
        ] {
            assert!(!text_after_index(name), "{name}");
        }
    }

    #[test]
    fn version_cookies_and_only_those() {
        assert!(rfc2109_cookie("$Version=1; session=\"x; a=b\""));
        assert!(rfc2109_cookie("\"$Version=1; session=x\""));
        assert!(rfc2109_cookie("a=b; $version = 1"));
        assert!(!rfc2109_cookie("MyVersion=1; PHPSESSID=secret"));
        assert!(!rfc2109_cookie("version=2; theme=$Version"));
    }
}
