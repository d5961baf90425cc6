//! The fleet: many API hosts acting as one through Redis.
//!
//! - **Shared enforcement.** A block, unblock or allow made on any host
//!   (decision, CLI, admin API) is written as a key with its TTL
//!   (`PREFIX:block:TARGET`, authoritative) and published on
//!   `PREFIX:changes` (fast). Every other host applies it to its own kernel
//!   maps, where its own allowlist still wins. On start and after every
//!   reconnect a host reads all keys again, so a missed message is never
//!   a lost block.
//! - **Shared counts** ([`tally`]): failed logins per address and per
//!   username, and the addresses per token, are counted locally, flushed
//!   as deltas every `flush_interval` through one Lua script, and judged
//!   against the fleet totals; a finding names the nodes that saw it.
//! - **Redis down.** Every host keeps detecting and enforcing locally; the
//!   outage is counted and logged once; its own changes are queued
//!   (bounded) and published when Redis returns. No pipeline thread ever
//!   waits on Redis: everything goes through queues to one task.

pub mod config;
mod link;
pub mod tally;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use config::FleetConfig;
pub use link::{Conn, LinkError, Parts, connect, publish_now, run};

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

/// Counters of the link, shared with metrics and `fleet status`.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Redis answers now.
    pub up: AtomicBool,
    /// Times Redis was lost (or could not be reached at start).
    pub outages: AtomicU64,
    /// Changes of this node published.
    pub published: AtomicU64,
    /// Changes of other nodes applied.
    pub applied: AtomicU64,
    /// Changes waiting for Redis.
    pub queued: AtomicU64,
    /// Changes dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Delay of the latest change applied from another node, in µs.
    pub last_lag_us: AtomicU64,
    /// Redis commands sent (for sizing).
    pub commands: AtomicU64,
}

/// The handle the rest of the daemon publishes through; cheap to clone.
/// Publishing never waits: a full queue drops and counts.
#[derive(Clone)]
pub struct Fleet {
    node: String,
    tx: mpsc::Sender<Change>,
    /// Shared counters.
    pub stats: Arc<LinkStats>,
    /// Shared counts of the detectors.
    pub tallies: tally::Tallies,
}

impl Fleet {
    /// A handle and the receiving end for [`run`].
    pub fn new(cfg: &FleetConfig) -> (Self, mpsc::Receiver<Change>) {
        let (tx, rx) = mpsc::channel(cfg.max_queued.max(16));
        let node = cfg.node();
        let fleet = Self {
            tallies: tally::Tallies::new(&node),
            node,
            tx,
            stats: Arc::new(LinkStats::default()),
        };
        (fleet, rx)
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Shares a change made on this node.
    pub fn publish(&self, op: Op, target: &Target, reason: &str, ttl: Option<Duration>) {
        let change = Change::new(op, target, reason, &self.node, ttl);
        if self.tx.try_send(change).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How the daemon starts with respect to the fleet.
pub enum Start {
    /// No `[fleet]`.
    Off,
    /// Redis answered.
    Connected(Box<Conn>),
    /// Redis did not answer (and `required = false`): start alone, join later.
    Unreachable,
}

/// The kernel reason text of a block made elsewhere: `node: reason`.
pub fn kernel_reason(c: &Change) -> String {
    format!("{}: {}", c.node, c.reason)
}
