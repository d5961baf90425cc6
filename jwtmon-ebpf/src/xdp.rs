//! XDP ingress: the enforcement decision and the per-source counters.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_ktime_get_coarse_ns,
    macros::{map, xdp},
    maps::{HashMap, LpmTrie, LruPerCpuHashMap, lpm_trie::Key},
    programs::XdpContext,
};
use jwtmon_common::{Addr, AllowEntry, BlockEntry, SourceStats, sizes, stat};

use crate::{
    capture,
    counters::{Counters, control},
    parse::{self, L3, ParseError, parse_l3, parse_tcp},
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

/// How many nested CIDR entries the kernel looks through when the longest
/// match has expired (the daemon reaps expired entries within seconds).
const MAX_CIDR_LOOKUPS: usize = 4;

/// A reason slot that is out of range, for verdicts that need no extra counter.
const NO_REASON: u32 = stat::COUNT;

/// What the block maps say about a source.
enum Verdict {
    Pass,
    DropExact,
    DropCidr,
}

/// Interface role "both": enforce, then sample what passes.
#[xdp]
pub fn jwtmon_xdp(ctx: XdpContext) -> u32 {
    xdp_main::<true, true>(&ctx)
}

/// Interface role "enforce": drops and counts, never samples.
#[xdp]
pub fn jwtmon_xdp_enforce(ctx: XdpContext) -> u32 {
    xdp_main::<true, false>(&ctx)
}

/// Interface role "capture": samples, never drops (e.g. `lo` behind a
/// TLS-terminating proxy).
#[xdp]
pub fn jwtmon_xdp_capture(ctx: XdpContext) -> u32 {
    xdp_main::<false, true>(&ctx)
}

/// One body for all roles; the role flags are compile-time constants, so
/// each entry point pays only for what it does.
#[inline(always)]
fn xdp_main<const ENFORCE: bool, const CAPTURE: bool>(ctx: &XdpContext) -> u32 {
    let mut counters = Counters::get();
    let (start, end) = (ctx.data(), ctx.data_end());
    let l3 = match parse_l3(start, end) {
        Ok(l3) => l3,
        Err(ParseError::NotIp) => return finish(&mut counters, xdp_action::XDP_PASS, stat::NON_IP),
        Err(ParseError::Malformed) => {
            return finish(&mut counters, xdp_action::XDP_PASS, stat::PARSE_ERROR);
        }
    };
    if parse::tcp_fragment(&l3) {
        counters.bump(stat::TCP_FRAGMENTS);
    }
    // One read of the control slot serves both stages.
    let control = control();
    let (action, reason) = if ENFORCE {
        enforce(
            &l3,
            (end - start) as u64,
            control.map_or(0, |c| c.block_gen),
        )
    } else {
        (xdp_action::XDP_PASS, NO_REASON)
    };
    if CAPTURE
        && action == xdp_action::XDP_PASS
        && let Some(control) = control
        && control.sample_rate != 0
        && let Some(tcp) = parse_tcp(start, end, &l3)
    {
        // SAFETY: reading the context's ingress ifindex field.
        let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
        capture::forward_client(ctx, start, end, &l3, &tcp, control, ifindex, &mut counters);
    }
    finish(&mut counters, action, reason)
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

/// The enforcement decision for a parsed packet of `len` bytes: the action
/// and the counter that explains it. `generation` is the block generation,
/// read before any lookup: a block inserted meanwhile changes it, so a
/// verdict computed from older maps is never cached as current.
#[inline(always)]
fn enforce(l3: &L3, len: u64, generation: u64) -> (u32, u32) {
    // CLOCK_MONOTONIC at jiffy resolution: precise enough for expiries and
    // last-seen times, and cheaper than bpf_ktime_get_ns.
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let source = SRC_STATS.get_ptr_mut(&l3.src);
    if let Some(s) = source {
        // SAFETY: per-CPU value, written only by this CPU while we run.
        unsafe {
            if generation != 0 && (*s).clean_gen == generation {
                // Verdict cache hit: no block entry matched at this
                // generation, and entries only expire without a new one.
                (*s).packets += 1;
                (*s).bytes += len;
                (*s).last_seen_ns = now;
                return (xdp_action::XDP_PASS, NO_REASON);
            }
        }
    }
    let (verdict, expired_seen) = check_blocks(&l3.src, now);
    let (action, counter) = match verdict {
        Verdict::Pass if expired_seen => (xdp_action::XDP_PASS, stat::EXPIRED_MATCH),
        Verdict::Pass => (xdp_action::XDP_PASS, NO_REASON),
        // The allowlist always wins; it is only consulted for sources that a
        // block entry matched, so clean traffic pays for no extra lookup.
        _ if ALLOW_CIDR.get(Key::new(128, l3.src)).is_some() => {
            (xdp_action::XDP_PASS, stat::ALLOWLISTED)
        }
        Verdict::DropExact => (xdp_action::XDP_DROP, stat::DROPPED_EXACT),
        Verdict::DropCidr => (xdp_action::XDP_DROP, stat::DROPPED_CIDR),
    };
    // Only a source that matched nothing at all is cached as clean; one that
    // saw an expired entry is rechecked until the sweep removes it.
    let clean_gen = match verdict {
        Verdict::Pass if !expired_seen => generation,
        _ => 0,
    };
    let dropped = (action == xdp_action::XDP_DROP) as u64;
    match source {
        // SAFETY: as above.
        Some(s) => unsafe {
            (*s).packets += 1;
            (*s).bytes += len;
            (*s).drops += dropped;
            (*s).last_seen_ns = now;
            (*s).clean_gen = clean_gen;
        },
        None => {
            let fresh = SourceStats {
                packets: 1,
                bytes: len,
                drops: dropped,
                first_seen_ns: now,
                last_seen_ns: now,
                clean_gen,
            };
            // A failed insert (map busy) only loses one sample of counters.
            let _ = SRC_STATS.insert(&l3.src, &fresh, 0);
        }
    }
    (action, counter)
}

/// Looks the source up in the exact map, then the CIDR trie. Returns the
/// verdict and whether an expired entry was seen on the way.
#[inline(always)]
fn check_blocks(src: &Addr, now: u64) -> (Verdict, bool) {
    let mut expired = false;
    if let Some(entry) = BLOCK_IP.get_ptr_mut(src) {
        if active(entry, now) {
            return (Verdict::DropExact, false);
        }
        expired = true;
    }
    let mut prefix = 128u32;
    for _ in 0..MAX_CIDR_LOOKUPS {
        let Some(entry) = BLOCK_CIDR.get(Key::new(prefix, *src)) else {
            break;
        };
        let entry = entry as *const BlockEntry as *mut BlockEntry;
        if active(entry, now) {
            return (Verdict::DropCidr, expired);
        }
        expired = true;
        // SAFETY: `entry` points into the map value returned by the lookup.
        let matched = unsafe { (*entry).prefix_len } as u32;
        if matched == 0 || matched > 128 {
            break;
        }
        // An LPM lookup with a shorter key prefix finds the next broader entry.
        prefix = matched - 1;
    }
    (Verdict::Pass, expired)
}

/// True when the entry has not expired; counts the drop on it if so.
#[inline(always)]
fn active(entry: *mut BlockEntry, now: u64) -> bool {
    // SAFETY: `entry` points at a live map value; `drops` is only ever
    // updated atomically (several CPUs may hit the same entry).
    unsafe {
        let expires = (*entry).expires_ns;
        if expires != 0 && now >= expires {
            return false;
        }
        // The BPF target has no `AtomicU64::fetch_add`; the intrinsic lowers
        // to the BPF atomic add instruction.
        atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(
            core::ptr::addr_of_mut!((*entry).drops),
            1,
        );
    }
    true
}

/// Passes everything and touches nothing: the baseline that `bench-xdp`
/// measures jwtmon's cost against (never attached by the daemon).
#[xdp]
pub fn jwtmon_xdp_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}
