//! `cargo xtask fuzz`: every cargo-fuzz target of `tests/fuzz` (libFuzzer,
//! nightly), each for `--seconds` or `--runs`, from the committed seeds in
//! `tests/fuzz/seeds/TARGET` plus a working corpus under `target/`.
//! Prints the executions, speed and crashes of each target; any crash
//! fails the command (libFuzzer leaves the input in `target/fuzz-artifacts`).

use std::{path::Path, process::Command};

use anyhow::{Context, Result, bail};

use crate::{StatusOk, quiet_ok};

/// The targets, in `tests/fuzz/Cargo.toml` order.
pub const TARGETS: [&str; 9] = [
    "http",
    "record",
    "pcap",
    "reassembly",
    "jwt",
    "fields",
    "injection",
    "forwarded",
    "lists",
];

/// Runs each target in `only` (all when empty) for `seconds`, or `runs`
/// executions when given.
pub fn run(root: &Path, seconds: u64, runs: Option<u64>, only: &[String]) -> Result<()> {
    if !quiet_ok("cargo", &["+nightly", "fuzz", "--version"]) {
        println!("xtask fuzz: installing cargo-fuzz");
        Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked"])
            .env_remove("RUSTUP_TOOLCHAIN")
            .status_ok("`cargo install cargo-fuzz`")?;
    }
    let dir = root.join("tests/fuzz");
    let mut rows = Vec::new();
    for target in TARGETS
        .iter()
        .filter(|t| only.is_empty() || only.iter().any(|o| o == *t))
    {
        let corpus = root.join("target/fuzz-corpus").join(target);
        let artifacts = root.join("target/fuzz-artifacts").join(target);
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(&artifacts)?;
        let seeds = dir.join("seeds").join(target);
        let limit = match runs {
            Some(n) => format!("-runs={n}"),
            None => format!("-max_total_time={seconds}"),
        };
        let out = Command::new("cargo")
            .current_dir(root)
            .env_remove("RUSTUP_TOOLCHAIN")
            .args(["+nightly", "fuzz", "run", "--fuzz-dir"])
            .arg(&dir)
            .args(["--sanitizer", "none", "--release", target])
            .arg(&corpus)
            .arg(&seeds)
            .args(["--", &limit, "-print_final_stats=1"])
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .output()
            .with_context(|| format!("running fuzz target {target}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        let stat = |name: &str| -> u64 {
            log.lines()
                .filter_map(|l| l.strip_prefix(&format!("stat::{name}:")))
                .filter_map(|v| v.trim().parse().ok())
                .next_back()
                .unwrap_or(0)
        };
        let crashed = !out.status.success();
        if crashed {
            eprintln!("{log}");
        }
        rows.push((
            *target,
            stat("number_of_executed_units"),
            stat("average_exec_per_sec"),
            crashed,
        ));
    }
    println!(
        "{:<12} {:>14} {:>12} {:>8}",
        "target", "executions", "execs/s", "crashes"
    );
    for (t, n, speed, crashed) in &rows {
        println!("{t:<12} {n:>14} {speed:>12} {:>8}", u8::from(*crashed));
    }
    if rows.iter().any(|r| r.3) {
        bail!("a fuzz target crashed; the input is under target/fuzz-artifacts");
    }
    Ok(())
}
