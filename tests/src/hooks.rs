//! Real webhook receivers for the alert tests, on loopback: `/slack` and
//! `/hook` answer 200; `/flaky` answers 500 the first time and 200 after;
//! `/hang` holds the request for 15 s (a dead sink). Every request body is
//! recorded with its path and arrival time.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Result;
use serde_json::Value;

use crate::http::{Handler, TestServer};

/// A received request.
#[derive(Clone, Debug)]
pub struct Hit {
    /// Path.
    pub path: String,
    /// Raw body.
    pub body: String,
    /// When it arrived.
    pub at: Instant,
}

/// The receiver; stops on drop.
pub struct Hooks {
    server: TestServer,
    /// Everything received.
    pub hits: Arc<Mutex<Vec<Hit>>>,
    /// `/hang` requests being held right now.
    pub hanging: Arc<AtomicU64>,
}

impl Hooks {
    /// Listens on 127.0.0.1, a free port.
    pub fn start() -> Result<Self> {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let hanging = Arc::new(AtomicU64::new(0));
        let flaky = Arc::new(AtomicU64::new(0));
        let (h, hang) = (hits.clone(), hanging.clone());
        let handler: Handler = Arc::new(move |req| {
            h.lock().unwrap().push(Hit {
                path: req.path.to_string(),
                body: String::from_utf8_lossy(req.body).into_owned(),
                at: Instant::now(),
            });
            match req.path {
                "/flaky" if flaky.fetch_add(1, Ordering::Relaxed) == 0 => (500, "try later".into()),
                "/hang" => {
                    hang.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_secs(15));
                    hang.fetch_sub(1, Ordering::Relaxed);
                    (200, "ok".into())
                }
                _ => (200, "ok".into()),
            }
        });
        let server = TestServer::serve("127.0.0.1", 0, None, handler)?;
        Ok(Self {
            server,
            hits,
            hanging,
        })
    }

    /// The URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.server.port)
    }

    /// Bodies received on `path`, as JSON.
    pub fn json(&self, path: &str) -> Vec<Value> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .filter_map(|h| serde_json::from_str(&h.body).ok())
            .collect()
    }

    /// Requests received on `path`.
    pub fn count(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .count()
    }
}
