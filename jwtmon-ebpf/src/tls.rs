//! TLS plaintext from OpenSSL, without terminating anything: uprobes on
//! `SSL_read`/`SSL_write` (and their `_ex` forms) copy what the server
//! read and wrote into the `EVENTS` ring, as the same records the packet
//! path makes, so userspace reassembles, parses and pairs them unchanged.
//!
//! Attribution: `accept()` (syscall tracepoints) names each connection's
//! peer as the kernel accepted it, keyed by `(process, fd)`. A call's fd
//! comes from `SSL_set_fd`, or from the `read`/`write`/`recvfrom`/`sendto`
//! the call makes inside OpenSSL. A call on a socket the kernel did not
//! see accepted (a client, or a connection older than the daemon) is
//! counted and not forwarded: nobody can be named for it.
//!
//! Cost: a record costs one token of the same per-CPU bucket the packet
//! path uses, a call copies at most `Control::tls_bytes` (in up to
//! `MAX_CHUNKS` records), and nothing here ever waits: the traced process
//! is never held up.

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user, generated},
    macros::{map, tracepoint, uprobe, uretprobe},
    maps::LruHashMap,
    programs::{ProbeContext, RetProbeContext, TracePointContext},
};
use jwtmon_common::{
    Addr, Control, MAX_REQUEST_CAPTURE, MAX_RESPONSE_CAPTURE, RecordHeader, TlsAccept, TlsCall,
    TlsConn, TlsSession, TlsSocket, record, sizes, stat, tcp_flag, tls_cookie, v4_mapped,
};

use crate::{
    capture::{MAX_CHUNKS, admit, copy_out, emit, flow_sampled, scratch_with},
    counters::{Counters, control},
};

#[map(name = "TLS_CALLS")]
static TLS_CALLS: LruHashMap<u64, TlsCall> = LruHashMap::with_max_entries(sizes::TLS_THREADS, 0);

#[map(name = "TLS_FDS")]
static TLS_FDS: LruHashMap<TlsSession, i32> = LruHashMap::with_max_entries(sizes::TLS_FDS, 0);

#[map(name = "TLS_ACCEPTS")]
static TLS_ACCEPTS: LruHashMap<u64, TlsAccept> =
    LruHashMap::with_max_entries(sizes::TLS_THREADS, 0);

#[map(name = "TLS_CONNS")]
static TLS_CONNS: LruHashMap<TlsSocket, TlsConn> =
    LruHashMap::with_max_entries(sizes::TLS_CONNS, 0);

/// Offsets of the syscall tracepoint fields (`/sys/kernel/tracing/events/
/// syscalls/*/format`): the first argument, the second, and `ret`.
const ARG0: usize = 16;
const ARG1: usize = 24;
const RET: usize = 16;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// The thread's `pid_tgid` and its process id.
#[inline(always)]
fn current() -> (u64, u32) {
    let id = bpf_get_current_pid_tgid();
    (id, (id >> 32) as u32)
}

/// Entry of `SSL_read`, `SSL_read_ex`, `SSL_write`, `SSL_write_ex`: the
/// arguments are kept for the return.
#[uprobe]
pub fn jwtmon_tls_enter(ctx: ProbeContext) -> u32 {
    let _ = try_enter(&ctx);
    0
}

#[inline(always)]
fn try_enter(ctx: &ProbeContext) -> Option<()> {
    let control = control()?;
    if control.tls_bytes == 0 {
        return None;
    }
    // SAFETY: helper without preconditions on a probe context.
    let cookie = unsafe { generated::bpf_get_attach_cookie(ctx.as_ptr()) };
    let ssl: u64 = ctx.arg(0)?;
    let buf: u64 = ctx.arg(1)?;
    let count_ptr: u64 = if cookie & tls_cookie::EX != 0 {
        ctx.arg(3)?
    } else {
        0
    };
    let (id, tgid) = current();
    // SAFETY: a read-only lookup; the value is copied out at once.
    let fd = unsafe { TLS_FDS.get(&TlsSession { ssl, tgid, pad: 0 }) }
        .copied()
        .unwrap_or(-1);
    let call = TlsCall {
        ssl,
        buf,
        count_ptr,
        fd,
        kind: if cookie & tls_cookie::WRITE != 0 {
            record::TLS_WRITE
        } else {
            record::TLS_READ
        },
    };
    // SAFETY: as above.
    if unsafe { TLS_CALLS.get(&id) }.is_some() {
        // The thread's previous call never returned.
        Counters::get().bump(stat::TLS_ABANDONED);
    }
    TLS_CALLS.insert(&id, &call, 0).ok()
}

