//! Developer tasks for jwtmon: `cargo xtask <command>`.
//!
//! - `setup`: installs what building the kernel side needs (llvm-22-dev,
//!   nightly rust-src, bpf-linker) and the tools the tests drive (ping,
//!   curl, iproute2). Idempotent; `run`, `test` and the bench call it when
//!   something is missing.
//! - `build-ebpf`: builds the kernel object alone.
//! - `run -- ARGS`: builds and runs `jwtmon ARGS` as root (default `run`).
//! - `test`: the whole suite (unit, kernel-program, namespace end-to-end).
//! - `bench-xdp`: ns/packet of the XDP program via BPF_PROG_TEST_RUN.
//! - `conformance --corpora DIR`: grades jwtmon against public corpora.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

mod deb;
mod fuzz;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "jwtmon developer tasks")]
struct Args {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the BPF toolchain and test tools (idempotent).
    Setup,
    /// Build the eBPF object (nightly, -Z build-std=core, bpf-linker).
    BuildEbpf,
    /// Build and run jwtmon as root; arguments after `--` go to jwtmon.
    Run {
        /// Build in debug mode instead of release.
        #[arg(long)]
        debug: bool,
        /// jwtmon's arguments [default: run].
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run the whole test suite (needs root for the kernel tests).
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Incident drill on throw-away namespaces: a toy bank API, legitimate
    /// users and a scripted attacker (brute force, forged token, SQL
    /// injection, stolen-token replay) against the real daemon; prints who
    /// was blocked, why and how fast, then cleans up. Needs root.
    Demo,
    /// Build the Debian package (target/debian/jwtmon_VERSION_ARCH.deb):
    /// /usr/sbin/jwtmon, /etc/jwtmon/jwtmon.toml (conffile), the hardened
    /// systemd unit, completions, man pages, /var/lib/jwtmon (0700).
    Deb,
    /// Run every fuzz target (cargo-fuzz, nightly) for SECONDS each, or
    /// RUNS executions; prints executions and crashes per target.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Executions per target instead of a time limit.
        #[arg(long)]
        runs: Option<u64>,
        /// Only these targets.
        #[arg(long = "target")]
        targets: Vec<String>,
    },
    /// Print requests/s of parse and parse + pairing next to raw httparse.
    BenchParse,
    /// Print JWT analyses/s (uncached next to raw jsonwebtoken, cached,
    /// mixed) per algorithm on one core.
    BenchJwt,
    /// Whole userspace pipeline (parse, JWT, detectors, decisions) in
    /// requests/s with one analysis thread and with --threads, next to
    /// parse + pair alone.
    BenchPipeline {
        /// Analysis threads for the second run (0 = one per CPU).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Print the resident memory of offline analysis over a flood of
    /// distinct sources with unique tokens and paths (default 10M
    /// requests), next to the same analysis of its first tenth.
    BenchFlood {
        /// Requests in the flood.
        #[arg(long, default_value_t = 10_000_000)]
        requests: u64,
    },
    /// Print calls/s and peak memory of the sequence engine on a synthetic
    /// trace shaped like Cloudflare's one-hour snapshot (88k sessions, 260M
    /// calls, 301 endpoints) divided by --scale.
    BenchSequences {
        /// Divide the trace's sessions and calls by this (1 = full shape).
        #[arg(long, default_value_t = 100)]
        scale: u64,
    },
    /// Print the live capture ceiling: wrk against a namespace server with
    /// and without the daemon, ring-buffer loss and the daemon's CPU.
    BenchCapture,
    /// Print HTTPS throughput through a real nginx with TLS capture off and
    /// on (wrk from a namespace, same run), and the probes' cost per
    /// request. Needs root.
    BenchTls,
    /// Print fleet propagation (a block on node A into the kernel maps of
    /// B and C, p50/p99, next to a raw Redis pub/sub round trip) and the
    /// Redis commands per 1k requests/s, on a real redis-server. Needs root.
    BenchFleet,
    /// Print start-to-attached times (cold and warm) next to the cold start
    /// with a 1M-entry per-source map, on a throw-away veth pair. Needs root.
    BenchStart,
    /// Print detection-to-drop latency (p50/p99) on the brute-force
    /// scenario over many attacker addresses, next to fail2ban (polling
    /// backend, nftables ban) on the same traffic. Needs root; installs
    /// fail2ban and nftables, used only inside the benchmark's namespace.
    BenchLatency {
        /// Attacker addresses (runs), 1..=200.
        #[arg(long, default_value_t = 100)]
        attackers: u8,
    },
    /// Grade jwtmon against the public corpora in DIR (llhttp requests,
    /// JWS vectors, ...) and print agreement; absent corpora are skipped.
    Conformance {
        /// The corpora directory [default: $JWTMON_CORPORA or ../shared/corpora].
        #[arg(long)]
        corpora: Option<PathBuf>,
    },
    /// Print ns/packet of the XDP program for each path (BPF_PROG_TEST_RUN).
    BenchXdp {
        /// Iterations per measurement (kernel-side repeat).
        #[arg(long, default_value_t = 1_000_000)]
        repeat: u32,
    },
}

const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
const APT_PACKAGES: &[&str] = &[
    "gcc",
    "llvm-22-dev",
    "iputils-ping",
    "iproute2",
    "curl",
    "wrk",
    // A real HTTP/1.1 server with keep-alive (and TLS, for the uprobes).
    "nginx-light",
    // The fleet tests' shared state.
    "redis-server",
    "openssl",
    // The HTML report test renders the page in headless Chromium.
    "chromium",
    "fonts-dejavu-core",
    // bench-xdp's anchor: xdp-filter, run through bpftool's view of it.
    "xdp-tools",
    "bpftool",
];

fn main() -> Result<()> {
    let args = Args::parse();
    let root = workspace_root();
    match args.command {
        Task::Setup => setup(true),
        Task::BuildEbpf => {
            setup(false)?;
            cargo(&root)
                .args(["+nightly", "build", "--release", "--package", "jwtmon-ebpf"])
                .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
                .current_dir(root.join("jwtmon-ebpf"))
                .status_ok("building the eBPF object")?;
            println!(
                "built {}",
                root.join("target/bpfel-unknown-none/release/jwtmon-ebpf")
                    .display()
            );
            Ok(())
        }
        Task::Run { debug, args } => {
            setup(false)?;
            let mut build = cargo(&root);
            build.args(["build", "--package", "jwtmon"]);
            if !debug {
                build.arg("--release");
            }
            build.status_ok("building jwtmon")?;
            let bin = root
                .join("target")
                .join(if debug { "debug" } else { "release" })
                .join("jwtmon");
            let args = if args.is_empty() {
                vec!["run".to_string()]
            } else {
                args
            };
            as_root(&bin, &args).status_ok("jwtmon")
        }
        Task::Test { args } => {
            setup(false)?;
            if !is_root() {
                bail!("the kernel and namespace tests need root: run `sudo -E cargo xtask test`");
            }
            // Lints first: formatting and clippy are part of the suite.
            cargo(&root)
                .args(["fmt", "--all", "--check"])
                .status_ok("`cargo fmt --all --check` (run `cargo fmt --all`)")?;
            cargo(&root)
                .args([
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ])
                .status_ok("`cargo clippy --workspace --all-targets -- -D warnings`")?;
            let mut cmd = cargo(&root);
            cmd.args(["test", "--workspace", "--exclude", "jwtmon-ebpf"])
                .args(&args);
            run_tests(cmd)?;
            // A smoke pass of every fuzz target (from the committed seeds)
            // when the whole suite ran.
            if args.is_empty() {
                fuzz::run(&root, 0, Some(20_000), &[])?;
            }
            Ok(())
        }
        Task::BenchParse => run_bench(&root, "bench-parse", &[]),
        Task::BenchJwt => run_bench(&root, "bench-jwt", &[]),
        Task::BenchPipeline { threads } => {
            let args: Vec<String> = if threads == 0 {
                Vec::new()
            } else {
                vec!["--threads".into(), threads.to_string()]
            };
            run_bench(&root, "bench-pipeline", &args)
        }
        Task::BenchSequences { scale } => run_bench(
            &root,
            "bench-sequences",
            &["--scale".into(), scale.to_string()],
        ),
        Task::BenchFlood { requests } => {
            // The live half replays the flood with tcpreplay.
            apt_install(&missing_apt(&["tcpreplay"]))?;
            run_root_bench(
                &root,
                "bench-flood",
                &["--requests".into(), requests.to_string()],
            )
        }
        Task::BenchCapture => run_root_bench(&root, "bench-capture", &[]),
        Task::BenchTls => run_root_bench(&root, "bench-tls", &[]),
        Task::BenchStart => run_root_bench(&root, "bench-start", &[]),
        Task::BenchFleet => run_root_bench(&root, "bench-fleet", &[]),
        Task::Demo => run_root_bench(&root, "demo", &[]),
        Task::Fuzz {
            seconds,
            runs,
            targets,
        } => {
            setup(false)?;
            fuzz::run(&root, seconds, runs, &targets)
        }
        Task::Deb => {
            setup(false)?;
            deb::build(&root).map(|_| ())
        }
        Task::BenchLatency { attackers } => {
            // fail2ban is the baseline; it only ever runs inside the
            // benchmark's namespace (no host jail is configured).
            apt_install(&missing_apt(&["fail2ban", "nftables"]))?;
            run_root_bench(
                &root,
                "bench-latency",
                &["--attackers".into(), attackers.to_string()],
            )
        }
        Task::Conformance { corpora } => {
            setup(false)?;
            let mut cmd = cargo(&root);
            cmd.args(["run", "--quiet", "--release", "--package", "jwtmon-tests"])
                .args(["--bin", "conformance", "--"]);
            if let Some(dir) = corpora {
                cmd.arg("--corpora").arg(dir);
            }
            cmd.status_ok("conformance")
        }
        Task::BenchXdp { repeat } => {
            run_root_bench(&root, "bench-xdp", &["--repeat".into(), repeat.to_string()])
        }
    }
}

/// Runs `cargo test`, echoing its output, and closes with one line that
/// sums every test binary's result ("N passed, N failed").
fn run_tests(mut cmd: Command) -> Result<()> {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(label), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let n: u64 = n.parse().unwrap_or(0);
                match label {
                    "passed" => passed += n,
                    "failed" => failed += n,
                    "ignored" => ignored += n,
                    _ => {}
                }
            }
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    println!();
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    if !status.success() {
        bail!("the test suite failed ({status})");
    }
    if passed == 0 {
        bail!("the test suite ran no test");
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs one of the benchmark binaries of `jwtmon-tests`, optimized.
fn run_bench(root: &Path, bin: &str, args: &[String]) -> Result<()> {
    setup(false)?;
    cargo(root)
        .args(["run", "--quiet", "--release", "--package", "jwtmon-tests"])
        .args(["--bin", bin, "--"])
        .args(args)
        .status_ok(bin)
}

/// Builds a root-only harness (benchmark, demo) and jwtmon (release) and
/// runs it as root.
fn run_root_bench(root: &Path, bin: &str, args: &[String]) -> Result<()> {
    setup(false)?;
    cargo(root)
        .args([
            "build",
            "--release",
            "--package",
            "jwtmon-tests",
            "--bin",
            bin,
        ])
        .status_ok("building the benchmark")?;
    cargo(root)
        .args(["build", "--release", "--package", "jwtmon"])
        .status_ok("building jwtmon")?;
    as_root(&root.join("target/release").join(bin), args)
        .env("JWTMON_BIN", root.join("target/release/jwtmon"))
        .status_ok(bin)
}

fn cargo(root: &Path) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root);
    // Pin the workspace's toolchain for everything this cargo spawns: cargo
    // runs rustc inside each dependency's directory, and a dependency that
    // ships its own rust-toolchain file (ff does) would otherwise switch
    // the rustup proxy to a toolchain that is not installed. An explicit
    // `+nightly` (the eBPF build) still takes precedence over this.
    c.env("RUSTUP_TOOLCHAIN", workspace_toolchain(root));
    c
}

