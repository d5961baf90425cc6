//! Respond: the task after the decision engine. It takes decided findings
//! and enforcement events over a bounded channel (the pipeline and the
//! enforcer never wait for it), keeps the incident register, groups
//! alerts and hands them to the sinks, exports ECS events and counts
//! metrics. Slow sinks and a locked database only ever hold up themselves.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{info, warn};

use crate::{
    alert::{
        Aggregator,
        config::AlertConfig,
        deliver::{SinkError, Sinks},
    },
    event::{Event, Events},
    export::{self, ExportConfig, Exporter},
    finding::Finding,
    incident::{config::IncidentConfig, register::Register, store::Store, writer::Writer},
    metrics::Metrics,
    privacy::{PrivacyConfig, PrivacyError, Pseudonymizer},
    target::Target,
};

/// Why the responder cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// The pseudonymization key.
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
    /// An alert sink.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

struct Responder {
    register: Register,
    writer: Option<Writer>,
    agg: Aggregator,
    sinks: Sinks,
    exporter: Exporter,
    metrics: Arc<Metrics>,
    last_expiry: Instant,
}

/// The configuration sections the responder reads.
#[derive(Clone, Copy)]
pub struct Sections<'a> {
    /// `daemon.state_dir`: relative paths are under it.
    pub state_dir: &'a Path,
    /// `[privacy]`.
    pub privacy: &'a PrivacyConfig,
    /// `[alerts]`.
    pub alerts: &'a AlertConfig,
    /// `[incidents]`.
    pub incidents: &'a IncidentConfig,
    /// `[export]`.
    pub export: &'a ExportConfig,
}

/// Starts the responder task; returns its event handle and the task (it
/// ends when every [`Events`] handle is dropped, after flushing).
pub fn start(
    config: Sections<'_>,
    metrics: Arc<Metrics>,
) -> Result<(Events, JoinHandle<()>), RespondError> {
    let state = config.state_dir;
    if !state.exists() && std::fs::create_dir_all(state).is_ok() {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o700));
    }
    let pseudo = Pseudonymizer::load_in(config.privacy, state)?;
    let (sinks, sink_tasks) = Sinks::start(config.alerts, metrics.clone())?;
    let inc = config.incidents;
    let mut inc_cfg = inc.clone();
    inc_cfg.database = state.join(&inc.database);
    let (writer, last_id) = if inc.enabled {
        let last = match Store::open(&inc_cfg.database).and_then(|s| s.max_id()) {
            Ok(id) => id,
            Err(e) => {
                // Ids must not collide with rows the file may hold.
                warn!(error = %e, "incident database not readable at start; numbering from the clock");
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64 * 1000)
            }
        };
        info!(database = %inc_cfg.database.display(), retention_days = inc.retention_days,
              pseudonymize = pseudo.enabled(), "incident register");
        (Some(Writer::spawn(inc_cfg.clone())), last)
    } else {
        (None, 0)
    };
    let r = Responder {
        register: Register::new(&inc_cfg, pseudo, last_id),
        writer,
        agg: Aggregator::new(config.alerts),
        sinks,
        exporter: Exporter::new(config.export),
        metrics: metrics.clone(),
        last_expiry: Instant::now(),
    };
    let (events, rx) = Events::channel(crate::event::QUEUE, metrics);
    let task = tokio::spawn(r.run(rx, sink_tasks));
    Ok((events, task))
}

impl Responder {
    fn finding(&mut self, mut f: Finding, decided: SystemTime) {
        // What is stored or sent carries pseudonyms, never the evidence's
        // raw addresses or usernames (stdout, the operator's console, keeps
        // them).
        self.register.pseudonymizer().scrub(&mut f.detail);
        self.metrics.finding(f.kind.name(), f.severity);
        self.metrics.latency.observe(
            decided
                .duration_since(f.time)
                .unwrap_or_default()
                .as_secs_f64(),
        );
        let mut id = None;
        if f.action.is_incident() {
            let (inc, _) = self.register.finding(&f, decided);
            id = Some(inc.id);
            if let Some(a) = self.agg.finding(&inc, Instant::now()) {
                self.sinks.dispatch(&a, Instant::now());
            }
            if let Some(w) = &self.writer {
                w.write(inc);
            }
        }
        if self.exporter.enabled() {
            let doc = export::finding_doc(&f, self.register.pseudonymizer(), id, SystemTime::now());
            self.exporter.write(&doc, f.severity);
        }
    }

    fn changed(&mut self, incs: Vec<crate::incident::Incident>) {
        for inc in incs {
            self.agg.update(&inc);
            if let Some(w) = &self.writer {
                w.write(inc);
            }
        }
    }

    fn handle(&mut self, e: Event) {
        match e {
            Event::Finding { finding, decided } => self.finding(finding, decided),
            Event::Blocked {
                target,
                kind,
                ttl,
                at,
            } => {
                self.metrics
                    .blocks_issued
                    .get_or_create(&Metrics::label("kind", kind.name()))
                    .inc();
                let changed = self.register.blocked(target, kind.name(), ttl, at);
                self.changed(changed);
                self.export_block(target, kind.name(), Some(ttl), at);
            }
            Event::Expired { target } => {
                self.export_block(target, "expired", None, SystemTime::now());
            }
            Event::Closed { id } => self.register.closed(id),
        }
    }

    /// Exports a block taking effect (`ttl` set) or running out.
    fn export_block(&mut self, target: Target, kind: &str, ttl: Option<Duration>, at: SystemTime) {
        if !self.exporter.enabled() {
            return;
        }
        let doc = export::block_doc(target, kind, ttl, self.register.pseudonymizer(), at);
        let severity = if ttl.is_some() {
            crate::finding::Severity::High
        } else {
            crate::finding::Severity::Low
        };
        self.exporter.write(&doc, severity);
    }

    fn tick(&mut self) {
        for a in self.agg.due(Instant::now()) {
            self.sinks.dispatch(&a, Instant::now());
        }
        // A pass over the live incidents, once a second.
        if self.last_expiry.elapsed() >= Duration::from_secs(1) {
            self.last_expiry = Instant::now();
            let expired = self.register.expire(SystemTime::now());
            self.changed(expired);
        }
        if let Some(w) = &self.writer {
            let s = &w.stats;
            let load =
                |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
            Metrics::set_counter(&self.metrics.incidents_written, load(&s.written));
            Metrics::set_counter(&self.metrics.incident_db_errors, load(&s.errors));
            Metrics::set_counter(&self.metrics.incidents_dropped, load(&s.dropped));
            self.metrics.incidents_pending.set(load(&s.pending) as i64);
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Event>, sink_tasks: Vec<JoinHandle<()>>) {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                e = rx.recv() => match e {
                    Some(e) => {
                        self.handle(e);
                        while let Ok(e) = rx.try_recv() {
                            self.handle(e);
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => self.tick(),
            }
        }
        // Shutdown: what is held goes out now; sinks get a few seconds.
        for a in self.agg.flush() {
            self.sinks.dispatch(&a, Instant::now());
        }
        self.tick();
        drop(self.sinks);
        for t in sink_tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .is_err()
            {
                abort.abort();
                warn!("an alert sink did not finish within 5 s; its queued alerts are dropped");
            }
        }
        if let Some(w) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || w.finish()).await;
        }
    }
}
