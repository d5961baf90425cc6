//! The live register: turns decided findings and enforcement events into
//! incident states, in memory and bounded. It does no I/O; every change
//! it returns goes to the writer (and the alerting).

use std::{
    net::IpAddr,
    num::NonZeroUsize,
    time::{Duration, SystemTime},
};

use crate::bounded::BoundedLru;
use serde_json::Value;

use super::{ActionTaken, Incident, Status, config::IncidentConfig};
use crate::{
    finding::{Finding, Outcome},
    privacy::Pseudonymizer,
    target::{Target, covers},
};

struct Live {
    inc: Incident,
    ip: IpAddr,
}

/// When the last block of an incident runs out (`None`: no block).
fn block_end(inc: &Incident) -> Option<SystemTime> {
    inc.actions
        .iter()
        .filter(|a| a.action == "block_ip")
        .filter_map(|a| Some(a.at + Duration::from_secs(a.ttl_s?)))
        .max()
}

/// Live incidents by kind and source.
pub struct Register {
    live: BoundedLru<(String, IpAddr), Live>,
    pseudo: Pseudonymizer,
    merge_window: Duration,
    next_id: i64,
}

/// A short, secret-free evidence line from a finding's detail: its scalar
/// fields as `key=value`, at most 240 characters.
pub fn evidence(detail: &Value) -> String {
    let mut out = String::new();
    if let Value::Object(map) = detail {
        for (k, v) in map {
            if k == "decision" {
                continue;
            }
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Array(a) => format!("[{} items]", a.len()),
                _ => continue,
            };
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(&format!("{k}={v}"));
            if out.len() > 240 {
                let mut cut = 237;
                while !out.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.truncate(cut);
                out.push_str("...");
                break;
            }
        }
    }
    out
}

impl Register {
    /// An empty register whose ids start after `last_id`.
    pub fn new(cfg: &IncidentConfig, pseudo: Pseudonymizer, last_id: i64) -> Self {
        Self {
            live: BoundedLru::new(NonZeroUsize::new(cfg.max_live.max(1)).expect("positive")),
            pseudo,
            merge_window: cfg.merge_window,
            next_id: last_id + 1,
        }
    }

    /// The pseudonymizer in use.
    pub fn pseudonymizer(&self) -> &Pseudonymizer {
        &self.pseudo
    }

