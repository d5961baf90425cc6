//! TCP reassembly: each direction of a connection put back in sequence
//! order and cut into HTTP messages, for capture files and live capture
//! alike. The parser then sees what the server sees: a first byte sent
//! alone, empty lines before the request line, header blocks spanning
//! segments, pipelined requests.
//!
//! Bounded by bytes: a message hands at most the inspection limit to the
//! parser (the rest is counted and the message marked truncated, never
//! buffered), out-of-order data is held up to that limit per direction,
//! and one budget caps what all streams hold together (the least recently
//! active stream gives way). A hole that never fills is a counted gap: the
//! stream picks up again at the next message start.

use std::{
    net::SocketAddr,
    num::NonZeroUsize,
    time::{Duration, SystemTime},
};

use crate::bounded::BoundedLru;

use super::{Direction, Segment};

/// What bounds the reassembly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of a request (head and body) handed to the parser.
    pub inspect_bytes: usize,
    /// Bytes of a response (status line and headers) handed on.
    pub response_bytes: usize,
    /// Bytes held by all streams together.
    pub budget_bytes: usize,
    /// Directions followed at once.
    pub max_streams: usize,
    /// Out-of-order segments held per direction.
    pub max_held: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            inspect_bytes: 64 << 10,
            response_bytes: 512,
            budget_bytes: 64 << 20,
            max_streams: 100_000,
            max_held: 64,
        }
    }
}

/// What reassembly counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReassemblyStats {
    /// Retransmitted or overlapping bytes dropped.
    pub retransmitted_bytes: u64,
    /// Segments that arrived ahead of a hole and were held.
    pub out_of_order: u64,
    /// Holes that never filled (lost or unsampled data).
    pub gaps: u64,
    /// Bytes passed over after a gap until the next message start.
    pub skipped_bytes: u64,
    /// Messages longer than the inspection limit (marked truncated).
    pub truncated_messages: u64,
    /// Bytes beyond the inspection limit, never buffered.
    pub uninspected_bytes: u64,
    /// Streams given up to stay within the byte budget or stream count.
    pub evicted_streams: u64,
}

/// A piece of one direction's byte stream.
#[derive(Clone, Copy, Debug)]
pub struct Piece<'a> {
    /// TCP sequence number of the first byte.
    pub seq: u32,
    /// TCP acknowledgment number.
    pub ack: u32,
    /// When it was seen.
    pub time: SystemTime,
    /// The bytes.
    pub data: &'a [u8],
}

/// Sender and receiver.
type Key = (SocketAddr, SocketAddr);

#[derive(Clone, Copy)]
struct Mark {
    at: usize,
    time: SystemTime,
    ack: u32,
}

struct Held {
    seq: u32,
    ack: u32,
    time: SystemTime,
    data: Vec<u8>,
}

/// Where a stream goes on past a hole.
#[derive(Clone, Copy)]
enum Resume {
    /// At the first piece held.
    Held,
    /// At this sequence number (or a held piece before it).
    At(u32),
    /// Where it is: the partial message idled out, nothing was lost.
    Here,
}

/// One direction of a connection.
#[derive(Default)]
struct Stream {
    /// Sequence number of the next byte expected.
    next: Option<u32>,
    held: Vec<Held>,
    held_bytes: usize,
    buf: Vec<u8>,
    /// Where each appended piece starts in `buf`, with its time and ack.
    marks: Vec<Mark>,
    role: Option<Direction>,
    /// Body bytes beyond the inspection limit still to come.
    discard: u64,
    /// Lost its place (a gap, a malformed message): waits for a piece
    /// that starts a message.
    lost: bool,
    /// A hole will not fill: cut what is buffered, then go on at the first
    /// held piece (or at the sequence number given).
    hole: Option<Resume>,
    last: Option<SystemTime>,
}

