//! Decide: turns findings into actions by the policy, with the guards that
//! keep an automatic blocker safe — the allowlist always wins, dry-run
//! mode, a global cap on new blocks, repeat-offender TTL growth and
//! optional CIDR aggregation. Enforcement (kernel maps, the revocation
//! list) is the caller's: [`Decider::decide`] returns what to enforce.
//! Time is the finding's time, so decisions replay deterministically.

pub mod config;

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::IpAddr,
    num::NonZeroUsize,
    time::{Duration, SystemTime},
};

use crate::bounded::BoundedLru;
use ipnetwork::IpNetwork;
use serde::Serialize;
use serde_json::json;

use crate::{
    finding::{Finding, Kind, Outcome},
    target::{Target, covers},
};
use config::{Action, DecideConfig, Rule};

/// What the caller must enforce.
#[derive(Clone, Debug, PartialEq)]
pub enum Enforcement {
    /// Insert a block entry.
    Block {
        /// Address or aggregated network.
        target: Target,
        /// Entry TTL.
        ttl: Duration,
        /// The finding kind (entry reason).
        kind: Kind,
        /// Which block of this address this is (1 = first).
        offence: u32,
        /// When the finding was made (time-to-mitigate runs from here).
        found: SystemTime,
    },
    /// Revoke a token by its `token_id`.
    Revoke {
        /// The token's id (hash prefix).
        token_id: String,
    },
}

/// What happened in the last minute, for a per-minute cap.
#[derive(Default)]
struct PerMinute(VecDeque<SystemTime>);

impl PerMinute {
    /// Whether one more at `now` would pass `cap` (0: no cap).
    fn full(&mut self, now: SystemTime, cap: u32) -> bool {
        let minute = now.checked_sub(Duration::from_mins(1)).unwrap_or(now);
        while self.0.front().is_some_and(|t| *t <= minute) {
            self.0.pop_front();
        }
        cap > 0 && self.0.len() >= cap as usize
    }

    fn record(&mut self, now: SystemTime) {
        self.0.push_back(now);
    }
}

/// A block an earlier run decided that is still in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PriorBlock {
    /// Address or network.
    pub target: Target,
    /// Time left.
    pub remaining: Duration,
    /// The TTL it was given, in seconds.
    pub ttl_s: Option<u64>,
}

/// Decision counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DecideStats {
    /// Blocks decided (aggregates included).
    pub blocks: u64,
    /// Network blocks from aggregation.
    pub aggregated: u64,
    /// Blocks not made because the address is allowlisted.
    pub allowlisted: u64,
    /// Blocks not made because of dry-run mode.
    pub dry_run: u64,
    /// Blocks not made because of the per-minute cap.
    pub rate_capped: u64,
    /// Tokens revoked.
    pub revoked: u64,
    /// Blocks and revocations not made because the sender was not proven.
    pub unproven: u64,
}

struct Offender {
    offences: u32,
    last: SystemTime,
}

/// The decision engine.
pub struct Decider {
    cfg: DecideConfig,
    policy: BTreeMap<Kind, Rule>,
    allow: Vec<Target>,
    /// Blocks in force (by this engine), with their end.
    active: HashMap<Target, SystemTime>,
    offenders: BoundedLru<IpAddr, Offender>,
    blocked_recently: PerMinute,
    revoked_recently: PerMinute,
    /// Counters.
    pub stats: DecideStats,
}

