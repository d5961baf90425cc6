//! The offline source: pcap and pcapng files. Decodes the link layer
//! (Ethernet with VLAN tags, Linux cooked SLL/SLL2, raw IP), reassembles
//! each TCP direction in sequence order (out-of-order and retransmitted
//! segments handled, memory bounded), and cuts the streams into HTTP
//! messages that go through the same parser and observer as live capture.

use std::{
    io::Read,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
    time::{Duration, SystemTime},
};

use pcap_file::{
    DataLink,
    pcapng::{Block, PcapNgReader},
};

use super::{
    Segment,
    reassembly::{Limits, Piece, Reassembly, ReassemblyStats},
};

/// Why a file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// I/O.
    #[error("reading {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        error: std::io::Error,
    },
    /// Not a pcap/pcapng file or corrupt.
    #[error("{path}: {error}")]
    Format {
        /// The file.
        path: String,
        /// pcap-file's words.
        error: String,
    },
}

/// What reading a file found besides the messages.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PcapStats {
    /// Packets in the file.
    pub packets: u64,
    /// Packets that were not TCP over IPv4/IPv6 on a supported link type.
    pub skipped: u64,
    /// What reassembly counted.
    #[serde(flatten)]
    pub reassembly: ReassemblyStats,
    /// Records that were malformed (a microsecond field of a million or
    /// more, a length beyond the snapshot length) and were skipped or
    /// repaired, as tcpdump and Wireshark read them.
    pub bad_records: u64,
    /// The file ended inside a record, or a block could not be read: what
    /// came before was analysed.
    pub truncated: bool,
}

struct Tcp<'a> {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    syn: bool,
    fin_or_rst: bool,
    payload: &'a [u8],
}

/// Decodes a frame of `link` to TCP. `None` for anything else.
fn tcp_of(link: DataLink, frame: &[u8]) -> Option<Tcp<'_>> {
    let ip = match link {
        DataLink::ETHERNET => {
            let mut proto = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
            let mut off = 14;
            for _ in 0..2 {
                if proto == 0x8100 || proto == 0x88A8 {
                    proto = u16::from_be_bytes([*frame.get(off + 2)?, *frame.get(off + 3)?]);
                    off += 4;
                }
            }
            (proto == 0x0800 || proto == 0x86DD).then_some(frame.get(off..)?)?
        }
        DataLink::LINUX_SLL => frame.get(16..)?,
        DataLink::LINUX_SLL2 => frame.get(20..)?,
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => frame,
        _ => return None,
    };
    let (src, dst, tcp) = match ip.first()? >> 4 {
        4 => {
            let ihl = ((ip[0] & 0x0f) as usize) * 4;
            let total = u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]) as usize;
            if *ip.get(9)? != 6 || ihl < 20 {
                return None;
            }
            let end = if total >= ihl && total <= ip.len() {
                total
            } else {
                ip.len()
            };
            let a = |o: usize| -> Option<IpAddr> {
                let b: [u8; 4] = ip.get(o..o + 4)?.try_into().ok()?;
                Some(IpAddr::V4(Ipv4Addr::from(b)))
            };
            (a(12)?, a(16)?, ip.get(ihl..end)?)
        }
        6 => {
            if *ip.get(6)? != 6 {
                return None;
            }
            let plen = u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]) as usize;
            let end = (40 + plen).min(ip.len());
            let a = |o: usize| -> Option<IpAddr> {
                let b: [u8; 16] = ip.get(o..o + 16)?.try_into().ok()?;
                Some(IpAddr::V6(Ipv6Addr::from(b)))
            };
            (a(8)?, a(24)?, ip.get(40..end)?)
        }
        _ => return None,
    };
    let doff = ((*tcp.get(12)? >> 4) as usize) * 4;
    if tcp.len() < 20 || doff < 20 {
        return None;
    }
    let flags = *tcp.get(13)?;
    Some(Tcp {
        src: SocketAddr::new(src, u16::from_be_bytes([*tcp.first()?, *tcp.get(1)?])),
        dst: SocketAddr::new(dst, u16::from_be_bytes([tcp[2], tcp[3]])),
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        ack: u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]),
        syn: flags & 0x02 != 0,
        fin_or_rst: flags & 0x05 != 0,
        payload: tcp.get(doff..)?,
    })
}