/// The toolchain rustup picks for the workspace itself (directory override
/// or default), ignoring any pin inherited from the calling cargo.
fn workspace_toolchain(root: &Path) -> String {
    Command::new("rustup")
        .args(["show", "active-toolchain"])
        .current_dir(root)
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "stable".into())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn as_root(bin: &Path, args: &[String]) -> Command {
    if is_root() {
        let mut c = Command::new(bin);
        c.args(args);
        c
    } else {
        println!("xtask: jwtmon needs root to load eBPF; running it through sudo");
        let mut c = Command::new("sudo");
        c.arg("-E").arg(bin).args(args);
        c
    }
}

trait StatusOk {
    fn status_ok(&mut self, what: &str) -> Result<()>;
}

impl StatusOk for Command {
    fn status_ok(&mut self, what: &str) -> Result<()> {
        let status = self
            .status()
            .with_context(|| format!("starting {what} ({})", self.get_program().display()))?;
        if !status.success() {
            bail!("{what} failed ({status})");
        }
        Ok(())
    }
}

fn quiet_ok(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// What is missing for a build, in the order it has to be installed.
#[expect(
    clippy::struct_excessive_bools,
    reason = "one flag per prerequisite, each checked and installed on its own"
)]
struct Missing {
    apt: Vec<&'static str>,
    nightly: bool,
    rust_src: bool,
    linker: bool,
    lint_tools: bool,
}

