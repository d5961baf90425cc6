//! Capture: HTTP messages from the kernel's ring buffer (live) or from a
//! capture file (offline). Both reassemble client streams with the same
//! [`reassembly`] and produce the same [`Segment`]s for the parser.

pub mod config;
pub mod live;
pub mod pcap;
pub mod reassembly;
pub mod ringbuf;
pub mod tls;

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, SystemTime},
};

use jwtmon_common::{RecordHeader, record};

use crate::target::addr_from_key;

/// Which side of an HTTP exchange a segment starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to server: starts with a request line.
    Request,
    /// Server to client: starts with a status line.
    Response,
}

pub use crate::transport::Transport;

/// The start of one TCP segment's payload, with its flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Request or response.
    pub dir: Direction,
    /// When it was seen (wall clock).
    pub time: SystemTime,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// TCP sequence number of the first payload byte.
    pub seq: u32,
    /// TCP acknowledgment number.
    pub ack: u32,
    /// Payload length of the whole segment (may exceed `data`).
    pub payload_len: u32,
    /// The bytes captured from the start of the payload.
    pub data: Vec<u8>,
    /// TCP or TLS.
    pub transport: Transport,
}

impl Segment {
    /// True when `data` holds the whole payload.
    pub fn complete(&self) -> bool {
        self.data.len() as u64 >= u64::from(self.payload_len)
    }
}

/// Why a record from the kernel was unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// Shorter than its header.
    #[error("record of {0} bytes is shorter than its header")]
    Short(usize),
    /// Claims more payload than it carries.
    #[error("record claims {claimed} payload bytes but carries {carried}")]
    Length {
        /// In the header.
        claimed: u32,
        /// In the record.
        carried: usize,
    },
    /// Unknown kind.
    #[error("unknown record kind {0}")]
    Kind(u32),
}

/// Converts kernel CLOCK_MONOTONIC timestamps to wall-clock time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Wall-clock time at monotonic zero.
    epoch: SystemTime,
}

impl Clock {
    /// Measures the offset between the two clocks now.
    pub fn now() -> Self {
        let mono = Duration::from_nanos(crate::clock::monotonic_ns());
        Self {
            epoch: SystemTime::now() - mono,
        }
    }

    /// The wall-clock time of a monotonic timestamp.
    pub fn wall(&self, mono_ns: u64) -> SystemTime {
        self.epoch + Duration::from_nanos(mono_ns)
    }
}

/// What a ring record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A client segment (or a piece of one) for reassembly.
    Client,
    /// A response start.
    Response,
    /// The first IP fragment of TCP to a monitored port.
    Fragment,
    /// Plaintext a TLS server read (or its SYN/FIN): reassembled like a
    /// client stream.
    TlsRead,
    /// Plaintext a TLS server wrote that starts a response.
    TlsWrite,
}

/// One decoded ring-buffer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// What it is.
    pub kind: RecordKind,
    /// The segment's TCP flags ([`jwtmon_common::tcp_flag`]).
    pub flags: u32,
    /// The bytes and their flow.
    pub segment: Segment,
    /// TLS records: the process that made the call (0 otherwise).
    pub tgid: u32,
    /// TLS records: the listening socket's fd in that process.
    pub listen_fd: u32,
}

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8], clock: &Clock) -> Result<Record, RecordError> {
    const HDR: usize = size_of::<RecordHeader>();
    if bytes.len() < HDR {
        return Err(RecordError::Short(bytes.len()));
    }
    // SAFETY: HDR bytes are there; RecordHeader is Pod, read unaligned.
    let h: RecordHeader = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
    let carried = bytes.len() - HDR;
    if h.captured_len as usize > carried {
        return Err(RecordError::Length {
            claimed: h.captured_len,
            carried,
        });
    }
    let (kind, dir) = match h.kind {
        record::REQUEST => (RecordKind::Client, Direction::Request),
        record::RESPONSE => (RecordKind::Response, Direction::Response),
        record::FRAGMENT => (RecordKind::Fragment, Direction::Request),
        record::TLS_READ => (RecordKind::TlsRead, Direction::Request),
        record::TLS_WRITE => (RecordKind::TlsWrite, Direction::Response),
        k => return Err(RecordError::Kind(k)),
    };
    let ip = |a| -> IpAddr { addr_from_key(a) };
    let segment = Segment {
        dir,
        time: clock.wall(h.ts_ns),
        src: SocketAddr::new(ip(h.src), h.sport),
        dst: SocketAddr::new(ip(h.dst), h.dport),
        seq: h.seq,
        ack: h.ack,
        payload_len: h.payload_len,
        data: bytes[HDR..HDR + h.captured_len as usize].to_vec(),
        transport: match kind {
            RecordKind::TlsRead | RecordKind::TlsWrite => Transport::Tls,
            _ => Transport::Tcp,
        },
    };
    Ok(Record {
        kind,
        flags: h.flags,
        segment,
        tgid: h.tgid,
        listen_fd: h.listen_fd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(kind: u32, captured: u32, data: &[u8]) -> Vec<u8> {
        let h = RecordHeader {
            kind,
            captured_len: captured,
            payload_len: 100,
            seq: 7,
            ts_ns: 1_000,
            src: jwtmon_common::v4_mapped([10, 0, 0, 2]),
            dst: jwtmon_common::v4_mapped([10, 0, 0, 1]),
            sport: 40000,
            dport: 8080,
            ifindex: 3,
            ack: 9,
            flags: 0,
            tgid: 0,
            listen_fd: 0,
        };
        let mut v = vec![0u8; size_of::<RecordHeader>()];
        // SAFETY: v has room for the header.
        unsafe { std::ptr::write_unaligned(v.as_mut_ptr().cast(), h) };
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn decodes_and_rejects_bad_records() {
        let clock = Clock::now();
        let r = decode(&raw(record::REQUEST, 3, b"GET"), &clock).unwrap();
        assert_eq!(r.kind, RecordKind::Client);
        let s = r.segment;
        assert_eq!(s.src.to_string(), "10.0.0.2:40000");
        assert_eq!(s.dst.port(), 8080);
        assert_eq!((s.seq, s.ack, s.data.as_slice()), (7, 9, &b"GET"[..]));
        assert!(!s.complete());
        assert_eq!(decode(&[0u8; 10], &clock), Err(RecordError::Short(10)));
        assert!(matches!(
            decode(&raw(record::REQUEST, 9, b"GET"), &clock),
            Err(RecordError::Length { .. })
        ));
        assert_eq!(decode(&raw(77, 0, b""), &clock), Err(RecordError::Kind(77)));
    }
}
