//! `[decide]`: what each finding kind leads to, and the guards around
//! blocking (dry run, repeat-offender TTL growth, global rate cap, CIDR
//! aggregation).

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

pub use crate::finding::Action;
use crate::finding::{Kind, Severity};

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
    /// Automatic token revocations per minute at most (0 = no cap); beyond
    /// it findings are recorded as `rate_capped`.
    pub max_revocations_per_minute: u32,
    /// Automatic revocations stop once the revocation list holds this many
    /// entries (the operator's `jwtmon revoke` still works).
    pub max_revoked_tokens: usize,
    /// Per-kind overrides of the catalogue's default actions; a key that
    /// is not a catalogue kind is a config error.
    pub policy: BTreeMap<Kind, Rule>,
}

impl Default for DecideConfig {
    fn default() -> Self {
        Self {
            dry_run: false,
            block_ttl: Duration::from_mins(10),
            ttl_factor: 2.0,
            max_ttl: Duration::from_hours(168),
            offence_memory: Duration::from_hours(24),
            max_blocks_per_minute: 120,
            aggregate: false,
            aggregate_after: 8,
            aggregate_ipv4_prefix: 24,
            aggregate_ipv6_prefix: 64,
            max_offenders: 100_000,
            max_revocations_per_minute: 60,
            max_revoked_tokens: 100_000,
            policy: BTreeMap::new(),
        }
    }
}

impl Rule {
    /// The built-in rule of a kind (its catalogue default action).
    pub fn default_for(kind: Kind) -> Self {
        let d = kind.default_action();
        Self {
            action: d.action,
            ttl: d.ttl,
            severity: None,
        }
    }
}
