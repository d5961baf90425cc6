//! Nothing slips past: live, in a namespace, default policy, a real nginx
//! that keeps connections alive. Each attack comes from its own address on
//! real sockets, the way an attacker would send it to walk past a sampler
//! that reads only segment starts: the first byte alone in its own
//! segment, empty lines before the request line, 6 KB of headers before
//! the payload, a second request pipelined behind an innocent one, and IPv6
//! with a destination-options extension header. Each is detected and its
//! sender blocked; TCP in IP fragments is reported. Needs root.

use std::{
    io::{Read, Write},
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use jwtmon_tests::{
    PinDir, TempFile,
    daemon::{Daemon, list_targets, wait_blocked, wait_line},
    frames::{Frame, send_raw},
    netns::{TestNet, in_netns},
    nginx::Nginx,
};
use serde_json::Value;

const SQLI: &str = "%27%20OR%201%3D1--";

/// Sends `parts` over one connection from `src`, each as its own segment
/// (TCP_NODELAY and a pause between), and returns the response statuses
/// read (at most `responses`, within 3 s). With `dstopts`, every packet
/// carries an IPv6 destination-options header.
fn send_parts(
    src: IpAddr,
    dst: SocketAddr,
    parts: &[Vec<u8>],
    responses: usize,
    dstopts: bool,
) -> Vec<u16> {
    use socket2::{Domain, Socket, Type};
    let domain = if dst.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let sock = Socket::new(domain, Type::STREAM, None).expect("socket");
    if dstopts {
        // Destination options: next header (the kernel fills it), length
        // 0 (8 bytes), one PadN option of 4 bytes.
        let opts: [u8; 8] = [0, 0, 1, 4, 0, 0, 0, 0];
        // SAFETY: a valid fd and an 8-byte option buffer.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&sock),
                libc::IPPROTO_IPV6,
                libc::IPV6_DSTOPTS,
                opts.as_ptr().cast(),
                opts.len() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "IPV6_DSTOPTS: {}", std::io::Error::last_os_error());
    }
    sock.bind(&SocketAddr::new(src, 0).into()).expect("bind");
    sock.connect_timeout(&dst.into(), Duration::from_secs(3))
        .expect("connect");
    sock.set_tcp_nodelay(true).unwrap();
    let mut stream: std::net::TcpStream = sock.into();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(60));
        }
        stream.write_all(p).expect("write");
    }
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        let statuses = statuses(&got);
        if statuses.len() >= responses {
            return statuses;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    statuses(&got)
}

