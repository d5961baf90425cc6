//! Behaviour detectors: per request, after the JWT analyser, each detector
//! updates its bounded state and may report a finding (catalogue:
//! `crate::finding::Kind`, `docs/findings.md`). Time is the observation's
//! time throughout, so offline runs and tests are deterministic.
//!
//! A detector is one type implementing [`Detector`] and one line in
//! [`DETECTORS`]; its `[detect.*]` section lives in `config.rs`. The part
//! of its work that needs no state may be offered as a [`Prepare`]: the
//! engine then runs it on worker threads ahead of `observe`.

pub mod api_keys;
pub mod auth;
pub mod campaign;
pub mod config;
pub mod decode;
pub mod fields;
pub mod inject;
pub mod multipart;
pub mod objects;
pub mod params;
pub mod profile;
pub mod rate;
pub mod scan;
pub mod schema;
pub mod window;

use crate::{
    analysis::{Reporter, TokenFacts},
    finding::Finding,
    observe::Observation,
};
use config::DetectConfig;
use std::sync::Arc;

/// One behaviour detector.
pub trait Detector: Send {
    /// A short stable name (logs, stats).
    fn name(&self) -> &'static str;

    /// Looks at one observation (`report.observation()`, with what the JWT
    /// analyser learnt in `report.facts()`) and reports what it finds.
    fn observe(&mut self, report: &mut Reporter<'_>);

    /// How many keys (addresses, tokens, subjects) it holds state for.
    fn tracked(&self) -> usize {
        0
    }

    /// Writes learnt state to its file, if it keeps one and it changed
    /// (the schema model); returns the file written.
    fn save(&mut self) -> Result<Option<std::path::PathBuf>, String> {
        Ok(None)
    }

    /// The stateless part of its work, if it has one: run on any thread
    /// before `observe`, which finds the result in `report.prepared()`
    /// (and must do the work itself when there is none).
    fn preparer(&self) -> Option<Arc<dyn Prepare>> {
        None
    }
}

pub use crate::analysis::Prepared;

/// A detector's work that reads only the observation and fixed
/// configuration, so it can run on a worker thread.
pub trait Prepare: Send + Sync {
    /// The work on one observation.
    fn prepare(&self, obs: &Observation) -> Prepared;
}

/// Why the detectors cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// `detect.profile.geoip_mmdb` cannot be read.
    #[error(transparent)]
    GeoIp(#[from] profile::GeoIpError),
    /// `detect.schema`'s model or OpenAPI document.
    #[error(transparent)]
    Schema(#[from] schema::SchemaError),
}

/// Builds a detector from `[detect]`; `None` when it is switched off.
pub type Build = fn(&DetectConfig) -> Result<Option<Box<dyn Detector>>, DetectError>;

#[expect(
    clippy::unnecessary_wraps,
    reason = "the shape of a registry entry, which may fail"
)]
fn on(d: impl Detector + 'static) -> Result<Option<Box<dyn Detector>>, DetectError> {
    Ok(Some(Box::new(d)))
}

/// Every behaviour detector, in the order they see a request.
pub const DETECTORS: &[Build] = &[
    |c| {
        on(rate::PerAddress(rate::Rate::new(
            &c.rate,
            c.max_tracked_keys,
        )))
    },
    |c| on(rate::PerToken(rate::Rate::new(&c.rate, c.max_tracked_keys))),
    |c| {
        on(auth::Auth::new(
            &c.auth,
            c.max_tracked_keys,
            (c.ipv4_prefix, c.ipv6_prefix),
        ))
    },
    |c| {
        on(scan::Scan::new(
            &c.scan,
            c.max_tracked_keys,
            (c.ipv4_prefix, c.ipv6_prefix),
        ))
    },
    |c| on(campaign::Campaign::new(&c.auth)),
    |c| on(objects::Objects::new(&c.objects, c.max_tracked_keys)),
    |c| {
        on(api_keys::ApiKeys::new(
            &c.api_keys,
            &c.rate,
            c.max_tracked_keys,
            (c.ipv4_prefix, c.ipv6_prefix),
        ))
    },
    |c| {
        if c.injection.enabled {
            on(inject::Injection::new(c.injection.clone()))
        } else {
            Ok(None)
        }
    },
    profile::build,
    // Last: it learns only from requests the others found nothing in.
    schema::build,
];

/// All behaviour detectors, built from [`DETECTORS`].
pub struct Detectors {
    /// Each detector, with the index of its preparer's result.
    list: Vec<(Box<dyn Detector>, Option<usize>)>,
    preparers: Vec<Arc<dyn Prepare>>,
}

impl Detectors {
    /// Empty state; fails only when a detector's files cannot be read
    /// (the GeoIP database).
    pub fn new(cfg: &DetectConfig) -> Result<Self, DetectError> {
        let mut list = Vec::with_capacity(DETECTORS.len());
        let mut preparers = Vec::new();
        for build in DETECTORS {
            if let Some(d) = build(cfg)? {
                let slot = d.preparer().map(|p| {
                    preparers.push(p);
                    preparers.len() - 1
                });
                list.push((d, slot));
            }
        }
        Ok(Self { list, preparers })
    }

    /// The stateless parts, in the order `observe` expects their results.
    pub fn preparers(&self) -> &[Arc<dyn Prepare>] {
        &self.preparers
    }

    /// Keys held by the detector called `name`, if it runs.
    pub fn tracked(&self, name: &str) -> Option<usize> {
        self.list
            .iter()
            .find(|(d, _)| d.name() == name)
            .map(|(d, _)| d.tracked())
    }

    /// Saves what the detectors learnt (each that keeps a file, if it
    /// changed); returns the files written, or the first error.
    pub fn save(&mut self) -> Result<Vec<std::path::PathBuf>, String> {
        let mut out = Vec::new();
        for (d, _) in &mut self.list {
            out.extend(d.save()?);
        }
        Ok(out)
    }

    /// Looks at one observation; appends findings to `out`.
    pub fn observe(&mut self, obs: &Observation, facts: &TokenFacts, out: &mut Vec<Finding>) {
        self.observe_prepared(obs, facts, &[], out);
    }

    /// [`Detectors::observe`], with the preparers' results for `obs` in
    /// their order (a missing one: its detector does all of its work).
    pub fn observe_prepared(
        &mut self,
        obs: &Observation,
        facts: &TokenFacts,
        prepared: &[Option<Prepared>],
        out: &mut Vec<Finding>,
    ) {
        let mut report = Reporter::new(obs, facts, out);
        for (d, slot) in &mut self.list {
            report.prepared = slot.and_then(|i| prepared.get(i)?.as_ref());
            d.observe(&mut report);
        }
    }
}

#[cfg(test)]
mod profile_tests;
#[cfg(test)]
mod spread_tests;
#[cfg(test)]
pub(crate) mod tests;
