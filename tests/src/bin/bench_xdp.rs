//! `cargo xtask bench-xdp`: ns/packet of the XDP program per path, measured
//! in the kernel with BPF_PROG_TEST_RUN, next to a pass-everything baseline
//! program measured in the same run. Prints a Markdown table.

use std::time::Duration;

use anyhow::{Context, Result};
use aya::programs::{TestRun, TestRunOptions, Xdp};
use jwtmon::{
    enforce::DatapathConfig,
    enforce::{BlockSpec, Datapath, Maps, Role},
};
use jwtmon_tests::{frames::Frame, xdp_filter::XdpFilter};

const EXACT: u32 = 1_000_000;
const CIDRS: u32 = 100_000;
const TRIALS: usize = 5;
/// Alternating trial pairs per path against the anchor.
const PAIRED_TRIALS: usize = 11;

/// One trial: ns per run. The kernel's own per-run figure is rounded
/// down to whole ns (a 5% step at 20 ns), and the wall-clock time of a
/// test run includes a fixed set-up cost (several ms for some programs).
/// Timing `repeat` and `2 * repeat` runs and taking the difference keeps
/// the fraction and cancels the set-up.
fn trial(prog: &mut Xdp, frame: &[u8], repeat: u32) -> Result<f64> {
    let wall = |n: u32| -> Result<f64> {
        let started = std::time::Instant::now();
        prog.test_run(TestRunOptions {
            data_in: Some(frame),
            repeat: n,
            ..TestRunOptions::default()
        })
        .context("BPF_PROG_TEST_RUN")?;
        Ok(started.elapsed().as_nanos() as f64)
    };
    let repeat = repeat.max(1);
    let once = wall(repeat)?;
    let twice = wall(repeat.saturating_mul(2))?;
    Ok(((twice - once) / f64::from(repeat)).max(0.0))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median over trials, in ns per run.
fn measure(prog: &mut Xdp, frame: &[u8], repeat: u32) -> Result<f64> {
    let samples = (0..TRIALS)
        .map(|_| trial(prog, frame, repeat))
        .collect::<Result<Vec<_>>>()?;
    Ok(median(samples))
}

/// Two programs on the same frame, trials alternating so that drift in
/// the machine's speed hits both alike: the median of each and the median
/// of the per-pair ratios.
fn side_by_side(ours: &mut Xdp, theirs: &mut Xdp, frame: &[u8], repeat: u32) -> Result<Pair> {
    let (mut a, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..PAIRED_TRIALS {
        let x = trial(ours, frame, repeat)?;
        let y = trial(theirs, frame, repeat)?;
        a.push(x);
        b.push(y);
        r.push(x / y);
    }
    Ok(Pair {
        ours: median(a),
        theirs: median(b),
        ratio: median(r),
    })
}

/// A [`side_by_side`] result.
struct Pair {
    ours: f64,
    theirs: f64,
    ratio: f64,
}

/// A deterministic pseudo-random sequence (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn fill(maps: &mut Maps) -> Result<()> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let spec = |target: String| BlockSpec {
        target: target.parse().expect("generated target"),
        ttl: Some(Duration::from_hours(1)),
        reason: "bench".into(),
        origin: 0,
    };
    // Half v4, half v6; none in 203.0.113.0/24 or 2001:db8:ffff::/48, which
    // the pass-path frames use.
    for i in 0..EXACT {
        let r = rng.next();
        let t = if i % 2 == 0 {
            let o = (r as u32).to_be_bytes();
            format!("{}.{}.{}.{}", 1 + o[0] % 200, o[1], o[2], o[3])
        } else {
            format!(
                "2001:db9:{:x}:{:x}::{:x}",
                (r >> 48) as u16,
                (r >> 32) as u16,
                r as u16
            )
        };
        maps.block(&spec(t))?;
    }
    for i in 0..CIDRS {
        let r = rng.next();
        let t = if i % 2 == 0 {
            let o = (r as u32).to_be_bytes();
            format!("{}.{}.{}.0/24", 1 + o[0] % 200, o[1], o[2])
        } else {
            format!(
                "2001:dba:{:x}:{:x}::/64",
                (r >> 48) as u16,
                (r >> 32) as u16
            )
        };
        maps.block(&spec(t))?;
    }
    // The targets of the drop-path frames.
    for t in [
        "203.0.113.7",
        "2001:db8:ffff::7",
        "198.18.7.0/24",
        "2001:db8:eeee::/48",
    ] {
        maps.block(&spec(t.into()))?;
    }
    Ok(())
}

/// xdp-filter with its maps filled to capacity with other addresses plus
/// the drop targets of `cases`.
fn xdp_filter() -> Result<XdpFilter> {
    let mut xf = XdpFilter::load()?;
    let targets: [std::net::IpAddr; 2] = [
        "203.0.113.7".parse().expect("literal"),
        "2001:db8:ffff::7".parse().expect("literal"),
    ];
    for t in targets {
        xf.deny(t)?;
    }
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    // Half of the room to each family, as jwtmon's exact map is filled.
    for _ in 0..xf.capacity.saturating_sub(16) {
        let r = rng.next();
        xf.deny(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
            (1 + (r >> 56) as u32 % 200) << 24 | (r as u32 & 0x00ff_ffff),
        )))?;
        xf.deny(std::net::IpAddr::V6(std::net::Ipv6Addr::new(
            0x2001,
            0xdb9,
            (r >> 48) as u16,
            (r >> 32) as u16,
            0,
            0,
            0,
            r as u16,
        )))?;
    }
    Ok(xf)
}

