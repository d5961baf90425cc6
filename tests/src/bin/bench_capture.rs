//! `cargo xtask bench-capture`: the live capture ceiling on this machine.
//! `wrk` in a namespace drives the in-process test server on the host side
//! of a veth pair, first without jwtmon (baseline), then with the daemon
//! attached and sampling every request. Per load level it prints the
//! request rate, what the kernel sampled, ring-buffer loss, and the
//! daemon's CPU use; at the end, whether userspace parsed everything the
//! kernel sampled. Needs root and `wrk`.

use std::{process::Command, time::Duration};

use anyhow::{Context, Result, bail};
use jwtmon_tests::{
    PinDir,
    daemon::{Daemon, cli_ok},
    http::TestServer,
    netns::TestNet,
};
use serde_json::Value;

const PORT: u16 = 8080;
const SECS: u32 = 4;
const LEVELS: [u32; 4] = [1, 4, 16, 64];
const JWT: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInJvbGUiOiJ1c2VyIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE5MDAwMDAwMDB9.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJl";

/// Runs wrk from the namespace; returns requests completed and requests/s.
fn wrk(net: &TestNet, conns: u32) -> Result<(u64, f64)> {
    let url = format!("http://{}:{PORT}/api/v1/accounts/42/balance", net.host_ip);
    let out = Command::new("ip")
        .args(["netns", "exec", &net.ns, "wrk", "-t1"])
        .arg(format!("-c{conns}"))
        .arg(format!("-d{SECS}s"))
        .args(["--timeout", "2s", "-H"])
        .arg(format!("Authorization: Bearer {JWT}"))
        .arg(&url)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .context("wrk printed no request count")?;
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .context("wrk printed no rate")?;
    Ok((requests, rps))
}

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

fn counters(pin: &PinDir) -> Value {
    serde_json::from_str::<Value>(&cli_ok(pin, &["stats", "--json"]))
        .map(|v| v["counters"].clone())
        .unwrap_or_default()
}

fn delta(after: &Value, before: &Value, key: &str) -> u64 {
    after[key]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(before[key].as_u64().unwrap_or(0))
}

fn main() -> Result<()> {
    if !jwtmon_tests::is_root() {
        bail!("bench-capture needs root (namespaces, XDP)");
    }
    let net = TestNet::new()?;
    let server = TestServer::start(&net.host_ip, PORT)?;
    let ticks_per_s = 100.0; // USER_HZ on Linux

    let mut baseline = Vec::new();
    for c in LEVELS {
        baseline.push(wrk(&net, c)?.1);
    }

    // XDP on a veth switches it to its NAPI path, which costs on its own:
    // an enforce-only daemon (no capture) separates that from capture.
    let pin = PinDir::new("bench-capture");
    let iface = format!("{}:enforce", net.host_if);
    let daemon = Daemon::start(&pin, &["--iface", &iface, "--emit", "none"], 1)?;
    let mut enforce_only = Vec::new();
    for c in LEVELS {
        enforce_only.push(wrk(&net, c)?.1);
    }
    daemon.stop();

    let daemon = Daemon::start(&pin, &["--iface", &net.host_if, "--emit", "none"], 1)?;
    let pid = daemon.pid().context("daemon pid")?;
    println!("wrk -t1 for {SECS} s per level; server and wrk share the 2 cores with jwtmon");
    println!();
    println!(
        "| connections | req/s, no jwtmon | req/s, enforce only | req/s, enforce + capture | vs. no jwtmon | vs. enforce only | sampled | ringbuf full | lost % | jwtmon CPU (% of one core) | CPU µs / request |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut total_sampled = 0;
    for (i, c) in LEVELS.into_iter().enumerate() {
        let (base, enforce) = (baseline[i], enforce_only[i]);
        let before = counters(&pin);
        let t0 = cpu_ticks(pid);
        let (requests, rps) = wrk(&net, c)?;
        // Let the reader drain before reading counters.
        std::thread::sleep(Duration::from_millis(300));
        let cpu_s = (cpu_ticks(pid) - t0) as f64 / ticks_per_s;
        let after = counters(&pin);
        let sampled = delta(&after, &before, "sampled");
        let full = delta(&after, &before, "ringbuf_full");
        let rate_skipped = delta(&after, &before, "skipped_rate");
        total_sampled += sampled;
        let lost =
            100.0 * (full + rate_skipped) as f64 / (sampled + full + rate_skipped).max(1) as f64;
        println!(
            "| {c} | {base:.0} | {enforce:.0} | {rps:.0} | {:.2}x | {:.2}x | {sampled} | {full} | {lost:.2} | {:.1} | {:.2} |",
            rps / base,
            rps / enforce,
            100.0 * cpu_s / f64::from(SECS),
            1e6 * cpu_s / requests.max(1) as f64,
        );
    }
    drop(server);
    let log = daemon.stop_with_log();
    let parsed = log
        .lines()
        .filter(|l| l.contains("capture stopped"))
        .find_map(|l| {
            let stats = l.split("requests: ").nth(1)?;
            stats.split(',').next()?.trim().parse::<u64>().ok()
        });
    println!();
    match parsed {
        Some(n) => println!(
            "userspace parsed {n} requests of the {total_sampled} the kernel sampled ({:.2}%)",
            100.0 * n as f64 / total_sampled.max(1) as f64
        ),
        None => println!(
            "userspace stats not found in the daemon log: {}",
            log.lines().last().unwrap_or("")
        ),
    }
    Ok(())
}
