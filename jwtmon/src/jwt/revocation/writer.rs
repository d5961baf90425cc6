//! The revocation file's one writer: a thread that appends the decisions'
//! revocations and rewrites the file for lifted ones, in order, so the
//! pipeline thread never waits on the disk for an automatic revocation.
//! Its queue is bounded; a full queue keeps the revocation in memory only
//! (counted, logged once).

use std::{
    collections::HashSet,
    fmt,
    io::Write,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        mpsc::{self, SyncSender, TrySendError},
    },
    time::{Duration, SystemTime},
};

/// Revocations queued for the file at most.
const QUEUE: usize = 4096;
/// How long an operator's change waits for the file.
const WAIT: Duration = Duration::from_secs(5);

enum Op {
    Append(String),
    Remove(String),
}

struct Job {
    op: Op,
    done: Option<mpsc::Sender<Result<(), String>>>,
}

#[derive(Default)]
struct Shared {
    /// Appends not yet written.
    pending: HashSet<String>,
    /// The file's modification time after our latest write.
    written: Option<SystemTime>,
    /// Revocations the full queue kept from the file.
    dropped: u64,
    /// Their ids, so a reload keeps them in memory (at most [`QUEUE`]
    /// times 4; the count goes on past that).
    held: HashSet<String>,
}

/// The writer of one revocation file.
pub struct Writer {
    tx: SyncSender<Job>,
    shared: Arc<Mutex<Shared>>,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("revocation::Writer")
    }
}

pub(super) fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn append(path: &Path, id: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    // One write(2) per line: with O_APPEND it lands whole, never torn by
    // an operator's append or read half-written by a reload.
    f.write_all(format!("token_id {id}  # revoked by jwtmon\n").as_bytes())
}

fn remove(path: &Path, id: &str) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let kept: String = text
        .lines()
        .filter(|l| {
            let words: Vec<&str> = l
                .split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            !(words.len() == 2 && words[0] == "token_id" && words[1].eq_ignore_ascii_case(id))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    // Replaced whole (a reload never reads it half-written).
    let tmp = path.with_extension("jwtmon-tmp");
    std::fs::write(&tmp, kept)?;
    std::fs::rename(&tmp, path)
}

impl Writer {
    /// Starts the thread that writes `path`.
    pub fn start(path: PathBuf) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let shared = Arc::new(Mutex::new(Shared::default()));
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("jwtmon-revocations".into())
            .spawn(move || {
                for job in rx {
                    let (result, appended) = match &job.op {
                        Op::Append(id) => (append(&path, id), Some(id)),
                        Op::Remove(id) => (remove(&path, id), None),
                    };
                    if let Err(e) = &result {
                        tracing::warn!(file = %path.display(), error = %e, "revocation file not written");
                    }
                    if let Ok(mut sh) = s.lock() {
                        if let Some(id) = appended {
                            sh.pending.remove(id);
                        }
                        sh.written = modified(&path);
                    }
                    if let Some(done) = job.done {
                        let _ = done.send(result.map_err(|e| format!("{}: {e}", path.display())));
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "revocation writer thread not started");
        }
        Self { tx, shared }
    }

    /// Queues an append; false when the queue is full (counted).
    pub fn append(&self, id: &str) -> bool {
        if let Ok(mut sh) = self.shared.lock() {
            sh.pending.insert(id.to_string());
        }
        let job = Job {
            op: Op::Append(id.to_string()),
            done: None,
        };
        match self.tx.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                if let Ok(mut sh) = self.shared.lock() {
                    sh.pending.remove(id);
                    sh.dropped += 1;
                    if sh.held.len() < QUEUE * 4 {
                        sh.held.insert(id.to_string());
                    }
                    if sh.dropped == 1 {
                        tracing::warn!(
                            "revocation file queue full: revocations held in memory only"
                        );
                    }
                }
                false
            }
        }
    }

    fn wait(&self, op: Op) -> Result<(), String> {
        let (done, result) = mpsc::channel();
        self.tx
            .send(Job {
                op,
                done: Some(done),
            })
            .map_err(|_| "the revocation writer stopped".to_string())?;
        result
            .recv_timeout(WAIT)
            .map_err(|_| "the revocation file did not answer within 5 s".to_string())?
    }

    /// Appends now (after what is queued); for an operator's revocation.
    pub fn append_now(&self, id: &str) -> Result<(), String> {
        self.wait(Op::Append(id.to_string()))
    }

    /// Removes the id's lines now (after what is queued).
    pub fn remove_now(&self, id: &str) -> Result<(), String> {
        if let Ok(mut sh) = self.shared.lock() {
            sh.held.remove(id);
        }
        self.wait(Op::Remove(id.to_string()))
    }

    /// Appends queued but not yet written, and those a full queue kept
    /// from the file: what a reload of the file must keep in memory.
    pub fn unwritten(&self) -> Vec<String> {
        self.shared
            .lock()
            .map(|s| s.pending.iter().chain(&s.held).cloned().collect())
            .unwrap_or_default()
    }

    /// The file's modification time after our latest write.
    pub fn own_write(&self) -> Option<SystemTime> {
        self.shared.lock().ok().and_then(|s| s.written)
    }

    /// Revocations kept from the file by a full queue.
    pub fn dropped(&self) -> u64 {
        self.shared.lock().map_or(0, |s| s.dropped)
    }
}