fn statuses(bytes: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

/// Waits for a finding of `kind` from `ip`.
fn finding_from(d: &mut Daemon, seen: &mut Vec<Value>, kind: &str, ip: &str) -> Value {
    wait_line(d, seen, &format!("{kind} from {ip}"), |v| {
        v["kind"] == kind && v["src_ip"] == ip
    })
}

#[test]
fn split_crlf_padded_pipelined_and_ipv6_attacks_are_seen_and_blocked() {
    let net = TestNet::new().expect("test network");
    let (host6, _peer6) = net.add_ipv6().expect("IPv6 on the veth pair");
    let pin = PinDir::new("evasion");
    let port = jwtmon_tests::free_port();
    let nginx = Nginx::start(port, "location / { return 200 \"ok\\n\"; }").expect("nginx");
    let cfg = TempFile::new(
        "evasion",
        &format!(
            "[daemon]\nemit = \"findings\"\n[capture]\nports = [{port}]\nresponse_timeout = \"2s\"\n"
        ),
    );
    let mut d =
        Daemon::start(&pin, &["--config", cfg.path(), "--iface", &net.host_if], 1).expect("daemon");
    let v4: SocketAddr = format!("{}:{port}", net.host_ip).parse().unwrap();
    let v6: SocketAddr = format!("[{host6}]:{port}").parse().unwrap();
    let attack = format!("GET /search?q={SQLI} HTTP/1.1\r\nHost: api\r\n\r\n");
    let mut padded = b"POST /search HTTP/1.1\r\nHost: api\r\nContent-Type: application/x-www-form-urlencoded\r\n".to_vec();
    for i in 0..60 {
        padded.extend_from_slice(format!("X-Pad-{i:02}: {}\r\n", "p".repeat(90)).as_bytes());
    }
    let body = format!("q={SQLI}");
    padded.extend_from_slice(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    assert!(padded.len() > 6 * 1024);
    // (label, source host byte, pieces, responses)
    let cases: Vec<(&str, u8, Vec<Vec<u8>>, usize)> = vec![
        (
            "split",
            11,
            vec![
                attack.as_bytes()[..1].to_vec(),
                attack.as_bytes()[1..].to_vec(),
            ],
            1,
        ),
        (
            "crlf-led",
            12,
            vec![format!("\r\n\r\n\r\n{attack}").into_bytes()],
            1,
        ),
        ("padded", 13, vec![padded.clone()], 1),
        (
            "pipelined",
            14,
            vec![format!("GET /ok HTTP/1.1\r\nHost: api\r\n\r\n{attack}").into_bytes()],
            2,
        ),
    ];
    let mut seen = Vec::new();
    for (label, host, parts, responses) in cases {
        let ip = net.add_peer_addr(host).expect("address");
        let src: IpAddr = ip.parse().unwrap();
        let got = in_netns(&net.ns, move || {
            send_parts(src, v4, &parts, responses, false)
        })
        .expect("namespace");
        assert_eq!(got, vec![200; responses], "{label}: nginx answered");
        let f = finding_from(&mut d, &mut seen, "injection_sqli", &ip);
        assert_eq!(f["action"], "block_ip", "{label}: {f}");
        wait_blocked(&pin, &ip);
    }
    // IPv6 behind a destination-options header.
    let ip6 = net.add_peer_addr6(0x14).expect("IPv6 address");
    let src: IpAddr = ip6.parse().unwrap();
    let parts = vec![attack.clone().into_bytes()];
    let got = in_netns(&net.ns, move || send_parts(src, v6, &parts, 1, true)).expect("namespace");
    assert_eq!(got, [200], "nginx answered over IPv6");
    let f = finding_from(&mut d, &mut seen, "injection_sqli", &ip6);
    assert_eq!(f["action"], "block_ip", "{f}");
    wait_blocked(&pin, &ip6);

    // An ordinary client, its requests split too: nothing raised.
    let benign = net.add_peer_addr(20).expect("address");
    let src: IpAddr = benign.parse().unwrap();
    let ok = b"GET /orders?page=2&sort=date HTTP/1.1\r\nHost: api\r\n\r\n".to_vec();
    let parts = vec![ok[..1].to_vec(), ok[1..20].to_vec(), ok[20..].to_vec()];
    let got = in_netns(&net.ns, move || send_parts(src, v4, &parts, 1, false)).expect("namespace");
    assert_eq!(got, [200]);

    // TCP in IP fragments: reported, never blocked (a fragment proves no sender).
    let frag_ip = net.add_peer_addr(15).expect("address");
    let frame = Frame::tcp_v4(&frag_ip, port, 5000, attack.as_bytes())
        .to_v4(&net.host_ip)
        .with_ipv4_frag(0x2000)
        .build();
    let iface = net.peer_if.clone();
    in_netns(&net.ns, move || send_raw(&iface, &frame))
        .expect("namespace")
        .expect("raw send");
    let f = finding_from(&mut d, &mut seen, "evasion_ip_fragment", &frag_ip);
    assert_eq!(f["detail"]["dst_port"], port, "{f}");
    assert_ne!(f["action"], "block_ip", "{f}");

    std::thread::sleep(Duration::from_millis(500));
    seen.extend(d.json_lines(100, Duration::from_millis(300)));
    assert!(
        !seen.iter().any(|v| v["src_ip"] == benign.as_str()),
        "the ordinary client raised something: {seen:#?}"
    );
    assert!(!list_targets(&pin, "blocks").contains(&frag_ip));
    assert!(d.stop(), "daemon exits cleanly");
    drop(nginx);
}
