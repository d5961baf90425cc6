//! TLS records to messages: the client's plaintext goes through its own
//! [`Reassembly`] (offsets count the bytes `SSL_read` returned, so a call
//! not copied whole is a hole like a lost segment), responses pass as
//! they are, and every message is marked [`Transport::Tls`]. The server
//! address is the listening socket's. HTTP/2 connections (their preface)
//! are counted and passed over: only HTTP/1.x is analysed.

use std::{net::SocketAddr, num::NonZeroUsize, path::Path, time::SystemTime};

use crate::bounded::BoundedLru;
use jwtmon_common::tcp_flag;

use super::server::Servers;
use crate::capture::{
    Record, RecordKind, Segment, Transport,
    live::feed_client,
    reassembly::{Limits, Reassembly, ReassemblyStats},
};

/// The client preface of HTTP/2 (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";
/// HTTP/2 connections remembered (to skip the rest of their bytes).
const H2_REMEMBERED: usize = 4096;

/// What the TLS assembly counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TlsAssemblyStats {
    /// Connections whose first plaintext was an HTTP/2 preface.
    pub http2_connections: u64,
    /// Bytes of those connections passed over.
    pub http2_bytes: u64,
    /// Messages handed on (requests and responses).
    pub messages: u64,
}

/// TLS records to messages.
pub struct TlsAssembler {
    streams: Reassembly,
    servers: Servers,
    http2: BoundedLru<(SocketAddr, SocketAddr), ()>,
    /// What was counted here.
    pub stats: TlsAssemblyStats,
}

impl TlsAssembler {
    /// Reassembly within `limits`; server addresses looked up below
    /// `proc_root`.
    pub fn new(limits: Limits, proc_root: &Path) -> Self {
        Self {
            streams: Reassembly::new(limits),
            servers: Servers::new(proc_root),
            http2: BoundedLru::new(NonZeroUsize::new(H2_REMEMBERED).unwrap_or(NonZeroUsize::MIN)),
            stats: TlsAssemblyStats::default(),
        }
    }

    /// Takes one TLS record; messages go to `out`.
    pub fn push(&mut self, record: Record, out: &mut Vec<Segment>) {
        let Record {
            kind,
            flags,
            segment: mut s,
            tgid,
            listen_fd,
        } = record;
        // The kernel names the peer in `src` for both directions.
        let server = self.servers.address(tgid, listen_fd);
        let start = out.len();
        if kind == RecordKind::TlsWrite {
            s.dst = s.src;
            s.src = server;
            if !self.http2.contains(&(s.dst, s.src)) {
                out.push(s);
            }
        } else {
            s.dst = server;
            let key = (s.src, s.dst);
            if flags & tcp_flag::SYN != 0 {
                self.http2.pop(&key);
            }
            if self.http2.contains(&key) || self.is_preface(&s) {
                self.stats.http2_bytes += u64::from(s.payload_len);
                if flags & (tcp_flag::FIN | tcp_flag::RST) != 0 {
                    self.http2.pop(&key);
                    self.streams.close(s.src, s.dst, out);
                }
            } else {
                feed_client(&mut self.streams, &s, flags, out);
            }
        }
        self.mark(out, start);
    }

    /// True (and remembered) when `s` is the first plaintext of its
    /// connection and an HTTP/2 preface.
    fn is_preface(&mut self, s: &Segment) -> bool {
        // Offsets start at 1: the first byte read is seq 1.
        if s.seq != 1 || !s.data.starts_with(H2_PREFACE) {
            return false;
        }
        self.stats.http2_connections += 1;
        self.http2.put((s.src, s.dst), ());
        true
    }

    fn mark(&mut self, out: &mut [Segment], start: usize) {
        for s in &mut out[start..] {
            s.transport = Transport::Tls;
            self.stats.messages += 1;
        }
    }

    /// Upkeep at `now`: holes and idle partial messages.
    pub fn expire(&mut self, now: SystemTime, out: &mut Vec<Segment>) {
        let start = out.len();
        self.streams.expire(
            now,
            crate::capture::live::HOLD,
            crate::capture::live::IDLE,
            out,
        );
        self.mark(out, start);
    }

    /// End of capture: what is buffered goes out.
    pub fn finish(&mut self, out: &mut Vec<Segment>) {
        let start = out.len();
        self.streams.finish(out);
        self.mark(out, start);
    }

    /// Bytes held by reassembly.
    pub fn buffered_bytes(&self) -> usize {
        self.streams.buffered_bytes()
    }

    /// What reassembly counted.
    pub fn reassembly(&self) -> &ReassemblyStats {
        &self.streams.stats
    }

    /// Listening sockets whose address could not be found.
    pub fn unknown_servers(&self) -> u64 {
        self.servers.unknown
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::capture::Direction;

    fn rec(kind: RecordKind, flags: u32, seq: u32, ack: u32, data: &[u8]) -> Record {
        Record {
            kind,
            flags,
            segment: Segment {
                dir: if kind == RecordKind::TlsWrite {
                    Direction::Response
                } else {
                    Direction::Request
                },
                time: SystemTime::UNIX_EPOCH + Duration::from_secs(100),
                src: "10.1.0.2:40000".parse().unwrap(),
                dst: super::super::server::UNKNOWN,
                seq,
                ack,
                payload_len: data.len() as u32,
                data: data.to_vec(),
                transport: Transport::Tls,
            },
            tgid: 0,
            listen_fd: 0,
        }
    }

    #[test]
    fn plaintext_calls_become_tls_messages_and_http2_is_counted_not_parsed() {
        let mut a = TlsAssembler::new(Limits::default(), Path::new("/nonexistent"));
        let mut out = Vec::new();
        a.push(rec(RecordKind::TlsRead, tcp_flag::SYN, 0, 1, b""), &mut out);
        // A request read in two calls.
        a.push(
            rec(RecordKind::TlsRead, 0, 1, 1, b"GET /a HTTP/1.1\r\nHo"),
            &mut out,
        );
        a.push(
            rec(RecordKind::TlsRead, 0, 20, 1, b"st: x\r\n\r\n"),
            &mut out,
        );
        a.push(
            rec(RecordKind::TlsWrite, 0, 1, 29, b"HTTP/1.1 200 OK\r\n\r\n"),
            &mut out,
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(
            out[0]
                .data
                .starts_with(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        );
        assert!(out.iter().all(|s| s.transport == Transport::Tls));
        assert_eq!(out[1].dir, Direction::Response);

        // Another connection speaks HTTP/2: nothing of it is handed on.
        let h2 = |kind, flags, seq, data: &[u8]| {
            let mut r = rec(kind, flags, seq, 1, data);
            r.segment.src = "10.1.0.3:40001".parse().unwrap();
            r
        };
        out.clear();
        a.push(h2(RecordKind::TlsRead, tcp_flag::SYN, 0, b""), &mut out);
        a.push(
            h2(
                RecordKind::TlsRead,
                0,
                1,
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            ),
            &mut out,
        );
        a.push(
            h2(RecordKind::TlsRead, 0, 25, b"GET / HTTP/1.1\r\n\r\n"),
            &mut out,
        );
        a.push(
            h2(RecordKind::TlsWrite, 0, 1, b"HTTP/1.1 200 OK\r\n\r\n"),
            &mut out,
        );
        a.finish(&mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(a.stats.http2_connections, 1);
        assert!(a.stats.http2_bytes >= 24);
    }
}
