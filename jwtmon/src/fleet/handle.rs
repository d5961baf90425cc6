//! The handle the rest of the daemon holds: publishing without waiting,
//! the link's counters, and the shared counts.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::mpsc;

use super::{
    change::{Change, Op},
    config::FleetConfig,
    tally,
};
use crate::target::Target;

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
