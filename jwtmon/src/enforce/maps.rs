//! Typed access to the datapath's maps: block, unblock, allow, list, stats and
//! the expiry sweep. The same code serves the daemon (maps of the object it
//! loaded) and the CLI (maps opened from their pins while the daemon runs or
//! not).

use std::{net::IpAddr, path::Path, time::Duration};

use aya::{
    Ebpf,
    maps::{
        Array, HashMap, IterableMap, LpmTrie, Map, MapData, MapError, PerCpuArray, PerCpuHashMap,
        lpm_trie::Key,
    },
};
use jwtmon_common::{
    Addr, AllowEntry, BlockEntry, Control, GlobalStats, REASON_LEN, SourceStats, maps as names,
    origin, stat,
};
use serde::Serialize;

use crate::{
    clock,
    target::{Target, addr_from_key, covers},
};

/// Errors of map operations.
#[derive(Debug, thiserror::Error)]
pub enum MapsError {
    /// The pinned maps are not there: no daemon ever ran with this pin dir.
    #[error(
        "no jwtmon maps pinned at {0}: start the daemon once (`jwtmon run`) or pass the right --pin-dir"
    )]
    NotPinned(String),
    /// The object lacks a map (a build mismatch).
    #[error("map {0} missing from the loaded object")]
    Missing(&'static str),
    /// The kernel refused an operation.
    #[error("{op} on map {map}: {error}")]
    Kernel {
        /// What was attempted.
        op: &'static str,
        /// Which map.
        map: &'static str,
        /// aya's error.
        error: MapError,
    },
    /// A block or allow map has no room left.
    #[error(
        "the {what} map is full ({capacity} entries): raise `{key}` in the config and run `jwtmon reset --yes` to recreate the maps, or remove entries (`jwtmon list`, `jwtmon unblock`)"
    )]
    Full {
        /// What the map holds ("exact block", "CIDR block", "allowlist").
        what: &'static str,
        /// The config key of its capacity.
        key: &'static str,
        /// Its capacity.
        capacity: u32,
    },
    /// The target is not in the map.
    #[error("{0} is not in the {1}")]
    NotFound(Target, &'static str),
    /// Blocking something the allowlist covers would never drop a packet.
    #[error(
        "{target} is covered by allowlist entry {allow}; the allowlist always wins, so this block would have no effect (remove it with `jwtmon unallow {allow}` first)"
    )]
    Allowlisted {
        /// What was to be blocked.
        target: Target,
        /// The allow entry that covers it.
        allow: Target,
    },
}

fn kernel(op: &'static str, map: &'static str) -> impl FnOnce(MapError) -> MapsError {
    move |error| MapsError::Kernel { op, map, error }
}

/// An insert's error: a full map (hash maps answer E2BIG, tries ENOSPC)
/// names its capacity and config key; anything else is the kernel's.
fn insert_error<'a>(
    map: &'a MapData,
    name: &'static str,
    what: &'static str,
    key: &'static str,
) -> impl FnOnce(MapError) -> MapsError + 'a {
    move |error| {
        let full = matches!(&error, MapError::SyscallError(e)
            if matches!(e.io_error.raw_os_error(), Some(libc::E2BIG | libc::ENOSPC)));
        match map.info() {
            Ok(info) if full => MapsError::Full {
                what,
                key,
                capacity: info.max_entries(),
            },
            _ => MapsError::Kernel {
                op: "insert",
                map: name,
                error,
            },
        }
    }
}

/// A block request.
#[derive(Clone, Debug)]
pub struct BlockSpec {
    /// What to block.
    pub target: Target,
    /// How long; `None` is permanent.
    pub ttl: Option<Duration>,
    /// Free text kept with the entry (truncated to 32 bytes).
    pub reason: String,
    /// One of [`jwtmon_common::origin`].
    pub origin: u16,
}

