//! A minimal HTTP/1.1 client for the tests: one request per connection,
//! bounded connect and read timeouts, the status code or nothing. Used
//! inside a namespace thread ([`crate::netns::in_netns`]).

use std::{
    io::{Read, Write},
    net::{IpAddr, SocketAddr, TcpStream},
    time::Duration,
};

use socket2::{Domain, Socket, Type};

/// Sends one request; returns the response status, or `None` when the
/// connection or the answer did not come within `timeout`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Option<u16> {
    call(None, addr, method, path, headers, body, timeout).map(|(status, _)| status)
}

/// Sends one request from source address `src` (one of the namespace's;
/// `None`: the kernel picks); returns status and body, or `None` when the
/// connection or the whole answer did not come within `timeout`.
pub fn call(
    src: Option<IpAddr>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Option<(u16, String)> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None).ok()?;
    if let Some(src) = src {
        sock.bind(&SocketAddr::new(src, 0).into()).ok()?;
    }
    sock.connect_timeout(&addr.into(), timeout).ok()?;
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: jwtmon-test/1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    // The server closes after the answer (Connection: close).
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) if !got.is_empty() => break,
            Err(_) => return None,
        }
        if got.len() > 65_536 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&got);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    Some((status, body.unwrap_or_default()))
}

/// `POST /login` with a JSON body naming `user` and `password`.
pub fn login(addr: SocketAddr, user: &str, password: &str, timeout: Duration) -> Option<u16> {
    login_from(None, addr, "/login", user, password, timeout).map(|(status, _)| status)
}

/// `POST path` with a JSON login body, from `src`; status and body.
pub fn login_from(
    src: Option<IpAddr>,
    addr: SocketAddr,
    path: &str,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Option<(u16, String)> {
    let body = format!(r#"{{"username":"{user}","password":"{password}"}}"#);
    call(
        src,
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        timeout,
    )
}

/// An unsigned (`alg: none`) token for `sub`.
pub fn alg_none_token(sub: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let p = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"sub":"{sub}","role":"admin","exp":4102444800}}"#
    ));
    format!("{h}.{p}.")
}
