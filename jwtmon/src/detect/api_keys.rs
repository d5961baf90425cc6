//! Opaque credentials get the token treatment: API keys (`X-API-Key`,
//! `Api-Key`, configured header and query names) and the Basic-auth user.
//! A key is known only by its `api_key_id` (the first 16 hex of its
//! SHA-256, like a `token_id`); the key itself is never kept or printed.
//!
//! Findings: `api_key_shared` (one key from more than `max_networks`
//! networks within `window`: a leaked key), `api_key_rate_spike` (against
//! the key's own baseline, as `[detect.rate]`), `api_key_failures` (a key
//! refused more than `max_failures` times), `api_key_guessing` (one
//! address, or one network, trying more than `guessing_keys` distinct
//! keys that fail). `api_key_revoked` (a revoked key used again) is found
//! by the engine, which holds the revocation list.

use std::net::IpAddr;

use base64::{Engine, engine::general_purpose::STANDARD};
use ipnetwork::IpNetwork;
use serde_json::json;

use super::{
    Detector,
    config::{ApiKeysConfig, RateConfig},
    rate::Rate,
    window::{Window, network_of},
};
pub use crate::analysis::ApiKey;
use crate::{analysis::Reporter, finding::Kind, parse::Request};

fn id_of(secret: &str) -> String {
    crate::parse::http::token_id(secret)
}

/// The opaque credential `req` carries, if any (headers first, then the
/// query, then the Basic-auth user).
pub fn identify(req: &Request, cfg: &ApiKeysConfig) -> Option<ApiKey> {
    if !cfg.enabled {
        return None;
    }
    let header = |source| ApiKey {
        id: String::new(),
        source,
    };
    if let Some(k) = req.api_key.as_ref().filter(|k| !k.0.is_empty()) {
        return Some(ApiKey {
            id: id_of(&k.0),
            ..header("header")
        });
    }
    if let Some((_, v)) = req.other_headers().find(|(n, v)| {
        !v.trim().is_empty() && cfg.headers.iter().any(|h| h.eq_ignore_ascii_case(n))
    }) {
        return Some(ApiKey {
            id: id_of(v.trim()),
            ..header("header")
        });
    }
    if let Some(q) = &req.query
        && let Some((_, v)) = form_urlencoded::parse(q.as_bytes())
            .find(|(n, v)| !v.is_empty() && cfg.query.iter().any(|k| k == n))
    {
        return Some(ApiKey {
            id: id_of(&v),
            ..header("query")
        });
    }
    if cfg.basic_user
        && let Some(c) = &req.credentials
        && c.scheme.eq_ignore_ascii_case("basic")
        && let Ok(raw) = STANDARD.decode(c.expose_secret())
        && let Some(user) = raw.split(|b| *b == b':').next().filter(|u| !u.is_empty())
    {
        return Some(ApiKey {
            id: id_of(&format!("basic:{}", String::from_utf8_lossy(user))),
            ..header("basic")
        });
    }
    None
}

fn key_hash(id: &str) -> u64 {
    u64::from_str_radix(id, 16).unwrap_or(0)
}

/// API-key state.
pub struct ApiKeys {
    cfg: ApiKeysConfig,
    prefixes: (u8, u8),
    networks: Window<u64, IpNetwork>,
    addresses: Window<u64, IpAddr>,
    failures: Window<u64>,
    guesses: Window<IpAddr, u64>,
    net_guesses: Window<IpNetwork, u64>,
    rate: Rate<u64>,
}

impl ApiKeys {
    /// Empty state for at most `keys` keys and addresses.
    pub fn new(cfg: &ApiKeysConfig, rate: &RateConfig, keys: usize, prefixes: (u8, u8)) -> Self {
        let w = cfg.window;
        Self {
            networks: Window::distinct(keys, w, cfg.max_networks),
            addresses: Window::distinct(keys, w, 64),
            failures: Window::counting(keys, w, cfg.max_failures),
            guesses: Window::distinct(keys, w, cfg.guessing_keys),
            net_guesses: Window::distinct(keys, w, cfg.guessing_keys.saturating_mul(2)),
            rate: Rate::new(rate, keys),
            prefixes,
            cfg: cfg.clone(),
        }
    }
}

