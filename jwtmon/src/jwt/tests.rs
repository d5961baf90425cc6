//! One positive and one negative test per finding kind. Keys are generated
//! with openssl at test time; tokens are signed with jsonwebtoken; time is
//! the observation's time, so nothing depends on the clock.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::OnceLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, crypto::sign};
use serde_json::{Value, json};

use super::{
    JwtAnalyzer,
    config::{IssuerConfig, JwtConfig},
};
use crate::{
    finding::Finding,
    observe::Observation,
    parse::{Credentials, Request},
};

/// Test keys: (private PEM path, public PEM path) per type.
struct Keys {
    dir: tempfile::TempDir,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let genkey = |name: &str, args: &[&str]| {
            let key = dir.path().join(format!("{name}.key"));
            let st = std::process::Command::new("openssl")
                .args(["genpkey", "-out"])
                .arg(&key)
                .args(args)
                .output()
                .unwrap();
            assert!(st.status.success(), "{st:?}");
            let st = std::process::Command::new("openssl")
                .args(["pkey", "-pubout", "-in"])
                .arg(&key)
                .arg("-out")
                .arg(dir.path().join(format!("{name}.pub")))
                .output()
                .unwrap();
            assert!(st.status.success());
        };
        genkey(
            "rsa",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        );
        genkey(
            "rsa2",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        );
        genkey(
            "ec",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        );
        Keys { dir }
    })
}

fn path(name: &str) -> PathBuf {
    keys().dir.path().join(name)
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// Builds a token with exactly this header and claims.
fn token(header: Value, claims: Value, key: &EncodingKey, alg: Algorithm) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = sign(input.as_bytes(), key, alg).unwrap();
    format!("{input}.{sig}")
}

fn rsa_key(name: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(&std::fs::read(path(&format!("{name}.key"))).unwrap()).unwrap()
}

const NOW: u64 = 1_700_000_000;

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(s)
}

fn claims() -> Value {
    json!({ "iss": "https://auth.test", "sub": "alice", "aud": "api", "iat": NOW - 60,
            "exp": NOW + 3600, "jti": "j-1", "role": "user" })
}

fn rs256(claims: Value) -> String {
    token(
        json!({"alg": "RS256", "typ": "JWT"}),
        claims,
        &rsa_key("rsa"),
        Algorithm::RS256,
    )
}

fn hs256(secret: &[u8], header: Value, claims: Value) -> String {
    token(
        header,
        claims,
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
}

fn rsa_issuer() -> IssuerConfig {
    IssuerConfig {
        issuer: "https://auth.test".into(),
        algorithms: vec!["RS256".into()],
        audiences: vec!["api".into()],
        public_key_files: vec![path("rsa.pub")],
        ..IssuerConfig::default()
    }
}

fn obs(tok: &str, ip: &str, ua: &str, time: SystemTime) -> Observation {
    let client: IpAddr = ip.parse().unwrap();
    Observation {
        time,
        src: SocketAddr::new(client, 40000),
        dst: "10.0.0.1:8080".parse().unwrap(),
        client_ip: client,
        attributed: true,
        request: Request {
            method: "GET".into(),
            path: "/api/v1/accounts/42/balance".into(),
            user_agent: Some(ua.into()),
            credentials: Some(Credentials::new(&format!("Bearer {tok}"))),
            ..Request::default()
        },
        status: Some(200),
        latency: None,
        unanswered: false,
        transport: crate::capture::Transport::Tcp,
    }
}

fn run_with(cfg: &JwtConfig, toks: &[(&str, &str, &str, u64)]) -> Vec<Finding> {
    let mut a = JwtAnalyzer::new(cfg).unwrap();
    let mut out = Vec::new();
    for (t, ip, ua, time) in toks {
        a.analyze(&obs(t, ip, ua, at(*time)), &mut out);
    }
    a.finish(&mut out);
    out
}

fn kinds(cfg: &JwtConfig, tok: &str) -> Vec<&'static str> {
    run_with(cfg, &[(tok, "10.0.0.2", "curl/8", NOW)])
        .iter()
        .map(|f| f.kind.name())
        .collect()
}

