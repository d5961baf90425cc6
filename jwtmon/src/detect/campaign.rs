//! `login_campaign`: credential stuffing spread over the service. Failed
//! logins over all addresses within `campaign_window` are compared with
//! their own baseline (the average of earlier windows) and a floor; with
//! many usernames from many addresses, a campaign is on. Every
//! participating address is then named, each in its own finding, and so
//! is every address that fails while it lasts, except addresses where as
//! many logins succeed as fail (a NAT's users mistyping). Bounded: the
//! window keeps at most [`MAX_EVENTS`] failures.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::IpAddr,
    time::SystemTime,
};

use serde_json::json;

use super::{
    Detector,
    auth::hash,
    config::AuthConfig,
    fields::{path_matches, username},
};
use crate::{analysis::Reporter, finding::Kind};

/// Failures (and successes) kept in the window at most.
pub const MAX_EVENTS: usize = 20_000;
/// Addresses named per campaign at most.
const MAX_NAMED: usize = 10_000;

/// Campaign state.
pub struct Campaign {
    cfg: AuthConfig,
    failures: VecDeque<(SystemTime, IpAddr, u64)>,
    successes: VecDeque<(SystemTime, IpAddr)>,
    /// Per address and per username, failures in the window (kept with
    /// the queue, so a request costs O(1), not a pass over the window).
    per_addr: HashMap<IpAddr, usize>,
    per_user: HashMap<u64, usize>,
    ok_per_addr: HashMap<IpAddr, usize>,
    period: Option<(SystemTime, u64)>,
    baseline: Option<f64>,
    active_until: Option<SystemTime>,
    named: HashSet<IpAddr>,
}

impl Campaign {
    /// Empty state.
    pub fn new(cfg: &AuthConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            failures: VecDeque::new(),
            successes: VecDeque::new(),
            per_addr: HashMap::new(),
            per_user: HashMap::new(),
            ok_per_addr: HashMap::new(),
            period: None,
            baseline: None,
            active_until: None,
            named: HashSet::new(),
        }
    }

    fn trim(&mut self, t: SystemTime) {
        let horizon = t
            .checked_sub(self.cfg.campaign_window)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        fn drop_one<K: std::hash::Hash + Eq>(m: &mut HashMap<K, usize>, k: K) {
            if let Some(n) = m.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&k);
                }
            }
        }
        while self.failures.front().is_some_and(|e| e.0 <= horizon)
            || self.failures.len() > MAX_EVENTS
        {
            if let Some((_, ip, user)) = self.failures.pop_front() {
                drop_one(&mut self.per_addr, ip);
                drop_one(&mut self.per_user, user);
            }
        }
        while self.successes.front().is_some_and(|e| e.0 <= horizon)
            || self.successes.len() > MAX_EVENTS
        {
            if let Some((_, ip)) = self.successes.pop_front() {
                drop_one(&mut self.ok_per_addr, ip);
            }
        }
    }

    /// Closes baseline periods that ended before `t` (not while a
    /// campaign is on: it would teach the baseline the attack).
    fn roll(&mut self, t: SystemTime, active: bool) {
        let (start, n) = *self.period.get_or_insert((t, 0));
        if t.duration_since(start).unwrap_or_default() < self.cfg.campaign_window {
            return;
        }
        if !active {
            let n = n as f64;
            self.baseline = Some(self.baseline.map_or(n, |b| 0.7 * b + 0.3 * n));
        }
        self.period = Some((t, 0));
    }

    /// An address whose logins succeed at least as often as they fail.
    fn nat_like(&self, ip: IpAddr, failures: usize) -> bool {
        self.ok_per_addr.get(&ip).copied().unwrap_or(0) >= failures
    }
}

impl Detector for Campaign {
    fn name(&self) -> &'static str {
        "campaign"
    }

    fn observe(&mut self, emit: &mut Reporter<'_>) {
        let obs = emit.observation();
        let Some(status) = obs.status else { return };
        if !obs.proven()
            || !self
                .cfg
                .login_paths
                .iter()
                .any(|p| path_matches(p, &obs.request.path))
        {
            return;
        }
        let (ip, t) = (obs.client_ip, obs.time);
        let active = self.active_until.is_some_and(|u| t < u);
        self.roll(t, active);
        self.trim(t);
        if (200..300).contains(&status) {
            self.successes.push_back((t, ip));
            *self.ok_per_addr.entry(ip).or_default() += 1;
            return;
        }
        if !self.cfg.failure_statuses.contains(&status) {
            return;
        }
        let user = username(&obs.request, &self.cfg.username_fields).map_or(0, |u| hash(&u));
        self.failures.push_back((t, ip, user));
        *self.per_addr.entry(ip).or_default() += 1;
        *self.per_user.entry(user).or_default() += 1;
        if let Some((_, n)) = &mut self.period {
            *n += 1;
        }
        let per_addr = &self.per_addr;
        // Failures without a username (0) are no username.
        let users = self.per_user.len() - usize::from(self.per_user.contains_key(&0));
        let n = self.failures.len();
        let baseline = self.baseline.unwrap_or(0.0);
        let detail = |named: usize| {
            json!({ "shape": "service-wide", "failures": n, "usernames": users,
                    "addresses": per_addr.len(), "named": named,
                    "baseline_failures_per_window": (baseline * 10.0).round() / 10.0,
                    "window_s": self.cfg.campaign_window.as_secs() })
        };
        let first = self.failures.front().map_or(t, |e| e.0);
        if active {
            let failures = per_addr.get(&ip).copied().unwrap_or(1);
            if self.named.len() < MAX_NAMED
                && !self.named.contains(&ip)
                && !self.nat_like(ip, failures)
            {
                self.named.insert(ip);
                let d = detail(self.named.len());
                emit.finding_for(ip, Kind::LoginCampaign, first, d);
            }
            return;
        }
        let threshold =
            (self.cfg.campaign_failures as f64).max(self.cfg.campaign_factor * baseline);
        if (n as f64) <= threshold
            || users <= self.cfg.campaign_usernames
            || per_addr.len() <= self.cfg.campaign_addresses
        {
            return;
        }
        self.active_until = Some(t + self.cfg.campaign_window);
        self.named.clear();
        let mut named: Vec<IpAddr> = per_addr
            .iter()
            .filter(|(a, f)| !self.nat_like(**a, **f))
            .map(|(a, _)| *a)
            .take(MAX_NAMED)
            .collect();
        named.sort();
        let d = detail(named.len());
        for a in named {
            self.named.insert(a);
            emit.finding_for(a, Kind::LoginCampaign, first, d.clone());
        }
    }
}
