//! Builds Ethernet frames for BPF_PROG_TEST_RUN: IPv4 (with options), IPv6,
//! VLAN/QinQ tags, non-IP and truncated frames.

use std::net::{Ipv4Addr, Ipv6Addr};

/// An Ethernet frame under construction.
#[derive(Clone, Debug, Default)]
pub struct Frame {
    vlans: Vec<(u16, u16)>,
    body: Body,
}

#[derive(Clone, Debug, Default)]
enum Body {
    #[default]
    Arp,
    V4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        options: usize,
        frag: u16,
        payload: Vec<u8>,
    },
    V6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        next: u8,
        payload: Vec<u8>,
    },
}

impl Frame {
    /// A TCP-ish IPv4 packet from `src`.
    pub fn v4(src: &str) -> Self {
        Self {
            vlans: Vec::new(),
            body: Body::V4 {
                src: src.parse().expect("IPv4 address"),
                dst: Ipv4Addr::new(192, 0, 2, 1),
                options: 0,
                frag: 0x4000,
                payload: vec![0u8; 20],
            },
        }
    }

    /// A TCP segment from `src:40000` to `dport` carrying `payload`.
    pub fn tcp_v4(src: &str, dport: u16, seq: u32, payload: &[u8]) -> Self {
        let mut tcp = Vec::with_capacity(20 + payload.len());
        tcp.extend_from_slice(&40000u16.to_be_bytes());
        tcp.extend_from_slice(&dport.to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        tcp.extend_from_slice(payload);
        let mut frame = Self::v4(src);
        if let Body::V4 { payload, .. } = &mut frame.body {
            *payload = tcp;
        }
        frame
    }

    /// Sets the destination of an IPv4 frame.
    pub fn to_v4(mut self, dst: &str) -> Self {
        if let Body::V4 { dst: d, .. } = &mut self.body {
            *d = dst.parse().expect("IPv4 address");
        }
        self
    }

    /// An IPv6 packet from `src`.
    pub fn v6(src: &str) -> Self {
        Self {
            vlans: Vec::new(),
            body: Body::V6 {
                src: src.parse().expect("IPv6 address"),
                dst: "2001:db8::1".parse().expect("valid"),
                next: 6,
                payload: vec![0u8; 20],
            },
        }
    }

    /// A TCP segment to `dport` over IPv6 behind the extension headers
    /// `exts` (types 0, 43, 44, 60; 8 bytes each; a fragment header with
    /// `frag_offset`).
    pub fn tcp_v6_ext(
        src: &str,
        dport: u16,
        exts: &[u8],
        frag_offset: u16,
        payload: &[u8],
    ) -> Self {
        let mut body = Vec::new();
        for (i, _) in exts.iter().enumerate() {
            let next = exts.get(i + 1).copied().unwrap_or(6);
            if exts[i] == 44 {
                body.push(next);
                body.push(0);
                body.extend_from_slice(&(frag_offset << 3).to_be_bytes());
                body.extend_from_slice(&[0, 0, 0, 1]);
            } else {
                body.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
            }
        }
        body.extend_from_slice(&40000u16.to_be_bytes());
        body.extend_from_slice(&dport.to_be_bytes());
        body.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        body.extend_from_slice(payload);
        Self {
            vlans: Vec::new(),
            body: Body::V6 {
                src: src.parse().expect("IPv6 address"),
                dst: "2001:db8::1".parse().expect("valid"),
                next: exts.first().copied().unwrap_or(6),
                payload: body,
            },
        }
    }

    /// Sets the IPv4 flags and fragment offset field (e.g. 0x2000 for
    /// "more fragments", 3 for offset 24 bytes).
    pub fn with_ipv4_frag(mut self, field: u16) -> Self {
        if let Body::V4 { frag, .. } = &mut self.body {
            *frag = field;
        }
        self
    }

    /// Sets the TCP flags byte of an IPv4 TCP frame (0x02 SYN, 0x11
    /// FIN+ACK, 0x04 RST, 0x18 PSH+ACK by default).
    pub fn with_tcp_flags(mut self, flags: u8) -> Self {
        if let Body::V4 { payload, .. } = &mut self.body
            && payload.len() >= 20
        {
            payload[13] = flags;
        }
        self
    }

    /// Sets the TCP source port of an IPv4 TCP frame (40000 by default).
    pub fn from_port(mut self, port: u16) -> Self {
        if let Body::V4 { payload, .. } = &mut self.body
            && payload.len() >= 20
        {
            payload[..2].copy_from_slice(&port.to_be_bytes());
        }
        self
    }

    /// An ARP frame (not IP).
    pub fn arp() -> Self {
        Self::default()
    }

    /// Adds `words` 32-bit words of IPv4 options (IHL = 5 + words).
    pub fn with_ipv4_options(mut self, words: usize) -> Self {
        if let Body::V4 { options, .. } = &mut self.body {
            *options = words;
        }
        self
    }

    /// Adds an 802.1Q tag (outermost first when called repeatedly).
    pub fn vlan(mut self, id: u16) -> Self {
        self.vlans.push((0x8100, id));
        self
    }

    /// Adds an 802.1ad (QinQ service) tag.
    pub fn qinq(mut self, id: u16) -> Self {
        self.vlans.push((0x88A8, id));
        self
    }

    /// The bytes on the wire.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        out.extend_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        for (tpid, id) in &self.vlans {
            out.extend_from_slice(&tpid.to_be_bytes());
            out.extend_from_slice(&id.to_be_bytes());
        }
        match &self.body {
            Body::Arp => {
                out.extend_from_slice(&0x0806u16.to_be_bytes());
                out.extend_from_slice(&[0u8; 28]);
            }
            Body::V4 {
                src,
                dst,
                options,
                frag,
                payload,
            } => {
                out.extend_from_slice(&0x0800u16.to_be_bytes());
                let ihl = 5 + options;
                let total = (ihl * 4 + payload.len()) as u16;
                out.push(0x40 | ihl as u8);
                out.push(0);
                out.extend_from_slice(&total.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&frag.to_be_bytes());
                out.extend_from_slice(&[64, 6, 0, 0]);
                out.extend_from_slice(&src.octets());
                out.extend_from_slice(&dst.octets());
                // NOP options.
                out.extend(std::iter::repeat_n(1u8, options * 4));
                out.extend_from_slice(payload);
            }
            Body::V6 {
                src,
                dst,
                next,
                payload,
            } => {
                out.extend_from_slice(&0x86DDu16.to_be_bytes());
                out.extend_from_slice(&[0x60, 0, 0, 0]);
                out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
                out.extend_from_slice(&[*next, 64]);
                out.extend_from_slice(&src.octets());
                out.extend_from_slice(&dst.octets());
                out.extend_from_slice(payload);
            }
        }
        out
    }

    /// Sets the version/IHL byte of an IPv4 frame (to craft bad headers).
    pub fn build_with_ver_ihl(&self, ver_ihl: u8) -> Vec<u8> {
        let mut b = self.build();
        let off = 14 + 4 * self.vlans.len();
        b[off] = ver_ihl;
        b
    }
}

/// Sends one raw Ethernet frame out of `iface` (an AF_PACKET socket in the
/// calling thread's network namespace): how a test forges a packet with
/// any source address, as a spoofing attacker would.
pub fn send_raw(iface: &str, frame: &[u8]) -> std::io::Result<()> {
    let name = std::ffi::CString::new(iface).map_err(std::io::Error::other)?;
    // SAFETY: plain syscalls on a socket this function owns and closes.
    unsafe {
        let index = libc::if_nametoindex(name.as_ptr());
        if index == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let proto = (libc::ETH_P_ALL as u16).to_be();
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto));
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        addr.sll_ifindex = index as i32;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&frame[..6]);
        let sent = libc::sendto(
            fd,
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        );
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if sent < 0 {
            return Err(err);
        }
    }
    Ok(())
}
