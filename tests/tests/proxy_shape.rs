//! The production shape: a reverse proxy on the host forwards plain HTTP
//! over loopback to the app. jwtmon captures on `lo` (role capture, proxy
//! trusted) and enforces on the public interface (role enforce), where the
//! client's address, learned from X-Forwarded-For, is the packet source.
//! Needs root.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use jwtmon_tests::{
    PinDir,
    daemon::{Daemon, cli_ok},
    http::TestServer,
    netns::TestNet,
};

/// Upstream app port on loopback (monitored by default).
const APP: u16 = 5000;

/// A minimal reverse proxy: one request per connection, adds
/// X-Forwarded-For with the peer address, relays the response.
struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(ip: &str) -> Proxy {
        let l = TcpListener::bind((ip, 0)).unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((mut c, peer)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = vec![0u8; 8192];
                let n = c.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let Some((line, rest)) = req.split_once("\r\n") else {
                    continue;
                };
                let fwd = format!(
                    "{line}\r\nX-Forwarded-For: {}\r\nConnection: close\r\n{rest}",
                    peer.ip()
                );
                let mut up = TcpStream::connect(("127.0.0.1", APP)).unwrap();
                up.write_all(fwd.as_bytes()).unwrap();
                up.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut resp = Vec::new();
                let _ = up.read_to_end(&mut resp);
                let _ = c.write_all(&resp);
            }
        });
        Proxy { port, stop }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn capture_on_loopback_enforce_on_the_nic_with_a_trusted_proxy() {
    let net = TestNet::new().expect("test network");
    let app = TestServer::start("127.0.0.1", APP).expect("app on loopback");
    let proxy = Proxy::start(&net.host_ip);
    let pin = PinDir::new("proxy");
    let cfg = std::env::temp_dir().join(format!("jwtmon-proxy-{}.toml", std::process::id()));
    std::fs::write(&cfg, "[capture]\ntrusted_proxies = [\"127.0.0.1\"]\n").unwrap();
    let enforce = format!("{}:enforce", net.host_if);
    let mut daemon = Daemon::start(
        &pin,
        &[
            "--iface",
            &enforce,
            "--iface",
            "lo:capture",
            "--emit",
            "observations",
            "--config",
            cfg.to_str().unwrap(),
        ],
        2,
    )
    .expect("daemon");
    assert!(
        daemon
            .stdout
            .iter()
            .any(|l| l.contains("lo") && l.contains("role capture")),
        "{:?}",
        daemon.stdout
    );

    let body = net.curl_path(proxy.port, "/api/v1/accounts/42/balance", 3);
    assert_eq!(body.as_deref(), Some("ok"));
    let obs = daemon.json_lines(1, Duration::from_secs(10));
    assert_eq!(obs.len(), 1, "one observation from loopback");
    let o = &obs[0];
    assert_eq!(o["path"], "/api/v1/accounts/42/balance");
    assert_eq!(o["src_ip"], "127.0.0.1");
    assert_eq!(o["proxy_ip"], "127.0.0.1");
    assert_eq!(
        o["client_ip"],
        net.peer_ip.as_str(),
        "client behind the trusted proxy"
    );
    assert_eq!(o["status"], 200);

    // The client address found behind the proxy is blocked on the NIC.
    cli_ok(
        &pin,
        &["block", o["client_ip"].as_str().unwrap(), "--ttl", "1m"],
    );
    assert_eq!(
        net.curl_path(proxy.port, "/again", 2),
        None,
        "dropped at the NIC"
    );
    assert!(daemon.stop());
    std::fs::remove_file(&cfg).ok();
    drop(app);
}
