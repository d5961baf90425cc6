//! `cargo xtask bench-jwt`: JWT analysis throughput on one core. For each
//! algorithm, uncached analysis (every token new) next to the raw
//! `jsonwebtoken::crypto::verify` figure in the same run; the cached path
//! (a token seen before); and a mixed stream with 90% repeat tokens.
//! Then a flood of unique forged RS256 tokens with and without the
//! verification budget. Arguments name the algorithms to run (`flood` for
//! the flood; all when none).

use std::{
    hint::black_box,
    time::{Duration, Instant, SystemTime},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, crypto};
use jwtmon::{
    jwt::{
        JwtAnalyzer,
        config::{IssuerConfig, JwtConfig},
    },
    observe::Observation,
    parse::{Credentials, Request},
};

fn openssl_key(dir: &std::path::Path, name: &str, args: &[&str]) -> (Vec<u8>, std::path::PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let ok = std::process::Command::new("openssl")
        .args(["genpkey", "-out"])
        .arg(&key)
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
        && std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public)
            .status()
            .is_ok_and(|s| s.success());
    assert!(ok, "openssl genpkey failed");
    (std::fs::read(&key).unwrap(), public)
}

fn tokens(key: &EncodingKey, alg: Algorithm, name: &str, n: usize) -> Vec<String> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (0..n)
        .map(|i| {
            let h = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{name}","typ":"JWT"}}"#));
            let c = URL_SAFE_NO_PAD.encode(format!(
                r#"{{"iss":"https://auth.bench","sub":"user{i}","aud":"api","iat":{},"exp":{},"jti":"{i}","role":"user"}}"#,
                now - 10,
                now + 3600
            ));
            let input = format!("{h}.{c}");
            let sig = crypto::sign(input.as_bytes(), key, alg).unwrap();
            format!("{input}.{sig}")
        })
        .collect()
}

fn obs(token: &str, i: usize) -> Observation {
    Observation {
        time: SystemTime::now(),
        src: format!("10.1.{}.{}:40000", (i / 250) % 250, i % 250)
            .parse()
            .unwrap(),
        dst: "10.0.0.1:8080".parse().unwrap(),
        attributed: true,
        client_ip: format!("10.1.{}.{}", (i / 250) % 250, i % 250)
            .parse()
            .unwrap(),
        request: Request {
            method: "GET".into(),
            path: format!("/api/v1/accounts/{i}/balance"),
            user_agent: Some("bench/1.0".into()),
            credentials: Some(Credentials::new(&format!("Bearer {token}"))),
            ..Request::default()
        },
        status: Some(200),
        latency: None,
        unanswered: false,
        transport: jwtmon::capture::Transport::Tcp,
    }
}

