//! Nobody can be framed: a single spoofed TCP data segment carrying an SQL
//! injection, from an address that never completed a handshake, is
//! reported (`detail.proven = false`, action `log`) and never blocked,
//! while the same attack over a real connection is blocked. Live, in a
//! namespace, with the default decision policy. Needs root.

use std::time::{Duration, Instant};

use jwtmon_tests::{
    PinDir, TempFile,
    daemon::{Daemon, list_targets},
    frames::{Frame, send_raw},
    http::TestServer,
    netns::{TestNet, in_netns},
};
use serde_json::Value;

const ATTACK: &str = "/search?q=%27%20OR%201%3D1--";

/// Finding lines until one matches `want` (at most `limit`).
fn finding(d: &mut Daemon, limit: Duration, want: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + limit;
    let mut seen = Vec::new();
    while Instant::now() < end {
        for v in d.json_lines(1, Duration::from_millis(200)) {
            if want(&v) {
                return v;
            }
            seen.push(v);
        }
    }
    panic!(
        "no matching finding within {limit:?}; saw {seen:#?}\n{}",
        d.log()
    );
}

#[test]
fn a_spoofed_packet_frames_nobody_and_a_real_attack_is_blocked() {
    let net = TestNet::new().expect("test network");
    let pin = PinDir::new("framing");
    let server = TestServer::start("0.0.0.0", 0).expect("server");
    let cfg = TempFile::new(
        "framing",
        &format!(
            "[daemon]\nemit = \"findings\"\n[capture]\nports = [{}]\nresponse_timeout = \"1s\"\n",
            server.port
        ),
    );
    let mut d =
        Daemon::start(&pin, &["--config", cfg.path(), "--iface", &net.host_if], 1).expect("daemon");

    // One forged segment from a bystander of the subnet: no SYN, no
    // handshake, so the server never answers it.
    let victim = format!("10.231.{}.77", net.subnet);
    let request = format!("GET {ATTACK} HTTP/1.1\r\nHost: api\r\n\r\n");
    let frame = Frame::tcp_v4(&victim, server.port, 1_000, request.as_bytes())
        .to_v4(&net.host_ip)
        .build();
    let iface = net.peer_if.clone();
    in_netns(&net.ns, move || send_raw(&iface, &frame))
        .expect("namespace")
        .expect("raw send");
    let spoofed = finding(&mut d, Duration::from_secs(10), |v| {
        v["kind"] == "injection_sqli" && v["src_ip"] == victim.as_str()
    });
    assert_eq!(spoofed["action"], "log", "{spoofed}");
    assert_eq!(spoofed["detail"]["proven"], false, "{spoofed}");
    assert_eq!(
        spoofed["detail"]["decision"]["would"], "block_ip",
        "{spoofed}"
    );
    assert!(
        !list_targets(&pin, "blocks").contains(&victim),
        "the bystander was blocked"
    );

    // The same request over a real connection: answered, so proven.
    let _ = net.curl_path(server.port, ATTACK, 5);
    let real = finding(&mut d, Duration::from_secs(10), |v| {
        v["kind"] == "injection_sqli" && v["src_ip"] == net.peer_ip.as_str()
    });
    assert_eq!(real["action"], "block_ip", "{real}");
    assert!(real["detail"].get("proven").is_none(), "{real}");
    let end = Instant::now() + Duration::from_secs(5);
    while !list_targets(&pin, "blocks").contains(&net.peer_ip) {
        assert!(Instant::now() < end, "the real attacker was not blocked");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!list_targets(&pin, "blocks").contains(&victim));
    assert!(d.stop());
}
