//! `cargo xtask bench-pipeline [--threads N]`: the whole userspace
//! pipeline (parse + pair, JWT analysis, every behaviour detector, the
//! sequence engine, decisions and the JSON line of each finding) on a
//! generated mixed stream, with one analysis thread and with N (default:
//! the CPUs), next to parse + pair alone on the same stream in the same
//! run. The findings must be the same for both. The stream:
//! 5,000 clients, each with its own HS256 token, for 2,000 subjects (70% balance reads,
//! 10% transfers with JSON bodies, 5% logins mostly failing, 6% searches
//! with some SQLi/XSS, 4% 404s, 2% alg-none tokens, 3% anonymous health
//! checks), one request every 3 µs of stream time.

use std::{
    hint::black_box,
    io::Write,
    net::SocketAddr,
    time::{Duration, Instant, SystemTime},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, crypto};
use jwtmon::{
    capture::config::CaptureConfig,
    capture::{Direction, Segment},
    config::Config,
    engine::{self, Use},
    jwt::config::{IssuerConfig, JwtConfig},
    observe::{Observation, Observer},
};

/// The allocator the daemon uses.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const N: usize = 1_000_000;
const CLIENTS: usize = 5_000;
const SUBJECTS: usize = 2_000;
const BATCH: usize = 256;

fn token(key: &EncodingKey, header: &str, jti: usize, sub: usize, now: u64) -> String {
    let h = URL_SAFE_NO_PAD.encode(header);
    let c = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"iss":"https://auth.bench","sub":"user{sub}","aud":"api","iat":{},"exp":{},"jti":"j{jti}"}}"#,
        now - 10,
        now + 7200
    ));
    let input = format!("{h}.{c}");
    let sig = crypto::sign(input.as_bytes(), key, Algorithm::HS256).unwrap();
    format!("{input}.{sig}")
}

