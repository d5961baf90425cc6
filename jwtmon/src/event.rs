//! Events: what the pipeline, the enforcer and the admin API tell the
//! responder (decided findings, blocks in force, expiries, closed
//! incidents), over a bounded queue that never makes a sender wait.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::sync::mpsc;

use crate::{
    finding::{Finding, Kind},
    metrics::Metrics,
    target::Target,
};

/// What the responder is told.
#[derive(Debug)]
pub enum Event {
    /// A decided finding.
    Finding {
        /// It.
        finding: Finding,
        /// When it was decided.
        decided: SystemTime,
    },
    /// A block took effect in the kernel.
    Blocked {
        /// Address or network.
        target: Target,
        /// Finding kind.
        kind: Kind,
        /// Lifetime.
        ttl: Duration,
        /// When.
        at: SystemTime,
    },
    /// A block ran out and was swept.
    Expired {
        /// Address or network.
        target: Target,
    },
    /// An operator closed an incident.
    Closed {
        /// The incident.
        id: i64,
    },
}

/// Events queued at most; more are dropped and counted.
pub const QUEUE: usize = 65_536;

/// Sends events to the responder without waiting.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::Sender<Event>,
    metrics: Arc<Metrics>,
}

impl Events {
    /// Queues an event; a full queue drops it and counts the drop.
    pub fn send(&self, e: Event) {
        if self.tx.try_send(e).is_err() {
            self.metrics
                .events_dropped
                .get_or_create(&Metrics::label("queue", "respond"))
                .inc();
        }
    }
}

impl Events {
    /// A queue of `capacity` events; the receiving end goes to the
    /// responder.
    pub fn channel(capacity: usize, metrics: Arc<Metrics>) -> (Self, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Self { tx, metrics }, rx)
    }
}
