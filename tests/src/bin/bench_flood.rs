//! `cargo xtask bench-flood [--requests N]`: memory under a flood. Writes
//! a capture of N requests (default 10,000,000), each from its own source
//! address with its own forged token and its own path, each answered
//! 401, then runs `jwtmon analyze` on it at the default configuration and
//! samples the process's resident memory as it goes. The anchor, in the
//! same run: the same analysis of the flood's first tenth. Flat memory
//! means the ratio of the two peaks stays near 1 while the input grows
//! ten times. Goal: a peak of at most 256 MiB.
//!
//! Live (root, with tcpreplay): a daemon at the default configuration on
//! the host side of a veth pair, the flood replayed at top speed from the
//! namespace side (the same two sizes), its RSS sampled the same way.
//!
//! `--write FILE` only writes the flood, for a profiler or a replay.

use std::{
    io::BufWriter,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jwtmon_tests::{
    PinDir,
    daemon::{Daemon, cli_ok, jwtmon_bin},
    netns::TestNet,
    pcapgen::tcp_frame,
};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

const GOAL_MIB: f64 = 256.0;
/// PSH|ACK.
const PSH_ACK: u8 = 0x18;
/// Requests per second of capture time.
const RATE: u64 = 100_000;

/// The `i`th source: 10.0.0.0/8 and then 2001:db8::/32, never the same.
fn source(i: u64) -> SocketAddr {
    let ip = match u32::try_from(i) {
        Ok(n) if n < 1 << 24 => IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n)),
        _ => IpAddr::V6(std::net::Ipv6Addr::from(
            0x2001_0db8_u128 << 96 | u128::from(i),
        )),
    };
    SocketAddr::new(ip, 40_000 + (i % 20_000) as u16)
}

/// Writes the flood; returns its size in bytes.
fn write_flood(path: &Path, n: u64) -> Result<u64> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = PcapWriter::with_header(
        BufWriter::with_capacity(1 << 20, file),
        PcapHeader::default(),
    )?;
    let server4: SocketAddr = "10.255.255.254:8080".parse()?;
    let server6: SocketAddr = "[2001:db8:ffff::1]:8080".parse()?;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let response = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
    for i in 0..n {
        let client = source(i);
        let server = if client.is_ipv4() { server4 } else { server6 };
        let claims = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"iss":"https://flood","sub":"user{i}","exp":4102444800,"jti":"f{i:x}"}}"#
        ));
        let sig = URL_SAFE_NO_PAD.encode((i ^ 0x5bd1_e995).to_le_bytes().repeat(4));
        let request = format!(
            "GET /api/v1/items/{i}/detail?ref={:x} HTTP/1.1\r\nHost: api.example\r\n\
             User-Agent: flood/{}\r\nAuthorization: Bearer {header}.{claims}.{sig}\r\n\r\n",
            i.wrapping_mul(0x9e37_79b9),
            i % 97
        );
        let t = Duration::from_secs(1_700_000_000) + Duration::from_nanos(i * 1_000_000_000 / RATE);
        let req = tcp_frame(client, server, (1, 1), PSH_ACK, request.as_bytes());
        let len = u32::try_from(request.len())?;
        let resp = tcp_frame(server, client, (1, 1 + len), PSH_ACK, response);
        for (at, frame) in [(t, req), (t + Duration::from_micros(5), resp)] {
            w.write_packet(&PcapPacket::new(at, u32::try_from(frame.len())?, &frame))?;
        }
    }
    drop(w);
    Ok(std::fs::metadata(path)?.len())
}

/// A field of `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What one analysis run measured.
struct Run {
    elapsed: Duration,
    /// (seconds since start, resident MiB).
    curve: Vec<(f64, f64)>,
    peak_mib: f64,
    findings: u64,
    /// Live: packets the kernel sampled, and samples lost to a full ring.
    sampled: Option<(u64, u64)>,
}

/// Samples a process's resident memory every 200 ms while `done` says
/// it is still working (at most `limit`); returns the run's figures.
fn sample(pid: u32, limit: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<Run> {
    let start = Instant::now();
    let mut curve = Vec::new();
    let mut peak_kib = 0;
    loop {
        if let Some(hwm) = status_kib(pid, "VmHWM:") {
            peak_kib = peak_kib.max(hwm);
        }
        if let Some(rss) = status_kib(pid, "VmRSS:") {
            curve.push((start.elapsed().as_secs_f64(), rss as f64 / 1024.0));
        }
        if done()? {
            break;
        }
        if start.elapsed() > limit {
            bail!("still running after {}", humantime::format_duration(limit));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(Run {
        elapsed: start.elapsed(),
        curve,
        peak_mib: peak_kib as f64 / 1024.0,
        findings: 0,
        sampled: None,
    })
}

/// Runs `jwtmon analyze` on `pcap`, sampling its resident memory.
fn analyze(pcap: &Path, config: &Path) -> Result<Run> {
    let out = tempfile_path("findings");
    let mut child = Command::new(jwtmon_bin())
        .args(["--config"])
        .arg(config)
        .args(["analyze", "--pcap"])
        .arg(pcap)
        .stdout(std::fs::File::create(&out)?)
        .stderr(Stdio::null())
        .spawn()
        .context("starting jwtmon analyze")?;
    let mut status = None;
    let run = sample(child.id(), Duration::from_hours(1), || {
        status = child.try_wait()?;
        Ok(status.is_some())
    });
    if run.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut run = run.context("jwtmon analyze")?;
    if let Some(s) = status.filter(|s| !s.success()) {
        bail!("jwtmon analyze failed: {s}");
    }
    run.findings = std::fs::read_to_string(&out)?.lines().count() as u64;
    std::fs::remove_file(&out).ok();
    Ok(run)
}

/// Replays `pcap` at top speed into a daemon on a veth pair, sampling the
/// daemon's resident memory until the replay is done and 2 s have passed.
fn live(pcap: &Path) -> Result<Run> {
    let net = TestNet::new()?;
    let pin = PinDir::new("bench-flood");
    let daemon = Daemon::start(&pin, &["--iface", &net.host_if, "--emit", "none"], 1)?;
    let pid = daemon.pid().context("daemon pid")?;
    let mut replay = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.ns,
            "tcpreplay",
            "--topspeed",
            "-q",
            "-i",
        ])
        .arg(&net.peer_if)
        .arg(pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting tcpreplay")?;
    let mut done_at = None;
    let run = sample(pid, Duration::from_mins(30), || {
        if done_at.is_none() && replay.try_wait()?.is_some() {
            done_at = Some(Instant::now());
        }
        Ok(done_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2)))
    });
    if run.is_err() {
        let _ = replay.kill();
        let _ = replay.wait();
    }
    let counters = serde_json::from_str::<serde_json::Value>(&cli_ok(&pin, &["stats", "--json"]))
        .map(|v| v["counters"].clone())
        .unwrap_or_default();
    daemon.stop();
    let mut run = run.context("the replay")?;
    let n = |k: &str| counters[k].as_u64().unwrap_or(0);
    run.sampled = Some((n("sampled"), n("ringbuf_full")));
    Ok(run)
}

