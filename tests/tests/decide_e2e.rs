//! The closed loop, live: attackers in their own namespaces send real
//! requests to a real server on the host; the real daemon samples them,
//! detects, decides and blocks them in XDP, while benign clients in other
//! namespaces keep being served. Needs root. Namespaces, links and pins
//! are removed on drop, even when a test fails.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use jwtmon_tests::{
    PinDir, TempFile,
    client::{alg_none_token, login, request},
    daemon::{Daemon, list_json},
    http::TestServer,
    netns::{TestNet, in_netns},
};
use serde_json::Value;

/// A config file for the test's server port plus `extra` TOML.
fn config(port: u16, extra: &str) -> TempFile {
    TempFile::new(
        "decide",
        &format!("[daemon]\nemit = \"findings\"\n[capture]\nports = [{port}]\n{extra}"),
    )
}

fn addr(net: &TestNet, port: u16) -> SocketAddr {
    format!("{}:{port}", net.host_ip).parse().unwrap()
}

/// Lines of a kind (`type` finding/block/unblock) until `want` matched or
/// `limit` passed; returns everything read.
fn read_until(d: &mut Daemon, limit: Duration, want: impl Fn(&Value) -> bool) -> Vec<Value> {
    let end = Instant::now() + limit;
    let mut seen = Vec::new();
    while Instant::now() < end {
        let got = d.json_lines(1, Duration::from_millis(200));
        let hit = got.iter().any(&want);
        seen.extend(got);
        if hit {
            break;
        }
    }
    seen
}

/// Reads until a line matches `want`; returns it and every line read.
/// Panics (with the lines seen) when none matches within `limit`.
fn expect_line(
    d: &mut Daemon,
    limit: Duration,
    what: &str,
    want: impl Fn(&Value) -> bool,
) -> (Value, Vec<Value>) {
    let lines = read_until(d, limit, &want);
    match lines.iter().find(|v| want(v)) {
        Some(v) => (v.clone(), lines),
        None => panic!("no {what} within {limit:?}: {lines:?}"),
    }
}

/// Waits for a `block` or `unblock` event on `target`.
fn expect_event(d: &mut Daemon, limit: Duration, ty: &str, target: &str) -> (Value, Vec<Value>) {
    expect_line(d, limit, ty, |v| is(v, ty, "target", target))
}

