//! The enforcer task: owns the datapath's maps while the daemon runs.
//! It writes the decision engine's blocks into the kernel (and reports
//! each with its time-to-mitigate), sweeps expired entries, and publishes
//! the allowlist (configuration plus kernel allow map) to the deciders.

use std::{
    io::Write,
    time::{Duration, Instant, SystemTime},
};

use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{BlockSpec, Maps, MapsError};
use crate::{
    decide::Enforcement,
    event::{Event, Events},
    metrics::Metrics,
    target::Target,
};

/// Block orders queued at most; more are refused and counted.
pub const QUEUE: usize = 4096;

/// Sends block orders to the enforcer.
#[derive(Clone)]
pub struct Orders {
    tx: mpsc::Sender<Enforcement>,
}

impl Orders {
    /// Queues a block; false when the queue is full (the caller counts it).
    pub fn send(&self, e: Enforcement) -> bool {
        self.tx.try_send(e).is_ok()
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn print(line: serde_json::Value, emit: bool) {
    if emit {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// The enforcer's parts, before it runs.
pub struct Enforcer {
    maps: Maps,
    rx: mpsc::Receiver<Enforcement>,
    allow_tx: watch::Sender<Vec<Target>>,
    reap_interval: Duration,
    emit: bool,
    events: Option<Events>,
    metrics: Option<std::sync::Arc<Metrics>>,
    share: Option<Share>,
}

/// Passes each block the enforcer made on (to the fleet): target, reason,
/// TTL.
pub type Share = Box<dyn Fn(&Target, &str, Duration) + Send>;

impl Enforcer {
    /// Reports blocks and expiries to the responder and keeps the
    /// active-blocks gauge.
    pub fn with_outputs(
        mut self,
        events: Option<Events>,
        metrics: Option<std::sync::Arc<Metrics>>,
    ) -> Self {
        self.events = events;
        self.metrics = metrics;
        self
    }

    /// Passes the decision engine's blocks on once they are in force (the
    /// daemon shares them with the fleet).
    pub fn with_share(mut self, share: Option<Share>) -> Self {
        self.share = share;
        self
    }

    /// Takes the maps; returns the enforcer, the order handle and the
    /// allowlist feed.
    pub fn new(
        maps: Maps,
        reap_interval: Duration,
        emit: bool,
    ) -> (Self, Orders, watch::Receiver<Vec<Target>>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let allow = maps
            .list_allow()
            .map(|v| v.into_iter().map(|a| a.target).collect())
            .unwrap_or_default();
        let (allow_tx, allow_rx) = watch::channel(allow);
        (
            Self {
                maps,
                rx,
                allow_tx,
                reap_interval,
                emit,
                events: None,
                metrics: None,
                share: None,
            },
            Orders { tx },
            allow_rx,
        )
    }

    /// The maps (before running: adopting blocks of an earlier run).
    pub fn maps(&self) -> &Maps {
        &self.maps
    }

    fn enforce(&mut self, order: Enforcement) {
        let Enforcement::Block {
            target,
            ttl,
            kind,
            offence,
            found,
        } = order
        else {
            return;
        };
        let spec = BlockSpec {
            target,
            ttl: Some(ttl),
            reason: kind.to_string(),
            origin: jwtmon_common::origin::DECISION as u16,
        };
        match self.maps.block(&spec) {
            Ok(replaced) => {
                let now = SystemTime::now();
                if let Some(share) = &self.share {
                    share(&target, kind.name(), ttl);
                }
                if let Some(m) = &self.metrics
                    && !replaced
                {
                    m.blocks_active.inc();
                }
                if let Some(e) = &self.events {
                    e.send(Event::Blocked {
                        target,
                        kind,
                        ttl,
                        at: now,
                    });
                }
                let ttm = now.duration_since(found).unwrap_or_default();
                info!(%target, %kind, ttl_s = ttl.as_secs(), offence,
                      time_to_mitigate_ms = ttm.as_secs_f64() * 1e3, "blocked");
                print(
                    json!({ "type": "block", "time": now_rfc3339(), "target": target.to_string(),
                            "kind": kind.name(), "ttl_s": ttl.as_secs(), "offence": offence,
                            "time_to_mitigate_ms": (ttm.as_secs_f64() * 1e3 * 1000.0).round() / 1000.0 }),
                    self.emit,
                );
            }
            Err(MapsError::Allowlisted { allow, .. }) => {
                info!(%target, %allow, %kind, "not blocked: allowlisted");
                print(
                    json!({ "type": "allowlisted", "time": now_rfc3339(), "target": target.to_string(),
                            "kind": kind.name(), "allowlisted_by": allow.to_string() }),
                    self.emit,
                );
            }
            Err(e) => warn!(%target, error = %e, "block failed"),
        }
    }

    fn reap(&mut self) {
        match self.maps.reap_and_count() {
            Ok((removed, remaining)) => {
                if let Some(m) = &self.metrics {
                    m.blocks_active.set(remaining as i64);
                }
                for target in &removed {
                    if let Some(e) = &self.events {
                        e.send(Event::Expired { target: *target });
                    }
                    info!(%target, "block expired");
                    print(
                        json!({ "type": "unblock", "time": now_rfc3339(),
                                "target": target.to_string(), "reason": "expired" }),
                        self.emit,
                    );
                }
            }
            Err(e) => warn!(error = %e, "expiry sweep failed"),
        }
    }

    fn publish_allowlist(&mut self) {
        if let Ok(list) = self.maps.list_allow() {
            let list: Vec<Target> = list.into_iter().map(|a| a.target).collect();
            self.allow_tx.send_if_modified(|old| {
                let changed = *old != list;
                if changed {
                    *old = list;
                }
                changed
            });
        }
    }

    /// Runs until `shutdown` is cancelled and every [`Orders`] handle is
    /// gone (so the senders' last orders are carried out); returns the
    /// maps.
    pub async fn run(mut self, shutdown: CancellationToken) -> Maps {
        let mut delay = self.reap_interval;
        let mut reap = Box::pin(tokio::time::sleep(delay));
        let mut allow = tokio::time::interval(Duration::from_secs(1));
        // Without senders (no capture), it still sweeps until stopped.
        let mut open = true;
        let mut stopping = false;
        loop {
            if stopping && !open {
                break;
            }
            tokio::select! {
                order = self.rx.recv(), if open => match order {
                    Some(order) => self.enforce(order),
                    None => open = false,
                },
                () = &mut reap => {
                    let started = Instant::now();
                    self.reap();
                    // A sweep over a huge map costs a syscall per entry;
                    // never spend more than a tenth of the time sweeping.
                    delay = self.reap_interval.max(started.elapsed() * 10);
                    reap.as_mut().reset(tokio::time::Instant::now() + delay);
                }
                _ = allow.tick() => self.publish_allowlist(),
                () = shutdown.cancelled(), if !stopping => stopping = true,
            }
        }
        self.maps
    }
}
