//! `endpoint_scan`: one address hitting many distinct paths that do not
//! exist (404/405 by default) within a window.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    net::IpAddr,
};

use serde_json::json;

use super::{Detector, config::ScanConfig, window::Window};
use crate::{analysis::Reporter, finding::Kind};

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
}

impl Detector for Scan {
    fn name(&self) -> &'static str {
        "scan"
    }

    /// Looks at one answered request.
    fn observe(&mut self, emit: &mut Reporter<'_>) {
        let obs = emit.observation();
        let Some(status) = obs.status else { return };
        if !self.cfg.statuses.contains(&status) {
            return;
        }
        let mut h = DefaultHasher::new();
        obs.request.path.hash(&mut h);
        if let Some(c) = self.paths.hit(obs.client_ip, h.finish(), obs.time) {
            emit.finding(
                Kind::EndpointScan,
                c.first,
                json!({ "distinct_paths": c.count, "window_s": self.cfg.window.as_secs(),
                        "last_status": status }),
            );
        }
    }
}
