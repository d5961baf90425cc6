//! `object_enumeration` (BOLA): one principal (a verified subject, else
//! an address) reaching many distinct object ids under one endpoint
//! template that are not its own: answered 403, or answered 2xx while the
//! id was first served to another principal. Misses (404) are lookups and
//! do not count. Bounded: ids' first owners in an LRU, per principal and
//! template a distinct-id window.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    num::NonZeroUsize,
};

use crate::bounded::BoundedLru;
use serde_json::json;

use super::{Detector, config::ObjectsConfig, window::Window};
use crate::{
    analysis::Reporter,
    endpoint::{endpoint, normalize_path},
    finding::Kind,
};

/// Objects state.
pub struct Objects {
    cfg: ObjectsConfig,
    owners: BoundedLru<(u64, u64), u64>,
    foreign: Window<(u64, u64), u64>,
}

fn h(v: impl Hash) -> u64 {
    let mut s = DefaultHasher::new();
    v.hash(&mut s);
    s.finish()
}

/// The raw path segments the template turned into placeholders.
fn ids<'a>(path: &'a str, template: &str) -> Vec<&'a str> {
    path.split('/')
        .zip(template.split('/'))
        .filter(|(_, t)| t.starts_with('{'))
        .map(|(p, _)| p)
        .collect()
}

impl Objects {
    /// Empty state for at most `keys` principals and ids.
    pub fn new(cfg: &ObjectsConfig, keys: usize) -> Self {
        Self {
            cfg: cfg.clone(),
            owners: BoundedLru::new(NonZeroUsize::new(keys.max(1)).unwrap_or(NonZeroUsize::MIN)),
            foreign: Window::distinct(keys, cfg.window, cfg.distinct_ids),
        }
    }
}

impl Detector for Objects {
    fn name(&self) -> &'static str {
        "objects"
    }

    fn observe(&mut self, emit: &mut Reporter<'_>) {
        if !self.cfg.enabled {
            return;
        }
        let obs = emit.observation();
        let Some(status) = obs.status else { return };
        let path = obs.request.path.split(['?', '#']).next().unwrap_or("");
        let template = normalize_path(path);
        let ids = ids(path, &template);
        if ids.is_empty() {
            return;
        }
        let facts = emit.facts();
        let principal = match &facts.subject {
            Some(s) if facts.verified => h(("sub", s)),
            _ => h(("ip", obs.client_ip)),
        };
        let tpl = h((&obs.request.method, &template));
        let id = h(&ids);
        let key = (tpl, id);
        let foreign = match status {
            s if self.cfg.forbidden_statuses.contains(&s) => true,
            200..=299 => {
                if let Some(owner) = self.owners.get(&key) {
                    *owner != principal
                } else {
                    self.owners.put(key, principal);
                    false
                }
            }
            _ => false,
        };
        if !foreign {
            return;
        }
        if let Some(c) = self.foreign.hit((principal, tpl), id, obs.time) {
            let who = if facts.verified && facts.subject.is_some() {
                "subject"
            } else {
                "address"
            };
            emit.finding(
                Kind::ObjectEnumeration,
                c.first,
                json!({ "endpoint": endpoint(&obs.request.method, path), "distinct_ids": c.count,
                        "window_s": self.cfg.window.as_secs(), "principal": who,
                        "last_status": status }),
            );
        }
    }
}
