//! Live JWKS refresh: one task per issuer with a `jwks_url` fetches it at
//! start, every `jwks_refresh`, and when the analyser met an unknown `kid`
//! (at most once per `jwks_min_refetch`). Results (new keys or the
//! failure) go to the pipeline, which hands them to the analyser.

use std::{sync::Arc, time::Duration};

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::keys::{Key, fetch_jwks};

/// Handle of the refresh tasks.
pub struct Refresher {
    /// Issuer index → wake-up for an unknown kid.
    wake: Vec<(usize, Arc<Notify>)>,
}

/// What a refresh task reports: the issuer's index and its new keys, or
/// why the fetch failed.
pub type Fetched = (usize, Result<Vec<Key>, String>);

impl Refresher {
    /// Starts a task per `(issuer index, url)`; fetched key sets arrive on
    /// the returned receiver.
    pub fn start(
        urls: Vec<(usize, String, Duration, Duration)>,
        stop: CancellationToken,
    ) -> (Self, mpsc::Receiver<Fetched>) {
        let (tx, rx) = mpsc::channel(16);
        let client = reqwest::Client::new();
        let mut wake = Vec::new();
        for (i, url, every, min_gap) in urls {
            let notify = Arc::new(Notify::new());
            wake.push((i, notify.clone()));
            let (tx, client, stop) = (tx.clone(), client.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    let result = fetch_jwks(&client, &url).await.map_err(|e| e.to_string());
                    match &result {
                        Ok(keys) => info!(url, keys = keys.len(), "JWKS fetched"),
                        Err(e) => warn!(error = %e, "JWKS fetch failed; keeping the keys at hand"),
                    }
                    // A failure is passed on too: tokens waiting for it are
                    // judged against the keys at hand.
                    if tx.send((i, result)).await.is_err() {
                        return;
                    }
                    // Rate limit, then wait for the interval or a request.
                    tokio::select! {
                        () = tokio::time::sleep(min_gap) => {}
                        () = stop.cancelled() => return,
                    }
                    tokio::select! {
                        () = tokio::time::sleep(every.saturating_sub(min_gap)) => {}
                        () = notify.notified() => {}
                        () = stop.cancelled() => return,
                    }
                }
            });
        }
        (Self { wake }, rx)
    }

    /// Asks for a refresh of issuer `i` (ignored within the rate limit:
    /// the request is remembered and served when the gap has passed).
    pub fn request(&self, i: usize) {
        if let Some((_, n)) = self.wake.iter().find(|(j, _)| *j == i) {
            n.notify_one();
        }
    }
}
