//! Grades the JWT analyser against Wycheproof's JWS vectors (each group's
//! key as the only trusted key: every `invalid` case must produce a
//! signature/algorithm finding, every `valid` one none) and against
//! nginx-auth-jwt's tokens, keys, expiry and revocation lists.

use std::{fmt::Write as _, path::Path, time::SystemTime};

use anyhow::{Context, Result};
use jwtmon::{
    jwt::{
        JwtAnalyzer,
        checks::jws_findings,
        config::{IssuerConfig, JwtConfig},
        keys::{KeySet, jwks_keys},
    },
    observe::Observation,
    parse::{Credentials, Request},
};
use serde_json::Value;

/// Kinds that reject a token's signature or algorithm.
const REJECTS: &[&str] = &[
    "jwt_malformed",
    "jwt_alg_none",
    "jwt_null_signature",
    "jwt_signature_invalid",
    "jwt_psychic_signature",
    "jwt_alg_not_allowed",
    "jwt_alg_confusion",
    "jwt_unknown_key",
    "jwt_embedded_jwk",
    "jwt_untrusted_jku",
    "jwt_untrusted_x5u",
];

/// Agreement counts and the disagreement lines of one corpus.
#[derive(Default)]
struct Tally {
    report: String,
    agree: usize,
    disagree: usize,
}

impl Tally {
    fn record(&mut self, ok: bool, why: impl FnOnce() -> String) {
        if ok {
            self.agree += 1;
        } else {
            self.disagree += 1;
            let _ = writeln!(self.report, "  disagree: {}", why());
        }
    }
}

/// Cases jwtmon answers differently on purpose, or whose data contradicts
/// the file's own rules; each is printed with its reason.
fn deviation(group: &Value, t: &Value, jws: &str) -> Option<&'static str> {
    let comment = t["comment"].as_str().unwrap_or("");
    let valid = t["result"] == "valid";
    if comment.starts_with("InvalidCharacterInserted") && valid {
        return Some(
            "valid only to a lenient decoder that skips a stray character; jwtmon decodes base64url strictly",
        );
    }
    if comment.starts_with("invalidBase64Padding") && !jws.contains('=') {
        return Some("the stored string has no padding and is byte-identical to a valid token");
    }
    let key_alg = group["public"]["alg"].as_str().unwrap_or("");
    let head = jws.split('.').next().unwrap_or("");
    let alg = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, head)
        .ok()
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .and_then(|h| h["alg"].as_str().map(str::to_string))
        .unwrap_or_default();
    if valid && key_alg.starts_with("PS") && alg.starts_with("PS") && key_alg != alg {
        return Some(
            "signed with another alg than the JWK's `alg`; jwtmon binds a key to its alg, as the file's WrongPrimitive cases require",
        );
    }
    None
}

/// Runs the Wycheproof file; returns the report and (agree, disagree).
pub fn wycheproof(file: &Path) -> Result<(String, usize, usize)> {
    let doc: Value = serde_json::from_slice(&std::fs::read(file)?)
        .with_context(|| format!("parsing {}", file.display()))?;
    let mut tally = Tally::default();
    let mut deviations = Vec::new();
    let groups = doc["testGroups"].as_array().cloned().unwrap_or_default();
    for g in &groups {
        let jwk = g
            .get("public")
            .or_else(|| g.get("private"))
            .cloned()
            .unwrap_or_default();
        let keys = KeySet {
            keys: jwks_keys(jwk.to_string().as_bytes(), "group key").unwrap_or_default(),
        };
        for t in g["tests"].as_array().cloned().unwrap_or_default() {
            let id = t["tcId"].as_u64().unwrap_or(0);
            let jws = match &t["jws"] {
                Value::String(s) => s.clone(),
                other => other.to_string(), // JSON serialization: not compact
            };
            if let Some(why) = deviation(g, &t, &jws) {
                deviations.push(format!("tcId {id}: {why}"));
                continue;
            }
            let found: Vec<&str> = jws_findings(&jws, keys.clone(), &[])
                .iter()
                .map(|r| r.kind.name())
                .collect();
            let ok = match t["result"].as_str() {
                Some("valid") => found.is_empty(),
                Some("invalid") => found.iter().any(|k| REJECTS.contains(k)),
                _ => true, // "acceptable": either way
            };
            tally.record(ok, || {
                format!(
                    "tcId {id} ({}, {}): expected {}, got {found:?}",
                    g["comment"].as_str().unwrap_or(""),
                    t["comment"].as_str().unwrap_or(""),
                    t["result"]
                )
            });
        }
    }
    let Tally {
        mut report,
        agree,
        disagree,
    } = tally;
    let _ = writeln!(
        report,
        "wycheproof JWS: {} cases in {} groups: agree {agree}, disagree {disagree} ({:.1}% agreement)",
        agree + disagree,
        groups.len(),
        100.0 * agree as f64 / (agree + disagree).max(1) as f64
    );
    for d in deviations {
        let _ = writeln!(report, "  not graded: {d}");
    }
    Ok((report, agree, disagree))
}

