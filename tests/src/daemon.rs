//! Runs the real `jwtmon` binary: the daemon as a child process (killed on
//! drop) and one-shot CLI commands against the same pin directory.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::{OnceLock, mpsc},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::PinDir;

/// The jwtmon binary: `$JWTMON_BIN`, else built once with `cargo build`.
pub fn jwtmon_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("JWTMON_BIN") {
            return PathBuf::from(p);
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--package", "jwtmon", "--bin", "jwtmon"])
            .current_dir(&root)
            .status()
            .expect("running cargo build for the jwtmon binary");
        assert!(status.success(), "building jwtmon failed");
        root.join("target/debug/jwtmon")
    })
    .clone()
}

/// Runs `jwtmon GLOBAL analyze --pcap FILE EXTRA` (no root needed).
pub fn analyze_pcap(global: &[&str], pcap: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(jwtmon_bin())
        .args(global)
        .arg("analyze")
        .arg("--pcap")
        .arg(pcap)
        .args(extra)
        .output()
        .expect("running jwtmon analyze")
}

/// [`analyze_pcap`], which must succeed; its JSON lines.
pub fn analyze_lines(
    global: &[&str],
    pcap: &std::path::Path,
    extra: &[&str],
) -> Vec<serde_json::Value> {
    let out = analyze_pcap(global, pcap, extra);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Runs `jwtmon --pin-dir PIN ARGS` to completion.
pub fn cli(pin: &PinDir, args: &[&str]) -> Output {
    Command::new(jwtmon_bin())
        .arg("--pin-dir")
        .arg(&pin.path)
        .env("JWTMON_STATE_DIR", &pin.state)
        .args(args)
        .output()
        .expect("running jwtmon")
}

/// Like [`cli`] but fails unless it exits 0; returns stdout.
pub fn cli_ok(pin: &PinDir, args: &[&str]) -> String {
    let out = cli(pin, args);
    assert!(
        out.status.success(),
        "jwtmon {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `jwtmon list --json` parsed.
pub fn list_json(pin: &PinDir) -> serde_json::Value {
    serde_json::from_str(&cli_ok(pin, &["list", "--json"])).expect("list --json is JSON")
}

/// The targets of `jwtmon list --json`'s `blocks` or `allowlist`.
pub fn list_targets(pin: &PinDir, section: &str) -> Vec<String> {
    list_json(pin)[section]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["target"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Drops recorded on the block entry for `target` (None if absent).
pub fn entry_drops(pin: &PinDir, target: &str) -> Option<u64> {
    list_json(pin)["blocks"]
        .as_array()?
        .iter()
        .find(|b| b["target"] == target)
        .and_then(|b| b["drops"].as_u64())
}

/// A running daemon.
pub struct Daemon {
    child: Option<Child>,
    /// Lines printed on stdout before it was ready (attach reports).
    pub stdout: Vec<String>,
    lines: mpsc::Receiver<String>,
    stderr_path: PathBuf,
}

impl Daemon {
    /// Starts `jwtmon --pin-dir PIN run ARGS` and waits until it reported
    /// `expect_attached` attachments (at most 20 s).
    pub fn start(pin: &PinDir, args: &[&str], expect_attached: usize) -> Result<Self> {
        Self::launch(Command::new(jwtmon_bin()), pin, args, expect_attached)
    }

    /// Like [`Daemon::start`] inside network namespace `ns` (through
    /// `nsenter`, which keeps the mounts, /sys/fs/bpf included).
    pub fn start_in(ns: &str, pin: &PinDir, args: &[&str], expect_attached: usize) -> Result<Self> {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/var/run/netns/{ns}"))
            .arg(jwtmon_bin());
        Self::launch(cmd, pin, args, expect_attached)
    }

    fn launch(
        mut cmd: Command,
        pin: &PinDir,
        args: &[&str],
        expect_attached: usize,
    ) -> Result<Self> {
        let stderr_path = std::env::temp_dir().join(format!(
            "jwtmon-test-{}-{}.log",
            std::process::id(),
            crate::unique()
        ));
        let stderr = std::fs::File::create(&stderr_path)?;
        let mut child = cmd
            .env("JWTMON_STATE_DIR", &pin.state)
            .arg("--pin-dir")
            .arg(&pin.path)
            .args(["--log-format", "json", "run"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("spawning jwtmon run")?;
        let out = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut d = Daemon {
            child: Some(child),
            stdout: Vec::new(),
            lines: rx,
            stderr_path,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while d
            .stdout
            .iter()
            .filter(|l| l.starts_with("attached"))
            .count()
            < expect_attached
        {
            if let Ok(line) = d.lines.recv_timeout(Duration::from_millis(100)) {
                d.stdout.push(line);
            } else {
                if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                    bail!("jwtmon exited ({status}) before attaching: {}", d.log());
                }
                if Instant::now() > deadline {
                    bail!("jwtmon did not attach within 20 s: {}", d.log());
                }
            }
        }
        Ok(d)
    }

    /// Collects JSON lines from stdout until `n` arrived or `limit` passed.
    pub fn json_lines(&mut self, n: usize, limit: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(line) => {
                    if let Ok(v) = serde_json::from_str(&line) {
                        out.push(v);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        out
    }

    /// The daemon's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our child's pid.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    /// The daemon's stderr (JSON logs) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGTERM and wait (at most 10 s); returns the exit status success.
    pub fn stop(mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        // SAFETY: plain kill(2) on our child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, wait, and return the daemon's log (final stats included).
    pub fn stop_with_log(self) -> String {
        let path = self.stderr_path.clone();
        let log = std::fs::File::open(&path);
        self.stop();
        // The file is unlinked on drop; the open handle still reads it.
        let mut text = String::new();
        if let Ok(mut f) = log {
            use std::io::Read;
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

/// Waits (5 s at most) until `ip` is in the block list; panics otherwise.
pub fn wait_blocked(pin: &PinDir, ip: &str) {
    let end = Instant::now() + Duration::from_secs(5);
    while !list_targets(pin, "blocks").contains(&ip.to_string()) {
        assert!(Instant::now() < end, "{ip} was not blocked");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads the daemon's JSON lines into `seen` until one satisfies `want`
/// (10 s at most); panics with what was seen otherwise.
pub fn wait_line(
    d: &mut Daemon,
    seen: &mut Vec<serde_json::Value>,
    what: &str,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = seen.iter().find(|v| want(v)) {
            return v.clone();
        }
        assert!(
            Instant::now() < end,
            "no {what}; saw {seen:#?}\n{}",
            d.log()
        );
        seen.extend(d.json_lines(1, Duration::from_millis(200)));
    }
}
