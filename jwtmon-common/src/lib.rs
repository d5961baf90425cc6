//! Types shared by jwtmon's kernel programs (`jwtmon-ebpf`) and its userspace
//! daemon (`jwtmon`).
//!
//! Everything here is `#[repr(C)]`, free of implicit padding (checked by the
//! compile-time size asserts at the bottom), and `aya::Pod` when the `user`
//! feature is on. Map and program names are constants so both sides agree.
#![no_std]

/// An address as the datapath keys it: IPv6, with IPv4 stored IPv4-mapped
/// (`::ffff:a.b.c.d`). One key type serves both families, so one map of each
/// kind covers v4 and v6 and a v4 CIDR `/n` becomes prefix `n + 96`.
pub type Addr = [u8; 16];

/// Prefix length added to an IPv4 prefix to make it an IPv4-mapped IPv6 prefix.
pub const V4_MAPPED_PREFIX: u32 = 96;

/// Builds the IPv4-mapped key of an IPv4 address given in network order.
#[expect(
    clippy::inline_always,
    reason = "on the per-packet path of the verifier-checked kernel program"
)]
#[inline(always)]
pub const fn v4_mapped(o: [u8; 4]) -> Addr {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, o[0], o[1], o[2], o[3],
    ]
}

/// Names of the XDP/TC programs in the object file.
pub mod programs {
    /// XDP ingress program: allowlist, blocklists, per-source counters, and
    /// HTTP request sampling (interface role "both").
    pub const XDP_INGRESS: &str = "jwtmon_xdp";
    /// XDP ingress, enforcement only (role "enforce").
    pub const XDP_ENFORCE: &str = "jwtmon_xdp_enforce";
    /// XDP ingress, sampling only, never drops (role "capture").
    pub const XDP_CAPTURE: &str = "jwtmon_xdp_capture";
    /// TC egress program: HTTP response sampling.
    pub const TC_EGRESS: &str = "jwtmon_tc_egress";
    /// Pass-everything XDP program: the benchmark's baseline, never attached.
    pub const XDP_BASELINE: &str = "jwtmon_xdp_pass";
    /// uprobe on `SSL_read`, `SSL_read_ex`, `SSL_write`, `SSL_write_ex`
    /// (the attach cookie says which, [`super::tls_cookie`]).
    pub const TLS_ENTER: &str = "jwtmon_tls_enter";
    /// uretprobe on the same four.
    pub const TLS_RETURN: &str = "jwtmon_tls_return";
    /// uprobe on `SSL_set_fd`.
    pub const TLS_SET_FD: &str = "jwtmon_tls_set_fd";
    /// Tracepoint `syscalls:sys_enter_accept{,4}`.
    pub const TLS_ACCEPT_ENTER: &str = "jwtmon_accept_enter";
    /// Tracepoint `syscalls:sys_exit_accept{,4}`.
    pub const TLS_ACCEPT_EXIT: &str = "jwtmon_accept_exit";
    /// Tracepoint `syscalls:sys_enter_close`.
    pub const TLS_CLOSE: &str = "jwtmon_close_enter";
    /// Tracepoint on `read`/`write`/`recvfrom`/`sendto` entry: learns the
    /// fd of a TLS call whose `SSL *` was not seen in `SSL_set_fd`.
    pub const TLS_SOCKET_IO: &str = "jwtmon_sock_io";
}

/// Attach cookies of [`programs::TLS_ENTER`]/[`programs::TLS_RETURN`].
pub mod tls_cookie {
    /// The call writes (`SSL_write*`); else it reads.
    pub const WRITE: u64 = 1;
    /// The `_ex` form: the byte count is written through the last argument.
    pub const EX: u64 = 2;
}

