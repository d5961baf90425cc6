//! Injection payloads in the path, query and cookie values and the sampled
//! body:
//! `injection_sqli` (tokenizer-based, [`sqli`]), `injection_xss`,
//! `injection_path_traversal` and `injection_command` ([`patterns`]). One
//! finding per kind per request.

pub mod patterns;
pub mod sqli;

use serde_json::json;

use super::{
    Detector,
    config::InjectionConfig,
    fields::{Place, values},
};
use crate::{analysis::Reporter, finding::Kind, parse::Request};

/// Characters of a path or query payload quoted in a finding (bodies are
/// never quoted: they may hold passwords).
const SAMPLE: usize = 96;

/// One injection found in a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Finding kind.
    pub kind: Kind,
    /// The shape or pattern that matched.
    pub shape: &'static str,
    /// Where.
    pub place: Place,
    /// The start of the value (path and query only).
    pub sample: Option<String>,
}

/// Short or without any byte an injection needs (letters, digits and
/// `-_` only: no quote, operator, space, dot, slash or parenthesis).
fn plain(v: &str) -> bool {
    v.len() < 2
        || v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-'))
}

/// Every injection in a request, at most one per kind.
pub fn inspect(cfg: &InjectionConfig, req: &Request) -> Vec<Hit> {
    let mut hits: Vec<Hit> = Vec::new();
    for (place, v) in values(req, cfg.max_value_bytes) {
        if plain(&v) {
            continue;
        }
        let lower = v.to_ascii_lowercase();
        let mut found = patterns::detect(&lower);
        if let Some(shape) = sqli::detect(&v) {
            found.push((Kind::InjectionSqli, shape));
        }
        for (kind, shape) in found {
            if hits.iter().any(|h| h.kind == kind) {
                continue;
            }
            hits.push(Hit {
                kind,
                shape,
                place,
                sample: place.quotable().then(|| v.chars().take(SAMPLE).collect()),
            });
        }
    }
    hits
}

/// The injection detector: stateless, a finding per kind per request.
pub struct Injection(pub InjectionConfig);

impl Detector for Injection {
    fn name(&self) -> &'static str {
        "injection"
    }

    /// Inspects one request.
    fn observe(&mut self, emit: &mut Reporter<'_>) {
        let obs = emit.observation();
        for h in inspect(&self.0, &obs.request) {
            let mut detail = json!({ "place": h.place.as_str(), "shape": h.shape });
            if let Some(s) = h.sample {
                detail["sample"] = json!(s);
            }
            emit.finding(h.kind, obs.time, detail);
        }
    }
}
