//! Alerts: incidents become messages for people. The [`Aggregator`] folds
//! findings of the same kind + source into one alert with a count (a wait
//! before the first, a follow-up per repeat interval); `format` renders
//! Slack Block Kit, generic JSON and e-mail; `deliver` runs one bounded
//! queue per sink with rate limit, severity threshold and retries.

pub mod config;
pub mod deliver;
pub mod format;

use std::{
    collections::HashMap,
    time::{Duration, Instant, SystemTime},
};

use serde::Serialize;

use crate::{finding::Severity, incident::Incident};

/// One alert (what every sink renders).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// The incident it is about.
    pub incident_id: i64,
    /// Finding kind.
    pub kind: String,
    /// Highest severity.
    pub severity: Severity,
    /// Source (pseudonymized unless configured otherwise).
    pub source: String,
    /// Token subject.
    pub subject: Option<String>,
    /// Token id (hash prefix).
    pub token_id: Option<String>,
    /// Endpoint of the first finding.
    pub endpoint: String,
    /// What was decided (`block_ip`, `revoke_token`, `alert`, ...).
    pub action: String,
    /// Block lifetime in force, seconds.
    pub ttl_s: Option<u64>,
    /// Incident status.
    pub status: String,
    /// Evidence summary.
    pub evidence: String,
    /// Findings this alert stands for.
    pub count: u64,
    /// Findings in the incident so far.
    pub incident_count: u64,
    /// First request of the incident.
    #[serde(with = "humantime_serde")]
    pub first_seen: SystemTime,
    /// Latest request.
    #[serde(with = "humantime_serde")]
    pub last_seen: SystemTime,
    /// Whether it follows an earlier alert of the same kind + source.
    pub follow_up: bool,
}

impl Alert {
    /// The alert of an incident as it stands, standing for `count` findings.
    pub fn of(inc: &Incident, count: u64, follow_up: bool) -> Self {
        let block = inc.actions.iter().rev().find(|a| a.action == "block_ip");
        Self {
            incident_id: inc.id,
            kind: inc.kind.clone(),
            severity: inc.severity,
            source: inc.source.clone(),
            subject: inc.subject.clone(),
            token_id: inc.token_id.clone(),
            endpoint: inc.endpoint.clone(),
            action: if block.is_some() {
                "block_ip".into()
            } else {
                inc.decision.clone()
            },
            ttl_s: block.and_then(|b| b.ttl_s),
            status: inc.status.as_str().into(),
            evidence: inc.evidence.clone(),
            count,
            incident_count: inc.count,
            first_seen: inc.first_seen,
            last_seen: inc.last_seen,
            follow_up,
        }
    }
}

struct Group {
    latest: Incident,
    /// Findings not yet alerted.
    count: u64,
    /// When the held findings go out (`None`: nothing held).
    due: Option<Instant>,
    /// When the last alert went out.
    sent: Option<Instant>,
}

/// Folds findings into alerts per kind + source.
pub struct Aggregator {
    groups: HashMap<(String, String), Group>,
    wait: Duration,
    repeat: Duration,
    max: usize,
}

impl Aggregator {
    /// From `[alerts]`.
    pub fn new(cfg: &config::AlertConfig) -> Self {
        Self {
            groups: HashMap::new(),
            wait: cfg.group_wait,
            repeat: cfg.repeat_interval,
            max: cfg.max_groups.max(1),
        }
    }

    /// One more finding of an incident (`inc` as it now stands). Returns
    /// an alert to send at once when grouping is impossible (table full).
    /// Otherwise returns `None` and the finding is held or folded.
    pub fn finding(&mut self, inc: &Incident, now: Instant) -> Option<Alert> {
        let key = (inc.kind.clone(), inc.source.clone());
        if !self.groups.contains_key(&key) && self.groups.len() >= self.max {
            return Some(Alert::of(inc, 1, false));
        }
        let (wait, repeat) = (self.wait, self.repeat);
        let g = self.groups.entry(key).or_insert(Group {
            latest: inc.clone(),
            count: 0,
            due: None,
            sent: None,
        });
        g.latest = inc.clone();
        g.count += 1;
        if g.due.is_none() {
            g.due = Some(match g.sent {
                Some(sent) => (sent + repeat).max(now),
                None => now + wait,
            });
        }
        None
    }

