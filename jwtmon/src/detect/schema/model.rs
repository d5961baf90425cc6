//! The learned model: per endpoint, the requests and principals that
//! taught it and, per parameter (`place name`), who used it and the shape
//! of its values; pending widenings (a name or shape the model refused,
//! waiting for enough principals to vote for it). Bounded by endpoint and
//! parameter counts; saved and loaded as one JSON document.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::shape::Shape;

/// The file format's version.
pub const VERSION: u32 = 1;
/// Principals remembered per endpoint.
const ENDPOINT_PRINCIPALS: usize = 32;
/// Pending widenings per parameter.
const MAX_VOTES: usize = 8;

/// A model file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Unreadable or unwritable.
    #[error("schema model {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a model.
    #[error("schema model {path}: not a jwtmon schema model ({message})")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Principals voting for one widening.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Vote {
    /// What would be widened (see `Misfit::vote_key`).
    pub key: u64,
    /// Who asked for it.
    pub principals: Vec<u32>,
}

/// Adds `principal` to `set` (at most `cap`); whether it was new.
pub fn add_principal(set: &mut Vec<u32>, principal: u32, cap: usize) -> bool {
    if set.contains(&principal) || set.len() >= cap {
        return false;
    }
    set.push(principal);
    true
}

/// One parameter.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Param {
    /// Requests that carried it.
    pub count: u64,
    /// Principals that used it (at most `promote_after`).
    pub principals: Vec<u32>,
    /// Requests without it were accepted (by vote): never required.
    #[serde(default)]
    pub optional: bool,
    /// Its values.
    pub shape: Shape,
    /// Pending widenings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub votes: Vec<Vote>,
}

impl Param {
    /// Records `principal`'s vote for `key`; whether it now has `needed`
    /// principals (the vote is then settled).
    pub fn vote(&mut self, key: u64, principal: u32, needed: usize) -> bool {
        let at = if let Some(i) = self.votes.iter().position(|v| v.key == key) {
            i
        } else {
            if self.votes.len() >= MAX_VOTES {
                self.votes.remove(0);
            }
            self.votes.push(Vote {
                key,
                principals: Vec::new(),
            });
            self.votes.len() - 1
        };
        add_principal(&mut self.votes[at].principals, principal, needed);
        if self.votes[at].principals.len() >= needed {
            self.votes.remove(at);
            return true;
        }
        false
    }
}

/// One endpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    /// Requests learnt from.
    pub samples: u64,
    /// Principals that taught it (at most 32).
    pub principals: Vec<u32>,
    /// Too many distinct names to model: never judged.
    #[serde(default)]
    pub unmodellable: bool,
    /// Parameters by `place name`.
    pub params: BTreeMap<String, Param>,
}

impl Endpoint {
    /// Counts a request of `principal`.
    pub fn taught_by(&mut self, principal: u32) {
        self.samples += 1;
        add_principal(&mut self.principals, principal, ENDPOINT_PRINCIPALS);
    }
}

/// The whole model.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Model {
    /// File format version.
    pub version: u32,
    /// Endpoints by name (`METHOD /template`).
    pub endpoints: BTreeMap<String, Endpoint>,
    /// Parameters over all endpoints.
    #[serde(default)]
    pub parameters: usize,
}

impl Default for Model {
    fn default() -> Self {
        Self {
            version: VERSION,
            endpoints: BTreeMap::new(),
            parameters: 0,
        }
    }
}

impl Model {
    /// Reads a model file.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.into(),
            source,
        })?;
        let mut m: Model = serde_json::from_slice(&text).map_err(|e| ModelError::Invalid {
            path: path.into(),
            message: e.to_string(),
        })?;
        if m.version != VERSION {
            return Err(ModelError::Invalid {
                path: path.into(),
                message: format!("version {} (this jwtmon reads {VERSION})", m.version),
            });
        }
        m.parameters = m.endpoints.values().map(|e| e.params.len()).sum();
        Ok(m)
    }

    /// Writes the model (to a temporary file renamed into place, so a
    /// reader never sees half of it).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let io = |source| ModelError::Io {
            path: path.into(),
            source,
        };
        let text = serde_json::to_vec(self).map_err(|e| io(std::io::Error::other(e)))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Parameters held, over all endpoints.
    pub fn parameters(&self) -> usize {
        self.parameters
    }
}
