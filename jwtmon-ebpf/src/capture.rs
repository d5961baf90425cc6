//! HTTP capture into the `EVENTS` ring buffer: every client segment of a
//! monitored connection seen by XDP ingress (userspace reassembles the
//! stream), and response starts seen by TC egress.
//!
//! A record is assembled in a per-CPU scratch buffer and output with its real
//! length. A full ring buffer never holds traffic up: the record is skipped
//! and counted. One per-CPU token bucket caps records per second for both
//! directions, a per-connection byte budget caps what one connection can
//! put in the ring, and `sample_rate` picks 1 connection in N.

use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_jiffies64, bpf_ktime_get_coarse_ns, bpf_ktime_get_ns, bpf_ringbuf_output,
        bpf_ringbuf_query, bpf_skb_load_bytes, bpf_xdp_load_bytes,
    },
    macros::map,
    maps::{LruHashMap, PerCpuArray, RingBuf},
};
use jwtmon_common::{
    Addr, Control, FlowBudget, FlowKey, MAX_CAPTURE_PORTS, MAX_REQUEST_CAPTURE,
    MAX_RESPONSE_CAPTURE, RecordHeader, SCRATCH_LEN, SamplerState, record, sizes, stat,
};

use crate::{
    counters::Counters,
    parse::{L3, Tcp},
};

/// Default ring size; the daemon sets it from config at load time.
const EVENTS_BYTES: u32 = 16 << 20;
const HEADER_LEN: usize = size_of::<RecordHeader>();

#[map(name = "EVENTS")]
static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

#[map(name = "SAMPLER")]
static SAMPLER: PerCpuArray<SamplerState> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "SCRATCH")]
static SCRATCH: PerCpuArray<[u8; SCRATCH_LEN]> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "FLOWS")]
static FLOWS: LruHashMap<FlowKey, FlowBudget> = LruHashMap::with_max_entries(sizes::FLOWS, 0);

/// True when `port` is one of the monitored ports.
#[inline(always)]
fn monitored(control: &Control, port: u16) -> bool {
    for i in 0..MAX_CAPTURE_PORTS {
        let p = control.capture_ports[i];
        if p == 0 {
            return false;
        }
        if p == port {
            return true;
        }
    }
    false
}

/// Records a client segment may be copied into: segments larger than
/// `MAX_CHUNKS` records (a GSO segment on `lo`) leave a hole that
/// reassembly skips.
pub const MAX_CHUNKS: usize = 4;

/// The per-CPU token bucket: one token per record, refilled at
/// `rate_per_cpu` per second with one second of burst. Returns the
/// monotonic time to stamp the record with, or `None` to skip (counted).
#[inline(always)]
pub fn admit(control: &Control, counters: &mut Counters) -> Option<u64> {
    let state = SAMPLER.get_ptr_mut(0)?;
    // SAFETY: per-CPU slot, only this CPU writes it while we run.
    let state = unsafe { &mut *state };
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let per_sec = control.rate_per_cpu as u64;
    // One second of budget at most; refill in millitokens.
    let burst = per_sec * 1000;
    let elapsed = now.saturating_sub(state.last_ns).min(1_000_000_000);
    let refill = elapsed * per_sec / 1_000_000;
    state.tokens_milli = (state.tokens_milli + refill).min(burst);
    state.last_ns = now;
    if state.tokens_milli < 1000 {
        counters.bump(stat::SKIPPED_RATE);
        return None;
    }
    state.tokens_milli -= 1000;
    state.seen += 1;
    Some(now)
}

/// `sample_rate` 1-in-N, by connection: a sampled connection is followed
/// whole (reassembly needs every segment), an unsampled one not at all.
#[inline(always)]
pub fn flow_sampled(control: &Control, client: &Addr, client_port: u16, server_port: u16) -> bool {
    let rate = control.sample_rate;
    if rate <= 1 {
        return rate == 1;
    }
    let word =
        |i: usize| u32::from_ne_bytes([client[i], client[i + 1], client[i + 2], client[i + 3]]);
    let mixed = (word(0)
        ^ word(4)
        ^ word(8)
        ^ word(12)
        ^ ((client_port as u32) << 16 | server_port as u32))
        .wrapping_mul(0x9E37_79B1);
    (mixed >> 16) % rate == 0
}