/// A block entry as the CLI and API show it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BlockView {
    /// Address or network.
    pub target: Target,
    /// Seconds left; `None` for permanent entries.
    pub remaining_s: Option<u64>,
    /// Already past its expiry (the kernel ignores it; the sweep deletes it).
    pub expired: bool,
    /// TTL given at creation in seconds, `None` for permanent.
    pub ttl_s: Option<u64>,
    /// Packets dropped by this entry.
    pub drops: u64,
    /// Reason text.
    pub reason: String,
    /// "operator", "import", "decision" or "fleet" (the reason then starts
    /// with the origin node).
    pub origin: &'static str,
    /// Unix seconds of creation.
    pub created_unix_s: u64,
}

/// An allowlist entry.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AllowView {
    /// Address or network.
    pub target: Target,
    /// Unix seconds of creation.
    pub created_unix_s: u64,
    /// Why it is there (`config`, or `auto: own address`, ...).
    pub origin: &'static str,
    /// Added automatically (replaced at every daemon start).
    #[serde(skip)]
    pub auto: bool,
}

/// One source's counters summed over CPUs.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SourceView {
    /// Source address.
    pub addr: IpAddr,
    /// Packets seen.
    pub packets: u64,
    /// Bytes seen.
    pub bytes: u64,
    /// Packets dropped.
    pub drops: u64,
    /// Seconds since the last packet.
    pub idle_s: u64,
}

/// Global counters summed over CPUs, by name.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, Default)]
pub struct Totals(pub Vec<(String, u64)>);

impl Totals {
    /// A counter by its [`jwtmon_common::stat::NAMES`] name (0 if unknown).
    pub fn get(&self, name: &str) -> u64 {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    }
}

/// Handles on all datapath maps.
pub struct Maps {
    allow: LpmTrie<MapData, Addr, AllowEntry>,
    block_ip: HashMap<MapData, Addr, BlockEntry>,
    block_cidr: LpmTrie<MapData, Addr, BlockEntry>,
    sources: PerCpuHashMap<MapData, Addr, SourceStats>,
    sources4: PerCpuHashMap<MapData, u32, SourceStats>,
    global: PerCpuArray<MapData, GlobalStats>,
    control: Array<MapData, Control>,
}

