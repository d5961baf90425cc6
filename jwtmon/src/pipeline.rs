//! The live pipeline: ring-buffer reader → observer → output, as tasks of
//! the daemon. Output is JSON lines on stdout per `daemon.emit`.

use std::{
    io::Write,
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, SystemTime},
};

use aya::maps::{MapData, RingBuf};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::{
    capture::ringbuf::{self, ReaderStats},
    config::{CaptureConfig, Emit},
    observe::{Observation, Observer},
};

/// Segments buffered between the reader and the observer.
const QUEUE: usize = 65_536;

/// Writes observations as JSON lines.
fn emit(out: &mut impl Write, emit: Emit, batch: &[Observation]) {
    if emit != Emit::Observations || batch.is_empty() {
        return;
    }
    for obs in batch {
        let _ = writeln!(out, "{}", obs.to_json());
    }
    let _ = out.flush();
}

/// Runs until `stop` turns true; then reports what is still pending as
/// unanswered and returns.
pub async fn run(
    ring: RingBuf<MapData>,
    cfg: CaptureConfig,
    what: Emit,
    paused: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) {
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let stats = Arc::new(ReaderStats::default());
    let reader = tokio::spawn(ringbuf::run(ring, tx, stats.clone(), paused));
    let mut observer = Observer::new(&cfg);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut report = tokio::time::interval(Duration::from_secs(60));
    let stdout = std::io::stdout();
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            seg = rx.recv() => {
                let Some(seg) = seg else { break };
                observer.push(seg, &mut batch);
                // Take whatever else is queued before writing.
                while let Ok(seg) = rx.try_recv() {
                    observer.push(seg, &mut batch);
                    if batch.len() >= 4096 {
                        break;
                    }
                }
            }
            _ = tick.tick() => observer.expire(SystemTime::now(), &mut batch),
            _ = report.tick() => info!(stats = ?observer.stats, flows = observer.flows(), "capture"),
            _ = stop.changed() => break,
        }
        emit(&mut stdout.lock(), what, &batch);
        batch.clear();
    }
    reader.abort();
    observer.flush(&mut batch);
    emit(&mut stdout.lock(), what, &batch);
    let bad = stats.bad_records.load(std::sync::atomic::Ordering::Relaxed);
    if bad > 0 {
        warn!(bad_records = bad, "ring records that did not decode");
    }
    info!(stats = ?observer.stats, "capture stopped");
}