fn tempfile_path(what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("jwtmon-bench-flood-{}-{what}", std::process::id()))
}

/// The table rows of a pair of runs: the first tenth (the anchor), then
/// the whole flood.
fn rows(what: &str, runs: &[(u64, Run)]) {
    let anchor = runs[0].1.peak_mib;
    for (i, (size, run)) in runs.iter().enumerate() {
        let which = if i == 0 {
            "anchor: the first tenth"
        } else {
            "the whole flood"
        };
        println!(
            "| {what}, {which} | {size} | {:.0} | {:.2}x |",
            run.peak_mib,
            run.peak_mib / anchor
        );
    }
}

/// Ten points of the curve, evenly spaced in time.
fn print_curve(run: &Run) {
    let step = (run.curve.len() / 10).max(1);
    let points: Vec<String> = run
        .curve
        .iter()
        .step_by(step)
        .chain(run.curve.last())
        .map(|(t, m)| format!("{t:.0}s {m:.0}"))
        .collect();
    println!("  RSS MiB over time: {}", points.join(", "));
}

fn main() -> Result<()> {
    let n: u64 = std::env::args()
        .skip_while(|a| a != "--requests")
        .nth(1)
        .map(|v| v.parse())
        .transpose()
        .context("--requests N")?
        .unwrap_or(10_000_000)
        .max(10);
    // `--write FILE`: only write the flood (for a profiler, or tcpreplay).
    if let Some(file) = std::env::args().skip_while(|a| a != "--write").nth(1) {
        let bytes = write_flood(Path::new(&file), n)?;
        println!("{file}: {n} requests, {bytes} bytes");
        return Ok(());
    }
    let config = tempfile_path("config.toml");
    // The defaults, with the state directory somewhere writable.
    let state = tempfile_path("state");
    std::fs::create_dir_all(&state)?;
    std::fs::write(
        &config,
        format!("[daemon]\nstate_dir = {:?}\n", state.display().to_string()),
    )?;
    let replay = jwtmon_tests::is_root()
        && Command::new("tcpreplay")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    let mut files = Vec::new();
    let result = (|| -> Result<()> {
        let mut runs = Vec::new();
        let mut lives = Vec::new();
        for size in [n / 10, n] {
            let pcap = tempfile_path(&format!("{size}.pcap"));
            files.push(pcap.clone());
            let t = Instant::now();
            let bytes = write_flood(&pcap, size)?;
            println!(
                "flood of {size} requests ({:.1} GB) written in {:.1} s",
                bytes as f64 / 1e9,
                t.elapsed().as_secs_f64()
            );
            let run = analyze(&pcap, &config)?;
            println!(
                "  analysed in {:.1} s ({:.0} requests/s), {} findings, peak RSS {:.0} MiB",
                run.elapsed.as_secs_f64(),
                size as f64 / run.elapsed.as_secs_f64(),
                run.findings,
                run.peak_mib
            );
            print_curve(&run);
            if replay {
                let l = live(&pcap)?;
                println!(
                    "  live: replayed in {:.1} s, daemon peak RSS {:.0} MiB, {} packets sampled, {} lost to a full ring",
                    l.elapsed.as_secs_f64(),
                    l.peak_mib,
                    l.sampled.map_or(0, |s| s.0),
                    l.sampled.map_or(0, |s| s.1)
                );
                print_curve(&l);
                lives.push((size, l));
            }
            std::fs::remove_file(&pcap).ok();
            runs.push((size, run));
        }
        println!();
        println!("| default config | requests | peak RSS MiB | ratio |");
        println!("|---|---:|---:|---:|");
        rows("jwtmon analyze", &runs);
        if lives.len() == 2 {
            rows("live daemon, replayed", &lives);
        } else {
            println!("(live replay skipped: it needs root and tcpreplay)");
        }
        let worst = runs
            .iter()
            .chain(&lives)
            .map(|(_, r)| r.peak_mib)
            .fold(0.0, f64::max);
        println!();
        println!(
            "goal: peak <= {GOAL_MIB:.0} MiB: {} (worst {worst:.0} MiB)",
            if worst <= GOAL_MIB { "met" } else { "NOT met" }
        );
        Ok(())
    })();
    for f in files {
        std::fs::remove_file(f).ok();
    }
    std::fs::remove_file(&config).ok();
    std::fs::remove_dir_all(&state).ok();
    result
}