/// Names of the maps in the object file (also their pin file names under the
/// pin directory). Kernel object names are limited to 15 bytes.
pub mod maps {
    /// LPM trie `Key<Addr>` → [`super::AllowEntry`]: never dropped.
    pub const ALLOW_CIDR: &str = "ALLOW_CIDR";
    /// Hash `Addr` → [`super::BlockEntry`]: exact-address blocks.
    pub const BLOCK_IP: &str = "BLOCK_IP";
    /// LPM trie `Key<Addr>` → [`super::BlockEntry`]: CIDR blocks.
    pub const BLOCK_CIDR: &str = "BLOCK_CIDR";
    /// LRU per-CPU hash `Addr` → [`super::SourceStats`]: IPv6 sources.
    pub const SRC_STATS: &str = "SRC_STATS";
    /// LRU per-CPU hash `u32` (the IPv4 address as it sits in the packet,
    /// network byte order) → [`super::SourceStats`]: IPv4 sources. A
    /// 4-byte key hashes and compares in a quarter of the work of the
    /// 16-byte IPv4-mapped one.
    pub const SRC_STATS4: &str = "SRC_STATS4";
    /// Per-CPU array with one [`super::GlobalStats`] slot.
    pub const GLOBAL_STATS: &str = "GLOBAL_STATS";
    /// Array with one [`super::Control`] slot, written by userspace.
    pub const CONTROL: &str = "CONTROL";
    /// Ring buffer of [`super::RecordHeader`] + payload records.
    pub const EVENTS: &str = "EVENTS";
    /// Per-CPU [`super::SamplerState`].
    pub const SAMPLER: &str = "SAMPLER";
    /// Per-CPU scratch space a record is assembled in.
    pub const SCRATCH: &str = "SCRATCH";
    /// Per-connection byte budget of the client-segment forwarder.
    pub const FLOWS: &str = "FLOWS";
    /// TLS calls between entry and return ([`super::TlsCall`]).
    pub const TLS_CALLS: &str = "TLS_CALLS";
    /// `SSL *` → fd ([`super::TlsSession`] → `i32`).
    pub const TLS_FDS: &str = "TLS_FDS";
    /// accept() calls in flight ([`super::TlsAccept`]).
    pub const TLS_ACCEPTS: &str = "TLS_ACCEPTS";
    /// Accepted connections ([`super::TlsSocket`] → [`super::TlsConn`]).
    pub const TLS_CONNS: &str = "TLS_CONNS";
    /// Maps that are pinned (state worth keeping across restarts and shared
    /// with the CLI). EVENTS/SAMPLER/SCRATCH belong to one daemon run.
    pub const ALL: [&str; 7] = [
        ALLOW_CIDR,
        BLOCK_IP,
        BLOCK_CIDR,
        SRC_STATS,
        SRC_STATS4,
        GLOBAL_STATS,
        CONTROL,
    ];
}

/// Compiled-in map sizes. The daemon overrides them from its config at load
/// time; these are the defaults it documents.
pub mod sizes {
    /// Exact-address block entries.
    pub const BLOCK_IP: u32 = 1_000_000;
    /// CIDR block entries.
    pub const BLOCK_CIDR: u32 = 100_000;
    /// Allowlist CIDR entries.
    pub const ALLOW_CIDR: u32 = 10_000;
    /// Tracked sources in each LRU counters map (IPv4, IPv6).
    pub const SRC_STATS: u32 = 1_000_000;
    /// Connections whose forwarded bytes are budgeted (LRU).
    pub const FLOWS: u32 = 65_536;
    /// Accepted connections the TLS probes follow (LRU).
    pub const TLS_CONNS: u32 = 65_536;
    /// `SSL *` → fd entries (LRU).
    pub const TLS_FDS: u32 = 65_536;
    /// Calls and accepts in flight (LRU, one per thread).
    pub const TLS_THREADS: u32 = 16_384;
}

/// Value of the single-slot per-CPU global stats array: one `u64` counter per
/// [`stat`] index, so a packet costs one map lookup however many it bumps.
pub type GlobalStats = [u64; stat::COUNT as usize];

