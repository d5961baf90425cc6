//! The positive security model of the API (schema validation): per
//! endpoint, the parameters it takes and the shape of their values,
//! learnt from traffic ([`model`], [`shape`]) or declared by an OpenAPI
//! document ([`declared`]). A request is judged against both:
//! `schema_unknown_parameter`, `schema_type_mismatch`,
//! `schema_value_anomalous`, `schema_missing_required`, and
//! `schema_undeclared_endpoint` (an OpenAPI document is configured and the
//! server answered a call it does not declare).
//!
//! Safeguards: only 2xx answers that raised no other finding teach; an
//! endpoint is silent until `warmup_requests` from `min_principals`
//! principals taught it; a new name or a wider shape is accepted only
//! once `promote_after` principals used it; an endpoint with too many
//! names is unmodellable; everything is bounded. Evidence names the
//! parameter and why, never the value.

pub mod declared;
pub mod model;
pub mod shape;

use std::{
    net::IpAddr,
    num::NonZeroUsize,
    path::PathBuf,
    time::{Duration, SystemTime},
};

use crate::bounded::BoundedLru;
use serde_json::json;
use tracing::warn;

use super::{
    Detector,
    config::SchemaConfig,
    fields::Place,
    params::{Param, body_whole, params},
};
use crate::{
    analysis::Reporter,
    endpoint::endpoint,
    finding::{Kind, Severity},
    openapi::{Document, OpenApiError},
};
use model::{Endpoint, Model, ModelError};
use shape::{Misfit, Value};

/// FNV-1a: a stable hash for what the model file keeps (value and
/// principal hashes must mean the same after a restart or an upgrade).
pub fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Why the schema detector cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// `detect.schema.learned` (or the saved model).
    #[error("detect.schema.learned: {0}")]
    Model(#[from] ModelError),
    /// `detect.schema.openapi`.
    #[error("detect.schema.openapi: {0}")]
    OpenApi(#[from] OpenApiError),
}

/// One thing wrong with a request.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// The finding kind.
    pub kind: Kind,
    /// `query`, `body`, `cookie`, `header`, `path`.
    pub place: &'static str,
    /// The parameter.
    pub parameter: String,
    /// Why.
    pub reason: String,
    /// Against the OpenAPI document (else the learned model).
    pub declared: bool,
}

/// What is reported per (address, endpoint, kind) at most once a minute.
const QUIET: Duration = Duration::from_mins(1);
/// An undeclared endpoint is reported once an hour.
const UNDECLARED_QUIET: Duration = Duration::from_hours(1);
/// Parameters named per finding at most.
const NAMED: usize = 8;

/// The schema detector.
pub struct Schema {
    cfg: SchemaConfig,
    model: Model,
    openapi: Document,
    quiet: BoundedLru<(IpAddr, u64, Kind), SystemTime>,
    undeclared: BoundedLru<u64, SystemTime>,
    dirty: bool,
}

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n.max(1)).unwrap_or(NonZeroUsize::MIN)
}

/// The key of a parameter in the model.
fn key(p: &Param<'_>) -> String {
    format!("{} {}", p.place.as_str(), p.name)
}

fn value<'a>(p: &'a Param<'_>) -> Value<'a> {
    match p.structural {
        Some(k) => Value::structural(k),
        None => Value::text(&p.text),
    }
}

/// Whether an unknown name here is evidence: query and body names are
/// the API's; cookies and `X-*` headers vary with clients and proxies.
fn names_matter(place: Place) -> bool {
    matches!(place, Place::Query | Place::Body)
}

impl Schema {
    /// The model from `cfg.learned`, else the saved one at `cfg.save_to`
    /// (if any), else empty; the OpenAPI document, if configured.
    pub fn new(cfg: &SchemaConfig, keys: usize) -> Result<Self, SchemaError> {
        let model = match (&cfg.learned, &cfg.save_to) {
            (Some(p), _) => Model::load(p)?,
            (None, Some(p)) if p.exists() => Model::load(p)?,
            _ => Model::default(),
        };
        let openapi = match &cfg.openapi {
            Some(p) => Document::load(p)?,
            None => Document::default(),
        };
        Ok(Self {
            cfg: cfg.clone(),
            model,
            openapi,
            quiet: BoundedLru::new(cap(keys)),
            undeclared: BoundedLru::new(cap(1_000)),
            dirty: false,
        })
    }

    /// The model as learnt so far.
    pub fn model(&self) -> &Model {
        &self.model
    }

    fn warmed(&self, ep: &Endpoint) -> bool {
        !ep.unmodellable
            && ep.samples >= self.cfg.warmup_requests
            && ep.principals.len() >= self.cfg.min_principals
    }

