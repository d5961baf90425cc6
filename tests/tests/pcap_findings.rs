//! JWT analysis end to end through a capture file: a generated pcap with
//! clean and attacking tokens from several clients gives exactly the
//! expected findings, judged at the packet times (2020), and no raw token
//! appears in the output. No root needed.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, crypto::sign};
use jwtmon_tests::{
    daemon::analyze_pcap,
    pcapgen::{Conn, Exchange, Link, frames, write},
};
use serde_json::{Value, json};

/// 2020-09-13T12:26:40Z.
const START: u64 = 1_600_000_000;
const SECRET: &[u8] = b"pcap-test-secret-7c1d9e04b2a65f38";

fn b64(v: &str) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

fn hs(header: Value, claims: Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(&header.to_string()), b64(&claims.to_string()));
    let sig = sign(
        input.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{input}.{sig}")
}

fn claims(sub: &str) -> Value {
    json!({"iss": "https://auth.pcap", "sub": sub, "iat": START - 60, "exp": START + 3600})
}

fn request(path: &str, token: &str) -> Exchange {
    Exchange {
        request: format!(
            "GET {path} HTTP/1.1\r\nHost: api\r\nUser-Agent: app/1\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        .into_bytes(),
        response: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
    }
}

#[test]
fn capture_with_attacks_gives_exactly_the_expected_findings() {
    let clean = hs(json!({"alg": "HS256"}), claims("alice"), SECRET);
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none"}"#),
        b64(&claims("mallory").to_string())
    );
    let forged = hs(
        json!({"alg": "HS256"}),
        claims("bob"),
        b"guessed-wrong-secret-000000000",
    );
    let weak = hs(json!({"alg": "HS256"}), claims("carol"), b"secret");
    let mut expired_claims = claims("dave");
    expired_claims["exp"] = json!(START - 600);
    expired_claims["iat"] = json!(START - 4000);
    let expired = hs(json!({"alg": "HS256"}), expired_claims, SECRET);
    let traversal = hs(
        json!({"alg": "HS256", "kid": "../../dev/null"}),
        claims("erin"),
        SECRET,
    );
    // Client 10: clean traffic only (5 requests). Others: one attack each.
    let conns: Vec<(u8, Vec<Exchange>)> = vec![
        (
            10,
            (0..5)
                .map(|i| request(&format!("/api/accounts/{i}"), &clean))
                .collect(),
        ),
        (11, vec![request("/api/admin", &none)]),
        (12, vec![request("/api/accounts/7", &forged)]),
        (13, vec![request("/api/profile", &weak)]),
        (14, vec![request("/api/profile", &expired)]),
        (15, vec![request("/api/profile", &traversal)]),
    ];
    let conns: Vec<Conn> = conns
        .into_iter()
        .enumerate()
        .map(|(i, (host, exchanges))| Conn {
            client: format!("192.0.2.{host}:{}", 41000 + i).parse().unwrap(),
            server: "198.51.100.1:8080".parse().unwrap(),
            exchanges,
            mss: 1400,
            reorder: i % 2 == 1,
            retransmit: i % 3 == 2,
        })
        .collect();
    let dir = tempfile_dir();
    let pcap = dir.join("attacks.pcap");
    write(
        &pcap,
        Link::Ethernet,
        &frames(Link::Ethernet, &conns, Duration::from_secs(START)),
        false,
    )
    .unwrap();
    let secret_file = dir.join("hs.secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let cfg = dir.join("jwtmon.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[jwt.issuers]]\nissuer = \"https://auth.pcap\"\nalgorithms = [\"HS256\"]\nhmac_secret_file = \"{}\"\n",
            secret_file.display()
        ),
    )
    .unwrap();
    let out = analyze_pcap(&["--config", cfg.to_str().unwrap()], &pcap, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut got: Vec<(String, String)> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            assert!(v["time"].as_str().unwrap().starts_with("2020-09-13"), "{v}");
            (
                v["src_ip"].as_str().unwrap().to_string(),
                v["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> = [
        ("192.0.2.11", "jwt_alg_none"),
        ("192.0.2.12", "jwt_signature_invalid"),
        ("192.0.2.13", "jwt_signature_invalid"),
        ("192.0.2.13", "jwt_weak_secret"),
        ("192.0.2.14", "jwt_expired"),
        ("192.0.2.15", "jwt_kid_injection"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want, "{text}");
    for tok in [&clean, &none, &forged, &weak, &expired, &traversal] {
        assert!(!text.contains(tok.as_str()), "a raw token leaked");
        let sig = tok.rsplit('.').next().unwrap();
        assert!(sig.is_empty() || !text.contains(sig));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("jwtmon-pcapf-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
