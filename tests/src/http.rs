//! A real HTTP/1.1 server for the tests: keep-alive and pipelining, one
//! thread per connection. Paths ending in `/401` or `/404` get that status,
//! `/login` with a body containing `"password":"right"` gets 200 and other
//! `/login` bodies 401; everything else 200 `ok`. Optionally writes an
//! access log (one line per answered request, after the answer, like
//! nginx): `RFC3339-TIME CLIENT-IP "METHOD PATH HTTP/1.1" STATUS`.

use std::{
    io::{Read, Write},
    net::{IpAddr, TcpListener, TcpStream},
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context, Result};

/// The status the server answers `path` (and `body`) with.
pub fn status_for(path: &str, body: &[u8]) -> u16 {
    if path.ends_with("/401") {
        401
    } else if path.ends_with("/404") {
        404
    } else if path.starts_with("/login") {
        if body.windows(18).any(|w| w == br#""password":"right""#) {
            200
        } else {
            401
        }
    } else {
        200
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Other",
    }
}

/// A running server; stops on drop.
pub struct TestServer {
    /// Listening port.
    pub port: u16,
    /// Requests answered.
    pub served: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Listens on `ip:port` (port 0 = any).
    pub fn start(ip: &str, port: u16) -> Result<Self> {
        Self::launch(ip, port, None)
    }

    /// Like [`TestServer::start`], appending to the access log `log`.
    pub fn start_logged(ip: &str, port: u16, log: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        Self::launch(ip, port, Some(Arc::new(Mutex::new(file))))
    }

    fn launch(ip: &str, port: u16, log: Option<Arc<Mutex<std::fs::File>>>) -> Result<Self> {
        let listener = TcpListener::bind((ip, port)).context("binding the test server")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), served.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, peer)) => {
                        let _ = conn.set_nodelay(true);
                        let (s, n, log) = (s.clone(), n.clone(), log.clone());
                        std::thread::spawn(move || serve(conn, peer.ip(), &s, &n, log.as_deref()));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Ok(Self {
            port,
            served,
            stop,
            thread: Some(thread),
        })
    }
}

fn serve(
    mut conn: TcpStream,
    peer: IpAddr,
    stop: &AtomicBool,
    served: &AtomicU64,
    log: Option<&Mutex<std::fs::File>>,
) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16384];
    let mut idle = 0;
    while !stop.load(Ordering::Relaxed) && idle < 150 {
        // Answer every complete request in the buffer (pipelining).
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            let Ok(httparse::Status::Complete(head)) = req.parse(&buf) else {
                break;
            };
            let len: usize = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() < head + len {
                break;
            }
            let close = req.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("connection") && h.value.eq_ignore_ascii_case(b"close")
            });
            let path = req.path.unwrap_or("/").to_string();
            let method = req.method.unwrap_or("GET").to_string();
            let status = status_for(&path, &buf[head..head + len]);
            buf.drain(..head + len);
            let body = if status == 200 { "ok" } else { "no" };
            let resp = format!(
                "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
                reason(status),
                body.len()
            );
            if conn.write_all(resp.as_bytes()).is_err() {
                return;
            }
            served.fetch_add(1, Ordering::Relaxed);
            if let Some(log) = log {
                let line = format!(
                    "{} {peer} \"{method} {path} HTTP/1.1\" {status}\n",
                    humantime::format_rfc3339_millis(std::time::SystemTime::now())
                );
                let _ = log.lock().map(|mut f| f.write_all(line.as_bytes()));
            }
            if close {
                return;
            }
        }
        match conn.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                idle = 0;
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(_) => idle += 1,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
