//! A real SMTP server for the tests, on loopback: EHLO, AUTH PLAIN and
//! LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT, one thread per connection.
//! It records the credentials it was given and every message.

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Result;
use base64::Engine;

/// One received message.
#[derive(Clone, Debug, Default)]
pub struct Mail {
    /// MAIL FROM.
    pub from: String,
    /// RCPT TO, in order.
    pub to: Vec<String>,
    /// The DATA, dot-unstuffed.
    pub data: String,
    /// `user:password` given with AUTH, if any.
    pub auth: Option<String>,
}

/// The running server; stops on drop.
pub struct SmtpSink {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Messages received.
    pub mails: Arc<Mutex<Vec<Mail>>>,
    stop: Arc<AtomicBool>,
}

impl SmtpSink {
    /// Listens on 127.0.0.1, a free port.
    pub fn start() -> Result<Self> {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        l.set_nonblocking(true)?;
        let mails = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (mails.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => {
                        let m = m.clone();
                        std::thread::spawn(move || {
                            let _ = session(c, &m);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(Self { port, mails, stop })
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn session(c: TcpStream, mails: &Mutex<Vec<Mail>>) -> std::io::Result<()> {
    c.set_nonblocking(false)?;
    c.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut w = c.try_clone()?;
    let mut r = BufReader::new(c);
    let mut say = |s: &str| w.write_all(format!("{s}\r\n").as_bytes());
    say("220 localhost test SMTP")?;
    let mut mail = Mail::default();
    let mut auth = None;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            say("250-localhost")?;
            say("250-AUTH PLAIN LOGIN")?;
            say("250 8BITMIME")?;
        } else if upper.starts_with("AUTH PLAIN") {
            let arg = cmd.split_whitespace().nth(2).map(str::to_string);
            let arg = match arg {
                Some(a) => a,
                None => {
                    say("334 ")?;
                    line.clear();
                    r.read_line(&mut line)?;
                    line.trim().to_string()
                }
            };
            let parts: Vec<String> = b64(&arg).split('\0').map(str::to_string).collect();
            auth = Some(format!(
                "{}:{}",
                parts.get(1).cloned().unwrap_or_default(),
                parts.get(2).cloned().unwrap_or_default()
            ));
            say("235 2.7.0 ok")?;
        } else if upper.starts_with("AUTH LOGIN") {
            say("334 VXNlcm5hbWU6")?;
            line.clear();
            r.read_line(&mut line)?;
            let user = b64(&line);
            say("334 UGFzc3dvcmQ6")?;
            line.clear();
            r.read_line(&mut line)?;
            auth = Some(format!("{user}:{}", b64(&line)));
            say("235 2.7.0 ok")?;
        } else if upper.starts_with("MAIL FROM:") {
            mail = Mail {
                from: cmd[10..].trim().to_string(),
                auth: auth.clone(),
                ..Default::default()
            };
            say("250 ok")?;
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(cmd[8..].trim().to_string());
            say("250 ok")?;
        } else if upper == "DATA" {
            say("354 go on")?;
            let mut data = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(
                    line.strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line),
                );
            }
            mail.data = data;
            mails.lock().unwrap().push(std::mem::take(&mut mail));
            say("250 queued")?;
        } else if upper == "QUIT" {
            say("221 bye")?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            say("250 ok")?;
        } else {
            say("502 not implemented")?;
        }
    }
}