/// Spends `bytes` of the connection's budget for this second; false when
/// it is spent (counted as `flow_cut`).
#[inline(always)]
fn flow_budget(
    control: &Control,
    l3: &L3,
    tcp: &Tcp,
    bytes: usize,
    counters: &mut Counters,
) -> bool {
    let limit = control.flow_bytes_per_sec as u64;
    if limit == 0 {
        return true;
    }
    let key = FlowKey {
        client: *l3.src.key(),
        client_port: tcp.sport,
        server_port: tcp.dport,
    };
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if let Some(b) = FLOWS.get_ptr_mut(&key) {
        // SAFETY: a live map value; a racing CPU can only blur the count.
        unsafe {
            if now.saturating_sub((*b).window_ns) >= 1_000_000_000 {
                (*b).window_ns = now;
                (*b).bytes = 0;
            }
            if (*b).bytes + bytes as u64 > limit {
                counters.bump(stat::FLOW_CUT);
                return false;
            }
            (*b).bytes += bytes as u64;
        }
        return true;
    }
    let fresh = FlowBudget {
        window_ns: now,
        bytes: bytes as u64,
    };
    // A failed insert (map busy) only loses the budget of one segment.
    let _ = FLOWS.insert(&key, &fresh, 0);
    true
}

/// Puts `h` at the start of the scratch buffer; returns the scratch
/// pointer.
#[inline(always)]
pub fn scratch_with(h: RecordHeader) -> Option<*mut u8> {
    let scratch = SCRATCH.get_ptr_mut(0)? as *mut u8;
    // SAFETY: the scratch value is SCRATCH_LEN >= HEADER_LEN bytes; unaligned
    // write because the array has byte alignment.
    unsafe { core::ptr::write_unaligned(scratch as *mut RecordHeader, h) };
    Some(scratch)
}

/// Fills the scratch header of a packet record; returns the scratch pointer.
#[inline(always)]
fn header(kind: u32, l3: &L3, tcp: &Tcp, at: Piece, now: u64, ifindex: u32) -> Option<*mut u8> {
    scratch_with(RecordHeader {
        kind,
        captured_len: at.captured as u32,
        payload_len: at.payload_len as u32,
        seq: tcp.seq.wrapping_add(at.offset as u32),
        ts_ns: now,
        src: *l3.src.key(),
        dst: *l3.dst.key(),
        sport: tcp.sport,
        dport: tcp.dport,
        ifindex,
        ack: tcp.ack,
        flags: (tcp.flags & 0x07) as u32,
        tgid: 0,
        listen_fd: 0,
    })
}

/// `bpf_ringbuf_query` flag: bytes not yet consumed.
const BPF_RB_AVAIL_DATA: u64 = 0;
/// `bpf_ringbuf_output` flags.
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
/// Unread bytes at which the reader is woken.
const WAKE_BYTES: u64 = 32 * 1024;

/// True, once per jiffy and CPU: whether a record on a drained ring may
/// wake the reader.
#[inline(always)]
fn first_wake_this_jiffy() -> bool {
    let Some(state) = SAMPLER.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: helper without preconditions (inlined by the verifier).
    let now = unsafe { bpf_jiffies64() };
    // SAFETY: per-CPU slot, only this CPU writes it while we run.
    unsafe {
        if (*state).woke_jiffies == now {
            return false;
        }
        (*state).woke_jiffies = now;
    }
    true
}

