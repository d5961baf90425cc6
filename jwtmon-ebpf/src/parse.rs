//! Bounds-checked packet access and L2/L3 parsing shared by the programs.

use jwtmon_common::Addr;

/// Why a frame was not parsed to an IP source.
pub enum ParseError {
    /// Not IPv4/IPv6 (ARP, LLDP, ...).
    NotIp,
    /// Truncated or malformed.
    Malformed,
}

/// An address as the maps key it (IPv4-mapped for IPv4), held in two
/// words: a `[u8; 16]` is moved byte by byte by the BPF backend (sixteen
/// loads and stores per copy), two words in two.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Address([u64; 2]);

impl Address {
    /// The IPv4-mapped address of the IPv4 address in the word `w` (as
    /// loaded from the packet, network byte order in memory).
    #[inline(always)]
    fn v4_mapped(w: u32) -> Self {
        // Bytes 8..16 are 00 00 ff ff a b c d; BPF is little-endian.
        Self([0, (u64::from(w) << 32) | 0xffff_0000])
    }

    /// The IPv4 address of an IPv4-mapped address, as loaded from the
    /// packet (the per-source IPv4 map's key).
    #[inline(always)]
    pub fn v4(&self) -> Option<u32> {
        // One test of a value computed from both words, not a test of each:
        // the verifier then learns nothing about the address itself, and
        // the states after the test stay equal to each other for pruning.
        let tag = self.0[0] | u64::from(self.0[1] as u32 ^ 0xffff_0000);
        (tag == 0).then_some((self.0[1] >> 32) as u32)
    }

    /// The map key.
    #[inline(always)]
    pub fn key(&self) -> &Addr {
        // SAFETY: [u64; 2] and [u8; 16] have the same size, and a byte
        // array needs no alignment.
        unsafe { &*self.0.as_ptr().cast::<Addr>() }
    }
}

/// The network-layer facts the programs need.
pub struct L3 {
    /// Source address, IPv4-mapped for IPv4.
    pub src: Address,
    /// Destination address, IPv4-mapped for IPv4.
    pub dst: Address,
    /// IP protocol / IPv6 next header (6 = TCP).
    pub proto: u8,
    /// Offset of the transport header from the start of the frame.
    pub l4_off: usize,
    /// Offset just past the IP packet (from its length field).
    pub ip_end: usize,
    /// Part of a fragmented packet (IPv4 MF or offset, an IPv6 fragment
    /// header); `later` when it is not the first fragment (no L4 header).
    pub fragment: bool,
    /// A fragment other than the first: what follows the IP header is not
    /// a transport header.
    pub later_fragment: bool,
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
    /// The flags byte (FIN 0x01, SYN 0x02, RST 0x04, ...).
    pub flags: u8,
    /// Offset of the payload from the start of the frame.
    pub payload_off: usize,
}

const IPPROTO_TCP: u8 = 6;

/// IPv6 extension headers the parser walks.
const EXT_HOP_BY_HOP: u8 = 0;
const EXT_ROUTING: u8 = 43;
const EXT_FRAGMENT: u8 = 44;
const EXT_AH: u8 = 51;
const EXT_DEST_OPTS: u8 = 60;
/// At most this many extension headers are walked.
const MAX_EXT_HEADERS: usize = 3;

/// True for TCP carried in a fragment (counted as an evasion attempt).
#[inline(always)]
pub fn tcp_fragment(l3: &L3) -> bool {
    l3.fragment && l3.proto == IPPROTO_TCP
}