/// Return of the same four: the plaintext goes out.
#[uretprobe]
pub fn jwtmon_tls_return(ctx: RetProbeContext) -> u32 {
    let _ = try_return(&ctx);
    0
}

#[inline(always)]
fn try_return(ctx: &RetProbeContext) -> Option<()> {
    let (id, tgid) = current();
    // SAFETY: copied out before the entry is removed.
    let call = unsafe { *TLS_CALLS.get(&id)? };
    let _ = TLS_CALLS.remove(&id);
    let ret: i64 = ctx.ret();
    let ret = ret as i32;
    let n = if call.count_ptr != 0 {
        if ret != 1 {
            return None;
        }
        // SAFETY: reads the caller's size_t through a checked helper.
        unsafe { bpf_probe_read_user(call.count_ptr as *const u64) }.ok()?
    } else {
        if ret <= 0 {
            return None;
        }
        ret as u64
    };
    if n == 0 {
        return None;
    }
    let control = control()?;
    let mut counters = Counters::get();
    if call.fd < 0 {
        counters.bump(stat::TLS_UNATTRIBUTED);
        return None;
    }
    let socket = TlsSocket {
        tgid,
        fd: call.fd as u32,
    };
    let Some(conn) = TLS_CONNS.get_ptr_mut(&socket) else {
        counters.bump(stat::TLS_UNATTRIBUTED);
        return None;
    };
    let session = TlsSession {
        ssl: call.ssl,
        tgid,
        pad: 0,
    };
    // SAFETY: read-only lookup.
    if unsafe { TLS_FDS.get(&session) }.is_none() {
        // Learned from a syscall inside the call: later calls that read
        // from OpenSSL's buffer (no syscall) still find their socket.
        let _ = TLS_FDS.insert(&session, &call.fd, 0);
    }
    // SAFETY: a live map value; two threads of one process on one socket
    // can only blur the offsets, which reassembly then reports as a gap.
    let conn = unsafe { &mut *conn };
    if !flow_sampled(control, &conn.peer, conn.peer_port, 0) {
        return None;
    }
    let n = n as u32;
    if call.kind == record::TLS_READ {
        if conn.opened == 0 {
            conn.opened = 1;
            bare(conn, socket, tcp_flag::SYN, 0, control, &mut counters);
        }
        let seq = conn.read_off;
        conn.read_off = seq.wrapping_add(n);
        forward_read(&call, conn, seq, n, tgid, control, &mut counters);
    } else {
        let seq = conn.write_off;
        conn.write_off = seq.wrapping_add(n);
        forward_write(&call, conn, seq, n, tgid, control, &mut counters);
    }
    Some(())
}

/// A TLS record's header.
#[inline(always)]
fn tls_header(
    kind: u32,
    conn: &TlsConn,
    tgid: u32,
    seq: u32,
    at: (usize, usize),
    now: u64,
) -> RecordHeader {
    RecordHeader {
        kind,
        captured_len: at.0 as u32,
        payload_len: at.1 as u32,
        seq,
        ts_ns: now,
        src: conn.peer,
        dst: [0; 16],
        sport: conn.peer_port,
        dport: 0,
        ifindex: 0,
        ack: if kind == record::TLS_WRITE {
            conn.read_off
        } else {
            conn.write_off
        },
        flags: 0,
        tgid,
        listen_fd: conn.listen_fd,
    }
}

