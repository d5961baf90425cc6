//! `cargo xtask bench-fleet`: the fleet's figures on a real redis-server
//! (loopback) with three fleet links, each on its own real kernel maps (an
//! unpinned datapath per node, as three hosts would have).
//!
//! - Propagation: blocks published on node A, timed until both B's and
//!   C's kernel maps hold them (polled), p50/p99; anchor: a raw Redis
//!   PUBLISH → message round trip in the same run.
//! - Redis load: commands Redis processed (INFO stats) per second while
//!   1,000 requests/s (10% failed logins, every one with a token) feed the
//!   shared counts; printed per 1k requests/s.
//!
//! Needs root (kernel maps).

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant, SystemTime},
};

use futures_util::StreamExt;
use jwtmon::{
    enforce::{Datapath, DatapathConfig, Maps},
    fleet::{Fleet, FleetConfig, Op, Parts},
    observe::Observation,
    parse::{Credentials, Request},
    target::Target,
};
use jwtmon_tests::redis::RedisServer;

/// A node's datapath, pinned under its own directory so the link and the
/// bench each hold a handle on the same kernel maps.
fn node_maps(name: &str) -> (Datapath, std::path::PathBuf) {
    let dir = std::path::PathBuf::from(format!(
        "/sys/fs/bpf/jwtmon-bench-fleet-{}-{name}",
        std::process::id()
    ));
    let cfg = DatapathConfig {
        max_blocked_ips: 65_536,
        max_blocked_cidrs: 1024,
        max_allowlist: 64,
        max_tracked_sources: 1024,
        pin_dir: dir.clone(),
        ..DatapathConfig::default()
    };
    let dp = Datapath::load(&cfg, true).expect("loading the datapath");
    (dp, dir)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Request `i` of the load: 500 clients, each with its own token; one
/// request in ten a failed login.
fn observation(i: u64) -> Observation {
    let client = i % 500;
    let ip: IpAddr = format!("198.51.{}.{}", client / 250, client % 250 + 1)
        .parse()
        .unwrap();
    let failed = i.is_multiple_of(10);
    Observation {
        time: SystemTime::now(),
        src: SocketAddr::new(ip, 40000),
        dst: "10.0.0.1:8080".parse().unwrap(),
        client_ip: ip,
        attributed: true,
        request: Request {
            method: if failed { "POST" } else { "GET" }.into(),
            path: if failed { "/login" } else { "/api/orders" }.into(),
            content_type: Some("application/json".into()),
            body: format!(r#"{{"username":"user{client}","password":"x"}}"#).into_bytes(),
            credentials: Some(Credentials::new(&format!(
                "Bearer token-of-client-{client}"
            ))),
            ..Request::default()
        },
        status: Some(if failed { 401 } else { 200 }),
        latency: None,
        unanswered: false,
        transport: jwtmon::capture::Transport::Tcp,
    }
}

#[tokio::main]
async fn main() {
    let redis = RedisServer::start(&["127.0.0.1"], None).expect("redis-server");
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let token = tokio_util::sync::CancellationToken::new();
    let mut nodes = Vec::new();
    let mut views = Vec::new();
    let mut keep = Vec::new();
    for name in ["node-a", "node-b", "node-c"] {
        let cfg = FleetConfig {
            redis_url: url.clone(),
            node_name: Some(name.into()),
            key_prefix: "bench".into(),
            ..FleetConfig::default()
        };
        let (dp, dir) = node_maps(name);
        let maps = Maps::open_pinned(&dir).expect("the link's handle");
        let (fleet, rx) = Fleet::new(&cfg);
        let (findings, findings_rx) = tokio::sync::mpsc::channel(1024);
        let parts = Parts {
            cfg: cfg.clone(),
            fleet: fleet.clone(),
            rx,
            maps,
            findings,
            rules: jwtmon::config::Config::default().fleet_rules(),
            metrics: None,
        };
        let first = jwtmon::fleet::connect(&cfg).await.expect("connect");
        tokio::spawn(jwtmon::fleet::run(parts, Some(first), token.clone()));
        nodes.push(fleet);
        views.push((dp, dir));
        keep.push(findings_rx);
    }
    let polls: Vec<Maps> = views
        .iter()
        .map(|(_, dir)| Maps::open_pinned(dir).expect("the bench's handle"))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Anchor: PUBLISH → message on a raw connection.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut sub = client.get_async_pubsub().await.unwrap();
    sub.subscribe("bench-anchor").await.unwrap();
    let mut stream = sub.into_on_message();
    let mut anchor = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        let _: () = redis::cmd("PUBLISH")
            .arg("bench-anchor")
            .arg("x")
            .query_async(&mut conn)
            .await
            .unwrap();
        stream.next().await.unwrap();
        anchor.push(t.elapsed().as_secs_f64() * 1e3);
    }

    // Propagation A → B and C, into the kernel maps: polled from a plain
    // thread (a tokio sleep would round every poll up to a millisecond).
    let n = 300u32;
    let publisher = nodes[0].clone();
    let lat_thread = std::thread::spawn(move || {
        let mut lat = Vec::new();
        let deadline = Instant::now() + Duration::from_mins(1);
        for i in 0..n {
            let target: Target = format!("203.0.{}.{}", i / 250, i % 250 + 1)
                .parse()
                .unwrap();
            let t = Instant::now();
            publisher.publish(Op::Block, &target, "bench", Some(Duration::from_mins(10)));
            loop {
                let b = polls[1]
                    .list_blocks()
                    .unwrap()
                    .iter()
                    .any(|e| e.target == target);
                let c = b
                    && polls[2]
                        .list_blocks()
                        .unwrap()
                        .iter()
                        .any(|e| e.target == target);
                if c {
                    break;
                }
                assert!(Instant::now() < deadline, "propagation stalled");
                std::thread::sleep(Duration::from_micros(20));
            }
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            std::thread::sleep(Duration::from_millis(2));
        }
        lat
    });
    let mut lat = tokio::task::spawn_blocking(move || lat_thread.join().unwrap())
        .await
        .unwrap();

    // Redis load under 1,000 requests/s spread over the three nodes.
    let processed = |text: String| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let rules = jwtmon::config::Config::default().fleet_rules();
    let count_calls = |nodes: &[Fleet]| -> u64 {
        nodes
            .iter()
            .map(|f| f.stats.commands.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    };
    let calls_before = count_calls(&nodes);
    let before = processed(redis.cli(&["INFO", "stats"]));
    let secs = 5u64;
    let start = Instant::now();
    for i in 0..1000 * secs {
        nodes[(i % 3) as usize]
            .tallies
            .record(&observation(i), &rules, "bench");
        let due = start + Duration::from_micros(i * 1000);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let elapsed = start.elapsed().as_secs_f64();
    let after = processed(redis.cli(&["INFO", "stats"]));
    // The two INFO calls count as commands too.
    let ops = (after.saturating_sub(before + 2)) as f64 / elapsed;
    let calls = count_calls(&nodes) - calls_before;
    token.cancel();
    for (dp, dir) in views {
        dp.shutdown(false);
        let _ = std::fs::remove_dir_all(&dir);
    }

    let (a50, a99) = (pct(&mut anchor, 0.5), pct(&mut anchor, 0.99));
    let (p50, p99) = (pct(&mut lat.clone(), 0.5), pct(&mut lat, 0.99));
    println!(
        "fleet propagation, node A -> kernel maps of B and C ({n} blocks, real redis-server on loopback)"
    );
    println!("  jwtmon          p50 {p50:7.3} ms   p99 {p99:7.3} ms   (goal p99 <= 50 ms)");
    println!(
        "  anchor PUBLISH  p50 {a50:7.3} ms   p99 {a99:7.3} ms   (raw pub/sub round trip, same run)"
    );
    println!(
        "  ratio           p50 {:7.1}x      p99 {:7.1}x",
        p50 / a50,
        p99 / a99
    );
    println!(
        "redis load at 1000 requests/s over 3 nodes (500 clients, own token each, 10% failed logins):"
    );
    println!("  {ops:.0} commands/s inside Redis (script calls included) per 1k req/s");
    println!(
        "  {:.0} round trips/s (Lua flushes every 100 ms per node, heartbeats, publishes) per 1k req/s",
        calls as f64 / elapsed
    );
}
