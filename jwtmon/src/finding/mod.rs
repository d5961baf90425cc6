//! Findings: what every analyser reports. One shape for all kinds, built
//! through [`Finding::new`] from a catalogue [`Kind`] (`kind.rs`, documented
//! in `docs/findings.md`), printed as one JSON line each.

mod kind;

use std::{fmt, net::IpAddr, time::SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use kind::{Action, DefaultAction, Kind, UnknownKind};

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

/// What the decision engine did with a finding (its `action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Recorded only (also: not decided yet).
    Log,
    /// Recorded and alerted.
    Alert,
    /// The address was blocked.
    BlockIp,
    /// The token was revoked.
    RevokeToken,
    /// The API key was revoked.
    RevokeApiKey,
    /// A block or revocation was decided, but `decide.dry_run` holds it.
    DryRun,
    /// A block was decided, but the allowlist covers the address.
    Allowlisted,
    /// The address is blocked already.
    AlreadyBlocked,
    /// A block was decided, but `decide.max_blocks_per_minute` was reached.
    RateCapped,
}

impl Outcome {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Log => "log",
            Outcome::Alert => "alert",
            Outcome::BlockIp => "block_ip",
            Outcome::RevokeToken => "revoke_token",
            Outcome::RevokeApiKey => "revoke_api_key",
            Outcome::DryRun => "dry_run",
            Outcome::Allowlisted => "allowlisted",
            Outcome::AlreadyBlocked => "already_blocked",
            Outcome::RateCapped => "rate_capped",
        }
    }

    /// Whether it is more than a log line (it makes an incident).
    pub fn is_incident(self) -> bool {
        self != Outcome::Log
    }
}

impl From<Action> for Outcome {
    fn from(a: Action) -> Self {
        match a {
            Action::Log => Outcome::Log,
            Action::Alert => Outcome::Alert,
            Action::BlockIp => Outcome::BlockIp,
            Action::RevokeToken => Outcome::RevokeToken,
            Action::RevokeApiKey => Outcome::RevokeApiKey,
        }
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(Value::String(s.to_string()))
            .map_err(|_| format!("unknown action `{s}`"))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The observation's time (capture time live, packet time offline).
    pub time: SystemTime,
    /// What was found.
    pub kind: Kind,
    /// Severity.
    pub severity: Severity,
    /// The client.
    pub src_ip: IpAddr,
    /// The `sub` claim, when known.
    pub subject: Option<String>,
    /// First 16 hex chars of SHA-256 of the token (never the token).
    pub token_id: Option<String>,
    /// The same of the request's API key, for the API-key kinds.
    pub api_key_id: Option<String>,
    /// `METHOD /normalized/path`.
    pub endpoint: String,
    /// Evidence.
    pub detail: Value,
    /// What the policy decided (`log` until the decision engine acts).
    pub action: Outcome,
    /// The sender is proven: the server answered the request (which it
    /// can only do after a completed handshake with `src_ip`, or with the
    /// proxy that names it). Unproven findings are never enforced: one
    /// spoofed packet must not get anybody blocked.
    pub proven: bool,
    /// How the request was seen, for findings made from one.
    pub transport: Option<crate::transport::Transport>,
}

impl Finding {
    /// A finding of `kind` at its catalogue severity, not decided yet and
    /// not proven (the caller that has the observation says so).
    pub fn new(kind: Kind, time: SystemTime, src_ip: IpAddr, endpoint: String) -> Self {
        Self {
            time,
            kind,
            severity: kind.severity(),
            src_ip,
            subject: None,
            token_id: None,
            api_key_id: None,
            endpoint,
            detail: Value::Null,
            action: Outcome::Log,
            proven: false,
            transport: None,
        }
    }

    /// The JSON line form.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
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
        });
        if let Some(t) = self.transport {
            v["transport"] = json!(t);
        }
        if let Some(k) = &self.api_key_id {
            v["api_key_id"] = json!(k);
        }
        v
    }
}

/// Compares by stable name (`f.action == "block_ip"`).
impl PartialEq<&str> for Outcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Compares by stable name (`f.kind == "jwt_alg_none"`).
impl PartialEq<&str> for Kind {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}