fn rsa_cfg() -> JwtConfig {
    JwtConfig {
        issuers: vec![rsa_issuer()],
        ..JwtConfig::default()
    }
}

#[test]
fn a_clean_token_has_no_finding() {
    assert_eq!(kinds(&rsa_cfg(), &rs256(claims())), Vec::<&str>::new());
    assert_eq!(
        kinds(&JwtConfig::default(), &rs256(claims())),
        Vec::<&str>::new()
    );
}

#[test]
fn structure_and_algorithm() {
    let cfg = rsa_cfg();
    assert_eq!(
        kinds(&cfg, "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln"),
        ["jwt_malformed"]
    );
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"nOnE"}"#),
        b64(claims().to_string().as_bytes())
    );
    assert_eq!(kinds(&cfg, &none), ["jwt_alg_none"]);
    // Zero-config still catches it.
    assert_eq!(kinds(&JwtConfig::default(), &none), ["jwt_alg_none"]);
    let rs = rs256(claims());
    let null_sig = format!("{}.", &rs[..rs.rfind('.').unwrap()]);
    assert_eq!(kinds(&cfg, &null_sig), ["jwt_null_signature"]);
    let forged = token(
        json!({"alg": "RS256"}),
        claims(),
        &rsa_key("rsa2"),
        Algorithm::RS256,
    );
    assert_eq!(kinds(&cfg, &forged), ["jwt_signature_invalid"]);
    // Valid signature, algorithm not on the issuer's list.
    let ps = token(
        json!({"alg": "PS256"}),
        claims(),
        &rsa_key("rsa"),
        Algorithm::PS256,
    );
    assert_eq!(kinds(&cfg, &ps), ["jwt_alg_not_allowed"]);
    let mut open = rsa_cfg();
    open.issuers[0].algorithms.clear();
    assert!(kinds(&open, &ps).is_empty());
}

#[test]
fn psychic_signature() {
    let header = b64(br#"{"alg":"ES256"}"#);
    let body = b64(claims().to_string().as_bytes());
    let zero = format!("{header}.{body}.{}", b64(&[0u8; 64]));
    assert_eq!(
        kinds(&JwtConfig::default(), &zero),
        ["jwt_psychic_signature"]
    );
    let ec = EncodingKey::from_ec_pem(&std::fs::read(path("ec.key")).unwrap()).unwrap();
    let good = token(json!({"alg": "ES256"}), claims(), &ec, Algorithm::ES256);
    assert!(kinds(&JwtConfig::default(), &good).is_empty());
}

#[test]
fn algorithm_confusion_is_confirmed_with_the_public_key() {
    let cfg = rsa_cfg();
    let pem = std::fs::read(path("rsa.pub")).unwrap();
    let tok = hs256(&pem, json!({"alg": "HS256"}), claims());
    let f = run_with(&cfg, &[(&tok, "10.0.0.2", "x", NOW)]);
    assert_eq!(f[0].kind, "jwt_alg_confusion");
    assert_eq!(f[0].detail["confirmed"], true);
    // Another secret: still confusion-shaped, not confirmed.
    let tok = hs256(
        b"x".repeat(40).as_slice(),
        json!({"alg": "HS256"}),
        claims(),
    );
    let f = run_with(&cfg, &[(&tok, "10.0.0.2", "x", NOW)]);
    assert_eq!(f[0].detail["confirmed"], false);
    // An HMAC issuer: no confusion.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("s");
    std::fs::write(&secret, "a-long-random-secret-0b9f7c1e5a\n").unwrap();
    let cfg = JwtConfig {
        issuers: vec![IssuerConfig {
            issuer: "https://auth.test".into(),
            hmac_secret_file: Some(secret),
            ..IssuerConfig::default()
        }],
        ..JwtConfig::default()
    };
    let tok = hs256(
        b"a-long-random-secret-0b9f7c1e5a",
        json!({"alg": "HS256"}),
        claims(),
    );
    assert!(kinds(&cfg, &tok).is_empty());
}

#[test]
fn unknown_key_from_a_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let k = b64(b"shared-secret-for-the-jwks-test-0001");
    std::fs::write(
        &jwks,
        json!({"keys": [{"kty": "oct", "kid": "k1", "k": k}]}).to_string(),
    )
    .unwrap();
    let cfg = JwtConfig {
        issuers: vec![IssuerConfig {
            jwks_files: vec![jwks],
            ..IssuerConfig::default()
        }],
        ..JwtConfig::default()
    };
    let secret = b"shared-secret-for-the-jwks-test-0001";
    let good = hs256(secret, json!({"alg": "HS256", "kid": "k1"}), claims());
    assert!(kinds(&cfg, &good).is_empty());
    let other = hs256(secret, json!({"alg": "HS256", "kid": "k2"}), claims());
    assert_eq!(kinds(&cfg, &other), ["jwt_unknown_key"]);
}

