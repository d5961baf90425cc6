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
    /// HTTP sampling.
    #[serde(default)]
    pub capture: CaptureConfig,
    /// JWT analysis.
    #[serde(default)]
    pub jwt: crate::jwt::config::JwtConfig,
    /// Behaviour detectors.
    #[serde(default)]
    pub detect: crate::detect::config::DetectConfig,
    /// Decisions.
    #[serde(default)]
    pub decide: crate::decide::config::DecideConfig,
    /// API sequence analytics and rules.
    #[serde(default)]
    pub sequence: crate::sequence::config::SequenceConfig,
    /// Incident register.
    #[serde(default)]
    pub incidents: crate::incident::config::IncidentConfig,
    /// Alert grouping and sinks.
    #[serde(default)]
    pub alerts: crate::alert::config::AlertConfig,
    /// Prometheus endpoint.
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
    /// SIEM event export.
    #[serde(default)]
    pub export: crate::export::ExportConfig,
    /// Admin API.
    #[serde(default)]
    pub admin: crate::admin::AdminConfig,
    /// Pseudonymization.
    #[serde(default)]
    pub privacy: crate::privacy::PrivacyConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
}

/// What jwtmon does on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Drop banned sources and sample HTTP.
    Both,
    /// Drop banned sources only.
    Enforce,
    /// Sample HTTP only; never drop.
    Capture,
}

impl Role {
    /// Drops banned sources here.
    pub fn enforces(self) -> bool {
        matches!(self, Role::Both | Role::Enforce)
    }

    /// Samples HTTP here.
    pub fn captures(self) -> bool {
        matches!(self, Role::Both | Role::Capture)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Both => "both",
            Role::Enforce => "enforce",
            Role::Capture => "capture",
        })
    }
}

/// An interface and its role, written `NAME` or `NAME:ROLE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceSpec {
    /// Interface name.
    pub name: String,
    /// Role.
    pub role: Role,
}

impl std::str::FromStr for InterfaceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, role) = match s.split_once(':') {
            None => (s, Role::Both),
            Some((n, "both")) => (n, Role::Both),
            Some((n, "enforce")) => (n, Role::Enforce),
            Some((n, "capture")) => (n, Role::Capture),
            Some((_, r)) => {
                return Err(format!(
                    "`{s}`: unknown role `{r}` (expected both, enforce or capture)"
                ));
            }
        };
        if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', ':']) {
            return Err(format!("`{name}` is not a valid interface name"));
        }
        Ok(Self {
            name: name.to_string(),
            role,
        })
    }
}

impl std::fmt::Display for InterfaceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.role {
            Role::Both => write!(f, "{}", self.name),
            role => write!(f, "{}:{role}", self.name),
        }
    }
}