    /// Judges `ps` against the learned endpoint; returns the violations
    /// and, per parameter, its misfit (for votes).
    fn judge_learned(
        &self,
        ep: &Endpoint,
        ps: &[Param<'_>],
        body_checked: bool,
        out: &mut Vec<Violation>,
    ) -> Vec<Option<Misfit>> {
        let mut misfits = vec![None; ps.len()];
        for (i, p) in ps.iter().enumerate() {
            let known = ep.params.get(&key(p));
            match known {
                Some(m) if m.principals.len() >= self.cfg.promote_after => {
                    let v = value(p);
                    if let Some(misfit) =
                        m.shape
                            .judge(&v, hash(v.text), self.cfg.min_parameter_samples)
                    {
                        out.push(Violation {
                            kind: if misfit.is_type() {
                                Kind::SchemaTypeMismatch
                            } else {
                                Kind::SchemaValueAnomalous
                            },
                            place: p.place.as_str(),
                            parameter: p.name.to_string(),
                            reason: misfit.reason(),
                            declared: false,
                        });
                        misfits[i] = Some(misfit);
                    }
                }
                _ if names_matter(p.place) => {
                    out.push(Violation {
                        kind: Kind::SchemaUnknownParameter,
                        place: p.place.as_str(),
                        parameter: p.name.to_string(),
                        reason: match known {
                            Some(m) => format!(
                                "used by {} principal(s) before; {} needed",
                                m.principals.len(),
                                self.cfg.promote_after
                            ),
                            None => "never seen on this endpoint".into(),
                        },
                        declared: false,
                    });
                }
                _ => {}
            }
        }
        for (k, m) in &ep.params {
            let Some((place, name)) = k.split_once(' ') else {
                continue;
            };
            let required = !m.optional
                && m.count >= ep.samples
                && m.principals.len() >= self.cfg.promote_after
                && ((place == "query") || (place == "body" && body_checked));
            if required
                && !name.contains('.')
                && !name.contains("[]")
                && !ps
                    .iter()
                    .any(|p| p.place.as_str() == place && p.name == name)
            {
                out.push(Violation {
                    kind: Kind::SchemaMissingRequired,
                    place: if place == "query" { "query" } else { "body" },
                    parameter: name.to_string(),
                    reason: format!("present in all {} requests learnt", ep.samples),
                    declared: false,
                });
            }
        }
        misfits
    }

    /// Learns from one request (answered 2xx, no other finding).
    fn learn(
        &mut self,
        name: &str,
        ps: &[Param<'_>],
        misfits: &[Option<Misfit>],
        missing: &[String],
        principal: u32,
        judged: bool,
    ) {
        let cfg = &self.cfg;
        if !self.model.endpoints.contains_key(name)
            && self.model.endpoints.len() >= cfg.max_endpoints
        {
            return;
        }
        let total = &mut self.model.parameters;
        if !self.model.endpoints.contains_key(name) {
            self.model
                .endpoints
                .insert(name.to_string(), Endpoint::default());
        }
        let Some(ep) = self.model.endpoints.get_mut(name) else {
            return;
        };
        if ep.unmodellable {
            ep.taught_by(principal);
            return;
        }
        let mut clean = misfits.iter().all(Option::is_none) && missing.is_empty();
        for (p, misfit) in ps.iter().zip(misfits) {
            let k = key(p);
            if !ep.params.contains_key(&k) {
                if ep.params.len() >= cfg.max_parameters_per_endpoint {
                    *total -= ep.params.len();
                    ep.params.clear();
                    ep.unmodellable = true;
                    warn!(
                        endpoint = name,
                        names = cfg.max_parameters_per_endpoint,
                        "schema: endpoint has too many parameter names; marked unmodellable"
                    );
                    return;
                }
                if *total >= cfg.max_parameters {
                    continue;
                }
                *total += 1;
            }
            if !ep.params.contains_key(&k) {
                ep.params.insert(k.clone(), model::Param::default());
            }
            let Some(m) = ep.params.get_mut(&k) else {
                continue;
            };
            let promoted = m.principals.len() >= cfg.promote_after;
            model::add_principal(&mut m.principals, principal, cfg.promote_after);
            if judged && !promoted && names_matter(p.place) {
                clean = false;
            }
            let v = value(p);
            let vh = hash(v.text);
            match misfit {
                None => m.shape.learn(&v, principal, vh),
                Some(misfit) => {
                    if m.vote(misfit.vote_key(&v), principal, cfg.promote_after) {
                        m.shape.widen(misfit, &v);
                        m.shape.learn(&v, principal, vh);
                    }
                }
            }
            m.count += 1;
        }
        for name in missing {
            for place in ["query", "body"] {
                if let Some(m) = ep.params.get_mut(&format!("{place} {name}"))
                    && m.vote(u64::MAX, principal, cfg.promote_after)
                {
                    m.optional = true;
                }
            }
        }
        if clean || !judged {
            ep.taught_by(principal);
        }
        self.dirty = true;
    }

    fn report(&mut self, emit: &mut Reporter<'_>, endpoint_hash: u64, violations: &[Violation]) {
        let obs = emit.observation();
        for kind in [
            Kind::SchemaUnknownParameter,
            Kind::SchemaTypeMismatch,
            Kind::SchemaValueAnomalous,
            Kind::SchemaMissingRequired,
        ] {
            let of_kind: Vec<&Violation> = violations.iter().filter(|v| v.kind == kind).collect();
            let Some(first) = of_kind.iter().find(|v| v.declared).or(of_kind.first()) else {
                continue;
            };
            let q = (obs.client_ip, endpoint_hash, kind);
            if self.quiet.get(&q).is_some_and(|until| obs.time < *until) {
                continue;
            }
            self.quiet.put(q, obs.time + QUIET);
            let others: Vec<&str> = of_kind
                .iter()
                .filter(|v| !std::ptr::eq(**v, *first))
                .take(NAMED)
                .map(|v| v.parameter.as_str())
                .collect();
            let f = emit.finding(
                kind,
                obs.time,
                json!({
                    "parameter": first.parameter,
                    "place": first.place,
                    "reason": first.reason,
                    "model": if first.declared { "openapi" } else { "learned" },
                    "other_parameters": others,
                }),
            );
            if first.declared {
                f.severity = match f.severity {
                    Severity::Low => Severity::Medium,
                    _ => Severity::High,
                };
            }
        }
    }
}

/// Who taught or sent a request: a verified subject, an API key, else the
/// address (hashed, shortened).
fn principal(emit: &Reporter<'_>) -> u32 {
    let obs = emit.observation();
    let facts = emit.facts();
    let h = match (&facts.subject, &obs.request.api_key) {
        (Some(s), _) if facts.verified => hash(&format!("sub:{s}")),
        (_, Some(k)) => hash(&format!("key:{}", k.0)),
        _ => hash(&obs.client_ip.to_string()),
    };
    (h ^ (h >> 32)) as u32
}

impl Detector for Schema {
    fn name(&self) -> &'static str {
        "schema"
    }

    fn observe(&mut self, emit: &mut Reporter<'_>) {
        let obs = emit.observation();
        let Some(status) = obs.status else { return };
        let req = &obs.request;
        let op = self.openapi.find(&req.method, &req.path);
        let name = match op {
            Some(op) => op.name.clone(),
            None => endpoint(&req.method, &req.path),
        };
        let endpoint_hash = hash(&name);
        // Nothing to judge and nothing to learn: no work.
        let teach = self.cfg.learn && (200..300).contains(&status) && !emit.raised_elsewhere();
        let known = self.model.endpoints.get(&name);
        if op.is_none()
            && self.openapi.is_empty()
            && (known.is_some_and(|e| e.unmodellable)
                || (!teach && known.is_none_or(|e| !self.warmed(e))))
        {
            return;
        }
        let ps = params(req);
        let body_checked = body_whole(req) && !req.body.is_empty();
        let mut violations = Vec::new();
        if let Some(op) = op {
            declared::check(op, req, &ps, body_checked, &mut violations);
        } else if !self.openapi.is_empty() && status < 400 {
            let fresh = self
                .undeclared
                .get(&endpoint_hash)
                .is_none_or(|until| obs.time >= *until);
            if fresh {
                self.undeclared
                    .put(endpoint_hash, obs.time + UNDECLARED_QUIET);
                emit.finding(
                    Kind::SchemaUndeclaredEndpoint,
                    obs.time,
                    json!({ "status": status, "reason": "the OpenAPI document declares no such operation" }),
                );
            }
        }
        let who = principal(emit);
        let (misfits, judged) = match self.model.endpoints.get(&name) {
            Some(ep) if self.warmed(ep) => (
                self.judge_learned(ep, &ps, body_checked, &mut violations),
                true,
            ),
            _ => (vec![None; ps.len()], false),
        };
        // Names declared by the document are known whatever was learnt.
        violations.retain(|v| {
            v.declared
                || v.kind != Kind::SchemaUnknownParameter
                || op.is_none_or(|op| {
                    !op.inputs
                        .iter()
                        .any(|d| d.place == v.place && d.name == v.parameter)
                })
        });
        self.report(emit, endpoint_hash, &violations);
        if teach {
            let missing: Vec<String> = violations
                .iter()
                .filter(|v| v.kind == Kind::SchemaMissingRequired && !v.declared)
                .map(|v| v.parameter.clone())
                .collect();
            self.learn(&name, &ps, &misfits, &missing, who, judged);
        }
    }

    fn tracked(&self) -> usize {
        self.model.parameters()
    }

    fn save(&mut self) -> Result<Option<PathBuf>, String> {
        let Some(path) = self.cfg.save_to.clone() else {
            return Ok(None);
        };
        if !self.dirty {
            return Ok(None);
        }
        self.model.save(&path).map_err(|e| e.to_string())?;
        self.dirty = false;
        Ok(Some(path))
    }
}

/// `[detect.schema]` as a registry entry.
pub fn build(
    c: &super::config::DetectConfig,
) -> Result<Option<Box<dyn Detector>>, super::DetectError> {
    if !c.schema.enabled {
        return Ok(None);
    }
    Ok(Some(Box::new(Schema::new(&c.schema, c.max_tracked_keys)?)))
}

#[cfg(test)]
mod tests;
