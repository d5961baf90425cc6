//! Behaviour of one token (or subject) over time: the same token from many
//! client IPs (`jwt_replay_multi_ip`), with another User-Agent
//! (`jwt_agent_change`), and a subject whose privilege claims grow
//! (`jwt_claims_escalation`). Sliding windows on the observation clock;
//! state is bounded by LRU caches.

use std::{
    collections::BTreeSet,
    net::IpAddr,
    num::NonZeroUsize,
    time::{Duration, SystemTime},
};

use crate::bounded::BoundedLru;
use serde_json::{Map, Value, json};

use crate::finding::Kind;

/// Most IPs / agents remembered per token (more are counted, not stored).
const MAX_PER_TOKEN: usize = 16;

#[derive(Default)]
struct SubjectTrack {
    /// Privilege items seen, with when.
    items: Vec<(String, SystemTime)>,
    /// Sizes of the privilege sets presented, with when.
    sizes: Vec<(usize, SystemTime)>,
    /// The latest `iat` of a verified token of this subject.
    iat: Option<i64>,
}

/// Values that grant more than any ordinary role whatever the claim.
const ELEVATED: &[&str] = &[
    "admin",
    "administrator",
    "root",
    "superuser",
    "super",
    "owner",
    "*",
    "all",
    "write",
    "delete",
    "true",
    "staff",
    "sudo",
    "manage",
];

fn elevated(item: &str) -> bool {
    let v = item
        .split_once('=')
        .map_or(item, |(_, v)| v)
        .to_ascii_lowercase();
    ELEVATED
        .iter()
        .any(|e| v == *e || v.ends_with(&format!(":{e}")) || v.starts_with(&format!("{e}:")))
}

#[derive(Default)]
struct TokenTrack {
    ips: Vec<(IpAddr, SystemTime)>,
    agents: Vec<(u64, SystemTime)>,
}

/// The privilege items of a claims set: `claim=value` strings.
pub fn privileges(claims: &Map<String, Value>, names: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for name in names {
        match claims.get(name) {
            Some(Value::String(s)) => {
                out.extend(s.split_whitespace().map(|v| format!("{name}={v}")));
            }
            Some(Value::Array(a)) => out.extend(a.iter().map(|v| match v {
                Value::String(s) => format!("{name}={s}"),
                other => format!("{name}={other}"),
            })),
            Some(Value::Bool(true)) => {
                out.insert(format!("{name}=true"));
            }
            Some(Value::Number(n)) => {
                out.insert(format!("{name}={n}"));
            }
            _ => {}
        }
    }
    out
}

/// The behaviour tracker.
pub struct Behaviour {
    tokens: BoundedLru<[u8; 32], TokenTrack>,
    subjects: BoundedLru<String, SubjectTrack>,
    window: Duration,
    max_ips: usize,
    escalation_window: Duration,
}

fn fresh(t: SystemTime, now: SystemTime, window: Duration) -> bool {
    now.duration_since(t).map_or(true, |age| age <= window)
}

fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

impl Behaviour {
    /// A tracker for at most `max` tokens and `max` subjects.
    pub fn new(max: usize, window: Duration, max_ips: usize, escalation_window: Duration) -> Self {
        let cap = NonZeroUsize::new(max.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            tokens: BoundedLru::new(cap),
            subjects: BoundedLru::new(cap),
            window,
            max_ips,
            escalation_window,
        }
    }

    /// Records a use of a token; returns `(kind, detail)` findings.
    pub fn token_use(
        &mut self,
        digest: &[u8; 32],
        ip: IpAddr,
        agent: Option<&str>,
        now: SystemTime,
    ) -> Vec<(Kind, Value)> {
        let mut out = Vec::new();
        let window = self.window;
        let t = self.tokens.get_or_insert_mut(*digest, TokenTrack::default);
        t.ips.retain(|(_, seen)| fresh(*seen, now, window));
        t.agents.retain(|(_, seen)| fresh(*seen, now, window));
        if let Some(entry) = t.ips.iter_mut().find(|(a, _)| *a == ip) {
            entry.1 = now;
        } else {
            if t.ips.len() < MAX_PER_TOKEN {
                crate::bounded::push_tight(&mut t.ips, (ip, now));
            }
            if t.ips.len() > self.max_ips {
                out.push((
                    Kind::JwtReplayMultiIp,
                    json!({
                        "distinct_ips": t.ips.len(),
                        "threshold": self.max_ips,
                        "window_s": window.as_secs(),
                        "ips": t.ips.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>(),
                    }),
                ));
            }
        }
        if let Some(agent) = agent {
            let h = hash(agent);
            if let Some(entry) = t.agents.iter_mut().find(|(a, _)| *a == h) {
                entry.1 = now;
            } else {
                let before = t.agents.len();
                if before < MAX_PER_TOKEN {
                    crate::bounded::push_tight(&mut t.agents, (h, now));
                }
                if before > 0 {
                    out.push((
                        Kind::JwtAgentChange,
                        json!({
                            "user_agent": agent.chars().take(200).collect::<String>(),
                            "agents_in_window": before + 1,
                            "window_s": window.as_secs(),
                        }),
                    ));
                }
            }
        }
        out
    }