#[test]
fn header_injection() {
    let cfg = JwtConfig {
        trusted_key_urls: vec!["https://auth.test/".into()],
        ..JwtConfig::default()
    };
    let t = |h: Value| token(h, claims(), &rsa_key("rsa"), Algorithm::RS256);
    let jwk = t(json!({"alg": "RS256", "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}));
    assert_eq!(kinds(&cfg, &jwk), ["jwt_embedded_jwk"]);
    let jku = t(json!({"alg": "RS256", "jku": "https://evil.example/jwks.json"}));
    assert_eq!(kinds(&cfg, &jku), ["jwt_untrusted_jku"]);
    let ok = t(json!({"alg": "RS256", "jku": "https://auth.test/jwks.json"}));
    assert!(kinds(&cfg, &ok).is_empty());
    let x5u = t(json!({"alg": "RS256", "x5u": "http://10.9.9.9/cert.pem"}));
    assert_eq!(kinds(&cfg, &x5u), ["jwt_untrusted_x5u"]);
    for kid in [
        "../../../../dev/null",
        "/dev/null",
        "x' UNION SELECT 'a",
        "k|whoami",
        &"a".repeat(300),
    ] {
        let tok = t(json!({"alg": "RS256", "kid": kid}));
        assert_eq!(kinds(&cfg, &tok), ["jwt_kid_injection"], "{kid}");
    }
    let tok = t(json!({"alg": "RS256", "kid": "2024-01-rotation_key.v2"}));
    assert!(kinds(&cfg, &tok).is_empty());
}

#[test]
fn weak_secrets_builtin_and_user_file() {
    let weak = hs256(b"secret", json!({"alg": "HS256"}), claims());
    let f = run_with(&JwtConfig::default(), &[(&weak, "10.0.0.2", "x", NOW)]);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].kind, "jwt_weak_secret");
    assert_eq!(f[0].detail["dictionary"], "builtin");
    assert!(!f[0].to_json().to_string().contains("\"secret\""));
    let empty = hs256(b"", json!({"alg": "HS256"}), claims());
    assert_eq!(kinds(&JwtConfig::default(), &empty), ["jwt_weak_secret"]);
    // A user wordlist.
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("words.txt");
    let words: String = (0..5000).map(|i| format!("word{i}\n")).collect();
    std::fs::write(&list, words).unwrap();
    let tok = hs256(b"word4321", json!({"alg": "HS256"}), claims());
    let cfg = JwtConfig {
        weak_secrets_file: Some(list),
        ..JwtConfig::default()
    };
    let f = run_with(&cfg, &[(&tok, "10.0.0.2", "x", NOW)]);
    assert_eq!(f[0].detail["entry"], 4322);
    let strong = hs256(
        b"Zq8!vR2#long-and-random-7f3e9c",
        json!({"alg": "HS256"}),
        claims(),
    );
    assert!(kinds(&cfg, &strong).is_empty());
}

#[test]
fn time_claims_are_judged_at_observation_time() {
    let cfg = rsa_cfg();
    let mut c = claims();
    c["exp"] = json!(NOW - 600);
    c["iat"] = json!(NOW - 1200);
    let expired = rs256(c);
    assert_eq!(kinds(&cfg, &expired), ["jwt_expired"]);
    // The same token in a capture recorded while it was valid: clean.
    let f = run_with(&cfg, &[(&expired, "10.0.0.2", "x", NOW - 900)]);
    assert!(f.is_empty(), "{f:?}");
    let mut c = claims();
    c["nbf"] = json!(NOW + 600);
    assert_eq!(kinds(&cfg, &rs256(c)), ["jwt_not_yet_valid"]);
    let mut c = claims();
    c["iat"] = json!(NOW + 600);
    c["exp"] = json!(NOW + 4000);
    assert_eq!(kinds(&cfg, &rs256(c)), ["jwt_issued_in_future"]);
    // Within the leeway: clean.
    let mut c = claims();
    c["exp"] = json!(NOW - 30);
    c["iat"] = json!(NOW - 600);
    assert!(kinds(&cfg, &rs256(c)).is_empty());
}

#[test]
fn lifetime_issuer_audience() {
    let cfg = rsa_cfg();
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(kinds(&cfg, &rs256(c)), ["jwt_lifetime_anomalous"]);
    let mut c = claims();
    c["exp"] = json!(NOW + 30 * 86400);
    assert_eq!(kinds(&cfg, &rs256(c)), ["jwt_lifetime_anomalous"]);
    let mut c = claims();
    c["iss"] = json!("https://other.example");
    assert_eq!(kinds(&cfg, &rs256(c)), ["jwt_issuer_unexpected"]);
    let mut c = claims();
    c["aud"] = json!(["billing", "web"]);
    assert_eq!(kinds(&cfg, &rs256(c)), ["jwt_audience_unexpected"]);
    let mut c = claims();
    c["aud"] = json!(["web", "api"]);
    assert!(kinds(&cfg, &rs256(c)).is_empty());
}

#[test]
fn revocation_list() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("revoked.txt");
    std::fs::write(&list, "jti j-revoked\nsub mallory\n").unwrap();
    let cfg = JwtConfig {
        issuers: vec![rsa_issuer()],
        revocation_file: Some(list),
        ..JwtConfig::default()
    };
    let mut c = claims();
    c["jti"] = json!("j-revoked");
    assert_eq!(kinds(&cfg, &rs256(c)), ["jwt_revoked"]);
    let mut c = claims();
    c["sub"] = json!("mallory");
    assert_eq!(kinds(&cfg, &rs256(c)), ["jwt_revoked"]);
    assert!(kinds(&cfg, &rs256(claims())).is_empty());
}