/// Parses the TCP header that `l3` points at. `None` for other protocols,
/// IPv6 extension headers, or truncated headers.
#[inline(always)]
pub fn parse_tcp(start: usize, end: usize, l3: &L3) -> Option<Tcp> {
    if l3.proto != IPPROTO_TCP || l3.later_fragment {
        return None;
    }
    let p = bytes_at(start, end, l3.l4_off, 20)?;
    // SAFETY: the 20-byte minimum TCP header is in bounds.
    let (sport, dport, seq, ack, doff, flags) = unsafe {
        (
            u16::from_be(load::<u16>(p)),
            u16::from_be(load::<u16>(p.add(2))),
            u32::from_be(load::<u32>(p.add(4))),
            u32::from_be(load::<u32>(p.add(8))),
            ((*p.add(12) >> 4) as usize) * 4,
            *p.add(13),
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
        flags,
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

/// One load of a `T` from packet memory, like a C program's header field
/// access. Packet fields are only 2-byte aligned; the kernel accepts
/// misaligned packet loads on the architectures with efficient unaligned
/// access (x86-64, arm64), while `read_unaligned` would make the BPF
/// backend split every word into byte loads, shifts and ors.
///
/// # Safety
/// `p..p + size_of::<T>()` is in bounds (checked by [`bytes_at`]).
#[expect(
    clippy::cast_ptr_alignment,
    reason = "packet loads: the verifier allows them misaligned on the targets we run on"
)]
#[inline(always)]
unsafe fn load<T: Copy>(p: *const u8) -> T {
    // SAFETY: in bounds per the contract; see above for alignment.
    unsafe { p.cast::<T>().read() }
}

#[inline(always)]
fn be16_at(start: usize, end: usize, off: usize) -> Option<u16> {
    let p = bytes_at(start, end, off, 2)?;
    // SAFETY: bounds checked above.
    Some(u16::from_be(unsafe { load::<u16>(p) }))
}

/// Parses Ethernet (+ up to two VLAN tags) and IPv4/IPv6 of the frame
/// spanning `start..end`.
#[inline(always)]
pub fn parse_l3(start: usize, end: usize) -> Result<L3, ParseError> {
    let (proto, off) = ethertype(start, end)?;
    match proto {
        ETH_P_IP => parse_ipv4(start, end, off),
        ETH_P_IPV6 => parse_ipv6(start, end, off),
        _ => Err(ParseError::NotIp),
    }
}

/// The EtherType past up to two VLAN tags, and the offset of what it names.
#[inline(always)]
fn ethertype(start: usize, end: usize) -> Result<(u16, usize), ParseError> {
    let mut proto = be16_at(start, end, 12).ok_or(ParseError::Malformed)?;
    let mut off = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        proto = be16_at(start, end, off + 2).ok_or(ParseError::Malformed)?;
        off += 4;
    }
    Ok((proto, off))
}

/// The source address alone, for the enforce-only role: the drop decision
/// needs nothing else, so the fragment flags, lengths, destination and
/// transport offset that the samplers need are not read (about half of
/// the instructions before the lookup). The version (and IPv4's header
/// length) are still checked, as [`parse_l3`] checks them.
///
/// With the address it returns the per-source IPv4 map's key when the
/// source is IPv4 (or IPv4-mapped IPv6), read straight off the header: the
/// IPv4 path then never packs the address into its mapped form and back
/// before the lookup.
#[inline(always)]
pub fn parse_source(start: usize, end: usize) -> Result<(Address, Option<u32>), ParseError> {
    let (proto, off) = ethertype(start, end)?;
    match proto {
        ETH_P_IP => {
            let p = bytes_at(start, end, off, IPV4_MIN_HLEN).ok_or(ParseError::Malformed)?;
            // SAFETY: the 20-byte minimum header is in bounds.
            let (ver_ihl, src) = unsafe { (*p, load::<u32>(p.add(12))) };
            // As `parse_ipv4` checks it (written alike there: the
            // verifier's budget for the sampling program is that tight).
            if ver_ihl >> 4 != 4 || ((ver_ihl & 0x0f) as usize) * 4 < IPV4_MIN_HLEN {
                return Err(ParseError::Malformed);
            }
            Ok((Address::v4_mapped(src), Some(src)))
        }
        ETH_P_IPV6 => {
            let p = bytes_at(start, end, off, IPV6_HLEN).ok_or(ParseError::Malformed)?;
            // SAFETY: the 40-byte header is in bounds.
            let (ver, hi, lo) = unsafe { (*p >> 4, load::<u64>(p.add(8)), load::<u64>(p.add(16))) };
            if ver != 6 {
                return Err(ParseError::Malformed);
            }
            let addr = Address([hi, lo]);
            Ok((addr, addr.v4()))
        }
        _ => Err(ParseError::NotIp),
    }
}