impl Serialize for InterfaceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for InterfaceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `[daemon]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Interfaces to attach to (empty: the default route's, role both).
    pub interfaces: Vec<InterfaceSpec>,
    /// Keep the XDP program attached after the daemon stops.
    pub keep_attached: bool,
    /// What the daemon prints on stdout as JSON lines.
    pub emit: Emit,
    /// Where the daemon keeps its files (incident database, pseudonym
    /// key, admin socket); relative paths elsewhere are taken under it.
    pub state_dir: PathBuf,
}

/// What the daemon prints on stdout.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Emit {
    /// One JSON line per observed HTTP request (with its response status).
    Observations,
    /// One JSON line per finding.
    Findings,
    /// Nothing.
    None,
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
    /// Ring buffer size in bytes.
    pub ring_buffer_bytes: u32,
}

/// `[capture]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Monitored plain-HTTP server ports.
    pub ports: Vec<u16>,
    /// One request in N (0 = off).
    pub sample_rate: u32,
    /// Request bytes kept.
    pub request_bytes: u32,
    /// Response bytes kept.
    pub response_bytes: u32,
    /// Kernel cap on samples per second.
    pub max_records_per_second: u32,
    /// When a request without response is reported unanswered.
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    /// Connections tracked for pairing.
    pub max_flows: usize,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<Target>,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            ports: vec![80, 3000, 5000, 8000, 8080],
            sample_rate: 1,
            request_bytes: 2048,
            response_bytes: 512,
            max_records_per_second: 200_000,
            response_timeout: Duration::from_secs(30),
            max_flows: 100_000,
            trusted_proxies: Vec::new(),
        }
    }
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
            emit: Emit::Findings,
            state_dir: PathBuf::from("/var/lib/jwtmon"),
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
            ring_buffer_bytes: 16 << 20,
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
            capture: CaptureConfig::default(),
            jwt: Default::default(),
            detect: Default::default(),
            decide: Default::default(),
            sequence: Default::default(),
            incidents: Default::default(),
            alerts: Default::default(),
            metrics: Default::default(),
            export: Default::default(),
            admin: Default::default(),
            privacy: Default::default(),
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

    /// A configured path: relative ones are under `daemon.state_dir`.
    pub fn state_path(&self, p: &Path) -> PathBuf {
        self.daemon.state_dir.join(p)
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
        let rb = d.ring_buffer_bytes;
        if rb < 4096 || !rb.is_power_of_two() || rb > 1 << 30 {
            return Err(ConfigError::Invalid(format!(
                "datapath.ring_buffer_bytes = {rb}: must be a power of two between 4096 and 1073741824"
            )));
        }
        let c = &self.capture;
        if c.ports.len() > jwtmon_common::MAX_CAPTURE_PORTS || c.ports.contains(&0) {
            return Err(ConfigError::Invalid(format!(
                "capture.ports: at most {} ports, none of them 0",
                jwtmon_common::MAX_CAPTURE_PORTS
            )));
        }
        for (name, value, max) in [
            (
                "capture.request_bytes",
                c.request_bytes,
                jwtmon_common::MAX_REQUEST_CAPTURE,
            ),
            (
                "capture.response_bytes",
                c.response_bytes,
                jwtmon_common::MAX_RESPONSE_CAPTURE,
            ),
        ] {
            if value == 0 || value > max {
                return Err(ConfigError::Invalid(format!(
                    "{name} = {value}: must be between 1 and {max}"
                )));
            }
        }
        if c.max_flows == 0 || c.max_flows > 10_000_000 {
            return Err(ConfigError::Invalid(format!(
                "capture.max_flows = {}: must be between 1 and 10000000",
                c.max_flows
            )));
        }
        if c.response_timeout < Duration::from_millis(100) {
            return Err(ConfigError::Invalid(
                "capture.response_timeout: at least 100ms".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for iface in &self.daemon.interfaces {
            if !seen.insert(&iface.name) {
                return Err(ConfigError::Invalid(format!(
                    "daemon.interfaces: `{}` is listed twice",
                    iface.name
                )));
            }
        }
        if !self.daemon.state_dir.is_absolute() {
            return Err(ConfigError::Invalid(format!(
                "daemon.state_dir = {}: must be an absolute path",
                self.daemon.state_dir.display()
            )));
        }
        self.alerts.validate().map_err(ConfigError::Invalid)?;
        self.metrics.address().map_err(ConfigError::Invalid)?;
        self.admin.validate().map_err(ConfigError::Invalid)?;
        if self.export.target == crate::export::ExportTarget::Stdout
            && self.daemon.emit != Emit::None
        {
            return Err(ConfigError::Invalid(
                "export.target = \"stdout\" needs daemon.emit = \"none\" (both would write JSON lines to stdout)".into(),
            ));
        }
        if self.incidents.retention_days == 0 {
            return Err(ConfigError::Invalid(
                "incidents.retention_days: at least 1".into(),
            ));
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
    fn interface_roles() {
        let c = Config::from_toml(
            "[daemon]\ninterfaces = [\"eth0:enforce\", \"lo:capture\", \"veth1\"]\n",
            None,
        )
        .unwrap();
        let roles: Vec<Role> = c.daemon.interfaces.iter().map(|i| i.role).collect();
        assert_eq!(roles, [Role::Enforce, Role::Capture, Role::Both]);
        assert_eq!(c.daemon.interfaces[1].to_string(), "lo:capture");
        let e = Config::from_toml("[daemon]\ninterfaces = [\"eth0:sniff\"]\n", None).unwrap_err();
        assert!(e.to_string().contains("unknown role `sniff`"), "{e}");
        let e = Config::from_toml(
            "[daemon]\ninterfaces = [\"eth0\", \"eth0:capture\"]\n",
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let e = Config::from_toml("[capture]\nrequest_bytes = 5000\n", None).unwrap_err();
        assert!(e.to_string().contains("request_bytes"), "{e}");
        let e = Config::from_toml("[datapath]\nring_buffer_bytes = 5000\n", None).unwrap_err();
        assert!(e.to_string().contains("power of two"), "{e}");
    }

    #[test]
    fn respond_sections_are_checked() {
        let e = |t: &str| Config::from_toml(t, None).unwrap_err().to_string();
        assert!(
            e("[[alerts.sinks]]\nname = \"s\"\ntype = \"slack\"\n").contains("url_file or url_env")
        );
        assert!(
            e("[[alerts.sinks]]\nname = \"m\"\ntype = \"email\"\n")
                .contains("smtp_host, from and to")
        );
        assert!(e("[[alerts.sinks]]\nname = \"s\"\ntype = \"teams\"\n").contains("teams"));
        let two = "[[alerts.sinks]]\nname = \"a\"\ntype = \"webhook\"\nurl_env = \"X\"\n";
        assert!(e(&format!("{two}{two}")).contains("own non-empty name"));
        assert!(e("[metrics]\nlisten = \"0.0.0.0:9917\"\n").contains("allow_remote"));
        assert!(e("[admin]\nlisten = \"127.0.0.1:9918\"\n").contains("token_file"));
        assert!(e("[admin]\nlisten = \"10.0.0.1:9918\"\ntoken_env = \"T\"\n").contains("loopback"));
        assert!(e("[export]\ntarget = \"stdout\"\n").contains("daemon.emit"));
        assert!(e("[incidents]\nretention_days = 0\n").contains("retention_days"));
        assert!(e("[daemon]\nstate_dir = \"var/lib\"\n").contains("absolute"));
        let ok = Config::from_toml(
            "[daemon]\nemit = \"none\"\n[export]\ntarget = \"stdout\"\n[privacy]\npseudonymize = false\n",
            None,
        )
        .unwrap();
        assert_eq!(
            ok.state_path(&ok.incidents.database),
            PathBuf::from("/var/lib/jwtmon/incidents.db")
        );
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
