//! URL values judged by where they lead: the host as a resolver reads it
//! (NFKC folding, backslashes, `inet_aton` forms, zone ids), internal and
//! metadata hosts, local-service schemes, and the shapes of remote file
//! inclusion.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::finding::Kind;

/// The host of a URL's `rest` (after `scheme://`), as a resolver would
/// see it: backslashes dropped (`\l\o\c\a\l\h\o\s\t`), compatibility
/// forms folded (NFKC: `ⓁⓄⒸⒶⓁⒽⓄⓈⓉ`, `①②⑦.⓪.⓪.①`), lower case.
fn url_host(rest: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let rest: String = rest.chars().filter(|c| *c != '\\').collect();
    let rest: String = if rest.is_ascii() {
        rest
    } else {
        rest.nfkc().collect::<String>().to_lowercase()
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(inner) = host_port.strip_prefix('[') {
        inner.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.to_string()
}

/// A URL-valued parameter: SSRF when its host is internal (however the
/// address is written) or its scheme reaches local services; RFI when it
/// names something to include (an IP host, a trailing `?`, a wrapper).
pub fn url_threat(lower: &str) -> Option<(Kind, &'static str)> {
    let v = lower.trim();
    // `http:2852039166`, `http:/host`: a web scheme without its two
    // slashes still reaches the host in lenient URL parsers.
    if let Some((scheme, rest)) = v.split_once(':')
        && matches!(scheme, "http" | "https")
        && !rest.starts_with("//")
        && internal_host(&url_host(rest.trim_start_matches('/')))
    {
        return Some((Kind::InjectionSsrf, "internal address"));
    }
    // A bare `host/path` naming an internal host.
    if let Some((h, _)) = v.split_once('/')
        && !h.contains(':')
        && h.contains(|c: char| c.is_ascii_alphabetic())
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        && internal_host(h)
    {
        return Some((Kind::InjectionSsrf, "internal host"));
    }
    // A `data:` URL of text where a URL is fetched: the attacker supplies
    // the "remote" content itself (images and documents are common
    // uploads written this way, text is not).
    if let Some(media) = v.strip_prefix("data:")
        && media.starts_with("text/")
        && !media.starts_with("text/html")
    {
        return Some((Kind::InjectionSsrf, "data url"));
    }
    // mod_proxy's `unix:/path|http://...`: a request to a local socket.
    if v.starts_with("unix:") && v.contains('|') {
        return Some((Kind::InjectionSsrf, "unix socket url"));
    }
    // A URL inside a wrapper (`jar:http://...!/x`, `url:file://...`):
    // resource loaders' syntax, never a parameter's.
    if let Some(inner) = v.strip_prefix("jar:").or_else(|| v.strip_prefix("url:"))
        && inner.contains(':')
    {
        return Some((Kind::InjectionRfi, "wrapped url"));
    }
    if include_probe(v) {
        return Some((Kind::InjectionRfi, "scheme ending in ?"));
    }
    let (scheme, rest) = v.split_once("://")?;
    if scheme.is_empty()
        || scheme.len() > 16
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-' | b'_'))
    {
        return None;
    }
    if matches!(
        scheme,
        "gopher" | "dict" | "file" | "ldap" | "ldaps" | "tftp" | "netdoc" | "jar" | "local_file"
    ) {
        return Some((Kind::InjectionSsrf, "local-service scheme"));
    }
    let host = url_host(rest);
    if internal_host(&host) {
        return Some((Kind::InjectionSsrf, "internal address"));
    }
    // `http://good:80 &@good:80# @10.0.0.1:22/`: URL parsers disagree on
    // where user info ends; any host after an `@` may be the one reached.
    if rest.matches('@').count() > 1 || (rest.contains('@') && rest.contains([' ', '#'])) {
        let confused = rest
            .match_indices('@')
            .map(|(i, _)| url_host(&rest[i + 1..]))
            .any(|h| internal_host(&h));
        if confused {
            return Some((Kind::InjectionSsrf, "internal address behind user info"));
        }
    }
    if matches!(scheme, "http" | "https" | "ftp" | "ftps") {
        if host.parse::<Ipv4Addr>().is_ok() || host.parse::<Ipv6Addr>().is_ok() {
            return Some((Kind::InjectionRfi, "url with an ip address"));
        }
        if v.ends_with('?') || v.contains('\0') {
            return Some((Kind::InjectionRfi, "url ending in ?"));
        }
    }
    None
}

/// A raw (still percent-encoded) URL whose authority hides a delimiter
/// before its `@`: `http://example.com%2f@evil.com/`. A validator that
/// decodes first sees the host `example.com` and a path; a client that
/// parses first connects to `evil.com`. (`medium.com/@name` has its slash
/// in the clear: the `@` is in the path.)
pub fn disguised_authority(raw: &str) -> bool {
    let lower = raw.to_ascii_lowercase();
    let Some(at) = lower.find("://") else {
        return false;
    };
    let rest = &lower[at + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    authority.rfind('@').is_some_and(|user_end| {
        let user = &authority[..user_end];
        // What stands before the hidden delimiter must look like a host
        // (`example.com`, `10.0.0.1:80`): a password with an encoded
        // slash (`user:pa%2Fss@`) is user info as RFC 3986 writes it.
        ["%2f", "%5c", "%3f", "%23", "%252f", "%255c", "\\"]
            .iter()
            .filter_map(|d| user.find(d))
            .min()
            .is_some_and(|cut| {
                let shown = &user[..cut];
                let host = shown.split(':').next().unwrap_or("");
                host.contains('.')
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
            })
    })
}

/// `http?`, `ftp:evil/x.txt?`: a fetchable scheme, with or without a
/// host, whose last `?` turns whatever the application appends into a
/// query string: how a remote (or local) include is probed. One token
/// with no spaces, so a question in prose ("is it https?") or a word that
/// only starts like a scheme ("httpclient?", "filed?") does not match.
fn include_probe(v: &str) -> bool {
    let Some(rest) = ["https", "http", "ftps", "ftp", "file"]
        .iter()
        .find_map(|s| v.strip_prefix(s))
    else {
        return false;
    };
    v.len() < 256
        && (rest.starts_with(':') || rest.starts_with('?'))
        && v.ends_with('?')
        && !v.contains(char::is_whitespace)
}

/// Loopback, private, link-local, unspecified, shared or metadata hosts,
/// including IPv4 in decimal, octal or hex and IPv4-mapped IPv6.
fn internal_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.is_empty() {
        return false;
    }
    if host == "localhost"
        || [
            ".localhost",
            ".internal",
            ".local",
            ".localdomain",
            ".svc",
            ".cluster.local",
            ".lvh.me",
            ".localtest.me",
        ]
        .iter()
        .any(|s| host.ends_with(s))
        || host.starts_with("kubernetes.default")
        || matches!(
            host,
            "metadata"
                | "instance-data"
                | "localtest.me"
                | "lvh.me"
                | "localhost.localdomain"
                | "ipv6-localhost"
                | "ip6-localhost"
                | "ip6-loopback"
                | "metadata.google.internal"
                | "localhost4"
                | "localhost6"
                | "localhost4.localdomain4"
                | "localhost6.localdomain6"
                | "metadata.packet.net"
                | "metadata.platformequinix.com"
                | "metadata.tencentyun.com"
                | "metadata.azure.com"
        )
    {
        return true;
    }
    if let Some(v4) = loose_ipv4(host) {
        return internal_v4(v4);
    }
    // A zone id (`fe80::1%eth0`, `%25`-escaped in a URL) names a local
    // interface: only link-local addresses have one.
    let host = host.split_once('%').map_or(host, |(a, _)| a);
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        if let Some(v4) = v6.to_ipv4_mapped() {
            return internal_v4(v4);
        }
        // IPv4-compatible (`::169.254.169.254`), deprecated but parsed.
        let s = v6.segments();
        if s[..6].iter().all(|x| *x == 0) && (s[6] != 0 || s[7] > 1) {
            let [a, b] = s[6].to_be_bytes();
            let [c, d] = s[7].to_be_bytes();
            return internal_v4(Ipv4Addr::new(a, b, c, d));
        }
        let first = v6.segments()[0];
        return v6.is_loopback()
            || v6.is_unspecified()
            || (first & 0xfe00) == 0xfc00
            || (first & 0xffc0) == 0xfe80;
    }
    // Wildcard DNS that resolves to an address written in the name.
    host.split(['.', '-'])
        .collect::<Vec<_>>()
        .windows(4)
        .filter_map(|w| format!("{}.{}.{}.{}", w[0], w[1], w[2], w[3]).parse().ok())
        .any(internal_v4)
}

fn internal_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        || o[0] == 0
        // IETF protocol assignments (192.0.0.0/24: Oracle Cloud's metadata
        // service answers at 192.0.0.192).
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
}