/// Reassembles packets into HTTP message segments.
#[derive(Default)]
pub struct Reassembler {
    streams: Reassembly,
    /// What was seen.
    pub stats: PcapStats,
}

impl Reassembler {
    /// Reassembly within `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            streams: Reassembly::new(limits),
            stats: PcapStats::default(),
        }
    }

    /// Feeds one captured frame.
    pub fn packet(&mut self, link: DataLink, ts: Duration, frame: &[u8], out: &mut Vec<Segment>) {
        self.stats.packets += 1;
        let Some(tcp) = tcp_of(link, frame) else {
            self.stats.skipped += 1;
            return;
        };
        let time = SystemTime::UNIX_EPOCH + ts;
        if tcp.syn {
            self.streams.open(tcp.src, tcp.dst, tcp.seq, out);
        }
        let piece = Piece {
            seq: tcp.seq,
            ack: tcp.ack,
            time,
            data: tcp.payload,
        };
        self.streams.data(tcp.src, tcp.dst, piece, out);
        if tcp.fin_or_rst {
            self.streams.close(tcp.src, tcp.dst, out);
        }
        self.stats.reassembly.clone_from(&self.streams.stats);
    }

    /// End of input: whatever is buffered is cut as if closed.
    pub fn finish(&mut self, out: &mut Vec<Segment>) {
        self.streams.finish(out);
        self.stats.reassembly.clone_from(&self.streams.stats);
    }
}

/// Largest record a classic pcap file may declare (Wireshark's limit).
const MAX_RECORD: usize = 256 * 1024;

/// Reads a pcap or pcapng file, calling `each` with every packet. A
/// malformed record is counted in `stats` and skipped (or its timestamp
/// repaired); a file cut inside a record, or a pcapng block that cannot be
/// read, ends the reading with `stats.truncated` set. Only a file that is
/// no capture at all is an error.
pub fn read_file(
    path: &Path,
    stats: &mut PcapStats,
    each: impl FnMut(DataLink, Duration, &[u8]),
) -> Result<(), PcapError> {
    let name = path.display().to_string();
    let io = |error| PcapError::Io {
        path: name.clone(),
        error,
    };
    let file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    read_from(&name, file, stats, each)
}

/// [`read_file`] on any reader; errors name it `name`.
pub fn read_from(
    name: &str,
    mut file: impl Read,
    stats: &mut PcapStats,
    mut each: impl FnMut(DataLink, Duration, &[u8]),
) -> Result<(), PcapError> {
    let io = |error| PcapError::Io {
        path: name.to_string(),
        error,
    };
    let fmt = |error: String| PcapError::Format {
        path: name.to_string(),
        error,
    };
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).map_err(io)?;
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        let file = std::io::Cursor::new(magic).chain(file);
        let mut r = PcapNgReader::new(file).map_err(|e| fmt(e.to_string()))?;
        let mut links = Vec::new();
        while let Some(block) = r.next_block() {
            match block {
                Ok(Block::InterfaceDescription(i)) => links.push(i.linktype),
                Ok(Block::EnhancedPacket(p)) => {
                    let link = links
                        .get(p.interface_id as usize)
                        .copied()
                        .unwrap_or(DataLink::ETHERNET);
                    each(link, p.timestamp, &p.data);
                }
                Ok(_) => {}
                Err(_) => {
                    // Block lengths are the only framing: no resync.
                    stats.bad_records += 1;
                    stats.truncated = true;
                    break;
                }
            }
        }
        return Ok(());
    }
    classic(magic, file, stats, &mut each).map_err(fmt)
}

