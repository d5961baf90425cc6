//! Three API hosts act as one through a real redis-server. Each host is a
//! namespace with its own NIC (XDP attached), pin dir, state dir, metrics
//! and HTTP server, and one client namespace of its own; Redis runs in the
//! root namespace, reached over an uplink. Shown live:
//! - a block made on host A drops the attacker's packets on B and C;
//! - a brute force split 4-4-4 over the hosts (threshold 10) is found from
//!   the fleet totals and blocked fleet-wide;
//! - one token used from 4 addresses over the 3 hosts raises
//!   `jwt_replay_multi_ip`, and one used over its rate ceiling spread over
//!   the hosts raises `rate_spike_token`;
//! - with Redis stopped every host still blocks locally, and a block made
//!   meanwhile reaches the others once Redis is back.
//!
//! Needs root.

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use jwtmon_tests::{
    PinDir, TempFile,
    client::{call, login_from},
    daemon::{Daemon, cli, list_targets},
    http::TestServer,
    netns::{Netns, TestNet, Uplink, in_netns},
    redis::RedisServer,
};
use serde_json::Value;

const PASSWORD: &str = "fleet-test-secret";

/// One host: server namespace, uplink to Redis, client namespace, daemon.
struct Host {
    name: &'static str,
    clients: TestNet,
    _uplink: Uplink,
    server: Netns,
    pin: PinDir,
    daemon: Option<Daemon>,
    cfg: TempFile,
    _http: TestServer,
    port: u16,
}

impl Host {
    fn addr(&self) -> SocketAddr {
        format!("{}:{}", self.clients.host_ip, self.port)
            .parse()
            .unwrap()
    }

    /// Gives the client namespace the extra address `ip` (routed back
    /// from the server namespace), for attackers shared by all hosts.
    fn add_client(&self, ip: &str) {
        self.clients
            .exec(&[
                "ip",
                "addr",
                "add",
                &format!("{ip}/32"),
                "dev",
                &self.clients.peer_if,
            ])
            .unwrap();
        self.server
            .ip(&[
                "route",
                "add",
                &format!("{ip}/32"),
                "dev",
                &self.clients.host_if,
            ])
            .unwrap();
    }

    fn blocks(&self) -> Vec<String> {
        list_targets(&self.pin, "blocks")
    }

    fn d(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("running")
    }
}

fn start_host(
    name: &'static str,
    redis_port: u16,
    pw_file: &str,
    server: Netns,
    uplink: Uplink,
) -> Host {
    let clients = TestNet::behind(&server).expect("client namespace");
    let port = 8080;
    let http = in_netns(&server.name, move || TestServer::start("0.0.0.0", port))
        .expect("namespace")
        .expect("http server");
    let pin = PinDir::new(&format!("fleet-{name}"));
    let cfg = TempFile::new(
        "fleet",
        &format!(
            "[daemon]\nemit = \"findings\"\n[capture]\nports = [{port}]\nresponse_timeout = \"2s\"\n\
             [detect.auth]\nbruteforce_failures = 10\n[detect.rate]\nceiling_per_s = 3\n\
             [fleet]\nredis_url = \"redis://{}:{redis_port}\"\npassword_file = \"{pw_file}\"\n\
             node_name = \"{name}\"\nkey_prefix = \"jwtmon-test\"\n",
            uplink.root_ip
        ),
    );
    let daemon = Daemon::start_in(
        &server.name,
        &pin,
        &["--config", cfg.path(), "--iface", &clients.host_if],
        1,
    )
    .expect("daemon");
    Host {
        name,
        clients,
        _uplink: uplink,
        server,
        pin,
        daemon: Some(daemon),
        cfg,
        _http: http,
        port,
    }
}

fn wait(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < end, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Findings any host printed, gathered until `want` matches one.
fn fleet_finding(
    hosts: &mut [Host],
    seen: &mut Vec<(String, Value)>,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((_, f)) = seen.iter().find(|(_, v)| want(v)) {
            return f.clone();
        }
        assert!(Instant::now() < end, "no such finding; saw {seen:#?}");
        for h in hosts.iter_mut() {
            let name = h.name.to_string();
            for v in h.d().json_lines(50, Duration::from_millis(50)) {
                seen.push((name.clone(), v));
            }
        }
    }
}

/// One GET from `src` in a host's client namespace; whether it answered.
fn get(h: &Host, src: &str, path: &str, token: Option<&str>) -> bool {
    let addr = h.addr();
    let src: IpAddr = src.parse().unwrap();
    let token = token.map(|t| format!("Bearer {t}"));
    let path = path.to_string();
    in_netns(&h.clients.ns, move || {
        let headers: Vec<(&str, &str)> = token
            .as_deref()
            .map(|t| ("Authorization", t))
            .into_iter()
            .collect();
        call(
            Some(src),
            addr,
            "GET",
            &path,
            &headers,
            b"",
            Duration::from_secs(2),
        )
        .is_some()
    })
    .expect("namespace")
}

