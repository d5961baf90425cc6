//! fail2ban from Debian's package as a baseline, run inside a test
//! namespace only: a log-file jail on the test server's access log with
//! its default polling backend and the `nftables-allports` ban action, so
//! its bans land in that namespace's nftables and nowhere else. `nft
//! monitor` in the same namespace timestamps each ban as it takes effect.
//! Stopped and its files removed on drop.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// The jail's name (and its nftables set's suffix).
pub const JAIL: &str = "jwtmon-bench";

/// A running fail2ban server and the ban monitor.
pub struct Fail2ban {
    dir: PathBuf,
    server: Child,
    monitor: Child,
    bans: Arc<Mutex<HashMap<String, Instant>>>,
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

impl Fail2ban {
    /// Starts fail2ban in `ns`, banning an address after `maxretry` failed
    /// `POST /login` (401) lines in `access_log` within `findtime`.
    pub fn start(ns: &str, access_log: &Path, maxretry: u32, findtime: Duration) -> Result<Self> {
        if !Path::new("/usr/bin/fail2ban-server").exists() {
            bail!("fail2ban is not installed (apt-get install fail2ban nftables)");
        }
        let dir = std::env::temp_dir().join(format!(
            "jwtmon-f2b-{}-{}",
            std::process::id(),
            crate::unique()
        ));
        std::fs::create_dir_all(dir.join("filter.d"))?;
        std::os::unix::fs::symlink("/etc/fail2ban/action.d", dir.join("action.d"))?;
        let d = dir.display();
        write(
            &dir.join("fail2ban.conf"),
            &format!(
                "[Definition]\nloglevel = INFO\nlogtarget = {d}/fail2ban.log\n\
                 socket = {d}/fail2ban.sock\npidfile = {d}/fail2ban.pid\ndbfile = :memory:\n"
            ),
        )?;
        write(
            &dir.join(format!("filter.d/{JAIL}.conf")),
            "[Definition]\nfailregex = <HOST> \"POST /login[^\"]*\" 401\n",
        )?;
        write(
            &dir.join("jail.conf"),
            &format!(
                "[DEFAULT]\nbackend = polling\nusedns = no\n\n[{JAIL}]\nenabled = true\n\
                 filter = {JAIL}\nlogpath = {}\nmaxretry = {maxretry}\nfindtime = {}\n\
                 bantime = 600\n\
                 action = nftables-allports[name={JAIL}, protocol=tcp, blocktype=drop]\n",
                access_log.display(),
                findtime.as_secs()
            ),
        )?;

        // The monitor first, so no ban goes unseen.
        let mut monitor = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "monitor"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nft monitor")?;
        let bans = Arc::new(Mutex::new(HashMap::new()));
        let out = monitor.stdout.take().context("nft monitor stdout")?;
        let seen = bans.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                // add element inet f2b-table addr-set-jwtmon-bench { 10.0.0.2 }
                if line.starts_with("add element")
                    && let Some(ip) = line.split('{').nth(1).and_then(|r| r.split('}').next())
                    && let Ok(mut m) = seen.lock()
                {
                    for ip in ip.split(',') {
                        m.entry(ip.trim().to_string()).or_insert_with(Instant::now);
                    }
                }
            }
        });
        let server = Command::new("ip")
            .args(["netns", "exec", ns, "fail2ban-server", "-f", "-x", "-c"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting fail2ban-server")?;
        let f = Fail2ban {
            dir,
            server,
            monitor,
            bans,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f.client(&["status", JAIL]) {
            if Instant::now() > deadline {
                bail!("fail2ban did not start its jail within 20 s: {}", f.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(f)
    }

    fn client(&self, args: &[&str]) -> bool {
        Command::new("fail2ban-client")
            .arg("-c")
            .arg(&self.dir)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// When the ban of `ip` appeared in nftables, if it did.
    pub fn banned_at(&self, ip: &str) -> Option<Instant> {
        self.bans.lock().ok()?.get(ip).copied()
    }

    /// fail2ban's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("fail2ban.log")).unwrap_or_default()
    }
}

impl Drop for Fail2ban {
    fn drop(&mut self) {
        self.client(&["stop"]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.server.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = self.monitor.kill();
        let _ = self.monitor.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
