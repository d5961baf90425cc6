//! `[capture.tls]`: whether TLS plaintext is captured through OpenSSL
//! uprobes, from which libraries, and how much of each call.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// Most plaintext bytes one call can have copied (one TLS record).
pub const MAX_COPY_BYTES: u32 = 16 << 10;

/// `[capture.tls]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Attach the probes.
    pub enabled: bool,
    /// `"auto"` and/or paths of libraries or statically linked binaries.
    pub libraries: Vec<String>,
    /// How often "auto" looks for newly mapped libraries.
    #[serde(with = "humantime_serde")]
    pub rescan_interval: Duration,
    /// Plaintext bytes copied per `SSL_read` call.
    pub copy_bytes: u32,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            libraries: vec!["auto".into()],
            rescan_interval: Duration::from_secs(10),
            copy_bytes: MAX_COPY_BYTES,
        }
    }
}

/// Where the probes go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Library {
    /// Every OpenSSL that processes map or ldconfig knows.
    Auto,
    /// One file (a library, or a binary with OpenSSL linked in).
    Path(PathBuf),
}

impl TlsConfig {
    /// The `libraries` entries, parsed.
    pub fn sources(&self) -> Vec<Library> {
        self.libraries
            .iter()
            .map(|l| {
                if l == "auto" {
                    Library::Auto
                } else {
                    Library::Path(PathBuf::from(l))
                }
            })
            .collect()
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if self.libraries.is_empty() {
            return Err(
                "capture.tls.libraries is empty: use [\"auto\"] or name the libraries".into(),
            );
        }
        for l in &self.libraries {
            if l != "auto" && !l.starts_with('/') {
                return Err(format!(
                    "capture.tls.libraries: `{l}` is neither \"auto\" nor an absolute path"
                ));
            }
        }
        if self.copy_bytes == 0 || self.copy_bytes > MAX_COPY_BYTES {
            return Err(format!(
                "capture.tls.copy_bytes = {}: must be between 1 and {MAX_COPY_BYTES}",
                self.copy_bytes
            ));
        }
        if self.rescan_interval < Duration::from_secs(1) {
            return Err("capture.tls.rescan_interval: at least 1s".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off_and_auto_and_bad_values_are_named() {
        let c = TlsConfig::default();
        assert!(!c.enabled);
        assert_eq!(c.sources(), vec![Library::Auto]);
        let bad = |f: fn(&mut TlsConfig)| {
            let mut c = TlsConfig {
                enabled: true,
                ..TlsConfig::default()
            };
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.libraries = vec!["libssl.so.3".into()]).contains("absolute path"));
        assert!(bad(|c| c.libraries.clear()).contains("empty"));
        assert!(bad(|c| c.copy_bytes = 70_000).contains("copy_bytes"));
        assert!(bad(|c| c.rescan_interval = Duration::from_millis(10)).contains("1s"));
    }
}