/// The packages of `list` that are not installed.
fn missing_apt(list: &[&'static str]) -> Vec<&'static str> {
    list.iter()
        .copied()
        .filter(|p| {
            !output("dpkg-query", &["-W", "-f=${Status}", p]).contains("install ok installed")
        })
        .collect()
}

/// Installs Debian packages (through sudo when not root).
fn apt_install(pkgs: &[&str]) -> Result<()> {
    if pkgs.is_empty() {
        return Ok(());
    }
    println!("xtask: installing Debian packages: {}", pkgs.join(" "));
    let sudo = if is_root() { vec![] } else { vec!["sudo"] };
    let run = |args: &[&str]| -> Result<()> {
        let mut full: Vec<&str> = sudo.clone();
        full.extend_from_slice(args);
        Command::new(full[0])
            .args(&full[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status_ok(&format!("`{}`", full.join(" ")))
    };
    run(&["apt-get", "update", "-qq"])?;
    let mut install = vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends"];
    install.extend_from_slice(pkgs);
    run(&install).context(
        "llvm-22-dev comes from bookworm-security on Debian 12; check /etc/apt/sources.list",
    )
}

fn missing() -> Missing {
    let apt = missing_apt(APT_PACKAGES);
    let nightly = !output("rustup", &["toolchain", "list"])
        .lines()
        .any(|l| l.starts_with("nightly"));
    let rust_src = !output(
        "rustup",
        &["component", "list", "--toolchain", "nightly", "--installed"],
    )
    .lines()
    .any(|l| l.starts_with("rust-src"));
    let linker = !output("bpf-linker", &["--version"]).contains(BPF_LINKER_VERSION);
    let lint_tools =
        !(quiet_ok("cargo", &["clippy", "--version"]) && quiet_ok("cargo", &["fmt", "--version"]));
    Missing {
        apt,
        nightly,
        rust_src,
        linker,
        lint_tools,
    }
}

/// Installs what is missing. `verbose` also reports what is already there.
fn setup(verbose: bool) -> Result<()> {
    let m = missing();
    let nothing = m.apt.is_empty() && !m.nightly && !m.rust_src && !m.linker && !m.lint_tools;
    if nothing {
        if verbose {
            println!(
                "xtask setup: everything is installed (llvm-22-dev, nightly rust-src, bpf-linker {BPF_LINKER_VERSION}, ping, curl, iproute2)"
            );
        }
        return Ok(());
    }
    apt_install(&m.apt)?;
    if m.nightly {
        println!("xtask setup: installing the nightly toolchain");
        Command::new("rustup")
            .args(["toolchain", "install", "nightly", "--profile", "minimal"])
            .status_ok("`rustup toolchain install nightly`")?;
    }
    if m.rust_src || m.nightly {
        println!("xtask setup: adding rust-src to nightly (needed for -Z build-std=core)");
        Command::new("rustup")
            .args(["component", "add", "rust-src", "--toolchain", "nightly"])
            .status_ok("`rustup component add rust-src --toolchain nightly`")?;
    }
    if m.lint_tools {
        println!("xtask setup: adding clippy and rustfmt (the test suite runs them)");
        Command::new("rustup")
            .args(["component", "add", "clippy", "rustfmt"])
            .status_ok("`rustup component add clippy rustfmt`")?;
    }
    if m.linker {
        println!(
            "xtask setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about a minute)"
        );
        Command::new("cargo")
            .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
            .args(["--no-default-features", "--features", "llvm-22", "--force"])
            .env("LLVM_PREFIX", LLVM_PREFIX)
            .env("LLVM_SYS_221_PREFIX", LLVM_PREFIX)
            .env_remove("RUSTUP_TOOLCHAIN")
            .status_ok("`cargo install bpf-linker`")?;
    }
    if !quiet_ok("bpf-linker", &["--version"]) {
        bail!("bpf-linker still does not run after setup; see the messages above");
    }
    println!("xtask setup: done");
    Ok(())
}
