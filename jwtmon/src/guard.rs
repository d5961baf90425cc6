//! Never block ourselves: the addresses jwtmon must never drop, found at
//! start and put in the allowlist (which always wins) with their reason:
//! the host's own addresses, its default gateways, its DNS resolvers, the
//! configured trusted proxies, and the resolved addresses of the services
//! it talks to (JWKS URLs, SMTP relays, webhook hosts, the fleet's Redis). `jwtmon list` shows them as
//! `auto: ...`. The decision engine's aggregation never forms a network
//! that covers an allowlisted address, so a spoofed neighbourhood can never
//! grow a block over the host's own prefix.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs},
    time::Duration,
};

use jwtmon_common::allow_reason;
use tracing::{info, warn};

use crate::{config::Config, enforce::Maps, target::Target};

/// How long resolving the configured service hosts may take in all.
const RESOLVE_BUDGET: Duration = Duration::from_secs(3);

/// Every address of the host's interfaces.
fn own_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list freed below; every node
    // and its address are read only while the list lives.
    unsafe {
        if libc::getifaddrs(&raw mut head) != 0 {
            return out;
        }
        let mut node = head;
        while !node.is_null() {
            let addr = (*node).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let a = addr.cast::<libc::sockaddr_in>().read_unaligned();
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))));
                    }
                    libc::AF_INET6 => {
                        let a = addr.cast::<libc::sockaddr_in6>().read_unaligned();
                        out.push(IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            node = (*node).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out.sort();
    out.dedup();
    out
}

/// A default route of the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultRoute {
    /// Its interface.
    pub iface: String,
    /// Its gateway (`None`: on-link).
    pub gateway: Option<IpAddr>,
}

/// The default routes in `/proc/net/route` and `/proc/net/ipv6_route` text
/// (IPv6 routes on `lo` are the kernel's unreachable default, not one).
fn parse_default_routes(route: &str, route6: &str) -> Vec<DefaultRoute> {
    let mut out = Vec::new();
    for line in route.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 7 && f[1] == "00000000" && f[7] == "00000000" {
            // The kernel prints the address in host (little-endian) order.
            let gateway = u32::from_str_radix(f[2], 16)
                .ok()
                .filter(|gw| *gw != 0)
                .map(|gw| IpAddr::V4(Ipv4Addr::from(gw.swap_bytes())));
            out.push(DefaultRoute {
                iface: f[0].to_string(),
                gateway,
            });
        }
    }
    for line in route6.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 10
            && f[0] == "00000000000000000000000000000000"
            && f[1] == "00"
            && f[9] != "lo"
        {
            let gateway = u128::from_str_radix(f[4], 16)
                .ok()
                .filter(|gw| *gw != 0)
                .map(|gw| IpAddr::V6(Ipv6Addr::from(gw)));
            out.push(DefaultRoute {
                iface: f[9].to_string(),
                gateway,
            });
        }
    }
    out
}

/// The host's default routes, IPv4 and IPv6.
pub fn default_routes() -> Vec<DefaultRoute> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    parse_default_routes(&read("/proc/net/route"), &read("/proc/net/ipv6_route"))
}

/// `nameserver` lines of resolv.conf text.
fn resolvers(resolv: &str) -> Vec<IpAddr> {
    resolv
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().split('%').next()?.parse().ok())
        .collect()
}

/// The host of a URL (`https://idp.example:8443/jwks` → `idp.example`).
fn url_host(url: &str) -> Option<(String, u16)> {
    let (authority, _) = crate::parse::http::absolute_form(url)?;
    let default = if url
        .get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("https:"))
    {
        443
    } else {
        80
    };
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, port) = v6.split_once(']')?;
        let port = port
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default);
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok()?)),
        None => Some((authority.to_string(), default)),
    }
}

/// The hosts of the services the configuration names.
fn service_hosts(config: &Config) -> Vec<(String, u16)> {
    let mut out: Vec<(String, u16)> = config
        .jwt
        .issuers
        .iter()
        .filter_map(|i| i.jwks_url.as_deref())
        .filter_map(url_host)
        .collect();
    for sink in &config.alerts.sinks {
        if let Some(host) = &sink.smtp_host {
            out.push((host.clone(), sink.smtp_port.unwrap_or(25)));
        }
        // Webhook URLs are secrets: read here, only their host is kept.
        if let Ok(Some(url)) = crate::secret::load(
            "alerts.sinks url",
            sink.url_file.as_deref(),
            sink.url_env.as_deref(),
        ) && let Some(host) = url_host(url.expose())
        {
            out.push(host);
        }
    }
    if config.fleet.enabled()
        && let Some((_, rest)) = config.fleet.redis_url.split_once("://")
    {
        // [user@]host[:port][/db]
        let authority = rest.split('/').next().unwrap_or("");
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let host = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => p
                .parse()
                .ok()
                .map(|p| (h.trim_matches(['[', ']']).to_string(), p)),
            _ => Some((authority.trim_matches(['[', ']']).to_string(), 6379)),
        };
        out.extend(host);
    }
    out.sort();
    out.dedup();
    out
}

