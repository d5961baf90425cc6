//! XDP ingress: the enforcement decision and the per-source counters.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_jiffies64, bpf_ktime_get_coarse_ns},
    macros::{map, xdp},
    maps::{HashMap, LpmTrie, LruPerCpuHashMap, lpm_trie::Key},
    programs::XdpContext,
};
use jwtmon_common::{Addr, AllowEntry, BlockEntry, SourceStats, sizes, stat, verdict};

use crate::{
    capture,
    counters::{Counters, control},
    parse::{self, Address, ParseError, parse_l3, parse_tcp},
};

/// Allocate block entries on demand: a million preallocated 64-byte values
/// would pin ~100 MB of kernel memory whether used or not.
const BPF_F_NO_PREALLOC: u32 = 1;

#[map(name = "ALLOW_CIDR")]
static ALLOW_CIDR: LpmTrie<Addr, AllowEntry> = LpmTrie::with_max_entries(sizes::ALLOW_CIDR, 0);

#[map(name = "BLOCK_IP")]
static BLOCK_IP: HashMap<Addr, BlockEntry> =
    HashMap::with_max_entries(sizes::BLOCK_IP, BPF_F_NO_PREALLOC);

#[map(name = "BLOCK_CIDR")]
static BLOCK_CIDR: LpmTrie<Addr, BlockEntry> = LpmTrie::with_max_entries(sizes::BLOCK_CIDR, 0);

#[map(name = "SRC_STATS")]
static SRC_STATS: LruPerCpuHashMap<Addr, SourceStats> =
    LruPerCpuHashMap::with_max_entries(sizes::SRC_STATS, 0);

#[map(name = "SRC_STATS4")]
static SRC_STATS4: LruPerCpuHashMap<u32, SourceStats> =
    LruPerCpuHashMap::with_max_entries(sizes::SRC_STATS, 0);

/// How many nested CIDR entries the kernel looks through when the longest
/// match has expired (the daemon reaps expired entries within seconds).
const MAX_CIDR_LOOKUPS: usize = 4;

/// A reason slot that is out of range, for verdicts that need no extra counter.
const NO_REASON: u32 = stat::COUNT;

/// Interface role "both": enforce, then sample what passes.
#[xdp]
pub fn jwtmon_xdp(ctx: XdpContext) -> u32 {
    xdp_main::<true>(&ctx)
}

/// Interface role "enforce": drops and counts, never samples. It parses
/// the source address and nothing else (`parse_source`), so TCP fragments
/// are counted only on interfaces that capture.
#[xdp]
pub fn jwtmon_xdp_enforce(ctx: XdpContext) -> u32 {
    let mut counters = Counters::get();
    let (start, end) = (ctx.data(), ctx.data_end());
    let (src, v4) = match parse::parse_source(start, end) {
        Ok(src) => src,
        Err(e) => return unparsed(&mut counters, e),
    };
    let generation = control().map_or(0, |c| c.block_gen);
    let (action, reason) = enforce::<true>(&src, v4, (end - start) as u64, generation);
    finish(&mut counters, action, reason)
}

/// Interface role "capture": samples, never drops (e.g. `lo` behind a
/// TLS-terminating proxy).
#[xdp]
pub fn jwtmon_xdp_capture(ctx: XdpContext) -> u32 {
    xdp_main::<false>(&ctx)
}

/// The roles that sample; `ENFORCE` is a compile-time constant, so each
/// entry point pays only for what it does.
#[inline(always)]
fn xdp_main<const ENFORCE: bool>(ctx: &XdpContext) -> u32 {
    let mut counters = Counters::get();
    let (start, end) = (ctx.data(), ctx.data_end());
    let l3 = match parse_l3(start, end) {
        Ok(l3) => l3,
        Err(e) => return unparsed(&mut counters, e),
    };
    if parse::tcp_fragment(&l3) {
        counters.bump(stat::TCP_FRAGMENTS);
    }
    // One read of the control slot serves both stages.
    let control = control();
    let (action, reason) = if ENFORCE {
        // The key is derived inside: an `Option` computed here and carried
        // across the lookup splits the verifier's states past its budget.
        enforce::<false>(
            &l3.src,
            None,
            (end - start) as u64,
            control.map_or(0, |c| c.block_gen),
        )
    } else {
        (xdp_action::XDP_PASS, NO_REASON)
    };
    // Counted before sampling, so the reason is dead there: the verifier
    // then walks the sampler once, not once per reason.
    counters.bump(reason);
    if action == xdp_action::XDP_PASS
        && let Some(control) = control
        && control.sample_rate != 0
        && let Some(tcp) = parse_tcp(start, end, &l3)
    {
        // SAFETY: reading the context's ingress ifindex field.
        let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
        capture::forward_client(ctx, start, end, &l3, &tcp, control, ifindex, &mut counters);
    }
    finish(&mut counters, action, NO_REASON)
}

