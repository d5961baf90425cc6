//! Who the client is: the packet source, or, when that is a trusted proxy,
//! the rightmost untrusted hop of X-Forwarded-For / Forwarded.

use std::net::IpAddr;

use crate::{
    parse::Request,
    target::{Target, covers},
};

/// Parses one forwarding hop (`203.0.113.7`, `203.0.113.7:443`,
/// `[2001:db8::1]:443`, `"[2001:db8::1]"`); `None` for `unknown` or
/// obfuscated identifiers.
fn hop_ip(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    hop.rsplit_once(':')?.0.parse().ok()
}

/// The client of a request whose packets came from `peer`.
pub fn client_ip(peer: IpAddr, req: &Request, trusted: &[Target]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|t| covers(t, &Target::Ip(ip)));
    if !is_trusted(peer) {
        return peer;
    }
    // Forwarded (RFC 7239) wins over the de-facto X-Forwarded-For.
    let hops = if req.forwarded.is_empty() {
        &req.forwarded_for
    } else {
        &req.forwarded
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop_ip(hop) {
            Some(ip) if is_trusted(ip) => client = ip,
            Some(ip) => return ip,
            // An unparsable hop ends the chain of trust.
            None => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(xff: &[&str], fwd: &[&str]) -> Request {
        Request {
            forwarded_for: xff.iter().map(ToString::to_string).collect(),
            forwarded: fwd.iter().map(ToString::to_string).collect(),
            ..Request::default()
        }
    }

    #[test]
    fn rightmost_untrusted_hop() {
        let trusted: Vec<Target> =
            vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        // Spoofed leftmost entry is ignored: the proxy appended the real one.
        let r = req(&["6.6.6.6", "203.0.113.9", "10.1.1.1"], &[]);
        assert_eq!(client_ip(lo, &r, &trusted).to_string(), "203.0.113.9");
        // Untrusted peer: headers are not believed.
        let peer: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(client_ip(peer, &r, &trusted), peer);
        // Forwarded with IPv6 and port.
        let r = req(&[], &["\"[2001:db8::7]:4711\""]);
        assert_eq!(client_ip(lo, &r, &trusted).to_string(), "2001:db8::7");
        // No header: the proxy itself.
        assert_eq!(client_ip(lo, &req(&[], &[]), &trusted), lo);
        // Garbage hop stops the chain.
        let r = req(&["203.0.113.9", "garbage"], &[]);
        assert_eq!(client_ip(lo, &r, &trusted), lo);
    }
}