#[test]
fn token_behaviour_over_time() {
    let cfg = rsa_cfg();
    let tok = rs256(claims());
    let t = tok.as_str();
    // Three IPs in the window: fine. A fourth: replay.
    let three = [
        (t, "10.0.0.1", "a", NOW),
        (t, "10.0.0.2", "a", NOW + 1),
        (t, "10.0.0.3", "a", NOW + 2),
    ];
    assert!(run_with(&cfg, &three).is_empty());
    let mut four = three.to_vec();
    four.push((t, "10.0.0.4", "a", NOW + 3));
    let f = run_with(&cfg, &four);
    assert_eq!(
        f.iter().map(|f| f.kind).collect::<Vec<_>>(),
        ["jwt_replay_multi_ip"]
    );
    assert_eq!(f[0].src_ip.to_string(), "10.0.0.4");
    // Spread over more than the window: fine.
    let spread: Vec<_> = (0..4u64)
        .map(|i| {
            (
                t,
                ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"][i as usize],
                "a",
                NOW + i * 400,
            )
        })
        .collect();
    assert!(run_with(&cfg, &spread).is_empty());
    // Same token, another agent.
    let f = run_with(
        &cfg,
        &[
            (t, "10.0.0.1", "app/1.0", NOW),
            (t, "10.0.0.1", "sqlmap/1.7", NOW + 5),
        ],
    );
    assert_eq!(
        f.iter().map(|f| f.kind).collect::<Vec<_>>(),
        ["jwt_agent_change"]
    );
    // A subject's second token grants more.
    let mut c = claims();
    c["role"] = json!("admin");
    c["jti"] = json!("j-2");
    let admin = rs256(c);
    let f = run_with(
        &cfg,
        &[
            (t, "10.0.0.1", "a", NOW),
            (&admin, "10.0.0.1", "a", NOW + 60),
        ],
    );
    assert_eq!(
        f.iter().map(|f| f.kind).collect::<Vec<_>>(),
        ["jwt_claims_escalation"]
    );
    assert_eq!(f[0].detail["added"], json!(["role=admin"]));
    // The other way round (admin first, then user) is not escalation.
    let f = run_with(
        &cfg,
        &[
            (&admin, "10.0.0.1", "a", NOW),
            (t, "10.0.0.1", "a", NOW + 60),
        ],
    );
    assert!(f.is_empty());
}

