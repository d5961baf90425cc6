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
//! Two phases on fresh addresses: jwtmon alone, then jwtmon with fail2ban
//! running on the same traffic (fail2ban's bans fork `nft`, which competes
//! for this machine's two cores).
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

/// Runs each attacker in turn (at most 10 minutes in all).
fn attack_all(
    ns: &str,
    sources: &[IpAddr],
    first_user: usize,
    target: SocketAddr,
) -> Result<Vec<Run>> {
    let began = Instant::now();
    let mut runs = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        // One username per attacker, so no credential-stuffing finding
        // (many addresses, one user) blocks anyone before its own crossing.
        runs.push(attack(ns, *src, target, format!("user{}", first_user + i))?);
        if began.elapsed() > Duration::from_mins(10) {
            println!("stopping after 10 minutes");
            break;
        }
    }
    Ok(runs)
}

fn ms(a: Instant, b: Instant) -> f64 {
    b.saturating_duration_since(a).as_secs_f64() * 1e3
}

/// The jwtmon rows of one phase; returns (p50, p99) of the first drop.
fn jwtmon_rows(label: &str, runs: &[Run], blocks: &[serde_json::Value]) -> (f64, f64) {
    let jw: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.dropped.map(|d| ms(r.crossing, d)))
        .collect();
    let mitigate: Vec<f64> = blocks
        .iter()
        .filter(|v| runs.iter().any(|r| v["target"] == r.ip.as_str()))
        .filter_map(|v| v["time_to_mitigate_ms"].as_f64())
        .collect();
    let out = summary(
        &format!("jwtmon {label}: first dropped request"),
        jw,
        runs.len(),
    );
    summary(
        &format!("jwtmon {label}: finding -> map entry"),
        mitigate,
        runs.len(),
    );
    out
}

fn main() -> Result<()> {
    let attackers: u8 = std::env::args()
        .skip_while(|a| a != "--attackers")
        .nth(1)
        .map(|v| v.parse())
        .transpose()
        .context("--attackers N (1..=120)")?
        .unwrap_or(100)
        .clamp(1, 120);
    if !jwtmon_tests::is_root() {
        bail!("needs root (namespaces, XDP, nftables)");
    }
    let host = Netns::new("srv")?;
    let net = TestNet::behind(&host)?;
    // Two sets: one for jwtmon alone, one with fail2ban running too.
    let mut sources = Vec::new();
    for i in 0..2 * attackers {
        sources.push(net.add_peer_addr(10 + i)?.parse::<IpAddr>()?);
    }
    let (alone, shared) = sources.split_at(usize::from(attackers));
    let log = std::env::temp_dir().join(format!("jwtmon-bench-latency-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let server = {
        let log = log.clone();
        in_netns(&host.name, move || {
            TestServer::start_logged("0.0.0.0", PORT, &log)
        })??
    };
    let cfg =
        std::env::temp_dir().join(format!("jwtmon-bench-latency-{}.toml", std::process::id()));
    // What is timed is one address crossing its own threshold: the
    // service-wide campaign and per-network views would (rightly) block
    // the later attackers of this /24 before their 11th failure.
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\nemit = \"findings\"\n[capture]\nports = [{PORT}]\n\
             [decide]\nmax_blocks_per_minute = 1000\n\
             [detect.auth]\ncampaign_failures = 1000000\nstuffing_usernames_per_network = 1000000\n"
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
        "{attackers} attacker addresses per phase, each: failed POST /login until dropped \
         (threshold: more than {THRESHOLD} in 60 s); phase 1 jwtmon alone, phase 2 with \
         fail2ban on the same traffic"
    );
    let alone_runs = attack_all(&net.ns, alone, 0, target)?;
    // fail2ban starts on an empty log, so it bans only phase 2's attackers.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)?
        .set_len(0)?;
    let f2b = Fail2ban::start(&host.name, &log, THRESHOLD + 1, Duration::from_mins(1))?;
    let shared_runs = attack_all(&net.ns, shared, alone.len(), target)?;
    // fail2ban polls its log once a second: give it time for the last ones.
    std::thread::sleep(Duration::from_secs(3));
    let blocks: Vec<serde_json::Value> = daemon
        .json_lines(usize::MAX, Duration::from_secs(2))
        .into_iter()
        .filter(|v| v["type"] == "block")
        .collect();
    let fb: Vec<f64> = shared_runs
        .iter()
        .filter_map(|r| f2b.banned_at(&r.ip).map(|b| ms(r.crossing, b)))
        .collect();
    println!();
    println!(
        "| system: threshold-crossing request -> | runs | p50 ms | p90 ms | p99 ms | max ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let (a50, a99) = jwtmon_rows("alone", &alone_runs, &blocks);
    let (j50, j99) = jwtmon_rows("next to fail2ban", &shared_runs, &blocks);
    let (f50, f99) = summary(
        "fail2ban 1.0 (polling, nftables): ban in nftables",
        fb,
        shared_runs.len(),
    );
    println!();
    println!(
        "fail2ban / jwtmon (same phase): p50 {:.0}x, p99 {:.0}x",
        f50 / j50,
        f99 / j99
    );
    println!(
        "goal jwtmon p99 <= 1 ms: alone {a99:.2} ms (p50 {a50:.2}) {}, next to fail2ban {j99:.2} ms {}",
        if a99 <= 1.0 { "met" } else { "NOT met" },
        if j99 <= 1.0 { "met" } else { "NOT met" }
    );
    for (label, runs) in [("alone", &alone_runs), ("next to fail2ban", &shared_runs)] {
        // Where the tail is: the slowest runs and their place in the
        // sequence (the first ones also pay for cold caches).
        let mut slow: Vec<(usize, f64)> = runs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.dropped.map(|d| (i + 1, ms(r.crossing, d))))
            .collect();
        slow.sort_by(|a, b| b.1.total_cmp(&a.1));
        let slow: Vec<String> = slow
            .iter()
            .take(5)
            .map(|(i, v)| format!("#{i} {v:.2} ms"))
            .collect();
        println!("slowest jwtmon runs {label}: {}", slow.join(", "));
        let missing: Vec<&str> = runs
            .iter()
            .filter(|r| r.dropped.is_none())
            .map(|r| r.ip.as_str())
            .collect();
        if !missing.is_empty() {
            println!("never dropped by jwtmon ({label}): {missing:?}");
        }
    }
    drop(daemon);
    drop(f2b);
    drop(server);
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&cfg);
    Ok(())
}