/// Reads a classic pcap file after its magic number.
fn classic(
    magic: [u8; 4],
    mut file: impl Read,
    stats: &mut PcapStats,
    each: &mut impl FnMut(DataLink, Duration, &[u8]),
) -> Result<(), String> {
    let (big, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        _ => return Err("not a pcap or pcapng file (unknown magic number)".into()),
    };
    let u32_of = |b: &[u8]| {
        let b: [u8; 4] = b.try_into().unwrap_or_default();
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let mut header = [0u8; 20];
    file.read_exact(&mut header)
        .map_err(|_| "pcap global header cut short".to_string())?;
    let snaplen = (u32_of(&header[12..16]) as usize).clamp(1, MAX_RECORD);
    let link = DataLink::from(u32_of(&header[16..20]));
    let unit: u32 = if nanos { 1_000_000_000 } else { 1_000_000 };
    let mut rec = [0u8; 16];
    let mut data = Vec::new();
    loop {
        match read_full(&mut file, &mut rec) {
            Ok(0) => return Ok(()),
            Ok(16) => {}
            _ => {
                stats.truncated = true;
                return Ok(());
            }
        }
        let (secs, mut frac) = (u32_of(&rec[0..4]), u32_of(&rec[4..8]));
        let len = u32_of(&rec[8..12]) as usize;
        if len > MAX_RECORD.max(snaplen) {
            // A length nothing could have captured: the framing is lost.
            stats.bad_records += 1;
            stats.truncated = true;
            return Ok(());
        }
        if frac >= unit {
            // tcpdump and Wireshark read these; carry into the seconds.
            stats.bad_records += 1;
            frac = unit - 1;
        }
        data.resize(len, 0);
        if read_full(&mut file, &mut data).map_or(true, |n| n < len) {
            stats.truncated = true;
            return Ok(());
        }
        let nanos = if nanos { frac } else { frac * 1000 };
        each(link, Duration::new(u64::from(secs), nanos), &data);
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic pcap (microseconds, little endian, raw IP) of `records`
    /// (seconds, microseconds, bytes).
    fn pcap(records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut f = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&65535u32.to_le_bytes());
        f.extend_from_slice(&101u32.to_le_bytes());
        for (s, us, data) in records {
            f.extend_from_slice(&s.to_le_bytes());
            f.extend_from_slice(&us.to_le_bytes());
            f.extend_from_slice(&(data.len() as u32).to_le_bytes());
            f.extend_from_slice(&(data.len() as u32).to_le_bytes());
            f.extend_from_slice(data);
        }
        f
    }

    fn read(bytes: &[u8]) -> (Vec<Duration>, PcapStats) {
        let path = std::env::temp_dir().join(format!(
            "jwtmon-pcap-unit-{}-{}.pcap",
            std::process::id(),
            bytes.len()
        ));
        std::fs::write(&path, bytes).unwrap();
        let mut stats = PcapStats::default();
        let mut times = Vec::new();
        read_file(&path, &mut stats, |_, ts, _| times.push(ts)).unwrap();
        std::fs::remove_file(&path).ok();
        (times, stats)
    }

    #[test]
    fn a_bad_record_is_counted_and_the_rest_is_read() {
        let pkt = [0x45u8; 40];
        let (times, stats) = read(&pcap(&[
            (10, 5, &pkt),
            (11, 1_000_000, &pkt),
            (12, 7, &pkt),
        ]));
        assert_eq!(times.len(), 3);
        assert_eq!(times[1], Duration::new(11, 999_999_000));
        assert_eq!((stats.bad_records, stats.truncated), (1, false));
        // Cut inside the last record: the first two are kept.
        let mut cut = pcap(&[(10, 5, &pkt), (11, 6, &pkt), (12, 7, &pkt)]);
        cut.truncate(cut.len() - 10);
        let (times, stats) = read(&cut);
        assert_eq!((times.len(), stats.truncated), (2, true));
        // A length no capture could have: reading stops, nothing panics.
        let mut absurd = pcap(&[(10, 5, &pkt)]);
        absurd.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]);
        let (times, stats) = read(&absurd);
        assert_eq!(
            (times.len(), stats.bad_records, stats.truncated),
            (1, 1, true)
        );
    }

    #[test]
    fn short_ip_headers_are_skipped_not_a_panic() {
        let mut v4 = vec![0x45u8, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0];
        v4.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        v4.extend_from_slice(&[0; 20]);
        for n in 0..v4.len() {
            assert!(tcp_of(DataLink::RAW, &v4[..n]).is_none(), "{n} bytes");
        }
        let v6 = [0x60u8; 60];
        for n in 0..v6.len() {
            let _ = tcp_of(DataLink::RAW, &v6[..n]);
        }
    }
}