/// Outputs `HEADER_LEN + captured` scratch bytes; counts the outcome.
#[inline(always)]
pub fn emit(scratch: *mut u8, captured: usize, max: usize, counters: &mut Counters, sampled: u32) {
    if captured > max {
        return;
    }
    // Batched wake-ups: a wake-up per record costs the reader a context
    // switch per request. The reader is woken once WAKE_BYTES are waiting,
    // and by the first record on a drained ring (at most once a jiffy per
    // CPU), so an attack after a quiet spell is read at once. Between
    // those, the reader polls while traffic flows (userspace).
    let ring = core::ptr::addr_of!(EVENTS) as *mut _;
    // SAFETY: plain helper call on our own ring buffer map.
    let waiting = unsafe { bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) };
    let flags = if waiting >= WAKE_BYTES || (waiting == 0 && first_wake_this_jiffy()) {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    // SAFETY: `scratch` holds HEADER_LEN + captured <= SCRATCH_LEN bytes.
    let ret = unsafe {
        bpf_ringbuf_output(
            ring,
            scratch as *mut _,
            (HEADER_LEN + captured) as u64,
            flags,
        )
    };
    if ret == 0 {
        counters.bump(sampled);
    } else {
        counters.bump(stat::RINGBUF_FULL);
    }
}

/// Which part of a segment a record carries.
#[derive(Clone, Copy)]
struct Piece {
    /// From the start of the payload.
    offset: usize,
    /// Bytes copied.
    captured: usize,
    /// Bytes the record stands for (more than `captured`: a hole follows).
    payload_len: usize,
}

/// Outputs a record without payload (a fragment report, SYN, FIN, RST).
#[inline(always)]
fn bare(kind: u32, l3: &L3, tcp: &Tcp, control: &Control, ifindex: u32, counters: &mut Counters) {
    let none = Piece {
        offset: 0,
        captured: 0,
        payload_len: 0,
    };
    if let Some(now) = admit(control, counters)
        && let Some(scratch) = header(kind, l3, tcp, none, now, ifindex)
    {
        emit(scratch, 0, 0, counters, stat::SAMPLED);
    }
}

/// Forwards a client segment arriving on XDP ingress to a monitored port:
/// its payload (in up to [`MAX_CHUNKS`] records), and SYN, FIN and RST
/// without one, so userspace can reassemble the connection as the server
/// reads it. The first IP fragment of such TCP becomes a `FRAGMENT`
/// record (the payload is not forwarded: the kernel would reassemble what
/// XDP sees in pieces).
#[inline(always)]
pub fn forward_client<C: EbpfContext>(
    ctx: &C,
    start: usize,
    end: usize,
    l3: &L3,
    tcp: &Tcp,
    control: &Control,
    ifindex: u32,
    counters: &mut Counters,
) {
    if !monitored(control, tcp.dport) || !flow_sampled(control, l3.src.key(), tcp.sport, tcp.dport)
    {
        return;
    }
    let ip_end = if l3.ip_end < end - start {
        l3.ip_end
    } else {
        end - start
    };
    let payload_len = ip_end.saturating_sub(tcp.payload_off);
    if l3.fragment {
        bare(record::FRAGMENT, l3, tcp, control, ifindex, counters);
        return;
    }
    if payload_len == 0 {
        // A bare ACK is nothing for reassembly; SYN, FIN and RST are.
        if tcp.flags & 0x07 != 0 {
            bare(record::REQUEST, l3, tcp, control, ifindex, counters);
        }
        return;
    }
    if !flow_budget(control, l3, tcp, payload_len, counters) {
        return;
    }
    let want = (control.request_len as usize).min(MAX_REQUEST_CAPTURE as usize);
    let mut offset = 0usize;
    for i in 0..MAX_CHUNKS {
        if offset >= payload_len || want == 0 {
            return;
        }
        let rest = payload_len - offset;
        let captured = if rest < want { rest } else { want };
        let last = i == MAX_CHUNKS - 1 || captured == rest;
        let piece = Piece {
            offset,
            captured,
            payload_len: if last { rest } else { captured },
        };
        let Some(now) = admit(control, counters) else {
            return;
        };
        let from = (tcp.payload_off + offset) as u32;
        record::<{ MAX_REQUEST_CAPTURE as usize }>(
            record::REQUEST,
            l3,
            tcp,
            piece,
            now,
            ifindex,
            counters,
            stat::SAMPLED,
            // SAFETY: the destination has MAX bytes after the header; the
            // helper bounds-checks the packet side.
            |dst, len| unsafe {
                bpf_xdp_load_bytes(ctx.as_ptr() as *mut _, from, dst as *mut _, len)
            },
        );
        offset += captured;
    }
}

