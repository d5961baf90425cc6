//! `cargo xtask bench-tls`: what seeing HTTPS costs. A real nginx (Debian's,
//! OpenSSL 3, one worker) serves TLS on the host end of a veth pair; `wrk`
//! in the namespace drives it over keep-alive HTTPS connections. Three
//! configurations, interleaved over rounds so drift hits all alike: no
//! jwtmon (the anchor), jwtmon enforcing in XDP without capture, and
//! jwtmon with `[capture.tls]` on, analysing every request. It prints the
//! request rates and their ratios, and what the probes cost per request:
//! the kernel's own run time of the TLS programs (`bpf_stats_enabled`),
//! and the daemon's CPU. Needs root, nginx, wrk.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use jwtmon_tests::{
    PinDir, TempFile,
    daemon::Daemon,
    netns::TestNet,
    nginx::{Cert, Nginx},
};

const SECS: u32 = 5;
const ROUNDS: usize = 3;
const CONNS: u32 = 16;
const JWT: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInJvbGUiOiJ1c2VyIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE5MDAwMDAwMDB9.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJl";

/// wrk over HTTPS from the namespace: requests completed and requests/s.
fn wrk(net: &TestNet, port: u16) -> Result<(u64, f64)> {
    let url = format!("https://{}:{port}/api/v1/accounts/42/balance", net.host_ip);
    let args = jwtmon_tests::wrk::load(CONNS, SECS, &format!("Authorization: Bearer {JWT}"));
    jwtmon_tests::wrk::run(&net.ns, &args, &url)
}

/// Kernel run time (ns) and runs of the TLS programs so far.
fn probe_runs() -> (u64, u64) {
    let mut ns = 0;
    let mut runs = 0;
    for p in aya::programs::loaded_programs().flatten() {
        let name = p.name_as_str().unwrap_or("");
        if [
            "jwtmon_tls",
            "jwtmon_accept",
            "jwtmon_close",
            "jwtmon_sock_io",
        ]
        .iter()
        .any(|n| name.starts_with(n))
        {
            ns += u64::try_from(p.run_time().as_nanos()).unwrap_or(u64::MAX);
            runs += p.run_count();
        }
    }
    (ns, runs)
}

/// Sets `kernel.bpf_stats_enabled`; returns the old value.
fn bpf_stats(on: bool) -> String {
    let path = "/proc/sys/kernel/bpf_stats_enabled";
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "0".into());
    let _ = std::fs::write(path, if on { "1" } else { "0" });
    old.trim().to_string()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<()> {
    if !jwtmon_tests::is_root() {
        bail!("bench-tls needs root (namespaces, XDP, uprobes)");
    }
    let net = TestNet::new()?;
    let cert = Cert::generate();
    let port = jwtmon_tests::free_port();
    let _nginx = Nginx::start_with(port, "ssl", &cert.server_block())?;
    let old_stats = bpf_stats(true);
    let pin = PinDir::new("bench-tls");
    let iface = net.host_if.clone();
    // (label, config; None = no daemon)
    let configs: [(&str, Option<&str>); 4] = [
        ("no jwtmon (anchor)", None),
        ("jwtmon, XDP enforce only", Some("[capture]\nports = []\n")),
        (
            "jwtmon, TLS probes on, copying paused (sample_rate = 0)",
            Some("[capture]\nports = []\nsample_rate = 0\n[capture.tls]\nenabled = true\n"),
        ),
        (
            "jwtmon, TLS capture on (every request analysed)",
            Some(
                "[capture]\nports = []\n[capture.tls]\nenabled = true\n\
                 [detect.rate]\nceiling_per_s = 0\n",
            ),
        ),
    ];
    let files: Vec<Option<TempFile>> = configs
        .iter()
        .map(|(_, c)| c.map(|c| TempFile::new("bench-tls", c)))
        .collect();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    // Per configuration: requests, kernel program ns and runs, daemon CPU s.
    let mut cost = vec![(0u64, 0u64, 0u64, 0.0f64); configs.len()];
    for _ in 0..ROUNDS {
        for (i, file) in files.iter().enumerate() {
            let Some(file) = file else {
                rates[i].push(wrk(&net, port)?.1);
                continue;
            };
            let d = Daemon::start(
                &pin,
                &["--config", file.path(), "--iface", &iface, "--emit", "none"],
                1,
            )?;
            let pid = d.pid().context("daemon pid")?;
            let (ns0, runs0) = probe_runs();
            let cpu0 = jwtmon_tests::wrk::cpu_seconds(pid);
            let (requests, rps) = wrk(&net, port)?;
            std::thread::sleep(Duration::from_millis(300));
            let (ns1, runs1) = probe_runs();
            let c = &mut cost[i];
            c.0 += requests;
            c.1 += ns1.saturating_sub(ns0);
            c.2 += runs1.saturating_sub(runs0);
            c.3 += jwtmon_tests::wrk::cpu_seconds(pid) - cpu0;
            rates[i].push(rps);
            d.stop();
        }
    }
    bpf_stats(old_stats == "1");
    let rates: Vec<f64> = rates.into_iter().map(median).collect();
    let anchor = rates[0];
    println!(
        "nginx (1 worker, OpenSSL 3, TLS 1.3, keep-alive) on a veth; wrk -t1 -c{CONNS} for {SECS} s; \
         median of {ROUNDS} interleaved rounds; nginx, wrk and jwtmon share the 2 cores"
    );
    println!();
    println!(
        "| configuration | req/s | vs. no jwtmon | CPU µs / request (2 cores / rate) | TLS program runs / request | their kernel time µs / request | daemon CPU µs / request |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (i, (label, _)) in configs.iter().enumerate() {
        let (requests, ns, runs, cpu) = cost[i];
        let per = |v: f64| v / requests.max(1) as f64;
        println!(
            "| {label} | {:.0} | {:.2}x | {:.1} | {:.1} | {:.2} | {:.2} |",
            rates[i],
            rates[i] / anchor,
            2e6 / rates[i],
            per(runs as f64),
            per(ns as f64) / 1000.0,
            per(cpu * 1e6),
        );
    }
    // Both cores are saturated in every row, so the CPU a request costs is
    // 2 cores / rate. The paused row runs the probes but copies nothing:
    // what it adds over enforce-only is the uprobe traps themselves.
    let (paused_req, _, paused_runs, _) = cost[2];
    let runs_per_req = paused_runs as f64 / paused_req.max(1) as f64;
    let trap_us = (2e6 / rates[2] - 2e6 / rates[1]) / runs_per_req.max(1.0);
    println!();
    println!(
        "probe hits cost about {trap_us:.1} µs each here (uprobe int3 + single-step and the uretprobe \
         return, in a VM), {runs_per_req:.1} per request (nginx's and wrk's own SSL calls)"
    );
    let ratio = rates[3] / anchor;
    println!(
        "goal: TLS capture on >= 0.95x of no jwtmon: {} ({ratio:.2}x)",
        if ratio >= 0.95 { "met" } else { "not met" }
    );
    Ok(())
}
