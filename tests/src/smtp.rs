//! A real SMTP server for the tests, on loopback: EHLO, STARTTLS, AUTH
//! PLAIN and LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT, one thread per
//! connection; plain, STARTTLS-capable, or TLS from the first byte (rustls
//! with a certificate from [`TestCa`]). It records every message, the
//! credentials it was given and whether each command arrived encrypted.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Result;
use base64::Engine;
use rustls::{ServerConfig, ServerConnection, StreamOwned, pki_types::PrivateKeyDer};

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
    /// Whether the session was encrypted when the message came.
    pub tls: bool,
}

/// How the server secures a session.
#[derive(Clone)]
pub enum Security {
    /// Plain text only; no STARTTLS offered.
    Plain,
    /// Plain first, STARTTLS offered (port 587 style).
    StartTls(Arc<ServerConfig>),
    /// TLS from the first byte (SMTPS, port 465 style).
    Implicit(Arc<ServerConfig>),
}

/// A throwaway CA and a `localhost` / `127.0.0.1` server certificate it
/// signed, as a private mail relay would have.
pub struct TestCa {
    /// The CA certificate, PEM: what a client must trust.
    pub ca_pem: String,
    /// A server configuration presenting the signed certificate.
    pub server: Arc<ServerConfig>,
}

impl TestCa {
    /// Makes a new CA and server certificate.
    pub fn new() -> Result<Self> {
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "jwtmon test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)?;
        let key = rcgen::KeyPair::generate()?;
        let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?
            .signed_by(&key, &ca)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::try_from(key.serialize_der()).map_err(anyhow::Error::msg)?,
            )?;
        Ok(Self {
            ca_pem: ca.pem(),
            server: Arc::new(server),
        })
    }
}

/// The running server; stops on drop.
pub struct SmtpSink {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Messages received.
    pub mails: Arc<Mutex<Vec<Mail>>>,
    /// Every command verb received, prefixed `tls ` or `plain `.
    pub commands: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl SmtpSink {
    /// A plain server on 127.0.0.1, a free port.
    pub fn start() -> Result<Self> {
        Self::start_with(Security::Plain)
    }

    /// A server with the given security on 127.0.0.1, a free port.
    pub fn start_with(security: Security) -> Result<Self> {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        l.set_nonblocking(true)?;
        let mails = Arc::new(Mutex::new(Vec::new()));
        let commands = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, c, s) = (mails.clone(), commands.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((conn, _)) => {
                        let (m, c, sec) = (m.clone(), c.clone(), security.clone());
                        std::thread::spawn(move || {
                            let _ = session(conn, sec, &m, &c);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(Self {
            port,
            mails,
            commands,
            stop,
        })
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A session's stream, before or after TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    /// Transient, while upgrading.
    Gone,
}

impl Conn {
    fn encrypted(cfg: &Arc<ServerConfig>, tcp: TcpStream) -> std::io::Result<Self> {
        let tls = ServerConnection::new(cfg.clone()).map_err(std::io::Error::other)?;
        Ok(Conn::Tls(Box::new(StreamOwned::new(tls, tcp))))
    }

    fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_))
    }

    fn say(&mut self, s: &str) -> std::io::Result<()> {
        self.write_all(format!("{s}\r\n").as_bytes())?;
        self.flush()
    }

    /// One line, CRLF included; empty at end of stream. At most 64 KiB.
    fn line(&mut self) -> std::io::Result<String> {
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        while out.len() < 65536 && self.read(&mut b)? == 1 {
            out.push(b[0]);
            if b[0] == b'\n' {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(t) => t.read(buf),
            Conn::Tls(t) => t.read(buf),
            Conn::Gone => Ok(0),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(t) => t.write(buf),
            Conn::Tls(t) => t.write(buf),
            Conn::Gone => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(t) => t.flush(),
            Conn::Tls(t) => t.flush(),
            Conn::Gone => Ok(()),
        }
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn session(
    tcp: TcpStream,
    security: Security,
    mails: &Mutex<Vec<Mail>>,
    commands: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    tcp.set_nonblocking(false)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut c = match &security {
        Security::Implicit(cfg) => Conn::encrypted(cfg, tcp)?,
        _ => Conn::Plain(tcp),
    };
    c.say("220 localhost test SMTP")?;
    let mut mail = Mail::default();
    let mut auth = None;
    loop {
        let line = c.line()?;
        if line.is_empty() {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let verb = upper.split([' ', ':']).next().unwrap_or_default();
        let wire = if c.is_tls() { "tls" } else { "plain" };
        commands.lock().unwrap().push(format!("{wire} {verb}"));
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            c.say("250-localhost")?;
            if matches!(security, Security::StartTls(_)) && !c.is_tls() {
                c.say("250-STARTTLS")?;
            }
            c.say("250-AUTH PLAIN LOGIN")?;
            c.say("250 8BITMIME")?;
        } else if upper == "STARTTLS" {
            match (&security, std::mem::replace(&mut c, Conn::Gone)) {
                (Security::StartTls(cfg), Conn::Plain(mut tcp)) => {
                    tcp.write_all(b"220 2.0.0 ready to start TLS\r\n")?;
                    // RFC 3207: everything known before the upgrade is forgotten.
                    c = Conn::encrypted(cfg, tcp)?;
                    auth = None;
                    mail = Mail::default();
                }
                (_, old) => {
                    c = old;
                    c.say("502 not implemented")?;
                }
            }
        } else if upper.starts_with("AUTH PLAIN") {
            let arg = if let Some(a) = cmd.split_whitespace().nth(2) {
                a.to_string()
            } else {
                c.say("334 ")?;
                c.line()?.trim().to_string()
            };
            let parts: Vec<String> = b64(&arg).split('\0').map(str::to_string).collect();
            auth = Some(format!(
                "{}:{}",
                parts.get(1).cloned().unwrap_or_default(),
                parts.get(2).cloned().unwrap_or_default()
            ));
            c.say("235 2.7.0 ok")?;
        } else if upper.starts_with("AUTH LOGIN") {
            c.say("334 VXNlcm5hbWU6")?;
            let user = b64(&c.line()?);
            c.say("334 UGFzc3dvcmQ6")?;
            auth = Some(format!("{user}:{}", b64(&c.line()?)));
            c.say("235 2.7.0 ok")?;
        } else if upper.starts_with("MAIL FROM:") {
            mail = Mail {
                from: cmd[10..].trim().to_string(),
                auth: auth.clone(),
                tls: c.is_tls(),
                ..Default::default()
            };
            c.say("250 ok")?;
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(cmd[8..].trim().to_string());
            c.say("250 ok")?;
        } else if upper == "DATA" {
            c.say("354 go on")?;
            let mut data = String::new();
            loop {
                let line = c.line()?;
                if line.is_empty() {
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
            c.say("250 queued")?;
        } else if upper == "QUIT" {
            c.say("221 bye")?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            c.say("250 ok")?;
        } else {
            c.say("502 not implemented")?;
        }
    }
}
