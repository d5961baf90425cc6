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
/// N-grams kept as exact hashes before a sequence gets its filter: a
/// session of one or two calls (most of a flood's) counts at most three.
const FEW_GRAMS: usize = 4;

/// The n-grams a sequence already counted: their hashes while there are
/// few (exact, inline), a Bloom filter (3 hashes, 256 bytes) after.
enum Grams {
    Few { hashes: [u64; FEW_GRAMS], len: u8 },
    Filter(Box<[u64; FILTER_BITS / 64]>),
}

impl Grams {
    const EMPTY: Self = Self::Few {
        hashes: [0; FEW_GRAMS],
        len: 0,
    };

    /// The filter's bits for `h`.
    fn bits(h: u64) -> [usize; 3] {
        [h, h.rotate_left(21), h.rotate_left(42)].map(|x| (x as usize) % FILTER_BITS)
    }

    /// True when `h` may have been added (never false for one that was).
    fn contains(&self, h: u64) -> bool {
        match self {
            Self::Few { hashes, len } => hashes[..usize::from(*len)].contains(&h),
            Self::Filter(f) => Self::bits(h)
                .iter()
                .all(|b| f[b / 64] & (1 << (b % 64)) != 0),
        }
    }

    fn add(&mut self, h: u64) {
        if let Self::Few { hashes, len } = self {
            if usize::from(*len) < FEW_GRAMS {
                hashes[usize::from(*len)] = h;
                *len += 1;
                return;
            }
            let mut filter = Box::new([0u64; FILTER_BITS / 64]);
            for old in *hashes {
                for b in Self::bits(old) {
                    filter[b / 64] |= 1 << (b % 64);
                }
            }
            *self = Self::Filter(filter);
        }
        if let Self::Filter(f) = self {
            for b in Self::bits(h) {
                f[b / 64] |= 1 << (b % 64);
            }
        }
    }

    fn clear(&mut self) {
        match self {
            Self::Few { len, .. } => *len = 0,
            Self::Filter(f) => f.fill(0),
        }
    }
}

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
    /// The n-grams this sequence already counted: exact for the first
    /// few, then a Bloom filter of 256 bytes however long it runs. A false
    /// positive can miss a sequence in a share; it never counts one twice.
    grams: Grams,
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
            grams: Grams::EMPTY,
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
        self.grams.clear();
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
        if self.grams.contains(h) || self.grams_counted >= MAX_GRAMS_COUNTED {
            return false;
        }
        self.grams.add(h);
        self.grams_counted += 1;
        true
    }

    /// The ids of the most recent calls, oldest first.
    pub fn recent_ids(&self) -> impl DoubleEndedIterator<Item = u16> + ExactSizeIterator + '_ {
        self.recent.iter().map(|(id, _)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each n-gram counts once per sequence, across the switch from the
    /// exact hashes to the filter and after a new sequence starts.
    #[test]
    fn an_ngram_counts_once_per_sequence_before_and_after_the_filter() {
        let mut s = Session::new(SystemTime::UNIX_EPOCH);
        let hashes: Vec<u64> = (1..=40u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        for (n, h) in hashes.iter().enumerate() {
            assert!(s.first_gram(*h), "new gram {n}");
            // Every gram so far is now known, the few and the filtered.
            assert!(
                hashes[..=n].iter().all(|old| !s.first_gram(*old)),
                "after {n}"
            );
        }
        assert!(matches!(s.grams, Grams::Filter(_)));
        s.new_sequence();
        assert!(
            hashes.iter().all(|h| s.first_gram(*h)),
            "a new sequence counts again"
        );
        let mut few = Session::new(SystemTime::UNIX_EPOCH);
        for h in &hashes[..FEW_GRAMS] {
            assert!(few.first_gram(*h));
        }
        assert!(
            matches!(few.grams, Grams::Few { .. }),
            "no filter for a short sequence"
        );
    }
}