/// The first `tls_bytes` of the client's plaintext, in up to
/// [`MAX_CHUNKS`] records; what is not copied is announced as a hole.
#[inline(always)]
fn forward_read(
    call: &TlsCall,
    conn: &TlsConn,
    seq: u32,
    n: u32,
    tgid: u32,
    control: &Control,
    counters: &mut Counters,
) {
    let total = n as usize;
    let limit = (control.tls_bytes as usize).min(total);
    let chunk = MAX_REQUEST_CAPTURE as usize;
    let mut offset = 0usize;
    for i in 0..MAX_CHUNKS {
        if offset >= limit {
            return;
        }
        let rest = limit - offset;
        let captured = if rest < chunk { rest } else { chunk };
        let last = i == MAX_CHUNKS - 1 || captured == rest;
        // The last record stands for the rest of the call: what was not
        // copied is a hole.
        let stands_for = if last { total - offset } else { captured };
        let Some(now) = admit(control, counters) else {
            return;
        };
        let at = seq.wrapping_add(offset as u32);
        let src = call.buf + offset as u64;
        copy_out::<{ MAX_REQUEST_CAPTURE as usize }>(
            captured,
            |c| {
                scratch_with(tls_header(
                    record::TLS_READ,
                    conn,
                    tgid,
                    at,
                    (c, stands_for),
                    now,
                ))
            },
            counters,
            stat::TLS_SAMPLED,
            stat::TLS_COPY_FAILED,
            // SAFETY: the destination has MAX bytes after the header; the
            // helper checks the user side.
            |dst, len| unsafe {
                generated::bpf_probe_read_user(dst as *mut _, len, src as *const _)
            },
        );
        offset += captured;
    }
}

/// The server's plaintext when it starts an HTTP/1.x response.
#[inline(always)]
fn forward_write(
    call: &TlsCall,
    conn: &TlsConn,
    seq: u32,
    n: u32,
    tgid: u32,
    control: &Control,
    counters: &mut Counters,
) {
    if n < 12 {
        return;
    }
    // SAFETY: 8 bytes of the caller's buffer through a checked helper.
    let Ok(first) = (unsafe { bpf_probe_read_user(call.buf as *const [u8; 8]) }) else {
        counters.bump(stat::TLS_COPY_FAILED);
        return;
    };
    if &first[..7] != b"HTTP/1." {
        return;
    }
    let Some(now) = admit(control, counters) else {
        return;
    };
    let want = (control.response_len as usize).min(MAX_RESPONSE_CAPTURE as usize);
    let total = n as usize;
    let captured = if total < want { total } else { want };
    let src = call.buf;
    copy_out::<{ MAX_RESPONSE_CAPTURE as usize }>(
        captured,
        |c| {
            scratch_with(tls_header(
                record::TLS_WRITE,
                conn,
                tgid,
                seq,
                (c, total),
                now,
            ))
        },
        counters,
        stat::SAMPLED_RESPONSES,
        stat::TLS_COPY_FAILED,
        // SAFETY: as in `forward_read`.
        |dst, len| unsafe { generated::bpf_probe_read_user(dst as *mut _, len, src as *const _) },
    );
}

/// A payload-less record of the client's stream (SYN at the first
/// plaintext, FIN at close).
#[inline(always)]
fn bare(
    conn: &TlsConn,
    socket: TlsSocket,
    flag: u32,
    seq: u32,
    control: &Control,
    counters: &mut Counters,
) {
    let Some(now) = admit(control, counters) else {
        return;
    };
    let mut h = tls_header(record::TLS_READ, conn, socket.tgid, seq, (0, 0), now);
    h.flags = flag;
    if let Some(scratch) = scratch_with(h) {
        emit(scratch, 0, 0, counters, stat::TLS_SAMPLED);
    }
}

/// `SSL_set_fd(ssl, fd)`: which socket an `SSL *` speaks on.
#[uprobe]
pub fn jwtmon_tls_set_fd(ctx: ProbeContext) -> u32 {
    let _ = try_set_fd(&ctx);
    0
}

#[inline(always)]
fn try_set_fd(ctx: &ProbeContext) -> Option<()> {
    let ssl: u64 = ctx.arg(0)?;
    let fd: i64 = ctx.arg(1)?;
    let (_, tgid) = current();
    TLS_FDS
        .insert(&TlsSession { ssl, tgid, pad: 0 }, &(fd as i32), 0)
        .ok()
}

/// `accept()`/`accept4()` entry: the listening socket and where the
/// peer's address will be written.
#[tracepoint]
pub fn jwtmon_accept_enter(ctx: TracePointContext) -> u32 {
    let _ = try_accept_enter(&ctx);
    0
}

#[inline(always)]
fn try_accept_enter(ctx: &TracePointContext) -> Option<()> {
    // SAFETY: fixed offsets of the syscall tracepoint's record.
    let listen_fd: u64 = unsafe { ctx.read_at(ARG0) }.ok()?;
    // SAFETY: as above.
    let addr: u64 = unsafe { ctx.read_at(ARG1) }.ok()?;
    let (id, _) = current();
    let a = TlsAccept {
        addr,
        listen_fd: listen_fd as u32,
        pad: 0,
    };
    TLS_ACCEPTS.insert(&id, &a, 0).ok()
}

