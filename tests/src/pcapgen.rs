//! Writes pcap/pcapng files with known HTTP exchanges, for the offline
//! tests: TCP handshakes, requests split over several segments, optional
//! reordering and retransmission, IPv4 or IPv6, Ethernet (optionally VLAN)
//! or Linux cooked (SLL) framing. No captured third-party traffic is used.

use std::{borrow::Cow, net::SocketAddr, path::Path, time::Duration};

use anyhow::Result;
use pcap_file::{
    DataLink,
    pcap::{PcapHeader, PcapPacket, PcapWriter},
    pcapng::{
        PcapNgWriter,
        blocks::{
            enhanced_packet::EnhancedPacketBlock, interface_description::InterfaceDescriptionBlock,
        },
    },
};

/// One request and the response to it.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// Raw request bytes.
    pub request: Vec<u8>,
    /// Raw response bytes.
    pub response: Vec<u8>,
}

/// A connection and how its packets are disturbed.
#[derive(Clone, Debug)]
pub struct Conn {
    /// Client address.
    pub client: SocketAddr,
    /// Server address.
    pub server: SocketAddr,
    /// Exchanges, in order.
    pub exchanges: Vec<Exchange>,
    /// Payload bytes per segment.
    pub mss: usize,
    /// Swap the 2nd and 3rd segment of each request.
    pub reorder: bool,
    /// Send the first segment of each request twice.
    pub retransmit: bool,
}

/// Link-layer framing.
#[derive(Clone, Copy, Debug)]
pub enum Link {
    /// Plain Ethernet.
    Ethernet,
    /// Ethernet with one 802.1Q tag.
    Vlan(u16),
    /// Linux cooked capture v1.
    Sll,
}

fn ip_tcp(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> (u16, Vec<u8>) {
    let mut tcp = Vec::with_capacity(20 + payload.len());
    tcp.extend_from_slice(&src.port().to_be_bytes());
    tcp.extend_from_slice(&dst.port().to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    tcp.extend_from_slice(payload);
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
            ip.extend_from_slice(&s.ip().octets());
            ip.extend_from_slice(&d.ip().octets());
            ip.extend_from_slice(&tcp);
            (0x0800, ip)
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            let mut ip = vec![0x60, 0, 0, 0];
            ip.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
            ip.extend_from_slice(&[6, 64]);
            ip.extend_from_slice(&s.ip().octets());
            ip.extend_from_slice(&d.ip().octets());
            ip.extend_from_slice(&tcp);
            (0x86DD, ip)
        }
        _ => panic!("mixed address families"),
    }
}

/// One Ethernet frame holding a TCP segment (`flags` as on the wire).
pub fn tcp_frame(
    src: SocketAddr,
    dst: SocketAddr,
    (seq, ack): (u32, u32),
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let (ethertype, ip) = ip_tcp(src, dst, seq, ack, flags, payload);
    frame(Link::Ethernet, ethertype, ip)
}

fn frame(link: Link, ethertype: u16, ip: Vec<u8>) -> Vec<u8> {
    let mut f = Vec::with_capacity(ip.len() + 20);
    match link {
        Link::Ethernet | Link::Vlan(_) => {
            f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
            if let Link::Vlan(id) = link {
                f.extend_from_slice(&0x8100u16.to_be_bytes());
                f.extend_from_slice(&id.to_be_bytes());
            }
            f.extend_from_slice(&ethertype.to_be_bytes());
        }
        Link::Sll => {
            f.extend_from_slice(&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            f.extend_from_slice(&ethertype.to_be_bytes());
        }
    }
    f.extend_from_slice(&ip);
    f
}

/// All frames of `conns`, interleaved one connection after another, with
/// timestamps 1 ms apart from `start`.
pub fn frames(link: Link, conns: &[Conn], start: Duration) -> Vec<(Duration, Vec<u8>)> {
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const PSH: u8 = 0x08;
    const FIN: u8 = 0x01;
    let mut out = Vec::new();
    let mut t = start;
    let mut push = |out: &mut Vec<(Duration, Vec<u8>)>, (et, ip): (u16, Vec<u8>)| {
        t += Duration::from_millis(1);
        out.push((t, frame(link, et, ip)));
    };
    for (n, c) in conns.iter().enumerate() {
        let (mut cs, mut ss) = (1000 + n as u32 * 7919, 5000 + n as u32 * 104_729);
        push(&mut out, ip_tcp(c.client, c.server, cs, 0, SYN, b""));
        push(
            &mut out,
            ip_tcp(c.server, c.client, ss, cs + 1, SYN | ACK, b""),
        );
        cs += 1;
        ss += 1;
        for ex in &c.exchanges {
            let mut segs: Vec<(u32, &[u8])> = ex
                .request
                .chunks(c.mss.max(1))
                .scan(cs, |seq, chunk| {
                    let s = *seq;
                    *seq += chunk.len() as u32;
                    Some((s, chunk))
                })
                .collect();
            if c.reorder && segs.len() >= 3 {
                segs.swap(1, 2);
            }
            if c.retransmit && !segs.is_empty() {
                segs.push(segs[0]);
            }
            for (seq, chunk) in segs {
                push(
                    &mut out,
                    ip_tcp(c.client, c.server, seq, ss, ACK | PSH, chunk),
                );
            }
            cs += ex.request.len() as u32;
            for chunk in ex.response.chunks(c.mss.max(1)) {
                push(
                    &mut out,
                    ip_tcp(c.server, c.client, ss, cs, ACK | PSH, chunk),
                );
                ss += chunk.len() as u32;
            }
        }
        push(&mut out, ip_tcp(c.client, c.server, cs, ss, FIN | ACK, b""));
    }
    out
}

/// Writes `frames` as pcap (`ng = false`) or pcapng.
pub fn write(path: &Path, link: Link, frames: &[(Duration, Vec<u8>)], ng: bool) -> Result<()> {
    let datalink = match link {
        Link::Sll => DataLink::LINUX_SLL,
        _ => DataLink::ETHERNET,
    };
    let file = std::fs::File::create(path)?;
    if ng {
        let mut w = PcapNgWriter::new(file)?;
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: datalink,
            snaplen: 0,
            options: vec![],
        })?;
        for (ts, f) in frames {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: *ts,
                original_len: f.len() as u32,
                data: Cow::Borrowed(f),
                options: vec![],
            })?;
        }
    } else {
        let header = PcapHeader {
            datalink,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(file, header)?;
        for (ts, f) in frames {
            w.write_packet(&PcapPacket::new(*ts, f.len() as u32, f))?;
        }
    }
    Ok(())
}
