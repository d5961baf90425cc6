//! `cargo xtask bench-capture`: the live capture ceiling on this machine.
//! `wrk` in a namespace drives the in-process test server on the host side
//! of a veth pair, first without jwtmon (baseline), then with the daemon
//! attached and sampling every request. Per load level it prints the
//! request rate, what the kernel sampled, ring-buffer loss, and the
//! daemon's CPU use; at the end, whether userspace parsed everything the
//! kernel sampled. Needs root and `wrk`.

use std::time::Duration;

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
    let args = jwtmon_tests::wrk::load(conns, SECS, &format!("Authorization: Bearer {JWT}"));
    jwtmon_tests::wrk::run(&net.ns, &args, &url)
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
        let t0 = jwtmon_tests::wrk::cpu_seconds(pid);
        let (requests, rps) = wrk(&net, c)?;
        // Let the reader drain before reading counters.
        std::thread::sleep(Duration::from_millis(300));
        let cpu_s = jwtmon_tests::wrk::cpu_seconds(pid) - t0;
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
