//! Tokens waiting for a JWKS refresh. A token naming a `kid` that the
//! issuer's fetched key set lacks is not reported at once: the issuer may
//! have rotated keys since the last fetch. The token waits (bounded) until
//! the refetch it triggered has answered, failed or timed out, and is then
//! judged against the refreshed keys.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::finding::Finding;

/// Distinct tokens that may wait at once; more are judged at once.
pub const MAX_TOKENS: usize = 256;
/// Requests remembered per waiting token; more are counted only.
pub const MAX_REQUESTS: usize = 64;
/// How long a token waits for a refresh before it is judged anyway.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// One waiting token.
pub struct Waiting {
    /// The token, kept only in memory and only while it waits.
    pub token: String,
    /// The issuer whose refresh it waits for.
    pub issuer: usize,
    /// Finding contexts of the requests that carried it.
    pub requests: Vec<Finding>,
    /// Requests beyond [`MAX_REQUESTS`].
    pub more: u64,
    /// When it started to wait.
    pub since: Instant,
}

/// Tokens waiting for a refresh, keyed by token digest.
#[derive(Default)]
pub struct Pending {
    waiting: HashMap<[u8; 32], Waiting>,
}

impl Pending {
    /// Adds a request carrying a waiting token. Returns `false` when the
    /// set is full and the request must be judged now.
    pub fn add(&mut self, digest: [u8; 32], issuer: usize, token: &str, ctx: Finding) -> bool {
        if let Some(w) = self.waiting.get_mut(&digest) {
            if w.requests.len() < MAX_REQUESTS {
                w.requests.push(ctx);
            } else {
                w.more += 1;
            }
            return true;
        }
        if self.waiting.len() >= MAX_TOKENS {
            return false;
        }
        self.waiting.insert(
            digest,
            Waiting {
                token: token.to_string(),
                issuer,
                requests: vec![ctx],
                more: 0,
                since: Instant::now(),
            },
        );
        true
    }

    /// Takes the tokens waiting for issuer `i`.
    pub fn take_issuer(&mut self, i: usize) -> Vec<([u8; 32], Waiting)> {
        self.take_where(|w| w.issuer == i)
    }

    /// Takes the tokens that waited longer than [`TIMEOUT`] at `now`.
    pub fn take_expired(&mut self, now: Instant) -> Vec<([u8; 32], Waiting)> {
        self.take_where(|w| now.duration_since(w.since) >= TIMEOUT)
    }

    fn take_where(&mut self, pick: impl Fn(&Waiting) -> bool) -> Vec<([u8; 32], Waiting)> {
        let keys: Vec<[u8; 32]> = self
            .waiting
            .iter()
            .filter(|(_, w)| pick(w))
            .map(|(k, _)| *k)
            .collect();
        keys.into_iter()
            .filter_map(|k| self.waiting.remove(&k).map(|w| (k, w)))
            .collect()
    }

    /// Number of waiting tokens.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}
