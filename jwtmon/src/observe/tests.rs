use std::time::{Duration, SystemTime};

use super::*;

fn seg(dir: Direction, src: &str, dst: &str, seq: u32, ack: u32, t: u64, data: &[u8]) -> Segment {
    Segment {
        dir,
        time: SystemTime::UNIX_EPOCH + Duration::from_millis(t),
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        seq,
        ack,
        payload_len: data.len() as u32,
        data: data.to_vec(),
        transport: Transport::Tcp,
    }
}

const C: &str = "10.0.0.2:40000";
const S: &str = "10.0.0.1:8080";

#[test]
fn pairs_oldest_unanswered_including_pipelined() {
    let mut o = Observer::new(&CaptureConfig::default());
    let mut out = Vec::new();
    o.push(
        seg(
            Direction::Request,
            C,
            S,
            100,
            1,
            0,
            b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        ),
        &mut out,
    );
    assert!(out.is_empty(), "nothing is emitted before its response");
    o.push(
        seg(
            Direction::Response,
            S,
            C,
            1,
            140,
            5,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ),
        &mut out,
    );
    o.push(
        seg(
            Direction::Response,
            S,
            C,
            40,
            140,
            7,
            b"HTTP/1.1 404 Not Found\r\n",
        ),
        &mut out,
    );
    let got: Vec<(String, Option<u16>)> = out
        .iter()
        .map(|x| (x.request.path.clone(), x.status))
        .collect();
    assert_eq!(
        got,
        [("/a".to_string(), Some(200)), ("/b".to_string(), Some(404))]
    );
    assert_eq!(out[0].latency, Some(Duration::from_millis(5)));
    assert_eq!(o.stats.paired, 2);
    assert_eq!(o.flows(), 0, "an answered flow holds nothing");
    // A late duplicate answer on the forgotten flow pairs with nothing.
    o.push(
        seg(
            Direction::Response,
            S,
            C,
            60,
            140,
            9,
            b"HTTP/1.1 200 OK\r\n",
        ),
        &mut out,
    );
    assert_eq!((out.len(), o.stats.unmatched_responses), (2, 1));
}

#[test]
fn a_response_that_does_not_ack_the_request_is_not_paired() {
    let mut o = Observer::new(&CaptureConfig::default());
    let mut out = Vec::new();
    o.push(
        seg(
            Direction::Request,
            C,
            S,
            500,
            1,
            0,
            b"GET /late HTTP/1.1\r\n\r\n",
        ),
        &mut out,
    );
    // Answers an earlier, unsampled request: ack stops before seq 500.
    o.push(
        seg(Direction::Response, S, C, 1, 480, 1, b"HTTP/1.1 200 OK\r\n"),
        &mut out,
    );
    assert!(out.is_empty());
    assert_eq!(o.stats.unmatched_responses, 1);
    o.push(
        seg(
            Direction::Response,
            S,
            C,
            30,
            530,
            2,
            b"HTTP/1.1 201 Created\r\n",
        ),
        &mut out,
    );
    assert_eq!(out[0].status, Some(201));
}

