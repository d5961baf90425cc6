//! API sequence analytics and rules: each call joins its session's current
//! sequence; n-grams of the sequences are counted and scored
//! ([`ngram`]); rules make a positive security model of them
//! (`sequence_rule_violation`); a first-order model of transitions flags
//! sessions that move in ways traffic never does (`sequence_anomalous`).
//! All state is bounded (sessions, endpoints, n-grams, transitions).

pub mod config;
pub mod endpoints;
pub mod ngram;
pub mod rules;
pub mod session;

use std::{collections::HashMap, num::NonZeroUsize};

use crate::bounded::BoundedLru;
use serde::Serialize;
use serde_json::json;

use crate::{
    analysis::{Reporter, TokenFacts},
    finding::{Finding, Kind, Severity},
    observe::Observation,
};
use config::{MAX_N, Mode, SeqRule, SequenceConfig};
use endpoints::{Endpoints, OpenApiError};
use ngram::Ngrams;
use session::Session;

/// The state a sequence starts from, in the transition model.
const START: u16 = u16::MAX;
/// Add-alpha smoothing of transition probabilities.
const ALPHA: f64 = 0.1;
/// Recent calls quoted as evidence.
const EVIDENCE: usize = 10;

/// One line of the sequence report.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ReportEntry {
    /// Endpoints in order.
    pub sequence: Vec<String>,
    /// Length.
    pub n: usize,
    /// Occurrences.
    pub count: u64,
    /// Correlation score (see [`ngram`]).
    pub score: f64,
    /// Share of sequences that contain it.
    pub share_of_sequences: f64,
}

/// The sequence report.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Report {
    /// Calls seen.
    pub calls: u64,
    /// Sequences seen.
    pub sequences: u64,
    /// Distinct endpoints named.
    pub endpoints: usize,
    /// N-grams held.
    pub ngrams: usize,
    /// N-grams evicted to stay within `max_ngrams`.
    pub evicted: u64,
    /// How far short a count may be after eviction.
    pub count_error_bound: u64,
    /// Best-scoring sequences.
    pub top: Vec<ReportEntry>,
}

/// The engine.
pub struct Sequencer {
    cfg: SequenceConfig,
    endpoints: Endpoints,
    grams: Ngrams,
    transitions: HashMap<(u16, u16), u64, ahash::RandomState>,
    from: HashMap<u16, u64, ahash::RandomState>,
    sessions: BoundedLru<u64, Session>,
    rules: Vec<rules::Compiled>,
    windowed: HashMap<u16, usize>,
    hasher: ahash::RandomState,
    calls: u64,
    sequences: u64,
}