/// `ours` next to xdp-filter on the exact-address rows of `cases` (it has
/// no CIDR matching): (row name, jwtmon vs. it).
fn xdp_filter_rows(
    ours: &mut Xdp,
    xf: &mut XdpFilter,
    cases: &[(&str, Vec<u8>)],
    repeat: u32,
) -> Result<Vec<(String, Pair)>> {
    let mut out = Vec::new();
    for (name, frame) in cases.iter().filter(|c| !c.0.contains("CIDR match")) {
        out.push((
            (*name).to_string(),
            side_by_side(ours, &mut xf.prog, frame, repeat)?,
        ));
    }
    Ok(out)
}

fn xdp_tools_version() -> String {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "xdp-tools"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "?".into())
}

fn main() -> Result<()> {
    let repeat: u32 = std::env::args()
        .skip_while(|a| a != "--repeat")
        .nth(1)
        .map(|v| v.parse())
        .transpose()
        .context("--repeat N")?
        .unwrap_or(1_000_000);
    let cfg = DatapathConfig {
        max_blocked_ips: EXACT + 16,
        max_blocked_cidrs: CIDRS + 16,
        ..DatapathConfig::default()
    };
    let mut dp = Datapath::load(&cfg, false).context("loading (run as root)")?;
    let mut maps = dp.take_maps()?;

    let v4_pass = Frame::v4("203.0.113.200").build();
    let v6_pass = Frame::v6("2001:db8:ffff::200").build();
    let mut rows: Vec<(String, f64)> = Vec::new();

    let baseline = {
        let base = jwtmon::enforce::datapath::baseline_program(&mut dp)?;
        measure(base, &v4_pass, repeat)?
    };
    let prog = dp.xdp()?;
    rows.push((
        "IPv4 pass, empty maps".into(),
        measure(prog, &v4_pass, repeat)?,
    ));
    rows.push((
        "IPv6 pass, empty maps".into(),
        measure(prog, &v6_pass, repeat)?,
    ));

    if std::env::args().any(|a| a == "--empty-only") {
        for (name, ns) in &rows {
            println!("{name}: {ns:.1} ns (baseline {baseline:.1})");
        }
        return Ok(());
    }
    eprintln!("filling {EXACT} exact and {CIDRS} CIDR entries...");
    fill(&mut maps)?;
    let prog = dp.xdp()?;
    let cases = [
        (
            "IPv4 pass, 1M exact + 100k CIDR (no match)",
            Frame::v4("203.0.113.200").build(),
        ),
        ("IPv4 drop, exact match", Frame::v4("203.0.113.7").build()),
        ("IPv4 drop, CIDR match", Frame::v4("198.18.7.9").build()),
        (
            "IPv6 pass, 1M exact + 100k CIDR (no match)",
            Frame::v6("2001:db8:ffff::200").build(),
        ),
        (
            "IPv6 drop, exact match",
            Frame::v6("2001:db8:ffff::7").build(),
        ),
        (
            "IPv6 drop, CIDR match",
            Frame::v6("2001:db8:eeee::9").build(),
        ),
    ];
    for (name, frame) in &cases {
        rows.push(((*name).into(), measure(prog, frame, repeat)?));
    }
    // The filter's equal is the enforce role's program (it never samples);
    // role "both" also reads the sampling knobs for every passed packet.
    let anchor = match xdp_filter() {
        Ok(mut xf) => {
            let mut all = Vec::new();
            for (role, label) in [(Role::Enforce, "enforce"), (Role::Both, "both")] {
                let prog = dp.xdp_for(role)?;
                for (name, p) in xdp_filter_rows(prog, &mut xf, &cases, repeat)? {
                    all.push((format!("{name}, role {label}"), p));
                }
            }
            Some((xf.capacity, all))
        }
        Err(e) => {
            eprintln!("xdp-filter anchor unavailable: {e:#}");
            None
        }
    };

    println!(
        "BPF_PROG_TEST_RUN, repeat {repeat}, median of {TRIALS} trials (wall-clock difference of N and 2N runs, / N), one core"
    );
    println!();
    println!("| path | ns/packet | vs. pass-all baseline | Mpps at this cost |");
    println!("|---|---:|---:|---:|");
    println!(
        "| baseline: empty XDP program (XDP_PASS) | {baseline:.1} | 1.00x | {:.1} |",
        1e3 / baseline
    );
    for (name, ns) in &rows {
        println!(
            "| {name} | {ns:.1} | {:.2}x | {:.1} |",
            ns / baseline,
            1e3 / ns
        );
    }
    if let Some((capacity, anchor)) = anchor {
        println!();
        println!(
            "Side by side with xdp-filter (xdp-tools {}, no dispatcher, its maps at their {capacity}-entry capacity; jwtmon with 1M exact + 100k CIDR), same frames, same run:",
            xdp_tools_version()
        );
        println!();
        println!("| path | jwtmon ns | xdp-filter ns | ratio (goal <= 1.00x) |");
        println!("|---|---:|---:|---:|");
        for (name, p) in &anchor {
            println!(
                "| {name} | {:.1} | {:.1} | {:.2}x{} |",
                p.ours,
                p.theirs,
                p.ratio,
                if p.ratio <= 1.0 { "" } else { " (not met)" }
            );
        }
        println!();
        println!(
            "(trials alternate between the two programs, {PAIRED_TRIALS} pairs per path; the ratio is the median of the pairs' ratios)"
        );
    }
    let worst = rows.iter().map(|r| r.1).fold(0.0, f64::max);
    println!();
    println!(
        "worst path {worst:.1} ns/packet; a 10 GbE line-rate 64-byte packet allows 67.2 ns; goal <= 30 ns: {}",
        if worst <= 30.0 { "met" } else { "NOT met" }
    );
    Ok(())
}