/// A frame that is not IP, or not well-formed: passed and counted.
#[inline(always)]
fn unparsed(counters: &mut Counters, e: ParseError) -> u32 {
    let reason = match e {
        ParseError::NotIp => stat::NON_IP,
        ParseError::Malformed => stat::PARSE_ERROR,
    };
    finish(counters, xdp_action::XDP_PASS, reason)
}

#[inline(always)]
fn finish(counters: &mut Counters, action: u32, reason: u32) -> u32 {
    counters.bump(reason);
    counters.bump(if action == xdp_action::XDP_DROP {
        stat::DROPPED
    } else {
        stat::PASSED
    });
    action
}

/// The enforcement decision for a packet of `len` bytes from `addr`: the
/// action and the counter that explains it. With `KEYED`, `v4` is the IPv4
/// map key the parser read (else it is derived from `addr`). `generation`
/// is the block generation, read before any lookup: a change to the maps
/// meanwhile changes it, so a verdict computed from older maps is never
/// cached as current.
///
/// Steady state is one map lookup: a known source carries its verdict
/// (pass, drop, allowlisted) and a lease in its counters' value, and the
/// clock is `bpf_jiffies64`, which the verifier inlines into a load. The
/// block, CIDR and allow maps and the real clock are read only when the
/// lease ran out or the generation moved.
#[inline(always)]
fn enforce<const KEYED: bool>(
    addr: &Address,
    v4: Option<u32>,
    len: u64,
    generation: u64,
) -> (u32, u32) {
    // SAFETY: helper without preconditions (inlined by the verifier).
    let jiffies = unsafe { bpf_jiffies64() };
    let src = addr.key();
    // IPv4 sources are counted under their 4-byte address: a quarter of
    // the hashing and comparing of the 16-byte IPv4-mapped key. Only the
    // lookup differs: a new source's entry is created there, so nothing
    // after it depends on the family and the verifier walks one body.
    let v4 = if KEYED { v4 } else { addr.v4() };
    let source = match v4 {
        Some(key) => lookup_or_insert(&SRC_STATS4, &key),
        None => lookup_or_insert(&SRC_STATS, src),
    };
    if let Some(s) = source {
        // SAFETY: per-CPU value, written only by this CPU while we run.
        unsafe {
            if generation != 0 && (*s).verdict_gen == generation && jiffies < (*s).lease_jiffies {
                (*s).packets += 1;
                (*s).bytes += len;
                let code = (*s).verdict;
                if code == verdict::DROP_EXACT || code == verdict::DROP_CIDR {
                    (*s).drops += 1;
                    (*s).pending_drops = (*s).pending_drops.saturating_add(1);
                }
                return outcome(code);
            }
        }
    }
    // CLOCK_MONOTONIC at jiffy resolution: precise enough for expiries and
    // last-seen times, and cheaper than bpf_ktime_get_ns.
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    // SAFETY: as above.
    let pending = source.map_or(0, |s| unsafe { (*s).pending_drops });
    let check = check_blocks(src, now, u64::from(pending) + 1);
    // The allowlist always wins; it is only consulted for sources that a
    // block entry matched, so clean traffic pays for no extra lookup.
    let code = if check.verdict != verdict::PASS && ALLOW_CIDR.get(Key::new(128, *src)).is_some() {
        verdict::ALLOWLISTED
    } else {
        check.verdict
    };
    // A source that saw an expired entry is rechecked until the sweep
    // removes it; a drop is cached only when its entry outlives any lease.
    let cacheable = !check.expired_seen
        && (check.expires_ns == 0 || check.expires_ns.saturating_sub(now) > verdict::MAX_LEASE_NS);
    let (cached_gen, lease) = if cacheable {
        (generation, jiffies + verdict::LEASE_JIFFIES)
    } else {
        (0, 0)
    };
    let (action, counter) = if check.expired_seen && code == verdict::PASS {
        (xdp_action::XDP_PASS, stat::EXPIRED_MATCH)
    } else {
        outcome(code)
    };
    let dropped = (action == xdp_action::XDP_DROP) as u64;
    if let Some(s) = source {
        // SAFETY: as above.
        unsafe {
            (*s).packets += 1;
            (*s).bytes += len;
            (*s).drops += dropped;
            (*s).last_seen_ns = now;
            (*s).verdict_gen = cached_gen;
            (*s).lease_jiffies = lease;
            (*s).verdict = code;
            (*s).pending_drops = 0;
        }
    }
    (action, counter)
}