fn failed_login(h: &Host, src: &str, user: &str) -> Option<u16> {
    let addr = h.addr();
    let src: IpAddr = src.parse().unwrap();
    let user = user.to_string();
    in_netns(&h.clients.ns, move || {
        login_from(
            Some(src),
            addr,
            "/login",
            &user,
            "wrong",
            Duration::from_secs(2),
        )
        .map(|(s, _)| s)
    })
    .expect("namespace")
}

#[test]
fn three_hosts_share_blocks_counts_and_survive_a_redis_outage() {
    let pw = TempFile::new("fleet-pw", PASSWORD);
    // Server namespaces and their uplinks first: Redis listens on the
    // uplinks' root-side addresses.
    let servers: Vec<Netns> = (0..3).map(|_| Netns::new("fleet").unwrap()).collect();
    let uplinks: Vec<Uplink> = servers.iter().map(|s| s.uplink().unwrap()).collect();
    let binds: Vec<String> = uplinks.iter().map(|u| u.root_ip.clone()).collect();
    let binds: Vec<&str> = binds.iter().map(String::as_str).collect();
    let mut redis = RedisServer::start(&binds, Some(PASSWORD)).expect("redis-server");
    let mut hosts: Vec<Host> = ["node-a", "node-b", "node-c"]
        .into_iter()
        .zip(servers.into_iter().zip(uplinks))
        .map(|(name, (server, up))| start_host(name, redis.port, pw.path(), server, up))
        .collect();
    let mut seen = Vec::new();

    // 1. A block made on A (its CLI, through its admin API) drops the
    //    attacker on B and C.
    let attacker = "10.99.0.7";
    for h in &hosts {
        h.add_client(attacker);
    }
    assert!(
        get(&hosts[1], attacker, "/", None),
        "B answers before the block"
    );
    let out = cli(
        &hosts[0].pin,
        &["block", attacker, "--ttl", "10m", "--reason", "drill"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for h in &hosts[1..] {
        wait(Duration::from_secs(3), "the block reaching B and C", || {
            h.blocks().contains(&attacker.to_string())
        });
        assert!(
            !get(h, attacker, "/", None),
            "{} still answers the attacker",
            h.name
        );
    }
    assert!(jwtmon_tests::daemon::entry_drops(&hosts[2].pin, attacker).unwrap_or(0) > 0);
    let listed = jwtmon_tests::daemon::list_json(&hosts[1].pin);
    let entry = listed["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["target"] == attacker)
        .cloned()
        .unwrap();
    assert_eq!(entry["origin"], "fleet", "{entry}");
    assert!(
        entry["reason"].as_str().unwrap().starts_with("node-a"),
        "{entry}"
    );

    // 2. A brute force split 4-4-4 (threshold 10): no host sees more than
    //    4, the fleet sees 12.
    let brute = "10.99.0.8";
    for h in &hosts {
        h.add_client(brute);
    }
    for h in &hosts {
        for _ in 0..4 {
            assert_eq!(failed_login(h, brute, "alice"), Some(401));
        }
    }
    let f = fleet_finding(&mut hosts, &mut seen, |v| {
        v["kind"] == "login_bruteforce" && v["src_ip"] == brute
    });
    assert_eq!(f["detail"]["fleet"], true, "{f}");
    let nodes: Vec<&str> = f["detail"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(nodes, ["node-a", "node-b", "node-c"], "{f}");
    for h in &hosts {
        wait(
            Duration::from_secs(3),
            "the brute force blocked fleet-wide",
            || h.blocks().contains(&brute.to_string()),
        );
    }

    // 3. One token from 4 addresses over the 3 hosts (more than 3).
    let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJib2IiLCJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJlLW9mLWEtc3RvbGVuLXRva2Vu";
    let users = [
        ("10.99.0.21", 0),
        ("10.99.0.22", 1),
        ("10.99.0.23", 2),
        ("10.99.0.24", 0),
    ];
    for (ip, h) in users {
        hosts[h].add_client(ip);
        assert!(get(&hosts[h], ip, "/api/orders", Some(token)));
    }
    let f = fleet_finding(&mut hosts, &mut seen, |v| {
        v["kind"] == "jwt_replay_multi_ip" && v["detail"]["fleet"] == true
    });
    assert!(f["detail"]["addresses"].as_u64().unwrap() >= 4, "{f}");

    // 3b. One token at 3 requests/s ceiling (30 per 10 s window): 25
    //     requests on each host stay under it locally, 75 are over it.
    let busy = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjYXJvbCIsImV4cCI6NDEwMjQ0NDgwMH0.YnVzeS10b2tlbi1zaWduYXR1cmU";
    for (i, h) in hosts.iter().enumerate() {
        let ip = format!("10.99.0.{}", 31 + i);
        h.add_client(&ip);
        for _ in 0..25 {
            assert!(get(h, &ip, "/api/items", Some(busy)));
        }
    }
    let f = fleet_finding(&mut hosts, &mut seen, |v| {
        v["kind"] == "rate_spike_token" && v["detail"]["fleet"] == true
    });
    assert!(f["detail"]["requests"].as_u64().unwrap() > 30, "{f}");

    // 4. Redis away: each host still blocks locally; a block made on A
    //    meanwhile reaches B and C once Redis is back.
    redis.stop();
    std::thread::sleep(Duration::from_millis(500));
    let late = "10.99.0.9";
    for h in &hosts {
        h.add_client(late);
    }
    let out = cli(&hosts[0].pin, &["block", late, "--ttl", "10m"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        hosts[0].blocks().contains(&late.to_string()),
        "A blocks locally"
    );
    assert!(!get(&hosts[0], late, "/", None));
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !hosts[1].blocks().contains(&late.to_string()),
        "nothing can reach B without Redis"
    );
    // Local detection and enforcement go on: a brute force on C alone.
    let local = "10.99.0.10";
    hosts[2].add_client(local);
    for _ in 0..11 {
        let _ = failed_login(&hosts[2], local, "carol");
    }
    wait(Duration::from_secs(5), "C blocking on its own", || {
        hosts[2].blocks().contains(&local.to_string())
    });
    redis.resume().expect("redis back");
    for h in &hosts[1..] {
        wait(
            Duration::from_secs(8),
            "the outage's block reaching B and C",
            || h.blocks().contains(&late.to_string()),
        );
    }
    // C's local block went out too, once Redis returned.
    wait(Duration::from_secs(8), "C's block reaching A", || {
        hosts[0].blocks().contains(&local.to_string())
    });

    let cfg = hosts[1].cfg.path().to_string();
    wait(
        Duration::from_secs(3),
        "three nodes in fleet status",
        || {
            let s = cli(
                &hosts[1].pin,
                &["--config", &cfg, "fleet", "status", "--json"],
            );
            serde_json::from_slice::<Value>(&s.stdout)
                .is_ok_and(|v| v["nodes"].as_array().is_some_and(|n| n.len() == 3))
        },
    );
    for h in &mut hosts {
        let log = h.daemon.take().unwrap().stop_with_log();
        assert!(
            log.contains("fleet: Redis lost") || log.contains("fleet: Redis unreachable"),
            "{log}"
        );
        assert_eq!(
            log.matches("fleet: Redis lost").count() + log.matches("Redis unreachable").count(),
            1,
            "logged once: {log}"
        );
    }
}

/// Bad fleet settings are clear errors at start: a wrong password or an
/// unreachable Redis with `fleet.required = true` (the daemon refuses to
/// start and says how to start alone), a password in the URL, a wrong
/// scheme; with `required = false` an unreachable Redis starts the daemon
/// alone.
#[test]
fn bad_fleet_settings_are_clear_errors_at_start() {
    let redis = RedisServer::start(&["127.0.0.1"], Some(PASSWORD)).expect("redis-server");
    let pin = PinDir::new("fleet-bad");
    let wrong = TempFile::new("fleet-pw", "not-the-password");
    let closed = jwtmon_tests::free_port();
    let cases = [
        (
            format!(
                "redis_url = \"redis://127.0.0.1:{}\"\npassword_file = \"{}\"\nrequired = true",
                redis.port,
                wrong.path()
            ),
            vec!["Redis at redis://127.0.0.1", "fleet.required = true"],
        ),
        (
            format!(
                "redis_url = \"redis://127.0.0.1:{closed}\"\nrequired = true\nconnect_timeout = \"500ms\""
            ),
            vec!["Redis at redis://127.0.0.1", "fleet.required = true"],
        ),
        (
            "redis_url = \"redis://admin:hunter2@127.0.0.1:6379\"".to_string(),
            vec!["no password in the URL", "password_file"],
        ),
        (
            "redis_url = \"http://127.0.0.1:6379\"".to_string(),
            vec!["must start with redis:// or rediss://"],
        ),
    ];
    for (fleet, wants) in cases {
        let cfg = TempFile::new("fleet-bad", &format!("[fleet]\n{fleet}\n"));
        let out = std::process::Command::new("timeout")
            .arg("30")
            .arg(jwtmon_tests::daemon::jwtmon_bin())
            .arg("--pin-dir")
            .arg(&pin.path)
            .env("JWTMON_STATE_DIR", &pin.state)
            .args(["--config", cfg.path(), "run", "--iface", "lo"])
            .output()
            .expect("jwtmon runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with {fleet}: {err}");
        assert_ne!(out.status.code(), Some(124), "hung with {fleet}");
        for want in wants {
            assert!(err.contains(want), "{want:?} not in: {err}");
        }
        assert!(!err.contains("hunter2"), "the password was echoed: {err}");
    }
    // Not required: an unreachable Redis starts the daemon alone.
    let net = TestNet::new().expect("test network");
    let cfg = TempFile::new(
        "fleet-alone",
        &format!(
            "[fleet]\nredis_url = \"redis://127.0.0.1:{closed}\"\nconnect_timeout = \"300ms\"\n"
        ),
    );
    let d = Daemon::start(&pin, &["--config", cfg.path(), "--iface", &net.host_if], 1)
        .expect("starts alone");
    let log = d.stop_with_log();
    assert!(log.contains("starting alone"), "{log}");
}
