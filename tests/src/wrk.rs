//! Driving Debian's `wrk` from a namespace, and reading a process's CPU
//! time, for the benchmarks.

use anyhow::{Context, Result, bail};

/// One thread, `conns` connections for `secs` seconds, a 2 s timeout and
/// one extra header: the benchmarks' load.
pub fn load(conns: u32, secs: u32, header: &str) -> Vec<String> {
    vec![
        "-t1".into(),
        format!("-c{conns}"),
        format!("-d{secs}s"),
        "--timeout".into(),
        "2s".into(),
        "-H".into(),
        header.into(),
    ]
}

/// Runs `wrk ARGS... URL` in namespace `ns`; returns requests completed
/// and requests/s as wrk printed them.
pub fn run(ns: &str, args: &[String], url: &str) -> Result<(u64, f64)> {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "wrk"])
        .args(args)
        .arg(url)
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

/// User + system CPU seconds of a process so far (0 when it is gone).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line, in USER_HZ (100) ticks.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
}