/// `accept()`/`accept4()` exit: the new fd's peer, as the kernel wrote it.
#[tracepoint]
pub fn jwtmon_accept_exit(ctx: TracePointContext) -> u32 {
    let _ = try_accept_exit(&ctx);
    0
}

#[inline(always)]
fn try_accept_exit(ctx: &TracePointContext) -> Option<()> {
    let (id, tgid) = current();
    // SAFETY: copied out before the entry is removed.
    let a = unsafe { *TLS_ACCEPTS.get(&id)? };
    let _ = TLS_ACCEPTS.remove(&id);
    // SAFETY: fixed offset of `ret`.
    let ret: i64 = unsafe { ctx.read_at(RET) }.ok()?;
    if ret < 0 {
        return None;
    }
    if a.addr == 0 {
        Counters::get().bump(stat::TLS_ANONYMOUS_ACCEPT);
        return None;
    }
    let (peer, peer_port) = read_sockaddr(a.addr)?;
    let conn = TlsConn {
        peer,
        peer_port,
        opened: 0,
        listen_fd: a.listen_fd,
        read_off: 1,
        write_off: 1,
    };
    let socket = TlsSocket {
        tgid,
        fd: ret as u32,
    };
    TLS_CONNS.insert(&socket, &conn, 0).ok()
}

/// An IPv4 or IPv6 `struct sockaddr` in user memory.
#[inline(always)]
fn read_sockaddr(addr: u64) -> Option<(Addr, u16)> {
    // SAFETY: reads of the caller's buffer through checked helpers.
    let family: u16 = unsafe { bpf_probe_read_user(addr as *const u16) }.ok()?;
    // SAFETY: as above.
    let port: [u8; 2] = unsafe { bpf_probe_read_user((addr + 2) as *const [u8; 2]) }.ok()?;
    let port = u16::from_be_bytes(port);
    match family {
        AF_INET => {
            // SAFETY: as above.
            let v4: [u8; 4] = unsafe { bpf_probe_read_user((addr + 4) as *const [u8; 4]) }.ok()?;
            Some((v4_mapped(v4), port))
        }
        AF_INET6 => {
            // SAFETY: as above.
            let v6: Addr = unsafe { bpf_probe_read_user((addr + 8) as *const Addr) }.ok()?;
            Some((v6, port))
        }
        _ => None,
    }
}

/// `close()` entry: a followed connection ends (FIN for reassembly).
#[tracepoint]
pub fn jwtmon_close_enter(ctx: TracePointContext) -> u32 {
    let _ = try_close(&ctx);
    0
}

#[inline(always)]
fn try_close(ctx: &TracePointContext) -> Option<()> {
    // SAFETY: fixed offset of the first argument.
    let fd: u64 = unsafe { ctx.read_at(ARG0) }.ok()?;
    let (_, tgid) = current();
    let socket = TlsSocket {
        tgid,
        fd: fd as u32,
    };
    // SAFETY: copied out before the entry is removed.
    let conn = unsafe { *TLS_CONNS.get(&socket)? };
    let _ = TLS_CONNS.remove(&socket);
    if conn.opened != 0
        && let Some(control) = control()
    {
        let mut counters = Counters::get();
        bare(
            &conn,
            socket,
            tcp_flag::FIN,
            conn.read_off,
            control,
            &mut counters,
        );
    }
    Some(())
}

/// `read`/`write`/`recvfrom`/`sendto` entry inside a TLS call whose socket
/// is not known yet: the call's fd.
#[tracepoint]
pub fn jwtmon_sock_io(ctx: TracePointContext) -> u32 {
    let _ = try_sock_io(&ctx);
    0
}

#[inline(always)]
fn try_sock_io(ctx: &TracePointContext) -> Option<()> {
    let (id, _) = current();
    let call = TLS_CALLS.get_ptr_mut(&id)?;
    // SAFETY: a live map value of this thread only.
    let call = unsafe { &mut *call };
    if call.fd < 0 {
        // SAFETY: fixed offset of the first argument.
        let fd: u64 = unsafe { ctx.read_at(ARG0) }.ok()?;
        call.fd = fd as i32;
    }
    Some(())
}