/// IPv4's header without options, IPv6's fixed header.
const IPV4_MIN_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;

#[inline(always)]
fn parse_ipv4(start: usize, end: usize, off: usize) -> Result<L3, ParseError> {
    // One checked pointer for every fixed-offset read: the verifier tracks
    // the proven range per pointer.
    let p = bytes_at(start, end, off, IPV4_MIN_HLEN).ok_or(ParseError::Malformed)?;
    // SAFETY: the 20-byte minimum header is in bounds.
    let (ver_ihl, total, frag, proto, src, dst) = unsafe {
        (
            *p,
            u16::from_be(load::<u16>(p.add(2))) as usize,
            u16::from_be(load::<u16>(p.add(6))),
            *p.add(9),
            Address::v4_mapped(load::<u32>(p.add(12))),
            Address::v4_mapped(load::<u32>(p.add(16))),
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
        // More fragments, or a fragment offset.
        fragment: frag & 0x3fff != 0,
        later_fragment: frag & 0x1fff != 0,
    })
}

#[inline(always)]
fn parse_ipv6(start: usize, end: usize, off: usize) -> Result<L3, ParseError> {
    let p = bytes_at(start, end, off, IPV6_HLEN).ok_or(ParseError::Malformed)?;
    // SAFETY: the 40-byte header is in bounds.
    let (ver, plen, proto, src, dst) = unsafe {
        (
            *p >> 4,
            u16::from_be(load::<u16>(p.add(4))) as usize,
            *p.add(6),
            Address([load::<u64>(p.add(8)), load::<u64>(p.add(16))]),
            Address([load::<u64>(p.add(24)), load::<u64>(p.add(32))]),
        )
    };
    if ver != 6 {
        return Err(ParseError::Malformed);
    }
    // Walk the extension headers (hop-by-hop, routing, destination
    // options, AH, fragment) to the transport header, as the receiving
    // stack does; a bounded number of them.
    let (mut proto, mut l4_off) = (proto, off + IPV6_HLEN);
    let (mut fragment, mut later_fragment) = (false, false);
    for _ in 0..MAX_EXT_HEADERS {
        let len = match proto {
            EXT_HOP_BY_HOP | EXT_ROUTING | EXT_DEST_OPTS | EXT_AH => {
                let h = bytes_at(start, end, l4_off, 2).ok_or(ParseError::Malformed)?;
                // SAFETY: 2 bytes in bounds.
                let (next, words) = unsafe { (*h, *h.add(1) as usize) };
                let len = if proto == EXT_AH {
                    (words + 2) * 4
                } else {
                    (words + 1) * 8
                };
                proto = next;
                len
            }
            EXT_FRAGMENT => {
                let h = bytes_at(start, end, l4_off, 8).ok_or(ParseError::Malformed)?;
                // SAFETY: 8 bytes in bounds.
                let (next, offset) = unsafe { (*h, u16::from_be(load::<u16>(h.add(2))) >> 3) };
                fragment = true;
                later_fragment = offset != 0;
                proto = next;
                8
            }
            _ => break,
        };
        l4_off += len;
    }
    Ok(L3 {
        src,
        dst,
        proto,
        l4_off,
        fragment,
        later_fragment,
        ip_end: if plen == 0 {
            end - start
        } else {
            off + IPV6_HLEN + plen
        },
    })
}
