//! N-gram counts over sliding windows of each sequence, in a table of
//! bounded size, and the correlation score that ranks them.
//!
//! **Bound.** When the table is full, every entry whose count is at most
//! a floor is evicted (lossy counting): the floor starts at 1 and rises
//! until a tenth of the table is free. Evicted counts stay in the per-n
//! totals, so the probabilities of what remains are still right; a later
//! count of an evicted n-gram may be short by at most the floor
//! ([`Ngrams::error_bound`]).
//!
//! **Score** (normalized pointwise mutual information, generalized to n
//! items). With `P(s) = count(s) / windows_n` and `P(e) = count(e) /
//! windows_1`:
//!
//! `score(s) = ln(P(s) / (P(e1) ... P(en))) / ((n - 1) * -ln P(s))`
//!
//! It is 0 when the calls are independent (P(s) is the product), 1 when
//! they only ever occur together and in this order (P(s) = P(ei) for every
//! i), and negative when they avoid each other. Unlike raw frequency or
//! lift, it does not favour frequent endpoints (a frequent pair of
//! independent calls scores about 0) and, unlike plain PMI, it does not
//! explode for rare items: a rare sequence scores high only when its
//! calls are rare *apart* from it too. A minimum support keeps one-off
//! coincidences out.

use std::collections::HashMap;

use super::config::MAX_N;

/// An n-gram of endpoint ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Gram {
    n: u8,
    ids: [u16; MAX_N],
}

impl Gram {
    /// The n-gram of `ids` (at most [`MAX_N`]).
    pub fn new(ids: &[u16]) -> Self {
        let n = ids.len().min(MAX_N);
        let mut g = Gram {
            n: n as u8,
            ids: [0; MAX_N],
        };
        g.ids[..n].copy_from_slice(&ids[..n]);
        g
    }

    /// Its endpoint ids.
    pub fn ids(&self) -> &[u16] {
        &self.ids[..usize::from(self.n)]
    }
}

/// Counts of one n-gram.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Occurrences.
    pub count: u64,
    /// Sequences that contained it.
    pub sequences: u64,
}

/// The bounded table.
pub struct Ngrams {
    table: HashMap<Gram, Counts, ahash::RandomState>,
    cap: usize,
    /// Windows of each length seen (index n - 1), evicted ones included.
    windows: [u64; MAX_N],
    floor: u64,
    evicted: u64,
}

/// One scored n-gram.
#[derive(Clone, Debug)]
pub struct Scored {
    /// The n-gram.
    pub gram: Gram,
    /// Its counts.
    pub counts: Counts,
    /// The correlation score.
    pub score: f64,
}

impl Ngrams {
    /// An empty table of at most `cap` entries.
    pub fn new(cap: usize) -> Self {
        Self {
            table: HashMap::with_hasher(ahash::RandomState::new()),
            cap: cap.max(16),
            windows: [0; MAX_N],
            floor: 0,
            evicted: 0,
        }
    }

    /// Counts one occurrence of `ids`; `first_in_sequence` also counts the
    /// sequence. Returns nothing: eviction happens as needed.
    pub fn add(&mut self, ids: &[u16], first_in_sequence: bool) {
        let n = ids.len();
        if n == 0 || n > MAX_N {
            return;
        }
        self.windows[n - 1] += 1;
        if self.table.len() >= self.cap && !self.table.contains_key(&Gram::new(ids)) {
            self.evict();
        }
        let c = self.table.entry(Gram::new(ids)).or_default();
        c.count += 1;
        if first_in_sequence {
            c.sequences += 1;
        }
    }

    fn evict(&mut self) {
        let target = self.cap - self.cap / 10;
        while self.table.len() > target {
            self.floor += 1;
            let floor = self.floor;
            let before = self.table.len();
            self.table.retain(|_, c| c.count > floor);
            self.evicted += (before - self.table.len()) as u64;
        }
    }

    /// Count of `ids` (0 if never seen or evicted).
    pub fn count(&self, ids: &[u16]) -> u64 {
        self.table.get(&Gram::new(ids)).map_or(0, |c| c.count)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Entries evicted so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// How far short a held count may be (what eviction may have lost).
    pub fn error_bound(&self) -> u64 {
        self.floor
    }

    /// Windows of length `n` seen.
    pub fn windows(&self, n: usize) -> u64 {
        self.windows.get(n.wrapping_sub(1)).copied().unwrap_or(0)
    }

    /// The score of `ids` (see the module documentation); `None` for
    /// unigrams and unseen n-grams.
    pub fn score(&self, ids: &[u16]) -> Option<f64> {
        let n = ids.len();
        let c = self.count(ids);
        if n < 2 || c == 0 {
            return None;
        }
        let p = c as f64 / self.windows(n).max(1) as f64;
        if p >= 1.0 {
            return Some(1.0);
        }
        let total1 = self.windows(1).max(1) as f64;
        let mut ln_indep = 0.0;
        for id in ids {
            let pe = self.count(&[*id]).max(1) as f64 / total1;
            ln_indep += pe.ln();
        }
        Some((p.ln() - ln_indep) / ((n - 1) as f64 * -p.ln()))
    }

    /// The `top` n-grams of length at least `min_n` with at least
    /// `min_support` occurrences, best score first (ties: more frequent).
    pub fn top(&self, top: usize, min_n: usize, min_support: u64) -> Vec<Scored> {
        let mut out: Vec<Scored> = self
            .table
            .iter()
            .filter(|(g, c)| usize::from(g.n) >= min_n.max(2) && c.count >= min_support)
            .filter_map(|(g, c)| {
                Some(Scored {
                    gram: *g,
                    counts: *c,
                    score: self.score(g.ids())?,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(b.counts.count.cmp(&a.counts.count))
        });
        out.truncate(top);
        out
    }

    /// Approximate heap bytes held.
    pub fn bytes(&self) -> usize {
        self.table.capacity() * (size_of::<(Gram, Counts)>() + 1)
    }
}