/// Request bytes and response status for stream position `i`.
fn request(i: usize, tokens: &[String], none: &str) -> (Vec<u8>, u16) {
    let client = i.wrapping_mul(2_654_435_761) % CLIENTS;
    let tok = &tokens[client];
    let head = |method: &str, path: &str, auth: &str, body: &str| {
        let auth = if auth.is_empty() {
            String::new()
        } else {
            format!("Authorization: Bearer {auth}\r\n")
        };
        format!(
            "{method} {path} HTTP/1.1\r\nHost: api.bank.example\r\nUser-Agent: app/3.2 (Android 14)\r\n\
             Accept: application/json\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    match i % 100 {
        0..70 => (
            head(
                "GET",
                &format!("/api/v1/accounts/{client}/balance"),
                tok,
                "",
            ),
            200,
        ),
        70..80 => (
            head(
                "POST",
                "/api/v1/transfers",
                tok,
                r#"{"to":"NL91ABNA0417164300","amount":125.50,"note":"rent for March"}"#,
            ),
            200,
        ),
        80..85 => (
            head(
                "POST",
                "/login",
                "",
                &format!(
                    r#"{{"username":"user{}","password":"guess{i}"}}"#,
                    client % 50
                ),
            ),
            if i % 100 == 84 { 200 } else { 401 },
        ),
        85..89 => (
            head("GET", "/api/v1/products?q=red%20shoes&sort=price", tok, ""),
            200,
        ),
        89 => (
            head("GET", "/api/v1/products?q=1'%20OR%20'1'='1", tok, ""),
            200,
        ),
        90 => (
            head(
                "GET",
                "/api/v1/products?q=%3Cscript%3Ealert(1)%3C/script%3E",
                tok,
                "",
            ),
            200,
        ),
        91..95 => (head("GET", &format!("/backup/{i}.zip"), "", ""), 404),
        95..97 => (head("GET", "/api/v1/admin/users", none, ""), 401),
        _ => (head("GET", "/health", "", ""), 200),
    }
}

fn segments(i: usize, req: &[u8], status: u16, t: SystemTime) -> [Segment; 2] {
    let client = i.wrapping_mul(2_654_435_761) % CLIENTS;
    let src: SocketAddr = format!(
        "10.{}.{}.{}:{}",
        client / 62500 + 1,
        (client / 250) % 250,
        client % 250 + 1,
        40000 + i % 20000
    )
    .parse()
    .unwrap();
    let dst: SocketAddr = "10.0.0.1:8080".parse().unwrap();
    let resp = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok").into_bytes();
    let len = req.len() as u32;
    [
        Segment {
            dir: Direction::Request,
            time: t,
            src,
            dst,
            seq: 1,
            ack: 1,
            payload_len: len,
            data: req.to_vec(),
            transport: jwtmon::capture::Transport::Tcp,
        },
        Segment {
            dir: Direction::Response,
            time: t + Duration::from_micros(1),
            src: dst,
            dst: src,
            seq: 1,
            ack: 1 + len,
            payload_len: resp.len() as u32,
            data: resp,
            transport: jwtmon::capture::Transport::Tcp,
        },
    ]
}

/// Runs the whole pipeline over `stream`; returns the time it took and
/// the findings by kind.
fn full_pipeline(
    config: &Config,
    stream: &[[Segment; 2]],
) -> (Duration, std::collections::BTreeMap<&'static str, u64>) {
    let mut stages = engine::Engine::from_config(config, Use::Live).unwrap();
    let mut observer = Observer::new(&CaptureConfig::default());
    let mut findings = Vec::new();
    let mut by_kind = std::collections::BTreeMap::<&str, u64>::new();
    let mut sink = std::io::sink();
    let mut batch: Vec<Observation> = Vec::with_capacity(BATCH * 2);
    let t = Instant::now();
    for pair in stream.iter().cloned() {
        for seg in pair {
            observer.push(seg, &mut batch);
        }
        if batch.len() >= BATCH {
            stages.process(&batch, &mut findings);
            for f in &findings {
                let _ = writeln!(sink, "{}", f.to_json());
                *by_kind.entry(f.kind.name()).or_default() += 1;
            }
            findings.clear();
            batch.clear();
        }
    }
    stages.process(&batch, &mut findings);
    for f in &findings {
        *by_kind.entry(f.kind.name()).or_default() += 1;
    }
    (t.elapsed(), by_kind)
}

fn main() {
    let threads: usize = std::env::args()
        .skip_while(|a| a != "--threads")
        .nth(1)
        .map_or_else(
            || std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            |v| v.parse().expect("--threads N"),
        )
        .max(1);
    let dir = std::env::temp_dir().join(format!("jwtmon-bench-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = b"bench-secret-0123456789abcdef-0123456789".to_vec();
    std::fs::write(dir.join("hs.secret"), &secret).unwrap();
    let key = EncodingKey::from_secret(&secret);
    let now_s = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // One session token per client; a subject may have several clients.
    let tokens: Vec<String> = (0..CLIENTS)
        .map(|c| {
            token(
                &key,
                r#"{"alg":"HS256","typ":"JWT"}"#,
                c,
                c % SUBJECTS,
                now_s,
            )
        })
        .collect();
    let none = {
        let t = token(&key, r#"{"alg":"none","typ":"JWT"}"#, 0, 0, now_s);
        let (unsigned, _) = t.rsplit_once('.').unwrap();
        format!("{unsigned}.")
    };
    let start = SystemTime::now();
    // The stream, built before timing: 1,000 distinct shapes per kind cycle.
    let stream: Vec<[Segment; 2]> = (0..N)
        .map(|i| {
            let (req, status) = request(i, &tokens, &none);
            segments(i, &req, status, start + Duration::from_micros(3 * i as u64))
        })
        .collect();
    let avg = stream.iter().map(|s| s[0].data.len()).sum::<usize>() / N;

    // Baseline: parse + pair alone.
    let mut observer = Observer::new(&CaptureConfig::default());
    let mut batch = Vec::with_capacity(BATCH * 2);
    let t = Instant::now();
    for pair in stream.iter().cloned() {
        for seg in pair {
            observer.push(seg, &mut batch);
        }
        if batch.len() >= BATCH {
            black_box(&batch);
            batch.clear();
        }
    }
    let base_elapsed = t.elapsed();
    assert_eq!(observer.stats.paired as usize, N, "every request paired");

    // The whole pipeline, on one analysis thread and then on `threads`.
    let jwt = JwtConfig {
        issuers: vec![IssuerConfig {
            issuer: "https://auth.bench".into(),
            audiences: vec!["api".into()],
            hmac_secret_file: Some(dir.join("hs.secret")),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut config = Config {
        jwt,
        ..Config::default()
    };
    let mut runs = Vec::new();
    for n in [1, threads] {
        config.daemon.analysis_threads = n;
        runs.push((n, full_pipeline(&config, &stream)));
    }
    std::fs::remove_dir_all(&dir).ok();

    let base = N as f64 / base_elapsed.as_secs_f64();
    println!(
        "{N} requests of {avg} bytes on average, {CLIENTS} clients, {SUBJECTS} subjects (HS256)"
    );
    println!();
    println!("| stage | requests/s | vs. parse + pair |");
    println!("|---|---:|---:|");
    println!("| baseline: parse + pair (Observer), one core | {base:.0} | 1.00x |");
    for (n, (elapsed, _)) in &runs {
        let full = N as f64 / elapsed.as_secs_f64();
        println!(
            "| full pipeline: + JWT + all detectors + decisions + JSON, {n} analysis thread{} | {full:.0} | {:.2}x |",
            if *n == 1 { "" } else { "s" },
            full / base
        );
    }
    let one = runs[0].1.0.as_secs_f64();
    let all = runs[1].1.0.as_secs_f64();
    println!();
    println!(
        "--threads {threads} vs one thread: {:.2}x (goal >= 1.8x on 2 cores: {})",
        one / all,
        if one / all >= 1.8 { "met" } else { "NOT met" }
    );
    assert_eq!(
        runs[0].1.1, runs[1].1.1,
        "the same findings on any number of threads"
    );
    let full = N as f64 / one;
    let by_kind = &runs[0].1.1;
    println!();
    println!(
        "goal >= 300000 requests/s per core: {}",
        if full >= 300_000.0 { "met" } else { "NOT met" }
    );
    println!();
    println!("findings on the stream (proof the detectors did work):");
    for (kind, n) in by_kind {
        println!("  {kind}: {n}");
    }
}
