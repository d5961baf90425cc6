//! HTTP sampling into the `EVENTS` ring buffer: request starts seen by XDP
//! ingress and response starts seen by TC egress, on the monitored ports.
//!
//! A record is assembled in a per-CPU scratch buffer and output with its real
//! length. A full ring buffer never holds traffic up: the record is skipped
//! and counted. A per-CPU token bucket caps records per second and a 1-in-N
//! counter implements `sample_rate`.

use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_ktime_get_ns, bpf_ringbuf_output, bpf_ringbuf_query, bpf_skb_load_bytes,
        bpf_xdp_load_bytes,
    },
    macros::map,
    maps::{PerCpuArray, RingBuf},
};
use jwtmon_common::{
    Control, MAX_CAPTURE_PORTS, MAX_REQUEST_CAPTURE, MAX_RESPONSE_CAPTURE, RecordHeader,
    SCRATCH_LEN, SamplerState, record, stat,
};

use crate::{
    counters::Counters,
    parse::{L3, Tcp, bytes_at},
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

/// Empty lines skipped before a request line (two; a bound the verifier
/// accepts with the rest of the program).
const MAX_LEADING_CRLF: usize = 3;

/// True when the first payload bytes start an HTTP/1.x request line.
#[inline(always)]
fn request_start(b: [u8; 4]) -> bool {
    matches!(
        &b,
        b"GET " | b"POST" | b"PUT " | b"HEAD" | b"DELE" | b"PATC" | b"OPTI" | b"CONN" | b"TRAC"
    )
}

/// Sampling decision: 1-in-N and the per-CPU token bucket. Returns the
/// monotonic time to stamp the record with, or `None` to skip.
#[inline(always)]
fn admit(control: &Control, counters: &mut Counters) -> Option<u64> {
    let state = SAMPLER.get_ptr_mut(0)?;
    // SAFETY: per-CPU slot, only this CPU writes it while we run.
    let state = unsafe { &mut *state };
    state.seen += 1;
    let rate = control.sample_rate as u64;
    if rate == 0 {
        return None;
    }
    if rate > 1 && state.seen % rate != 0 {
        counters.bump(stat::SKIPPED_RATE);
        return None;
    }
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
    Some(now)
}

/// Fills the scratch header; returns the scratch pointer.
#[inline(always)]
fn header(
    kind: u32,
    l3: &L3,
    tcp: &Tcp,
    payload_len: usize,
    captured: usize,
    now: u64,
    ifindex: u32,
) -> Option<*mut u8> {
    let scratch = SCRATCH.get_ptr_mut(0)? as *mut u8;
    let h = RecordHeader {
        kind,
        captured_len: captured as u32,
        payload_len: payload_len as u32,
        seq: tcp.seq,
        ts_ns: now,
        src: l3.src,
        dst: l3.dst,
        sport: tcp.sport,
        dport: tcp.dport,
        ifindex,
        ack: tcp.ack,
        pad: 0,
    };
    // SAFETY: the scratch value is SCRATCH_LEN >= HEADER_LEN bytes; unaligned
    // write because the array has byte alignment.
    unsafe { core::ptr::write_unaligned(scratch as *mut RecordHeader, h) };
    Some(scratch)
}

/// `bpf_ringbuf_query` flag: bytes not yet consumed.
const BPF_RB_AVAIL_DATA: u64 = 0;
/// `bpf_ringbuf_output` flags.
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
/// Unread bytes at which the reader is woken.
const WAKE_BYTES: u64 = 32 * 1024;

/// Outputs `HEADER_LEN + captured` scratch bytes; counts the outcome.
#[inline(always)]
fn emit(scratch: *mut u8, captured: usize, max: usize, counters: &mut Counters, sampled: u32) {
    if captured > max {
        return;
    }
    // Batched wake-ups: a wake-up per record costs the reader a context
    // switch per request. The reader is woken once WAKE_BYTES are waiting;
    // below that, its short poll tick (userspace) picks records up.
    let ring = core::ptr::addr_of!(EVENTS) as *mut _;
    // SAFETY: plain helper call on our own ring buffer map.
    let waiting = unsafe { bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) };
    let flags = if waiting >= WAKE_BYTES {
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

/// Samples an HTTP request start arriving on XDP ingress.
#[inline(always)]
pub fn sample_request<C: EbpfContext>(
    ctx: &C,
    start: usize,
    end: usize,
    l3: &L3,
    tcp: &Tcp,
    control: &Control,
    ifindex: u32,
    counters: &mut Counters,
) {
    if !monitored(control, tcp.dport) {
        return;
    }
    let ip_end = if l3.ip_end < end - start {
        l3.ip_end
    } else {
        end - start
    };
    let payload_len = ip_end.saturating_sub(tcp.payload_off);
    if payload_len == 0 {
        return;
    }
    // RFC 9112 2.2: servers ignore empty lines before a request line, so
    // a request led by CRLFs is a request (a bounded number of them).
    let mut at = tcp.payload_off;
    let mut first = [0u8; 4];
    for _ in 0..MAX_LEADING_CRLF {
        let Some(p) = bytes_at(start, end, at, 4) else {
            counters.bump(stat::NON_HTTP);
            return;
        };
        // SAFETY: 4 bytes in bounds.
        first = unsafe { [*p, *p.add(1), *p.add(2), *p.add(3)] };
        if first[0] != b'\r' || first[1] != b'\n' {
            break;
        }
        at += 2;
    }
    if !request_start(first) {
        counters.bump(stat::NON_HTTP);
        return;
    }
    let Some(now) = admit(control, counters) else {
        return;
    };
    record::<{ MAX_REQUEST_CAPTURE as usize }>(
        record::REQUEST,
        l3,
        tcp,
        payload_len,
        control.request_len as usize,
        now,
        ifindex,
        counters,
        stat::SAMPLED,
        // SAFETY: the destination has MAX bytes after the header; the
        // helper bounds-checks the packet side.
        |dst, len| unsafe {
            bpf_xdp_load_bytes(
                ctx.as_ptr() as *mut _,
                tcp.payload_off as u32,
                dst as *mut _,
                len,
            )
        },
    );
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
    if control.sample_rate == 0 || !monitored(control, tcp.sport) {
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
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    record::<{ MAX_RESPONSE_CAPTURE as usize }>(
        record::RESPONSE,
        l3,
        tcp,
        payload_len,
        control.response_len as usize,
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

/// Copies up to `want` (at most `MAX`) payload bytes with `load` behind a
/// header in the scratch buffer and outputs the record; counts the outcome
/// in `sampled` or `ringbuf_full` (a failed copy counts as a parse error).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn record<const MAX: usize>(
    kind: u32,
    l3: &L3,
    tcp: &Tcp,
    payload_len: usize,
    want: usize,
    now: u64,
    ifindex: u32,
    counters: &mut Counters,
    sampled: u32,
    load: impl FnOnce(*mut u8, u32) -> i64,
) {
    const { assert!(MAX.is_power_of_two()) };
    let captured = payload_len.min(want.min(MAX));
    if captured == 0 || captured > MAX {
        return;
    }
    // An identity for 1..=MAX that the verifier can see is never 0 nor
    // above MAX (range facts do not survive every compiler transformation).
    let captured = ((captured - 1) & (MAX - 1)) + 1;
    let Some(scratch) = header(kind, l3, tcp, payload_len, captured, now, ifindex) else {
        return;
    };
    // SAFETY: scratch holds SCRATCH_LEN >= HEADER_LEN + MAX bytes.
    if load(unsafe { scratch.add(HEADER_LEN) }, captured as u32) != 0 {
        counters.bump(stat::PARSE_ERROR);
        return;
    }
    emit(scratch, captured, MAX, counters, sampled);
}
