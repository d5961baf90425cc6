//! Pseudonymization (GDPR/AVG): client addresses in alerts, exports,
//! reports and the incident register are replaced by a keyed HMAC, stable
//! for one key and unlinkable without it. Owns `[privacy]`.

use std::{
    io::{Read, Write},
    net::IpAddr,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::secret::{self, SecretError};

/// `[privacy]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Replace client addresses by keyed pseudonyms outside the kernel maps.
    pub pseudonymize: bool,
    /// The HMAC key file (relative: under `daemon.state_dir`); created with
    /// a random key (mode 0600) when it does not exist, so pseudonyms stay
    /// stable across restarts.
    pub key_file: PathBuf,
    /// Take the key from this environment variable instead of the file.
    pub key_env: Option<String>,
    /// Also pseudonymize the JSON lines `run` and `analyze` write to
    /// stdout (the operator's console; raw by default, so the operator
    /// knows whom to block or unblock).
    pub pseudonymize_stdout: bool,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            pseudonymize: true,
            key_file: PathBuf::from("pseudonym.key"),
            key_env: None,
            pseudonymize_stdout: false,
        }
    }
}

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// Reading the configured secret.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Creating the key file.
    #[error("privacy.key_file {path}: cannot create the pseudonymization key: {source}")]
    Create {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Turns addresses into pseudonyms (or leaves them, when disabled).
#[derive(Clone)]
pub struct Pseudonymizer {
    key: Option<Vec<u8>>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.key.is_some() {
            "Pseudonymizer(keyed)"
        } else {
            "Pseudonymizer(off)"
        })
    }
}

impl Pseudonymizer {
    /// Pseudonyms under `key`.
    pub fn with_key(key: &[u8]) -> Self {
        Self {
            key: Some(key.to_vec()),
        }
    }

    /// Addresses shown as they are (`pseudonymize = false`).
    pub fn off() -> Self {
        Self { key: None }
    }

    /// [`Pseudonymizer::load`] with a relative `key_file` taken under
    /// `state_dir`.
    pub fn load_in(cfg: &PrivacyConfig, state_dir: &Path) -> Result<Self, PrivacyError> {
        let mut cfg = cfg.clone();
        cfg.key_file = state_dir.join(&cfg.key_file);
        Self::load(&cfg)
    }

    /// From the configuration: the key from `key_env`, else `key_file`
    /// (created when missing).
    pub fn load(cfg: &PrivacyConfig) -> Result<Self, PrivacyError> {
        if !cfg.pseudonymize {
            return Ok(Self::off());
        }
        if let Some(var) = &cfg.key_env {
            let key = secret::load("privacy.key_env", None, Some(var))?.expect("env given");
            return Ok(Self::with_key(key.expose().as_bytes()));
        }
        Ok(Self::with_key(&key_file(&cfg.key_file)?))
    }

    /// The pseudonymizer of stdout lines: on only with both `pseudonymize`
    /// and `pseudonymize_stdout`.
    pub fn for_stdout(cfg: &PrivacyConfig, state_dir: &Path) -> Result<Self, PrivacyError> {
        if cfg.pseudonymize && cfg.pseudonymize_stdout {
            Self::load_in(cfg, state_dir)
        } else {
            Ok(Self::off())
        }
    }

    /// Whether addresses are pseudonymized.
    pub fn enabled(&self) -> bool {
        self.key.is_some()
    }

