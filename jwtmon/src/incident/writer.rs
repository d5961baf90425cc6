//! The register's writer thread: takes incident states from the responder
//! without blocking it, keeps the latest state per incident, flushes them
//! in one transaction per interval, and runs the retention sweep. When the
//! database is locked or unwritable it says so (once per state change),
//! counts the failure and keeps the states in memory, bounded by
//! `max_pending`, until a later flush succeeds.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, RecvTimeoutError, SyncSender, TrySendError},
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use tracing::{info, warn};

use super::{Incident, config::IncidentConfig, store::Store};

/// What the writer has done.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Incident states written.
    pub written: AtomicU64,
    /// Flushes that failed.
    pub errors: AtomicU64,
    /// States dropped: the memory bound was reached while unwritable, or
    /// the hand-over queue was full.
    pub dropped: AtomicU64,
    /// States waiting to be written.
    pub pending: AtomicU64,
    /// Rows deleted by retention.
    pub expired_rows: AtomicU64,
}

/// Handle on the writer thread.
pub struct Writer {
    tx: Option<SyncSender<Incident>>,
    thread: Option<JoinHandle<()>>,
    /// Counters.
    pub stats: Arc<WriterStats>,
}

/// Hand-over queue between the responder and the thread.
const QUEUE: usize = 16_384;

impl Writer {
    /// Starts the thread (it opens the database itself, and retries).
    pub fn spawn(cfg: IncidentConfig) -> Self {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let stats = Arc::new(WriterStats::default());
        let s = stats.clone();
        let thread = std::thread::Builder::new()
            .name("jwtmon-incidents".into())
            .spawn(move || run(cfg, rx, s))
            .expect("spawning the incident writer");
        Self {
            tx: Some(tx),
            thread: Some(thread),
            stats,
        }
    }

    /// Queues an incident state; never blocks (a full queue is counted).
    pub fn write(&self, inc: Incident) {
        if let Some(tx) = &self.tx
            && let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(inc)
        {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Flushes what is queued and stops the thread.
    pub fn finish(mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct State {
    cfg: IncidentConfig,
    store: Option<Store>,
    pending: BTreeMap<i64, Incident>,
    failing: Option<String>,
    last_warn: Option<Instant>,
    stats: Arc<WriterStats>,
}

impl State {
    fn flush(&mut self) {
        if self.pending.is_empty() && self.store.is_some() {
            return;
        }
        let result = match &mut self.store {
            Some(s) => Ok(s),
            None => Store::open(&self.cfg.database).map(|s| self.store.insert(s)),
        }
        .and_then(|store| {
            let batch: Vec<Incident> = self.pending.values().cloned().collect();
            store.upsert(&batch).map(|()| batch.len())
        });
        match result {
            Ok(n) => {
                self.stats.written.fetch_add(n as u64, Ordering::Relaxed);
                self.pending.clear();
                if self.failing.take().is_some() {
                    info!(database = %self.cfg.database.display(), written = n,
                          "incident database writable again; held incidents written");
                }
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                let msg = e.to_string();
                let again = self
                    .last_warn
                    .is_some_and(|t| t.elapsed() < Duration::from_mins(1));
                if self.failing.as_deref() != Some(&msg) || !again {
                    warn!(error = %msg, held = self.pending.len(), max_pending = self.cfg.max_pending,
                          "incident database not writable; holding incidents in memory");
                    self.last_warn = Some(Instant::now());
                }
                self.failing = Some(msg);
                // A broken handle (file replaced, permissions) is reopened.
                self.store = None;
            }
        }
        self.stats
            .pending
            .store(self.pending.len() as u64, Ordering::Relaxed);
    }

    fn retention(&mut self) {
        let Some(store) = &self.store else { return };
        let days = Duration::from_secs(u64::from(self.cfg.retention_days) * 86_400);
        let cutoff = SystemTime::now()
            .checked_sub(days)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        match store.delete_before(cutoff) {
            Ok(0) => {}
            Ok(n) => {
                self.stats
                    .expired_rows
                    .fetch_add(n as u64, Ordering::Relaxed);
                info!(
                    deleted = n,
                    retention_days = self.cfg.retention_days,
                    "incident retention: old incidents deleted"
                );
            }
            Err(e) => warn!(error = %e, "incident retention sweep failed"),
        }
    }

    fn hold(&mut self, inc: Incident) {
        self.pending.insert(inc.id, inc);
        while self.pending.len() > self.cfg.max_pending.max(1) {
            self.pending.pop_first();
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn run(cfg: IncidentConfig, rx: mpsc::Receiver<Incident>, stats: Arc<WriterStats>) {
    let interval = cfg.flush_interval.max(Duration::from_millis(10));
    let retention_every = cfg.retention_interval.max(Duration::from_secs(1));
    let mut st = State {
        cfg,
        store: None,
        pending: BTreeMap::new(),
        failing: None,
        last_warn: None,
        stats,
    };
    st.flush();
    st.retention();
    let mut next_flush = Instant::now() + interval;
    let mut next_retention = Instant::now() + retention_every;
    loop {
        let wait = next_flush.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(inc) => {
                st.hold(inc);
                while let Ok(more) = rx.try_recv() {
                    st.hold(more);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= next_flush {
            st.flush();
            next_flush = Instant::now() + interval;
        }
        if Instant::now() >= next_retention {
            st.retention();
            next_retention = Instant::now() + retention_every;
        }
    }
    st.flush();
    if !st.pending.is_empty() {
        warn!(
            lost = st.pending.len(),
            "stopping with incidents the database did not take"
        );
    }
}
