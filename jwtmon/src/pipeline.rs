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

use crate::{
    admin::Command,
    capture::ringbuf::{self, ReaderStats},
    config::{CaptureConfig, Emit},
    decide::{Decider, Enforcement},
    detect::Detectors,
    enforce::enforcer::Orders,
    finding::Finding,
    jwt::{JwtAnalyzer, jwks::Refresher},
    metrics::Metrics,
    observe::{Observation, Observer},
    respond::{Event, Events},
    sequence::Sequencer,
    target::Target,
};

/// The analysing and deciding stages the pipeline drives.
pub struct Stages {
    /// JWT analysis.
    pub analyzer: JwtAnalyzer,
    /// Behaviour detectors.
    pub detectors: Detectors,
    /// API sequence analytics and rules.
    pub sequences: Sequencer,
    /// Decision engine.
    pub decider: Decider,
    /// Where blocks go (`None`: decisions are reported, not enforced).
    pub orders: Option<Orders>,
    /// Block orders refused because the enforcer's queue was full.
    pub orders_dropped: u64,
}

impl Stages {
    /// Runs the token checks and the detectors on one observation.
    pub fn analyze(&mut self, obs: &Observation, findings: &mut Vec<Finding>) {
        let facts = self.analyzer.analyze(obs, findings);
        self.detectors.observe(obs, &facts, findings);
        self.sequences.observe(obs, &facts, findings);
    }

    /// Analyses a batch, decides every finding in `findings` (those made
    /// since the last batch included) and hands the enforcement on.
    pub fn process(&mut self, batch: &[Observation], findings: &mut Vec<Finding>) {
        for obs in batch {
            self.analyze(obs, findings);
        }
        self.analyzer.poll(findings);
        self.decide(findings);
    }

    /// Decides each finding (exactly once: callers pass undecided ones)
    /// and carries out or queues what the decisions ask for.
    pub fn decide(&mut self, findings: &mut [Finding]) {
        let mut todo = Vec::new();
        for f in findings.iter_mut() {
            self.decider.decide(f, &mut todo);
        }
        for e in todo {
            match e {
                Enforcement::Revoke { token_id } => {
                    if let Err(err) = self.analyzer.revoke_token_id(&token_id) {
                        warn!(token_id, error = %err, "revocation not saved");
                    }
                }
                block => {
                    if let Some(o) = &self.orders
                        && !o.send(block)
                    {
                        self.orders_dropped += 1;
                    }
                }
            }
        }
    }
}

/// Segments buffered between the reader and the observer.
const QUEUE: usize = 65_536;

/// Where the pipeline reports besides stdout, and what may ask it things.
#[derive(Default)]
pub struct Links {
    /// Decided findings go to the responder (incidents, alerts, export).
    pub events: Option<Events>,
    /// Metrics (parse failures).
    pub metrics: Option<Arc<Metrics>>,
    /// Admin API requests.
    pub commands: Option<mpsc::Receiver<Command>>,
}

/// Answers one admin API request.
fn answer(stages: &mut Stages, observer: &Observer, cmd: Command) {
    match cmd {
        Command::Revoke(id, tx) => {
            let _ = tx.send(
                stages
                    .analyzer
                    .revoke_token_id(&id)
                    .map_err(|e| e.to_string()),
            );
        }
        Command::Unrevoke(id, tx) => {
            let _ = tx.send(
                stages
                    .analyzer
                    .unrevoke_token_id(&id)
                    .map_err(|e| e.to_string()),
            );
        }
        Command::Revocations(tx) => {
            let _ = tx.send(stages.analyzer.revocations.token_ids());
        }
        Command::Stats(tx) => {
            let _ = tx.send(serde_json::json!({
                "capture": observer.stats,
                "flows": observer.flows(),
                "jwt": stages.analyzer.stats,
                "decide": stages.decider.stats,
                "orders_dropped": stages.orders_dropped,
                "sequence_sessions": stages.sequences.sessions(),
            }));
        }
        Command::Sequences(top, min_n, tx) => {
            let _ = tx.send(stages.sequences.report(top, min_n));
        }
    }
}