    /// The address's pseudonym, `px-` and 16 hex digits (or the address
    /// itself when disabled).
    pub fn ip(&self, ip: IpAddr) -> String {
        let Some(key) = &self.key else {
            return ip.to_string();
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        match ip {
            IpAddr::V4(a) => mac.update(&a.octets()),
            IpAddr::V6(a) => mac.update(&a.octets()),
        }
        tag("px-", mac)
    }

    /// A username's pseudonym, `pu-` and 16 hex digits (case-insensitive;
    /// the name itself when disabled).
    pub fn name(&self, name: &str) -> String {
        let Some(key) = &self.key else {
            return name.to_string();
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(b"user:");
        mac.update(name.to_lowercase().as_bytes());
        tag("pu-", mac)
    }

    /// A JSON line with its addresses and usernames scrubbed (as is when
    /// disabled).
    pub fn line(&self, mut v: serde_json::Value) -> serde_json::Value {
        self.scrub(&mut v);
        v
    }

    /// Pseudonymizes the addresses and usernames a finding's evidence
    /// carries (`ips`, `network`, `aggregated`, `username`, at any depth),
    /// before it is stored or sent. A no-op when disabled.
    pub fn scrub(&self, v: &mut serde_json::Value) {
        use serde_json::Value;
        if !self.enabled() {
            return;
        }
        match v {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    match (k.as_str(), &mut *v) {
                        ("username" | "user" | "subject", Value::String(s)) => *s = self.name(s),
                        (
                            "ips" | "addresses" | "ip" | "network" | "aggregated" | "client"
                            | "src_ip" | "client_ip" | "proxy_ip" | "dst_ip",
                            _,
                        ) => {
                            self.scrub_addresses(v);
                        }
                        ("x_forwarded_for", Value::String(s)) => {
                            let hops: Vec<String> = s
                                .split(',')
                                .map(|h| {
                                    let h = h.trim();
                                    h.parse::<IpAddr>()
                                        .map_or_else(|_| h.to_string(), |ip| self.ip(ip))
                                })
                                .collect();
                            *s = hops.join(", ");
                        }
                        _ => self.scrub(v),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.scrub(i)),
            _ => {}
        }
    }

    /// Replaces every address or network string in `v`.
    fn scrub_addresses(&self, v: &mut serde_json::Value) {
        use serde_json::Value;
        match v {
            Value::String(s) => {
                let (addr, prefix) = s
                    .split_once('/')
                    .map_or((s.as_str(), None), |(a, p)| (a, Some(p)));
                if let Ok(ip) = addr.parse::<IpAddr>() {
                    *s = match prefix {
                        Some(p) => format!("{}/{p}", self.ip(ip)),
                        None => self.ip(ip),
                    };
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.scrub_addresses(i)),
            _ => {}
        }
    }
}

/// `prefix` and the first 8 bytes of the MAC in hex.
fn tag(prefix: &str, mac: Hmac<Sha256>) -> String {
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(prefix.len() + 16);
    out.push_str(prefix);
    for b in &tag[..8] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Reads the key file, or creates it with 32 random bytes.
fn key_file(path: &Path) -> Result<Vec<u8>, PrivacyError> {
    let err = |source| PrivacyError::Create {
        path: path.display().to_string(),
        source,
    };
    if let Ok(key) = std::fs::read(path)
        && !key.is_empty()
    {
        return Ok(key);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut key = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(err)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(&key).map_err(err)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdout_lines_keep_raw_addresses_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = PrivacyConfig::default();
        let raw = Pseudonymizer::for_stdout(&cfg, dir.path()).unwrap();
        let line = serde_json::json!({"src_ip": "203.0.113.9", "subject": "alice",
            "x_forwarded_for": "198.51.100.1, 10.0.0.1", "detail": {"ips": ["192.0.2.1"]}});
        assert_eq!(
            raw.line(line.clone()),
            line,
            "the console is the operator's own"
        );
        cfg.pseudonymize_stdout = true;
        let p = Pseudonymizer::for_stdout(&cfg, dir.path()).unwrap();
        let out = p.line(line).to_string();
        for raw in [
            "203.0.113.9",
            "alice",
            "198.51.100.1",
            "10.0.0.1",
            "192.0.2.1",
        ] {
            assert!(!out.contains(raw), "{raw} in {out}");
        }
        assert!(out.contains("px-") && out.contains("pu-"), "{out}");
    }

    #[test]
    fn evidence_addresses_and_usernames_are_scrubbed() {
        let p = Pseudonymizer::with_key(b"key");
        let mut d = serde_json::json!({
            "distinct_ips": 4,
            "ips": ["198.51.100.1", "2001:db8::9"],
            "username": "Alice@Example.com",
            "network": "203.0.113.0/24",
            "decision": {"aggregated": "198.51.100.0/24", "ttl_s": 600},
            "shape": "one username, many addresses",
        });
        p.scrub(&mut d);
        let text = d.to_string();
        for raw in ["198.51.100", "2001:db8", "Alice", "203.0.113"] {
            assert!(!text.contains(raw), "{raw} left in {text}");
        }
        assert_eq!(d["ips"][0], p.ip("198.51.100.1".parse().unwrap()));
        assert_eq!(
            d["username"],
            p.name("alice@example.com"),
            "case-insensitive"
        );
        assert!(d["network"].as_str().unwrap().ends_with("/24"));
        assert_eq!(
            (d["distinct_ips"].clone(), d["decision"]["ttl_s"].clone()),
            (4.into(), 600.into())
        );
        assert_eq!(d["shape"], "one username, many addresses");
        // Disabled: untouched.
        let mut raw = serde_json::json!({"ips": ["198.51.100.1"]});
        Pseudonymizer::off().scrub(&mut raw);
        assert_eq!(raw["ips"][0], "198.51.100.1");
    }

    #[test]
    fn stable_per_key_different_across_keys() {
        let a = Pseudonymizer::with_key(b"key one");
        let b = Pseudonymizer::with_key(b"key two");
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let other: IpAddr = "203.0.113.8".parse().unwrap();
        assert_eq!(a.ip(ip), a.ip(ip));
        assert_ne!(a.ip(ip), b.ip(ip));
        assert_ne!(a.ip(ip), a.ip(other));
        assert!(a.ip(ip).starts_with("px-") && a.ip(ip).len() == 19);
        assert!(!a.ip(ip).contains("203.0"));
        assert_eq!(Pseudonymizer::off().ip(ip), "203.0.113.7");
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = PrivacyConfig {
            key_file: dir.path().join("sub/pseudonym.key"),
            ..Default::default()
        };
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let first = Pseudonymizer::load(&cfg).unwrap().ip(ip);
        let again = Pseudonymizer::load(&cfg).unwrap().ip(ip);
        assert_eq!(first, again, "the key survives a restart");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cfg.key_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let off = PrivacyConfig {
            pseudonymize: false,
            ..cfg
        };
        assert_eq!(Pseudonymizer::load(&off).unwrap().ip(ip), "2001:db8::1");
    }
}