/// True when `data` starts an HTTP/1.x message of `role` (after any empty
/// lines): a method token and a space, or a status line.
fn starts_message(data: &[u8], role: Option<Direction>) -> bool {
    let data = {
        let mut d = data;
        while let Some(rest) = d.strip_prefix(b"\r\n").or_else(|| d.strip_prefix(b"\n")) {
            d = rest;
        }
        d
    };
    let response = data.starts_with(b"HTTP/1.");
    let request = data
        .iter()
        .position(|b| *b == b' ')
        .is_some_and(|n| (3..=16).contains(&n) && data[..n].iter().all(u8::is_ascii_uppercase));
    match role {
        Some(Direction::Response) => response,
        Some(Direction::Request) => request,
        None => request || response,
    }
}

impl Stream {
    fn bytes(&self) -> usize {
        self.buf.len() + self.held_bytes
    }

    /// Sequence number of `buf[0]`.
    fn base(&self) -> u32 {
        self.next
            .unwrap_or(0)
            .wrapping_sub(u32::try_from(self.buf.len()).unwrap_or(u32::MAX))
    }

    /// Takes in-order bytes.
    fn accept(&mut self, data: &[u8], time: SystemTime, ack: u32, stats: &mut ReassemblyStats) {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.next = Some(self.next.unwrap_or(0).wrapping_add(len));
        let mut data = data;
        if self.discard > 0 {
            let n = usize::try_from(self.discard).map_or(data.len(), |d| d.min(data.len()));
            self.discard -= n as u64;
            stats.uninspected_bytes += n as u64;
            data = &data[n..];
        }
        if data.is_empty() {
            return;
        }
        if self.lost && self.buf.is_empty() {
            if !starts_message(data, self.role) {
                stats.skipped_bytes += data.len() as u64;
                return;
            }
            self.lost = false;
        }
        self.marks.push(Mark {
            at: self.buf.len(),
            time,
            ack,
        });
        self.buf.extend_from_slice(data);
    }

    /// Adds a piece in sequence order.
    fn push(
        &mut self,
        p: Piece<'_>,
        max_held: usize,
        max_bytes: usize,
        stats: &mut ReassemblyStats,
    ) {
        self.last = Some(p.time);
        let next = *self.next.get_or_insert(p.seq);
        let rel = p.seq.wrapping_sub(next).cast_signed();
        if rel > 0 {
            stats.out_of_order += 1;
            self.held_bytes += p.data.len();
            self.held.push(Held {
                seq: p.seq,
                ack: p.ack,
                time: p.time,
                data: p.data.to_vec(),
            });
            if self.held.len() > max_held || self.held_bytes > max_bytes {
                self.hole.get_or_insert(Resume::Held);
            }
            return;
        }
        let skip = rel.unsigned_abs() as usize;
        if skip >= p.data.len() {
            stats.retransmitted_bytes += p.data.len() as u64;
            return;
        }
        stats.retransmitted_bytes += skip as u64;
        self.accept(&p.data[skip..], p.time, p.ack, stats);
        self.take_held(stats);
    }

    /// Moves held pieces that now fit into the stream.
    fn take_held(&mut self, stats: &mut ReassemblyStats) {
        loop {
            let next = self.next.unwrap_or(0);
            let Some(i) = self
                .held
                .iter()
                .position(|h| h.seq.wrapping_sub(next).cast_signed() <= 0)
            else {
                return;
            };
            let h = self.held.swap_remove(i);
            self.held_bytes -= h.data.len();
            let skip = next.wrapping_sub(h.seq) as usize;
            if skip < h.data.len() {
                stats.retransmitted_bytes += skip as u64;
                self.accept(&h.data[skip..], h.time, h.ack, stats);
            } else {
                stats.retransmitted_bytes += h.data.len() as u64;
            }
        }
    }

