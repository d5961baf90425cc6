//! Findings: what every analyser reports. One shape for all kinds (the
//! catalogue is in `docs/findings.md`), printed as one JSON line each.

use std::{fmt, net::IpAddr, time::SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Suspicious.
    Medium,
    /// Likely an attack.
    High,
    /// An attack that, if it worked, gives access (token forgery).
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The observation's time (capture time live, packet time offline).
    pub time: SystemTime,
    /// Stable kind name (e.g. `jwt_alg_none`).
    pub kind: &'static str,
    /// Severity.
    pub severity: Severity,
    /// The client.
    pub src_ip: IpAddr,
    /// The `sub` claim, when known.
    pub subject: Option<String>,
    /// First 16 hex chars of SHA-256 of the token (never the token).
    pub token_id: Option<String>,
    /// `METHOD /normalized/path`.
    pub endpoint: String,
    /// Evidence.
    pub detail: Value,
    /// What the policy decided (`log` until the decision engine acts).
    pub action: String,
}

impl Finding {
    /// The JSON line form.
    pub fn to_json(&self) -> Value {
        json!({
            "type": "finding",
            "time": humantime::format_rfc3339_millis(self.time).to_string(),
            "kind": self.kind,
            "severity": self.severity,
            "src_ip": self.src_ip.to_string(),
            "subject": self.subject,
            "token_id": self.token_id,
            "endpoint": self.endpoint,
            "detail": self.detail,
            "action": self.action,
        })
    }
}