/// Indexes into [`GlobalStats`].
pub mod stat {
    /// Packets passed on (including fail-open ones).
    pub const PASSED: u32 = 0;
    /// Packets dropped by any block entry.
    pub const DROPPED: u32 = 1;
    /// Of the dropped: matched an exact-address entry.
    pub const DROPPED_EXACT: u32 = 2;
    /// Of the dropped: matched a CIDR entry.
    pub const DROPPED_CIDR: u32 = 3;
    /// Packets that matched a block entry but passed because the allowlist
    /// covers their source (the allowlist always wins).
    pub const ALLOWLISTED: u32 = 4;
    /// Frames that are not IPv4/IPv6 (ARP, LLDP, ...): passed.
    pub const NON_IP: u32 = 5;
    /// Frames too short or malformed to parse: passed (fail open).
    pub const PARSE_ERROR: u32 = 6;
    /// Block entries found but already expired: passed.
    pub const EXPIRED_MATCH: u32 = 7;
    /// Client segments (data, SYN, FIN, RST) forwarded into the ring buffer.
    pub const SAMPLED: u32 = 8;
    /// Segments skipped by the rate limit / sample rate.
    pub const SKIPPED_RATE: u32 = 9;
    /// Records skipped because the ring buffer was full.
    pub const RINGBUF_FULL: u32 = 10;
    /// Client segments not forwarded because their connection spent its
    /// bytes for this second (`capture.flow_bytes_per_second`).
    pub const FLOW_CUT: u32 = 11;
    /// Responses sampled by the egress program.
    pub const SAMPLED_RESPONSES: u32 = 12;
    /// TCP in IP fragments (IPv4 MF/offset, an IPv6 fragment header): real
    /// TCP stacks do not fragment, so these are evasion attempts; passed
    /// unsampled.
    pub const TCP_FRAGMENTS: u32 = 13;
    /// TLS plaintext records (SSL_read/SSL_write calls, or pieces of one)
    /// put in the ring buffer.
    pub const TLS_SAMPLED: u32 = 14;
    /// TLS calls on a socket whose peer the kernel did not see accepted
    /// (a client-side call, or a connection older than the daemon): not
    /// analysed, since no sender could be named.
    pub const TLS_UNATTRIBUTED: u32 = 15;
    /// TLS calls whose entry was overwritten before their return ran (the
    /// thread exited or was cancelled mid-call).
    pub const TLS_ABANDONED: u32 = 16;
    /// Plaintext that could not be read from the traced process (paged
    /// out, or unmapped under us).
    pub const TLS_COPY_FAILED: u32 = 17;
    /// Accepted connections whose peer address was not given to accept()
    /// (a NULL address): their TLS calls cannot be attributed.
    pub const TLS_ANONYMOUS_ACCEPT: u32 = 18;
    /// Number of slots in the array (room left for later counters).
    pub const COUNT: u32 = 24;
    /// Human-readable names, indexed by slot (empty = unused).
    pub const NAMES: [&str; COUNT as usize] = [
        "passed",
        "dropped",
        "dropped_exact",
        "dropped_cidr",
        "allowlisted",
        "non_ip",
        "parse_error",
        "expired_match",
        "sampled",
        "skipped_rate",
        "ringbuf_full",
        "flow_cut",
        "sampled_responses",
        "tcp_fragments",
        "tls_sampled",
        "tls_unattributed",
        "tls_abandoned",
        "tls_copy_failed",
        "tls_anonymous_accept",
        "",
        "",
        "",
        "",
        "",
    ];
}

/// Who created a block entry.
pub mod origin {
    /// An operator through the CLI or admin API.
    pub const OPERATOR: u32 = 0;
    /// A bulk import (`jwtmon import-blocklist`).
    pub const IMPORT: u32 = 1;
    /// The daemon's decision engine.
    pub const DECISION: u32 = 2;
    /// Another host of the fleet (through Redis).
    pub const FLEET: u32 = 3;
}

/// Length of the reason text stored in a block entry.
pub const REASON_LEN: usize = 32;

/// Value of the block maps (exact and CIDR).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    /// CLOCK_MONOTONIC deadline in ns (the kernel's `bpf_ktime_get_ns`);
    /// 0 means permanent. The kernel program passes traffic once it is past.
    pub expires_ns: u64,
    /// Wall-clock creation time, seconds since the Unix epoch (display only).
    pub created_unix_s: u64,
    /// Packets dropped by this entry (atomically incremented by the kernel).
    pub drops: u64,
    /// TTL requested at creation in seconds, 0 = permanent (display only).
    pub ttl_s: u32,
    /// One of [`origin`].
    pub origin: u16,
    /// Prefix length of the key this entry is stored under (128 for exact
    /// entries). Lets the kernel look past an expired CIDR to a broader one.
    pub prefix_len: u16,
    /// NUL-padded UTF-8 reason text.
    pub reason: [u8; REASON_LEN],
}

