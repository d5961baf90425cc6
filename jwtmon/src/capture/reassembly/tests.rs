use std::time::{Duration, SystemTime};

use super::*;

const CLIENT: &str = "10.0.0.2:40000";
const SERVER: &str = "10.0.0.1:8080";

fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

struct Flow {
    r: Reassembly,
    out: Vec<Segment>,
}

impl Flow {
    fn new(limits: Limits) -> Self {
        let mut r = Reassembly::new(limits);
        let mut out = Vec::new();
        r.open(
            CLIENT.parse().unwrap(),
            SERVER.parse().unwrap(),
            999,
            &mut out,
        );
        Self { r, out }
    }

    /// Bytes at relative offset `off` (the first byte is offset 0).
    fn send(&mut self, off: u32, data: &[u8]) -> &mut Self {
        let piece = Piece {
            seq: 1000 + off,
            ack: 7,
            time: at(u64::from(off)),
            data,
        };
        self.r.data(
            CLIENT.parse().unwrap(),
            SERVER.parse().unwrap(),
            piece,
            &mut self.out,
        );
        self
    }

    /// Sends `data` as consecutive pieces of the given lengths.
    fn split(&mut self, data: &[u8], sizes: &[usize]) -> &mut Self {
        let mut off = 0;
        for n in sizes.iter().copied().chain(std::iter::once(usize::MAX)) {
            let end = off + n.min(data.len() - off);
            if end > off {
                self.send(off as u32, &data[off..end]);
            }
            off = end;
        }
        self
    }

    fn messages(&self) -> Vec<String> {
        self.out
            .iter()
            .map(|s| String::from_utf8_lossy(&s.data).into_owned())
            .collect()
    }
}

#[test]
fn chunked_bodies() {
    assert_eq!(chunked_len(b"3\r\nabc\r\n0\r\n\r\nNEXT"), Some(13));
    assert_eq!(
        chunked_len(b"3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"),
        Some(27)
    );
    assert_eq!(chunked_len(b"3\r\nab"), None);
    assert_eq!(chunked_len(b"zz\r\n"), None);
}

#[test]
fn a_first_byte_sent_alone_is_part_of_the_request() {
    let mut f = Flow::new(Limits::default());
    f.split(b"GET /a?q=1 HTTP/1.1\r\nHost: x\r\n\r\n", &[1, 3, 2]);
    assert_eq!(f.messages(), ["GET /a?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"]);
    assert_eq!(f.out[0].seq, 1000, "the message starts at its first byte");
    assert!(f.out[0].complete());
}

#[test]
fn out_of_order_and_retransmitted_pieces_are_put_back_in_order() {
    let mut f = Flow::new(Limits::default());
    let req = b"GET /x HTTP/1.1\r\n\r\n";
    f.send(8, &req[8..])
        .send(0, &req[..4])
        .send(0, &req[..4])
        .send(4, &req[4..8]);
    assert_eq!(f.messages(), ["GET /x HTTP/1.1\r\n\r\n"]);
    assert_eq!(
        (f.r.stats.out_of_order, f.r.stats.retransmitted_bytes),
        (1, 4)
    );
}

#[test]
fn empty_lines_pipelining_and_bodies_are_cut_where_the_server_cuts() {
    let mut f = Flow::new(Limits::default());
    let stream = b"\r\n\r\nPOST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n\
        POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /d HTTP/1.1\r\n\r\n";
    f.split(stream, &[3, 50, 7, 20]);
    let m = f.messages();
    assert_eq!(m.len(), 4, "{m:?}");
    assert!(
        m[0].starts_with("POST /a") && m[0].ends_with("hello"),
        "{m:?}"
    );
    assert_eq!(m[1], "GET /b HTTP/1.1\r\n\r\n");
    assert!(
        m[2].starts_with("POST /c") && m[2].ends_with("0\r\n\r\n"),
        "{m:?}"
    );
    assert_eq!(m[3], "GET /d HTTP/1.1\r\n\r\n");
    // Each message's sequence number is its own first byte: the observer
    // pairs responses with it.
    let first_b = stream.windows(6).position(|w| w == b"GET /b").unwrap() as u32;
    assert_eq!(f.out[1].seq, 1000 + first_b);
}