    /// Records the privileges a subject presented; returns the evidence
    /// when they grant more than what the subject showed in the window:
    /// new items that are admin-like (`admin`, `root`, `write`, `*`, ...)
    /// or a larger set than any presented before.
    /// Whether `sub`'s verified token was issued after every verified
    /// token it showed before (a re-issue: a refresh, or a consent that
    /// granted more scopes); remembers its `iat`.
    pub fn issued_later(&mut self, sub: &str, iat: Option<i64>) -> bool {
        let Some(iat) = iat else { return false };
        let track = self
            .subjects
            .get_or_insert_mut(sub.to_string(), SubjectTrack::default);
        let later = track.iat.is_some_and(|prev| iat > prev);
        if track.iat.is_none_or(|prev| iat > prev) {
            track.iat = Some(iat);
        }
        later
    }

    pub fn subject_privileges(
        &mut self,
        sub: &str,
        items: &BTreeSet<String>,
        now: SystemTime,
    ) -> Option<Value> {
        let window = self.escalation_window;
        let track = self
            .subjects
            .get_or_insert_mut(sub.to_string(), SubjectTrack::default);
        track.items.retain(|(_, t)| fresh(*t, now, window));
        track.sizes.retain(|(_, t)| fresh(*t, now, window));
        let first = track.sizes.is_empty();
        let max_before = track.sizes.iter().map(|(n, _)| *n).max().unwrap_or(0);
        // Fast path (the usual case): nothing new, nothing to allocate.
        if !first
            && items.len() <= max_before
            && items
                .iter()
                .all(|i| track.items.iter().any(|(s, _)| s == i))
        {
            for (s, t) in &mut track.items {
                if items.contains(s) {
                    *t = now;
                }
            }
            if let Some(last) = track.sizes.iter_mut().find(|(n, _)| *n == items.len()) {
                last.1 = now;
            }
            return None;
        }
        let known: BTreeSet<&String> = track.items.iter().map(|(i, _)| i).collect();
        let added: Vec<String> = items
            .iter()
            .filter(|i| !known.contains(i))
            .cloned()
            .collect();
        let before: Vec<String> = known.iter().map(|s| (*s).clone()).collect();
        for i in items {
            if let Some(e) = track.items.iter_mut().find(|(s, _)| s == i) {
                e.1 = now;
            } else if track.items.len() < 64 {
                crate::bounded::push_tight(&mut track.items, (i.clone(), now));
            }
        }
        if track.sizes.len() < 64 {
            crate::bounded::push_tight(&mut track.sizes, (items.len(), now));
        }
        let grows = items.len() > max_before || added.iter().any(|i| elevated(i));
        (!first && !added.is_empty() && grows).then(|| {
            json!({
                "added": added,
                "seen_before": before,
                "window_s": window.as_secs(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    #[test]
    fn replay_needs_more_than_n_ips_within_the_window() {
        let mut b = Behaviour::new(100, Duration::from_mins(5), 3, Duration::from_hours(1));
        let d = [7u8; 32];
        for i in 0..3 {
            let ip: IpAddr = format!("10.0.0.{i}").parse().unwrap();
            assert!(b.token_use(&d, ip, None, at(i)).is_empty());
        }
        // A fourth IP after the first ones aged out: no replay.
        let late: IpAddr = "10.0.0.9".parse().unwrap();
        assert!(b.token_use(&d, late, None, at(1000)).is_empty());
        // Four within the window: replay.
        let ip4: IpAddr = "10.0.0.4".parse().unwrap();
        for i in 0..3 {
            let ip: IpAddr = format!("10.0.1.{i}").parse().unwrap();
            b.token_use(&d, ip, None, at(1001 + i));
        }
        let f = b.token_use(&d, ip4, None, at(1010));
        assert_eq!(f[0].0, "jwt_replay_multi_ip");
    }

    #[test]
    fn agent_change_and_escalation() {
        let mut b = Behaviour::new(100, Duration::from_mins(5), 3, Duration::from_hours(1));
        let d = [1u8; 32];
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(b.token_use(&d, ip, Some("curl/8"), at(0)).is_empty());
        assert!(b.token_use(&d, ip, Some("curl/8"), at(1)).is_empty());
        assert_eq!(
            b.token_use(&d, ip, Some("python"), at(2))[0].0,
            "jwt_agent_change"
        );

        let names: Vec<String> = ["role", "scope"].map(String::from).to_vec();
        let user = privileges(
            json!({"role": "user", "scope": "read"})
                .as_object()
                .unwrap(),
            &names,
        );
        let admin = privileges(
            json!({"role": "admin", "scope": "read write"})
                .as_object()
                .unwrap(),
            &names,
        );
        assert!(b.subject_privileges("alice", &user, at(0)).is_none());
        assert!(b.subject_privileges("alice", &user, at(10)).is_none());
        let e = b.subject_privileges("alice", &admin, at(20)).unwrap();
        assert_eq!(e["added"], json!(["role=admin", "scope=write"]));
        // Outside the window, the old privileges are forgotten.
        assert!(b.subject_privileges("bob", &admin, at(0)).is_none());
        assert!(b.subject_privileges("bob", &admin, at(5000)).is_none());
        // Re-issues: only a later iat of a verified token counts.
        assert!(!b.issued_later("carol", Some(100)));
        assert!(!b.issued_later("carol", Some(100)));
        assert!(b.issued_later("carol", Some(700)));
        assert!(!b.issued_later("carol", Some(400)));
        assert!(!b.issued_later("carol", None));
    }
}