    /// Opens or updates the incident of a decided finding (the caller
    /// checks [`Outcome::is_incident`]); returns it and whether it is new.
    pub fn finding(&mut self, f: &Finding, detected: SystemTime) -> (Incident, bool) {
        let key = (f.kind.to_string(), f.src_ip);
        let window = self.merge_window;
        if let Some(live) = self.live.get_mut(&key)
            && live.inc.status != Status::Closed
            && f.time
                .duration_since(live.inc.last_seen)
                .unwrap_or_default()
                <= window
        {
            let inc = &mut live.inc;
            inc.count += 1;
            inc.last_seen = inc.last_seen.max(f.time);
            inc.severity = inc.severity.max(f.severity);
            inc.decision = f.action.to_string();
            if inc.subject.is_none() {
                inc.subject = f.subject.clone();
            }
            if inc.token_id.is_none() {
                inc.token_id = f.token_id.clone();
            }
            record_revocation(inc, f, detected);
            return (inc.clone(), false);
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut inc = Incident {
            id,
            kind: f.kind.to_string(),
            severity: f.severity,
            status: Status::Open,
            first_seen: f.time,
            last_seen: f.time,
            detected_at: detected.max(f.time),
            mitigated_at: None,
            closed_at: None,
            source: self.pseudo.ip(f.src_ip),
            token_id: f.token_id.clone(),
            subject: f.subject.clone(),
            endpoint: f.endpoint.clone(),
            count: 1,
            decision: f.action.to_string(),
            evidence: evidence(&f.detail),
            actions: Vec::new(),
            notes: Vec::new(),
        };
        record_revocation(&mut inc, f, detected);
        self.live.put(
            key,
            Live {
                inc: inc.clone(),
                ip: f.src_ip,
            },
        );
        (inc, true)
    }

    /// A block took effect: the incidents of that kind whose source it
    /// covers are mitigated. Returns the changed incidents.
    pub fn blocked(
        &mut self,
        target: Target,
        kind: &str,
        ttl: Duration,
        at: SystemTime,
    ) -> Vec<Incident> {
        let shown = match target {
            Target::Ip(ip) => self.pseudo.ip(ip),
            net => net.to_string(),
        };
        let mut changed = Vec::new();
        let mut mitigate = |live: &mut Live| {
            let inc = &mut live.inc;
            if inc.status == Status::Closed {
                return;
            }
            inc.actions.push(ActionTaken {
                action: "block_ip".into(),
                target: shown.clone(),
                ttl_s: Some(ttl.as_secs()),
                at,
            });
            inc.mitigated_at.get_or_insert(at);
            inc.status = Status::Mitigated;
            changed.push(inc.clone());
        };
        match target {
            // One address: one lookup.
            Target::Ip(ip) => {
                if let Some(live) = self.live.peek_mut(&(kind.to_string(), ip)) {
                    mitigate(live);
                }
            }
            // A network (aggregation): every covered source of the kind.
            net => {
                for ((k, _), live) in &mut self.live {
                    if k == kind && covers(&net, &Target::Ip(live.ip)) {
                        mitigate(live);
                    }
                }
            }
        }
        changed
    }

    /// Mitigated incidents whose blocks have run out become `expired`.
    pub fn expire(&mut self, now: SystemTime) -> Vec<Incident> {
        let mut changed = Vec::new();
        for (_, live) in &mut self.live {
            if live.inc.status == Status::Mitigated
                && block_end(&live.inc).is_some_and(|until| until <= now)
            {
                live.inc.status = Status::Expired;
                changed.push(live.inc.clone());
            }
        }
        changed
    }

    /// An operator closed an incident: it stops collecting findings.
    pub fn closed(&mut self, id: i64) {
        for (_, live) in &mut self.live {
            if live.inc.id == id {
                live.inc.status = Status::Closed;
            }
        }
    }

    /// Live incidents held.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

/// A revocation takes effect when decided: it mitigates at once.
fn record_revocation(inc: &mut Incident, f: &Finding, detected: SystemTime) {
    if f.action != Outcome::RevokeToken {
        return;
    }
    let Some(id) = &f.token_id else { return };
    if inc
        .actions
        .iter()
        .any(|a| a.action == Outcome::RevokeToken.as_str() && &a.target == id)
    {
        return;
    }
    inc.actions.push(ActionTaken {
        action: "revoke_token".into(),
        target: id.clone(),
        ttl_s: None,
        at: detected,
    });
    inc.mitigated_at.get_or_insert(detected);
    inc.status = Status::Mitigated;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::finding::Severity;

    fn finding(ip: &str, kind: &str, t: u64, action: &str) -> Finding {
        Finding {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(t),
            kind: kind.parse().unwrap(),
            severity: Severity::High,
            src_ip: ip.parse().unwrap(),
            subject: Some("alice".into()),
            token_id: Some("0123456789abcdef".into()),
            api_key_id: None,
            endpoint: "POST /login".into(),
            detail: json!({"failures": 12, "window_s": 60, "decision": {"ttl_s": 600}}),
            action: action.parse().unwrap(),
            proven: true,
            transport: None,
        }
    }

    #[test]
    fn findings_fold_into_incidents_and_blocks_mitigate_then_expire() {
        let cfg = IncidentConfig::default();
        let mut reg = Register::new(&cfg, Pseudonymizer::with_key(b"k"), 41);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let (a, new) = reg.finding(
            &finding("10.0.0.1", "login_bruteforce", 1000, "block_ip"),
            t0,
        );
        assert!(new);
        assert_eq!(a.id, 42);
        assert_eq!(a.evidence, "failures=12, window_s=60");
        assert!(a.source.starts_with("px-"));
        let (b, new) = reg.finding(
            &finding("10.0.0.1", "login_bruteforce", 1010, "already_blocked"),
            t0,
        );
        assert!(!new);
        assert_eq!((b.id, b.count), (42, 2));
        // Another source or kind is another incident.
        assert_eq!(
            reg.finding(&finding("10.0.0.2", "login_bruteforce", 1010, "alert"), t0)
                .0
                .id,
            43
        );
        assert_eq!(
            reg.finding(&finding("10.0.0.1", "injection_sqli", 1010, "alert"), t0)
                .0
                .id,
            44
        );
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1001);
        let changed = reg.blocked(
            "10.0.0.0/24".parse().unwrap(),
            "login_bruteforce",
            Duration::from_mins(10),
            at,
        );
        assert_eq!(changed.len(), 2, "the network covers both sources");
        assert!(
            changed
                .iter()
                .all(|i| i.status == Status::Mitigated && i.mitigated_at == Some(at))
        );
        assert_eq!(changed[0].actions[0].ttl_s, Some(600));
        assert!(reg.expire(at + Duration::from_secs(599)).is_empty());
        assert_eq!(reg.expire(at + Duration::from_mins(10)).len(), 2);
        // Past the merge window, a new incident.
        let late = 1000 + cfg.merge_window.as_secs() + 100;
        assert_eq!(
            reg.finding(&finding("10.0.0.1", "login_bruteforce", late, "alert"), t0)
                .0
                .id,
            45
        );
    }

    #[test]
    fn revocations_mitigate_at_decision_time() {
        let mut reg = Register::new(&IncidentConfig::default(), Pseudonymizer::off(), 0);
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
        let (inc, _) = reg.finding(&finding("10.0.0.1", "jwt_alg_none", 4, "revoke_token"), t);
        assert_eq!(inc.status, Status::Mitigated);
        assert_eq!(inc.mitigated_at, Some(t));
        assert_eq!(inc.source, "10.0.0.1");
        reg.closed(inc.id);
        let (again, new) = reg.finding(&finding("10.0.0.1", "jwt_alg_none", 6, "revoke_token"), t);
        assert!(new, "a closed incident collects nothing more");
        assert_ne!(again.id, inc.id);
    }
}