#[test]
fn findings_carry_context_but_never_the_token() {
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(claims().to_string().as_bytes())
    );
    let f = run_with(&JwtConfig::default(), &[(&none, "10.0.0.9", "x", NOW)]);
    let j = f[0].to_json();
    assert_eq!(j["kind"], "jwt_alg_none");
    assert_eq!(j["severity"], "critical");
    assert_eq!(j["src_ip"], "10.0.0.9");
    assert_eq!(j["subject"], "alice");
    assert_eq!(j["endpoint"], "GET /api/v1/accounts/{id}/balance");
    assert_eq!(j["token_id"], crate::parse::token_id(&none));
    assert_eq!(j["action"], "log");
    assert_eq!(j["time"], "2023-11-14T22:13:20.000Z");
    assert!(!j.to_string().contains(&none[..20]));
}

#[test]
fn repeat_tokens_hit_the_cache() {
    let mut a = JwtAnalyzer::new(&rsa_cfg()).unwrap();
    let tok = rs256(claims());
    let mut out = Vec::new();
    for i in 0..10 {
        a.analyze(&obs(&tok, "10.0.0.1", "a", at(NOW + i)), &mut out);
    }
    assert_eq!((a.stats.cache_misses, a.stats.cache_hits), (1, 9));
    assert!(out.is_empty());
}

/// A one-file HTTP server on loopback serving `body` for every request;
/// returns its URL. Serves `max` requests, then the thread ends.
fn jwks_server(body: String, max: usize) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in l.incoming().take(max) {
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn jwks_url_cfg(url: &str) -> JwtConfig {
    JwtConfig {
        issuers: vec![IssuerConfig {
            jwks_url: Some(url.into()),
            ..IssuerConfig::default()
        }],
        ..JwtConfig::default()
    }
}

#[test]
fn jwks_url_is_fetched_over_http() {
    let secret = b"shared-secret-for-the-jwks-url-0002";
    let body = json!({"keys": [{"kty": "oct", "kid": "k1", "k": b64(secret)}]}).to_string();
    let url = jwks_server(body, 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fetched = rt
        .block_on(super::keys::fetch_jwks(&reqwest::Client::new(), &url))
        .unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].kid.as_deref(), Some("k1"));
    // A server that is not there is an error naming the URL, not a panic.
    let gone = "http://127.0.0.1:9/jwks.json";
    let e = rt
        .block_on(super::keys::fetch_jwks(&reqwest::Client::new(), gone))
        .unwrap_err();
    assert!(e.to_string().contains(gone), "{e}");
}