#[test]
fn a_long_header_block_spanning_many_segments_is_one_request() {
    let mut f = Flow::new(Limits::default());
    let mut req = b"GET /s?q=%27%20OR%201%3D1-- HTTP/1.1\r\n".to_vec();
    for i in 0..100 {
        req.extend_from_slice(format!("X-Pad-{i}: {}\r\n", "a".repeat(60)).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let sizes = vec![1448; req.len() / 1448 + 1];
    f.split(&req, &sizes);
    assert_eq!(f.out.len(), 1);
    assert_eq!(f.out[0].data, req, "the whole head reaches the parser");
}

#[test]
fn a_body_beyond_the_inspection_limit_is_counted_not_buffered() {
    let limits = Limits {
        inspect_bytes: 1024,
        ..Limits::default()
    };
    let mut f = Flow::new(limits);
    let head = b"POST /up HTTP/1.1\r\nContent-Length: 10000\r\n\r\n";
    let mut stream = head.to_vec();
    stream.extend(std::iter::repeat_n(b'x', 10_000));
    stream.extend_from_slice(b"GET /after HTTP/1.1\r\n\r\n");
    f.split(&stream, &[1000; 12]);
    let m = f.messages();
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!(f.out[0].data.len(), 1024);
    assert!(!f.out[0].complete(), "the parser marks it truncated");
    assert_eq!(m[1], "GET /after HTTP/1.1\r\n\r\n");
    assert_eq!(f.r.stats.truncated_messages, 1);
    assert_eq!(
        f.r.stats.uninspected_bytes as usize,
        head.len() + 10_000 - 1024
    );
    assert_eq!(f.r.buffered_bytes(), 0);
}

#[test]
fn after_a_hole_the_stream_resumes_at_the_next_request() {
    let limits = Limits {
        max_held: 2,
        ..Limits::default()
    };
    let mut f = Flow::new(limits);
    // The first request's tail never comes; three later pieces do.
    let first = b"GET /lost HTTP/1.1\r\nHost: x\r\n\r\n";
    f.send(0, &first[..10]);
    let later = b"zzzzGET /next HTTP/1.1\r\n\r\n";
    let base = first.len() as u32 + 50;
    f.send(base, &later[..4])
        .send(base + 4, &later[4..12])
        .send(base + 12, &later[12..]);
    let m = f.messages();
    assert_eq!(m, ["GET /lost ", "GET /next HTTP/1.1\r\n\r\n"], "{m:?}");
    assert!(!f.out[0].complete(), "cut short by the hole");
    assert_eq!(f.r.stats.gaps, 1);
    assert_eq!(f.r.stats.skipped_bytes, 4);
}

#[test]
fn bytes_the_capture_cut_are_a_hole_not_a_stall() {
    let mut f = Flow::new(Limits::default());
    f.send(0, b"POST /a HTTP/1.1\r\nContent-Le");
    let (src, dst) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
    f.r.lost(src, dst, 1000 + 4000, &mut f.out);
    f.send(4000, b"GET /b HTTP/1.1\r\n\r\n");
    assert_eq!(
        f.messages(),
        ["POST /a HTTP/1.1\r\nContent-Le", "GET /b HTTP/1.1\r\n\r\n"]
    );
    assert!(!f.out[0].complete());
}

#[test]
fn a_stalled_hole_is_given_up_and_an_idle_partial_is_handed_on() {
    let mut f = Flow::new(Limits::default());
    f.send(0, b"GET /a HTTP/1.1\r\n");
    f.send(100, b"GET /b HTTP/1.1\r\n\r\n");
    assert!(f.out.is_empty());
    f.r.expire(
        at(2_000),
        Duration::from_secs(1),
        Duration::from_secs(30),
        &mut f.out,
    );
    assert_eq!(
        f.messages(),
        ["GET /a HTTP/1.1\r\n", "GET /b HTTP/1.1\r\n\r\n"]
    );
    f.send(119, b"GET /c HTTP/1.1\r\n");
    f.r.expire(
        at(60_000),
        Duration::from_secs(1),
        Duration::from_secs(30),
        &mut f.out,
    );
    assert_eq!(f.messages().last().unwrap(), "GET /c HTTP/1.1\r\n");
    assert!(!f.out.last().unwrap().complete());
    assert_eq!(
        (f.r.streams(), f.r.buffered_bytes()),
        (1, 0),
        "the stream keeps its place"
    );
    assert_eq!(f.r.stats.gaps, 1, "an idle partial is no gap");
}

#[test]
fn a_stream_seen_without_its_syn_starts_at_a_message_start() {
    let mut r = Reassembly::default();
    let mut out = Vec::new();
    let (c, s): (SocketAddr, SocketAddr) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
    let mut send = |seq: u32, data: &[u8]| {
        r.data(
            c,
            s,
            Piece {
                seq,
                ack: 1,
                time: at(1),
                data,
            },
            &mut out,
        );
    };
    send(10, b"dy of an earlier request");
    send(34, b"GET /x HTTP/1.1\r\n\r\n");
    assert_eq!(out.len(), 1);
    assert!(out[0].data.starts_with(b"GET /x"));
    assert_eq!(r.stats.skipped_bytes, 24);
}

#[test]
fn the_byte_budget_holds_across_streams() {
    let limits = Limits {
        budget_bytes: 64 << 10,
        ..Limits::default()
    };
    let mut r = Reassembly::new(limits);
    let mut out = Vec::new();
    let dst: SocketAddr = SERVER.parse().unwrap();
    // Many clients each leave a partial head behind.
    let partial = [b'a'; 1000];
    let mut head = b"GET /".to_vec();
    head.extend_from_slice(&partial);
    for port in 0..1000u16 {
        let src = SocketAddr::new("10.0.0.2".parse().unwrap(), 10_000 + port);
        let piece = Piece {
            seq: 1,
            ack: 1,
            time: at(u64::from(port)),
            data: &head,
        };
        r.data(src, dst, piece, &mut out);
        assert!(r.buffered_bytes() <= 64 << 10, "{}", r.buffered_bytes());
    }
    assert!(r.stats.evicted_streams > 900, "{:?}", r.stats);
    assert!(!out.is_empty(), "evicted streams are handed on, cut short");
}

#[test]
fn a_response_stream_is_cut_into_heads() {
    let mut r = Reassembly::default();
    let mut out = Vec::new();
    let (c, s): (SocketAddr, SocketAddr) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
    let data = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n";
    r.data(
        s,
        c,
        Piece {
            seq: 50,
            ack: 1234,
            time: at(1),
            data,
        },
        &mut out,
    );
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].dir, Direction::Response);
    assert_eq!(out[0].ack, 1234);
    assert!(out[1].data.starts_with(b"HTTP/1.1 204"));
}
