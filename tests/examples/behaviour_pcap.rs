//! Writes a capture that trips every behaviour detector and the key-free
//! JWT checks (brute force, stuffing, bursts, scans, rate spikes, the four
//! injection families, `alg: none`, replay from many addresses), so that
//! `jwtmon analyze` output can be diffed across a refactor:
//! `cargo run -p jwtmon-tests --example behaviour_pcap -- OUT.pcap`.

use std::{net::SocketAddr, time::Duration};

use base64::Engine as _;
use jwtmon_tests::pcapgen::{Conn, Exchange, Link, frames, write};

fn exchange(req: &str, status: u16) -> Exchange {
    Exchange {
        request: req.as_bytes().to_vec(),
        response: format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").into_bytes(),
    }
}

fn get(path: &str, extra: &str, status: u16) -> Exchange {
    exchange(
        &format!("GET {path} HTTP/1.1\r\nHost: api\r\nUser-Agent: ua/1\r\n{extra}\r\n"),
        status,
    )
}

fn conn(client: &str, exchanges: Vec<Exchange>) -> Conn {
    Conn {
        client: client.parse().expect("address"),
        server: "10.9.0.1:8080".parse::<SocketAddr>().expect("address"),
        exchanges,
        mss: 1400,
        reorder: false,
        retransmit: false,
    }
}

fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "behaviour.pcap".into());
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none"}"#),
        b64(r#"{"sub":"mallory"}"#)
    );
    let mut conns = Vec::new();
    let login = |user: &str| {
        let body = format!(r#"{{"username":"{user}","password":"x"}}"#);
        exchange(
            &format!(
                "POST /login HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
            401,
        )
    };
    conns.push(conn(
        "10.9.1.1:40001",
        (0..15).map(|_| login("alice")).collect(),
    ));
    conns.push(conn(
        "10.9.1.2:40002",
        (0..12).map(|i| login(&format!("user{i}"))).collect(),
    ));
    conns.push(conn(
        "10.9.1.3:40003",
        (0..30)
            .map(|i| get(&format!("/probe/p{i}"), "", 404))
            .collect(),
    ));
    conns.push(conn(
        "10.9.1.4:40004",
        vec![
            get("/api/items?id=1%27%20OR%201%3D1--", "", 200),
            get("/search?q=%3Cscript%3Ealert(1)%3C/script%3E", "", 200),
            get("/files?name=../../../../etc/passwd", "", 200),
            get("/ping?host=x%3Bcat%20/etc/passwd", "", 200),
            get("/api/me", &format!("Authorization: Bearer {none}\r\n"), 200),
        ],
    ));
    for i in 0..5 {
        conns.push(conn(
            &format!("10.9.2.{}:4100{i}", i + 1),
            vec![get(
                "/api/me",
                &format!("Authorization: Bearer {none}\r\n"),
                200,
            )],
        ));
    }
    conns.push(conn(
        "10.9.1.5:40005",
        (0..400)
            .map(|i| get(&format!("/api/items/{i}"), "", 200))
            .collect(),
    ));
    let f = frames(Link::Ethernet, &conns, Duration::from_secs(1_700_000_000));
    write(std::path::Path::new(&out), Link::Ethernet, &f, false)?;
    println!("{out}: {} frames", f.len());
    Ok(())
}