#[test]
fn unanswered_after_timeout_and_on_flush() {
    let cfg = CaptureConfig {
        response_timeout: Duration::from_secs(2),
        ..CaptureConfig::default()
    };
    let mut o = Observer::new(&cfg);
    let mut out = Vec::new();
    o.push(
        seg(
            Direction::Request,
            C,
            S,
            1,
            1,
            0,
            b"GET /slow HTTP/1.1\r\n\r\n",
        ),
        &mut out,
    );
    o.push(
        seg(
            Direction::Request,
            "10.0.0.3:1",
            S,
            1,
            1,
            1500,
            b"GET /other HTTP/1.1\r\n\r\n",
        ),
        &mut out,
    );
    o.expire(
        SystemTime::UNIX_EPOCH + Duration::from_millis(1999),
        &mut out,
    );
    assert!(out.is_empty());
    o.expire(SystemTime::UNIX_EPOCH + Duration::from_secs(2), &mut out);
    assert_eq!(out.len(), 1);
    assert!(out[0].unanswered && out[0].request.path == "/slow");
    assert_eq!(o.flows(), 1, "the empty flow is forgotten");
    o.flush(&mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(o.stats.unanswered, 2);
}

#[test]
fn flows_and_pending_are_bounded() {
    let cfg = CaptureConfig {
        max_flows: 10,
        ..CaptureConfig::default()
    };
    let mut o = Observer::new(&cfg);
    let mut out = Vec::new();
    for port in 0..100u16 {
        let src = format!("10.0.0.2:{}", 1000 + port);
        o.push(
            seg(
                Direction::Request,
                &src,
                S,
                1,
                1,
                0,
                b"GET / HTTP/1.1\r\n\r\n",
            ),
            &mut out,
        );
    }
    assert_eq!(o.flows(), 10);
    assert_eq!(o.stats.evicted_flows, 90);
    assert_eq!(out.len(), 90, "evicted flows report their requests");
    out.clear();
    for i in 0..(MAX_PENDING_PER_FLOW + 5) as u32 {
        o.push(
            seg(
                Direction::Request,
                C,
                S,
                i * 20,
                1,
                0,
                b"GET / HTTP/1.1\r\n\r\n",
            ),
            &mut out,
        );
    }
    // The new flow evicted one more (its request reported), then the cap
    // pushed out the five oldest of this flow.
    assert_eq!(out.len(), 1 + 5);
}

#[test]
fn malformed_requests_are_counted_not_observed() {
    let mut o = Observer::new(&CaptureConfig::default());
    let mut out = Vec::new();
    o.push(
        seg(
            Direction::Request,
            C,
            S,
            1,
            1,
            0,
            b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        &mut out,
    );
    o.flush(&mut out);
    assert!(out.is_empty());
    assert_eq!(o.stats.malformed.get("cl_and_te"), Some(&1));
}

#[test]
fn json_carries_no_secret() {
    let mut o = Observer::new(&CaptureConfig {
        trusted_proxies: vec!["10.0.0.2".parse().unwrap()],
        ..CaptureConfig::default()
    });
    let mut out = Vec::new();
    o.push(seg(Direction::Request, C, S, 1, 1, 0, b"GET /me HTTP/1.1\r\nAuthorization: Bearer s3cr3t.t0k3n.x\r\nCookie: sid=v4lu3\r\nX-Forwarded-For: 198.51.100.4\r\n\r\n"), &mut out);
    o.push(
        seg(
            Direction::Response,
            S,
            C,
            1,
            60,
            3,
            b"HTTP/1.1 401 Unauthorized\r\n",
        ),
        &mut out,
    );
    let line = out[0].to_json().to_string();
    assert!(
        !line.contains("s3cr3t") && !line.contains("v4lu3"),
        "{line}"
    );
    let v = out[0].to_json();
    assert_eq!(v["client_ip"], "198.51.100.4");
    assert_eq!(v["proxy_ip"], "10.0.0.2");
    assert_eq!(v["status"], 401);
    assert_eq!(v["token_id"], parse::token_id("s3cr3t.t0k3n.x"));
    assert_eq!(v["auth_scheme"], "Bearer");
}

#[test]
fn waiting_requests_stay_under_their_byte_budget() {
    let cfg = CaptureConfig {
        max_pending_bytes: 256 * 1024,
        ..CaptureConfig::default()
    };
    let mut o = Observer::new(&cfg);
    let mut out = Vec::new();
    // A flood of unanswered requests with 3 KB bodies on 2,000 connections.
    let body = "x".repeat(3000);
    let req = format!("POST /upload HTTP/1.1\r\nContent-Length: 3000\r\n\r\n{body}");
    let mut peak = 0;
    for i in 0..2000u32 {
        let src = format!("10.0.{}.{}:{}", i / 250, i % 250, 1000 + i % 50);
        o.push(
            seg(Direction::Request, &src, S, 1, 1, 0, req.as_bytes()),
            &mut out,
        );
        peak = peak.max(o.pending_bytes());
    }
    assert!(peak <= cfg.max_pending_bytes, "peak {peak}");
    assert!(o.stats.pending_over_budget > 1000, "{:?}", o.stats);
    // Nothing is lost: what was given up is reported as unanswered.
    assert_eq!(out.len() as u64, o.stats.pending_over_budget);
    assert!(out.iter().all(|obs| obs.unanswered));
    // Answered and flushed requests release their bytes.
    o.flush(&mut out);
    assert_eq!(o.pending_bytes(), 0);
}
