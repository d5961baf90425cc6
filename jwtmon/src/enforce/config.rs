//! `[datapath]`, `[allowlist]` and the interface roles of `[daemon]`: what
//! the kernel side is given (map capacities, attach mode, pin directory,
//! never-drop entries).

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use crate::target::Target;

/// What jwtmon does on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Drop banned sources and sample HTTP.
    Both,
    /// Drop banned sources only.
    Enforce,
    /// Sample HTTP only; never drop.
    Capture,
}

impl Role {
    /// Drops banned sources here.
    pub fn enforces(self) -> bool {
        matches!(self, Role::Both | Role::Enforce)
    }

    /// Samples HTTP here.
    pub fn captures(self) -> bool {
        matches!(self, Role::Both | Role::Capture)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Both => "both",
            Role::Enforce => "enforce",
            Role::Capture => "capture",
        })
    }
}

/// An interface and its role, written `NAME` or `NAME:ROLE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceSpec {
    /// Interface name.
    pub name: String,
    /// Role.
    pub role: Role,
}

impl std::str::FromStr for InterfaceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, role) = match s.split_once(':') {
            None => (s, Role::Both),
            Some((n, "both")) => (n, Role::Both),
            Some((n, "enforce")) => (n, Role::Enforce),
            Some((n, "capture")) => (n, Role::Capture),
            Some((_, r)) => {
                return Err(format!(
                    "`{s}`: unknown role `{r}` (expected both, enforce or capture)"
                ));
            }
        };
        if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', ':']) {
            return Err(format!("`{name}` is not a valid interface name"));
        }
        Ok(Self {
            name: name.to_string(),
            role,
        })
    }
}

impl std::fmt::Display for InterfaceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.role {
            Role::Both => write!(f, "{}", self.name),
            role => write!(f, "{}:{role}", self.name),
        }
    }
}

impl Serialize for InterfaceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for InterfaceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// XDP attach mode.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native (driver) mode, falling back to generic mode.
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (skb) mode.
    Skb,
}

/// `[datapath]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatapathConfig {
    /// bpffs pin directory.
    pub pin_dir: PathBuf,
    /// XDP attach mode.
    pub xdp_mode: XdpMode,
    /// Capacity of the exact block map.
    pub max_blocked_ips: u32,
    /// Capacity of the CIDR block trie.
    pub max_blocked_cidrs: u32,
    /// Capacity of the allowlist trie.
    pub max_allowlist: u32,
    /// Capacity of each per-source LRU counters map (one for IPv4, one for
    /// IPv6); 0 sizes them from `tracked_sources_bytes` (see
    /// [`DatapathConfig::tracked_sources`]).
    pub max_tracked_sources: u32,
    /// Kernel memory the per-source counters may take when
    /// `max_tracked_sources = 0`, split evenly between the IPv4 and the
    /// IPv6 map. The maps are per-CPU and preallocated, so
    /// its entries cost one value per possible CPU each (and creating it
    /// costs start-up time in proportion).
    pub tracked_sources_bytes: u64,
    /// Interval between expired-entry sweeps.
    #[serde(with = "humantime_serde")]
    pub reap_interval: Duration,
    /// Ring buffer size in bytes.
    pub ring_buffer_bytes: u32,
}

/// `[allowlist]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AllowlistConfig {
    /// Addresses and networks never dropped.
    pub entries: Vec<Target>,
    /// Also never drop the host's own addresses, gateways, resolvers,
    /// trusted proxies and configured service hosts (found at start).
    pub auto: bool,
}

impl Default for DatapathConfig {
    fn default() -> Self {
        Self {
            pin_dir: PathBuf::from("/sys/fs/bpf/jwtmon"),
            xdp_mode: XdpMode::Auto,
            max_blocked_ips: jwtmon_common::sizes::BLOCK_IP,
            max_blocked_cidrs: jwtmon_common::sizes::BLOCK_CIDR,
            max_allowlist: jwtmon_common::sizes::ALLOW_CIDR,
            max_tracked_sources: 0,
            tracked_sources_bytes: 32 << 20,
            reap_interval: Duration::from_secs(1),
            ring_buffer_bytes: 16 << 20,
        }
    }
}

impl Default for AllowlistConfig {
    fn default() -> Self {
        Self {
            entries: vec![
                "127.0.0.0/8".parse().expect("valid"),
                "::1".parse().expect("valid"),
            ],
            auto: true,
        }
    }
}

/// Kernel bytes of one per-source entry besides its per-CPU values: the
/// hash element, LRU node and key (a conservative round figure).
const SOURCE_ENTRY_OVERHEAD: u64 = 96;

impl DatapathConfig {
    /// Each per-source map's capacity: `max_tracked_sources`, or as many
    /// entries as half of `tracked_sources_bytes` holds on this host's
    /// possible CPUs (at least 4096).
    pub fn tracked_sources(&self) -> u32 {
        if self.max_tracked_sources != 0 {
            return self.max_tracked_sources;
        }
        let cpus = aya::util::nr_cpus().map_or(1, |n| n.max(1)) as u64;
        let per_entry =
            cpus * size_of::<jwtmon_common::SourceStats>() as u64 + SOURCE_ENTRY_OVERHEAD;
        (self.tracked_sources_bytes / 2 / per_entry).clamp(4096, 100_000_000) as u32
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), String> {
        let d = self;
        for (name, value) in [
            ("datapath.max_blocked_ips", d.max_blocked_ips),
            ("datapath.max_blocked_cidrs", d.max_blocked_cidrs),
            ("datapath.max_allowlist", d.max_allowlist),
        ] {
            if value == 0 || value > 100_000_000 {
                return Err(format!("{name} = {value}: must be between 1 and 100000000"));
            }
        }
        if d.max_tracked_sources > 100_000_000 {
            return Err(format!(
                "datapath.max_tracked_sources = {}: must be at most 100000000 (0 sizes it from tracked_sources_bytes)",
                d.max_tracked_sources
            ));
        }
        if d.max_tracked_sources == 0 && !(1 << 20..=1 << 34).contains(&d.tracked_sources_bytes) {
            return Err(format!(
                "datapath.tracked_sources_bytes = {}: must be between 1048576 (1 MiB) and 17179869184 (16 GiB)",
                d.tracked_sources_bytes
            ));
        }
        if d.reap_interval < Duration::from_millis(100) || d.reap_interval > Duration::from_hours(1)
        {
            return Err(format!(
                "datapath.reap_interval = {}: must be between 100ms and 1h",
                humantime::format_duration(d.reap_interval)
            ));
        }
        if !d.pin_dir.is_absolute() {
            return Err(format!(
                "datapath.pin_dir = {}: must be an absolute path on a bpffs (e.g. /sys/fs/bpf/jwtmon)",
                d.pin_dir.display()
            ));
        }
        let rb = d.ring_buffer_bytes;
        if rb < 4096 || !rb.is_power_of_two() || rb > 1 << 30 {
            return Err(format!(
                "datapath.ring_buffer_bytes = {rb}: must be a power of two between 4096 and 1073741824"
            ));
        }
        Ok(())
    }
}
