//! A real redis-server (Debian's package) for the fleet tests: its own
//! port, addresses and working directory, no persistence; stoppable and
//! restartable on the same port (an outage), killed on drop.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// Where Debian installs it.
pub const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// A running (or stopped) redis-server.
pub struct RedisServer {
    /// Its port.
    pub port: u16,
    bind: Vec<String>,
    password: Option<String>,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts it on `bind` addresses, with `password` when given.
    pub fn start(bind: &[&str], password: Option<&str>) -> Result<Self> {
        if !std::path::Path::new(REDIS_SERVER).exists() {
            bail!(
                "{REDIS_SERVER} is missing: run `cargo xtask setup` (Debian package redis-server)"
            );
        }
        let dir = std::env::temp_dir().join(format!(
            "jwtmon-redis-{}-{}",
            std::process::id(),
            crate::unique()
        ));
        std::fs::create_dir_all(&dir)?;
        let mut r = Self {
            port: crate::free_port(),
            bind: bind.iter().map(|s| (*s).to_string()).collect(),
            password: password.map(str::to_string),
            dir,
            child: None,
        };
        r.resume()?;
        Ok(r)
    }

    /// Starts it again (same port, empty: no persistence).
    pub fn resume(&mut self) -> Result<()> {
        let mut cmd = Command::new(REDIS_SERVER);
        cmd.args(["--port", &self.port.to_string(), "--bind"])
            .args(&self.bind)
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--dir",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(pw) = &self.password {
            cmd.args(["--requirepass", pw]);
        }
        self.child = Some(cmd.spawn().context("starting redis-server")?);
        let end = Instant::now() + Duration::from_secs(10);
        let addr = format!("{}:{}", self.bind[0], self.port);
        while std::net::TcpStream::connect(&addr).is_err() {
            if Instant::now() > end {
                bail!("redis-server did not listen on {addr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Stops it (an outage).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `redis-cli` against it; its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args([
            "-h",
            &self.bind[0],
            "-p",
            &self.port.to_string(),
            "--no-auth-warning",
        ]);
        if let Some(pw) = &self.password {
            cmd.args(["-a", pw]);
        }
        cmd.args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
