//! `[sequence]`: session identity, n-gram analytics bounds, the anomaly
//! model and the sequence rules.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// Longest n-gram counted.
pub const MAX_N: usize = 10;

/// `[sequence]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SequenceConfig {
    /// Track sequences at all.
    pub enabled: bool,
    /// Where a session's identity comes from, first present wins:
    /// `jwt_session` (the token's `sid`, else `jti`), `jwt_sub`,
    /// `cookie:NAME`, `api_key` (`X-API-Key`/`Api-Key`), `ip_ua` (client
    /// address + User-Agent, always present).
    pub identity: Vec<String>,
    /// A pause this long splits a session into a new sequence.
    #[serde(with = "humantime_serde")]
    pub idle_gap: Duration,
    /// A sequence this long starts over.
    pub max_sequence_len: usize,
    /// Sessions tracked (least recently active forgotten first).
    pub max_sessions: usize,
    /// Longest n-gram counted (1..=10).
    pub max_n: usize,
    /// Distinct n-grams kept; beyond, the least counted are evicted (their
    /// counts stay in the totals).
    pub max_ngrams: usize,
    /// Distinct endpoints named; more share `{other}`.
    pub max_endpoints: usize,
    /// A sequence needs at least this many occurrences to be scored.
    pub min_support: u64,
    /// Optional OpenAPI 3 file (JSON or YAML) whose paths name endpoints.
    pub openapi: Option<PathBuf>,
    /// The daemon writes the top sequences here (JSON) every
    /// `report_interval`; `jwtmon sequences` reads it.
    pub report_file: Option<PathBuf>,
    /// How often the report is written.
    #[serde(with = "humantime_serde")]
    pub report_interval: Duration,
    /// `sequence_anomalous`.
    pub anomaly: AnomalyConfig,
    /// Sequence rules.
    pub rules: Vec<SeqRule>,
}

impl Default for SequenceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            identity: [
                "jwt_session",
                "jwt_sub",
                "cookie:session",
                "api_key",
                "ip_ua",
            ]
            .map(String::from)
            .to_vec(),
            idle_gap: Duration::from_mins(10),
            max_sequence_len: 1000,
            max_sessions: 100_000,
            max_n: 5,
            max_ngrams: 2_000_000,
            max_endpoints: 4096,
            min_support: 5,
            openapi: None,
            report_file: None,
            report_interval: Duration::from_mins(1),
            anomaly: AnomalyConfig::default(),
            rules: Vec::new(),
        }
    }
}

/// `[sequence.anomaly]`: a first-order model of transitions (including
/// from the start of a sequence) learnt from all traffic.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Report `sequence_anomalous`.
    pub enabled: bool,
    /// Calls seen before the model judges anything.
    pub learning_calls: u64,
    /// Transitions averaged (the session's most recent ones).
    pub window: usize,
    /// Fire when the mean surprise (-ln P(next | previous)) over the window
    /// reaches this; 4.6 is a probability of 1%.
    pub threshold: f64,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            learning_calls: 10_000,
            window: 2,
            threshold: 4.6,
        }
    }
}

/// What a rule does when violated.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Report (the policy of `sequence_rule_violation` applies).
    #[default]
    Log,
    /// Report and block the client address (through the decision engine:
    /// the allowlist, dry run and caps still apply).
    Block,
}

/// One rule, `[[sequence.rules]]`. Endpoints are `METHOD /templated/path`
/// as reports print them.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SeqRule {
    /// `endpoint` requires that `requires` happened earlier in the same
    /// session (within `within`, if set).
    Precedence {
        /// Rule name (findings quote it).
        name: String,
        /// Guarded endpoint.
        endpoint: String,
        /// What must come first.
        requires: String,
        /// How recent the prerequisite must be.
        #[serde(default, with = "humantime_serde")]
        within: Option<Duration>,
        /// Log or block.
        #[serde(default)]
        mode: Mode,
    },
    /// `endpoint` never twice in a row.
    NoRepeat {
        /// Rule name.
        name: String,
        /// Guarded endpoint.
        endpoint: String,
        /// Log or block.
        #[serde(default)]
        mode: Mode,
    },
    /// At most `max` calls of `endpoint` per session per `window`.
    MaxInWindow {
        /// Rule name.
        name: String,
        /// Guarded endpoint.
        endpoint: String,
        /// Calls allowed.
        max: usize,
        /// Window.
        #[serde(with = "humantime_serde")]
        window: Duration,
        /// Log or block.
        #[serde(default)]
        mode: Mode,
    },
    /// The last endpoint of `sequence` may only follow the ones before it,
    /// immediately and in order.
    Allow {
        /// Rule name.
        name: String,
        /// Endpoints in order.
        sequence: Vec<String>,
        /// Log or block.
        #[serde(default)]
        mode: Mode,
    },
    /// The session's most recent calls must never be `sequence`.
    Deny {
        /// Rule name.
        name: String,
        /// Endpoints in order.
        sequence: Vec<String>,
        /// Log or block.
        #[serde(default)]
        mode: Mode,
    },
}

impl SeqRule {
    /// The rule's name.
    pub fn name(&self) -> &str {
        match self {
            SeqRule::Precedence { name, .. }
            | SeqRule::NoRepeat { name, .. }
            | SeqRule::MaxInWindow { name, .. }
            | SeqRule::Allow { name, .. }
            | SeqRule::Deny { name, .. } => name,
        }
    }

    /// Its mode.
    pub fn mode(&self) -> Mode {
        match self {
            SeqRule::Precedence { mode, .. }
            | SeqRule::NoRepeat { mode, .. }
            | SeqRule::MaxInWindow { mode, .. }
            | SeqRule::Allow { mode, .. }
            | SeqRule::Deny { mode, .. } => *mode,
        }
    }

    /// Its type as configured.
    pub fn kind(&self) -> &'static str {
        match self {
            SeqRule::Precedence { .. } => "precedence",
            SeqRule::NoRepeat { .. } => "no_repeat",
            SeqRule::MaxInWindow { .. } => "max_in_window",
            SeqRule::Allow { .. } => "allow",
            SeqRule::Deny { .. } => "deny",
        }
    }
}