    /// Past a hole that will not fill (what was buffered has been cut):
    /// the stream continues at the first held piece, or at `to`.
    fn skip_hole(&mut self, resume: Resume, stats: &mut ReassemblyStats) {
        let to = match resume {
            Resume::Held => None,
            Resume::At(t) => Some(t),
            Resume::Here => self.next,
        };
        if !matches!(resume, Resume::Here) {
            stats.gaps += 1;
        }
        let next = self.next.unwrap_or(0);
        let first_held = self
            .held
            .iter()
            .map(|h| h.seq)
            .min_by_key(|s| s.wrapping_sub(next));
        let resume = match (to, first_held) {
            (Some(t), Some(h)) => {
                if h.wrapping_sub(next) < t.wrapping_sub(next) {
                    h
                } else {
                    t
                }
            }
            (Some(t), None) => t,
            (None, Some(h)) => h,
            (None, None) => self.next.unwrap_or(0),
        };
        self.buf.clear();
        self.marks.clear();
        self.discard = 0;
        self.lost = true;
        self.next = Some(resume);
        self.take_held(stats);
    }

    fn mark_at(&self, offset: usize) -> Option<Mark> {
        self.marks.iter().rev().find(|m| m.at <= offset).copied()
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        if n == self.buf.len() {
            // All handed on: give the memory back, so an idle direction
            // (of the many a flood leaves) holds no buffer.
            self.buf = Vec::new();
            self.marks = Vec::new();
            return;
        }
        let keep = self.mark_at(n);
        self.buf.drain(..n);
        self.marks.retain(|m| m.at > n);
        for m in &mut self.marks {
            m.at -= n;
        }
        if !self.buf.is_empty()
            && self.marks.first().is_none_or(|m| m.at > 0)
            && let Some(mut k) = keep
        {
            k.at = 0;
            self.marks.insert(0, k);
        }
    }
}

/// Length of a complete chunked body at the start of `b`, if complete.
fn chunked_len(b: &[u8]) -> Option<usize> {
    crate::parse::http::walk_chunks(b, |_| {})
}

enum Framing {
    /// The whole message is this long.
    Length(usize),
    /// Chunked body: its end is known only once it is all here.
    Chunked,
    /// A response read until close, or a request with no body.
    None,
}

/// Body framing of a message head.
fn framing(headers: &[httparse::Header<'_>], no_body: bool) -> Option<Framing> {
    if no_body {
        return Some(Framing::Length(0));
    }
    let value = |name: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    if value("transfer-encoding").is_some_and(|v| v.ends_with("chunked")) {
        return Some(Framing::Chunked);
    }
    match value("content-length") {
        Some(v) => v.parse().ok().map(Framing::Length),
        None => Some(Framing::None),
    }
}

/// What the head at the front of a stream says.
enum Head {
    /// Complete: head length and framing (`None` when the framing
    /// headers are unreadable).
    Complete(usize, Option<Framing>),
    /// Not all here yet.
    Partial,
    /// Not HTTP.
    Malformed,
}

fn head(buf: &[u8], role: Direction) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; crate::parse::http::MAX_HEADERS];
    let (status, no_body) = match role {
        Direction::Request => (httparse::Request::new(&mut headers).parse(buf), false),
        Direction::Response => {
            let mut r = httparse::Response::new(&mut headers);
            let s = r.parse(buf);
            (s, r.code.is_some_and(|c| c < 200 || c == 204 || c == 304))
        }
    };
    match status {
        Ok(httparse::Status::Complete(n)) => Head::Complete(n, framing(&headers, no_body)),
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(_) => Head::Malformed,
    }
}

/// How a stream's buffered bytes end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// More may come.
    Open,
    /// The connection closed: nothing follows.
    Closed,
    /// A hole follows: a message that is not complete is cut short.
    Hole,
}

