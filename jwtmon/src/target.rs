//! Block and allowlist targets: an IP address or a CIDR, v4 or v6, parsed
//! strictly from operator input and mapped to and from the datapath's key
//! form (IPv4-mapped IPv6 addresses with a prefix length).

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use ipnetwork::IpNetwork;
use jwtmon_common::{Addr, V4_MAPPED_PREFIX};

/// An address or network that a block or allow entry applies to.
///
/// A `/32` (IPv4) or `/128` (IPv6) network is the same as its address and is
/// stored in the exact-address map; any shorter prefix is a CIDR entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// One address.
    Ip(IpAddr),
    /// A network, normalized to its base address.
    Cidr(IpNetwork),
}

/// Why a string is not a valid target.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    /// Not an address, not a CIDR.
    #[error(
        "`{0}` is not an IP address or CIDR (expected e.g. 203.0.113.7, 198.51.100.0/24, 2001:db8::/32)"
    )]
    Syntax(String),
    /// The prefix is longer than the address family allows.
    #[error("`{input}`: prefix /{prefix} is too long for {family} (max /{max})")]
    Prefix {
        /// What was given.
        input: String,
        /// The prefix given.
        prefix: u8,
        /// "IPv4" or "IPv6".
        family: &'static str,
        /// Longest valid prefix.
        max: u8,
    },
    /// Host bits set in a CIDR: ambiguous, so refused rather than guessed.
    #[error("`{input}` has host bits set; did you mean {suggestion}?")]
    HostBits {
        /// What was given.
        input: String,
        /// The network it most likely meant.
        suggestion: String,
    },
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let Some((addr, prefix)) = s.split_once('/') else {
            return s
                .parse::<IpAddr>()
                .map(|ip| Target::Ip(canonical(ip)))
                .map_err(|_| TargetError::Syntax(s.to_string()));
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| TargetError::Syntax(s.to_string()))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| TargetError::Syntax(s.to_string()))?;
        let (family, max) = match ip {
            IpAddr::V4(_) => ("IPv4", 32),
            IpAddr::V6(_) => ("IPv6", 128),
        };
        if prefix > max {
            return Err(TargetError::Prefix {
                input: s.to_string(),
                prefix,
                family,
                max,
            });
        }
        if prefix == max {
            return Ok(Target::Ip(ip));
        }
        let net = IpNetwork::new(ip, prefix).map_err(|_| TargetError::Syntax(s.to_string()))?;
        if net.network() != ip {
            return Err(TargetError::HostBits {
                input: s.to_string(),
                suggestion: format!("{}/{}", net.network(), prefix),
            });
        }
        Ok(Target::Cidr(net))
    }
}

/// IPv4-mapped IPv6 input (`::ffff:1.2.3.4`) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Ip(ip) => write!(f, "{ip}"),
            Target::Cidr(net) => write!(f, "{}/{}", net.network(), net.prefix()),
        }
    }
}

