//! The weak-secret check: HS* tokens are tried against the empty secret, a
//! small built-in dictionary and an optional user file of any size (read
//! as a stream). It runs on its own thread behind a bounded queue, each
//! distinct token once, within a time budget: never on the capture path.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::json;

use super::verify::hmac_matches;
use crate::finding::Finding;

/// Secrets seen in tutorials, defaults and leaked configs. Deliberately
/// short: the user file is where a real wordlist goes.
pub const BUILTIN: &[&str] = &[
    "",
    "secret",
    "secretkey",
    "secret_key",
    "secret-key",
    "mysecret",
    "my_secret",
    "supersecret",
    "super-secret",
    "topsecret",
    "s3cr3t",
    "password",
    "passw0rd",
    "Password1",
    "123456",
    "12345678",
    "123456789",
    "1234567890",
    "qwerty",
    "letmein",
    "changeme",
    "changeit",
    "admin",
    "test",
    "testing",
    "dev",
    "development",
    "default",
    "key",
    "private",
    "privatekey",
    "jwt",
    "jwtsecret",
    "jwt_secret",
    "jwt-secret",
    "JWT_SECRET",
    "jwtkey",
    "jwt_key",
    "your-256-bit-secret",
    "your-384-bit-secret",
    "your-512-bit-secret",
    "your_jwt_secret",
    "your-secret-key",
    "your_secret_key",
    "yoursecret",
    "token",
    "tokensecret",
    "auth",
    "authsecret",
    "api",
    "apikey",
    "api_key",
    "app",
    "appsecret",
    "app_secret",
    "hello",
    "welcome",
    "abc123",
    "pass",
    "root",
    "shhhhh",
    "keyboard cat",
    "node",
    "express",
    "django-insecure",
    "flask",
    "rails",
    "spring",
    "laravel",
    "gin",
    "example",
    "sample",
    "demo",
    "1234",
    "0000",
    "none",
    "null",
    "undefined",
    "HS256",
    "secret123",
    "Secret",
    "SECRET",
    "notsecret",
    "thisismysecret",
    "mysupersecretkey",
    "supersecretkey",
    "ThisIsMySecretKey",
    "my-secret-key",
    "secretsecret",
    "verysecret",
    "qwertyuiop",
];

/// One token to try.
pub struct Job {
    /// `HS256` / `HS384` / `HS512`.
    pub alg: String,
    /// What the signature covers.
    pub signing_input: String,
    /// The signature bytes.
    pub signature: Vec<u8>,
    /// The finding to emit (kind, context) if a secret matches; `detail`
    /// gets the matched secret's position, never the secret.
    pub finding: Finding,
}

/// Counters of the worker.
#[derive(Debug, Default)]
pub struct CrackStats {
    /// Tokens tried.
    pub tried: AtomicU64,
    /// Tokens whose secret was found.
    pub cracked: AtomicU64,
    /// Tokens skipped because the queue was full.
    pub skipped_queue_full: AtomicU64,
    /// Tokens whose budget ran out before the list did.
    pub budget_exhausted: AtomicU64,
}

/// The worker thread and its queue.
pub struct Cracker {
    jobs: Option<mpsc::SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// Jobs sent and not yet taken by the worker.
    queued: Arc<AtomicUsize>,
    capacity: usize,
    /// Counters.
    pub stats: Arc<CrackStats>,
}

impl Cracker {
    /// Starts the worker; findings go to `out`.
    pub fn start(
        file: Option<PathBuf>,
        queue: usize,
        budget: Duration,
        out: mpsc::Sender<Finding>,
    ) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Job>(queue.max(1));
        let stats = Arc::new(CrackStats::default());
        let st = stats.clone();
        let queued = Arc::new(AtomicUsize::new(0));
        let taken = queued.clone();
        let thread = std::thread::Builder::new()
            .name("jwtmon-weak-secret".into())
            .spawn(move || {
                for job in rx {
                    taken.fetch_sub(1, Ordering::Relaxed);
                    st.tried.fetch_add(1, Ordering::Relaxed);
                    if let Some(mut f) = try_job(&job, file.as_deref(), budget, &st) {
                        st.cracked.fetch_add(1, Ordering::Relaxed);
                        f.time = job.finding.time;
                        if out.send(f).is_err() {
                            break;
                        }
                    }
                }
            })
            .ok();
        Self {
            jobs: Some(tx),
            thread,
            queued,
            capacity: queue.max(1),
            stats,
        }
    }

    /// Whether a job would be taken now. A full queue counts the token as
    /// skipped, so the caller need not build a job that would be dropped.
    pub fn has_room(&self) -> bool {
        let room = self.jobs.is_some() && self.queued.load(Ordering::Relaxed) < self.capacity;
        if !room {
            self.stats
                .skipped_queue_full
                .fetch_add(1, Ordering::Relaxed);
        }
        room
    }

    /// Queues a token; a full queue skips it (counted), never blocks.
    pub fn submit(&self, job: Job) {
        let Some(tx) = &self.jobs else { return };
        self.queued.fetch_add(1, Ordering::Relaxed);
        if tx.try_send(job).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.stats
                .skipped_queue_full
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lets the queue drain and stops the worker (offline runs call this
    /// before reading the last findings).
    pub fn finish(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Cracker {
    fn drop(&mut self) {
        self.finish();
    }
}

fn try_job(
    job: &Job,
    file: Option<&std::path::Path>,
    budget: Duration,
    stats: &CrackStats,
) -> Option<Finding> {
    let start = Instant::now();
    let input = job.signing_input.as_bytes();
    let hit = |secret: &[u8]| hmac_matches(&job.alg, secret, input, &job.signature);
    let found = |source: &str, index: usize, secret: &[u8]| {
        let mut f = job.finding.clone();
        f.detail = json!({
            "alg": job.alg,
            "dictionary": source,
            "entry": index,
            "secret_length": secret.len(),
            "secret_id": crate::parse::token_id(&String::from_utf8_lossy(secret)),
        });
        f
    };
    for (i, s) in BUILTIN.iter().enumerate() {
        if hit(s.as_bytes()) {
            return Some(found("builtin", i, s.as_bytes()));
        }
    }
    let file = file?;
    let reader = BufReader::new(std::fs::File::open(file).ok()?);
    for (i, line) in reader.split(b'\n').enumerate() {
        let Ok(mut line) = line else { break };
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if hit(&line) {
            return Some(found("file", i + 1, &line));
        }
        if i % 1024 == 0 && start.elapsed() > budget {
            stats.budget_exhausted.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    }
    None
}
