//! Shared helpers for jwtmon's end-to-end tests and benchmarks: crafted
//! frames, network namespaces with veth pairs (removed on drop, even when a
//! test fails), throw-away pin directories and a handle on a running daemon.

pub mod bank;
pub mod client;
pub mod conformance;
pub mod daemon;
pub mod fail2ban;
pub mod frames;
pub mod hooks;
pub mod http;
pub mod metrics;
pub mod netns;
pub mod nginx;
pub mod pcapgen;
pub mod redis;
pub mod smtp;
pub mod wrk;
pub mod xdp_filter;

use std::sync::atomic::{AtomicU32, Ordering};

/// A process-unique small number for naming namespaces, links and pins.
pub fn unique() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A TCP port that was free a moment ago (bound to 0 and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("0.0.0.0", 0))
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

/// True when running as root (the kernel tests need it).
pub fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A pin directory under /sys/fs/bpf, removed with everything in it on drop.
pub struct PinDir {
    /// The directory.
    pub path: std::path::PathBuf,
    /// The daemon's state directory (incident database, key, admin
    /// socket) that goes with it, so parallel tests never share one.
    pub state: std::path::PathBuf,
}

impl PinDir {
    /// A fresh, not yet existing directory name.
    pub fn new(tag: &str) -> Self {
        let n = unique();
        let path = std::path::PathBuf::from(format!(
            "/sys/fs/bpf/jwtmon-test-{tag}-{}-{n}",
            std::process::id(),
        ));
        let state = std::env::temp_dir().join(format!(
            "jwtmon-test-state-{tag}-{}-{n}",
            std::process::id()
        ));
        Self { path, state }
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = jwtmon::enforce::datapath::reset(&self.path);
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// A temporary file (config, secret) removed on drop.
pub struct TempFile(pub std::path::PathBuf);

impl TempFile {
    /// Writes `text` to a fresh file whose name carries `tag`.
    pub fn new(tag: &str, text: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "jwtmon-test-{tag}-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::write(&p, text).expect("writing a temp file");
        Self(p)
    }

    /// The path, as an argument.
    pub fn path(&self) -> &str {
        self.0.to_str().expect("temp paths are UTF-8")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