/// IPv4 as inet_aton reads it: 1 to 4 parts, each decimal, octal (`0`)
/// or hex (`0x`), the last filling the remaining bytes.
pub(super) fn loose_ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(4);
    let hex_alone = parts.len() == 1 && parts[0].starts_with("0x");
    for p in &parts {
        let n = if let Some(h) = p.strip_prefix("0x") {
            u64::from_str_radix(h, 16).ok()?
        } else if p.len() > 1 && p.starts_with('0') {
            u64::from_str_radix(&p[1..], 8).ok()?
        } else {
            p.parse::<u64>().ok()?
        };
        nums.push(n);
    }
    let (last, head) = nums.split_last()?;
    if head.iter().any(|n| *n > 255) {
        return None;
    }
    let room = 8 * (4 - head.len() as u32);
    // One number past 32 bits: parsers that wrap it (as some do) read it
    // modulo 2^32 (`7147006462` is 169.254.169.254, and so is
    // `0x41414141a9fea9fe`: no host name is written in hex).
    let last = if head.is_empty() && *last >= 1u64 << 32 && (*last < 1u64 << 40 || hex_alone) {
        &(*last & 0xffff_ffff)
    } else {
        last
    };
    if *last >= 1u64 << room {
        return None;
    }
    let mut v: u64 = 0;
    for (i, n) in head.iter().enumerate() {
        v |= n << (24 - 8 * i as u32);
    }
    Some(Ipv4Addr::from((v | last) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_is_read_the_way_inet_aton_reads_it() {
        for (s, want) in [
            ("2130706433", "127.0.0.1"),
            ("0x7f000001", "127.0.0.1"),
            ("017700000001", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("10.0.513", "10.0.2.1"),
            ("169.254.43518", "169.254.169.254"),
            ("0x41414141a9fea9fe", "169.254.169.254"),
        ] {
            assert_eq!(loose_ipv4(s), Some(want.parse().unwrap()), "{s}");
        }
        for s in ["", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "example", "0x"] {
            assert_eq!(loose_ipv4(s), None, "{s}");
        }
    }
}