    /// An incident changed without a new finding (a block took effect):
    /// a held alert shows the latest state.
    pub fn update(&mut self, inc: &Incident) {
        if let Some(g) = self.groups.get_mut(&(inc.kind.clone(), inc.source.clone())) {
            g.latest = inc.clone();
        }
    }

    /// Alerts due by `now`; forgets groups quiet for a repeat interval.
    pub fn due(&mut self, now: Instant) -> Vec<Alert> {
        let mut out = Vec::new();
        let repeat = self.repeat;
        self.groups.retain(|_, g| {
            if g.due.is_some_and(|d| d <= now) {
                out.push(Alert::of(&g.latest, g.count, g.sent.is_some()));
                g.count = 0;
                g.due = None;
                g.sent = Some(now);
            }
            g.due.is_some() || g.sent.is_some_and(|s| now.duration_since(s) < repeat)
        });
        out.sort_by_key(|a| a.incident_id);
        out
    }

    /// The earliest time an alert falls due.
    pub fn next_due(&self) -> Option<Instant> {
        self.groups.values().filter_map(|g| g.due).min()
    }

    /// Everything held, at once (shutdown).
    pub fn flush(&mut self) -> Vec<Alert> {
        let now = Instant::now();
        for g in self.groups.values_mut() {
            if g.due.is_some() {
                g.due = Some(now);
            }
        }
        self.due(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::Status;

    fn inc(id: i64, source: &str, count: u64) -> Incident {
        Incident {
            id,
            kind: "brute_force".into(),
            severity: Severity::High,
            status: Status::Open,
            first_seen: SystemTime::UNIX_EPOCH,
            last_seen: SystemTime::UNIX_EPOCH,
            detected_at: SystemTime::UNIX_EPOCH,
            mitigated_at: None,
            closed_at: None,
            source: source.into(),
            token_id: None,
            subject: None,
            endpoint: "POST /login".into(),
            count,
            decision: "alert".into(),
            evidence: String::new(),
            actions: Vec::new(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn fifty_findings_one_alert_then_a_follow_up() {
        let cfg = config::AlertConfig {
            group_wait: Duration::from_secs(10),
            repeat_interval: Duration::from_mins(5),
            ..Default::default()
        };
        let mut agg = Aggregator::new(&cfg);
        let t0 = Instant::now();
        for i in 1..=50 {
            assert!(
                agg.finding(&inc(7, "px-a", i), t0 + Duration::from_millis(i * 10))
                    .is_none()
            );
        }
        assert!(agg.finding(&inc(8, "px-b", 1), t0).is_none());
        assert!(agg.due(t0 + Duration::from_secs(9)).is_empty());
        let sent = agg.due(t0 + Duration::from_secs(11));
        assert_eq!(sent.len(), 2);
        assert_eq!(
            (sent[0].incident_id, sent[0].count, sent[0].follow_up),
            (7, 50, false)
        );
        assert_eq!(sent[1].count, 1);
        // Within the repeat interval: folded into one follow-up at its end.
        let t1 = t0 + Duration::from_secs(20);
        for i in 51..=53 {
            agg.finding(&inc(7, "px-a", i), t1);
        }
        assert!(agg.due(t1 + Duration::from_secs(100)).is_empty());
        assert!(agg.due(t0 + Duration::from_secs(310)).is_empty());
        let again = agg.due(t0 + Duration::from_secs(311));
        assert_eq!(again.len(), 1);
        assert_eq!(
            (again[0].count, again[0].incident_count, again[0].follow_up),
            (3, 53, true)
        );
        // Quiet for a repeat interval: forgotten, the next is a first alert.
        assert!(agg.due(t0 + Duration::from_secs(700)).is_empty());
        assert!(agg.next_due().is_none());
        agg.finding(&inc(9, "px-a", 1), t0 + Duration::from_secs(701));
        let fresh = agg.due(t0 + Duration::from_secs(711));
        assert!(!fresh[0].follow_up);
    }

    #[test]
    fn a_full_table_sends_ungrouped() {
        let cfg = config::AlertConfig {
            max_groups: 1,
            ..Default::default()
        };
        let mut agg = Aggregator::new(&cfg);
        let t = Instant::now();
        assert!(agg.finding(&inc(1, "px-a", 1), t).is_none());
        let direct = agg
            .finding(&inc(2, "px-b", 1), t)
            .expect("no room to group");
        assert_eq!(direct.count, 1);
    }
}
