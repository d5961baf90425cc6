//! `cargo xtask bench-start`: time from starting `jwtmon run` to its
//! "attached" line, cold (no pinned maps: every map is created) and warm
//! (the pinned maps of the previous run are reused), on a veth pair in a
//! throw-away namespace. The anchor, in the same run, is the cold start with
//! the per-source map at the former fixed capacity of 1,000,000 entries.

use std::time::{Duration, Instant};

use anyhow::Result;
use jwtmon_tests::{PinDir, daemon::Daemon, netns::TestNet};

const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Starts and stops the daemon `RUNS` times; `cold` resets the maps first.
fn starts(net: &TestNet, extra: &[&str], cold: bool) -> Result<Vec<Duration>> {
    let pin = PinDir::new("start");
    let iface = net.host_if.clone();
    let mut out = Vec::new();
    for _ in 0..RUNS {
        if cold {
            jwtmon_tests::daemon::cli(&pin, &["reset", "--yes"]);
        }
        let mut args = vec!["--iface", iface.as_str(), "--emit", "none"];
        args.extend_from_slice(extra);
        let t = Instant::now();
        let d = Daemon::start(&pin, &args, 1)?;
        out.push(t.elapsed());
        d.stop();
    }
    jwtmon_tests::daemon::cli(&pin, &["reset", "--yes"]);
    Ok(out)
}

fn main() -> Result<()> {
    anyhow::ensure!(jwtmon_tests::is_root(), "bench-start needs root");
    let net = TestNet::new()?;
    let anchor_cfg = std::env::temp_dir().join(format!("jwtmon-start-{}.toml", std::process::id()));
    std::fs::write(&anchor_cfg, "[datapath]\nmax_tracked_sources = 1000000\n")?;
    let anchor_path = anchor_cfg.to_string_lossy().to_string();
    let cold = starts(&net, &[], true)?;
    let warm = starts(&net, &[], false)?;
    let anchor = starts(&net, &["--config", &anchor_path], true)?;
    std::fs::remove_file(&anchor_cfg).ok();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let show = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.0}", ms(*d)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("start to attached, {RUNS} runs each (ms)      median   runs");
    println!(
        "cold, default config                   {:8.0}   {}",
        ms(median(cold.clone())),
        show(&cold)
    );
    println!(
        "warm (pinned maps reused)              {:8.0}   {}",
        ms(median(warm.clone())),
        show(&warm)
    );
    println!(
        "anchor: cold, max_tracked_sources=1M   {:8.0}   {}",
        ms(median(anchor.clone())),
        show(&anchor)
    );
    println!(
        "ratio cold/anchor {:.2}x; goal: attached within 1000 ms",
        ms(median(cold)) / ms(median(anchor))
    );
    Ok(())
}