fn typed<T>(map: Map, name: &'static str) -> Result<T, MapsError>
where
    T: TryFrom<Map, Error = MapError>,
{
    T::try_from(map).map_err(kernel("open", name))
}

impl Maps {
    /// Opens the maps pinned in `dir`.
    pub fn open_pinned(dir: &Path) -> Result<Self, MapsError> {
        let open = |name: &'static str| -> Result<Map, MapsError> {
            let path = dir.join(name);
            if !path.exists() {
                return Err(MapsError::NotPinned(dir.display().to_string()));
            }
            let data = MapData::from_pin(&path).map_err(kernel("open pinned", name))?;
            Map::from_map_data(data).map_err(kernel("open pinned", name))
        };
        Ok(Self {
            allow: typed(open(names::ALLOW_CIDR)?, names::ALLOW_CIDR)?,
            block_ip: typed(open(names::BLOCK_IP)?, names::BLOCK_IP)?,
            block_cidr: typed(open(names::BLOCK_CIDR)?, names::BLOCK_CIDR)?,
            sources: typed(open(names::SRC_STATS)?, names::SRC_STATS)?,
            sources4: typed(open(names::SRC_STATS4)?, names::SRC_STATS4)?,
            global: typed(open(names::GLOBAL_STATS)?, names::GLOBAL_STATS)?,
            control: typed(open(names::CONTROL)?, names::CONTROL)?,
        })
    }

    /// Takes the maps out of a loaded object.
    pub fn take(ebpf: &mut Ebpf) -> Result<Self, MapsError> {
        let mut take = |name: &'static str| ebpf.take_map(name).ok_or(MapsError::Missing(name));
        Ok(Self {
            allow: typed(take(names::ALLOW_CIDR)?, names::ALLOW_CIDR)?,
            block_ip: typed(take(names::BLOCK_IP)?, names::BLOCK_IP)?,
            block_cidr: typed(take(names::BLOCK_CIDR)?, names::BLOCK_CIDR)?,
            sources: typed(take(names::SRC_STATS)?, names::SRC_STATS)?,
            sources4: typed(take(names::SRC_STATS4)?, names::SRC_STATS4)?,
            global: typed(take(names::GLOBAL_STATS)?, names::GLOBAL_STATS)?,
            control: typed(take(names::CONTROL)?, names::CONTROL)?,
        })
    }

    /// The allow entry covering `target` entirely, if any.
    pub fn allow_covering(&self, target: &Target) -> Option<Target> {
        let (addr, prefix) = target.key();
        // An LPM lookup with the target's own prefix only matches entries of
        // that prefix or shorter, i.e. networks containing all of it.
        let key = Key::new(prefix, addr);
        self.allow.get(&key, 0).ok()?;
        self.list_allow()
            .ok()?
            .into_iter()
            .map(|a| a.target)
            .filter(|a| covers(a, target))
            .max_by_key(|a| a.key().1)
    }

    /// Inserts or replaces a block entry and makes the kernel see it at
    /// once. Returns true when it replaced one.
    pub fn block(&mut self, spec: &BlockSpec) -> Result<bool, MapsError> {
        let replaced = self.insert_block(spec)?;
        self.new_generation()?;
        Ok(replaced)
    }

    /// Inserts or replaces a block entry without a new generation: sources
    /// whose verdict the kernel has cached are not rechecked until the caller
    /// calls [`Maps::new_generation`] (bulk inserts do that once per batch).
    pub(crate) fn insert_block(&mut self, spec: &BlockSpec) -> Result<bool, MapsError> {
        if let Some(allow) = self.allow_covering(&spec.target) {
            return Err(MapsError::Allowlisted {
                target: spec.target,
                allow,
            });
        }
        let (addr, prefix) = spec.target.key();
        let now_mono = clock::monotonic_ns();
        let previous = self.block_entry(&spec.target);
        let entry = BlockEntry {
            expires_ns: spec
                .ttl
                .map_or(0, |ttl| now_mono.saturating_add(ttl.as_nanos() as u64)),
            created_unix_s: clock::unix_now_s(),
            // Keep the drop count of an entry that is extended or replaced.
            drops: previous.map_or(0, |p| p.drops),
            ttl_s: spec
                .ttl
                .map_or(0, |t| t.as_secs().min(u64::from(u32::MAX)) as u32),
            origin: spec.origin,
            prefix_len: prefix as u16,
            reason: reason_bytes(&spec.reason),
        };
        if spec.target.is_exact() {
            let result = self.block_ip.insert(addr, entry, 0);
            result.map_err(insert_error(
                self.block_ip.map(),
                names::BLOCK_IP,
                "exact block",
                "datapath.max_blocked_ips",
            ))?;
        } else {
            let result = self.block_cidr.insert(&Key::new(prefix, addr), entry, 0);
            result.map_err(insert_error(
                self.block_cidr.map(),
                names::BLOCK_CIDR,
                "CIDR block",
                "datapath.max_blocked_cidrs",
            ))?;
        }
        Ok(previous.is_some())
    }

    /// Writes the sampling knobs the kernel programs read.
    pub fn set_capture(
        &mut self,
        c: &crate::capture::config::CaptureConfig,
    ) -> Result<(), MapsError> {
        let mut control = self
            .control
            .get(&0, 0)
            .map_err(kernel("read", names::CONTROL))?;
        control.capture_ports = [0; jwtmon_common::MAX_CAPTURE_PORTS];
        for (slot, port) in control.capture_ports.iter_mut().zip(&c.ports) {
            *slot = *port;
        }
        control.sample_rate = c.sample_rate;
        control.request_len = c.request_bytes;
        control.response_len = c.response_bytes;
        control.flow_bytes_per_sec = c.flow_bytes_per_second;
        control.tls_bytes = if c.tls.enabled && c.sample_rate > 0 {
            c.tls.copy_bytes
        } else {
            0
        };
        let cpus = aya::util::nr_cpus().map_or(1, |n| n.max(1)) as u32;
        control.rate_per_cpu = c.max_records_per_second.div_ceil(cpus);
        self.control
            .set(0, control, 0)
            .map_err(kernel("write", names::CONTROL))
    }

    /// Invalidates the kernel's per-source verdict cache. Runs after every
    /// block insert or removal and every allowlist change. The value is this writer's CLOCK_MONOTONIC
    /// ns, not a read-modify-write counter: each value is written once, after
    /// its writer's insert, so concurrent writers (daemon and CLI) can never
    /// bring back a generation that predates an insert.
    pub fn new_generation(&mut self) -> Result<(), MapsError> {
        let mut control = self
            .control
            .get(&0, 0)
            .map_err(kernel("read", names::CONTROL))?;
        control.block_gen = clock::monotonic_ns().max(1);
        self.control
            .set(0, control, 0)
            .map_err(kernel("write", names::CONTROL))
    }

    fn block_entry(&self, target: &Target) -> Option<BlockEntry> {
        let (addr, prefix) = target.key();
        if target.is_exact() {
            self.block_ip.get(&addr, 0).ok()
        } else {
            // LPM get is a longest-prefix match: only an entry of exactly this
            // prefix is this target's.
            self.block_cidr
                .get(&Key::new(prefix, addr), 0)
                .ok()
                .filter(|e| u32::from(e.prefix_len) == prefix)
        }
    }

    /// Removes a block entry; sources holding a cached drop verdict look
    /// again at once.
    pub fn unblock(&mut self, target: &Target) -> Result<(), MapsError> {
        self.remove_block(target)?;
        self.new_generation()
    }

    /// Removes a block entry without a new generation: right for an expired
    /// entry, which no cached verdict can rest on.
    fn remove_block(&mut self, target: &Target) -> Result<(), MapsError> {
        let (addr, prefix) = target.key();
        let result = if target.is_exact() {
            self.block_ip.remove(&addr)
        } else {
            self.block_cidr.remove(&Key::new(prefix, addr))
        };
        match result {
            Ok(()) => Ok(()),
            Err(MapError::KeyNotFound) => Err(MapsError::NotFound(*target, "blocklist")),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Err(MapsError::NotFound(*target, "blocklist"))
            }
            Err(e) => Err(kernel("remove", names::BLOCK_CIDR)(e)),
        }
    }

    /// Adds an allowlist entry (idempotent).
    pub fn allow(&mut self, target: &Target) -> Result<(), MapsError> {
        self.allow_for(target, jwtmon_common::allow_reason::CONFIG)
    }

    /// Adds an allowlist entry with its [`jwtmon_common::allow_reason`].
    pub fn allow_for(&mut self, target: &Target, reason: u64) -> Result<(), MapsError> {
        let (addr, prefix) = target.key();
        let entry = AllowEntry {
            created_unix_s: clock::unix_now_s(),
            reason,
        };
        let result = self.allow.insert(&Key::new(prefix, addr), entry, 0);
        result.map_err(insert_error(
            self.allow.map(),
            names::ALLOW_CIDR,
            "allowlist",
            "datapath.max_allowlist",
        ))?;
        // A cached drop for a now-allowed source ends at once: the
        // allowlist always wins.
        self.new_generation()
    }

    /// Adds an allowlist entry unless one of exactly this prefix exists.
    pub fn ensure_allowed(&mut self, target: &Target) -> Result<bool, MapsError> {
        let (addr, prefix) = target.key();
        let exists = self
            .list_allow()?
            .iter()
            .any(|a| a.target.key() == (addr, prefix));
        if !exists {
            self.allow(target)?;
        }
        Ok(!exists)
    }

    /// Removes an allowlist entry.
    pub fn unallow(&mut self, target: &Target) -> Result<(), MapsError> {
        let (addr, prefix) = target.key();
        match self.allow.remove(&Key::new(prefix, addr)) {
            Ok(()) => self.new_generation(),
            Err(MapError::KeyNotFound) => Err(MapsError::NotFound(*target, "allowlist")),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Err(MapsError::NotFound(*target, "allowlist"))
            }
            Err(e) => Err(kernel("remove", names::ALLOW_CIDR)(e)),
        }
    }

    /// All block entries, exact then CIDR, with their state now. An exact
    /// entry's drops include those its source's cached verdict answered
    /// since the kernel last added them to the entry.
    pub fn list_blocks(&self) -> Result<Vec<BlockView>, MapsError> {
        self.blocks(true)
    }

    fn blocks(&self, with_pending: bool) -> Result<Vec<BlockView>, MapsError> {
        let now = clock::monotonic_ns();
        let mut out = Vec::new();
        for item in &self.block_ip {
            let (addr, mut entry) = item.map_err(kernel("iterate", names::BLOCK_IP))?;
            if with_pending {
                entry.drops += self.pending_drops(&addr);
            }
            out.push(view(Target::from_key(addr, 128), &entry, now));
        }
        for item in &self.block_cidr {
            let (key, entry) = item.map_err(kernel("iterate", names::BLOCK_CIDR))?;
            out.push(view(
                Target::from_key(key.data(), key.prefix_len()),
                &entry,
                now,
            ));
        }
        Ok(out)
    }

    /// Drops of a source answered from its cached exact-block verdict and
    /// not yet added to the entry (the kernel adds them when the verdict's
    /// lease is renewed).
    fn pending_drops(&self, addr: &Addr) -> u64 {
        self.source_values(addr).map_or(0, |values| {
            values
                .iter()
                .filter(|s| s.verdict_gen != 0 && s.verdict == jwtmon_common::verdict::DROP_EXACT)
                .map(|s| u64::from(s.pending_drops))
                .sum()
        })
    }

    /// All allowlist entries.
    pub fn list_allow(&self) -> Result<Vec<AllowView>, MapsError> {
        self.allow
            .iter()
            .map(|item| {
                let (key, entry) = item.map_err(kernel("iterate", names::ALLOW_CIDR))?;
                Ok(AllowView {
                    target: Target::from_key(key.data(), key.prefix_len()),
                    created_unix_s: entry.created_unix_s,
                    origin: jwtmon_common::allow_reason::name(entry.reason),
                    auto: entry.reason != jwtmon_common::allow_reason::CONFIG,
                })
            })
            .collect()
    }

    /// Deletes block entries that expired before now. Returns what it removed.
    pub fn reap_expired(&mut self) -> Result<Vec<Target>, MapsError> {
        Ok(self.reap_and_count()?.0)
    }

    /// [`Maps::reap_expired`], also returning how many entries remain in
    /// force (one pass over the maps for both).
    pub fn reap_and_count(&mut self) -> Result<(Vec<Target>, usize), MapsError> {
        let all = self.blocks(false)?;
        let total = all.len();
        let expired: Vec<Target> = all
            .into_iter()
            .filter(|b| b.expired)
            .map(|b| b.target)
            .collect();
        let mut removed = Vec::with_capacity(expired.len());
        let now = clock::monotonic_ns();
        for target in expired {
            // Re-check: the entry may have been renewed since the listing.
            if let Some(entry) = self.block_entry(&target)
                && entry.expires_ns != 0
                && entry.expires_ns <= now
            {
                match self.remove_block(&target) {
                    Ok(()) | Err(MapsError::NotFound(..)) => removed.push(target),
                    Err(e) => return Err(e),
                }
            }
        }
        let remaining = total - removed.len();
        Ok((removed, remaining))
    }

    /// Global counters summed over CPUs.
    pub fn totals(&self) -> Result<Totals, MapsError> {
        let per_cpu = self
            .global
            .get(&0, 0)
            .map_err(kernel("read", names::GLOBAL_STATS))?;
        let mut sums = [0u64; stat::COUNT as usize];
        for cpu in per_cpu.iter() {
            for (sum, v) in sums.iter_mut().zip(cpu.iter()) {
                *sum += v;
            }
        }
        Ok(Totals(
            stat::NAMES
                .iter()
                .zip(sums)
                .filter(|(name, _)| !name.is_empty())
                .map(|(name, v)| (name.to_string(), v))
                .collect(),
        ))
    }

    /// Counters of one source summed over CPUs.
    pub fn source(&self, addr: IpAddr) -> Option<SourceView> {
        let key = crate::target::addr_key(addr);
        let values = self.source_values(&key)?;
        Some(sum_source(key, values.iter(), clock::monotonic_ns()))
    }

    /// A source's per-CPU counters, from the map of its address family.
    fn source_values(&self, key: &Addr) -> Option<aya::maps::PerCpuValues<SourceStats>> {
        match addr_from_key(*key) {
            // The IPv4 map is keyed by the address as it sits in the packet.
            IpAddr::V4(v4) => self.sources4.get(&u32::from_ne_bytes(v4.octets()), 0).ok(),
            IpAddr::V6(_) => self.sources.get(key, 0).ok(),
        }
    }

    /// The `n` sources with the most packets.
    pub fn top_sources(&self, n: usize) -> Result<Vec<SourceView>, MapsError> {
        let now = clock::monotonic_ns();
        let mut all = Vec::new();
        for item in &self.sources {
            let (key, values) = item.map_err(kernel("iterate", names::SRC_STATS))?;
            all.push(sum_source(key, values.iter(), now));
        }
        for item in &self.sources4 {
            let (v4, values) = item.map_err(kernel("iterate", names::SRC_STATS4))?;
            all.push(sum_source(
                jwtmon_common::v4_mapped(v4.to_ne_bytes()),
                values.iter(),
                now,
            ));
        }
        all.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.addr.cmp(&b.addr)));
        all.truncate(n);
        Ok(all)
    }
}

