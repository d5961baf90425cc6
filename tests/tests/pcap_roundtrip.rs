//! Offline input: generated captures (pcap and pcapng; Ethernet, VLAN and
//! Linux cooked framing; IPv4 and IPv6; split, reordered and retransmitted
//! segments; chunked responses) go through `jwtmon analyze --pcap` and must
//! come out as exactly the requests put in, with their statuses and the
//! packet times. No root needed.

use std::time::Duration;

use jwtmon::parse::token_id;
use jwtmon_tests::{
    daemon::{analyze_lines, analyze_pcap},
    pcapgen::{Conn, Exchange, Link, frames, write},
};
use serde_json::Value;

/// 2020-09-13T12:26:40Z: an old capture keeps its own time.
const START: Duration = Duration::from_secs(1_600_000_000);

fn exchange(i: usize) -> (Exchange, String, u16) {
    let path = format!("/api/v1/orders/{i}");
    let tok = format!("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1{i}In0.sig{i}");
    let (request, status) = match i % 4 {
        0 => (
            format!(
                "GET {path}?page=2 HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer {tok}\r\n\r\n"
            ),
            200,
        ),
        1 => {
            let body = format!(
                "{{\"item\":{i},\"qty\":3,\"note\":\"{}\"}}",
                "x".repeat(120)
            );
            (
                format!(
                    "POST {path} HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer {tok}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ),
                401,
            )
        }
        2 => (
            format!("DELETE {path} HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer {tok}\r\n\r\n"),
            404,
        ),
        _ => (
            format!("GET {path} HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer {tok}\r\n\r\n"),
            200,
        ),
    };
    let response = if i % 4 == 3 {
        // Chunked body: the next response must still be found after it.
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_string()
    } else {
        let reason = match status {
            200 => "OK",
            401 => "Unauthorized",
            _ => "Not Found",
        };
        format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 4\r\n\r\nbody")
    };
    (
        Exchange {
            request: request.into_bytes(),
            response: response.into_bytes(),
        },
        tok,
        status,
    )
}

fn conns(v6: bool) -> (Vec<Conn>, Vec<(String, String, u16)>) {
    let mut all = Vec::new();
    let mut want = Vec::new();
    for c in 0..6 {
        let mut exchanges = Vec::new();
        for k in 0..8 {
            let i = c * 8 + k;
            let (ex, tok, status) = exchange(i);
            want.push((format!("/api/v1/orders/{i}"), tok, status));
            exchanges.push(ex);
        }
        let (client, server) = if v6 {
            (
                format!("[2001:db8::{}]:{}", c + 10, 40000 + c),
                "[2001:db8::1]:8080".to_string(),
            )
        } else {
            (
                format!("192.0.2.{}:{}", c + 10, 40000 + c),
                "198.51.100.1:8080".to_string(),
            )
        };
        all.push(Conn {
            client: client.parse().unwrap(),
            server: server.parse().unwrap(),
            exchanges,
            mss: if c % 2 == 0 { 1400 } else { 40 },
            reorder: c % 3 == 1,
            retransmit: c % 3 == 2 || c == 1,
        });
    }
    (all, want)
}

fn analyze(path: &std::path::Path) -> Vec<Value> {
    analyze_lines(&[], path, &["--output", "observations"])
}

fn round_trip(link: Link, v6: bool, ng: bool) {
    let (conns, want) = conns(v6);
    let path = std::env::temp_dir().join(format!(
        "jwtmon-rt-{}-{:?}-{v6}-{ng}.pcap",
        std::process::id(),
        link
    ));
    write(&path, link, &frames(link, &conns, START), ng).unwrap();
    let got = analyze(&path);
    std::fs::remove_file(&path).ok();
    assert_eq!(got.len(), want.len(), "{link:?} v6={v6} ng={ng}: {got:#?}");
    for (path, tok, status) in &want {
        let o = got
            .iter()
            .find(|o| o["path"] == path.as_str())
            .unwrap_or_else(|| panic!("{path} missing ({link:?} v6={v6})"));
        assert_eq!(o["status"], *status, "{path}");
        assert_eq!(o["token_id"], token_id(tok), "{path}");
        assert_eq!(o["unanswered"], false);
        assert!(
            o["time"].as_str().unwrap().starts_with("2020-09-13T12:2"),
            "{}",
            o["time"]
        );
    }
    let posts: Vec<&Value> = got.iter().filter(|o| o["method"] == "POST").collect();
    assert!(
        posts
            .iter()
            .all(|o| o["content_length"].as_u64().unwrap() > 120)
    );
}

#[test]
fn pcap_ethernet_ipv4_split_reordered_retransmitted() {
    round_trip(Link::Ethernet, false, false);
}

#[test]
fn pcapng_vlan_ipv6() {
    round_trip(Link::Vlan(42), true, true);
}

#[test]
fn pcap_linux_cooked_ipv4() {
    round_trip(Link::Sll, false, false);
}

#[test]
fn garbage_file_is_a_clear_error() {
    let path = std::env::temp_dir().join(format!("jwtmon-garbage-{}.pcap", std::process::id()));
    std::fs::write(&path, b"this is not a capture file at all").unwrap();
    let out = analyze_pcap(&[], &path, &[]);
    std::fs::remove_file(&path).ok();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("jwtmon: error:"));
}

/// A proxy-style absolute-form target is analysed as its origin form, with
/// its authority as the host; an SQL injection in it is still found, and
/// the userinfo credential never reaches the output.
#[test]
fn absolute_form_targets_end_to_end() {
    let conn = Conn {
        client: "192.0.2.77:41000".parse().unwrap(),
        server: "198.51.100.1:8080".parse().unwrap(),
        exchanges: vec![
            Exchange {
                request: b"GET http://shop.example:8080/api/v1/orders/9?page=2 HTTP/1.1\r\nHost: shop\r\n\r\n".to_vec(),
                response: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
            },
            Exchange {
                request: b"GET http://bob:hunter2@shop.example/search?q=1%27%20OR%201%3D1-- HTTP/1.1\r\nHost: shop\r\n\r\n".to_vec(),
                response: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
            },
        ],
        mss: 1400,
        reorder: false,
        retransmit: false,
    };
    let path = std::env::temp_dir().join(format!("jwtmon-absform-{}.pcap", std::process::id()));
    write(
        &path,
        Link::Ethernet,
        &frames(Link::Ethernet, &[conn], START),
        false,
    )
    .unwrap();
    let obs = analyze(&path);
    let findings = analyze_pcap(&[], &path, &[]);
    std::fs::remove_file(&path).ok();
    assert_eq!(obs.len(), 2, "{obs:#?}");
    assert_eq!(obs[0]["path"], "/api/v1/orders/9");
    assert_eq!(obs[0]["query"], "page=2");
    assert_eq!(obs[0]["host"], "shop.example:8080");
    assert_eq!(obs[1]["path"], "/search");
    assert_eq!(obs[1]["host"], "shop.example");
    let text = String::from_utf8_lossy(&findings.stdout);
    assert!(!text.contains("hunter2") && !format!("{obs:?}").contains("hunter2"));
    let f: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!(
        f.iter()
            .any(|f| f["kind"] == "injection_sqli" && f["endpoint"] == "GET /search"),
        "{f:#?}"
    );
}
