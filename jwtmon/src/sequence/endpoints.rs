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
    path::{Path, PathBuf},
};

use serde_json::Value;

use crate::endpoint::{endpoint, hash_endpoint};

/// An OpenAPI file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    /// Unreadable.
    #[error("OpenAPI file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Neither JSON nor YAML, or no `paths`.
    #[error("OpenAPI file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// One OpenAPI path template, split into segments.
struct Template {
    method: String,
    segments: Vec<Option<String>>,
    name: String,
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Reads the `paths` of an OpenAPI 3 document (JSON or YAML).
fn load_templates(path: &Path) -> Result<Vec<Template>, OpenApiError> {
    let text = std::fs::read_to_string(path).map_err(|source| OpenApiError::Read {
        path: path.into(),
        source,
    })?;
    let invalid = |message: String| OpenApiError::Invalid {
        path: path.into(),
        message,
    };
    let doc: Value = serde_json::from_str(&text)
        .or_else(|_| serde_yaml_ng::from_str(&text))
        .map_err(|e| invalid(format!("neither JSON nor YAML: {e}")))?;
    let paths = doc["paths"]
        .as_object()
        .ok_or_else(|| invalid("no `paths` object".into()))?;
    let mut out = Vec::new();
    for (p, ops) in paths {
        let segments: Vec<Option<String>> = p
            .trim_start_matches('/')
            .split('/')
            .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_string()))
            .collect();
        for m in METHODS.iter().filter(|m| ops.get(**m).is_some()) {
            let method = m.to_ascii_uppercase();
            out.push(Template {
                name: format!("{method} {p}"),
                method,
                segments: segments.clone(),
            });
        }
    }
    // Most literal segments first: `/users/me` before `/users/{id}`.
    out.sort_by_key(|t| std::cmp::Reverse(t.segments.iter().flatten().count()));
    Ok(out)
}

/// Interned endpoint names.
pub struct Endpoints {
    templates: Vec<Template>,
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
            Some(p) => load_templates(p)?,
            None => Vec::new(),
        };
        Ok(Self {
            templates,
            by_hash: HashMap::with_hasher(ahash::RandomState::new()),
            names: vec!["{other}".into()],
            cap: cap.clamp(1, usize::from(u16::MAX) - 1),
            hasher: ahash::RandomState::new(),
        })
    }

    fn template(&self, method: &str, path: &str) -> Option<&Template> {
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.templates.iter().find(|t| {
            t.method == method
                && t.segments.len() == segs.len()
                && t.segments
                    .iter()
                    .zip(&segs)
                    .all(|(lit, s)| lit.as_deref().is_none_or(|l| l == *s))
        })
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