#[test]
fn unknown_kid_waits_for_the_refetch() {
    let secret = b"shared-secret-for-the-jwks-url-0003";
    let cfg = jwks_url_cfg("http://127.0.0.1:9/unused");
    let mut a = JwtAnalyzer::new(&cfg).unwrap();
    a.defer_unknown_keys(true);
    let old = json!({"keys": [{"kty": "oct", "kid": "k1", "k": b64(secret)}]}).to_string();
    let new = json!({"keys": [{"kty": "oct", "kid": "k1", "k": b64(secret)},
                              {"kty": "oct", "kid": "k2", "k": b64(secret)}]})
    .to_string();
    let mut out = Vec::new();
    let keys = |s: &str| super::keys::jwks_keys(s.as_bytes(), "test");
    a.set_fetched_keys(0, Ok(keys(&old).unwrap()), &mut out);
    // A token signed with the rotated-in key k2: nothing yet, a refetch asked.
    let rotated = hs256(secret, json!({"alg": "HS256", "kid": "k2"}), claims());
    a.analyze(&obs(&rotated, "10.0.0.2", "curl/8", at(NOW)), &mut out);
    a.analyze(&obs(&rotated, "10.0.0.3", "curl/8", at(NOW)), &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(a.pending_tokens(), 1);
    assert_eq!(a.take_refresh_requests(), [0]);
    // The refetch brings k2: the token verifies, nothing is reported.
    a.set_fetched_keys(0, Ok(keys(&new).unwrap()), &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(a.pending_tokens(), 0);
    // A kid that the refetch does not bring is reported, per request.
    let forged = hs256(secret, json!({"alg": "HS256", "kid": "k9"}), claims());
    a.analyze(&obs(&forged, "10.0.0.4", "curl/8", at(NOW)), &mut out);
    a.analyze(&obs(&forged, "10.0.0.5", "curl/8", at(NOW)), &mut out);
    assert!(out.is_empty());
    a.set_fetched_keys(0, Ok(keys(&new).unwrap()), &mut out);
    let ips: Vec<String> = out.iter().map(|f| f.src_ip.to_string()).collect();
    assert_eq!(ips, ["10.0.0.4", "10.0.0.5"]);
    assert!(out.iter().all(|f| f.kind == "jwt_unknown_key"));
    assert_eq!(out[0].detail["jwks"], "refetched");
    assert_eq!(out[0].subject.as_deref(), Some("alice"));
    // A failed refetch judges against the keys at hand.
    out.clear();
    let other = hs256(secret, json!({"alg": "HS256", "kid": "k8"}), claims());
    a.analyze(&obs(&other, "10.0.0.6", "curl/8", at(NOW)), &mut out);
    a.set_fetched_keys(0, Err("HTTP 503".into()), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].detail["jwks"], "refetch failed: HTTP 503");
    // Without deferral (offline runs) it is reported at once.
    let mut b = JwtAnalyzer::new(&cfg).unwrap();
    b.set_fetched_keys(0, Ok(keys(&old).unwrap()), &mut Vec::new());
    let mut now = Vec::new();
    b.analyze(&obs(&other, "10.0.0.6", "curl/8", at(NOW)), &mut now);
    assert_eq!(now.len(), 1);
}

#[test]
fn times_at_the_ends_of_i64_never_overflow() {
    let cfg = rsa_cfg();
    for (exp, nbf, iat) in [
        (i64::MAX, i64::MIN, i64::MAX),
        (i64::MIN, i64::MAX, i64::MIN),
        (i64::MIN, i64::MIN, i64::MAX),
    ] {
        let tok = rs256(
            json!({ "sub": "alice", "iss": "https://auth.example", "aud": "api",
                                "exp": exp, "nbf": nbf, "iat": iat }),
        );
        let k = kinds(&cfg, &tok);
        assert!(!k.is_empty(), "times this far off are findings: {k:?}");
    }
}

#[test]
fn tokens_are_found_wherever_they_travel_and_two_are_a_finding() {
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(claims().to_string().as_bytes())
    );
    let cfg = rsa_cfg();
    let analyse = |req: Request| -> Vec<&'static str> {
        let mut a = JwtAnalyzer::new(&cfg).unwrap();
        let mut o = obs("x", "10.0.0.9", "ua", at(1_700_000_000));
        o.request = req;
        let mut out = Vec::new();
        a.analyze(&o, &mut out);
        out.iter().map(|f| f.kind.name()).collect()
    };
    let base = || Request {
        method: "GET".into(),
        path: "/api/me".into(),
        ..Request::default()
    };
    // Another scheme, no scheme, a cookie, a custom header, a query token.
    for req in [
        Request {
            credentials: Some(Credentials::new(&format!("JWT {none}"))),
            ..base()
        },
        Request {
            credentials: Some(Credentials::new(&none)),
            ..base()
        },
        Request {
            cookies: Some(crate::parse::Hidden(format!("theme=dark; session={none}"))),
            ..base()
        },
        Request {
            headers: crate::parse::Hidden(format!("X-Auth-Token:{none}\n")),
            ..base()
        },
        Request {
            query: Some(format!("access_token={none}")),
            ..base()
        },
    ] {
        assert_eq!(analyse(req.clone()), ["jwt_alg_none"], "{req:?}");
    }
    // Two Authorization headers with different tokens: each analysed, and
    // the pair reported.
    let rs = rs256(claims());
    let two = Request {
        other_credentials: vec![Credentials::new(&format!("Bearer {rs}"))],
        credentials: Some(Credentials::new(&format!("Bearer {none}"))),
        ..base()
    };
    let k = analyse(two);
    assert!(k.contains(&"jwt_multiple_tokens"), "{k:?}");
    assert!(k.contains(&"jwt_alg_none"), "{k:?}");
    // The same token twice is one token; an opaque bearer is not a JWT.
    let same = Request {
        credentials: Some(Credentials::new(&format!("Bearer {rs}"))),
        cookies: Some(crate::parse::Hidden(format!("jwt={rs}"))),
        ..base()
    };
    assert!(!analyse(same).contains(&"jwt_multiple_tokens"));
    let opaque = Request {
        credentials: Some(Credentials::new("Bearer 2YotnFZFEjr1zCsicMWpAA")),
        cookies: Some(crate::parse::Hidden("sid=eyJhbGciOi".into())),
        ..base()
    };
    assert!(analyse(opaque).is_empty());
    // A bearer token that only starts like a JWT is still judged as one.
    let broken = Request {
        credentials: Some(Credentials::new("Bearer eyJmb28iOiJiYXIifQ.garbage")),
        ..base()
    };
    assert_eq!(analyse(broken), ["jwt_malformed"]);
}