/// Value of the allowlist trie.
/// Why an allowlist entry was added automatically ([`AllowEntry::reason`]).
pub mod allow_reason {
    /// Added by the operator or from `[allowlist]`.
    pub const CONFIG: u64 = 0;
    /// One of the host's own addresses.
    pub const OWN_ADDRESS: u64 = 1;
    /// A default gateway.
    pub const GATEWAY: u64 = 2;
    /// A DNS resolver from /etc/resolv.conf.
    pub const RESOLVER: u64 = 3;
    /// A configured trusted proxy.
    pub const TRUSTED_PROXY: u64 = 4;
    /// A service jwtmon talks to (JWKS, SMTP, webhook, Redis host).
    pub const SERVICE: u64 = 5;
    /// Allowed on another host of the fleet.
    pub const FLEET: u64 = 6;

    /// Its name in `jwtmon list`.
    pub const fn name(reason: u64) -> &'static str {
        match reason {
            CONFIG => "config",
            OWN_ADDRESS => "auto: own address",
            GATEWAY => "auto: gateway",
            RESOLVER => "auto: resolver",
            TRUSTED_PROXY => "auto: trusted proxy",
            SERVICE => "auto: service host",
            FLEET => "fleet",
            _ => "auto",
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllowEntry {
    /// Wall-clock creation time, seconds since the Unix epoch.
    pub created_unix_s: u64,
    /// Why the entry exists: 0 the operator or the config, else one of
    /// [`allow_reason`] (added automatically so jwtmon never blocks the
    /// host itself or what it depends on). Written by userspace only: the
    /// kernel never touches it, so allowlisted traffic costs no write.
    pub reason: u64,
}

/// Most monitored plain-HTTP ports.
pub const MAX_CAPTURE_PORTS: usize = 16;
/// Most request bytes one record carries.
pub const MAX_REQUEST_CAPTURE: u32 = 4096;
/// Most response bytes one record carries.
pub const MAX_RESPONSE_CAPTURE: u32 = 512;

/// Knobs userspace sets for the kernel programs (single slot of `CONTROL`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Control {
    /// Written by userspace after every change to the block or allow maps.
    /// A source whose cached `verdict_gen` equals it (and whose lease runs)
    /// gets its cached verdict without a block or allow lookup. 0 never
    /// matches.
    pub block_gen: u64,
    /// Monitored server ports (host order); 0 marks an unused slot.
    pub capture_ports: [u16; MAX_CAPTURE_PORTS],
    /// Sample one request in N (1 = every request; 0 = capture off).
    pub sample_rate: u32,
    /// Request payload bytes to copy (1..=MAX_REQUEST_CAPTURE).
    pub request_len: u32,
    /// Response payload bytes to copy (1..=MAX_RESPONSE_CAPTURE).
    pub response_len: u32,
    /// Records per second each CPU may emit (the global cap / CPUs).
    pub rate_per_cpu: u32,
    /// Client bytes forwarded per connection and second (0 = no cap).
    pub flow_bytes_per_sec: u32,
    /// Plaintext bytes copied per TLS call, in records of at most
    /// `MAX_REQUEST_CAPTURE` (0 = TLS capture off).
    pub tls_bytes: u32,
}

/// Kinds of ring-buffer records.
pub mod record {
    /// A client segment to a monitored port (data, or a SYN/FIN/RST with
    /// none), or a piece of one: userspace reassembles the stream.
    pub const REQUEST: u32 = 1;
    /// A TCP segment from a monitored port that starts an HTTP/1.x response.
    pub const RESPONSE: u32 = 2;
    /// The first IP fragment of TCP to a monitored port (no payload).
    pub const FRAGMENT: u32 = 3;
    /// Plaintext a TLS server read (`SSL_read`): the client's stream, with
    /// `seq` counting its bytes; or a SYN/FIN without payload.
    pub const TLS_READ: u32 = 4;
    /// Plaintext a TLS server wrote that starts an HTTP/1.x response;
    /// `ack` is how far the server had read.
    pub const TLS_WRITE: u32 = 5;
}

/// TCP flags carried in [`RecordHeader::flags`].
pub mod tcp_flag {
    /// No more data from the sender.
    pub const FIN: u32 = 0x01;
    /// Connection start; `seq` is the initial sequence number.
    pub const SYN: u32 = 0x02;
    /// Connection reset.
    pub const RST: u32 = 0x04;
}

/// Header of every ring-buffer record; `captured_len` payload bytes follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// One of [`record`].
    pub kind: u32,
    /// Payload bytes that follow this header.
    pub captured_len: u32,
    /// Payload bytes this record stands for: `captured_len`, or more when
    /// the rest of the segment was not copied (a hole for reassembly).
    pub payload_len: u32,
    /// TCP sequence number of the record's first payload byte.
    pub seq: u32,
    /// CLOCK_MONOTONIC ns when the program saw the segment.
    pub ts_ns: u64,
    /// Source address (IPv4-mapped for IPv4).
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// Source port, host order.
    pub sport: u16,
    /// Destination port, host order.
    pub dport: u16,
    /// Interface index it was seen on.
    pub ifindex: u32,
    /// TCP acknowledgment number (responses: how far the server has read).
    pub ack: u32,
    /// The segment's [`tcp_flag`]s.
    pub flags: u32,
    /// TLS records: the process (thread group) that made the call; 0
    /// otherwise.
    pub tgid: u32,
    /// TLS records: the listening socket's fd in that process, which
    /// names the server address; 0 otherwise.
    pub listen_fd: u32,
}

