//! Detection depth through the command line, on generated captures of a
//! banking API (no root needed):
//! 1. `jwtmon schema learn` learns the API from legitimate traffic, and
//!    `jwtmon schema show` prints it;
//! 2. with that model, more legitimate traffic, including the shapes that
//!    used to be blocked (an office NAT whose users mistype, a partner's
//!    batch lookups, binary uploads, free text mentioning `../`, an
//!    incremental consent), raises nothing but one low finding;
//! 3. the same traffic with one attack per address finds every attacker:
//!    parameter tampering, header-borne, double-encoded and comment-split
//!    SQLi, `alg: none` in a cookie, with the `JWT` scheme and with no
//!    scheme, a scan spread over one /24, an id walk (BOLA), low and slow
//!    brute force, credential stuffing spread over 40 addresses, a leaked
//!    API key used from eight networks, API-key guessing, and a revoked
//!    key used again.

use std::{collections::BTreeMap, path::Path, process::Command, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, crypto::sign};
use jwtmon_tests::{
    daemon::{analyze_lines, jwtmon_bin},
    pcapgen::{Conn, Exchange, Link, frames, write},
};
use serde_json::{Value, json};

/// 2020-09-13T12:26:40Z.
const START: u64 = 1_600_000_000;
const SECRET: &[u8] = b"schema-test-secret-5a9e61c07d3b2f48";
const SERVER: &str = "10.99.0.1:8080";

fn b64(v: &str) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

fn hs(claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(&claims.to_string())
    );
    let sig = sign(
        input.as_bytes(),
        &EncodingKey::from_secret(SECRET),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{input}.{sig}")
}

fn none_token() -> String {
    let claims =
        json!({"iss": "https://auth.bank", "sub": "mallory", "iat": START, "exp": START + 3600});
    format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&claims.to_string())
    )
}

fn status_line(status: u16) -> &'static str {
    match status {
        200 => "200 OK",
        401 => "401 Unauthorized",
        403 => "403 Forbidden",
        _ => "404 Not Found",
    }
}

/// One request (raw head lines after the request line, and a body) and
/// its answer.
fn ex(method: &str, target: &str, headers: &[String], body: &[u8], status: u16) -> Exchange {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: bank.example\r\n");
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("user-agent:"))
    {
        req.push_str("User-Agent: bank-app/3.2\r\n");
    }
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut request = req.into_bytes();
    request.extend_from_slice(body);
    Exchange {
        request,
        response: format!(
            "HTTP/1.1 {}\r\nContent-Length: 2\r\n\r\nok",
            status_line(status)
        )
        .into_bytes(),
    }
}

fn json_post(path: &str, body: &Value, status: u16) -> Exchange {
    ex(
        "POST",
        path,
        &["Content-Type: application/json".into()],
        body.to_string().as_bytes(),
        status,
    )
}

fn login(user: &str, ok: bool) -> Exchange {
    json_post(
        "/api/login",
        &json!({"username": user, "password": "pw"}),
        if ok { 200 } else { 401 },
    )
}

/// Connections, each starting at its own offset (ms from START).
#[derive(Default)]
struct Traffic {
    conns: Vec<(u64, Conn)>,
}

impl Traffic {
    fn add(&mut self, at_ms: u64, ip: &str, exchanges: Vec<Exchange>) {
        let port = 20_000 + self.conns.len() as u16;
        self.conns.push((
            at_ms,
            Conn {
                client: format!("{ip}:{port}").parse().unwrap(),
                server: SERVER.parse().unwrap(),
                exchanges,
                mss: 1400,
                reorder: false,
                retransmit: false,
            },
        ));
    }

    fn write(&self, path: &Path) {
        let mut all = Vec::new();
        for (at, c) in &self.conns {
            all.extend(frames(
                Link::Ethernet,
                std::slice::from_ref(c),
                Duration::from_secs(START) + Duration::from_millis(*at),
            ));
        }
        all.sort_by_key(|(t, _)| *t);
        write(path, Link::Ethernet, &all, false).unwrap();
    }
}