#[test]
fn jws_shape_is_three_base64url_parts() {
    use super::looks_like_jws;
    assert!(looks_like_jws("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"));
    assert!(looks_like_jws("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."));
    assert!(!looks_like_jws("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0"));
    assert!(!looks_like_jws("eyJhbGciOiJIUzI1NiJ9.eyJ.c2ln.x"));
    assert!(!looks_like_jws("eyJhbGciOiJIUzI1NiJ9.eyJ zdWIi.c2ln"));
    assert!(!looks_like_jws("abc.def.ghi"));
    assert!(!looks_like_jws(&format!("eyJ{}.a.b", "A".repeat(17 << 10))));
}

#[test]
fn past_the_verification_budget_tokens_get_key_free_checks_and_no_cache() {
    let cfg = JwtConfig {
        verify_budget: Duration::from_nanos(1),
        ..rsa_cfg()
    };
    let mut a = JwtAnalyzer::new(&cfg).unwrap();
    let forged = |n: u32| {
        let good = rs256(
            json!({ "iss": "https://auth.test", "aud": "api", "sub": format!("u{n}"),
            "iat": NOW - 10, "exp": NOW + 3600 }),
        );
        let (input, _) = good.rsplit_once('.').unwrap();
        format!("{input}.{}", b64(&[n as u8; 256]))
    };
    let mut out = Vec::new();
    // The first verify spends the whole budget of this second.
    a.analyze(&obs(&forged(1), "10.0.0.1", "a", at(NOW)), &mut out);
    assert_eq!(
        out.iter().map(|f| f.kind.name()).collect::<Vec<_>>(),
        ["jwt_signature_invalid"]
    );
    out.clear();
    // The next forged one is not called invalid (it was not checked), and
    // a token that needs no key is still caught.
    a.analyze(&obs(&forged(2), "10.0.0.1", "a", at(NOW)), &mut out);
    assert!(out.is_empty(), "{:?}", out.first().map(|f| f.kind));
    let none = token(
        json!({"alg": "none"}),
        claims(),
        &EncodingKey::from_secret(b"x"),
        Algorithm::HS256,
    );
    let (input, _) = none.rsplit_once('.').unwrap();
    a.analyze(
        &obs(&format!("{input}."), "10.0.0.1", "a", at(NOW)),
        &mut out,
    );
    assert_eq!(
        out.iter().map(|f| f.kind.name()).collect::<Vec<_>>(),
        ["jwt_alg_none"]
    );
    assert_eq!(a.stats.verify_skipped, 2);
    // Not cached: seen again, it is judged again (and counted again).
    a.analyze(&obs(&forged(2), "10.0.0.1", "a", at(NOW)), &mut out);
    assert_eq!((a.stats.cache_misses, a.stats.cache_hits), (4, 0));
    assert_eq!(a.stats.verify_skipped, 3);
}