/// Cuts the messages at the front of `s` into `out`.
fn cut(
    s: &mut Stream,
    key: Key,
    end: End,
    limits: &Limits,
    stats: &mut ReassemblyStats,
    out: &mut Vec<Segment>,
) {
    let closing = end != End::Open;
    while !s.buf.is_empty() && !s.lost {
        // Empty lines between messages belong to no message.
        let blank = s
            .buf
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        if blank > 0 && s.role.is_some() {
            s.consume(blank);
            continue;
        }
        let role = *s.role.get_or_insert_with(|| {
            if s.buf.starts_with(b"HTTP/1.") {
                Direction::Response
            } else {
                Direction::Request
            }
        });
        let cap = match role {
            Direction::Request => limits.inspect_bytes,
            Direction::Response => limits.response_bytes,
        }
        .max(1);
        let have = s.buf.len();
        // (bytes to hand on, the message's length, bytes to drop from the
        // buffer, stream lost afterwards)
        let (length, lost) = match head(&s.buf, role) {
            Head::Complete(h, Some(Framing::Length(n))) => (h.checked_add(n), false),
            Head::Complete(h, Some(Framing::Chunked)) => match chunked_len(&s.buf[h..]) {
                Some(n) => (Some(h + n), false),
                None if have >= cap || closing => (None, true),
                None => return,
            },
            Head::Complete(h, Some(Framing::None)) if role == Direction::Request => {
                (Some(h), false)
            }
            // Framing headers a server rejects: hand it over and resync.
            Head::Complete(_, None) => (None, true),
            Head::Complete(..) if closing || have >= cap => (None, true),
            Head::Complete(..) => return,
            Head::Partial if closing || have >= cap => (None, true),
            Head::Partial => return,
            Head::Malformed => (None, true),
        };
        let (message_len, take) = match length {
            Some(n) if n <= have => (n, n),
            Some(n) if have >= cap || closing => (n, have),
            Some(_) => return,
            // Unknown end: everything here, and more may follow.
            None => (have + usize::from(end != End::Closed), have),
        };
        let shown = message_len.min(cap).min(have).max(1);
        if message_len > cap {
            stats.truncated_messages += 1;
            stats.uninspected_bytes += (take - shown) as u64;
        }
        let mark = s.mark_at(0);
        out.push(Segment {
            dir: role,
            time: mark.map_or(SystemTime::UNIX_EPOCH, |m| m.time),
            src: key.0,
            dst: key.1,
            seq: s.base(),
            ack: mark.map_or(0, |m| m.ack),
            payload_len: u32::try_from(message_len).unwrap_or(u32::MAX),
            data: s.buf[..shown].to_vec(),
            transport: super::Transport::Tcp,
        });
        s.consume(take);
        s.discard = (message_len - take) as u64;
        if lost {
            s.buf.clear();
            s.marks.clear();
            s.lost = true;
        }
    }
}

/// Every stream being reassembled.
pub struct Reassembly {
    streams: BoundedLru<Key, Stream>,
    limits: Limits,
    bytes: usize,
    /// What was counted.
    pub stats: ReassemblyStats,
}

impl Default for Reassembly {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Reassembly {
    /// Empty, with `limits`.
    pub fn new(limits: Limits) -> Self {
        let cap = NonZeroUsize::new(limits.max_streams.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            streams: BoundedLru::new(cap),
            limits,
            bytes: 0,
            stats: ReassemblyStats::default(),
        }
    }

    /// Bytes held by all streams.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    /// Directions followed.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Runs `f` on the stream of `key` (created if new), keeping the byte
    /// count and the budget.
    fn with(
        &mut self,
        key: Key,
        out: &mut Vec<Segment>,
        f: impl FnOnce(&mut Stream, &Limits, &mut ReassemblyStats),
    ) {
        // A stream first seen mid-connection (no SYN) starts at the first
        // piece that starts a message.
        let fresh = Stream {
            lost: true,
            ..Stream::default()
        };
        if !self.streams.contains(&key)
            && let Some((old_key, mut old)) = self.streams.push(key, fresh)
            && old_key != key
        {
            self.stats.evicted_streams += 1;
            self.bytes = self.bytes.saturating_sub(old.bytes());
            cut(
                &mut old,
                old_key,
                End::Hole,
                &self.limits,
                &mut self.stats,
                out,
            );
        }
        let Some(s) = self.streams.get_mut(&key) else {
            return;
        };
        let before = s.bytes();
        f(s, &self.limits, &mut self.stats);
        while let Some(to) = s.hole.take() {
            cut(s, key, End::Hole, &self.limits, &mut self.stats, out);
            s.skip_hole(to, &mut self.stats);
        }
        cut(s, key, End::Open, &self.limits, &mut self.stats, out);
        self.bytes = (self.bytes + s.bytes()).saturating_sub(before);
        while self.bytes > self.limits.budget_bytes {
            let Some((k, mut s)) = self.streams.pop_lru() else {
                self.bytes = 0;
                break;
            };
            self.stats.evicted_streams += 1;
            self.bytes = self.bytes.saturating_sub(s.bytes());
            cut(&mut s, k, End::Hole, &self.limits, &mut self.stats, out);
        }
    }

