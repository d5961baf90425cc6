//! Bounds-checked packet access and L2/L3 parsing shared by the programs.

use jwtmon_common::{Addr, v4_mapped};

/// Why a frame was not parsed to an IP source.
pub enum ParseError {
    /// Not IPv4/IPv6 (ARP, LLDP, ...).
    NotIp,
    /// Truncated or malformed.
    Malformed,
}

/// The network-layer facts the programs need.
pub struct L3 {
    /// Source address, IPv4-mapped for IPv4.
    pub src: Addr,
    /// Destination address, IPv4-mapped for IPv4.
    pub dst: Addr,
    /// IP protocol / IPv6 next header (6 = TCP).
    pub proto: u8,
    /// Offset of the transport header from the start of the frame.
    pub l4_off: usize,
    /// Offset just past the IP packet (from its length field).
    pub ip_end: usize,
}

/// The TCP facts the samplers need.
pub struct Tcp {
    /// Source port, host order.
    pub sport: u16,
    /// Destination port, host order.
    pub dport: u16,
    /// Sequence number, host order.
    pub seq: u32,
    /// Acknowledgment number, host order.
    pub ack: u32,
    /// Offset of the payload from the start of the frame.
    pub payload_off: usize,
}

const IPPROTO_TCP: u8 = 6;

/// Parses the TCP header that `l3` points at. `None` for other protocols,
/// IPv6 extension headers, or truncated headers.
#[inline(always)]
pub fn parse_tcp(start: usize, end: usize, l3: &L3) -> Option<Tcp> {
    if l3.proto != IPPROTO_TCP {
        return None;
    }
    let p = bytes_at(start, end, l3.l4_off, 20)?;
    // SAFETY: the 20-byte minimum TCP header is in bounds.
    let (sport, dport, seq, ack, doff) = unsafe {
        (
            u16::from_be_bytes([*p, *p.add(1)]),
            u16::from_be_bytes([*p.add(2), *p.add(3)]),
            u32::from_be_bytes([*p.add(4), *p.add(5), *p.add(6), *p.add(7)]),
            u32::from_be_bytes([*p.add(8), *p.add(9), *p.add(10), *p.add(11)]),
            ((*p.add(12) >> 4) as usize) * 4,
        )
    };
    if doff < 20 {
        return None;
    }
    Some(Tcp {
        sport,
        dport,
        seq,
        ack,
        payload_off: l3.l4_off + doff,
    })
}

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;
/// VLAN tags we look through (802.1ad outer + 802.1Q inner = QinQ).
const MAX_VLAN_TAGS: usize = 2;

/// Returns a pointer to `len` readable bytes at `off`, or `None` when the
/// frame is shorter. Every packet read goes through this check.
#[inline(always)]
pub fn bytes_at(start: usize, end: usize, off: usize, len: usize) -> Option<*const u8> {
    let at = start.checked_add(off)?;
    if at.checked_add(len)? > end {
        return None;
    }
    Some(at as *const u8)
}

#[inline(always)]
fn be16_at(start: usize, end: usize, off: usize) -> Option<u16> {
    let p = bytes_at(start, end, off, 2)?;
    // SAFETY: bounds checked above; byte reads need no alignment.
    Some(unsafe { u16::from_be_bytes([*p, *p.add(1)]) })
}

/// Parses Ethernet (+ up to two VLAN tags) and IPv4/IPv6 of the frame
/// spanning `start..end`.
#[inline(always)]
pub fn parse_l3(start: usize, end: usize) -> Result<L3, ParseError> {
    let mut proto = be16_at(start, end, 12).ok_or(ParseError::Malformed)?;
    let mut off = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        proto = be16_at(start, end, off + 2).ok_or(ParseError::Malformed)?;
        off += 4;
    }
    match proto {
        ETH_P_IP => parse_ipv4(start, end, off),
        ETH_P_IPV6 => parse_ipv6(start, end, off),
        _ => Err(ParseError::NotIp),
    }
}

#[inline(always)]
fn parse_ipv4(start: usize, end: usize, off: usize) -> Result<L3, ParseError> {
    const IPV4_MIN_HLEN: usize = 20;
    // One checked pointer for every fixed-offset read: the verifier tracks
    // the proven range per pointer.
    let p = bytes_at(start, end, off, IPV4_MIN_HLEN).ok_or(ParseError::Malformed)?;
    // SAFETY: the 20-byte minimum header is in bounds.
    let (ver_ihl, total, proto, src, dst) = unsafe {
        (
            *p,
            u16::from_be_bytes([*p.add(2), *p.add(3)]) as usize,
            *p.add(9),
            v4_mapped([*p.add(12), *p.add(13), *p.add(14), *p.add(15)]),
            v4_mapped([*p.add(16), *p.add(17), *p.add(18), *p.add(19)]),
        )
    };
    let ihl = ((ver_ihl & 0x0f) as usize) * 4;
    if ver_ihl >> 4 != 4 || ihl < IPV4_MIN_HLEN {
        return Err(ParseError::Malformed);
    }
    // The whole header, options included, must be in the frame.
    bytes_at(start, end, off, ihl).ok_or(ParseError::Malformed)?;
    Ok(L3 {
        src,
        dst,
        proto,
        l4_off: off + ihl,
        // tot_len 0 happens on GSO super-packets: fall back to the frame.
        ip_end: if total == 0 { end - start } else { off + total },
    })
}

#[inline(always)]
fn parse_ipv6(start: usize, end: usize, off: usize) -> Result<L3, ParseError> {
    const IPV6_HLEN: usize = 40;
    let p = bytes_at(start, end, off, IPV6_HLEN).ok_or(ParseError::Malformed)?;
    // SAFETY: the 40-byte header is in bounds.
    let (ver, plen, proto, src, dst) = unsafe {
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        core::ptr::copy_nonoverlapping(p.add(8), src.as_mut_ptr(), 16);
        core::ptr::copy_nonoverlapping(p.add(24), dst.as_mut_ptr(), 16);
        (
            *p >> 4,
            u16::from_be_bytes([*p.add(4), *p.add(5)]) as usize,
            *p.add(6),
            src,
            dst,
        )
    };
    if ver != 6 {
        return Err(ParseError::Malformed);
    }
    Ok(L3 {
        src,
        dst,
        proto,
        l4_off: off + IPV6_HLEN,
        ip_end: if plen == 0 {
            end - start
        } else {
            off + IPV6_HLEN + plen
        },
    })
}