/// Samples an HTTP response start leaving on TC egress. `skb_len` is the
/// whole packet length (the payload may sit outside the linear part).
#[inline(always)]
pub fn sample_response<C: EbpfContext>(
    ctx: &C,
    skb_len: usize,
    l3: &L3,
    tcp: &Tcp,
    control: &Control,
    ifindex: u32,
    counters: &mut Counters,
) {
    if !monitored(control, tcp.sport) || !flow_sampled(control, l3.dst.key(), tcp.dport, tcp.sport)
    {
        return;
    }
    let payload_len = skb_len.saturating_sub(tcp.payload_off);
    if payload_len < 12 {
        return;
    }
    let mut first = [0u8; 8];
    // SAFETY: 8-byte stack buffer.
    let ret = unsafe {
        bpf_skb_load_bytes(
            ctx.as_ptr() as *const _,
            tcp.payload_off as u32,
            first.as_mut_ptr() as *mut _,
            8,
        )
    };
    if ret != 0 || &first[..7] != b"HTTP/1." {
        return;
    }
    // Responses share the token bucket: a request flood cannot push
    // requests out of the ring with their own responses.
    let Some(now) = admit(control, counters) else {
        return;
    };
    let want = (control.response_len as usize).min(MAX_RESPONSE_CAPTURE as usize);
    let captured = if payload_len < want {
        payload_len
    } else {
        want
    };
    let piece = Piece {
        offset: 0,
        captured,
        payload_len,
    };
    record::<{ MAX_RESPONSE_CAPTURE as usize }>(
        record::RESPONSE,
        l3,
        tcp,
        piece,
        now,
        ifindex,
        counters,
        stat::SAMPLED_RESPONSES,
        // SAFETY: as above.
        |dst, len| unsafe {
            bpf_skb_load_bytes(
                ctx.as_ptr() as *const _,
                tcp.payload_off as u32,
                dst as *mut _,
                len,
            )
        },
    );
}

/// Copies `piece.captured` (at most `MAX`) payload bytes with `load`
/// behind a header in the scratch buffer and outputs the record; counts the
/// outcome in `sampled` or `ringbuf_full` (a failed copy counts as a parse
/// error).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn record<const MAX: usize>(
    kind: u32,
    l3: &L3,
    tcp: &Tcp,
    piece: Piece,
    now: u64,
    ifindex: u32,
    counters: &mut Counters,
    sampled: u32,
    load: impl FnOnce(*mut u8, u32) -> i64,
) {
    copy_out::<MAX>(
        piece.captured,
        |captured| {
            let piece = Piece { captured, ..piece };
            header(kind, l3, tcp, piece, now, ifindex)
        },
        counters,
        sampled,
        stat::PARSE_ERROR,
        load,
    );
}

/// Copies `captured` (1..=`MAX`) bytes with `load` behind the header that
/// `header` writes for that length, and outputs the record; counts it in
/// `sampled`, `ringbuf_full`, or `failed` when the copy fails.
#[inline(always)]
pub fn copy_out<const MAX: usize>(
    captured: usize,
    header: impl FnOnce(usize) -> Option<*mut u8>,
    counters: &mut Counters,
    sampled: u32,
    failed: u32,
    load: impl FnOnce(*mut u8, u32) -> i64,
) {
    const { assert!(MAX.is_power_of_two()) };
    if captured == 0 || captured > MAX {
        return;
    }
    // An identity for 1..=MAX that the verifier can see is never 0 nor
    // above MAX (range facts do not survive every compiler transformation).
    let captured = ((captured - 1) & (MAX - 1)) + 1;
    let Some(scratch) = header(captured) else {
        return;
    };
    // SAFETY: scratch holds SCRATCH_LEN >= HEADER_LEN + MAX bytes.
    if load(unsafe { scratch.add(HEADER_LEN) }, captured as u32) != 0 {
        counters.bump(failed);
        return;
    }
    emit(scratch, captured, MAX, counters, sampled);
}