/// A connection as the forwarder budgets it: the client and the server port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowKey {
    /// Client address.
    pub client: Addr,
    /// Client port, host order.
    pub client_port: u16,
    /// Server port, host order.
    pub server_port: u16,
}

/// Bytes a connection forwarded in the current one-second window.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowBudget {
    /// CLOCK_MONOTONIC ns when the window began.
    pub window_ns: u64,
    /// Bytes forwarded in it.
    pub bytes: u64,
}

/// A TLS call between its entry and its return, keyed by thread
/// (`pid_tgid`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsCall {
    /// The `SSL *`.
    pub ssl: u64,
    /// The plaintext buffer.
    pub buf: u64,
    /// `SSL_read_ex`/`SSL_write_ex`: where the byte count is written; 0
    /// for `SSL_read`/`SSL_write` (the return value is the count).
    pub count_ptr: u64,
    /// The socket, once known (-1 until then).
    pub fd: i32,
    /// [`record::TLS_READ`] or [`record::TLS_WRITE`].
    pub kind: u32,
}

/// A process's socket: `(tgid, fd)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsSocket {
    /// Thread group (process) id.
    pub tgid: u32,
    /// File descriptor.
    pub fd: u32,
}

/// An `SSL *` of a process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsSession {
    /// The `SSL *`.
    pub ssl: u64,
    /// Thread group (process) id.
    pub tgid: u32,
    /// Zero.
    pub pad: u32,
}

/// An `accept()` in flight, keyed by thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsAccept {
    /// The caller's `struct sockaddr *` (0: none given).
    pub addr: u64,
    /// The listening socket.
    pub listen_fd: u32,
    /// Zero.
    pub pad: u32,
}

/// An accepted connection, as the TLS probes attribute it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsConn {
    /// The peer (IPv4-mapped for IPv4).
    pub peer: Addr,
    /// Peer port, host order.
    pub peer_port: u16,
    /// 1 once the SYN record went out (at the first plaintext).
    pub opened: u16,
    /// The listening socket it came from.
    pub listen_fd: u32,
    /// Stream offset of the next byte read (starts at 1; 0 is the SYN).
    pub read_off: u32,
    /// Stream offset of the next byte written.
    pub write_off: u32,
}

/// Per-CPU sampling state (token bucket and 1-in-N counter).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SamplerState {
    /// Tokens left, in millitokens.
    pub tokens_milli: u64,
    /// CLOCK_MONOTONIC ns of the last refill.
    pub last_ns: u64,
    /// Records admitted.
    pub seen: u64,
    /// `bpf_jiffies64()` of this CPU's latest forced reader wake-up.
    pub woke_jiffies: u64,
}

