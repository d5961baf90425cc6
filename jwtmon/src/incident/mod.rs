//! The incident register: every finding that leads to an alert or an
//! action opens or updates an incident (kind + source), which records
//! detection and mitigation times, the actor (pseudonymized address,
//! token id, subject), actions with TTLs, status and notes. `register`
//! keeps the live ones in memory, `store` is the SQLite file, `writer`
//! batches writes off the hot path, `report` summarizes a period.

pub mod config;
pub mod html;
pub mod register;
pub mod report;
pub mod store;
pub mod writer;

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::finding::Severity;

/// Where an incident stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Detected; nothing in force against it (alerted, or not blockable).
    Open,
    /// An action is in force (block, revocation).
    Mitigated,
    /// The block ran out.
    Expired,
    /// Closed by an operator.
    Closed,
}

impl Status {
    /// Its name in the database and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Mitigated => "mitigated",
            Status::Expired => "expired",
            Status::Closed => "closed",
        }
    }

    /// The inverse of [`Status::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Status::Open,
            "mitigated" => Status::Mitigated,
            "expired" => Status::Expired,
            "closed" => Status::Closed,
            _ => return None,
        })
    }
}

/// One action taken against an incident's actor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionTaken {
    /// `block_ip`, `revoke_token`, ...
    pub action: String,
    /// What it applied to (pseudonymized address, network, token id).
    pub target: String,
    /// Lifetime in seconds, for blocks.
    pub ttl_s: Option<u64>,
    /// When it took effect.
    #[serde(with = "humantime_serde")]
    pub at: SystemTime,
}

/// An operator's note.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// When it was written.
    #[serde(with = "humantime_serde")]
    pub at: SystemTime,
    /// The text.
    pub text: String,
}

/// One incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Register id.
    pub id: i64,
    /// Finding kind.
    pub kind: String,
    /// Highest severity seen.
    pub severity: Severity,
    /// Where it stands.
    pub status: Status,
    /// Capture time of the first request that raised it.
    #[serde(with = "humantime_serde")]
    pub first_seen: SystemTime,
    /// Capture time of the latest.
    #[serde(with = "humantime_serde")]
    pub last_seen: SystemTime,
    /// When the daemon decided the first finding (time to detect runs
    /// from `first_seen` to here).
    #[serde(with = "humantime_serde")]
    pub detected_at: SystemTime,
    /// When the first action took effect (time to mitigate).
    #[serde(with = "humantime_serde::option", default)]
    pub mitigated_at: Option<SystemTime>,
    /// When an operator closed it.
    #[serde(with = "humantime_serde::option", default)]
    pub closed_at: Option<SystemTime>,
    /// The source: a keyed pseudonym unless `privacy.pseudonymize = false`.
    pub source: String,
    /// The token's id (hash prefix, never the token).
    pub token_id: Option<String>,
    /// The token's subject.
    pub subject: Option<String>,
    /// `METHOD /normalized/path` of the first finding.
    pub endpoint: String,
    /// Findings folded into it.
    pub count: u64,
    /// What the policy decided for the latest finding.
    pub decision: String,
    /// Short evidence summary.
    pub evidence: String,
    /// Actions taken.
    pub actions: Vec<ActionTaken>,
    /// Operator notes.
    pub notes: Vec<Note>,
}

/// Unix milliseconds of a time (0 before the epoch).
pub fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The time of Unix milliseconds.
pub fn from_ms(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64)
}

#[cfg(test)]
mod tests;
