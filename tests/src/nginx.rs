//! A real nginx (Debian's `nginx-light`) for end-to-end tests: its own
//! prefix directory, its own config, stopped and removed on drop.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// A running nginx.
pub struct Nginx {
    /// The port it listens on.
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

/// Where Debian installs it.
pub const NGINX: &str = "/usr/sbin/nginx";

impl Nginx {
    /// Starts nginx on `port` (IPv4 and IPv6, all addresses) with
    /// keep-alive on; `locations` is the inside of its `server` block.
    pub fn start(port: u16, locations: &str) -> Result<Self> {
        Self::start_with(port, "", locations)
    }

    /// Like [`Nginx::start`]; `listen_extra` is appended to each `listen`
    /// line (e.g. `ssl`), and `server_extra` joins the server block.
    pub fn start_with(port: u16, listen_extra: &str, server: &str) -> Result<Self> {
        Self::start_env(port, listen_extra, server, &[])
    }

    /// Like [`Nginx::start_with`], with extra environment variables (e.g.
    /// `LD_LIBRARY_PATH` to make it load another copy of OpenSSL).
    pub fn start_env(
        port: u16,
        listen_extra: &str,
        server: &str,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        if !std::path::Path::new(NGINX).exists() {
            bail!("{NGINX} is missing: run `cargo xtask setup` (Debian package nginx-light)");
        }
        let dir = std::env::temp_dir().join(format!(
            "jwtmon-nginx-{}-{}",
            std::process::id(),
            crate::unique()
        ));
        std::fs::create_dir_all(dir.join("tmp")).context("nginx prefix")?;
        let d = dir.display();
        let conf = format!(
            "worker_processes 1;\ndaemon off;\nmaster_process off;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 512; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n\
             proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fcgi;\n\
             uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n\
             keepalive_timeout 30s;\n  keepalive_requests 10000;\n\
             large_client_header_buffers 8 16k;\n  default_type text/plain;\n\
             server {{\n    listen {port} {listen_extra};\n    listen [::]:{port} {listen_extra};\n\
             {server}\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf)?;
        let child = Command::new(NGINX)
            .args(["-p"])
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting nginx")?;
        let mut n = Self { port, dir, child };
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = n.child.try_wait() {
                bail!("nginx exited ({status}): {}", n.error_log());
            }
            if Instant::now() > end {
                bail!("nginx did not listen on {port}: {}", n.error_log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(n)
    }

    /// Its process id (with `master_process off`, the one that serves).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its error log.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// The prefix directory (certificates may go there).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A throwaway key and self-signed certificate, removed on drop.
pub struct Cert {
    dir: PathBuf,
}

impl Cert {
    /// Makes one with `openssl req` (P-256, one day, CN api.test).
    pub fn generate() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "jwtmon-tls-cert-{}-{}",
            std::process::id(),
            crate::unique()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=api.test",
                "-keyout",
            ])
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .output()
            .expect("openssl (cargo xtask setup installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    /// Its directory (`cert.pem`, `key.pem`).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// An nginx `server` block body that serves TLS with it and answers
    /// 200 "ok" everywhere.
    pub fn server_block(&self) -> String {
        format!(
            "ssl_certificate {0}/cert.pem;\n ssl_certificate_key {0}/key.pem;\n\
             location / {{ return 200 \"ok\\n\"; }}",
            self.dir.display()
        )
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
