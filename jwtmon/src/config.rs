//! The TOML configuration: composes the section each module owns (and
//! the drivers' own `[daemon]` and `[log]`), the embedded defaults (the
//! documented `config/jwtmon.toml`), loading and validation.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{
    capture::config::CaptureConfig,
    enforce::{AllowlistConfig, DatapathConfig, InterfaceSpec},
};

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
    /// An unusable value in a file, with where it is.
    #[error("invalid config {}{}: {message}", .path.display(), .line.map(|l| format!(":{l}")).unwrap_or_default())]
    InvalidAt {
        /// The file.
        path: PathBuf,
        /// The line of the offending key, when it is written in the file.
        line: Option<usize>,
        /// What is wrong and what to change.
        message: String,
    },
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[derive(Default)]
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
    /// Hosts sharing state through Redis.
    #[serde(default)]
    pub fleet: crate::fleet::FleetConfig,
    /// Pseudonymization.
    #[serde(default)]
    pub privacy: crate::privacy::PrivacyConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
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
    /// Threads that analyse requests (0: one per CPU, at most 4). The
    /// stateful pass is one of them; the others run the stateless checks
    /// (injection inspection) ahead of it.
    pub analysis_threads: usize,
}

/// `daemon.analysis_threads` at most (a typo of 1000 must not start 1000
/// threads).
const MAX_ANALYSIS_THREADS: usize = 64;

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
            analysis_threads: 0,
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

/// The 1-based line where the key a validation message starts with
/// (`datapath.max_blocked_ips = 0: ...`) is written in `text`.
fn line_of(text: &str, message: &str) -> Option<usize> {
    let dotted = message.split([' ', ':', '`']).find(|w| w.contains('.'))?;
    let (table, key) = dotted.rsplit_once('.')?;
    let mut current = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            current = header.trim_matches(['[', ']', ' ']).to_string();
        } else if current == table
            && line
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(n + 1);
        }
    }
    None
}

impl Config {
    /// The thresholds the fleet judges its shared counts by: the
    /// detectors' own.
    pub fn fleet_rules(&self) -> crate::fleet::tally::Rules {
        crate::fleet::tally::Rules::new(
            &self.detect.auth,
            &self.detect.rate,
            (self.jwt.replay_max_ips, self.jwt.replay_window),
        )
    }

    /// Parses and validates TOML text (`path` is for error messages).
    pub fn from_toml(text: &str, path: Option<&Path>) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.map(Path::to_path_buf),
            message: e.to_string(),
        })?;
        match (config.validate(), path) {
            (Err(ConfigError::Invalid(message)), Some(path)) => Err(ConfigError::InvalidAt {
                path: path.to_path_buf(),
                line: line_of(text, &message),
                message,
            }),
            (result, _) => result.map(|()| config),
        }
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

    /// The sections the responder reads.
    pub fn respond_sections(&self) -> crate::respond::Sections<'_> {
        crate::respond::Sections {
            state_dir: &self.daemon.state_dir,
            privacy: &self.privacy,
            alerts: &self.alerts,
            incidents: &self.incidents,
            export: &self.export,
        }
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.datapath.validate().map_err(ConfigError::Invalid)?;
        self.capture.validate().map_err(ConfigError::Invalid)?;
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
        if self.daemon.analysis_threads > MAX_ANALYSIS_THREADS {
            return Err(ConfigError::Invalid(format!(
                "daemon.analysis_threads = {}: at most {MAX_ANALYSIS_THREADS} (0 picks one per CPU, at most 4)",
                self.daemon.analysis_threads
            )));
        }
        self.alerts.validate().map_err(ConfigError::Invalid)?;
        self.detect.validate().map_err(ConfigError::Invalid)?;
        self.metrics.address().map_err(ConfigError::Invalid)?;
        self.admin.validate().map_err(ConfigError::Invalid)?;
        self.fleet.validate().map_err(ConfigError::Invalid)?;
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
    use crate::enforce::Role;

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
        assert!(e("[daemon]\nanalysis_threads = 500\n").contains("at most 64"));
        assert!(e("[detect.injection]\nparanoia = 5\n").contains("1 (default) to 4"));
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
        // From a file: the error names the file and the line of the key.
        let e = Config::from_toml(
            "# ours\n[datapath]\nxdp_mode = \"skb\"\nmax_blocked_ips = 0\n",
            Some(Path::new("/etc/jwtmon/jwtmon.toml")),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "invalid config /etc/jwtmon/jwtmon.toml:4: datapath.max_blocked_ips = 0"
            ),
            "{e}"
        );
        let e = Config::from_toml("[datapath]\nxdp_mode = \"turbo\"\n", None).unwrap_err();
        assert!(e.to_string().contains("turbo"), "{e}");
        let e = Config::from_toml("[allowlist]\nentries = [\"10.0.0.0/33\"]\n", None).unwrap_err();
        assert!(e.to_string().contains("10.0.0.0/33"), "{e}");
        let e = Config::from_toml("[datapath]\nreap_interval = \"soon\"\n", None).unwrap_err();
        assert!(e.to_string().contains("reap_interval"), "{e}");
        let e = Config::from_toml(
            "[decide.policy.login_bruteforse]\naction = \"block_ip\"\n",
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains(
                "unknown finding kind `login_bruteforse` (did you mean `login_bruteforce`?)"
            ),
            "{e}"
        );
        let e = Config::from_toml("[datapath\n", None).unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }));
    }
}
