//! `endpoint_scan`: one address hitting many distinct paths that do not
//! exist (404/405 by default) within a window.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    net::IpAddr,
};

use serde_json::json;

use super::{Emit, config::ScanConfig, window::Window};
use crate::{finding::Severity, observe::Observation};

/// Scan state.
pub struct Scan {
    cfg: ScanConfig,
    paths: Window<IpAddr, u64>,
}

impl Scan {
    /// Empty state for at most `keys` addresses.
    pub fn new(cfg: &ScanConfig, keys: usize) -> Self {
        Self {
            paths: Window::distinct(keys, cfg.window, cfg.distinct_paths),
            cfg: cfg.clone(),
        }
    }

    /// Looks at one answered request.
    pub fn observe(&mut self, obs: &Observation, emit: &mut Emit<'_>) {
        let Some(status) = obs.status else { return };
        if !self.cfg.statuses.contains(&status) {
            return;
        }
        let mut h = DefaultHasher::new();
        obs.request.path.hash(&mut h);
        if let Some(c) = self.paths.hit(obs.client_ip, h.finish(), obs.time) {
            emit.finding(
                "endpoint_scan",
                Severity::Medium,
                c.first,
                json!({ "distinct_paths": c.count, "window_s": self.cfg.window.as_secs(),
                        "last_status": status }),
            );
        }
    }
}