/// Resolves `hosts` within [`RESOLVE_BUDGET`] (a slow resolver never holds
/// the start up); what did not resolve in time is logged.
fn resolve(hosts: Vec<(String, u16)>) -> Vec<IpAddr> {
    if hosts.is_empty() {
        return Vec::new();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (host, port) in hosts {
            let addrs = (host.as_str(), port).to_socket_addrs();
            let _ = tx.send((host, addrs.map(|a| a.map(|s| s.ip()).collect::<Vec<_>>())));
        }
    });
    let deadline = std::time::Instant::now() + RESOLVE_BUDGET;
    let mut out = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok((_, Ok(ips))) => out.extend(ips),
            Ok((host, Err(e))) => warn!(host, error = %e, "not resolved; not allowlisted"),
            Err(_) => break,
        }
    }
    out
}

/// What must never be dropped, with the reason of each.
pub fn protected(config: &Config) -> Vec<(Target, u64)> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mut out: Vec<(Target, u64)> = Vec::new();
    let mut add = |ips: Vec<IpAddr>, reason: u64| {
        for ip in ips {
            let t = Target::Ip(ip.to_canonical());
            if !out.iter().any(|(o, _)| *o == t) {
                out.push((t, reason));
            }
        }
    };
    add(own_addresses(), allow_reason::OWN_ADDRESS);
    add(
        default_routes()
            .into_iter()
            .filter_map(|r| r.gateway)
            .collect(),
        allow_reason::GATEWAY,
    );
    add(resolvers(&read("/etc/resolv.conf")), allow_reason::RESOLVER);
    add(resolve(service_hosts(config)), allow_reason::SERVICE);
    for t in &config.capture.trusted_proxies {
        if !out.iter().any(|(o, _)| o == t) {
            out.push((*t, allow_reason::TRUSTED_PROXY));
        }
    }
    out
}

/// Puts `protected` in the allowlist and removes automatic entries of an
/// earlier start that no longer apply. Returns how many are in force.
pub fn apply(maps: &mut Maps, protected: &[(Target, u64)]) -> usize {
    let existing = maps.list_allow().unwrap_or_default();
    for old in existing.iter().filter(|a| a.auto) {
        if !protected.iter().any(|(t, _)| *t == old.target) {
            let _ = maps.unallow(&old.target);
        }
    }
    let mut n = 0;
    for (target, reason) in protected {
        // An operator's or the config's own entry keeps its origin.
        if existing.iter().any(|a| !a.auto && a.target == *target) {
            n += 1;
            continue;
        }
        match maps.allow_for(target, *reason) {
            Ok(()) => n += 1,
            Err(e) => warn!(%target, error = %e, "could not allowlist"),
        }
    }
    info!(
        entries = n,
        "allowlisted automatically: own addresses, gateways, resolvers, trusted proxies, service hosts"
    );
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_hosts_include_jwks_smtp_and_webhook_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("hook.url");
        std::fs::write(&url, "https://hooks.example.net:8443/T000/secret-path\n").unwrap();
        let text = format!(
            "[[jwt.issuers]]\nissuer = \"https://idp.example\"\njwks_url = \"https://idp.example/jwks\"\n\
             [[alerts.sinks]]\nname = \"ops\"\ntype = \"webhook\"\nurl_file = \"{}\"\n\
             [[alerts.sinks]]\nname = \"mail\"\ntype = \"email\"\nsmtp_host = \"smtp.example\"\n\
             from = \"a@example\"\nto = [\"b@example\"]\n\
             [fleet]\nredis_url = \"redis://cache.example:6380/2\"\n",
            url.display()
        );
        let config = Config::from_toml(&text, None).unwrap();
        let hosts = service_hosts(&config);
        for want in [
            ("hooks.example.net", 8443),
            ("idp.example", 443),
            ("smtp.example", 25),
        ] {
            assert!(
                hosts.contains(&(want.0.to_string(), want.1)),
                "{want:?} not in {hosts:?}"
            );
        }
        assert!(
            !format!("{hosts:?}").contains("secret-path"),
            "only the host is kept"
        );
    }

    #[test]
    fn routes_resolvers_and_urls_parse() {
        let route = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                     eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\n\
                     eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n";
        let route6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n";
        let routes = parse_default_routes(route, route6);
        let gateways: Vec<IpAddr> = routes.iter().filter_map(|r| r.gateway).collect();
        assert_eq!(
            gateways,
            [
                "10.0.2.1".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
        assert!(routes.iter().all(|r| r.iface == "eth0"));
        // A short line is no route (and no panic).
        assert!(parse_default_routes("h\neth0 00000000 0102000A 0003\n", "").is_empty());
        let resolv =
            "# generated\nnameserver 192.0.2.53\nsearch example\nnameserver fe80::53%eth0\n";
        assert_eq!(
            resolvers(resolv),
            [
                "192.0.2.53".parse::<IpAddr>().unwrap(),
                "fe80::53".parse().unwrap()
            ]
        );
        assert_eq!(
            url_host("https://idp.example/jwks"),
            Some(("idp.example".into(), 443))
        );
        assert_eq!(
            url_host("http://u:p@10.0.0.9:8080/k"),
            Some(("10.0.0.9".into(), 8080))
        );
        assert_eq!(
            url_host("https://[2001:db8::1]:8443/"),
            Some(("2001:db8::1".into(), 8443))
        );
        assert_eq!(url_host("not a url"), None);
    }

    #[test]
    fn own_addresses_include_loopback() {
        assert!(own_addresses().contains(&"127.0.0.1".parse().unwrap()));
    }
}
