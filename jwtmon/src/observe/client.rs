//! Who the client is: the packet source, or, when that is a trusted proxy,
//! the rightmost untrusted hop of the one forwarding header the config
//! names (`capture.forwarded_header`). A trusted proxy is never the client:
//! a request it does not attribute (no header, `for=unknown`, a hop that
//! does not parse, or only trusted hops) has no client to block. An
//! untrusted source that forwards for several distinct clients is a
//! suspected proxy: never attributed, and the operator is told once.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    net::IpAddr,
    num::NonZeroUsize,
};

use crate::bounded::BoundedLru;
use tracing::warn;

pub use crate::capture::config::ForwardedHeader;
use crate::{
    parse::Request,
    target::{Target, covers},
};

/// The client of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// The address findings name.
    pub ip: IpAddr,
    /// Whether `ip` is the sender itself, or the client a trusted proxy
    /// names. `false`: a proxy's request with no client (never enforced).
    pub attributed: bool,
}

/// Parses one forwarding hop (`203.0.113.7`, `203.0.113.7:443`,
/// `[2001:db8::1]:443`, `"[2001:db8::1]"`); `None` for `unknown` or
/// obfuscated identifiers. IPv4-mapped IPv6 hops become IPv4.
fn hop_ip(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    let ip: IpAddr = if let Ok(ip) = hop.parse() {
        ip
    } else if let Some(rest) = hop.strip_prefix('[') {
        rest.split(']').next()?.parse().ok()?
    } else {
        hop.rsplit_once(':')?.0.parse().ok()?
    };
    Some(ip.to_canonical())
}

fn hops(req: &Request, header: ForwardedHeader) -> &[String] {
    match header {
        ForwardedHeader::XForwardedFor => &req.forwarded_for,
        ForwardedHeader::Forwarded => &req.forwarded,
    }
}

/// The client of a request whose packets came from `peer`.
pub fn client_ip(
    peer: IpAddr,
    req: &Request,
    trusted: &[Target],
    header: ForwardedHeader,
) -> Client {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|t| covers(t, &Target::Ip(ip)));
    let unattributed = Client {
        ip: peer,
        attributed: false,
    };
    if !is_trusted(peer) {
        return Client {
            ip: peer,
            attributed: true,
        };
    }
    for hop in hops(req, header).iter().rev() {
        match hop_ip(hop) {
            Some(ip) if is_trusted(ip) => {}
            Some(ip) => {
                return Client {
                    ip,
                    attributed: true,
                };
            }
            // An unparsable or `unknown` hop ends the chain of trust.
            None => return unattributed,
        }
    }
    unattributed
}

/// Sources outside `trusted_proxies` that forward for many clients.
pub struct SuspectedProxies {
    after: usize,
    /// Whether any source was ever suspected (most requests carry no
    /// forwarding header; they then cost no lookup until one was).
    any: bool,
    seen: BoundedLru<IpAddr, (Vec<u64>, bool)>,
}

