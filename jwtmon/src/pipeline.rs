//! The live pipeline: ring-buffer reader → observer → JWT analyser and
//! behaviour detectors → decision engine → enforcer orders and output, as
//! tasks of the daemon. The reader is its own task, so analysis never holds
//! up draining the kernel ring. Output is JSON lines on stdout per
//! `daemon.emit`.

use std::{
    io::Write,
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, SystemTime},
};

use aya::maps::{MapData, RingBuf};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use tokio_util::sync::CancellationToken;

use crate::{
    admin::PipelineRequest,
    capture::{
        config::CaptureConfig,
        live::Assembler,
        ringbuf::{self, ReaderStats},
    },
    config::Emit,
    engine::Engine,
    event::{Event, Events},
    finding::Finding,
    jwt::jwks::Refresher,
    metrics::Metrics,
    observe::{Observation, Observer},
    privacy::Pseudonymizer,
    target::Target,
};

/// Segments buffered between the reader and the observer.
const QUEUE: usize = 65_536;

/// What the pipeline is given besides the ring and the engine.
pub struct Links {
    /// `[capture]`: pairing and timeouts.
    pub capture: CaptureConfig,
    /// What goes to stdout.
    pub emit: Emit,
    /// The allowlist the decisions honour, as the enforcer publishes it.
    pub allow: watch::Receiver<Vec<Target>>,
    /// Set while SIGUSR1 has paused the sample reader (drill).
    pub paused: Arc<AtomicBool>,
    /// Decided findings go to the responder (incidents, alerts, export).
    pub events: Option<Events>,
    /// Metrics (parse failures).
    pub metrics: Option<Arc<Metrics>>,
    /// Admin API requests.
    pub requests: Option<mpsc::Receiver<PipelineRequest>>,
    /// Applied to the JSON lines on stdout (`privacy.pseudonymize_stdout`).
    pub stdout_privacy: Pseudonymizer,
    /// The fleet's shared counts, with `[fleet]`.
    pub fleet: Option<FleetLink>,
    /// How often learnt state is saved (`detect.schema.save_interval`).
    pub save_interval: Duration,
}

/// The pipeline's side of the fleet: observations add to the shared
/// counts, and fleet-wide findings come back to be decided.
pub struct FleetLink {
    /// The handle (its tallies).
    pub fleet: crate::fleet::Fleet,
    /// Findings made from the fleet totals.
    pub findings: mpsc::Receiver<Finding>,
    /// Thresholds.
    pub rules: crate::fleet::tally::Rules,
    /// Keys the username hashes (the same on every node).
    pub salt: String,
}

/// Answers one admin API request.
fn answer(engine: &mut Engine, observer: &Observer, cmd: PipelineRequest) {
    match cmd {
        PipelineRequest::Reconfigure(cfg, tx) => {
            engine.decider.reconfigure(&cfg);
            let _ = tx.send(());
        }
        PipelineRequest::Revoke(id, tx) => {
            let _ = tx.send(
                engine
                    .analyzer
                    .revoke_token_id_now(&id)
                    .map_err(|e| e.to_string()),
            );
        }
        PipelineRequest::Unrevoke(id, tx) => {
            let _ = tx.send(
                engine
                    .analyzer
                    .unrevoke_token_id(&id)
                    .map_err(|e| e.to_string()),
            );
        }
        PipelineRequest::Revocations(tx) => {
            let _ = tx.send(engine.analyzer.revocations.token_ids());
        }
        PipelineRequest::Stats(tx) => {
            let _ = tx.send(serde_json::json!({
                "capture": observer.stats,
                "flows": observer.flows(),
                "jwt": engine.analyzer.stats,
                "decide": engine.decider.stats,
                "orders_dropped": engine.orders_dropped,
                "sequence_sessions": engine.sequences.sessions(),
            }));
        }
        PipelineRequest::Sequences(top, min_n, tx) => {
            let _ = tx.send(engine.sequences.report(top, min_n));
        }
    }
}

/// Processes a batch of observations and writes what `emit` asks for.
/// Writes the sequence report file; a failure is logged, never fatal.
fn report_sequences(engine: &Engine) {
    if let Err(e) = engine.sequences.write_report() {
        warn!(error = %e, "sequence report not written");
    }
}

fn emit(
    out: &mut impl Write,
    (emit, privacy): (Emit, &Pseudonymizer),
    engine: &mut Engine,
    batch: &[Observation],
    findings: &mut Vec<Finding>,
    events: Option<&Events>,
) {
    engine.process(batch, findings);
    if let Some(ev) = events {
        let decided = SystemTime::now();
        for f in findings.iter() {
            ev.send(Event::Finding {
                finding: f.clone(),
                decided,
            });
        }
    }
    match emit {
        Emit::Observations => {
            for obs in batch {
                let _ = writeln!(out, "{}", privacy.line(obs.to_json()));
            }
        }
        Emit::Findings => {
            for f in findings.iter() {
                let _ = writeln!(out, "{}", privacy.line(f.to_json()));
            }
        }
        Emit::None => {}
    }
    if !batch.is_empty() || !findings.is_empty() {
        let _ = out.flush();
    }
    findings.clear();
}

