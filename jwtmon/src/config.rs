//! The TOML configuration: its schema, the embedded defaults (the documented
//! `config/jwtmon.toml`), loading and validation.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::target::Target;

/// The documented default configuration, compiled in.
pub const DEFAULT_TOML: &str = include_str!("../config/jwtmon.toml");

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// TOML syntax error, unknown key or wrong type.
    #[error("invalid config{}: {message}", .path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Parse {
        /// The file, when there is one.
        path: Option<PathBuf>,
        /// What toml/serde said, with line and column.
        message: String,
    },
    /// Syntactically fine but unusable values.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Daemon behaviour.
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// Kernel datapath.
    #[serde(default)]
    pub datapath: DatapathConfig,
    /// Never-drop sources.
    #[serde(default)]
    pub allowlist: AllowlistConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
}

/// `[daemon]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Interfaces to attach to (empty: the default route's).
    pub interfaces: Vec<String>,
    /// Keep the XDP program attached after the daemon stops.
    pub keep_attached: bool,
}

/// XDP attach mode.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native (driver) mode, falling back to generic mode.
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (skb) mode.
    Skb,
}

/// `[datapath]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatapathConfig {
    /// bpffs pin directory.
    pub pin_dir: PathBuf,
    /// XDP attach mode.
    pub xdp_mode: XdpMode,
    /// Capacity of the exact block map.
    pub max_blocked_ips: u32,
    /// Capacity of the CIDR block trie.
    pub max_blocked_cidrs: u32,
    /// Capacity of the allowlist trie.
    pub max_allowlist: u32,
    /// Capacity of the per-source LRU counters.
    pub max_tracked_sources: u32,
    /// Interval between expired-entry sweeps.
    #[serde(with = "humantime_serde")]
    pub reap_interval: Duration,
}

/// `[allowlist]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AllowlistConfig {
    /// Addresses and networks never dropped.
    pub entries: Vec<Target>,
}

/// Log output format.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON unless stderr is a terminal.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// Default level filter.
    pub level: String,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            keep_attached: false,
        }
    }
}

impl Default for DatapathConfig {
    fn default() -> Self {
        Self {
            pin_dir: PathBuf::from("/sys/fs/bpf/jwtmon"),
            xdp_mode: XdpMode::Auto,
            max_blocked_ips: jwtmon_common::sizes::BLOCK_IP,
            max_blocked_cidrs: jwtmon_common::sizes::BLOCK_CIDR,
            max_allowlist: jwtmon_common::sizes::ALLOW_CIDR,
            max_tracked_sources: jwtmon_common::sizes::SRC_STATS,
            reap_interval: Duration::from_secs(1),
        }
    }
}

impl Default for AllowlistConfig {
    fn default() -> Self {
        Self {
            entries: vec![
                "127.0.0.0/8".parse().expect("valid"),
                "::1".parse().expect("valid"),
            ],
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Auto,
            level: "info".into(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            daemon: DaemonConfig::default(),
            datapath: DatapathConfig::default(),
            allowlist: AllowlistConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Config {
    /// Parses and validates TOML text (`path` is for error messages).
    pub fn from_toml(text: &str, path: Option<&Path>) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.map(Path::to_path_buf),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, Some(path))
    }

    /// The file given, or the embedded defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(p) => Self::load(p),
            None => Self::from_toml(DEFAULT_TOML, None),
        }
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.datapath;
        for (name, value) in [
            ("datapath.max_blocked_ips", d.max_blocked_ips),
            ("datapath.max_blocked_cidrs", d.max_blocked_cidrs),
            ("datapath.max_allowlist", d.max_allowlist),
            ("datapath.max_tracked_sources", d.max_tracked_sources),
        ] {
            if value == 0 || value > 100_000_000 {
                return Err(ConfigError::Invalid(format!(
                    "{name} = {value}: must be between 1 and 100000000"
                )));
            }
        }
        if d.reap_interval < Duration::from_millis(100)
            || d.reap_interval > Duration::from_secs(3600)
        {
            return Err(ConfigError::Invalid(format!(
                "datapath.reap_interval = {}: must be between 100ms and 1h",
                humantime::format_duration(d.reap_interval)
            )));
        }
        if !d.pin_dir.is_absolute() {
            return Err(ConfigError::Invalid(format!(
                "datapath.pin_dir = {}: must be an absolute path on a bpffs (e.g. /sys/fs/bpf/jwtmon)",
                d.pin_dir.display()
            )));
        }
        for iface in &self.daemon.interfaces {
            if iface.is_empty() || iface.len() > 15 || iface.contains(['/', ' ']) {
                return Err(ConfigError::Invalid(format!(
                    "daemon.interfaces: `{iface}` is not a valid interface name"
                )));
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::Invalid(format!(
                "log.level = `{}`: expected error, warn, info, debug, trace or a filter like jwtmon=debug",
                self.log.level
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_file_is_the_default() {
        assert_eq!(
            Config::from_toml(DEFAULT_TOML, None).unwrap(),
            Config::default()
        );
        // An empty file is the defaults too.
        assert_eq!(Config::from_toml("", None).unwrap(), Config::default());
    }

    #[test]
    fn effective_config_round_trips() {
        let c = Config::default();
        assert_eq!(Config::from_toml(&c.to_toml(), None).unwrap(), c);
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let c = Config::from_toml("[datapath]\nmax_blocked_ips = 5000\n", None).unwrap();
        assert_eq!(c.datapath.max_blocked_ips, 5000);
        assert_eq!(c.datapath.max_blocked_cidrs, 100_000);
        assert_eq!(c.allowlist, AllowlistConfig::default());
    }

    #[test]
    fn errors_are_clear() {
        let e = Config::from_toml("[datapath]\nmax_blocked_ipz = 5\n", None).unwrap_err();
        assert!(
            e.to_string().contains("unknown field `max_blocked_ipz`"),
            "{e}"
        );
        let e = Config::from_toml("[datapath]\nmax_blocked_ips = 0\n", None).unwrap_err();
        assert!(e.to_string().contains("max_blocked_ips = 0"), "{e}");
        let e = Config::from_toml("[datapath]\nxdp_mode = \"turbo\"\n", None).unwrap_err();
        assert!(e.to_string().contains("turbo"), "{e}");
        let e = Config::from_toml("[allowlist]\nentries = [\"10.0.0.0/33\"]\n", None).unwrap_err();
        assert!(e.to_string().contains("10.0.0.0/33"), "{e}");
        let e = Config::from_toml("[datapath]\nreap_interval = \"soon\"\n", None).unwrap_err();
        assert!(e.to_string().contains("reap_interval"), "{e}");
        let e = Config::from_toml("[datapath\n", None).unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }));
    }
}
