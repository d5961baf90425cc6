//! Behaviour detectors: per request, after the JWT analyser, each detector
//! updates its bounded state and may report a finding (catalogue:
//! `docs/findings.md`). Time is the observation's time throughout, so
//! offline runs and tests are deterministic.

pub mod auth;
pub mod config;
pub mod fields;
pub mod inject;
pub mod profile;
pub mod rate;
pub mod scan;
pub mod window;

use std::{net::IpAddr, time::SystemTime};

use serde_json::{Value, json};

use crate::{
    endpoint::endpoint,
    finding::{Finding, Severity},
    observe::Observation,
    parse::hex16,
};
use config::DetectConfig;

/// What the detectors know of the request's token (from the JWT analyser).
#[derive(Clone, Debug, Default)]
pub struct TokenFacts {
    /// The token's `sub`.
    pub subject: Option<String>,
    /// The token verified against a configured key (profiles learn only
    /// from such tokens).
    pub verified: bool,
    /// The token's session claim (`sid`, else `jti`): sequence identity.
    pub session: Option<String>,
}

/// Builds findings in the context of one observation.
pub struct Emit<'a> {
    obs: &'a Observation,
    facts: &'a TokenFacts,
    out: &'a mut Vec<Finding>,
}

impl<'a> Emit<'a> {
    /// Findings about `obs` go to `out`.
    pub fn new(obs: &'a Observation, facts: &'a TokenFacts, out: &'a mut Vec<Finding>) -> Self {
        Self { obs, facts, out }
    }

    /// The observation's time.
    pub fn time(&self) -> SystemTime {
        self.obs.time
    }

    /// Appends a finding; `first` is the first request that counted
    /// towards it (its detail gets `first_seen` and `time_to_detect_ms`).
    pub fn finding(
        &mut self,
        kind: &'static str,
        severity: Severity,
        first: SystemTime,
        detail: Value,
    ) {
        let mut detail = detail;
        if let Value::Object(m) = &mut detail {
            let ttd = self.obs.time.duration_since(first).unwrap_or_default();
            m.insert(
                "first_seen".into(),
                json!(humantime::format_rfc3339_millis(first).to_string()),
            );
            m.insert("time_to_detect_ms".into(), json!(ttd.as_millis() as u64));
        }
        self.out.push(Finding {
            time: self.obs.time,
            kind,
            severity,
            src_ip: self.obs.client_ip,
            subject: self.facts.subject.clone(),
            token_id: self
                .obs
                .request
                .credentials
                .as_ref()
                .filter(|c| c.scheme.eq_ignore_ascii_case("bearer"))
                .map(|c| hex16(c.digest())),
            endpoint: endpoint(&self.obs.request.method, &self.obs.request.path),
            detail,
            action: "log".into(),
        });
    }
}

/// All behaviour detectors.
pub struct Detectors {
    auth: auth::Auth,
    rate_ip: rate::Rate<IpAddr>,
    rate_token: rate::Rate<[u8; 32]>,
    scan: scan::Scan,
    injection: config::InjectionConfig,
    profiles: profile::Profiles,
}

impl Detectors {
    /// Empty state; fails only when the configured GeoIP database cannot
    /// be read.
    pub fn new(cfg: &DetectConfig) -> Result<Self, profile::GeoIpError> {
        let keys = cfg.max_tracked_keys;
        let geoip = match &cfg.profile.geoip_mmdb {
            Some(path) if cfg.profile.enabled => Some(profile::GeoIp::open(path)?),
            _ => None,
        };
        Ok(Self {
            auth: auth::Auth::new(&cfg.auth, keys),
            rate_ip: rate::Rate::new(&cfg.rate, keys),
            rate_token: rate::Rate::new(&cfg.rate, keys),
            scan: scan::Scan::new(&cfg.scan, keys),
            injection: cfg.injection.clone(),
            profiles: profile::Profiles::new(&cfg.profile, geoip),
        })
    }

    /// Looks at one observation; appends findings to `out`.
    pub fn observe(&mut self, obs: &Observation, facts: &TokenFacts, out: &mut Vec<Finding>) {
        let mut emit = Emit::new(obs, facts, out);
        if let Some(s) = self.rate_ip.hit(obs.client_ip, obs.time) {
            emit.finding("rate_spike_ip", Severity::Medium, s.first, s.detail);
        }
        if let Some(c) = &obs.request.credentials
            && c.scheme.eq_ignore_ascii_case("bearer")
            && let Some(s) = self.rate_token.hit(*c.digest(), obs.time)
        {
            emit.finding("rate_spike_token", Severity::Medium, s.first, s.detail);
        }
        self.auth.observe(obs, &mut emit);
        self.scan.observe(obs, &mut emit);
        inject::observe(&self.injection, obs, &mut emit);
        self.profiles.observe(obs, facts, &mut emit);
    }
}

#[cfg(test)]
mod profile_tests;
#[cfg(test)]
pub(crate) mod tests;
