//! Injection payloads in the path, query and cookie values and the sampled
//! body:
//! `injection_sqli` (tokenizer-based, [`sqli`]), `injection_xss`,
//! `injection_path_traversal` and `injection_command` ([`patterns`]). One
//! finding per kind per request.

pub mod patterns;
pub mod sqli;

use serde_json::json;

use super::{
    Emit,
    config::InjectionConfig,
    fields::{Place, values},
};
use crate::{finding::Severity, observe::Observation, parse::Request};

/// Characters of a path or query payload quoted in a finding (bodies are
/// never quoted: they may hold passwords).
const SAMPLE: usize = 96;

fn severity(kind: &str) -> Severity {
    match kind {
        "injection_xss" => Severity::Medium,
        _ => Severity::High,
    }
}

/// One injection found in a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Finding kind.
    pub kind: &'static str,
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
            found.push(("injection_sqli", shape));
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

/// Inspects one request; a finding per kind found.
pub fn observe(cfg: &InjectionConfig, obs: &Observation, emit: &mut Emit<'_>) {
    if !cfg.enabled {
        return;
    }
    for h in inspect(cfg, &obs.request) {
        let mut detail = json!({ "place": h.place.as_str(), "shape": h.shape });
        if let Some(s) = h.sample {
            detail["sample"] = json!(s);
        }
        emit.finding(h.kind, severity(h.kind), obs.time, detail);
    }
}
