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

/// What a handler sees of a request.
pub struct Req<'a> {
    /// Method.
    pub method: &'a str,
    /// Path with query.
    pub path: &'a str,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// Body.
    pub body: &'a [u8],
}

/// Answers a request: status and body.
pub type Handler = Arc<dyn Fn(&Req<'_>) -> (u16, String) + Send + Sync>;

/// The default handler: [`status_for`], body `ok` or `no`.
fn plain(req: &Req<'_>) -> (u16, String) {
    let status = status_for(req.path, req.body);
    (status, if status == 200 { "ok" } else { "no" }.into())
}

struct Shared {
    stop: AtomicBool,
    served: Arc<AtomicU64>,
    log: Option<Mutex<std::fs::File>>,
    handler: Handler,
}

/// A running server; stops on drop.
pub struct TestServer {
    /// Listening port.
    pub port: u16,
    /// Requests answered.
    pub served: Arc<AtomicU64>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Listens on `ip:port` (port 0 = any).
    pub fn start(ip: &str, port: u16) -> Result<Self> {
        Self::serve(ip, port, None, Arc::new(plain))
    }

    /// Like [`TestServer::start`], appending to the access log `log`.
    pub fn start_logged(ip: &str, port: u16, log: &Path) -> Result<Self> {
        Self::serve(ip, port, Some(log), Arc::new(plain))
    }

    /// Listens on `ip:port`, answering with `handler`, optionally writing
    /// the access log `log`.
    pub fn serve(ip: &str, port: u16, log: Option<&Path>, handler: Handler) -> Result<Self> {
        let log = match log {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?,
            )),
            None => None,
        };
        let listener = TcpListener::bind((ip, port)).context("binding the test server")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            served: Arc::new(AtomicU64::new(0)),
            log,
            handler,
        });
        let sh = shared.clone();
        let thread = std::thread::spawn(move || {
            while !sh.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, peer)) => {
                        let _ = conn.set_nodelay(true);
                        let sh = sh.clone();
                        std::thread::spawn(move || serve(conn, peer.ip(), &sh));
                    }
                    // Wait for the next connection, not a fixed nap: a
                    // sleep here added up to 2 ms to every new connection's
                    // first answer (and to every latency measured through it).
                    Err(_) => wait_for_connection(&listener),
                }
            }
        });
        Ok(Self {
            port,
            served: shared.served.clone(),
            shared,
            thread: Some(thread),
        })
    }
}

fn serve(mut conn: TcpStream, peer: IpAddr, sh: &Shared) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16384];
    let mut idle = 0;
    while !sh.stop.load(Ordering::Relaxed) && idle < 150 {
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
            let authorization = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("authorization"))
                .and_then(|h| std::str::from_utf8(h.value).ok());
            let (status, body) = (sh.handler)(&Req {
                method: &method,
                path: &path,
                authorization,
                body: &buf[head..head + len],
            });
            buf.drain(..head + len);
            let resp = format!(
                "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
                reason(status),
                body.len()
            );
            if conn.write_all(resp.as_bytes()).is_err() {
                return;
            }
            sh.served.fetch_add(1, Ordering::Relaxed);
            if let Some(log) = &sh.log {
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
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Returns once `listener` has a connection to accept, or after 20 ms (so
/// the accept loop sees its stop flag).
fn wait_for_connection(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe {
        libc::poll(&raw mut pfd, 1, 20);
    }
}
