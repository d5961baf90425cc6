//! Sequence rules, compiled to endpoint ids, checked against a session's
//! state before the call is recorded.

use std::time::{Duration, SystemTime};

use super::{
    config::{Mode, SeqRule},
    endpoints::Endpoints,
    session::Session,
};

/// A rule with its endpoints resolved.
pub struct Compiled {
    /// The configured rule.
    pub rule: SeqRule,
    check: Check,
}

enum Check {
    Precedence {
        endpoint: u16,
        requires: u16,
        within: Option<Duration>,
    },
    NoRepeat(u16),
    MaxInWindow {
        endpoint: u16,
        max: usize,
        window: Duration,
    },
    Allow(Vec<u16>),
    Deny(Vec<u16>),
}

/// Interns a rule's endpoint name (`METHOD /path`).
fn id(endpoints: &mut Endpoints, name: &str) -> u16 {
    let (method, path) = name.trim().split_once(' ').unwrap_or(("GET", name));
    endpoints.intern(method.trim(), path.trim(), true)
}

/// Resolves every rule's endpoints (naming them if unseen).
pub fn compile(rules: &[SeqRule], endpoints: &mut Endpoints) -> Vec<Compiled> {
    rules
        .iter()
        .map(|r| {
            let check = match r {
                SeqRule::Precedence {
                    endpoint,
                    requires,
                    within,
                    ..
                } => Check::Precedence {
                    endpoint: id(endpoints, endpoint),
                    requires: id(endpoints, requires),
                    within: *within,
                },
                SeqRule::NoRepeat { endpoint, .. } => Check::NoRepeat(id(endpoints, endpoint)),
                SeqRule::MaxInWindow {
                    endpoint,
                    max,
                    window,
                    ..
                } => Check::MaxInWindow {
                    endpoint: id(endpoints, endpoint),
                    max: *max,
                    window: *window,
                },
                SeqRule::Allow { sequence, .. } => {
                    Check::Allow(sequence.iter().map(|n| id(endpoints, n)).collect())
                }
                SeqRule::Deny { sequence, .. } => {
                    Check::Deny(sequence.iter().map(|n| id(endpoints, n)).collect())
                }
            };
            Compiled {
                rule: r.clone(),
                check,
            }
        })
        .collect()
}

/// Endpoints whose call times `max_in_window` rules need.
pub fn windowed(rules: &[Compiled]) -> impl Iterator<Item = (u16, usize)> + '_ {
    rules.iter().filter_map(|r| match r.check {
        Check::MaxInWindow { endpoint, max, .. } => Some((endpoint, max)),
        _ => None,
    })
}

/// Whether the session's recent calls followed by `next` end with `want`.
fn ends_with(s: &Session, next: u16, want: &[u16]) -> bool {
    let Some((last, prefix)) = want.split_last() else {
        return false;
    };
    if *last != next || s.recent.len() < prefix.len() {
        return false;
    }
    s.recent_ids()
        .rev()
        .take(prefix.len())
        .eq(prefix.iter().rev().copied())
}

impl Compiled {
    /// Whether calling `id` at `t` violates this rule; returns what was
    /// wrong.
    pub fn violated(&self, s: &Session, id: u16, t: SystemTime) -> Option<String> {
        match &self.check {
            Check::Precedence {
                endpoint,
                requires,
                within,
            } if *endpoint == id => {
                let ok = s.seen.get(requires).is_some_and(|at| {
                    within.is_none_or(|w| t.duration_since(*at).unwrap_or_default() <= w)
                });
                (!ok).then(|| "called without its prerequisite earlier in the session".into())
            }
            Check::NoRepeat(e) if *e == id => (s.recent.back().map(|(last, _)| *last) == Some(id))
                .then(|| "called twice in a row".into()),
            Check::MaxInWindow {
                endpoint,
                max,
                window,
            } if *endpoint == id => {
                let calls = s.windows.get(&id).map_or(0, |times| {
                    times
                        .iter()
                        .filter(|at| t.duration_since(**at).unwrap_or_default() < *window)
                        .count()
                });
                (calls >= *max).then(|| format!("more than {max} calls within {window:?}"))
            }
            Check::Allow(seq) if seq.last() == Some(&id) => {
                (!ends_with(s, id, seq)).then(|| "not preceded by the allowed sequence".into())
            }
            Check::Deny(seq) => {
                ends_with(s, id, seq).then(|| "the session performed a denied sequence".into())
            }
            _ => None,
        }
    }

    /// Blocks when violated.
    pub fn blocks(&self) -> bool {
        self.rule.mode() == Mode::Block
    }
}