/// Per-source counters (one value per CPU in an LRU per-CPU hash).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Packets seen from the source.
    pub packets: u64,
    /// Bytes seen from the source (frame length).
    pub bytes: u64,
    /// Packets of the source that were dropped.
    pub drops: u64,
    /// CLOCK_MONOTONIC ns of the first packet seen on this CPU.
    pub first_seen_ns: u64,
    /// CLOCK_MONOTONIC ns of the latest packet seen on this CPU that
    /// renewed the verdict lease (so at most one lease old).
    pub last_seen_ns: u64,
    /// `Control::block_gen` at which `verdict` was computed; 0 when there
    /// is none (verdict cache; see [`Control::block_gen`]).
    pub verdict_gen: u64,
    /// `bpf_jiffies64()` value until which the cached verdict holds (a
    /// lease of [`verdict::LEASE_JIFFIES`]).
    pub lease_jiffies: u64,
    /// The cached verdict, one of [`verdict`]'s codes.
    pub verdict: u32,
    /// Drops answered from the cached verdict that are not yet added to the
    /// block entry's own counter (added when the lease is renewed).
    pub pending_drops: u32,
}

/// The verdicts the XDP program caches per source, and how long they hold.
pub mod verdict {
    /// No block entry matched.
    pub const PASS: u32 = 0;
    /// An exact-address entry matched.
    pub const DROP_EXACT: u32 = 1;
    /// A CIDR entry matched.
    pub const DROP_CIDR: u32 = 2;
    /// A block entry matched and the allowlist covers the source.
    pub const ALLOWLISTED: u32 = 3;
    /// Jiffies a cached verdict holds before the maps are consulted again
    /// (32 ms at HZ=1000, 320 ms at HZ=100). Any change to the block or
    /// allow maps ends every lease at once through `Control::block_gen`.
    pub const LEASE_JIFFIES: u64 = 32;
    /// The longest a lease can last in ns (HZ is at least 100): a drop is
    /// only cached when its entry outlives this, so no cached drop outlasts
    /// its block.
    pub const MAX_LEASE_NS: u64 = LEASE_JIFFIES * 10_000_000;
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain `#[repr(C)]` structs of integers and byte arrays with no
    // padding (see the size asserts), so every bit pattern is valid.
    unsafe impl aya::Pod for super::BlockEntry {}
    unsafe impl aya::Pod for super::AllowEntry {}
    unsafe impl aya::Pod for super::SourceStats {}
    unsafe impl aya::Pod for super::Control {}
    unsafe impl aya::Pod for super::RecordHeader {}
    unsafe impl aya::Pod for super::SamplerState {}
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::FlowBudget {}
    unsafe impl aya::Pod for super::TlsCall {}
    unsafe impl aya::Pod for super::TlsSocket {}
    unsafe impl aya::Pod for super::TlsSession {}
    unsafe impl aya::Pod for super::TlsAccept {}
    unsafe impl aya::Pod for super::TlsConn {}
}

const _: () = assert!(size_of::<BlockEntry>() == 8 * 3 + 4 + 2 * 2 + REASON_LEN);
const _: () = assert!(size_of::<GlobalStats>() == 8 * stat::COUNT as usize);
const _: () = assert!(size_of::<AllowEntry>() == 16);
const _: () = assert!(size_of::<SourceStats>() == 64);
const _: () = assert!(size_of::<Control>() == 64);
const _: () = assert!(size_of::<RecordHeader>() == 80);
const _: () = assert!(size_of::<SamplerState>() == 32);
const _: () = assert!(size_of::<FlowKey>() == 20);
const _: () = assert!(size_of::<FlowBudget>() == 16);
const _: () = assert!(size_of::<TlsCall>() == 32);
const _: () = assert!(size_of::<TlsSocket>() == 8);
const _: () = assert!(size_of::<TlsSession>() == 16);
const _: () = assert!(size_of::<TlsAccept>() == 16);
const _: () = assert!(size_of::<TlsConn>() == 32);
/// Size of the per-CPU scratch buffer: the largest record.
pub const SCRATCH_LEN: usize = size_of::<RecordHeader>() + MAX_REQUEST_CAPTURE as usize;
const _: () = assert!(size_of::<Addr>() == 16);