/// The source's counters in `sources`, created (zero, first seen now)
/// when it is new. `None` only when the map refused the insert (busy),
/// which loses that packet's counts and nothing else.
#[inline(always)]
fn lookup_or_insert<K>(
    sources: &LruPerCpuHashMap<K, SourceStats>,
    key: &K,
) -> Option<*mut SourceStats> {
    if let Some(s) = sources.get_ptr_mut(key) {
        return Some(s);
    }
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let fresh = SourceStats {
        packets: 0,
        bytes: 0,
        drops: 0,
        first_seen_ns: now,
        last_seen_ns: now,
        verdict_gen: 0,
        lease_jiffies: 0,
        verdict: verdict::PASS,
        pending_drops: 0,
    };
    sources.insert(key, &fresh, 0).ok()?;
    sources.get_ptr_mut(key)
}

/// The action and counter of a verdict code.
#[inline(always)]
fn outcome(code: u32) -> (u32, u32) {
    match code {
        verdict::DROP_EXACT => (xdp_action::XDP_DROP, stat::DROPPED_EXACT),
        verdict::DROP_CIDR => (xdp_action::XDP_DROP, stat::DROPPED_CIDR),
        verdict::ALLOWLISTED => (xdp_action::XDP_PASS, stat::ALLOWLISTED),
        _ => (xdp_action::XDP_PASS, NO_REASON),
    }
}

/// What the block maps say about a source.
struct Check {
    /// `verdict::PASS`, `DROP_EXACT` or `DROP_CIDR`.
    verdict: u32,
    /// An expired entry was seen on the way.
    expired_seen: bool,
    /// Expiry of the matching entry (0: none, or it never expires).
    expires_ns: u64,
}

/// Looks the source up in the exact map, then the CIDR trie. A matching
/// entry's drop counter grows by `drops` (this packet and the ones answered
/// from the cache since the last check).
#[inline(always)]
fn check_blocks(src: &Addr, now: u64, drops: u64) -> Check {
    let mut expired_seen = false;
    if let Some(entry) = BLOCK_IP.get_ptr_mut(src) {
        if let Some(expires_ns) = active(entry, now, drops) {
            return Check {
                verdict: verdict::DROP_EXACT,
                expired_seen: false,
                expires_ns,
            };
        }
        expired_seen = true;
    }
    let mut prefix = 128u32;
    for _ in 0..MAX_CIDR_LOOKUPS {
        let Some(entry) = BLOCK_CIDR.get(Key::new(prefix, *src)) else {
            break;
        };
        let entry = entry as *const BlockEntry as *mut BlockEntry;
        if let Some(expires_ns) = active(entry, now, drops) {
            return Check {
                verdict: verdict::DROP_CIDR,
                expired_seen,
                expires_ns,
            };
        }
        expired_seen = true;
        // SAFETY: `entry` points into the map value returned by the lookup.
        let matched = unsafe { (*entry).prefix_len } as u32;
        if matched == 0 || matched > 128 {
            break;
        }
        // An LPM lookup with a shorter key prefix finds the next broader entry.
        prefix = matched - 1;
    }
    Check {
        verdict: verdict::PASS,
        expired_seen,
        expires_ns: 0,
    }
}

/// The entry's expiry when it has not expired (counting `drops` on it);
/// `None` when it has.
#[inline(always)]
fn active(entry: *mut BlockEntry, now: u64, drops: u64) -> Option<u64> {
    // SAFETY: `entry` points at a live map value; `drops` is only ever
    // updated atomically (several CPUs may hit the same entry).
    unsafe {
        let expires = (*entry).expires_ns;
        if expires != 0 && now >= expires {
            return None;
        }
        // The BPF target has no `AtomicU64::fetch_add`; the intrinsic lowers
        // to the BPF atomic add instruction.
        atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(
            core::ptr::addr_of_mut!((*entry).drops),
            drops,
        );
        Some(expires)
    }
}

/// Passes everything and touches nothing: the baseline that `bench-xdp`
/// measures jwtmon's cost against (never attached by the daemon).
#[xdp]
pub fn jwtmon_xdp_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}