/// Runs until `shutdown` is cancelled; then reports what is still
/// pending as unanswered and returns.
pub async fn run(
    ring: RingBuf<MapData>,
    mut engine: Engine,
    links: Links,
    shutdown: CancellationToken,
) {
    let Links {
        capture: cfg,
        emit: what,
        mut allow,
        paused,
        events,
        metrics,
        requests: mut commands,
        stdout_privacy,
        mut fleet,
        save_interval,
    } = links;
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let stats = Arc::new(ReaderStats::default());
    let reader = match ringbuf::spawn(ring, tx, stats.clone(), paused) {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "ring-buffer reader thread not started; capture is off");
            return;
        }
    };
    let mut observer = Observer::new(&cfg);
    let mut assembler = Assembler::new(cfg.reassembly_limits());
    let mut messages = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut report = tokio::time::interval(Duration::from_mins(1));
    let mut sequence_report = tokio::time::interval(engine.sequences.report_interval());
    let mut save = tokio::time::interval(save_interval.max(Duration::from_secs(1)));
    let stdout = std::io::stdout();
    let mut batch = Vec::new();
    let mut findings = Vec::new();
    let (refresher, mut fetched) = Refresher::start(engine.analyzer.jwks_urls(), shutdown.clone());
    engine.analyzer.defer_unknown_keys(true);
    engine
        .decider
        .set_allowlist(allow.borrow_and_update().clone());
    loop {
        let mut done = false;
        tokio::select! {
            record = rx.recv() => match record {
                Some(record) => {
                    stats.taken(&record);
                    assembler.push(record, &mut messages, &mut findings);
                    // Take whatever else is queued before writing.
                    while let Ok(record) = rx.try_recv() {
                        stats.taken(&record);
                        assembler.push(record, &mut messages, &mut findings);
                        if messages.len() >= 4096 {
                            break;
                        }
                    }
                }
                None => done = true,
            },
            Some(cmd) = async { commands.as_mut()?.recv().await }, if commands.is_some() => {
                answer(&mut engine, &observer, cmd);
            }
            _ = tick.tick() => {
                if let Some(m) = &metrics {
                    Metrics::set_counter(&m.parse_failures, observer.stats.malformed.values().sum());
                    let gauge = |stage: &'static str, v: usize| {
                        m.buffered_bytes
                            .get_or_create(&Metrics::label("stage", stage))
                            .set(i64::try_from(v).unwrap_or(i64::MAX));
                    };
                    gauge("reassembly", assembler.buffered_bytes());
                    gauge("queue", stats.queued_bytes.load(std::sync::atomic::Ordering::Relaxed));
                    gauge("pending", observer.pending_bytes());
                    if let Some(t) = &assembler.tls {
                        Metrics::set_counter(
                            &m.tls_events.get_or_create(&Metrics::label("event", "http2_connections")),
                            t.stats.http2_connections,
                        );
                    }
                    m.revoked_tokens
                        .set(i64::try_from(engine.analyzer.revocations.len()).unwrap_or(i64::MAX));
                    let js = &engine.analyzer.stats;
                    for (outcome, v) in [
                        ("analysed", js.tokens),
                        ("cached", js.cache_hits),
                        ("verify_skipped", js.verify_skipped),
                    ] {
                        Metrics::set_counter(&m.jwt_tokens.get_or_create(&Metrics::label("outcome", outcome)), v);
                    }
                }
                assembler.expire(SystemTime::now(), &mut messages);
                observer.expire(SystemTime::now(), &mut batch);
                engine.analyzer.expire_pending(&mut findings);
                match engine.analyzer.maintain() {
                    Ok(true) => info!(entries = engine.analyzer.revocations.len(), "revocation list reloaded"),
                    Ok(false) => {}
                    Err(e) => warn!(error = %e, "revocation list not reloaded; keeping the old one"),
                }
            }
            Some(f) = async { fleet.as_mut()?.findings.recv().await }, if fleet.is_some() => {
                findings.push(f);
            }
            Some((i, keys)) = fetched.recv() => {
                engine.analyzer.set_fetched_keys(i, keys, &mut findings);
            }
            Ok(()) = allow.changed() => {
                engine.decider.set_allowlist(allow.borrow_and_update().clone());
            }
            _ = report.tick() => info!(stats = ?observer.stats, flows = observer.flows(),
                reassembly = ?assembler.stats(), buffered_bytes = assembler.buffered_bytes(),
                fragments = assembler.fragments,
                tls = ?assembler.tls.as_ref().map(|t| (&t.stats, t.reassembly(), t.unknown_servers())),
                "capture"),
            _ = sequence_report.tick() => report_sequences(&engine),
            _ = save.tick() => engine.save_learnt(),
            () = shutdown.cancelled() => done = true,
        }
        for m in messages.drain(..) {
            observer.push(m, &mut batch);
        }
        if let Some(link) = &fleet {
            link.fleet
                .tallies
                .record_all(&batch, &link.rules, &link.salt);
        }
        if done {
            // Last pass: what the observer still holds goes out too.
            reader.stop();
            assembler.finish(&mut messages);
            for m in messages.drain(..) {
                observer.push(m, &mut batch);
            }
            observer.flush(&mut batch);
        }
        emit(
            &mut stdout.lock(),
            (what, &stdout_privacy),
            &mut engine,
            &batch,
            &mut findings,
            events.as_ref(),
        );
        batch.clear();
        if done {
            break;
        }
        for i in engine.analyzer.take_refresh_requests() {
            refresher.request(i);
        }
    }
    report_sequences(&engine);
    engine.save_learnt();
    let bad = stats.bad_records.load(std::sync::atomic::Ordering::Relaxed);
    if bad > 0 {
        warn!(bad_records = bad, "ring records that did not decode");
    }
    info!(stats = ?observer.stats, reassembly = ?assembler.stats(), jwt = ?engine.analyzer.stats, decide = ?engine.decider.stats,
          orders_dropped = engine.orders_dropped, "capture stopped");
}
