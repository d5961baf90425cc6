//! Event export for SIEMs: findings and decisions as JSON lines with
//! Elastic Common Schema field names, to stdout, a size-rotated file or
//! syslog, loadable as-is by Filebeat, Logstash or Splunk. Addresses are
//! pseudonymized like everywhere else outside the kernel. Owns `[export]`.

use std::{
    fs::File,
    io::Write,
    os::unix::net::UnixDatagram,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::warn;

use crate::{
    finding::{Finding, Severity},
    privacy::Pseudonymizer,
    target::Target,
};

/// ECS version the documents follow.
pub const ECS_VERSION: &str = "8.11.0";

/// Where events go.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExportTarget {
    /// Nowhere.
    None,
    /// Standard output (set `daemon.emit = "none"`).
    Stdout,
    /// A file, rotated by size.
    File,
    /// The local syslog socket.
    Syslog,
}

/// `[export]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExportConfig {
    /// none, stdout, file or syslog.
    pub target: ExportTarget,
    /// The file (target = "file").
    pub path: PathBuf,
    /// Rotate when the file would pass this size.
    pub max_bytes: u64,
    /// Rotated files kept (`events.json.1` is the newest).
    pub keep: u32,
    /// The syslog socket (target = "syslog").
    pub syslog_socket: PathBuf,
}

impl Default for ExportConfig {
    fn default() -> Self {
        Self {
            target: ExportTarget::None,
            path: PathBuf::from("/var/log/jwtmon/events.json"),
            max_bytes: 100 << 20,
            keep: 5,
            syslog_socket: PathBuf::from("/dev/log"),
        }
    }
}

/// ECS `event.severity`, Elastic's risk scale.
fn severity_number(s: Severity) -> u8 {
    match s {
        Severity::Low => 21,
        Severity::Medium => 47,
        Severity::High => 73,
        Severity::Critical => 99,
    }
}

