//! Sessions: who a call belongs to (from the token, a cookie, an API key
//! or the client address and User-Agent, as configured) and the bounded
//! state of that session's current sequence. Identities are kept only as
//! keyed hashes, never as the raw token, cookie or key.

use std::{
    collections::{HashMap, VecDeque},
    hash::{BuildHasher, Hasher},
    time::SystemTime,
};

use crate::{analysis::TokenFacts, observe::Observation};

/// Calls remembered per session for rules and evidence.
pub const RECENT: usize = 16;
/// Distinct endpoints remembered per session (precedence rules).
const MAX_SEEN: usize = 512;
/// Bits of the per-sequence filter of n-grams already counted.
const FILTER_BITS: usize = 2048;
/// N-grams a sequence counts towards "share of sequences" (the filter's
/// false-positive rate stays under about 5% up to here; beyond, later new
/// n-grams of a long sequence do not add to their share).
const MAX_GRAMS_COUNTED: u32 = 400;

/// The session key of a call: a keyed hash of the first identity source
/// present.
pub fn key(
    identity: &[String],
    obs: &Observation,
    facts: &TokenFacts,
    hasher: &ahash::RandomState,
) -> u64 {
    let mut h = hasher.build_hasher();
    for source in identity {
        let value = match source.as_str() {
            "jwt_session" => facts.session.as_deref(),
            "jwt_sub" => facts.subject.as_deref(),
            "api_key" => obs.request.api_key.as_ref().map(|k| k.0.as_str()),
            s => s
                .strip_prefix("cookie:")
                .and_then(|name| obs.request.cookie(name)),
        };
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            h.write(source.as_bytes());
            h.write(v.as_bytes());
            return h.finish();
        }
    }
    h.write(b"ip_ua");
    h.write(obs.client_ip.to_string().as_bytes());
    h.write(obs.request.user_agent.as_deref().unwrap_or("").as_bytes());
    h.finish()
}

/// One session's current sequence.
pub struct Session {
    /// Last call's time.
    pub last: SystemTime,
    /// Calls in the current sequence.
    pub len: usize,
    /// The most recent calls, oldest first, with their times.
    pub recent: VecDeque<(u16, SystemTime)>,
    /// When each endpoint was last called in this session.
    pub seen: HashMap<u16, SystemTime>,
    /// Call times per endpoint that a `max_in_window` rule watches.
    pub windows: HashMap<u16, VecDeque<SystemTime>>,
    /// A Bloom filter (3 hashes) of the n-grams this sequence already
    /// counted: 256 bytes per session however long it runs (none before
    /// its first n-gram). A false
    /// positive can miss a sequence in a share; it never counts one twice.
    /// Allocated at the first n-gram: a session of one call has none.
    grams: Option<Box<[u64; FILTER_BITS / 64]>>,
    grams_counted: u32,
    /// Surprise of the most recent transitions.
    pub surprise: VecDeque<f64>,
    /// `sequence_anomalous` already reported for this sequence.
    pub anomalous: bool,
}

impl Session {
    /// A new session at `t`.
    pub fn new(t: SystemTime) -> Self {
        Self {
            last: t,
            len: 0,
            // Grows to RECENT as the sequence does: most sessions of a
            // flood make one call.
            recent: VecDeque::new(),
            seen: HashMap::new(),
            windows: HashMap::new(),
            grams: None,
            grams_counted: 0,
            surprise: VecDeque::new(),
            anomalous: false,
        }
    }

    /// Starts a new sequence inside the session (after an idle gap or at
    /// the length cap); what the session did earlier (`seen`, windows)
    /// still counts for rules.
    pub fn new_sequence(&mut self) {
        self.len = 0;
        self.recent.clear();
        if let Some(g) = &mut self.grams {
            g.fill(0);
        }
        self.grams_counted = 0;
        self.surprise.clear();
        self.anomalous = false;
    }

    /// Records a call.
    pub fn push(&mut self, id: u16, t: SystemTime) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((id, t));
        if self.seen.len() < MAX_SEEN || self.seen.contains_key(&id) {
            self.seen.insert(id, t);
        }
        self.len += 1;
        self.last = t;
    }

    /// True the first time this sequence counts n-gram `h` (a hash).
    pub fn first_gram(&mut self, h: u64) -> bool {
        let bits = [h, h.rotate_left(21), h.rotate_left(42)].map(|x| (x as usize) % FILTER_BITS);
        let grams = self
            .grams
            .get_or_insert_with(|| Box::new([0; FILTER_BITS / 64]));
        if bits.iter().all(|b| grams[b / 64] & (1 << (b % 64)) != 0)
            || self.grams_counted >= MAX_GRAMS_COUNTED
        {
            return false;
        }
        for b in bits {
            grams[b / 64] |= 1 << (b % 64);
        }
        self.grams_counted += 1;
        true
    }

    /// The ids of the most recent calls, oldest first.
    pub fn recent_ids(&self) -> impl DoubleEndedIterator<Item = u16> + ExactSizeIterator + '_ {
        self.recent.iter().map(|(id, _)| *id)
    }
}
