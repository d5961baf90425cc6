//! The live source: drains the kernel's ring buffer whenever epoll says it
//! has data and hands decoded records to the pipeline. Never blocks the
//! kernel: when this reader falls behind, the kernel skips and counts.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use aya::maps::{MapData, RingBuf};
use tokio::{io::unix::AsyncFd, sync::mpsc};
use tracing::debug;

use super::{Clock, Record, decode};

/// Counters of the reader.
#[derive(Debug, Default)]
pub struct ReaderStats {
    /// Records read.
    pub records: AtomicU64,
    /// Records that failed to decode.
    pub bad_records: AtomicU64,
}

/// How often the reader drains without a wake-up: the worst-case delay of
/// a record on a quiet ring.
pub const POLL: std::time::Duration = std::time::Duration::from_millis(2);

/// Most records handed on per drain before yielding.
const BATCH: usize = 1024;

/// Drains up to [`BATCH`] records; returns them and whether more remain.
fn drain(ring: &mut RingBuf<MapData>, clock: &Clock, stats: &ReaderStats) -> (Vec<Record>, bool) {
    let mut batch = Vec::new();
    while let Some(item) = ring.next() {
        stats.records.fetch_add(1, Ordering::Relaxed);
        match decode(&item, clock) {
            Ok(seg) => batch.push(seg),
            Err(e) => {
                stats.bad_records.fetch_add(1, Ordering::Relaxed);
                debug!(error = %e, "bad ring record");
            }
        }
        if batch.len() >= BATCH {
            return (batch, true);
        }
    }
    (batch, false)
}

/// Reads records until `tx` closes. While `paused` is set it stops
/// draining (an operator drill and the back-pressure test use this).
///
/// The kernel wakes this reader (epoll) only once 32 KiB of records are
/// waiting, so a busy ring costs one wake-up per batch, not per request.
/// A [`POLL`] tick drains whatever is below that mark, which bounds the
/// capture-to-analysis latency on a quiet ring.
pub async fn run(
    ring: RingBuf<MapData>,
    tx: mpsc::Sender<Record>,
    stats: Arc<ReaderStats>,
    paused: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let clock = Clock::now();
    // SAFETY: the ring buffer owns its fd for as long as the AsyncFd lives
    // and nothing else closes or re-registers it.
    let mut fd = unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)?;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (batch, more) = tokio::select! {
            guard = fd.readable_mut() => {
                let mut guard = guard?;
                if paused.load(Ordering::Relaxed) {
                    guard.clear_ready();
                    continue;
                }
                let (batch, more) = drain(guard.get_inner_mut(), &clock, &stats);
                if !more {
                    guard.clear_ready();
                }
                (batch, more)
            }
            _ = tick.tick() => {
                if paused.load(Ordering::Relaxed) {
                    continue;
                }
                drain(fd.get_mut(), &clock, &stats)
            }
            () = tx.closed() => return Ok(()),
        };
        for seg in batch {
            if tx.send(seg).await.is_err() {
                return Ok(());
            }
        }
        if more {
            tokio::task::yield_now().await;
        }
    }
}
