//! `[decide]`: what each finding kind leads to, and the guards around
//! blocking (dry run, repeat-offender TTL growth, global rate cap, CIDR
//! aggregation).

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use crate::finding::Severity;

/// What a finding leads to.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Record only.
    Log,
    /// Record and alert.
    Alert,
    /// Drop the client address in the kernel for a TTL (and alert).
    BlockIp,
    /// Add the token to the revocation list (and alert).
    RevokeToken,
}

impl Action {
    /// Stable name (the finding's `action`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Log => "log",
            Action::Alert => "alert",
            Action::BlockIp => "block_ip",
            Action::RevokeToken => "revoke_token",
        }
    }
}

/// The policy of one finding kind.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The action.
    pub action: Action,
    /// Block TTL of a first offence (default `block_ttl`).
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
    /// Severity override.
    #[serde(default)]
    pub severity: Option<Severity>,
}

/// `[decide]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecideConfig {
    /// Decide and report, but never block or revoke.
    pub dry_run: bool,
    /// Block TTL of a first offence.
    #[serde(with = "humantime_serde")]
    pub block_ttl: Duration,
    /// Each new block of the same address multiplies the TTL by this
    /// (fail2ban's `bantime.increment`).
    pub ttl_factor: f64,
    /// The TTL never grows beyond this.
    #[serde(with = "humantime_serde")]
    pub max_ttl: Duration,
    /// Offences older than this are forgotten.
    #[serde(with = "humantime_serde")]
    pub offence_memory: Duration,
    /// New blocks per minute at most (0 = no cap); beyond it findings are
    /// recorded as `rate_capped`.
    pub max_blocks_per_minute: u32,
    /// Block the whole network when more than `aggregate_after` addresses
    /// of one `/aggregate_ipv4_prefix` (or IPv6 prefix) are blocked.
    pub aggregate: bool,
    /// Addresses of one network blocked before the network is.
    pub aggregate_after: usize,
    /// IPv4 prefix length of aggregation.
    pub aggregate_ipv4_prefix: u8,
    /// IPv6 prefix length of aggregation.
    pub aggregate_ipv6_prefix: u8,
    /// Addresses remembered for repeat offences.
    pub max_offenders: usize,
    /// Per-kind overrides of the built-in policy (see
    /// [`default_policy`]); a kind in neither goes by severity: critical
    /// and high alert, medium alerts, low logs.
    pub policy: BTreeMap<String, Rule>,
}

impl Default for DecideConfig {
    fn default() -> Self {
        Self {
            dry_run: false,
            block_ttl: Duration::from_secs(600),
            ttl_factor: 2.0,
            max_ttl: Duration::from_secs(7 * 24 * 3600),
            offence_memory: Duration::from_secs(24 * 3600),
            max_blocks_per_minute: 120,
            aggregate: false,
            aggregate_after: 8,
            aggregate_ipv4_prefix: 24,
            aggregate_ipv6_prefix: 64,
            max_offenders: 100_000,
            policy: BTreeMap::new(),
        }
    }
}

/// The built-in policy: token forgeries, brute force, stuffing and
/// injections block; a replayed token is revoked; the rest alerts or logs.
pub fn default_policy() -> BTreeMap<&'static str, Rule> {
    let block = |ttl: u64| Rule {
        action: Action::BlockIp,
        ttl: Some(Duration::from_secs(ttl)),
        severity: None,
    };
    let mut p = BTreeMap::new();
    for kind in [
        "jwt_alg_none",
        "jwt_null_signature",
        "jwt_psychic_signature",
        "jwt_alg_confusion",
        "jwt_embedded_jwk",
        "jwt_untrusted_jku",
        "jwt_untrusted_x5u",
        "jwt_kid_injection",
    ] {
        p.insert(kind, block(3600));
    }
    for kind in [
        "login_bruteforce",
        "credential_stuffing",
        "injection_sqli",
        "injection_command",
        "injection_path_traversal",
    ] {
        p.insert(kind, block(600));
    }
    p.insert(
        "jwt_replay_multi_ip",
        Rule {
            action: Action::RevokeToken,
            ttl: None,
            severity: None,
        },
    );
    p
}

/// The action for a kind of this severity absent from every policy.
pub fn by_severity(s: Severity) -> Action {
    match s {
        Severity::Low => Action::Log,
        _ => Action::Alert,
    }
}