fn observation(token: &str) -> Observation {
    Observation {
        time: SystemTime::now(),
        src: "10.0.0.2:40000".parse().unwrap(),
        dst: "10.0.0.1:80".parse().unwrap(),
        client_ip: "10.0.0.2".parse().unwrap(),
        attributed: true,
        request: Request {
            method: "GET".into(),
            path: "/".into(),
            credentials: Some(Credentials::new(&format!("Bearer {token}"))),
            ..Request::default()
        },
        status: Some(200),
        latency: None,
        unanswered: false,
        transport: jwtmon::capture::Transport::Tcp,
    }
}

/// Findings of the full analyser for one token with one key file, at the
/// current time (the corpus's expiry case is judged now).
fn analyse(token: &str, keys: &Path, revocations: Option<&Path>) -> Result<Vec<&'static str>> {
    let cfg = JwtConfig {
        issuers: vec![IssuerConfig {
            jwks_files: vec![keys.to_path_buf()],
            max_lifetime: std::time::Duration::from_secs(u64::from(u32::MAX) * 2),
            ..IssuerConfig::default()
        }],
        revocation_file: revocations.map(Path::to_path_buf),
        ..JwtConfig::default()
    };
    let mut a = JwtAnalyzer::new(&cfg)?;
    let mut out = Vec::new();
    a.analyze(&observation(token), &mut out);
    a.finish(&mut out);
    Ok(out.iter().map(|f| f.kind.name()).collect())
}

/// Runs the nginx-auth-jwt cases; returns the report and (agree, disagree).
pub fn nginx(dir: &Path) -> Result<(String, usize, usize)> {
    let read = |name: &str| -> Result<String> {
        Ok(std::fs::read_to_string(dir.join(name))
            .with_context(|| format!("reading {name}"))?
            .trim()
            .to_string())
    };
    // (token file, key file, expected kind or None for clean)
    let mut cases: Vec<(String, String, Option<&str>)> = Vec::new();
    for n in 1..=10 {
        let key = if dir.join(format!("test{n}.jwks")).exists() {
            format!("test{n}.jwks")
        } else {
            format!("test{n}.jwk")
        };
        if dir.join(format!("test{n}.jwt")).exists() && dir.join(&key).exists() {
            cases.push((format!("test{n}.jwt"), key, None));
        }
    }
    cases.push((
        "test1.sig.jwt".into(),
        "test1.jwks".into(),
        Some("jwt_signature_invalid"),
    ));
    cases.push((
        "test1.exp.jwt".into(),
        "test1.jwks".into(),
        Some("jwt_expired"),
    ));
    let mut tally = Tally::default();
    let mut grade = |name: String, found: Vec<&str>, want: Option<&str>| {
        let ok = match want {
            None => found.is_empty(),
            Some(k) => found.contains(&k),
        };
        tally.record(ok, || format!("{name}: expected {want:?}, got {found:?}"));
    };
    for (tok, key, want) in cases {
        let found = analyse(&read(&tok)?, &dir.join(&key), None)?;
        grade(format!("{tok} with {key}"), found, want);
    }
    // Revocation lists (by kid and by sub) in jwtmon's list format.
    let tmp = std::env::temp_dir().join(format!("jwtmon-revoked-{}", std::process::id()));
    for (file, field) in [
        ("revocation_list_kid.json", "kid"),
        ("revocation_list_sub.json", "sub"),
    ] {
        let v: Value = serde_json::from_str(&read(file)?)?;
        let lines: String = v
            .as_object()
            .map(|o| o.keys().map(|k| format!("{field} {k}\n")).collect())
            .unwrap_or_default();
        std::fs::write(&tmp, lines)?;
        let revoked = analyse(&read("test2.jwt")?, &dir.join("test2.jwks"), Some(&tmp))?;
        grade(
            format!("test2.jwt against {file}"),
            revoked,
            Some("jwt_revoked"),
        );
        let clean = analyse(&read("test1.jwt")?, &dir.join("test1.jwks"), Some(&tmp))?;
        grade(format!("test1.jwt against {file}"), clean, None);
    }
    let _ = std::fs::remove_file(&tmp);
    let Tally {
        mut report,
        agree,
        disagree,
    } = tally;
    let _ = writeln!(
        report,
        "nginx-auth-jwt: {} cases: agree {agree}, disagree {disagree}",
        agree + disagree
    );
    Ok((report, agree, disagree))
}