fn sum_source<'a>(
    key: Addr,
    values: impl Iterator<Item = &'a SourceStats>,
    now: u64,
) -> SourceView {
    let mut v = SourceView {
        addr: addr_from_key(key),
        packets: 0,
        bytes: 0,
        drops: 0,
        idle_s: 0,
    };
    let mut last = 0;
    for s in values {
        v.packets += s.packets;
        v.bytes += s.bytes;
        v.drops += s.drops;
        last = last.max(s.last_seen_ns);
    }
    v.idle_s = now.saturating_sub(last) / 1_000_000_000;
    v
}

fn view(target: Target, e: &BlockEntry, now: u64) -> BlockView {
    let (remaining_s, expired) = match e.expires_ns {
        0 => (None, false),
        t if t <= now => (Some(0), true),
        // Round up so a fresh 10m block shows 600 s, not 599.
        t => (Some((t - now).div_ceil(1_000_000_000)), false),
    };
    BlockView {
        target,
        remaining_s,
        expired,
        ttl_s: (e.ttl_s != 0).then_some(u64::from(e.ttl_s)),
        drops: e.drops,
        reason: reason_text(&e.reason),
        origin: match u32::from(e.origin) {
            origin::OPERATOR => "operator",
            origin::IMPORT => "import",
            origin::DECISION => "decision",
            origin::FLEET => "fleet",
            _ => "unknown",
        },
        created_unix_s: e.created_unix_s,
    }
}

/// Truncates the reason to the entry's field at a char boundary, without
/// control characters.
fn reason_bytes(reason: &str) -> [u8; REASON_LEN] {
    let mut out = [0u8; REASON_LEN];
    let mut len = 0;
    for ch in reason.chars().filter(|c| !c.is_control()) {
        let mut buf = [0u8; 4];
        let bytes = ch.encode_utf8(&mut buf).as_bytes();
        if len + bytes.len() > REASON_LEN {
            break;
        }
        out[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    }
    out
}

fn reason_text(raw: &[u8; REASON_LEN]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(REASON_LEN);
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_is_truncated_on_char_boundary() {
        let r = reason_bytes("brute force on /login from a very long winded reason ✓");
        let text = reason_text(&r);
        assert!(text.len() <= REASON_LEN);
        assert!(text.starts_with("brute force on /login"));
        assert_eq!(reason_text(&reason_bytes("a\u{7}b\nc")), "abc");
        let euro = reason_text(&reason_bytes(&"€".repeat(20)));
        assert_eq!(euro, "€".repeat(10));
    }
}
