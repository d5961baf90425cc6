//! `cargo xtask bench-latency`: detection-to-drop latency on the brute-force
//! scenario, jwtmon next to fail2ban on the same traffic in the same run.
//!
//! Topology, all in throw-away namespaces: a "server" namespace holds the
//! test HTTP server (writing an access log), the jwtmon daemon (XDP on its
//! veth end) and fail2ban (log-file jail on that access log, default
//! polling backend, nftables ban action, in that namespace's nftables
//! only); an "attacker" namespace holds N attacker addresses. Each attacker
//! address in turn sends failed `POST /login` requests, one connection
//! each, until one is not answered. Both systems use the same threshold
//! (more than 10 failures in a minute: the 11th crosses).
//!
//! - jwtmon: from sending the threshold-crossing request to sending the
//!   first request that was dropped (resolution: one request round trip).
//! - fail2ban: from sending the threshold-crossing request to its ban
//!   appearing in nftables (`nft monitor`). Its packets could not be seen
//!   dropping, since jwtmon drops them first; the ban entry is when its
//!   drop would start.
//!
//! Needs root, fail2ban and nftables.

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use jwtmon_tests::{
    PinDir,
    client::login_from,
    daemon::Daemon,
    fail2ban::Fail2ban,
    http::TestServer,
    netns::{Netns, TestNet, in_netns},
};

const PORT: u16 = 8080;
/// More than 10 failures in a minute; the 11th request crosses.
const THRESHOLD: u32 = 10;

/// One attacker's run.
struct Run {
    ip: String,
    crossing: Instant,
    dropped: Option<Instant>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn summary(name: &str, mut ms: Vec<f64>, of: usize) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let (p50, p90, p99) = (
        percentile(&ms, 0.5),
        percentile(&ms, 0.9),
        percentile(&ms, 0.99),
    );
    let max = ms.last().copied().unwrap_or(f64::NAN);
    println!(
        "| {name} | {}/{of} | {p50:.2} | {p90:.2} | {p99:.2} | {max:.2} |",
        ms.len()
    );
    (p50, p99)
}

fn attack(ns: &str, src: IpAddr, server: SocketAddr, user: String) -> Result<Run> {
    in_netns(ns, move || {
        let mut crossing = None;
        for i in 0..100u32 {
            let sent = Instant::now();
            let got = login_from(
                Some(src),
                server,
                "/login",
                &user,
                &format!("guess{i}"),
                Duration::from_millis(250),
            );
            match got {
                Some(_) if i == THRESHOLD => crossing = Some(sent),
                Some(_) => {}
                None => {
                    return Run {
                        ip: src.to_string(),
                        crossing: crossing.unwrap_or(sent),
                        dropped: crossing.map(|_| sent),
                    };
                }
            }
        }
        Run {
            ip: src.to_string(),
            crossing: crossing.unwrap_or_else(Instant::now),
            dropped: None,
        }
    })
}

fn main() -> Result<()> {
    let attackers: u8 = std::env::args()
        .skip_while(|a| a != "--attackers")
        .nth(1)
        .map(|v| v.parse())
        .transpose()
        .context("--attackers N (1..=200)")?
        .unwrap_or(100)
        .clamp(1, 200);
    if !jwtmon_tests::is_root() {
        bail!("needs root (namespaces, XDP, nftables)");
    }
    let host = Netns::new("srv")?;
    let net = TestNet::behind(&host)?;
    let mut sources = Vec::new();
    for i in 0..attackers {
        sources.push(net.add_peer_addr(10 + i)?.parse::<IpAddr>()?);
    }
    let log = std::env::temp_dir().join(format!("jwtmon-bench-latency-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let server = {
        let log = log.clone();
        in_netns(&host.name, move || {
            TestServer::start_logged("0.0.0.0", PORT, &log)
        })??
    };
    let f2b = Fail2ban::start(&host.name, &log, THRESHOLD + 1, Duration::from_mins(1))?;
    let cfg =
        std::env::temp_dir().join(format!("jwtmon-bench-latency-{}.toml", std::process::id()));
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\nemit = \"findings\"\n[capture]\nports = [{PORT}]\n\
             [decide]\nmax_blocks_per_minute = 1000\n"
        ),
    )?;
    let pin = PinDir::new("latency");
    let mut daemon = Daemon::start_in(
        &host.name,
        &pin,
        &[
            "--config",
            cfg.to_str().unwrap_or_default(),
            "--iface",
            &net.host_if,
        ],
        1,
    )?;
    let target: SocketAddr = format!("{}:{PORT}", net.host_ip).parse()?;

    println!(
        "{attackers} attacker addresses, each: failed POST /login until dropped \
         (threshold: more than {THRESHOLD} in 60 s)"
    );
    let began = Instant::now();
    let mut runs = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        // One username per attacker, so no credential-stuffing finding
        // (many addresses, one user) blocks anyone before its own crossing.
        runs.push(attack(&net.ns, *src, target, format!("user{i}"))?);
        if began.elapsed() > Duration::from_mins(10) {
            println!("stopping after 10 minutes");
            break;
        }
    }
    // fail2ban polls its log once a second: give it time for the last ones.
    std::thread::sleep(Duration::from_secs(3));
    let mitigate: Vec<f64> = daemon
        .json_lines(usize::MAX, Duration::from_secs(2))
        .iter()
        .filter(|v| v["type"] == "block")
        .filter_map(|v| v["time_to_mitigate_ms"].as_f64())
        .collect();

    let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1e3;
    let jw: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.dropped.map(|d| ms(r.crossing, d)))
        .collect();
    let fb: Vec<f64> = runs
        .iter()
        .filter_map(|r| f2b.banned_at(&r.ip).map(|b| ms(r.crossing, b)))
        .collect();
    println!();
    println!(
        "| system: threshold-crossing request -> | runs | p50 ms | p90 ms | p99 ms | max ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let (j50, j99) = summary("jwtmon (XDP): first dropped request", jw, runs.len());
    let n = mitigate.len();
    summary(
        "jwtmon: finding -> map entry (time_to_mitigate_ms)",
        mitigate,
        n,
    );
    let (f50, f99) = summary(
        "fail2ban 1.0 (polling, nftables): ban in nftables",
        fb,
        runs.len(),
    );
    println!();
    println!(
        "fail2ban / jwtmon: p50 {:.0}x, p99 {:.0}x; goal jwtmon p99 <= 10 ms: {}",
        f50 / j50,
        f99 / j99,
        if j99 <= 10.0 { "met" } else { "NOT met" }
    );
    let missing: Vec<&str> = runs
        .iter()
        .filter(|r| r.dropped.is_none())
        .map(|r| r.ip.as_str())
        .collect();
    if !missing.is_empty() {
        println!("never dropped by jwtmon: {missing:?}");
    }
    drop(daemon);
    drop(f2b);
    drop(server);
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&cfg);
    Ok(())
}
