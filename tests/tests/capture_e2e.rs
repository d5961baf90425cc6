//! Live capture end to end: a real HTTP server on the host side of a veth
//! pair, real clients (reqwest, curl, raw pipelined TCP) in a namespace, the
//! daemon attached to the host side. What the daemon prints must be exactly
//! the requests sent, with their response statuses. Needs root.

use std::{
    collections::HashMap,
    io::{Read, Write},
    time::Duration,
};

use jwtmon::parse::token_id;
use jwtmon_tests::{
    PinDir,
    daemon::{Daemon, cli_ok},
    http::{TestServer, status_for},
    netns::{TestNet, in_netns},
};
use serde_json::Value;

const PORT: u16 = 8080;

fn path(i: usize) -> String {
    let tail = ["ok", "401", "404"][i % 3];
    format!("/api/items/{i}/{tail}")
}

fn token(i: usize) -> String {
    format!("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2Vy{i}In0.c2lnbmF0dXJl{i}")
}

/// Sends requests `range` with reqwest from inside the namespace (one
/// keep-alive client).
fn with_reqwest(ns: &str, host: &str, range: std::ops::Range<usize>) -> usize {
    let base = format!("http://{host}:{PORT}");
    in_netns(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut ok = 0;
            for i in range {
                let r = client
                    .get(format!("{base}{}", path(i)))
                    .bearer_auth(token(i))
                    .send()
                    .await;
                if let Ok(r) = r {
                    ok += usize::from(r.status().as_u16() == status_for(&path(i), b""));
                }
            }
            ok
        })
    })
    .unwrap()
}

/// Sends requests `range` with curl, chained with --next so each invocation
/// reuses its connection (keep-alive).
fn with_curl(net: &TestNet, range: std::ops::Range<usize>) -> usize {
    let mut ok = 0;
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(50) {
        let mut args: Vec<String> =
            vec!["netns".into(), "exec".into(), net.ns.clone(), "curl".into()];
        for (k, i) in chunk.iter().enumerate() {
            if k > 0 {
                args.push("--next".into());
            }
            args.extend([
                "-s".into(),
                "-o".into(),
                "/dev/null".into(),
                "-w".into(),
                "%{http_code}\\n".into(),
                "-m".into(),
                "5".into(),
                "-H".into(),
                format!("Authorization: Bearer {}", token(*i)),
                format!("http://{}:{PORT}{}", net.host_ip, path(*i)),
            ]);
        }
        let out = std::process::Command::new("ip")
            .args(&args)
            .output()
            .unwrap();
        let codes = String::from_utf8_lossy(&out.stdout);
        ok += codes
            .lines()
            .zip(chunk)
            .filter(|(c, i)| c.trim() == status_for(&path(**i), b"").to_string())
            .count();
    }
    ok
}