impl Detector for ApiKeys {
    fn name(&self) -> &'static str {
        "api_keys"
    }

    fn observe(&mut self, emit: &mut Reporter<'_>) {
        let Some(key) = emit.facts().api_key.clone() else {
            return;
        };
        let obs = emit.observation();
        let Some(status) = obs.status else { return };
        let (ip, t) = (obs.client_ip, obs.time);
        let k = key_hash(&key.id);
        let net = network_of(ip, self.prefixes);
        let found = |emit: &mut Reporter<'_>, kind, first, detail| {
            emit.finding(kind, first, detail).api_key_id = Some(key.id.clone());
        };
        if self.cfg.failure_statuses.contains(&status) {
            if let Some(c) = self.failures.hit(k, (), t) {
                found(
                    emit,
                    Kind::ApiKeyFailures,
                    c.first,
                    json!({ "failures": c.count, "window_s": self.cfg.window.as_secs(), "source": key.source }),
                );
            }
            if let Some(c) = self.guesses.hit(ip, k, t) {
                found(
                    emit,
                    Kind::ApiKeyGuessing,
                    c.first,
                    json!({ "distinct_keys": c.count, "window_s": self.cfg.window.as_secs(), "shape": "one address" }),
                );
            } else if let Some(c) = self.net_guesses.hit(net, k, t) {
                found(
                    emit,
                    Kind::ApiKeyGuessing,
                    c.first,
                    json!({ "distinct_keys": c.count, "window_s": self.cfg.window.as_secs(),
                              "shape": "one network", "network": net.to_string() }),
                );
            }
            return;
        }
        if !(200..400).contains(&status) {
            return;
        }
        self.addresses.hit(k, ip, t);
        if let Some(c) = self.networks.hit(k, net, t) {
            let addresses = self.addresses.values(&k, t).len();
            found(
                emit,
                Kind::ApiKeyShared,
                c.first,
                json!({ "networks": c.count, "addresses": addresses,
                          "window_s": self.cfg.window.as_secs(), "source": key.source }),
            );
        }
        if let Some(s) = self.rate.hit(k, t) {
            found(emit, Kind::ApiKeyRateSpike, s.first, s.detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        analysis::TokenFacts,
        detect::{Detectors, config::DetectConfig, tests::obs},
        finding::Finding,
        observe::Observation,
    };

    fn with_key(ip: &str, key: &str, status: u16, t: u64) -> Observation {
        let mut o = obs(ip, "GET", "/api/v1/orders", "", status, t);
        o.request.api_key = Some(crate::parse::http::Hidden(key.into()));
        o
    }

    fn run(d: &mut Detectors, o: &[Observation]) -> Vec<Finding> {
        let cfg = DetectConfig::default();
        let mut out = Vec::new();
        for o in o {
            let facts = TokenFacts {
                api_key: identify(&o.request, &cfg.api_keys),
                ..TokenFacts::default()
            };
            d.observe(o, &facts, &mut out);
        }
        out
    }

    #[test]
    fn identified_from_headers_query_and_basic_never_kept() {
        let cfg = ApiKeysConfig::default();
        let mut r = Request {
            query: Some("apikey=sk_live_123&x=1".into()),
            ..Request::default()
        };
        let q = identify(&r, &cfg).unwrap();
        assert_eq!((q.source, q.id.len()), ("query", 16));
        assert_ne!(q.id, "sk_live_123");
        r.headers = crate::parse::http::Hidden("X-Partner-Key: pk_9\n".into());
        let mut cfg2 = cfg.clone();
        cfg2.headers.push("x-partner-key".into());
        assert_eq!(identify(&r, &cfg2).unwrap().source, "header");
        r.api_key = Some(crate::parse::http::Hidden("sk_live_123".into()));
        assert_eq!(
            identify(&r, &cfg).unwrap(),
            ApiKey {
                id: q.id.clone(),
                source: "header"
            }
        );
        let b = Request {
            credentials: Some(crate::parse::Credentials::new(&format!(
                "Basic {}",
                STANDARD.encode("svc:pw")
            ))),
            ..Request::default()
        };
        assert_eq!(identify(&b, &cfg).unwrap().source, "basic");
        assert_eq!(identify(&Request::default(), &cfg), None);
    }

    #[test]
    fn a_leaked_key_from_many_networks_is_shared() {
        let mut d = Detectors::new(&DetectConfig::default()).unwrap();
        // A service's own fleet: one network, many addresses.
        let fleet: Vec<Observation> = (0..30u64)
            .map(|i| with_key(&format!("10.1.2.{}", i + 1), "sk_fleet", 200, i * 1000))
            .collect();
        assert!(run(&mut d, &fleet).is_empty());
        let leaked: Vec<Observation> = (0..8u64)
            .map(|i| with_key(&format!("203.0.{}.5", 100 + i), "sk_leaked", 200, i * 1000))
            .collect();
        let f = run(&mut d, &leaked);
        let shared: Vec<&Finding> = f.iter().filter(|f| f.kind == Kind::ApiKeyShared).collect();
        assert_eq!(shared.len(), 1, "{f:?}");
        assert_eq!(
            shared[0].api_key_id.as_deref(),
            Some(id_of("sk_leaked").as_str())
        );
        assert!(!format!("{:?}", shared[0]).contains("sk_leaked"));
    }

    #[test]
    fn guessing_and_failures() {
        let mut d = Detectors::new(&DetectConfig::default()).unwrap();
        let guesses: Vec<Observation> = (0..8u64)
            .map(|i| with_key("198.51.100.9", &format!("sk_guess_{i}"), 401, i * 100))
            .collect();
        let f = run(&mut d, &guesses);
        assert_eq!(
            f.iter().filter(|f| f.kind == Kind::ApiKeyGuessing).count(),
            1,
            "{f:?}"
        );
        let refused: Vec<Observation> = (0..25u64)
            .map(|i| with_key("198.51.100.10", "sk_old", 403, i * 100))
            .collect();
        let f = run(&mut d, &refused);
        assert_eq!(
            f.iter().filter(|f| f.kind == Kind::ApiKeyFailures).count(),
            1,
            "{f:?}"
        );
    }
}