impl serde::Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The datapath key of an address.
pub fn addr_key(ip: IpAddr) -> Addr {
    match ip {
        IpAddr::V4(v4) => jwtmon_common::v4_mapped(v4.octets()),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The address of a datapath key (IPv4-mapped keys become IPv4).
pub fn addr_from_key(key: Addr) -> IpAddr {
    canonical(IpAddr::V6(Ipv6Addr::from(key)))
}

impl Target {
    /// Datapath key and prefix length (IPv4 prefixes are offset by 96).
    pub fn key(&self) -> (Addr, u32) {
        match self {
            Target::Ip(ip) => (addr_key(*ip), 128),
            Target::Cidr(IpNetwork::V4(n)) => (
                addr_key(IpAddr::V4(n.network())),
                u32::from(n.prefix()) + V4_MAPPED_PREFIX,
            ),
            Target::Cidr(IpNetwork::V6(n)) => (n.network().octets(), u32::from(n.prefix())),
        }
    }

    /// Rebuilds a target from a datapath key.
    pub fn from_key(addr: Addr, prefix_len: u32) -> Target {
        let ip = addr_from_key(addr);
        let prefix = match ip {
            IpAddr::V4(_) => prefix_len.saturating_sub(V4_MAPPED_PREFIX).min(32),
            IpAddr::V6(_) => prefix_len.min(128),
        };
        match ip {
            IpAddr::V4(_) if prefix == 32 => Target::Ip(ip),
            IpAddr::V6(_) if prefix == 128 => Target::Ip(ip),
            _ => Target::Cidr(IpNetwork::new(ip, prefix as u8).unwrap_or(IpNetwork::V4(
                ipnetwork::Ipv4Network::new(Ipv4Addr::UNSPECIFIED, 0).expect("0.0.0.0/0 is valid"),
            ))),
        }
    }

    /// True for an exact address entry.
    pub fn is_exact(&self) -> bool {
        matches!(self, Target::Ip(_))
    }
}

/// True when network `outer` contains all of `inner`.
pub fn covers(outer: &Target, inner: &Target) -> bool {
    let (oa, op) = outer.key();
    let (ia, ip) = inner.key();
    if op > ip {
        return false;
    }
    let full = (op / 8) as usize;
    if oa[..full] != ia[..full] {
        return false;
    }
    let rem = op % 8;
    rem == 0 || {
        let mask = 0xffu8 << (8 - rem);
        oa[full] & mask == ia[full] & mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        s.parse().unwrap()
    }

    #[test]
    fn coverage() {
        assert!(covers(&t("10.0.0.0/8"), &t("10.1.2.3")));
        assert!(covers(&t("10.0.0.0/8"), &t("10.1.0.0/16")));
        assert!(!covers(&t("10.1.0.0/16"), &t("10.0.0.0/8")));
        assert!(!covers(&t("10.0.0.0/8"), &t("11.0.0.1")));
        assert!(covers(&t("10.0.0.0/9"), &t("10.127.0.1")));
        assert!(!covers(&t("10.0.0.0/9"), &t("10.128.0.1")));
        assert!(covers(&t("2001:db8::/32"), &t("2001:db8:1::1")));
        assert!(!covers(&t("2001:db8::/32"), &t("10.0.0.1")));
        assert!(covers(&t("0.0.0.0/0"), &t("192.0.2.1")));
    }

    #[test]
    fn parses_addresses_and_networks() {
        assert_eq!(
            "203.0.113.7".parse::<Target>().unwrap(),
            Target::Ip("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            "10.0.0.0/8".parse::<Target>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            "2001:db8::/32".parse::<Target>().unwrap().to_string(),
            "2001:db8::/32"
        );
        // /32 and /128 are addresses.
        assert!("10.1.2.3/32".parse::<Target>().unwrap().is_exact());
        assert!("2001:db8::1/128".parse::<Target>().unwrap().is_exact());
        // IPv4-mapped IPv6 is the IPv4 address.
        assert_eq!(
            "::ffff:10.0.0.1".parse::<Target>().unwrap().to_string(),
            "10.0.0.1"
        );
    }

    #[test]
    fn rejects_bad_input_with_reasons() {
        for bad in [
            "999.1.1.1",
            "1.2.3",
            "",
            "abc",
            "10.0.0.0/",
            "10.0.0.0/x",
            "1.2.3.4/-1",
        ] {
            assert!(
                matches!(bad.parse::<Target>(), Err(TargetError::Syntax(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "10.0.0.0/33".parse::<Target>(),
            Err(TargetError::Prefix { max: 32, .. })
        ));
        assert!(matches!(
            "2001:db8::/129".parse::<Target>(),
            Err(TargetError::Prefix { max: 128, .. })
        ));
        let err = "10.0.0.5/24".parse::<Target>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`10.0.0.5/24` has host bits set; did you mean 10.0.0.0/24?"
        );
    }

    #[test]
    fn keys_round_trip() {
        for s in [
            "10.0.0.0/8",
            "192.0.2.1",
            "2001:db8::/48",
            "2001:db8::5",
            "0.0.0.0/0",
            "::/0",
        ] {
            let t: Target = s.parse().unwrap();
            let (addr, prefix) = t.key();
            assert_eq!(Target::from_key(addr, prefix), t, "{s}");
        }
        let (addr, prefix) = "10.0.0.0/8".parse::<Target>().unwrap().key();
        assert_eq!(prefix, 104);
        assert_eq!(&addr[10..13], &[0xff, 0xff, 10]);
    }
}
