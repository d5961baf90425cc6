//! Memory an attacker controls stays within its byte budgets while the
//! flood runs: live, in a namespace, against a server that accepts and
//! never answers. Complete requests pile up waiting for responses
//! (`capture.max_pending_bytes`), and headers that never end pile up in
//! reassembly (`capture.max_reassembly_bytes`); `/metrics` is scraped
//! throughout. Needs root.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use jwtmon_tests::{
    PinDir, TempFile,
    daemon::Daemon,
    metrics::{sample, scrape},
    netns::{TestNet, in_netns},
};

const PENDING: usize = 65_536;
const REASSEMBLY: usize = 1 << 20;

/// Accepts connections and reads them, never answering, until dropped.
struct Silent {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Silent {
    fn start() -> Self {
        let l = TcpListener::bind("0.0.0.0:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            let mut conns: Vec<TcpStream> = Vec::new();
            let mut buf = [0u8; 16384];
            while !s.load(Ordering::Relaxed) {
                while let Ok((c, _)) = l.accept() {
                    c.set_nonblocking(true).unwrap();
                    conns.push(c);
                }
                for c in &mut conns {
                    while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Self { port, stop }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn pending_and_reassembly_bytes_stay_within_budget_under_a_flood() {
    let net = TestNet::new().expect("test network");
    let pin = PinDir::new("flood");
    let server = Silent::start();
    let metrics_port = jwtmon_tests::free_port();
    let cfg = TempFile::new(
        "flood",
        &format!(
            "[daemon]\nemit = \"none\"\n[capture]\nports = [{}]\nresponse_timeout = \"60s\"\n\
             max_pending_bytes = {PENDING}\nmax_reassembly_bytes = {REASSEMBLY}\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n",
            server.port
        ),
    );
    let d =
        Daemon::start(&pin, &["--config", cfg.path(), "--iface", &net.host_if], 1).expect("daemon");
    let dst: SocketAddr = format!("{}:{}", net.host_ip, server.port).parse().unwrap();

    // Scrape while the flood runs.
    let done = Arc::new(AtomicBool::new(false));
    let watching = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut pending, mut reassembly) = (0f64, 0f64);
            let end = Instant::now() + Duration::from_mins(1);
            while !done.load(Ordering::Relaxed) && Instant::now() < end {
                let m = scrape(metrics_port);
                pending = pending.max(sample(
                    &m,
                    "jwtmon_capture_buffered_bytes{stage=\"pending\"}",
                ));
                reassembly = reassembly.max(sample(
                    &m,
                    "jwtmon_capture_buffered_bytes{stage=\"reassembly\"}",
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
            (pending, reassembly)
        })
    };
    let flood = in_netns(&net.ns, move || {
        let mut conns = Vec::new();
        // 40 connections x 60 complete 1 KB requests: ~2.4 MB waiting.
        let request = format!(
            "GET /item?pad={} HTTP/1.1\r\nHost: api\r\n\r\n",
            "x".repeat(1000)
        );
        for _ in 0..40 {
            let Ok(mut c) = TcpStream::connect_timeout(&dst, Duration::from_secs(2)) else {
                continue;
            };
            for _ in 0..60 {
                let _ = c.write_all(request.as_bytes());
            }
            conns.push(c);
        }
        // 300 connections x 8 KB of a header block that never ends: ~2.4 MB.
        let head = format!(
            "GET /x HTTP/1.1\r\nHost: api\r\nX-Long: {}",
            "y".repeat(8000)
        );
        for _ in 0..300 {
            let Ok(mut c) = TcpStream::connect_timeout(&dst, Duration::from_secs(2)) else {
                continue;
            };
            let _ = c.write_all(head.as_bytes());
            conns.push(c);
        }
        std::thread::sleep(Duration::from_secs(4));
        conns.len()
    })
    .expect("namespace");
    assert!(flood >= 300, "only {flood} connections");
    done.store(true, Ordering::Relaxed);
    let (pending, reassembly) = watching.join().unwrap();
    assert!(pending <= PENDING as f64, "pending peaked at {pending}");
    assert!(
        reassembly <= REASSEMBLY as f64,
        "reassembly peaked at {reassembly}"
    );
    // The flood did reach the budgets (else this test proves nothing).
    assert!(
        pending > PENDING as f64 / 4.0,
        "pending only reached {pending}"
    );
    assert!(
        reassembly > REASSEMBLY as f64 / 4.0,
        "reassembly only reached {reassembly}"
    );
    let log = d.stop_with_log();
    assert!(log.contains("capture stopped"), "{log}");
}