/// Processes a batch of observations and writes what `emit` asks for.
/// Writes the sequence report file; a failure is logged, never fatal.
fn report_sequences(stages: &Stages) {
    if let Err(e) = stages.sequences.write_report() {
        warn!(error = %e, "sequence report not written");
    }
}

fn emit(
    out: &mut impl Write,
    emit: Emit,
    stages: &mut Stages,
    batch: &[Observation],
    findings: &mut Vec<Finding>,
    events: Option<&Events>,
) {
    stages.process(batch, findings);
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
    mut stages: Stages,
    mut allow: watch::Receiver<Vec<Target>>,
    what: Emit,
    paused: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
    links: Links,
) {
    let Links {
        events,
        metrics,
        mut commands,
    } = links;
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let stats = Arc::new(ReaderStats::default());
    let reader = tokio::spawn(ringbuf::run(ring, tx, stats.clone(), paused));
    let mut observer = Observer::new(&cfg);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut report = tokio::time::interval(Duration::from_secs(60));
    let mut sequence_report = tokio::time::interval(stages.sequences.report_interval());
    let stdout = std::io::stdout();
    let mut batch = Vec::new();
    let mut findings = Vec::new();
    let (refresher, mut fetched) = Refresher::start(stages.analyzer.jwks_urls(), stop.clone());
    stages.analyzer.defer_unknown_keys(true);
    stages
        .decider
        .set_allowlist(allow.borrow_and_update().clone());
    loop {
        let mut done = false;
        tokio::select! {
            seg = rx.recv() => match seg {
                Some(seg) => {
                    observer.push(seg, &mut batch);
                    // Take whatever else is queued before writing.
                    while let Ok(seg) = rx.try_recv() {
                        observer.push(seg, &mut batch);
                        if batch.len() >= 4096 {
                            break;
                        }
                    }
                }
                None => done = true,
            },
            Some(cmd) = async { commands.as_mut()?.recv().await }, if commands.is_some() => {
                answer(&mut stages, &observer, cmd);
            }
            _ = tick.tick() => {
                if let Some(m) = &metrics {
                    Metrics::set_counter(&m.parse_failures, observer.stats.malformed.values().sum());
                }
                observer.expire(SystemTime::now(), &mut batch);
                stages.analyzer.expire_pending(&mut findings);
                match stages.analyzer.maintain() {
                    Ok(true) => info!(entries = stages.analyzer.revocations.len(), "revocation list reloaded"),
                    Ok(false) => {}
                    Err(e) => warn!(error = %e, "revocation list not reloaded; keeping the old one"),
                }
            }
            Some((i, keys)) = fetched.recv() => {
                stages.analyzer.set_fetched_keys(i, keys, &mut findings);
            }
            Ok(()) = allow.changed() => {
                stages.decider.set_allowlist(allow.borrow_and_update().clone());
            }
            _ = report.tick() => info!(stats = ?observer.stats, flows = observer.flows(), "capture"),
            _ = sequence_report.tick() => report_sequences(&stages),
            _ = stop.changed() => done = true,
        }
        if done {
            // Last pass: what the observer still holds goes out too.
            reader.abort();
            observer.flush(&mut batch);
        }
        emit(
            &mut stdout.lock(),
            what,
            &mut stages,
            &batch,
            &mut findings,
            events.as_ref(),
        );
        batch.clear();
        if done {
            break;
        }
        for i in stages.analyzer.take_refresh_requests() {
            refresher.request(i);
        }
    }
    report_sequences(&stages);
    let bad = stats.bad_records.load(std::sync::atomic::Ordering::Relaxed);
    if bad > 0 {
        warn!(bad_records = bad, "ring records that did not decode");
    }
    info!(stats = ?observer.stats, jwt = ?stages.analyzer.stats, decide = ?stages.decider.stats,
          orders_dropped = stages.orders_dropped, "capture stopped");
}
