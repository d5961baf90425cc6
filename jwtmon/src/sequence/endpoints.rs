//! Endpoint names for sequences, interned as small ids: `METHOD
//! /templated/path` from an OpenAPI 3 file's paths when one is configured
//! and matches, else the built-in normalization
//! ([`crate::endpoint::normalize_path`]). Bounded: beyond the cap, new
//! endpoints share the id of `{other}`; and a path the server did not
//! serve (404, 405, 400, no answer) never takes a slot, so a scanner's
//! made-up paths cannot fill the table.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hasher},
    path::Path,
};

pub use crate::openapi::OpenApiError;
use crate::{
    endpoint::{endpoint, hash_endpoint},
    openapi::{Document, Operation},
};

/// Interned endpoint names.
pub struct Endpoints {
    templates: Document,
    by_hash: HashMap<u64, u16, ahash::RandomState>,
    names: Vec<String>,
    cap: usize,
    hasher: ahash::RandomState,
}

/// The id of `{other}` (endpoints beyond the cap).
pub const OTHER: u16 = 0;

impl Endpoints {
    /// At most `cap` names (and `{other}`), optionally from an OpenAPI file.
    pub fn new(cap: usize, openapi: Option<&Path>) -> Result<Self, OpenApiError> {
        let templates = match openapi {
            Some(p) => Document::load(p)?,
            None => Document::default(),
        };
        Ok(Self {
            templates,
            by_hash: HashMap::with_hasher(ahash::RandomState::new()),
            names: vec!["{other}".into()],
            cap: cap.clamp(1, usize::from(u16::MAX) - 1),
            hasher: ahash::RandomState::new(),
        })
    }

    fn template(&self, method: &str, path: &str) -> Option<&Operation> {
        self.templates.find(method, path)
    }

    /// The id of a request's endpoint, naming it on first sight when
    /// `served` (the server answered it as existing, or a rule names it).
    pub fn intern(&mut self, method: &str, path: &str, served: bool) -> u16 {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let mut h = self.hasher.build_hasher();
        let template = self.template(method, path);
        match template {
            Some(t) => h.write(t.name.as_bytes()),
            None => hash_endpoint(method, path, &mut h),
        }
        let key = h.finish();
        if let Some(id) = self.by_hash.get(&key) {
            return *id;
        }
        if self.names.len() > self.cap || (!served && template.is_none()) {
            return OTHER;
        }
        let name = template.map_or_else(|| endpoint(method, path), |t| t.name.clone());
        let id = self.names.len() as u16;
        self.names.push(name);
        self.by_hash.insert(key, id);
        id
    }

    /// The id of a name as reports print it, if seen.
    pub fn id(&self, name: &str) -> Option<u16> {
        self.names.iter().position(|n| n == name).map(|i| i as u16)
    }

    /// The name of `id`.
    pub fn name(&self, id: u16) -> &str {
        self.names
            .get(usize::from(id))
            .map_or("{other}", String::as_str)
    }

    /// Names given out, `{other}` included.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Only `{other}` so far.
    pub fn is_empty(&self) -> bool {
        self.names.len() <= 1
    }
}