impl SuspectedProxies {
    /// Suspects a source once it forwarded for `after` distinct clients
    /// (0: never); remembers at most `capacity` sources.
    pub fn new(after: usize, capacity: usize) -> Self {
        Self {
            after,
            any: false,
            seen: BoundedLru::new(NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN)),
        }
    }

    /// Records a request from untrusted `peer`; true when `peer` is (now)
    /// a suspected proxy.
    pub fn suspect(&mut self, peer: IpAddr, req: &Request, header: ForwardedHeader) -> bool {
        if self.after == 0 {
            return false;
        }
        let Some(last) = hops(req, header).last() else {
            return self.any && self.seen.peek(&peer).is_some_and(|(_, s)| *s);
        };
        let mut h = DefaultHasher::new();
        last.trim().hash(&mut h);
        let h = h.finish();
        let (clients, suspected) = self.seen.get_or_insert_mut(peer, || (Vec::new(), false));
        if !*suspected && !clients.contains(&h) {
            clients.push(h);
            if clients.len() >= self.after {
                *suspected = true;
                self.any = true;
                clients.clear();
                warn!(%peer, clients = self.after,
                      "{peer} forwards requests for several clients but is not in capture.trusted_proxies: \
                       it is never blocked, and its clients cannot be. If it is your proxy, add it: \
                       trusted_proxies = [\"{peer}\"] under [capture]");
            }
        }
        *suspected
    }
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

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;

    fn trusted() -> Vec<Target> {
        vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()]
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn attributed(ip: IpAddr) -> Client {
        Client {
            ip,
            attributed: true,
        }
    }

    #[test]
    fn rightmost_untrusted_hop_of_the_configured_header() {
        let t = trusted();
        let lo = ip("127.0.0.1");
        // A spoofed leftmost entry is ignored: the proxy appended the real one.
        let r = req(&["6.6.6.6", "203.0.113.9", "10.1.1.1"], &[]);
        assert_eq!(client_ip(lo, &r, &t, XFF), attributed(ip("203.0.113.9")));
        // Untrusted peer: headers are not believed.
        let peer = ip("198.51.100.1");
        assert_eq!(client_ip(peer, &r, &t, XFF), attributed(peer));
        // Forwarded with IPv6 and port, when that is the configured header.
        let r = req(&[], &["\"[2001:db8::7]:4711\""]);
        let fwd = ForwardedHeader::Forwarded;
        assert_eq!(client_ip(lo, &r, &t, fwd), attributed(ip("2001:db8::7")));
        // Mapped addresses are canonical.
        let r = req(&["::ffff:203.0.113.5"], &[]);
        assert_eq!(client_ip(lo, &r, &t, XFF), attributed(ip("203.0.113.5")));
    }

    #[test]
    fn a_client_forwarded_header_cannot_frame_a_victim() {
        // Behind a trusted proxy that appends X-Forwarded-For, the client
        // adds `Forwarded: for=<victim>`: only X-Forwarded-For is believed.
        let r = req(&["203.0.113.66"], &["for=198.51.100.200"]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &r, &trusted(), XFF),
            attributed(ip("203.0.113.66"))
        );
    }

    #[test]
    fn a_trusted_proxy_is_never_the_client() {
        let t = trusted();
        let lo = ip("127.0.0.1");
        let none = Client {
            ip: lo,
            attributed: false,
        };
        for r in [
            req(&[], &[]),
            req(&["unknown"], &[]),
            req(&["203.0.113.9", "garbage"], &[]),
            req(&["10.0.0.5", "127.0.0.1"], &[]),
        ] {
            assert_eq!(client_ip(lo, &r, &t, XFF), none, "{r:?}");
        }
        // `for=unknown` and `for=<proxy>` in Forwarded likewise.
        let fwd = ForwardedHeader::Forwarded;
        assert_eq!(client_ip(lo, &req(&[], &["unknown"]), &t, fwd), none);
        assert_eq!(client_ip(lo, &req(&[], &["127.0.0.1"]), &t, fwd), none);
    }

    #[test]
    fn an_untrusted_forwarder_of_many_clients_is_suspected_once() {
        let mut s = SuspectedProxies::new(3, 16);
        let proxy = ip("192.0.2.80");
        assert!(!s.suspect(proxy, &req(&["203.0.113.1"], &[]), XFF));
        assert!(!s.suspect(proxy, &req(&["203.0.113.1"], &[]), XFF));
        assert!(!s.suspect(proxy, &req(&["203.0.113.2"], &[]), XFF));
        assert!(s.suspect(proxy, &req(&["203.0.113.3"], &[]), XFF));
        // Once suspected, every request of it is, header or not.
        assert!(s.suspect(proxy, &req(&[], &[]), XFF));
        // A plain client without forwarding headers never is.
        assert!(!s.suspect(ip("192.0.2.81"), &req(&[], &[]), XFF));
        assert!(!SuspectedProxies::new(0, 16).suspect(proxy, &req(&["x"], &[]), XFF));
    }
}