impl Sequencer {
    /// An empty engine; fails only on an unusable OpenAPI file.
    pub fn new(cfg: &SequenceConfig) -> Result<Self, OpenApiError> {
        let mut endpoints = Endpoints::new(cfg.max_endpoints, cfg.openapi.as_deref())?;
        let rules = rules::compile(&cfg.rules, &mut endpoints);
        let windowed = rules::windowed(&rules).collect();
        let cap = NonZeroUsize::new(cfg.max_sessions.max(1)).unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            cfg: SequenceConfig {
                max_n: cfg.max_n.clamp(1, MAX_N),
                ..cfg.clone()
            },
            endpoints,
            grams: Ngrams::new(cfg.max_ngrams),
            transitions: HashMap::with_hasher(ahash::RandomState::new()),
            from: HashMap::with_hasher(ahash::RandomState::new()),
            sessions: BoundedLru::new(cap),
            rules,
            windowed,
            hasher: ahash::RandomState::new(),
            calls: 0,
            sequences: 0,
        })
    }

    fn names(&self, ids: impl Iterator<Item = u16>) -> Vec<String> {
        ids.map(|i| self.endpoints.name(i).to_string()).collect()
    }

    /// Takes one call; appends findings.
    pub fn observe(&mut self, obs: &Observation, facts: &TokenFacts, out: &mut Vec<Finding>) {
        if !self.cfg.enabled {
            return;
        }
        let t = obs.time;
        // An endpoint exists when the server answered it as one (auth
        // refusals included); made-up paths stay `{other}`.
        let served = obs
            .status
            .is_some_and(|s| !matches!(s, 400 | 404 | 405 | 414 | 501));
        let id = self
            .endpoints
            .intern(&obs.request.method, &obs.request.path, served);
        let key = session::key(&self.cfg.identity, obs, facts, &self.hasher);
        // Out of the cache while the engine works on it, back in (as most
        // recent) at the end.
        let mut s = self.sessions.pop(&key).unwrap_or_else(|| Session::new(t));
        if t.duration_since(s.last).unwrap_or_default() > self.cfg.idle_gap
            || s.len >= self.cfg.max_sequence_len
        {
            s.new_sequence();
        }
        if s.len == 0 {
            self.sequences += 1;
        }
        let mut emit = Reporter::new(obs, facts, out);
        self.check_rules(&s, id, &mut emit);
        self.judge_transition(&mut s, id, &mut emit);
        self.learn(&mut s, id, t);
        self.sessions.put(key, s);
    }

    fn evidence(&self, s: &Session, id: u16) -> Vec<String> {
        let skip = s.recent.len().saturating_sub(EVIDENCE - 1);
        self.names(s.recent_ids().skip(skip).chain([id]))
    }

    fn check_rules(&self, s: &Session, id: u16, emit: &mut Reporter<'_>) {
        for r in &self.rules {
            if let Some(problem) = r.violated(s, id, emit.time()) {
                let mode = r.rule.mode();
                let first = s.recent.front().map_or(emit.time(), |(_, at)| *at);
                let f = emit.finding(
                    Kind::SequenceRuleViolation,
                    first,
                    json!({ "rule": r.rule.name(), "rule_type": r.rule.kind(),
                            "mode": if mode == Mode::Block { "block" } else { "log" },
                            "problem": problem, "recent_calls": self.evidence(s, id) }),
                );
                if mode == Mode::Block {
                    f.severity = Severity::High;
                }
            }
        }
    }

    fn judge_transition(&self, s: &mut Session, id: u16, emit: &mut Reporter<'_>) {
        let a = &self.cfg.anomaly;
        if !a.enabled || self.calls < a.learning_calls {
            return;
        }
        let prev = s.recent.back().map_or(START, |(p, _)| *p);
        let known = self.endpoints.len() as f64;
        let c_ab = self.transitions.get(&(prev, id)).copied().unwrap_or(0) as f64;
        let c_a = self.from.get(&prev).copied().unwrap_or(0) as f64;
        let surprise = -((c_ab + ALPHA) / (c_a + ALPHA * known)).ln();
        if s.surprise.len() >= a.window.max(1) {
            s.surprise.pop_front();
        }
        s.surprise.push_back(surprise);
        let mean = s.surprise.iter().sum::<f64>() / s.surprise.len() as f64;
        if !s.anomalous && s.surprise.len() >= a.window.max(1) && mean >= a.threshold {
            s.anomalous = true;
            let first = s.recent.front().map_or(emit.time(), |(_, at)| *at);
            emit.finding(
                Kind::SequenceAnomalous,
                first,
                json!({ "score": (mean * 100.0).round() / 100.0, "threshold": a.threshold,
                        "transitions": s.surprise.len(), "recent_calls": self.evidence(s, id) }),
            );
        }
    }

    fn learn(&mut self, s: &mut Session, id: u16, t: std::time::SystemTime) {
        let prev = s.recent.back().map_or(START, |(p, _)| *p);
        if self.transitions.len() < self.cfg.max_ngrams
            || self.transitions.contains_key(&(prev, id))
        {
            *self.transitions.entry((prev, id)).or_default() += 1;
            *self.from.entry(prev).or_default() += 1;
        }
        s.push(id, t);
        if let Some(max) = self.windowed.get(&id) {
            let times = s.windows.entry(id).or_default();
            if times.len() > *max {
                times.pop_front();
            }
            times.push_back(t);
        }
        let mut ids = [0u16; session::RECENT];
        let len = s.recent.len();
        for (slot, v) in ids.iter_mut().zip(s.recent_ids()) {
            *slot = v;
        }
        for n in 1..=self.cfg.max_n.min(len) {
            let gram = &ids[len - n..len];

            let first = s.first_gram(self.hasher.hash_one(gram));
            self.grams.add(gram, first);
        }
        self.calls += 1;
    }

    /// The top sequences of length at least `min_n`.
    pub fn report(&self, top: usize, min_n: usize) -> Report {
        let seqs = self.sequences.max(1) as f64;
        Report {
            calls: self.calls,
            sequences: self.sequences,
            endpoints: self.endpoints.len() - 1,
            ngrams: self.grams.len(),
            evicted: self.grams.evicted(),
            count_error_bound: self.grams.error_bound(),
            top: self
                .grams
                .top(top, min_n, self.cfg.min_support)
                .into_iter()
                .map(|s| ReportEntry {
                    sequence: self.names(s.gram.ids().iter().copied()),
                    n: s.gram.ids().len(),
                    count: s.counts.count,
                    score: (s.score * 1000.0).round() / 1000.0,
                    share_of_sequences: s.counts.sequences as f64 / seqs,
                })
                .collect(),
        }
    }

    /// Precedence rules proposed from the learnt data: high-scoring
    /// sequences that end in a state-changing call, one per endpoint, each
    /// with the score and count that support it.
    pub fn suggest(&self, max: usize) -> Vec<(SeqRule, ReportEntry)> {
        let mut out: Vec<(SeqRule, ReportEntry)> = Vec::new();
        for e in self.report(1000, 2).top {
            let (Some(first), Some(last)) = (e.sequence.first(), e.sequence.last()) else {
                continue;
            };
            let changes = ["POST ", "PUT ", "PATCH ", "DELETE "]
                .iter()
                .any(|m| last.starts_with(m));
            if !changes || first == last || e.score < 0.3 {
                continue;
            }
            if out
                .iter()
                .any(|(r, _)| matches!(r, SeqRule::Precedence { endpoint, .. } if endpoint == last))
            {
                continue;
            }
            out.push((
                SeqRule::Precedence {
                    name: format!("{last} needs {first}"),
                    endpoint: last.clone(),
                    requires: first.clone(),
                    within: None,
                    mode: Mode::Log,
                },
                e,
            ));
            if out.len() >= max {
                break;
            }
        }
        out
    }

    /// How often the daemon writes the live report.
    pub fn report_interval(&self) -> std::time::Duration {
        self.cfg
            .report_interval
            .max(std::time::Duration::from_secs(1))
    }

    /// Writes the top 100 sequences to `report_file` (atomically), if one
    /// is configured.
    pub fn write_report(&self) -> std::io::Result<()> {
        let Some(path) = &self.cfg.report_file else {
            return Ok(());
        };
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(&self.report(100, 2))?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }

    /// Sessions tracked.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// N-grams held.
    pub fn ngrams(&self) -> usize {
        self.grams.len()
    }

    /// Transitions held.
    pub fn transitions(&self) -> usize {
        self.transitions.len()
    }
}

#[cfg(test)]
mod tests;
