//! The static checks of one token: everything that depends only on the
//! token and the trusted keys, computed once per distinct token and cached.
//! (Time-dependent checks run per request in the analyser.)

use serde_json::{Value, json};

use super::{
    Issuer,
    keys::Family,
    token::{Token, TokenError},
    verify::{self, SigVerdict},
};
use crate::finding::Kind;

/// A finding without its request context.
#[derive(Clone, Debug, PartialEq)]
pub struct Raw {
    /// Kind (reported at its catalogue severity).
    pub kind: Kind,
    /// Evidence.
    pub detail: Value,
}

fn raw(kind: Kind, detail: Value) -> Raw {
    Raw { kind, detail }
}

/// `jwt_malformed` for a token that does not parse.
pub fn malformed(e: TokenError) -> Raw {
    raw(Kind::JwtMalformed, json!({ "reason": e.to_string() }))
}

/// Why a `kid` is an injection attempt, if it is.
pub fn kid_injection(kid: &str) -> Option<&'static str> {
    let lower = kid.to_ascii_lowercase();
    if kid.len() > 256 {
        Some("absurd length")
    } else if kid.contains("../") || kid.contains("..\\") || lower.contains("%2e%2e") {
        Some("path traversal")
    } else if lower.starts_with("/dev/")
        || lower.starts_with("/proc/")
        || lower.starts_with("/etc/")
    {
        Some("system file path")
    } else if kid.contains('\'')
        || lower.contains(" union ")
        || lower.contains("--")
        || lower.contains(" or ")
    {
        Some("SQL metacharacters")
    } else if kid
        .chars()
        .any(|c| matches!(c, '|' | ';' | '`' | '$' | '&' | '<' | '>' | '\n' | '\0'))
    {
        Some("shell metacharacters")
    } else {
        None
    }
}

fn header_checks(t: &Token<'_>, trusted_urls: &[String], out: &mut Vec<Raw>) {
    if t.header.contains_key("jwk") {
        out.push(raw(
            Kind::JwtEmbeddedJwk,
            json!({ "jwk_kty": t.header["jwk"].get("kty") }),
        ));
    }
    for (field, kind) in [
        ("jku", Kind::JwtUntrustedJku),
        ("x5u", Kind::JwtUntrustedX5u),
    ] {
        if let Some(url) = t.header.get(field) {
            let url = url.as_str().unwrap_or("");
            if !trusted_urls
                .iter()
                .any(|p| !p.is_empty() && url.starts_with(p.as_str()))
            {
                out.push(raw(
                    kind,
                    json!({ "url": url.chars().take(300).collect::<String>() }),
                ));
            }
        }
    }
    if let Some(kid) = t.header.get("kid") {
        let text = kid.as_str().map_or_else(|| kid.to_string(), str::to_string);
        if let Some(why) = kid_injection(&text) {
            out.push(raw(
                Kind::JwtKidInjection,
                json!({ "reason": why, "kid": text.chars().take(120).collect::<String>() }),
            ));
        }
    }
}