fn ts(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// `source` of an address: `ip` when shown as is, `address` for a pseudonym.
fn source(p: &Pseudonymizer, ip: std::net::IpAddr) -> Value {
    if p.enabled() {
        json!({ "address": p.ip(ip) })
    } else {
        json!({ "ip": ip.to_string(), "address": ip.to_string() })
    }
}

fn base(now: SystemTime) -> Value {
    json!({
        "ecs": { "version": ECS_VERSION },
        "observer": { "vendor": "jwtmon", "product": "jwtmon", "type": "ids",
                      "version": env!("CARGO_PKG_VERSION") },
        "event": { "module": "jwtmon", "created": ts(now) },
    })
}

/// The ECS document of a decided finding.
pub fn finding_doc(
    f: &Finding,
    p: &Pseudonymizer,
    incident: Option<i64>,
    now: SystemTime,
) -> Value {
    let mut d = base(now);
    let (method, path) = f.endpoint.split_once(' ').unwrap_or(("", &f.endpoint));
    let denied = matches!(
        f.action.as_str(),
        "block_ip" | "already_blocked" | "revoke_token"
    );
    let src = source(p, f.src_ip);
    d["@timestamp"] = json!(ts(f.time));
    d["message"] = json!(format!(
        "{} {} from {} ({})",
        f.severity,
        f.kind,
        src["address"].as_str().unwrap_or(""),
        f.action
    ));
    d["log"] = json!({ "level": match f.severity { Severity::Low => "info", Severity::Medium => "notice",
                                                    Severity::High => "warning", Severity::Critical => "critical" } });
    let e = &mut d["event"];
    e["kind"] = json!(if f.action == "log" { "event" } else { "alert" });
    e["category"] = json!(["intrusion_detection", "web"]);
    e["type"] = json!([if denied { "denied" } else { "info" }]);
    e["action"] = json!(f.kind);
    e["dataset"] = json!("jwtmon.finding");
    e["severity"] = json!(severity_number(f.severity));
    d["rule"] = json!({ "name": f.kind, "ruleset": "jwtmon" });
    d["source"] = src;
    if !method.is_empty() {
        d["http"] = json!({ "request": { "method": method } });
    }
    d["url"] = json!({ "path": path });
    if let Some(s) = &f.subject {
        d["user"] = json!({ "name": s });
    }
    d["jwtmon"] = json!({
        "severity": f.severity,
        "decision": f.action,
        "token_id": f.token_id,
        "incident_id": incident,
        "detail": f.detail,
    });
    d
}

/// The ECS document of a block taking effect (`ttl` set) or running out.
pub fn block_doc(
    target: Target,
    kind: &str,
    ttl: Option<Duration>,
    p: &Pseudonymizer,
    now: SystemTime,
) -> Value {
    let mut d = base(now);
    d["@timestamp"] = json!(ts(now));
    let e = &mut d["event"];
    e["kind"] = json!("event");
    e["category"] = json!(["network"]);
    e["dataset"] = json!("jwtmon.decision");
    if let Some(t) = ttl {
        e["type"] = json!(["denied", "start"]);
        e["action"] = json!("block_ip");
        e["duration"] = json!(t.as_nanos() as u64);
    } else {
        e["type"] = json!(["end"]);
        e["action"] = json!("block_expired");
    }
    let shown = match target {
        Target::Ip(ip) => {
            d["source"] = source(p, ip);
            p.ip(ip)
        }
        net => net.to_string(),
    };
    d["message"] = json!(match ttl {
        Some(t) => format!("blocked {shown} for {}s ({kind})", t.as_secs()),
        None => format!("block of {shown} expired"),
    });
    d["jwtmon"] = json!({ "target": shown, "reason": kind, "ttl_s": ttl.map(|t| t.as_secs()) });
    d
}

enum Out {
    None,
    Stdout,
    File { file: Option<File>, size: u64 },
    Syslog(Option<UnixDatagram>),
}

/// Writes documents to the configured target.
pub struct Exporter {
    cfg: ExportConfig,
    out: Out,
    /// Documents that could not be written.
    pub failed: u64,
    last_warn: Option<Instant>,
}

impl Exporter {
    /// The exporter for `[export]` (opened lazily; failures are counted
    /// and retried at the next document).
    pub fn new(cfg: &ExportConfig) -> Self {
        let out = match cfg.target {
            ExportTarget::None => Out::None,
            ExportTarget::Stdout => Out::Stdout,
            ExportTarget::File => Out::File {
                file: None,
                size: 0,
            },
            ExportTarget::Syslog => Out::Syslog(None),
        };
        Self {
            cfg: cfg.clone(),
            out,
            failed: 0,
            last_warn: None,
        }
    }

    /// Whether anything is exported.
    pub fn enabled(&self) -> bool {
        !matches!(self.out, Out::None)
    }

    /// Writes one document.
    pub fn write(&mut self, doc: &Value, severity: Severity) {
        let line = doc.to_string();
        let result = match &mut self.out {
            Out::None => Ok(()),
            Out::Stdout => {
                let mut o = std::io::stdout().lock();
                writeln!(o, "{line}").and_then(|()| o.flush())
            }
            Out::File { file, size } => write_file(&self.cfg, file, size, &line),
            Out::Syslog(sock) => write_syslog(&self.cfg.syslog_socket, sock, &line, severity),
        };
        if let Err(e) = result {
            self.failed += 1;
            if self
                .last_warn
                .is_none_or(|t| t.elapsed() > Duration::from_mins(1))
            {
                warn!(error = %e, target = ?self.cfg.target, failed = self.failed, "event export failed");
                self.last_warn = Some(Instant::now());
            }
        }
    }
}

fn rotate(path: &Path, keep: u32) -> std::io::Result<()> {
    let numbered = |n: u32| PathBuf::from(format!("{}.{n}", path.display()));
    if keep == 0 {
        return std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(numbered(keep));
    for n in (1..keep).rev() {
        let _ = std::fs::rename(numbered(n), numbered(n + 1));
    }
    std::fs::rename(path, numbered(1))
}

fn write_file(
    cfg: &ExportConfig,
    file: &mut Option<File>,
    size: &mut u64,
    line: &str,
) -> std::io::Result<()> {
    let need = line.len() as u64 + 1;
    if file.is_some() && *size > 0 && *size + need > cfg.max_bytes {
        file.take();
        rotate(&cfg.path, cfg.keep)?;
    }
    if file.is_none() {
        if let Some(dir) = cfg.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cfg.path)?;
        *size = f.metadata()?.len();
        *file = Some(f);
    }
    let f = file.as_mut().expect("opened above");
    f.write_all(format!("{line}\n").as_bytes())?;
    *size += need;
    Ok(())
}

fn write_syslog(
    socket: &Path,
    sock: &mut Option<UnixDatagram>,
    line: &str,
    s: Severity,
) -> std::io::Result<()> {
    if sock.is_none() {
        let d = UnixDatagram::unbound()?;
        d.connect(socket)?;
        *sock = Some(d);
    }
    // Facility local0 (16); syslog levels: critical 2, warning 4, notice 5, info 6.
    let level = match s {
        Severity::Critical => 2,
        Severity::High => 4,
        Severity::Medium => 5,
        Severity::Low => 6,
    };
    let msg = format!("<{}>jwtmon[{}]: {line}", 16 * 8 + level, std::process::id());
    let r = sock
        .as_ref()
        .expect("connected above")
        .send(msg.as_bytes())
        .map(|_| ());
    if r.is_err() {
        sock.take();
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Kind, Outcome};

    fn finding() -> Finding {
        Finding {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            kind: Kind::JwtAlgNone,
            severity: Severity::Critical,
            src_ip: "198.51.100.9".parse().unwrap(),
            subject: Some("alice".into()),
            token_id: Some("0123456789abcdef".into()),
            api_key_id: None,
            endpoint: "GET /api/v1/accounts/{id}/balance".into(),
            detail: json!({"alg": "none"}),
            action: Outcome::BlockIp,
            proven: true,
            transport: None,
        }
    }

    #[test]
    fn ecs_fields() {
        let p = Pseudonymizer::with_key(b"k");
        let d = finding_doc(&finding(), &p, Some(4), SystemTime::now());
        assert_eq!(d["@timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(d["event"]["kind"], "alert");
        assert_eq!(d["event"]["type"][0], "denied");
        assert_eq!(d["event"]["severity"], 99);
        assert_eq!(d["rule"]["name"], "jwt_alg_none");
        assert_eq!(d["http"]["request"]["method"], "GET");
        assert_eq!(d["url"]["path"], "/api/v1/accounts/{id}/balance");
        assert_eq!(d["user"]["name"], "alice");
        assert_eq!(d["jwtmon"]["incident_id"], 4);
        assert!(d["source"]["ip"].is_null(), "a pseudonym is not an IP");
        assert!(!d.to_string().contains("198.51.100.9"));
        let plain = finding_doc(&finding(), &Pseudonymizer::off(), None, SystemTime::now());
        assert_eq!(plain["source"]["ip"], "198.51.100.9");
        let b = block_doc(
            Target::Ip("198.51.100.9".parse().unwrap()),
            "jwt_alg_none",
            Some(Duration::from_mins(10)),
            &p,
            SystemTime::now(),
        );
        assert_eq!(b["event"]["action"], "block_ip");
        assert_eq!(b["jwtmon"]["ttl_s"], 600);
        assert!(!b.to_string().contains("198.51.100.9"));
    }

    #[test]
    fn file_rotates_and_keeps_n() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ExportConfig {
            target: ExportTarget::File,
            path: dir.path().join("log/events.json"),
            max_bytes: 2000,
            keep: 2,
            ..Default::default()
        };
        let mut x = Exporter::new(&cfg);
        let doc = finding_doc(&finding(), &Pseudonymizer::off(), None, SystemTime::now());
        for _ in 0..40 {
            x.write(&doc, Severity::High);
        }
        assert_eq!(x.failed, 0);
        let names: Vec<String> = std::fs::read_dir(dir.path().join("log"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        for n in ["events.json", "events.json.1", "events.json.2"] {
            let text = std::fs::read_to_string(dir.path().join("log").join(n)).unwrap();
            assert!(text.len() as u64 <= 2000);
            for line in text.lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["ecs"]["version"], ECS_VERSION);
            }
        }
    }

    #[test]
    fn syslog_datagrams() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("log.sock");
        let server = UnixDatagram::bind(&sock).unwrap();
        let cfg = ExportConfig {
            target: ExportTarget::Syslog,
            syslog_socket: sock,
            ..Default::default()
        };
        let mut x = Exporter::new(&cfg);
        x.write(&json!({"a": 1}), Severity::High);
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(msg.starts_with("<132>jwtmon["), "{msg}");
        assert!(msg.ends_with(r#"]: {"a":1}"#), "{msg}");
    }
}
