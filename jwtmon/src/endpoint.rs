//! Endpoint names: `METHOD /templated/path`. Identifiers in the path
//! (numbers, UUIDs, long hex, base64-ish tokens, e-mail addresses) become
//! `{id}`-style placeholders so calls to the same operation group together.
//! The query string is never part of the endpoint.

/// The placeholder a path segment becomes, if it is an identifier.
fn placeholder(seg: &str) -> Option<&'static str> {
    let b = seg.as_bytes();
    if b.is_empty() {
        return None;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return Some("{id}");
    }
    if is_uuid(b) {
        return Some("{uuid}");
    }
    if b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit) {
        return Some("{hex}");
    }
    if seg.contains('@') && seg.contains('.') {
        return Some("{email}");
    }
    // Long opaque tokens: base64/base64url with digits and letters mixed.
    let tokenish = b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'=' | b'+' | b'.'));
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if b.len() >= 20 && tokenish && digits > 0 && digits < b.len() {
        return Some("{token}");
    }
    None
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Normalizes a raw request path (no query).
pub fn normalize_path(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut out = String::with_capacity(path.len());
    for seg in path.split('/').skip(1) {
        out.push('/');
        out.push_str(placeholder(seg).unwrap_or(seg));
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Feeds `METHOD /normalized/path` to `h` without building the string
/// (per-request state keyed by endpoint, on the hot path).
pub fn hash_endpoint(method: &str, path: &str, h: &mut impl std::hash::Hasher) {
    h.write(method.as_bytes());
    let path = path.split(['?', '#']).next().unwrap_or("");
    for seg in path.split('/').skip(1) {
        h.write_u8(b'/');
        h.write(placeholder(seg).unwrap_or(seg).as_bytes());
    }
}

/// `METHOD /normalized/path`.
pub fn endpoint(method: &str, path: &str) -> String {
    format!("{method} {}", normalize_path(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_become_placeholders() {
        assert_eq!(
            endpoint("GET", "/api/v1/accounts/12345/balance?x=1"),
            "GET /api/v1/accounts/{id}/balance"
        );
        assert_eq!(
            normalize_path("/u/4f7d2c1e-0a1b-4c2d-9e3f-001122334455/x"),
            "/u/{uuid}/x"
        );
        assert_eq!(normalize_path("/blob/deadbeefdeadbeef00"), "/blob/{hex}");
        assert_eq!(normalize_path("/users/alice@example.com"), "/users/{email}");
        assert_eq!(
            normalize_path("/reset/dGhpcyBpcyBhIHRva2VuMTIz"),
            "/reset/{token}"
        );
        // Words stay words.
        assert_eq!(
            normalize_path("/api/v2/transferFunds"),
            "/api/v2/transferFunds"
        );
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("/"), "/");
    }

    #[test]
    fn endpoint_hashes_group_like_names() {
        let h = |m: &str, p: &str| {
            let mut h = std::hash::DefaultHasher::new();
            hash_endpoint(m, p, &mut h);
            std::hash::Hasher::finish(&h)
        };
        assert_eq!(h("GET", "/a/1/b?x=1"), h("GET", "/a/22/b"));
        assert_ne!(h("GET", "/a/1/b"), h("POST", "/a/1/b"));
        assert_ne!(h("GET", "/a/b"), h("GET", "/ab"));
    }
}