/// Signature and algorithm checks against the issuer's keys. With
/// `require_key`, an issuer without a usable key rejects every signature
/// (an explicit trust set); without, it means "no keys configured" and
/// only key-free checks run.
fn signature_checks(
    t: &Token<'_>,
    issuer: Option<&Issuer>,
    require_key: bool,
    verify: bool,
    out: &mut Vec<Raw>,
) -> Option<SigVerdict> {
    if t.alg.eq_ignore_ascii_case("none") {
        out.push(raw(Kind::JwtAlgNone, json!({ "alg": t.alg })));
        return None;
    }
    if t.signature_b64.is_empty() {
        out.push(raw(Kind::JwtNullSignature, json!({ "alg": t.alg })));
        return None;
    }
    if let Some(why) = verify::psychic(&t.alg, &t.signature) {
        out.push(raw(
            Kind::JwtPsychicSignature,
            json!({ "alg": t.alg, "reason": why }),
        ));
        return None;
    }
    let issuer = issuer?;
    let family = Family::of(&t.alg);
    // Confusion first: it is the specific explanation of an HS* token at
    // an issuer that signs with public keys.
    if family == Some(Family::Hmac) && issuer.keys.has_asymmetric() {
        let confirmed = verify && verify::confusion_key(t, &issuer.keys).is_some();
        out.push(raw(
            Kind::JwtAlgConfusion,
            json!({ "alg": t.alg, "confirmed": confirmed }),
        ));
        return None;
    }
    if !issuer.cfg.algorithms.is_empty() && !issuer.cfg.algorithms.contains(&t.alg) {
        out.push(raw(
            Kind::JwtAlgNotAllowed,
            json!({ "alg": t.alg, "allowed": issuer.cfg.algorithms }),
        ));
    }
    if issuer.keys.keys.is_empty() && !require_key {
        return None;
    }
    if family.is_none() {
        out.push(raw(
            Kind::JwtAlgNotAllowed,
            json!({ "alg": t.alg, "reason": "unknown algorithm" }),
        ));
        return None;
    }
    if !verify {
        // Over the verification budget: no claim about the signature.
        return None;
    }
    let verdict = verify::verify(t, &issuer.keys);
    match &verdict {
        SigVerdict::Valid(_) => {}
        SigVerdict::Invalid => out.push(raw(
            Kind::JwtSignatureInvalid,
            json!({ "alg": t.alg, "kid": t.header_str("kid") }),
        )),
        SigVerdict::UnknownKey(kid) => out.push(raw(
            Kind::JwtUnknownKey,
            json!({ "alg": t.alg, "kid": kid }),
        )),
        SigVerdict::NoKey => {
            if !out.iter().any(|r| r.kind == Kind::JwtAlgNotAllowed) {
                out.push(raw(
                    Kind::JwtAlgNotAllowed,
                    json!({ "alg": t.alg, "reason": "no trusted key for this algorithm" }),
                ));
            }
        }
    }
    Some(verdict)
}

fn claim_checks(t: &Token<'_>, issuer: Option<&Issuer>, out: &mut Vec<Raw>) {
    let Some(issuer) = issuer else { return };
    let cfg = &issuer.cfg;
    if !cfg.audiences.is_empty() {
        let aud = t.audiences();
        if !aud.iter().any(|a| cfg.audiences.contains(a)) {
            out.push(raw(
                Kind::JwtAudienceUnexpected,
                json!({ "aud": aud, "expected": cfg.audiences }),
            ));
        }
    }
    let (iat, exp) = (t.claim_time("iat"), t.claim_time("exp"));
    let anomalous = match (iat, exp) {
        (_, None) => Some(json!({ "reason": "no exp claim" })),
        (Some(iat), Some(exp)) => {
            let life = exp.saturating_sub(iat);
            let (min, max) = (
                cfg.min_lifetime.as_secs() as i64,
                cfg.max_lifetime.as_secs() as i64,
            );
            (life < min || life > max)
                .then(|| json!({ "lifetime_s": life, "min_s": min, "max_s": max }))
        }
        (None, Some(_)) => None,
    };
    if let Some(detail) = anomalous {
        out.push(raw(Kind::JwtLifetimeAnomalous, detail));
    }
}

/// The header and signature checks of a compact JWS against `keys` alone
/// (any payload): what the conformance harness grades.
pub fn jws_findings(
    raw_token: &str,
    keys: super::keys::KeySet,
    trusted_urls: &[String],
) -> Vec<Raw> {
    let t = match super::token::parse(raw_token) {
        Ok(t) => t,
        Err(e) => return vec![malformed(e)],
    };
    let issuer = Issuer {
        cfg: Default::default(),
        file_keys: Vec::new(),
        keys,
    };
    let mut out = Vec::new();
    header_checks(&t, trusted_urls, &mut out);
    signature_checks(&t, Some(&issuer), true, true, &mut out);
    out
}

/// Every static check of a parsed token. `issuer` is `None` when issuers
/// are configured and none claims the token (reported here). Without
/// `verify` the signature is not checked against keys (the verification
/// budget is spent); the key-free checks still run.
pub fn run(
    t: &Token<'_>,
    issuer: Option<&Issuer>,
    issuers_configured: bool,
    trusted_urls: &[String],
    verify: bool,
) -> (Vec<Raw>, Option<SigVerdict>) {
    let mut out = Vec::new();
    header_checks(t, trusted_urls, &mut out);
    if issuer.is_none() && issuers_configured {
        out.push(raw(
            Kind::JwtIssuerUnexpected,
            json!({ "iss": t.claim_str("iss") }),
        ));
    }
    let verdict = signature_checks(t, issuer, false, verify, &mut out);
    claim_checks(t, issuer, &mut out);
    (out, verdict)
}
