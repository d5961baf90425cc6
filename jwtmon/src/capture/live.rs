//! Live capture's assembly stage: ring records in, HTTP messages out.
//! Client segments go through the same [`Reassembly`] as capture files
//! (SYN places the stream, FIN/RST close it, a record the kernel could not
//! copy whole leaves a hole); response starts pass as they are. TCP in IP
//! fragments is an evasion attempt (real stacks do not fragment TCP): it is
//! reported as `evasion_ip_fragment`, once a minute per source, never
//! enforced (a fragment proves no sender).

use std::{
    net::IpAddr,
    num::NonZeroUsize,
    path::Path,
    time::{Duration, SystemTime},
};

use crate::bounded::BoundedLru;
use jwtmon_common::tcp_flag;
use serde_json::json;

use super::{
    Record, RecordKind, Segment,
    reassembly::{Limits, Piece, Reassembly, ReassemblyStats},
    tls::TlsAssembler,
};
use crate::finding::{Finding, Kind};

/// A hole is waited for this long before the stream goes on without it.
pub const HOLD: Duration = Duration::from_secs(1);
/// A partial message silent this long is handed on cut short.
pub const IDLE: Duration = Duration::from_secs(10);

/// One fragment report per source in this long.
const FRAGMENT_REPORT_EVERY: Duration = Duration::from_mins(1);
/// Sources remembered for that.
const FRAGMENT_SOURCES: usize = 4096;

/// One record of a client stream into `streams`: SYN places the stream,
/// data goes in sequence order, a record that stands for more than it
/// carries leaves a hole, FIN/RST close it.
pub fn feed_client(streams: &mut Reassembly, s: &Segment, flags: u32, out: &mut Vec<Segment>) {
    let mut seq = s.seq;
    if flags & tcp_flag::SYN != 0 {
        streams.open(s.src, s.dst, seq, out);
        // Data on a SYN (TCP Fast Open) starts after the ISN.
        seq = seq.wrapping_add(1);
    }
    if !s.data.is_empty() {
        let piece = Piece {
            seq,
            ack: s.ack,
            time: s.time,
            data: &s.data,
        };
        streams.data(s.src, s.dst, piece, out);
    }
    if s.payload_len as usize > s.data.len() {
        streams.lost(s.src, s.dst, seq.wrapping_add(s.payload_len), out);
    }
    if flags & (tcp_flag::FIN | tcp_flag::RST) != 0 {
        streams.close(s.src, s.dst, out);
    }
}

/// Ring records to messages.
pub struct Assembler {
    streams: Reassembly,
    limits: Limits,
    /// TLS plaintext, once some arrives (its own streams, same limits).
    pub tls: Option<TlsAssembler>,
    reported: BoundedLru<IpAddr, SystemTime>,
    /// Fragment records seen.
    pub fragments: u64,
}

impl Assembler {
    /// Reassembly within `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            streams: Reassembly::new(limits),
            limits,
            tls: None,
            reported: BoundedLru::new(
                NonZeroUsize::new(FRAGMENT_SOURCES).unwrap_or(NonZeroUsize::MIN),
            ),
            fragments: 0,
        }
    }

    /// Takes one record: messages (requests reassembled, responses as
    /// sampled) go to `out`, fragment reports to `findings`.
    pub fn push(&mut self, record: Record, out: &mut Vec<Segment>, findings: &mut Vec<Finding>) {
        if matches!(record.kind, RecordKind::TlsRead | RecordKind::TlsWrite) {
            let limits = self.limits;
            self.tls
                .get_or_insert_with(|| TlsAssembler::new(limits, Path::new("/proc")))
                .push(record, out);
            return;
        }
        let Record {
            kind,
            flags,
            segment: s,
            ..
        } = record;
        match kind {
            RecordKind::TlsRead | RecordKind::TlsWrite => {}
            RecordKind::Response => out.push(s),
            RecordKind::Fragment => self.fragment(&s, findings),
            RecordKind::Client => feed_client(&mut self.streams, &s, flags, out),
        }
    }

    fn fragment(&mut self, s: &Segment, findings: &mut Vec<Finding>) {
        self.fragments += 1;
        let ip = s.src.ip();
        let recent = self
            .reported
            .get(&ip)
            .is_some_and(|t| s.time.duration_since(*t).unwrap_or_default() < FRAGMENT_REPORT_EVERY);
        if recent {
            return;
        }
        self.reported.put(ip, s.time);
        let mut f = Finding::new(Kind::EvasionIpFragment, s.time, ip, String::new());
        f.detail = json!({
            "dst_port": s.dst.port(),
            "why": "TCP in IP fragments to a monitored port: real TCP stacks do not fragment; \
                    the pieces are not analysed",
        });
        findings.push(f);
    }

    /// Upkeep at `now` (once a second): holes and idle partial messages.
    pub fn expire(&mut self, now: SystemTime, out: &mut Vec<Segment>) {
        self.streams.expire(now, HOLD, IDLE, out);
        if let Some(t) = &mut self.tls {
            t.expire(now, out);
        }
    }

    /// End of capture: what is buffered goes out.
    pub fn finish(&mut self, out: &mut Vec<Segment>) {
        self.streams.finish(out);
        if let Some(t) = &mut self.tls {
            t.finish(out);
        }
    }

    /// Bytes held by reassembly (packet and TLS streams).
    pub fn buffered_bytes(&self) -> usize {
        self.streams.buffered_bytes() + self.tls.as_ref().map_or(0, TlsAssembler::buffered_bytes)
    }

    /// What reassembly counted.
    pub fn stats(&self) -> &ReassemblyStats {
        &self.streams.stats
    }
}
