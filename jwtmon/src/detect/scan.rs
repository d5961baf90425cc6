//! `endpoint_scan`: one address, or the addresses of one network (/24,
//! /48), hitting many distinct endpoints that do not exist (404/405 by
//! default) within a window. Endpoints are templated (`/users/{id}`), so
//! repeated misses on one id-bearing template are lookups, not a scan.

use std::{collections::HashSet, net::IpAddr, num::NonZeroUsize, time::SystemTime};

use crate::bounded::BoundedLru;
use ipnetwork::IpNetwork;
use serde_json::json;

use super::{
    Detector,
    config::ScanConfig,
    window::{Window, network_of},
};
use crate::{analysis::Reporter, endpoint::hash_endpoint, finding::Kind};

/// Participants remembered per network.
const PARTICIPANTS: usize = 64;

/// Scan state.
pub struct Scan {
    cfg: ScanConfig,
    prefixes: (u8, u8),
    paths: Window<IpAddr, u64>,
    net_paths: Window<IpNetwork, u64>,
    net_addrs: Window<IpNetwork, IpAddr>,
    /// Networks whose scan is on: until when, and who was named.
    active: BoundedLru<IpNetwork, (SystemTime, HashSet<IpAddr>)>,
}

impl Scan {
    /// Empty state for at most `keys` addresses; networks at `prefixes`.
    pub fn new(cfg: &ScanConfig, keys: usize, prefixes: (u8, u8)) -> Self {
        Self {
            paths: Window::distinct(keys, cfg.window, cfg.distinct_paths),
            net_paths: Window::distinct(keys, cfg.window, cfg.distinct_paths),
            net_addrs: Window::distinct(keys, cfg.window, PARTICIPANTS),
            active: BoundedLru::new(NonZeroUsize::new(1_000).unwrap_or(NonZeroUsize::MIN)),
            prefixes,
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
        let mut h = std::hash::DefaultHasher::new();
        hash_endpoint(&obs.request.method, &obs.request.path, &mut h);
        let template = std::hash::Hasher::finish(&h);
        let (ip, t) = (obs.client_ip, obs.time);
        if let Some(c) = self.paths.hit(ip, template, t) {
            emit.finding(
                Kind::EndpointScan,
                c.first,
                json!({ "distinct_paths": c.count, "window_s": self.cfg.window.as_secs(),
                        "last_status": status }),
            );
            return;
        }
        if !obs.proven() {
            return;
        }
        let net = network_of(ip, self.prefixes);
        self.net_addrs.hit(net, ip, t);
        // Named: addresses that missed at least two endpoints themselves
        // (a neighbour's one stale link is no part in a scan), and did not
        // cross the threshold on their own.
        let max = self.cfg.distinct_paths;
        let part = |n: usize| (2..=max).contains(&n);
        let own = self.paths.values(&ip, t).len();
        if let Some((until, named)) = self.active.get_mut(&net)
            && t < *until
        {
            // The scan is on: each new participant is named as it shows.
            if part(own) && named.len() < PARTICIPANTS && named.insert(ip) {
                let detail = json!({ "window_s": self.cfg.window.as_secs(), "last_status": status,
                                     "shape": "one network", "network": net.to_string(),
                                     "addresses": named.len() });
                emit.finding(Kind::EndpointScan, t, detail);
            }
            self.net_paths.hit(net, template, t);
            return;
        }
        if let Some(c) = self.net_paths.hit(net, template, t) {
            let mut addrs: Vec<IpAddr> = self
                .net_addrs
                .values(&net, t)
                .into_iter()
                .copied()
                .collect();
            addrs.retain(|a| part(self.paths.values(a, t).len()));
            if addrs.len() < 2 {
                return;
            }
            let detail = json!({ "distinct_paths": c.count, "window_s": self.cfg.window.as_secs(),
                                 "last_status": status, "shape": "one network",
                                 "network": net.to_string(), "addresses": addrs.len() });
            for a in &addrs {
                emit.finding_for(*a, Kind::EndpointScan, c.first, detail.clone());
            }
            self.active
                .put(net, (t + self.cfg.window, addrs.into_iter().collect()));
        }
    }
}
