//! The vocabulary of the shared enforcement state: a change (block,
//! unblock, allow, unallow) as it is stored in Redis and published.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::target::Target;

/// What a change does.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A block entry (with its TTL).
    Block,
    /// The block entry is lifted.
    Unblock,
    /// An allowlist entry.
    Allow,
    /// The allowlist entry is removed.
    Unallow,
}

/// One change to the shared enforcement state, as stored and published.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Change {
    /// What it does.
    pub op: Op,
    /// Address or network.
    pub target: String,
    /// Reason (finding kind, operator text).
    pub reason: String,
    /// The node that made it.
    pub node: String,
    /// Unix ms when it was made.
    pub at_ms: u64,
    /// Unix ms when a block ends (`None`: permanent).
    pub expires_ms: Option<u64>,
}

/// Unix time in ms.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Change {
    /// A change made now on `node`.
    pub fn new(op: Op, target: &Target, reason: &str, node: &str, ttl: Option<Duration>) -> Self {
        let now = SystemTime::now();
        Self {
            op,
            target: target.to_string(),
            reason: reason.to_string(),
            node: node.to_string(),
            at_ms: unix_ms(now),
            expires_ms: ttl.map(|t| unix_ms(now + t)),
        }
    }

    /// Time left of a block at `now_ms` (`None`: permanent; zero: over).
    pub fn remaining(&self, now_ms: u64) -> Option<Duration> {
        self.expires_ms
            .map(|e| Duration::from_millis(e.saturating_sub(now_ms)))
    }
}

/// The kernel reason text of a block made elsewhere: `node: reason`.
pub fn kernel_reason(c: &Change) -> String {
    format!("{}: {}", c.node, c.reason)
}
