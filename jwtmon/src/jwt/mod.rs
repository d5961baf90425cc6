//! JWT analysis: every bearer JWT in an observation is checked for the
//! known token attacks and anomalies (catalogue: `docs/findings.md`).
//!
//! Per distinct token (keyed by SHA-256) the static verdict (structure,
//! header, signature, issuer/audience/lifetime) is computed once and cached
//! until the token's `exp`; a repeat costs a hash and a lookup. Per request
//! come the time checks (judged at the observation's time), revocation and
//! the behaviour windows. Dictionary tries run on their own thread.

pub mod behaviour;
pub mod budget;
pub mod checks;
pub mod config;
pub mod cracker;
pub mod jwks;
pub mod keys;
pub mod pending;
pub mod revocation;
pub mod token;
pub mod verify;

use std::{
    borrow::Cow,
    num::NonZeroUsize,
    sync::{Arc, mpsc},
    time::{SystemTime, UNIX_EPOCH},
};

use crate::bounded::BoundedLru;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    analysis::TokenFacts,
    endpoint::endpoint,
    finding::{Finding, Kind},
    observe::Observation,
    parse::Credentials,
};
use checks::Raw;
use config::{IssuerConfig, JwtConfig};
use keys::{KeyError, KeySet};
use revocation::{RevocationError, RevocationList};
use verify::SigVerdict;

/// An issuer: its expectations and keys.
#[derive(Clone, Debug)]
pub struct Issuer {
    /// Configuration.
    pub cfg: IssuerConfig,
    /// Keys in use: the configured files' plus the last fetched JWKS.
    pub keys: KeySet,
    /// The keys loaded from the configured files.
    file_keys: Vec<keys::Key>,
}

/// Errors building the analyser from configuration.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// A key could not be loaded.
    #[error("jwt.issuers[{0}]: {1}")]
    Key(usize, KeyError),
    /// The revocation list could not be loaded.
    #[error("jwt.revocation_file: {0}")]
    Revocation(RevocationError),
}

/// The cached, per-token part of the analysis.
#[derive(Debug)]
struct Verdict {
    findings: Vec<Raw>,
    sub: Option<String>,
    jti: Option<String>,
    sid: Option<String>,
    kid: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    nbf: Option<i64>,
    leeway: i64,
    privileges: std::collections::BTreeSet<String>,
    /// The issuer the token was judged against.
    issuer: Option<usize>,
    /// A configured key verified the signature.
    verified: bool,
}

/// Counters of the analyser.
#[derive(Clone, Debug, Default, Serialize)]
pub struct JwtStats {
    /// Requests carrying a bearer JWT.
    pub tokens: u64,
    /// Verdicts served from the cache.
    pub cache_hits: u64,
    /// Verdicts computed.
    pub cache_misses: u64,
    /// Bearer credentials that are not JWTs.
    pub opaque: u64,
    /// New tokens whose signature was not verified: the verification
    /// budget was spent (key-free checks only, not cached).
    pub verify_skipped: u64,
}

/// Kinds that a JWKS refetch can change.
const SIGNATURE_KINDS: [Kind; 2] = [Kind::JwtUnknownKey, Kind::JwtSignatureInvalid];

