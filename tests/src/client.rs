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
    let s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    exchange(s, addr, method, path, headers, body, timeout)
}

/// Like [`login`], from source address `src` (one of the namespace's).
pub fn login_from(
    src: IpAddr,
    addr: SocketAddr,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Option<u16> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None).ok()?;
    sock.bind(&SocketAddr::new(src, 0).into()).ok()?;
    sock.connect_timeout(&addr.into(), timeout).ok()?;
    let body = login_body(user, password);
    exchange(
        sock.into(),
        addr,
        "POST",
        "/login",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        timeout,
    )
}

fn login_body(user: &str, password: &str) -> String {
    format!(r#"{{"username":"{user}","password":"{password}"}}"#)
}

/// Writes one request on a connected stream; reads the status.
fn exchange(
    mut s: TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Option<u16> {
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
    let mut buf = [0u8; 512];
    let mut got = Vec::new();
    while !got.windows(2).any(|w| w == b"\r\n") {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
        if got.len() > 4096 {
            return None;
        }
    }
    let line = String::from_utf8_lossy(&got);
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `POST /login` with a JSON body naming `user` and `password`.
pub fn login(addr: SocketAddr, user: &str, password: &str, timeout: Duration) -> Option<u16> {
    let body = login_body(user, password);
    request(
        addr,
        "POST",
        "/login",
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