impl Decider {
    /// A decider with the built-in policy overlaid by the configured one.
    pub fn new(cfg: &DecideConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            policy: cfg.policy.clone(),
            allow: Vec::new(),
            active: HashMap::new(),
            offenders: BoundedLru::new(
                NonZeroUsize::new(cfg.max_offenders.max(1)).unwrap_or(NonZeroUsize::MIN),
            ),
            blocked_recently: PerMinute::default(),
            revoked_recently: PerMinute::default(),
            stats: DecideStats::default(),
        }
    }

    /// Takes a reloaded `[decide]`: policy, dry run, TTLs and caps change;
    /// the blocks in force and the offence history stay.
    pub fn reconfigure(&mut self, cfg: &DecideConfig) {
        self.cfg = cfg.clone();
        self.policy = cfg.policy.clone();
        self.offenders
            .resize(NonZeroUsize::new(cfg.max_offenders.max(1)).unwrap_or(NonZeroUsize::MIN));
    }

    /// Replaces the allowlist the decisions honour (configuration plus the
    /// kernel's allow map).
    pub fn set_allowlist(&mut self, allow: Vec<Target>) {
        self.allow = allow;
    }

    /// Takes over blocks a previous run decided (still in the pinned maps):
    /// they count as active, and their TTL tells the offence number.
    pub fn adopt(&mut self, blocks: impl IntoIterator<Item = PriorBlock>, now: SystemTime) {
        for b in blocks {
            self.active.insert(b.target, now + b.remaining);
            if let Target::Ip(ip) = b.target {
                let base = self.cfg.block_ttl.as_secs_f64().max(1.0);
                let ratio = b.ttl_s.unwrap_or(0) as f64 / base;
                let n = if self.cfg.ttl_factor > 1.0 && ratio > 1.0 {
                    (ratio.ln() / self.cfg.ttl_factor.ln()).round() as u32 + 1
                } else {
                    1
                };
                self.offenders.put(
                    ip,
                    Offender {
                        offences: n,
                        last: now,
                    },
                );
            }
        }
    }

    /// The rule of a kind: the configured one, else the catalogue's.
    pub fn rule(&self, kind: Kind) -> Rule {
        self.policy
            .get(&kind)
            .cloned()
            .unwrap_or_else(|| Rule::default_for(kind))
    }

    /// Whether `ip` is allowlisted.
    pub fn allowlisted(&self, ip: IpAddr) -> Option<Target> {
        let t = Target::Ip(ip);
        self.allow.iter().copied().find(|a| covers(a, &t))
    }

    /// Decides one finding: sets its `action` (and severity override,
    /// and decision detail) and appends what to enforce.
    pub fn decide(&mut self, f: &mut Finding, out: &mut Vec<Enforcement>) {
        // A sequence rule in block mode asks for a block itself.
        let rule = if f.detail["mode"] == "block" {
            Rule {
                action: Action::BlockIp,
                ttl: None,
                severity: None,
            }
        } else {
            self.rule(f.kind)
        };
        if let Some(s) = rule.severity {
            f.severity = s;
        }
        // Never enforce on traffic whose sender is not proven: recorded
        // with what would have happened, and logged only.
        if !f.proven
            && matches!(
                rule.action,
                Action::BlockIp | Action::RevokeToken | Action::RevokeApiKey
            )
        {
            f.action = Outcome::Log;
            if !f.detail.is_object() {
                f.detail = json!({});
            }
            f.detail["proven"] = json!(false);
            f.detail["decision"] = json!({ "would": rule.action.as_str(),
                "not_enforced": "the sender is not proven: the server did not answer, or a proxy did not name its client" });
            self.stats.unproven += 1;
            return;
        }
        match rule.action {
            Action::Log | Action::Alert => f.action = rule.action.into(),
            Action::RevokeToken | Action::RevokeApiKey => {
                // Token ids and API-key ids share the revocation list
                // (both are hashes of the secret).
                let id = if rule.action == Action::RevokeToken {
                    f.token_id.clone()
                } else {
                    f.api_key_id.clone()
                };
                let Some(id) = id else {
                    f.action = Outcome::Alert;
                    return;
                };
                let what = rule.action.as_str();
                if self.cfg.dry_run {
                    f.action = Outcome::DryRun;
                    f.detail["decision"] = json!({ "would": what });
                    self.stats.dry_run += 1;
                    return;
                }
                let cap = self.cfg.max_revocations_per_minute;
                if self.revoked_recently.full(f.time, cap) {
                    self.rate_capped(f, what, "max_revocations_per_minute", cap);
                    return;
                }
                self.revoked_recently.record(f.time);
                f.action = rule.action.into();
                self.stats.revoked += 1;
                out.push(Enforcement::Revoke { token_id: id });
            }
            Action::BlockIp => self.block(f, rule.ttl.unwrap_or(self.cfg.block_ttl), out),
        }
    }

    fn block(&mut self, f: &mut Finding, base: Duration, out: &mut Vec<Enforcement>) {
        let now = f.time;
        // An IPv4-mapped address is the IPv4 address: aggregating it as
        // IPv6 would form ::/64, which covers every IPv4 key.
        let ip = f.src_ip.to_canonical();
        if let Some(by) = self.allowlisted(ip) {
            f.action = Outcome::Allowlisted;
            f.detail["decision"] = json!({ "would": "block_ip", "allowlisted_by": by.to_string() });
            self.stats.allowlisted += 1;
            return;
        }
        self.active.retain(|_, until| *until > now);
        if let Some(until) = self.active.get(&Target::Ip(ip)) {
            f.action = Outcome::AlreadyBlocked;
            let left = until.duration_since(now).unwrap_or_default().as_secs();
            f.detail["decision"] = json!({ "blocked_for_s": left });
            return;
        }
        let cap = self.cfg.max_blocks_per_minute;
        if self.blocked_recently.full(now, cap) {
            self.rate_capped(f, "block_ip", "max_blocks_per_minute", cap);
            return;
        }
        let memory = self.cfg.offence_memory;
        let offence = match self.offenders.get(&ip) {
            Some(o) if now.duration_since(o.last).unwrap_or_default() <= memory => o.offences + 1,
            _ => 1,
        };
        let ttl = self.ttl(base, offence);
        self.offenders.put(
            ip,
            Offender {
                offences: offence,
                last: now,
            },
        );
        self.active.insert(Target::Ip(ip), now + ttl);
        self.blocked_recently.record(now);
        f.detail["decision"] = json!({ "ttl_s": ttl.as_secs(), "offence": offence });
        if self.cfg.dry_run {
            f.action = Outcome::DryRun;
            f.detail["decision"]["would"] = json!("block_ip");
            self.stats.dry_run += 1;
            return;
        }
        f.action = Outcome::BlockIp;
        self.stats.blocks += 1;
        out.push(Enforcement::Block {
            target: Target::Ip(ip),
            ttl,
            kind: f.kind,
            offence,
            found: now,
        });
        if let Some(net) = self.aggregate(ip, now) {
            f.detail["decision"]["aggregated"] = json!(net.to_string());
            self.stats.blocks += 1;
            self.stats.aggregated += 1;
            out.push(Enforcement::Block {
                target: net,
                ttl,
                kind: f.kind,
                offence,
                found: now,
            });
        }
    }

    /// Records a decision the per-minute cap `key` held back.
    fn rate_capped(&mut self, f: &mut Finding, would: &str, key: &str, cap: u32) {
        f.action = Outcome::RateCapped;
        f.detail["decision"] = json!({ "would": would, key: cap });
        self.stats.rate_capped += 1;
    }

    /// The TTL of the `offence`-th block: base × factor^(offence-1), capped.
    pub fn ttl(&self, base: Duration, offence: u32) -> Duration {
        let grown = base.as_secs_f64()
            * self
                .cfg
                .ttl_factor
                .max(1.0)
                .powi(offence.saturating_sub(1).min(64) as i32);
        Duration::from_secs_f64(grown.min(self.cfg.max_ttl.as_secs_f64()).max(1.0))
    }

    /// The network to block when its blocked addresses exceed the limit
    /// (and no allow entry lies inside it).
    fn aggregate(&mut self, ip: IpAddr, now: SystemTime) -> Option<Target> {
        if !self.cfg.aggregate {
            return None;
        }
        let prefix = match ip {
            IpAddr::V4(_) => self.cfg.aggregate_ipv4_prefix,
            IpAddr::V6(_) => self.cfg.aggregate_ipv6_prefix,
        };
        let n = IpNetwork::new(ip, prefix).ok()?;
        let net = Target::Cidr(IpNetwork::new(n.network(), prefix).ok()?);
        if self.active.contains_key(&net) || self.allow.iter().any(|a| covers(&net, a)) {
            return None;
        }
        let members = self
            .active
            .keys()
            .filter(|t| t.is_exact() && covers(&net, t))
            .count();
        if members <= self.cfg.aggregate_after {
            return None;
        }
        let until = self.active.values().copied().max().unwrap_or(now);
        self.active.insert(net, until);
        Some(net)
    }
}

#[cfg(test)]
mod tests;