/// Sends requests `range` pipelined, ten per write, on raw TCP sockets.
fn pipelined(ns: &str, host: &str, range: std::ops::Range<usize>) -> usize {
    let host = host.to_string();
    in_netns(ns, move || {
        let ids: Vec<usize> = range.collect();
        let mut ok = 0;
        for chunk in ids.chunks(10) {
            let mut s = std::net::TcpStream::connect((host.as_str(), PORT)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut burst = String::new();
            for i in chunk {
                burst += &format!(
                    "GET {} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\r\n",
                    path(*i),
                    token(*i)
                );
            }
            s.write_all(burst.as_bytes()).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while got
                .windows(9)
                .filter(|w| w.starts_with(b"HTTP/1.1 "))
                .count()
                < chunk.len()
            {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            ok += got
                .windows(9)
                .filter(|w| w.starts_with(b"HTTP/1.1 "))
                .count();
        }
        ok
    })
    .unwrap()
}

#[test]
fn a_thousand_requests_become_exactly_a_thousand_paired_observations() {
    let net = TestNet::new().expect("test network");
    let server = TestServer::start(&net.host_ip, PORT).expect("server");
    let pin = PinDir::new("cap");
    let mut daemon = Daemon::start(
        &pin,
        &["--iface", &net.host_if, "--emit", "observations"],
        1,
    )
    .expect("daemon");

    let mut sent_ok = with_reqwest(&net.ns, &net.host_ip, 0..500);
    sent_ok += with_curl(&net, 500..800);
    sent_ok += pipelined(&net.ns, &net.host_ip, 800..1000);
    assert_eq!(
        sent_ok, 1000,
        "every client request got its expected status"
    );

    let lines = daemon.json_lines(1000, Duration::from_secs(30));
    let extra = daemon.json_lines(1, Duration::from_millis(1500));
    assert_eq!(lines.len(), 1000, "observations: {}", lines.len());
    assert!(
        extra.is_empty(),
        "more observations than requests: {extra:?}"
    );

    let by_path: HashMap<String, &Value> = lines
        .iter()
        .map(|o| (o["path"].as_str().unwrap().to_string(), o))
        .collect();
    assert_eq!(by_path.len(), 1000, "distinct paths");
    for i in 0..1000 {
        let o = by_path
            .get(&path(i))
            .unwrap_or_else(|| panic!("missing {}", path(i)));
        assert_eq!(o["method"], "GET");
        assert_eq!(o["token_id"], token_id(&token(i)), "{}", path(i));
        assert_eq!(o["auth_scheme"], "Bearer");
        assert_eq!(o["status"], status_for(&path(i), b""), "{}", path(i));
        assert_eq!(o["client_ip"], net.peer_ip.as_str());
        assert_eq!(o["dst_port"], PORT);
        assert_eq!(o["unanswered"], false);
        assert!(o["latency_ms"].as_f64().unwrap() >= 0.0);
    }
    // Raw tokens never appear in the output.
    let all = serde_json::to_string(&lines).unwrap();
    assert!(!all.contains(&token(7)));

    let stats: Value = serde_json::from_str(&cli_ok(&pin, &["stats", "--json"])).unwrap();
    assert_eq!(stats["counters"]["ringbuf_full"], 0);
    // 800 single requests + 20 segments of 10 pipelined ones; 1000 responses.
    assert!(
        stats["counters"]["sampled"].as_u64().unwrap() >= 820,
        "{stats}"
    );
    assert!(
        stats["counters"]["sampled_responses"].as_u64().unwrap() >= 1000,
        "{stats}"
    );
    assert!(daemon.stop());
    assert_eq!(
        server.served.load(std::sync::atomic::Ordering::Relaxed),
        1000
    );
}

#[test]
fn a_full_ring_skips_and_counts_while_traffic_flows_then_recovers() {
    let net = TestNet::new().expect("test network");
    let server = TestServer::start(&net.host_ip, PORT).expect("server");
    let pin = PinDir::new("bp");
    let cfg = std::env::temp_dir().join(format!("jwtmon-bp-{}.toml", std::process::id()));
    // 64 KiB holds about a dozen request records (each reserves the 4 KiB
    // capture limit): far fewer than the 300 sent while paused, but enough
    // that the 20 sent after resuming never depend on how fast the reader
    // wakes up on a busy two-core machine.
    std::fs::write(&cfg, "[datapath]\nring_buffer_bytes = 65536\n").unwrap();
    let mut daemon = Daemon::start(
        &pin,
        &[
            "--iface",
            &net.host_if,
            "--emit",
            "observations",
            "--config",
            cfg.to_str().unwrap(),
        ],
        1,
    )
    .expect("daemon");
    daemon.signal(libc::SIGUSR1);
    std::thread::sleep(Duration::from_millis(300));

    // 300 requests while nobody reads: far more than 64 KiB of records.
    let ok = with_curl(&net, 0..300);
    assert_eq!(ok, 300, "traffic is never held up by a full ring");
    let stats: Value = serde_json::from_str(&cli_ok(&pin, &["stats", "--json"])).unwrap();
    let full = stats["counters"]["ringbuf_full"].as_u64().unwrap();
    assert!(full > 100, "ringbuf_full counted: {stats}");

    // Resume: old records drain, and new requests are observed again.
    daemon.signal(libc::SIGUSR1);
    std::thread::sleep(Duration::from_millis(300));
    let _ = daemon.json_lines(usize::MAX, Duration::from_secs(2));
    let ok = with_curl(&net, 1000..1020);
    assert_eq!(ok, 20);
    let lines = daemon.json_lines(20, Duration::from_secs(10));
    let paths: std::collections::BTreeSet<String> = lines
        .iter()
        .map(|o| o["path"].as_str().unwrap_or("?").to_string())
        .collect();
    let want: std::collections::BTreeSet<String> = (1000..1020).map(path).collect();
    let after: Value = serde_json::from_str(&cli_ok(&pin, &["stats", "--json"])).unwrap();
    assert_eq!(paths, want, "after resuming: {after}");
    assert_eq!(
        after["counters"]["ringbuf_full"].as_u64(),
        Some(full),
        "no record lost after resuming"
    );
    assert!(daemon.stop());
    std::fs::remove_file(&cfg).ok();
    drop(server);
}