fn per_s(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let dir = std::env::temp_dir().join(format!("jwtmon-bench-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = b"bench-secret-0123456789abcdef-0123456789".to_vec();
    std::fs::write(dir.join("hs.secret"), &secret).unwrap();
    let (rsa, rsa_pub) = openssl_key(
        &dir,
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let (ec, ec_pub) = openssl_key(
        &dir,
        "ec",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let (ed, ed_pub) = openssl_key(&dir, "ed", &["-algorithm", "ed25519"]);
    let cases: Vec<(
        &str,
        Algorithm,
        EncodingKey,
        DecodingKey,
        IssuerConfig,
        usize,
    )> = vec![
        (
            "HS256",
            Algorithm::HS256,
            EncodingKey::from_secret(&secret),
            DecodingKey::from_secret(&secret),
            IssuerConfig {
                hmac_secret_file: Some(dir.join("hs.secret")),
                ..Default::default()
            },
            20_000,
        ),
        (
            "RS256",
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&rsa).unwrap(),
            DecodingKey::from_rsa_pem(&std::fs::read(&rsa_pub).unwrap()).unwrap(),
            IssuerConfig {
                public_key_files: vec![rsa_pub.clone()],
                ..Default::default()
            },
            2_000,
        ),
        (
            "ES256",
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&ec).unwrap(),
            DecodingKey::from_ec_pem(&std::fs::read(&ec_pub).unwrap()).unwrap(),
            IssuerConfig {
                public_key_files: vec![ec_pub.clone()],
                ..Default::default()
            },
            2_000,
        ),
        (
            "EdDSA",
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(&ed).unwrap(),
            DecodingKey::from_ed_pem(&std::fs::read(&ed_pub).unwrap()).unwrap(),
            IssuerConfig {
                public_key_files: vec![ed_pub.clone()],
                ..Default::default()
            },
            5_000,
        ),
    ];
    println!("one core; every figure is analyses (or verifications) per second");
    println!();
    println!(
        "| algorithm | raw jsonwebtoken verify/s | jwtmon uncached/s | ratio | jwtmon cached/s | mixed (90% repeats)/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    // `bench-jwt HS256 ES256`: only these (for profiling one path).
    let only: Vec<String> = std::env::args().skip(1).collect();
    for (name, alg, enc, dec, issuer, n) in cases {
        if !only.is_empty() && !only.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            continue;
        }
        let toks = tokens(&enc, alg, name, n);
        let t = Instant::now();
        for tok in &toks {
            let (input, sig) = tok.rsplit_once('.').unwrap();
            assert!(crypto::verify(sig, input.as_bytes(), &dec, alg).unwrap());
        }
        let raw = per_s(n, t.elapsed());

        let cfg = JwtConfig {
            issuers: vec![issuer],
            verdict_cache_entries: 1_000_000,
            // The dictionary worker is off the analysis path; keep its
            // queue from taking the measured core.
            weak_secret_queue: 1,
            ..JwtConfig::default()
        };
        let observations: Vec<Observation> =
            toks.iter().enumerate().map(|(i, t)| obs(t, i)).collect();
        let mut a = JwtAnalyzer::new(&cfg).unwrap();
        let mut out = Vec::new();
        let t = Instant::now();
        for o in &observations {
            a.analyze(o, &mut out);
        }
        let uncached = per_s(n, t.elapsed());
        assert!(
            out.is_empty(),
            "clean tokens gave findings: {:?}",
            out.first().map(|f| f.kind)
        );

        // Cached: the same tokens again, many rounds (fresh observations,
        // so each lookup hashes the token as a live request would).
        let rounds = 500_000 / n.max(1);
        // Cloned outside the timer: each has its own (not yet computed)
        // token digest, as a live request would.
        let mut timed = Duration::ZERO;
        for _ in 0..rounds {
            let fresh: Vec<Observation> = observations.clone();
            let t = Instant::now();
            for o in &fresh {
                a.analyze(black_box(o), &mut out);
            }
            timed += t.elapsed();
            out.clear();
        }
        let cached = per_s(rounds * n, timed);

        // Mixed: 1 new token in 10.
        let mut a = JwtAnalyzer::new(&cfg).unwrap();
        let hot: Vec<Observation> = observations.iter().take(100).cloned().collect();
        for o in &hot {
            a.analyze(o, &mut out);
        }
        let hot = &hot;
        let stream: Vec<Observation> = observations
            .iter()
            .skip(100)
            .enumerate()
            .flat_map(|(i, o)| {
                std::iter::once(o.clone())
                    .chain((0..9).map(move |k| hot[(i * 9 + k) % 100].clone()))
            })
            .collect();
        let t = Instant::now();
        for o in &stream {
            a.analyze(o, &mut out);
        }
        let mixed = per_s(stream.len(), t.elapsed());
        println!(
            "| {name} | {raw:.0} | {uncached:.0} | {:.2}x | {cached:.0} | {mixed:.0} |",
            uncached / raw
        );
    }
    if only.is_empty() || only.iter().any(|o| o.eq_ignore_ascii_case("flood")) {
        forged_flood(
            &rsa_pub,
            &DecodingKey::from_rsa_pem(&std::fs::read(&rsa_pub).unwrap()).unwrap(),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A flood of unique forged RS256 tokens (valid structure, random
/// signatures) for two seconds of analysis: with the default verification
/// budget and without one, next to raw verification in the same run.
fn forged_flood(public: &std::path::Path, dec: &DecodingKey) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let token = |i: usize| {
        let c = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"iss":"https://auth.bench","sub":"forged{i}","iat":{},"exp":{}}}"#,
            now - 10,
            now + 3600
        ));
        let sig: Vec<u8> = (0..256).map(|k| (i.wrapping_mul(31) ^ k) as u8).collect();
        format!("{h}.{c}.{}", URL_SAFE_NO_PAD.encode(sig))
    };
    let n = 200_000;
    let toks: Vec<String> = (0..n).map(token).collect();
    let observations: Vec<Observation> = toks.iter().enumerate().map(|(i, t)| obs(t, i)).collect();
    let t = Instant::now();
    let mut raw = 0;
    while t.elapsed() < Duration::from_millis(500) {
        let (input, sig) = toks[raw % n].rsplit_once('.').unwrap();
        assert!(!crypto::verify(sig, input.as_bytes(), dec, Algorithm::RS256).unwrap_or(false));
        raw += 1;
    }
    let raw = per_s(raw, t.elapsed());
    println!();
    println!("flood of unique forged RS256 tokens, 2 s of analysis each (raw verify: {raw:.0}/s)");
    println!();
    println!(
        "| verify_budget | analyses/s | vs raw verify | verified | skipped (key-free checks only) |"
    );
    println!("|---|---:|---:|---:|---:|");
    for budget in [Duration::from_millis(500), Duration::ZERO] {
        let cfg = JwtConfig {
            issuers: vec![IssuerConfig {
                public_key_files: vec![public.to_path_buf()],
                ..Default::default()
            }],
            verify_budget: budget,
            weak_secret_queue: 1,
            ..JwtConfig::default()
        };
        let mut a = JwtAnalyzer::new(&cfg).unwrap();
        let mut out = Vec::new();
        let t = Instant::now();
        let mut done = 0;
        while t.elapsed() < Duration::from_secs(2) && done < n {
            for o in &observations[done..(done + 1000).min(n)] {
                a.analyze(o, &mut out);
            }
            done = (done + 1000).min(n);
            out.clear();
        }
        let rate = per_s(done, t.elapsed());
        let label = if budget.is_zero() {
            "0s (no limit)".to_string()
        } else {
            format!("{} ms", budget.as_millis())
        };
        println!(
            "| {label} | {rate:.0} | {:.2}x | {} | {} |",
            rate / raw,
            a.stats.cache_misses - a.stats.verify_skipped,
            a.stats.verify_skipped
        );
    }
}
