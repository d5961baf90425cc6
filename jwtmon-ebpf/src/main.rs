//! jwtmon's kernel programs.
//!
//! `jwtmon_xdp` (XDP ingress) owns enforcement: it finds the source address
//! (Ethernet, up to two VLAN tags, IPv4 with options, IPv6), then decides in
//! this order: a block entry (exact address, then CIDR) that has not expired
//! drops the packet unless the allowlist covers the source; everything else
//! passes. Anything it cannot parse passes too (fail open) and is counted.
//! It never logs per packet: it counts, per source and globally.
//!
//! What passes on a capture interface is sampled: TCP segments to the
//! monitored ports that start an HTTP/1.x request go into the `EVENTS` ring
//! buffer (`capture`), and `jwtmon_tc_egress` does the same for response
//! status lines leaving those ports.
//!
//! With TLS capture on, uprobes on OpenSSL and syscall tracepoints (`tls`)
//! put the plaintext of TLS servers into the same ring, as the same
//! records, attributed to the peer the kernel accepted.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(target_arch = "bpf", allow(internal_features))]

#[cfg(target_arch = "bpf")]
mod capture;

#[cfg(target_arch = "bpf")]
mod counters;

#[cfg(target_arch = "bpf")]
mod tc;

#[cfg(target_arch = "bpf")]
mod xdp;

#[cfg(target_arch = "bpf")]
mod parse;

#[cfg(target_arch = "bpf")]
mod tls;

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// License of the object; GPL-compatible so GPL-only helpers are usable.
#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

/// Host builds (e.g. `cargo check --workspace`) get an empty binary: the real
/// object only exists for the BPF target.
#[cfg(not(target_arch = "bpf"))]
fn main() {}