const MEMOS: [&str; 6] = [
    "rent for march",
    "Lunch at O'Brien's, thanks!",
    "see ../terms for the conditions",
    "gift (birthday) - love, mum",
    "invoice 2020-114; paid in full",
    "split: 50/50 as agreed",
];
const SEARCHES: [&str; 5] = [
    "red shoes size 42",
    "what's new?",
    "path ../ explained",
    "garden chairs & tables",
    "union jack mug",
];

/// Legitimate traffic of `clients` customers, round `round`.
fn legit(t: &mut Traffic, round: u64, clients: u64, at_ms: u64) {
    for c in 0..clients {
        let ip = format!("198.51.100.{}", c + 1);
        let mut x = Vec::new();
        for k in 0..4u64 {
            let sort = if (c + k) % 2 == 0 { "asc" } else { "desc" };
            x.push(ex(
                "GET",
                &format!(
                    "/api/v1/accounts/{}/transactions?limit={}&sort={sort}",
                    1000 + c,
                    10 + (c * 7 + k + round) % 40
                ),
                &[],
                b"",
                200,
            ));
            let memo = MEMOS[((c + k + round) % 6) as usize];
            x.push(json_post(
                "/api/v1/transfers",
                &json!({"amount": 5 + (c * 31 + k * 17 + round) % 900, "to": format!("acct_{}", 2000 + (c + k) % 50),
                        "currency": if k % 3 == 0 { "USD" } else { "EUR" }, "memo": memo}),
                200,
            ));
        }
        for k in 0..2u64 {
            let q = SEARCHES[((c + k + round) % 5) as usize];
            let q: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
            x.push(ex("GET", &format!("/api/v1/search?q={q}"), &[], b"", 200));
        }
        let mut photo = b"--b0undary\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nme at the beach\r\n--b0undary\r\n\
Content-Disposition: form-data; name=\"photo\"; filename=\"me.png\"\r\nContent-Type: image/png\r\n\r\n"
            .to_vec();
        photo.extend_from_slice(
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR;|`$(id)\x00' OR '1'='1\x00<script>\xff\xfe",
        );
        photo.extend_from_slice(b"\r\n--b0undary--\r\n");
        x.push(ex(
            "POST",
            "/api/v1/profile/photo",
            &["Content-Type: multipart/form-data; boundary=b0undary".into()],
            &photo,
            200,
        ));
        x.push(login(&format!("customer{c}"), true));
        t.add(at_ms + c * 997, &ip, x);
    }
}

/// The benign shapes that used to raise findings.
fn benign_shapes(t: &mut Traffic, at_ms: u64) {
    // An office NAT: 20 employees log in, 6 mistype once first.
    let mut nat = Vec::new();
    for u in 0..20 {
        if u % 3 == 0 && u < 18 {
            nat.push(login(&format!("employee{u}"), false));
        }
        nat.push(login(&format!("employee{u}"), true));
    }
    t.add(at_ms, "192.0.2.200", nat);
    // A partner's batch lookups: many misses on one id-bearing template.
    let lookups = (0..60u64)
        .map(|i| {
            ex(
                "GET",
                &format!("/api/v1/accounts/{}", 500_000 + i * 13),
                &[],
                b"",
                if i % 4 == 0 { 200 } else { 404 },
            )
        })
        .collect();
    t.add(at_ms + 500, "198.51.100.250", lookups);
    // Incremental consent: a verified token, then a new one issued later
    // with a wider scope.
    let narrow = hs(
        &json!({"iss": "https://auth.bank", "sub": "erin", "scope": "read", "iat": START - 60, "exp": START + 7200}),
    );
    let wide = hs(
        &json!({"iss": "https://auth.bank", "sub": "erin", "scope": "read write", "iat": START + 300, "exp": START + 7200}),
    );
    let read = |tok: &str| {
        ex(
            "GET",
            "/api/v1/me",
            &[format!("Authorization: Bearer {tok}")],
            b"",
            200,
        )
    };
    t.add(
        at_ms + 1_000,
        "198.51.100.240",
        vec![read(&narrow), read(&narrow)],
    );
    t.add(
        at_ms + 400_000,
        "198.51.100.240",
        vec![read(&wide), read(&wide)],
    );
}

/// One attack per address (or per group of addresses); returns who is
/// expected with which kinds.
fn attacks(t: &mut Traffic, at_ms: u64) -> BTreeMap<String, Vec<&'static str>> {
    let mut want: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    let mut one = |t: &mut Traffic, n: u8, kinds: &[&'static str], x: Vec<Exchange>| {
        let ip = format!("203.0.113.{n}");
        t.add(at_ms + u64::from(n) * 1_000, &ip, x);
        want.insert(ip, kinds.to_vec());
    };
    let tx = |q: &str| {
        ex(
            "GET",
            &format!("/api/v1/accounts/1003/transactions?{q}"),
            &[],
            b"",
            200,
        )
    };
    one(
        t,
        1,
        &["schema_unknown_parameter"],
        vec![tx("limit=10&sort=asc&debug=true")],
    );
    one(
        t,
        2,
        &["schema_type_mismatch"],
        vec![tx("limit=ten&sort=asc")],
    );
    let transfer = |v: Value| json_post("/api/v1/transfers", &v, 200);
    one(
        t,
        3,
        &["schema_type_mismatch", "injection_sqli"],
        vec![transfer(
            json!({"amount": 5, "to": {"$ne": null}, "currency": "EUR", "memo": "x"}),
        )],
    );
    one(
        t,
        4,
        &["schema_value_anomalous", "injection_crlf", "injection_mail"],
        vec![transfer(
            json!({"amount": 5, "to": "acct_2001", "currency": "EUR", "memo": "ok\r\nBcc: everyone@bank.example"}),
        )],
    );
    one(
        t,
        5,
        &["schema_value_anomalous"],
        vec![transfer(
            json!({"amount": -25000, "to": "acct_2001", "currency": "EUR", "memo": "refund"}),
        )],
    );
    let search = |q: &str, h: &[String]| ex("GET", &format!("/api/v1/search?q={q}"), h, b"", 200);
    one(
        t,
        6,
        &["injection_sqli"],
        vec![search("shoes", &["User-Agent: ' OR 1=1-- ".into()])],
    );
    one(
        t,
        7,
        &["injection_sqli"],
        vec![search("%2527%2520OR%25201%253D1%2520--%2520", &[])],
    );
    one(
        t,
        8,
        &["injection_sqli"],
        vec![search(
            "1%27%20UN/**/ION%20SEL/**/ECT%20password%20FROM%20users--",
            &[],
        )],
    );
    let none = none_token();
    one(
        t,
        9,
        &["jwt_alg_none"],
        vec![ex(
            "GET",
            "/api/v1/me",
            &[format!("Cookie: session={none}")],
            b"",
            200,
        )],
    );
    one(
        t,
        10,
        &["jwt_alg_none"],
        vec![ex(
            "GET",
            "/api/v1/me",
            &[format!("Authorization: JWT {none}")],
            b"",
            200,
        )],
    );
    one(
        t,
        11,
        &["jwt_alg_none"],
        vec![ex(
            "GET",
            "/api/v1/me",
            &[format!("Authorization: {none}")],
            b"",
            200,
        )],
    );
    // An id walk over the customers' accounts, which the API serves.
    let walk = (0..25u64)
        .map(|c| {
            ex(
                "GET",
                &format!(
                    "/api/v1/accounts/{}/transactions?limit=10&sort=asc",
                    1000 + c
                ),
                &[],
                b"",
                200,
            )
        })
        .collect();
    one(t, 13, &["object_enumeration"], walk);
    // API-key guessing, and a revoked key used again.
    let guesses = (0..8)
        .map(|i| {
            ex(
                "GET",
                &format!("/api/v1/me?api_key=sk_guess_{i}"),
                &[],
                b"",
                401,
            )
        })
        .collect();
    one(t, 15, &["api_key_guessing"], guesses);
    one(
        t,
        16,
        &["api_key_revoked"],
        vec![ex(
            "GET",
            "/api/v1/me",
            &["Api-Key: sk_revoked_77".into()],
            b"",
            200,
        )],
    );
    // A web shell sent as a profile photo: labelled and named as an image,
    // its bytes are PHP text.
    let mut shell = b"--b0undary\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"me.png\"\r\nContent-Type: image/png\r\n\r\n".to_vec();
    shell.extend_from_slice(b"GIF89a;<?php system($_GET['c']); ?>\r\n--b0undary--\r\n");
    one(
        t,
        17,
        &["injection_php"],
        vec![ex(
            "POST",
            "/api/v1/profile/photo",
            &["Content-Type: multipart/form-data; boundary=b0undary".into()],
            &shell,
            200,
        )],
    );
    // A server configuration file uploaded through an upload API's name
    // header, spelled the way Windows stores it.
    one(
        t,
        18,
        &["upload_restricted_file"],
        vec![ex(
            "PUT",
            "/api/v1/documents",
            &[
                "X-File-Name: .htaccess. ".into(),
                "Content-Type: application/octet-stream".into(),
            ],
            b"AddType application/x-httpd-php .png",
            200,
        )],
    );
    // Low and slow: one failed login every 25 s for 35 minutes.
    for i in 0..84u64 {
        t.add(i * 25_000, "203.0.113.14", vec![login("treasurer", false)]);
    }
    want.insert(
        "203.0.113.14".into(),
        vec!["login_bruteforce", "login_campaign"],
    );
    // A scan spread over 203.0.114.0/24: six addresses, five misses each.
    for a in 0..6u64 {
        let x = ["admin", "backup", "old", "test", "dev"]
            .iter()
            .map(|p| ex("GET", &format!("/{p}{a}/"), &[], b"", 404))
            .collect();
        let ip = format!("203.0.114.{}", a + 20);
        t.add(at_ms + 30_000 + a * 500, &ip, x);
        want.insert(ip, vec!["endpoint_scan"]);
    }
    // API keys: a leaked key from eight networks (the sixth crosses the
    // threshold), guessing, and a revoked key.
    for i in 0..8u64 {
        let ip = format!("203.0.{}.5", 120 + i);
        let x = vec![ex(
            "GET",
            "/api/v1/me",
            &["X-API-Key: sk_live_leaked_4f1".into()],
            b"",
            200,
        )];
        t.add(at_ms + 200_000 + i * 2_000, &ip, x);
    }
    want.insert("203.0.125.5".into(), vec!["api_key_shared"]);
    // Credential stuffing over 40 addresses in 40 networks, two tries
    // each, within three minutes.
    for round in 0..2u64 {
        for a in 0..40u64 {
            let ip = format!("10.{}.7.9", a + 1);
            t.add(
                at_ms + 60_000 + round * 80_000 + a * 1_000,
                &ip,
                vec![login(&format!("victim{}", a * 2 + round), false)],
            );
            want.insert(ip, vec!["login_campaign"]);
        }
    }
    want
}

fn config(dir: &Path, model: Option<&Path>) -> std::path::PathBuf {
    let secret = dir.join("hs.secret");
    std::fs::write(&secret, SECRET).unwrap();
    // The revoked key is listed by its id only.
    let revoked = dir.join("revoked.txt");
    std::fs::write(
        &revoked,
        format!(
            "token_id {}\n",
            jwtmon::parse::http::token_id("sk_revoked_77")
        ),
    )
    .unwrap();
    let mut text = format!(
        "[jwt]\nrevocation_file = \"{}\"\n\n[[jwt.issuers]]\nissuer = \"https://auth.bank\"\nalgorithms = [\"HS256\"]\nhmac_secret_file = \"{}\"\n",
        revoked.display(),
        secret.display()
    );
    if let Some(m) = model {
        text.push_str(&format!(
            "\n[detect.schema]\nlearned = \"{}\"\n",
            m.display()
        ));
    }
    let path = dir.join(if model.is_some() {
        "judge.toml"
    } else {
        "learn.toml"
    });
    std::fs::write(&path, text).unwrap();
    path
}

fn findings(cfg: &Path, pcap: &Path) -> Vec<Value> {
    analyze_lines(&["--config", cfg.to_str().unwrap()], pcap, &[])
}

#[test]
fn learnt_schema_keeps_legitimate_traffic_quiet_and_finds_every_attacker() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // 1. Learn.
    let mut learn = Traffic::default();
    for round in 0..3 {
        legit(&mut learn, round, 25, round * 300_000);
    }
    let learn_pcap = dir.join("learn.pcap");
    learn.write(&learn_pcap);
    let model = dir.join("model.json");
    let learn_cfg = config(dir, None);
    let out = Command::new(jwtmon_bin())
        .args([
            "--config",
            learn_cfg.to_str().unwrap(),
            "schema",
            "learn",
            "--pcap",
        ])
        .arg(&learn_pcap)
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = Command::new(jwtmon_bin())
        .args(["schema", "show"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(show.status.success());
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains("POST /api/v1/transfers  [judging"), "{show}");
    assert!(
        show.lines()
            .any(|l| l.contains("body amount") && l.contains("integer")),
        "{show}"
    );
    assert!(
        show.lines()
            .any(|l| l.contains("query sort") && l.contains("alpha")),
        "{show}"
    );
    // No value is stored: not a memo, not a search, not a username.
    let stored = std::fs::read_to_string(&model).unwrap();
    for v in ["O'Brien", "red shoes", "customer3", "acct_20", "beach"] {
        assert!(!stored.contains(v), "{v} stored in the model");
    }
    let judge = config(dir, Some(&model));

    // 2. More legitimate traffic, with the benign shapes.
    let mut benign = Traffic::default();
    legit(&mut benign, 7, 25, 0);
    legit(&mut benign, 8, 25, 600_000);
    benign_shapes(&mut benign, 100_000);
    let benign_pcap = dir.join("benign.pcap");
    benign.write(&benign_pcap);
    let f = findings(&judge, &benign_pcap);
    let loud: Vec<&Value> = f.iter().filter(|v| v["severity"] != "low").collect();
    assert!(loud.is_empty(), "benign traffic raised: {loud:#?}");
    let consent: Vec<&Value> = f
        .iter()
        .filter(|v| v["kind"] == "jwt_claims_escalation")
        .collect();
    assert_eq!(consent.len(), 1, "{f:#?}");
    assert_eq!(consent[0]["detail"]["reissued"], true);

    // 3. The same traffic with attacks.
    let mut mixed = Traffic::default();
    legit(&mut mixed, 7, 25, 0);
    legit(&mut mixed, 8, 25, 600_000);
    let want = attacks(&mut mixed, 300_000);
    let mixed_pcap = dir.join("attacks.pcap");
    mixed.write(&mixed_pcap);
    let f = findings(&judge, &mixed_pcap);
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for v in &f {
        got.entry(v["src_ip"].as_str().unwrap().to_string())
            .or_default()
            .push(v["kind"].as_str().unwrap().to_string());
    }
    let mut missed = Vec::new();
    for (ip, kinds) in &want {
        let seen = got.get(ip).cloned().unwrap_or_default();
        if !kinds.iter().any(|k| seen.iter().any(|s| s == k)) {
            missed.push(format!("{ip}: want one of {kinds:?}, got {seen:?}"));
        }
    }
    assert!(
        missed.is_empty(),
        "missed attackers:\n{}",
        missed.join("\n")
    );
    // Nobody else was named.
    let framed: Vec<(&String, &Vec<String>)> = got
        .iter()
        .filter(|(ip, _)| !want.contains_key(*ip))
        .collect();
    assert!(
        framed.is_empty(),
        "findings about legitimate clients: {framed:?}"
    );
    // Evidence never quotes a body value or the raw token.
    let text = f.iter().map(Value::to_string).collect::<String>();
    assert!(!text.contains("everyone@bank") && !text.contains(&none_token()[..40]));
}
