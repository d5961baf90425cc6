//! The live pipeline: ring-buffer reader → observer → JWT analyser →
//! output, as tasks of the daemon. The reader is its own task, so analysis
//! never holds up draining the kernel ring. Output is JSON lines on stdout
//! per `daemon.emit`.

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
    finding::Finding,
    jwt::{JwtAnalyzer, jwks::Refresher},
    observe::{Observation, Observer},
};

/// Segments buffered between the reader and the observer.
const QUEUE: usize = 65_536;

/// Analyses a batch of observations and writes what `emit` asks for.
fn emit(
    out: &mut impl Write,
    emit: Emit,
    analyzer: &mut JwtAnalyzer,
    batch: &[Observation],
    findings: &mut Vec<Finding>,
) {
    for obs in batch {
        analyzer.analyze(obs, findings);
    }
    analyzer.poll(findings);
    match emit {
        Emit::Observations => {
            for obs in batch {
                let _ = writeln!(out, "{}", obs.to_json());
            }
        }
        Emit::Findings => {
            for f in findings.iter() {
                let _ = writeln!(out, "{}", f.to_json());
            }
        }
        Emit::None => {}
    }
    if !batch.is_empty() || !findings.is_empty() {
        let _ = out.flush();
    }
    findings.clear();
}

/// Runs until `stop` turns true; then reports what is still pending as
/// unanswered and returns.
pub async fn run(
    ring: RingBuf<MapData>,
    cfg: CaptureConfig,
    mut analyzer: JwtAnalyzer,
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
    let mut findings = Vec::new();
    let (refresher, mut fetched) = Refresher::start(analyzer.jwks_urls(), stop.clone());
    analyzer.defer_unknown_keys(true);
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
            _ = tick.tick() => {
                observer.expire(SystemTime::now(), &mut batch);
                analyzer.expire_pending(&mut findings);
                match analyzer.maintain() {
                    Ok(true) => info!(entries = analyzer.revocations.len(), "revocation list reloaded"),
                    Ok(false) => {}
                    Err(e) => warn!(error = %e, "revocation list not reloaded; keeping the old one"),
                }
            }
            Some((i, keys)) = fetched.recv() => {
                analyzer.set_fetched_keys(i, keys, &mut findings);
            }
            _ = report.tick() => info!(stats = ?observer.stats, flows = observer.flows(), "capture"),
            _ = stop.changed() => break,
        }
        emit(
            &mut stdout.lock(),
            what,
            &mut analyzer,
            &batch,
            &mut findings,
        );
        batch.clear();
        for i in analyzer.take_refresh_requests() {
            refresher.request(i);
        }
    }
    reader.abort();
    observer.flush(&mut batch);
    emit(
        &mut stdout.lock(),
        what,
        &mut analyzer,
        &batch,
        &mut findings,
    );
    let bad = stats.bad_records.load(std::sync::atomic::Ordering::Relaxed);
    if bad > 0 {
        warn!(bad_records = bad, "ring records that did not decode");
    }
    info!(stats = ?observer.stats, jwt = ?analyzer.stats, "capture stopped");
}