/// The analyser.
pub struct JwtAnalyzer {
    cfg: JwtConfig,
    issuers: Vec<Issuer>,
    cache: BoundedLru<[u8; 32], Arc<Verdict>>,
    behaviour: behaviour::Behaviour,
    /// Revocation list (reload with [`JwtAnalyzer::maintain`]).
    pub revocations: RevocationList,
    cracker: cracker::Cracker,
    cracked: mpsc::Receiver<Finding>,
    /// Counters.
    pub stats: JwtStats,
    /// Issuers whose JWKS should be refetched (an unknown kid was seen).
    refresh_wanted: Vec<usize>,
    /// Tokens with an unknown kid waiting for that refetch.
    pending: pending::Pending,
    /// Whether unknown kids wait for a refetch (live runs) or are
    /// reported at once (offline runs, which fetch before they start).
    defer_unknown: bool,
    /// Time per second that new tokens' signatures may take.
    budget: budget::VerifyBudget,
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl JwtAnalyzer {
    /// Builds the analyser: loads key files and the revocation list and
    /// starts the dictionary worker.
    pub fn new(cfg: &JwtConfig) -> Result<Self, JwtError> {
        let mut issuers = Vec::new();
        for (i, ic) in cfg.issuers.iter().enumerate() {
            let keys = KeySet::load(ic).map_err(|e| JwtError::Key(i, e))?;
            issuers.push(Issuer {
                cfg: ic.clone(),
                file_keys: keys.keys.clone(),
                keys,
            });
        }
        let revocations = match &cfg.revocation_file {
            Some(p) => RevocationList::load(p).map_err(JwtError::Revocation)?,
            None => RevocationList::default(),
        };
        let (tx, rx) = mpsc::channel();
        let cap = NonZeroUsize::new(cfg.verdict_cache_entries.max(1)).unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            issuers,
            cache: BoundedLru::new(cap),
            behaviour: behaviour::Behaviour::new(
                cfg.max_tracked_tokens,
                cfg.replay_window,
                cfg.replay_max_ips,
                cfg.escalation_window,
            ),
            revocations,
            cracker: cracker::Cracker::start(
                cfg.weak_secrets_file.clone(),
                cfg.weak_secret_queue,
                cfg.weak_secret_budget,
                tx,
            ),
            cracked: rx,
            stats: JwtStats::default(),
            refresh_wanted: Vec::new(),
            pending: pending::Pending::default(),
            defer_unknown: false,
            budget: budget::VerifyBudget::new(cfg.verify_budget),
            cfg: cfg.clone(),
        })
    }

    /// Makes tokens with an unknown `kid` wait for the JWKS refetch they
    /// trigger before `jwt_unknown_key` is reported (the live pipeline).
    pub fn defer_unknown_keys(&mut self, on: bool) {
        self.defer_unknown = on;
    }

    /// Takes the result of a JWKS fetch for issuer `i`: new keys replace
    /// the fetched ones (file keys stay) and cached verdicts are dropped;
    /// tokens waiting for this issuer are judged now, into `out`.
    pub fn set_fetched_keys(
        &mut self,
        i: usize,
        fetched: Result<Vec<keys::Key>, String>,
        out: &mut Vec<Finding>,
    ) {
        let Some(issuer) = self.issuers.get_mut(i) else {
            return;
        };
        let outcome = match fetched {
            Ok(fetched) => {
                issuer.keys.keys = issuer.file_keys.iter().cloned().chain(fetched).collect();
                self.cache.clear();
                "refetched".to_string()
            }
            Err(e) => format!("refetch failed: {e}"),
        };
        let waiting = self.pending.take_issuer(i);
        self.judge_waiting(waiting, &outcome, out);
    }

    /// Judges tokens that waited longer than [`pending::TIMEOUT`] for a
    /// refetch against the keys at hand.
    pub fn expire_pending(&mut self, out: &mut Vec<Finding>) {
        if self.pending.is_empty() {
            return;
        }
        let waiting = self.pending.take_expired(std::time::Instant::now());
        self.judge_waiting(waiting, "refetch timed out", out);
    }

    /// Tokens waiting for a refetch.
    pub fn pending_tokens(&self) -> usize {
        self.pending.len()
    }

    fn judge_waiting(
        &mut self,
        waiting: Vec<([u8; 32], pending::Waiting)>,
        outcome: &str,
        out: &mut Vec<Finding>,
    ) {
        for (digest, w) in waiting {
            let Some(first) = w.requests.first() else {
                continue;
            };
            let v = Arc::new(self.compute(&w.token, first, false, true));
            self.cache.put(digest, v.clone());
            let last = w.requests.len() - 1;
            for r in v
                .findings
                .iter()
                .filter(|r| SIGNATURE_KINDS.contains(&r.kind))
            {
                for (n, ctx) in w.requests.iter().enumerate() {
                    let mut f = ctx.clone();
                    f.kind = r.kind;
                    f.severity = r.kind.severity();
                    f.detail = r.detail.clone();
                    f.detail["jwks"] = json!(outcome);
                    if n == last && w.more > 0 {
                        f.detail["requests_not_listed"] = json!(w.more);
                    }
                    out.push(f);
                }
            }
        }
    }

    /// Issuers whose JWKS URL should be fetched again (unknown kids seen).
    pub fn take_refresh_requests(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.refresh_wanted)
    }

    /// `(issuer index, url, refresh interval, least gap)` of every JWKS URL.
    pub fn jwks_urls(&self) -> Vec<(usize, String, std::time::Duration, std::time::Duration)> {
        self.issuers
            .iter()
            .enumerate()
            .filter_map(|(i, is)| {
                let url = is.cfg.jwks_url.clone()?;
                Some((i, url, is.cfg.jwks_refresh, is.cfg.jwks_min_refetch))
            })
            .collect()
    }

    /// Periodic upkeep: reloads a changed revocation list.
    pub fn maintain(&mut self) -> Result<bool, RevocationError> {
        self.revocations.reload_if_changed()
    }

    /// Weak-secret findings that completed since the last call.
    pub fn poll(&mut self, out: &mut Vec<Finding>) {
        out.extend(self.cracked.try_iter());
    }

    /// Waits for the dictionary worker to finish its queue (offline runs).
    pub fn finish(&mut self, out: &mut Vec<Finding>) {
        self.cracker.finish();
        self.poll(out);
    }

    /// Dictionary worker counters.
    pub fn crack_stats(&self) -> &cracker::CrackStats {
        &self.cracker.stats
    }

    fn issuer_for(&self, iss: Option<&str>) -> Option<&Issuer> {
        let iss = iss.unwrap_or("");
        self.issuers
            .iter()
            .find(|i| !i.cfg.issuer.is_empty() && i.cfg.issuer == iss)
            .or_else(|| self.issuers.iter().find(|i| i.cfg.issuer.is_empty()))
    }

    fn compute(&mut self, raw_token: &str, ctx: &Finding, crack: bool, verify: bool) -> Verdict {
        // A JWT's payload must be a JSON object (a bare JWS may not be).
        let parsed = token::parse(raw_token).and_then(|t| {
            if t.payload_is_json {
                Ok(t)
            } else {
                Err(token::TokenError::Json("payload"))
            }
        });
        let t = match parsed {
            Ok(t) => t,
            Err(e) => {
                return Verdict {
                    findings: vec![checks::malformed(e)],
                    sub: None,
                    jti: None,
                    sid: None,
                    kid: None,
                    iat: None,
                    exp: None,
                    nbf: None,
                    leeway: 0,
                    privileges: Default::default(),
                    issuer: None,
                    verified: false,
                };
            }
        };
        let issuer = self.issuer_for(t.claim_str("iss"));
        let issuer_idx = issuer.and_then(|i| self.issuers.iter().position(|j| std::ptr::eq(i, j)));
        let (findings, verdict) = checks::run(
            &t,
            issuer,
            !self.issuers.is_empty(),
            &self.cfg.trusted_key_urls,
            verify,
        );
        let leeway = issuer.map_or(60, |i| i.cfg.leeway.as_secs() as i64);
        if let (Some(SigVerdict::UnknownKey(_)), Some(i)) = (&verdict, issuer_idx)
            && self.issuers[i].cfg.jwks_url.is_some()
            && !self.refresh_wanted.contains(&i)
        {
            self.refresh_wanted.push(i);
        }
        // Dictionary check for every HS* token, each distinct token once (a
        // cache miss): a forged token minted with a guessable secret says
        // what the attacker tried; a valid one says the issuer's is weak.
        if crack && keys::Family::of(&t.alg) == Some(keys::Family::Hmac) && self.cracker.has_room()
        {
            let mut f = ctx.clone();
            f.kind = Kind::JwtWeakSecret;
            f.severity = Kind::JwtWeakSecret.severity();
            f.subject = t.claim_str("sub").map(str::to_string);
            self.cracker.submit(cracker::Job {
                alg: t.alg.clone(),
                signing_input: t.signing_input.to_string(),
                signature: t.signature.clone(),
                finding: f,
            });
        }
        Verdict {
            findings,
            sub: t.claim_str("sub").map(str::to_string),
            jti: t.claim_str("jti").map(str::to_string),
            sid: t.claim_str("sid").map(str::to_string),
            kid: t.header_str("kid").map(str::to_string),
            iat: t.claim_time("iat"),
            exp: t.claim_time("exp"),
            nbf: t.claim_time("nbf"),
            leeway,
            privileges: behaviour::privileges(&t.claims, &self.cfg.privilege_claims),
            issuer: issuer_idx,
            verified: matches!(verdict, Some(SigVerdict::Valid(_))),
        }
    }

    /// Revokes a token by its `token_id`: at once in memory, and durably
    /// by appending to `revocation_file` when one is configured (queued to
    /// the file's writer thread).
    pub fn revoke_token_id(&mut self, token_id: &str) -> Result<(), RevocationError> {
        self.revocations.revoke_token_id(token_id)
    }

    /// Like [`Self::revoke_token_id`], returning once the file holds it.
    pub fn revoke_token_id_now(&mut self, token_id: &str) -> Result<(), RevocationError> {
        self.revocations.revoke_token_id_now(token_id)
    }

    /// Lifts a `token_id` revocation (memory and file); whether it existed.
    pub fn unrevoke_token_id(&mut self, token_id: &str) -> Result<bool, RevocationError> {
        self.revocations.unrevoke_token_id(token_id)
    }

    /// Analyses one observation: every JWT it carries ([`carried`]), each
    /// on its own; more than one distinct token is a finding in itself.
    /// Appends the findings and returns what the behaviour detectors need
    /// to know of the first token.
    pub fn analyze(&mut self, obs: &Observation, out: &mut Vec<Finding>) -> TokenFacts {
        let found = carried(&obs.request);
        if found.opaque_bearer {
            self.stats.opaque += 1;
        }
        if found.tokens.len() > 1 {
            let mut f = Finding::new(
                Kind::JwtMultipleTokens,
                obs.time,
                obs.client_ip,
                endpoint(&obs.request.method, &obs.request.path),
            );
            f.proven = obs.proven();
            f.transport = Some(obs.transport);
            f.detail = json!({
                "tokens": found.tokens.len(),
                "places": found.tokens.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
                "token_ids": found.tokens.iter().map(|(_, c)| c.token_id()).collect::<Vec<_>>(),
            });
            out.push(f);
        }
        let mut facts: Option<TokenFacts> = None;
        for (_, cred) in &found.tokens {
            let f = self.analyze_token(obs, cred, out);
            facts.get_or_insert(f);
        }
        facts.unwrap_or_default()
    }

    /// One token of an observation.
    fn analyze_token(
        &mut self,
        obs: &Observation,
        cred: &Credentials,
        out: &mut Vec<Finding>,
    ) -> TokenFacts {
        let raw_token = cred.expose_secret();
        self.stats.tokens += 1;
        let digest = *cred.digest();
        // The request context of a finding, built only when one is made.
        // Its kind is set where it is used.
        let ctx = || {
            let mut f = Finding::new(
                Kind::JwtMalformed,
                obs.time,
                obs.client_ip,
                endpoint(&obs.request.method, &obs.request.path),
            );
            f.token_id = Some(crate::parse::hex16(&digest));
            f.proven = obs.proven();
            f.transport = Some(obs.transport);
            f
        };
        let verdict = if let Some(v) = self.cache.get(&digest) {
            self.stats.cache_hits += 1;
            v.clone()
        } else {
            self.stats.cache_misses += 1;
            let start = std::time::Instant::now();
            if self.budget.allow(start) {
                let v = Arc::new(self.compute(raw_token, &ctx(), true, true));
                self.budget.spend(start.elapsed());
                self.cache.put(digest, v.clone());
                v
            } else {
                // Judged without its signature, and not cached: a later
                // request may find the budget free again.
                self.stats.verify_skipped += 1;
                Arc::new(self.compute(raw_token, &ctx(), false, false))
            }
        };
        let now = unix(obs.time);
        let emit = |kind: Kind, detail: Value, out: &mut Vec<Finding>| {
            let mut f = ctx();
            f.kind = kind;
            f.severity = kind.severity();
            f.subject = verdict.sub.clone();
            f.detail = detail;
            out.push(f);
        };
        for r in &verdict.findings {
            if r.kind == Kind::JwtUnknownKey
                && let Some(i) = verdict.issuer
                && self.defer_unknown
                && self.issuers[i].cfg.jwks_url.is_some()
            {
                let mut f = ctx();
                f.subject = verdict.sub.clone();
                if self.pending.add(digest, i, raw_token, f) {
                    continue;
                }
            }
            emit(r.kind, r.detail.clone(), out);
        }
        let l = verdict.leeway;
        if let Some(exp) = verdict.exp
            && now > exp.saturating_add(l)
        {
            emit(
                Kind::JwtExpired,
                json!({ "exp": exp, "expired_s": now.saturating_sub(exp), "leeway_s": l }),
                out,
            );
        }
        if let Some(nbf) = verdict.nbf
            && now.saturating_add(l) < nbf
        {
            emit(
                Kind::JwtNotYetValid,
                json!({ "nbf": nbf, "early_s": nbf.saturating_sub(now) }),
                out,
            );
        }
        if let Some(iat) = verdict.iat
            && now.saturating_add(l) < iat
        {
            emit(
                Kind::JwtIssuedInFuture,
                json!({ "iat": iat, "ahead_s": iat.saturating_sub(now) }),
                out,
            );
        }
        if let Some(by) = self.revocations.check(
            &digest,
            verdict.jti.as_deref(),
            verdict.kid.as_deref(),
            verdict.sub.as_deref(),
            verdict.iat,
        ) {
            emit(Kind::JwtRevoked, json!({ "matched": by.as_str() }), out);
        }
        let agent = obs.request.user_agent.as_deref();
        for (kind, detail) in self
            .behaviour
            .token_use(&digest, obs.client_ip, agent, obs.time)
        {
            emit(kind, detail, out);
        }
        if let Some(sub) = &verdict.sub {
            let reissued = verdict.verified && self.behaviour.issued_later(sub, verdict.iat);
            if let Some(mut detail) =
                self.behaviour
                    .subject_privileges(sub, &verdict.privileges, obs.time)
            {
                // A validly signed token issued later (incremental
                // consent, a role granted): worth a look, not an attack.
                detail["reissued"] = json!(reissued);
                emit(Kind::JwtClaimsEscalation, detail, out);
                if reissued && let Some(f) = out.last_mut() {
                    f.severity = crate::finding::Severity::Low;
                }
            }
        }
        TokenFacts {
            subject: verdict.sub.clone(),
            verified: verdict.verified,
            session: verdict.sid.clone().or_else(|| verdict.jti.clone()),
            flagged: false,
            api_key: None,
        }
    }
}