fn is(v: &Value, ty: &str, field: &str, value: &str) -> bool {
    v["type"] == ty && v[field] == value
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// GETs with `token` from `net` until one is not answered (dropped) or
/// `max` were sent; returns (answered, dropped).
fn until_dropped(net: &TestNet, port: u16, token: String, max: u32) -> (u32, bool) {
    let a = addr(net, port);
    in_netns(&net.ns, move || {
        let auth = bearer(&token);
        for i in 0..max {
            let got = request(
                a,
                "GET",
                "/api/v1/accounts/7/balance",
                &[("Authorization", &auth)],
                b"",
                Duration::from_millis(300),
            );
            if got.is_none() {
                return (i, true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (max, false)
    })
    .unwrap()
}

fn served(net: &TestNet, port: u16) -> bool {
    let a = addr(net, port);
    in_netns(&net.ns, move || {
        request(a, "GET", "/", &[], b"", Duration::from_millis(500)) == Some(200)
    })
    .unwrap()
}

#[test]
fn brute_force_is_dropped_while_benign_clients_are_served() {
    let attacker = TestNet::new().expect("attacker net");
    let benign = TestNet::new().expect("benign net");
    let pin = PinDir::new("bf");
    let server = TestServer::start("0.0.0.0", 0).expect("server");
    let cfg = config(server.port, "");
    let mut daemon = Daemon::start(
        &pin,
        &[
            "--config",
            cfg.path(),
            "--iface",
            &attacker.host_if,
            "--iface",
            &benign.host_if,
        ],
        2,
    )
    .expect("daemon");

    // A benign user: two typos, then the right password.
    let b = addr(&benign, server.port);
    let typos = in_netns(&benign.ns, move || {
        let t = Duration::from_secs(2);
        [
            login(b, "alice", "wrong1", t),
            login(b, "alice", "wrong2", t),
            login(b, "alice", "right", t),
        ]
    })
    .unwrap();
    assert_eq!(typos, [Some(401), Some(401), Some(200)]);

    // A benign client polls throughout the attack.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let poller = {
        let (stop, ok, bad) = (stop.clone(), ok.clone(), bad.clone());
        let ns = benign.ns.clone();
        std::thread::spawn(move || {
            in_netns(&ns, move || {
                let end = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                    match request(
                        b,
                        "GET",
                        "/api/v1/accounts/42/balance",
                        &[],
                        b"",
                        Duration::from_secs(1),
                    ) {
                        Some(200) => ok.fetch_add(1, Ordering::Relaxed),
                        _ => bad.fetch_add(1, Ordering::Relaxed),
                    };
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        })
    };

    // The attacker hammers the login with wrong passwords until dropped.
    let a = addr(&attacker, server.port);
    let (failures, first, crossing, dropped) = in_netns(&attacker.ns, move || {
        let start = Instant::now();
        let mut crossing = None;
        for i in 0..500u32 {
            let sent = Instant::now();
            match login(a, "admin", &format!("guess{i}"), Duration::from_millis(300)) {
                Some(_) => {
                    // The 11th failure crosses "more than 10 in 1 min".
                    if i == 10 {
                        crossing = Some(sent);
                    }
                }
                None => return (i, start, crossing, Some(sent)),
            }
            // Paced, so the bound below is about the time to block (about
            // 0.4 s at most) and not about how fast this loop spins.
            std::thread::sleep(Duration::from_millis(2));
        }
        (500, start, crossing, None)
    })
    .unwrap();
    let dropped = dropped.expect("the attacker was never dropped");
    let crossing = crossing.expect("threshold crossed before the drop");
    println!(
        "brute force: {failures} attempts answered; first request -> drop {:.1} ms; \
         threshold-crossing request -> drop {:.1} ms",
        (dropped - first).as_secs_f64() * 1e3,
        (dropped - crossing).as_secs_f64() * 1e3
    );
    assert!(failures >= 11, "blocked before the threshold: {failures}");
    assert!(
        failures <= 200,
        "too slow to block: {failures} attempts answered"
    );

    // The daemon reports the finding, the decision and the block.
    let (block, lines) = expect_event(
        &mut daemon,
        Duration::from_secs(5),
        "block",
        &attacker.peer_ip,
    );
    let finding = lines
        .iter()
        .find(|v| v["kind"] == "login_bruteforce" && v["type"] == "finding")
        .unwrap_or_else(|| panic!("no login_bruteforce finding: {lines:?}"));
    assert_eq!(finding["src_ip"], attacker.peer_ip.as_str());
    assert_eq!(finding["action"], "block_ip");
    assert!(finding["detail"]["time_to_detect_ms"].is_u64());
    assert_eq!(block["ttl_s"], 600);
    println!(
        "time to mitigate (finding -> map entry): {} ms",
        block["time_to_mitigate_ms"]
    );
    assert!(!attacker.ping(), "the attacker's packets are dropped");

    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap().unwrap();
    let (ok, bad) = (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    assert!(ok > 10, "benign client served {ok} times");
    assert_eq!(bad, 0, "benign client failed {bad} times");
    assert!(served(&benign, server.port));
    // Nothing about the benign address, typos included.
    let lines: Vec<Value> = lines
        .into_iter()
        .chain(daemon.json_lines(100, Duration::from_secs(1)))
        .collect();
    assert!(
        !lines
            .iter()
            .any(|v| v["src_ip"] == benign.peer_ip.as_str()
                || v["target"] == benign.peer_ip.as_str()),
        "benign address reported: {lines:?}"
    );
    let blocks = list_json(&pin)["blocks"].clone();
    assert_eq!(blocks.as_array().unwrap().len(), 1, "{blocks}");
    assert_eq!(blocks[0]["origin"], "decision");
    assert!(daemon.stop());
}

#[test]
fn forged_token_blocked_allowlist_wins_expiry_and_repeat_offence() {
    let attacker = TestNet::new().expect("attacker net");
    let trusted = TestNet::new().expect("allowlisted net");
    let pin = PinDir::new("forge");
    let server = TestServer::start("0.0.0.0", 0).expect("server");
    let cfg = config(
        server.port,
        &format!(
            "[allowlist]\nentries = [\"127.0.0.0/8\", \"{}\"]\n\
             [decide]\nttl_factor = 2.0\n[decide.policy]\njwt_alg_none = {{ action = \"block_ip\", ttl = \"2s\" }}\n\
             [datapath]\nreap_interval = \"200ms\"\n",
            trusted.peer_ip
        ),
    );
    let mut daemon = Daemon::start(
        &pin,
        &[
            "--config",
            cfg.path(),
            "--iface",
            &attacker.host_if,
            "--iface",
            &trusted.host_if,
        ],
        2,
    )
    .expect("daemon");
    let forged = alg_none_token("mallory");

    // Allowlisted: recorded as such, never dropped.
    let (answered, dropped) = until_dropped(&trusted, server.port, forged.clone(), 5);
    assert_eq!((answered, dropped), (5, false));
    let (f, _) = expect_line(
        &mut daemon,
        Duration::from_secs(5),
        "allowlisted finding",
        |v| v["kind"] == "jwt_alg_none" && v["src_ip"] == trusted.peer_ip.as_str(),
    );
    assert_eq!(f["action"], "allowlisted");
    assert!(served(&trusted, server.port));

    // Forged token from the attacker: dropped after at most a few requests.
    let (answered, dropped) = until_dropped(&attacker, server.port, forged.clone(), 50);
    assert!(dropped, "alg none never dropped");
    assert!(answered <= 5, "{answered} requests answered first");
    let (first, _) = expect_event(
        &mut daemon,
        Duration::from_secs(5),
        "block",
        &attacker.peer_ip,
    );
    assert_eq!(
        (first["ttl_s"].as_u64(), first["offence"].as_u64()),
        (Some(2), Some(1))
    );

    // Expiry: the entry is swept and traffic resumes.
    expect_event(
        &mut daemon,
        Duration::from_secs(6),
        "unblock",
        &attacker.peer_ip,
    );
    assert!(
        served(&attacker, server.port),
        "traffic resumes after expiry"
    );

    // A repeat offence: blocked again, for twice as long.
    let (_, dropped) = until_dropped(&attacker, server.port, forged, 50);
    assert!(dropped);
    let (second, _) = expect_event(
        &mut daemon,
        Duration::from_secs(5),
        "block",
        &attacker.peer_ip,
    );
    assert_eq!(
        (second["ttl_s"].as_u64(), second["offence"].as_u64()),
        (Some(4), Some(2))
    );
    assert!(daemon.stop());
}

#[test]
fn dry_run_records_but_never_blocks() {
    let attacker = TestNet::new().expect("net");
    let pin = PinDir::new("dry");
    let server = TestServer::start("0.0.0.0", 0).expect("server");
    let cfg = config(server.port, "[decide]\ndry_run = true\n");
    let mut daemon = Daemon::start(
        &pin,
        &["--config", cfg.path(), "--iface", &attacker.host_if],
        1,
    )
    .expect("daemon");
    let (answered, dropped) = until_dropped(&attacker, server.port, alg_none_token("eve"), 30);
    assert_eq!((answered, dropped), (30, false), "dry run must not drop");
    let (f, lines) = expect_line(&mut daemon, Duration::from_secs(5), "finding", |v| {
        v["kind"] == "jwt_alg_none"
    });
    assert_eq!(f["action"], "dry_run");
    assert_eq!(f["detail"]["decision"]["would"], "block_ip");
    assert!(!lines.iter().any(|v| v["type"] == "block"));
    assert!(list_json(&pin)["blocks"].as_array().unwrap().is_empty());
    assert!(daemon.stop());
}

#[test]
fn restarted_daemon_keeps_enforcing_and_expires() {
    let attacker = TestNet::new().expect("net");
    let pin = PinDir::new("restart");
    let server = TestServer::start("0.0.0.0", 0).expect("server");
    let cfg = config(
        server.port,
        "[decide.policy]\njwt_alg_none = { action = \"block_ip\", ttl = \"5s\" }\n\
         [datapath]\nreap_interval = \"200ms\"\n",
    );
    let args = [
        "--config",
        cfg.path(),
        "--iface",
        &attacker.host_if,
        "--keep-attached",
    ];
    let mut daemon = Daemon::start(&pin, &args, 1).expect("daemon");
    let (_, dropped) = until_dropped(&attacker, server.port, alg_none_token("eve"), 50);
    assert!(dropped);
    expect_event(
        &mut daemon,
        Duration::from_secs(5),
        "block",
        &attacker.peer_ip,
    );
    let killed = Instant::now();
    daemon.kill9();
    // Still dropped with no daemon at all (pinned link and maps)...
    assert!(!attacker.ping(), "dropped while no daemon runs");
    // ...and with a restarted one, which sweeps the entry when it expires.
    let mut daemon = Daemon::start(&pin, &args, 1).expect("restarted daemon");
    assert!(!attacker.ping(), "dropped after the restart");
    // The restarted daemon expires the block it adopted.
    expect_event(
        &mut daemon,
        Duration::from_secs(10),
        "unblock",
        &attacker.peer_ip,
    );
    assert!(killed.elapsed() >= Duration::from_secs(3), "expired early");
    assert!(served(&attacker, server.port), "traffic resumes");
    assert!(daemon.stop());
}
