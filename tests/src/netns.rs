//! Test hosts: a network namespace joined to the host by a veth pair, with
//! addresses in a /24 of 10.231.0.0/16 chosen per test. Everything is
//! removed on drop, also when the test panics.

use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

/// Runs a command, failing with its stderr when it fails.
pub fn sh(program: &str, args: &[&str]) -> Result<Output> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// A namespace with one veth pair to the host.
pub struct TestNet {
    /// Namespace name.
    pub ns: String,
    /// Host-side interface (where XDP attaches).
    pub host_if: String,
    /// Namespace-side interface.
    pub peer_if: String,
    /// Address of the host side.
    pub host_ip: String,
    /// Main address of the namespace side.
    pub peer_ip: String,
    /// The third octet of the /24 used.
    pub subnet: u8,
}

impl TestNet {
    /// Creates the namespace and the veth pair, addresses them and brings
    /// them up.
    pub fn new() -> Result<Self> {
        let n = crate::unique();
        let pid = std::process::id() % 10_000;
        let subnet = (1 + (pid * 7 + n) % 250) as u8;
        let net = TestNet {
            ns: format!("jwtmon-t{pid}-{n}"),
            host_if: format!("jt{pid}x{n}h"),
            peer_if: format!("jt{pid}x{n}p"),
            host_ip: format!("10.231.{subnet}.1"),
            peer_ip: format!("10.231.{subnet}.2"),
            subnet,
        };
        // From here on, Drop cleans up whatever was created.
        sh("ip", &["netns", "add", &net.ns])?;
        sh(
            "ip",
            &[
                "link",
                "add",
                &net.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &net.peer_if,
            ],
        )?;
        sh("ip", &["link", "set", &net.peer_if, "netns", &net.ns])?;
        sh(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", net.host_ip),
                "dev",
                &net.host_if,
            ],
        )?;
        sh("ip", &["link", "set", &net.host_if, "up"])?;
        net.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", net.peer_ip),
            "dev",
            &net.peer_if,
        ])?;
        net.exec(&["ip", "link", "set", &net.peer_if, "up"])?;
        net.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(net)
    }

    /// Runs a command inside the namespace; fails when it fails.
    pub fn exec(&self, cmd: &[&str]) -> Result<Output> {
        let mut args = vec!["netns", "exec", &self.ns];
        args.extend_from_slice(cmd);
        sh("ip", &args)
    }

    /// Runs a command inside the namespace; returns whether it succeeded.
    pub fn try_exec(&self, cmd: &[&str]) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(cmd)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// An extra address of the namespace side, `10.231.SUBNET.host`.
    pub fn add_peer_addr(&self, host: u8) -> Result<String> {
        let ip = format!("10.231.{}.{host}", self.subnet);
        self.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            &self.peer_if,
        ])?;
        Ok(ip)
    }

    /// One ping from the namespace (optionally from a given source) to the
    /// host side, waiting at most 1 s.
    pub fn ping_from(&self, src: &str) -> bool {
        self.try_exec(&["ping", "-c", "1", "-W", "1", "-I", src, &self.host_ip])
    }

    /// Pings from the main address.
    pub fn ping(&self) -> bool {
        self.ping_from(&self.peer_ip)
    }

    /// An HTTP GET with curl from the namespace to `host_ip:port`, at most
    /// `secs` seconds; returns the body when it succeeded.
    pub fn curl(&self, port: u16, secs: u32) -> Option<String> {
        let url = format!("http://{}:{port}/", self.host_ip);
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "curl",
                "-s",
                "-m",
                &secs.to_string(),
                &url,
            ])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        // Deleting the namespace destroys the peer and with it the pair.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}

/// A tiny HTTP server on a host address: answers every connection with
/// `200 OK` and body `ok`. Stops when dropped.
pub struct TinyHttp {
    /// The port it listens on.
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TinyHttp {
    /// Listens on `ip:0`.
    pub fn start(ip: &str) -> Result<Self> {
        use std::{io::Write, sync::atomic::Ordering};
        let listener = std::net::TcpListener::bind((ip, 0)).context("binding test server")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(500)));
                        let mut buf = [0u8; 1024];
                        let _ = std::io::Read::read(&mut s, &mut buf);
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Ok(Self {
            port,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for TinyHttp {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
