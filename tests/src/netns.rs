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

/// A bare namespace (loopback up), deleted on drop: a test "host" that
/// [`TestNet::behind`] links clients to.
pub struct Netns {
    /// Namespace name.
    pub name: String,
}

impl Netns {
    /// Creates it.
    pub fn new(tag: &str) -> Result<Self> {
        let ns = Netns {
            name: format!(
                "jwtmon-{tag}{}-{}",
                std::process::id() % 10_000,
                crate::unique()
            ),
        };
        sh("ip", &["netns", "add", &ns.name])?;
        sh("ip", &["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Netns {
    /// A veth pair from the root namespace to this one, addressed
    /// `10.232.N.1` (root) and `.2` (here): how a test host reaches a
    /// service run in the root namespace (Redis).
    pub fn uplink(&self) -> Result<Uplink> {
        let n = crate::unique();
        let pid = std::process::id() % 10_000;
        let subnet = (1 + (pid * 11 + n) % 250) as u8;
        let up = Uplink {
            root_if: format!("ju{pid}x{n}r"),
            root_ip: format!("10.232.{subnet}.1"),
            ns_ip: format!("10.232.{subnet}.2"),
        };
        let ns_if = format!("ju{pid}x{n}n");
        sh(
            "ip",
            &[
                "link",
                "add",
                &up.root_if,
                "type",
                "veth",
                "peer",
                "name",
                &ns_if,
            ],
        )?;
        sh("ip", &["link", "set", &ns_if, "netns", &self.name])?;
        sh(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", up.root_ip),
                "dev",
                &up.root_if,
            ],
        )?;
        sh("ip", &["link", "set", &up.root_if, "up"])?;
        sh(
            "ip",
            &[
                "-n",
                &self.name,
                "addr",
                "add",
                &format!("{}/24", up.ns_ip),
                "dev",
                &ns_if,
            ],
        )?;
        sh("ip", &["-n", &self.name, "link", "set", &ns_if, "up"])?;
        Ok(up)
    }

    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> Result<Output> {
        sh("ip", &[&["-n", self.name.as_str()], args].concat())
    }
}

/// A veth pair from the root namespace to a [`Netns`], removed on drop.
pub struct Uplink {
    /// The root side's interface.
    pub root_if: String,
    /// The root side's address.
    pub root_ip: String,
    /// The namespace side's address.
    pub ns_ip: String,
}

impl Drop for Uplink {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.root_if])
            .output();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A namespace with one veth pair to the host (the root namespace, or a
/// [`Netns`] standing in for it).
pub struct TestNet {
    /// Namespace name.
    pub ns: String,
    /// The namespace holding the host side (`None`: the root namespace).
    pub host_ns: Option<String>,
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
    /// Creates the namespace and the veth pair to the root namespace,
    /// addresses them and brings them up.
    pub fn new() -> Result<Self> {
        Self::create(None)
    }

    /// Like [`TestNet::new`] with the host side in `host` instead of the
    /// root namespace, so nothing of the test touches the real host's
    /// interfaces or firewall.
    pub fn behind(host: &Netns) -> Result<Self> {
        Self::create(Some(host.name.clone()))
    }

    fn create(host_ns: Option<String>) -> Result<Self> {
        let n = crate::unique();
        let pid = std::process::id() % 10_000;
        let subnet = (1 + (pid * 7 + n) % 250) as u8;
        let net = TestNet {
            ns: format!("jwtmon-t{pid}-{n}"),
            host_ns,
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
        if let Some(h) = &net.host_ns {
            sh("ip", &["link", "set", &net.host_if, "netns", h])?;
        }
        let host_addr = format!("{}/24", net.host_ip);
        net.host_ip(&["addr", "add", &host_addr, "dev", &net.host_if])?;
        net.host_ip(&["link", "set", &net.host_if, "up"])?;
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

    /// `ip ARGS` on the host side.
    fn host_ip(&self, args: &[&str]) -> Result<Output> {
        match &self.host_ns {
            Some(h) => sh("ip", &[&["-n", h.as_str()], args].concat()),
            None => sh("ip", args),
        }
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
            .is_ok_and(|o| o.status.success())
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

    /// IPv6 on the veth pair (`fd31:SUBNET::1` on the host side, `::2` in
    /// the namespace, no duplicate detection so they work at once);
    /// returns (host, namespace) addresses.
    pub fn add_ipv6(&self) -> Result<(String, String)> {
        let host = format!("fd31:{}::1", self.subnet);
        let peer = format!("fd31:{}::2", self.subnet);
        self.host_ip(&[
            "-6",
            "addr",
            "add",
            &format!("{host}/64"),
            "dev",
            &self.host_if,
            "nodad",
        ])?;
        self.exec(&[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("{peer}/64"),
            "dev",
            &self.peer_if,
            "nodad",
        ])?;
        Ok((host, peer))
    }

    /// An extra IPv6 address of the namespace side, `fd31:SUBNET::host`
    /// (after [`TestNet::add_ipv6`]).
    pub fn add_peer_addr6(&self, host: u16) -> Result<String> {
        let ip = format!("fd31:{}::{host:x}", self.subnet);
        self.exec(&[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("{ip}/64"),
            "dev",
            &self.peer_if,
            "nodad",
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
        self.curl_path(port, "/", secs)
    }

    /// Like [`TestNet::curl`] for a given path.
    pub fn curl_path(&self, port: u16, path: &str, secs: u32) -> Option<String> {
        let url = format!("http://{}:{port}{path}", self.host_ip);
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
        let _ = self.host_ip(&["link", "del", &self.host_if]);
    }
}

/// Runs `f` on a thread that has entered namespace `ns`: sockets it opens
/// (e.g. a reqwest client's) live in that namespace.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let path = format!("/var/run/netns/{ns}");
    let handle = std::thread::spawn(move || -> Result<T> {
        let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        // SAFETY: setns on a valid namespace fd affects only this thread.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        if rc != 0 {
            bail!("setns {path}: {}", std::io::Error::last_os_error());
        }
        Ok(f())
    });
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("thread in {ns} panicked"))?
}