    /// A new connection from `src` to `dst` whose first byte will be
    /// `isn + 1`: whatever an older connection of the same addresses left
    /// is cut as closed.
    pub fn open(&mut self, src: SocketAddr, dst: SocketAddr, isn: u32, out: &mut Vec<Segment>) {
        self.close(src, dst, out);
        self.with((src, dst), out, |s, _, _| {
            s.next = Some(isn.wrapping_add(1));
            s.lost = false;
        });
    }

    /// Bytes of the direction `src` → `dst`.
    pub fn data(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        piece: Piece<'_>,
        out: &mut Vec<Segment>,
    ) {
        if piece.data.is_empty() {
            return;
        }
        self.with((src, dst), out, |s, l, stats| {
            s.push(piece, l.max_held, l.inspect_bytes, stats);
        });
    }

    /// The bytes from `from` up to `to` will never come (the capture cut
    /// them): the stream goes on at `to`.
    pub fn lost(&mut self, src: SocketAddr, dst: SocketAddr, to: u32, out: &mut Vec<Segment>) {
        let key = (src, dst);
        let behind = self
            .streams
            .peek(&key)
            .and_then(|s| s.next)
            .is_some_and(|next| to.wrapping_sub(next).cast_signed() > 0);
        if behind {
            self.with(key, out, |s, _, _| s.hole = Some(Resume::At(to)));
        }
    }

    /// The direction ended (FIN or RST): what is buffered is cut as closed.
    pub fn close(&mut self, src: SocketAddr, dst: SocketAddr, out: &mut Vec<Segment>) {
        self.end((src, dst), End::Closed, out);
    }

    fn end(&mut self, key: Key, end: End, out: &mut Vec<Segment>) {
        if let Some(mut s) = self.streams.pop(&key) {
            self.bytes = self.bytes.saturating_sub(s.bytes());
            cut(&mut s, key, end, &self.limits, &mut self.stats, out);
        }
    }

    /// Live upkeep at `now`: a hole older than `hold` is given up as a
    /// gap, and a partial message silent for `idle` is handed on cut short.
    /// The stream itself stays (its place in the sequence space is what
    /// lets a later first byte sent alone be read); FIN, RST and the LRU
    /// end streams.
    pub fn expire(
        &mut self,
        now: SystemTime,
        hold: Duration,
        idle: Duration,
        out: &mut Vec<Segment>,
    ) {
        let age = |s: &Stream| {
            s.last
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default()
        };
        let stale: Vec<(Key, Resume)> = self
            .streams
            .iter()
            .filter_map(|(k, s)| {
                if !s.held.is_empty() && age(s) >= hold {
                    Some((*k, Resume::Held))
                } else if !s.buf.is_empty() && age(s) >= idle {
                    Some((*k, Resume::Here))
                } else {
                    None
                }
            })
            .collect();
        for (key, resume) in stale {
            self.with(key, out, |s, _, _| s.hole = Some(resume));
        }
    }

    /// End of input: whatever is buffered is cut as closed, in key order.
    pub fn finish(&mut self, out: &mut Vec<Segment>) {
        // Only streams holding bytes have anything to hand on; the others
        // (most, after a flood) are simply forgotten.
        let mut keys: Vec<Key> = self
            .streams
            .iter()
            .filter(|(_, s)| s.bytes() > 0)
            .map(|(k, _)| *k)
            .collect();
        keys.sort();
        for (src, dst) in keys {
            self.close(src, dst, out);
        }
        self.streams.clear();
    }
}

#[cfg(test)]
mod tests;