/// The JWTs a request carries, where, and whether it had a bearer
/// credential that is not one.
#[derive(Default)]
pub struct Carried<'a> {
    /// (place, token), distinct tokens only, `Authorization` first (the
    /// request's own credentials are borrowed: their digest is computed
    /// once).
    pub tokens: Vec<(&'static str, Cow<'a, Credentials>)>,
    /// A `Bearer` credential that is not a JWT (an opaque token).
    pub opaque_bearer: bool,
}

/// The bytes a compact JWS may hold: the base64url alphabet, the two
/// dots, and (so that a padded or standard-base64 token is still judged
/// as a malformed JWT) `=`, `+` and `/`.
const JWS_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'=' | b'+' | b'/');
        b += 1;
    }
    t
};

/// A compact JWS: three base64url parts, the header a JSON object. One
/// pass over the bytes.
pub fn looks_like_jws(s: &str) -> bool {
    if !s.starts_with("eyJ") || s.len() > 16 << 10 {
        return false;
    }
    let (mut dots, mut ok) = (0usize, true);
    for &b in s.as_bytes() {
        dots += usize::from(b == b'.');
        ok &= JWS_BYTES[usize::from(b)];
    }
    ok && dots == 2
}

/// Every JWT in a request: `Authorization` with any scheme or none (each
/// such header), any cookie whose value is a JWS, any other header whose
/// value is one (with or without a scheme), and the `access_token`,
/// `id_token`, `token` and `jwt` query parameters (RFC 6750 2.3).
pub fn carried(req: &crate::parse::Request) -> Carried<'_> {
    let mut c = Carried::default();
    for cred in req.other_credentials.iter().chain(&req.credentials) {
        let secret = cred.expose_secret();
        let bearer = cred.scheme.eq_ignore_ascii_case("bearer");
        // A bearer credential that starts like a JWT is judged as one, so
        // a malformed token is `jwt_malformed`; elsewhere only a JWS is.
        if (bearer && secret.starts_with("eyJ")) || looks_like_jws(secret) {
            if !c.tokens.iter().any(|(_, t)| t.expose_secret() == secret) {
                c.tokens.push(("authorization", Cow::Borrowed(cred)));
            }
        } else if bearer {
            c.opaque_bearer = true;
        }
    }
    let add = |place: &'static str, value: &str, c: &mut Carried<'_>| {
        let value = value.trim().trim_matches('"');
        let token = value.rsplit(' ').next().unwrap_or(value);
        if looks_like_jws(token)
            && !c.tokens.iter().any(|(_, t)| t.expose_secret() == token)
            && c.tokens.len() < 8
        {
            c.tokens.push((
                place,
                Cow::Owned(Credentials::new(&format!("{place} {token}"))),
            ));
        }
    };
    // Most requests carry no second token: look only where one could be.
    if let Some(cookies) = req.cookies.as_ref().filter(|k| k.0.contains("eyJ")) {
        for pair in cookies.0.split(';') {
            if let Some((_, v)) = pair.split_once('=') {
                add("cookie", v, &mut c);
            }
        }
    }
    for (_, v) in req.other_headers().filter(|(_, v)| v.contains("eyJ")) {
        add("header", v, &mut c);
    }
    if let Some(q) = req.query.as_ref().filter(|q| q.contains("eyJ")) {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            if matches!(k.as_ref(), "access_token" | "id_token" | "token" | "jwt") {
                add("query", &v, &mut c);
            }
        }
    }
    c
}

#[cfg(test)]
mod tests;
