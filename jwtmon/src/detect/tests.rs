//! The detectors through [`Detectors::observe`], on synthetic
//! observations with explicit times.

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::{Detectors, TokenFacts, config::DetectConfig};
use crate::{
    finding::Finding,
    observe::Observation,
    parse::{Credentials, Request},
};

pub(super) fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
}

pub(crate) fn obs(
    ip: &str,
    method: &str,
    path: &str,
    body: &str,
    status: u16,
    t: u64,
) -> Observation {
    let client: IpAddr = ip.parse().unwrap();
    Observation {
        time: at(t),
        src: SocketAddr::new(client, 40000),
        dst: "10.0.0.1:8080".parse().unwrap(),
        client_ip: client,
        attributed: true,
        request: Request {
            method: method.into(),
            path: path.into(),
            content_type: Some("application/json".into()),
            body: body.as_bytes().to_vec(),
            ..Request::default()
        },
        status: Some(status),
        latency: None,
        unanswered: false,
        transport: crate::capture::Transport::Tcp,
    }
}

pub(super) fn login(ip: &str, user: &str, ok: bool, t: u64) -> Observation {
    let body = format!(r#"{{"username":"{user}","password":"x"}}"#);
    obs(
        ip,
        "POST",
        "/api/login",
        &body,
        if ok { 200 } else { 401 },
        t,
    )
}

pub(super) fn run(d: &mut Detectors, o: &[Observation]) -> Vec<Finding> {
    let mut out = Vec::new();
    for o in o {
        d.observe(o, &TokenFacts::default(), &mut out);
    }
    out
}

fn kinds(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|f| f.kind.name()).collect()
}

#[test]
fn brute_force_fires_once_and_typos_never() {
    let mut d = Detectors::new(&DetectConfig::default()).unwrap();
    let typos = [
        login("10.0.0.9", "alice", false, 0),
        login("10.0.0.9", "alice", false, 1000),
        login("10.0.0.9", "alice", true, 2000),
    ];
    assert!(run(&mut d, &typos).is_empty());
    let attack: Vec<Observation> = (0..30)
        .map(|i| login("10.0.0.2", "admin", false, 100 * i))
        .collect();
    let f = run(&mut d, &attack);
    assert_eq!(kinds(&f), ["login_bruteforce"]);
    assert_eq!(f[0].detail["failures"], 11);
    assert_eq!(f[0].detail["time_to_detect_ms"], 1000);
    // Ten failures spread over more than a minute are not brute force.
    let mut d = Detectors::new(&DetectConfig::default()).unwrap();
    let slow: Vec<Observation> = (0..20)
        .map(|i| login("10.0.0.3", "admin", false, 7_000 * i))
        .collect();
    assert!(run(&mut d, &slow).is_empty());
}

#[test]
fn credential_stuffing_both_shapes() {
    let mut d = Detectors::new(&DetectConfig::default()).unwrap();
    let many_users: Vec<Observation> = (0..6)
        .map(|i| login("10.0.0.2", &format!("user{i}"), false, i * 1000))
        .collect();
    let f = run(&mut d, &many_users);
    assert_eq!(kinds(&f), ["credential_stuffing"]);
    assert_eq!(f[0].detail["usernames"], 6);
    let many_ips: Vec<Observation> = (0..11)
        .map(|i| login(&format!("10.1.0.{i}"), "bob", false, 100_000 + i * 1000))
        .collect();
    let f = run(&mut d, &many_ips);
    assert_eq!(kinds(&f), ["credential_stuffing"]);
    assert_eq!(f[0].detail["addresses"], 11);
    assert_eq!(f[0].src_ip.to_string(), "10.1.0.10");
}

#[test]
fn endpoint_scan_counts_distinct_missing_paths() {
    let mut d = Detectors::new(&DetectConfig::default()).unwrap();
    // The same missing path again and again is not a scan.
    let same: Vec<Observation> = (0..50)
        .map(|i| obs("10.0.0.2", "GET", "/favicon.ico", "", 404, i * 100))
        .collect();
    assert!(run(&mut d, &same).is_empty());
    let scan: Vec<Observation> = (0..25)
        .map(|i| {
            obs(
                "10.0.0.3",
                "GET",
                &format!("/admin{i}.php"),
                "",
                404,
                i * 100,
            )
        })
        .collect();
    assert_eq!(kinds(&run(&mut d, &scan)), ["endpoint_scan"]);
}

#[test]
fn injections_are_found_and_bodies_never_quoted() {
    let mut d = Detectors::new(&DetectConfig::default()).unwrap();
    let mut q = obs("10.0.0.2", "GET", "/search", "", 200, 0);
    q.request.query = Some("q=1%27%20UNION%20SELECT%20password%20FROM%20users--".into());
    let f = run(&mut d, &[q]);
    assert_eq!(kinds(&f), ["injection_sqli"]);
    assert_eq!(f[0].detail["place"], "query");
    assert!(f[0].detail["sample"].as_str().unwrap().contains("UNION"));
    let b = obs(
        "10.0.0.2",
        "POST",
        "/api/login",
        r#"{"username":"admin'--","password":"hunter2"}"#,
        401,
        0,
    );
    let f = run(&mut d, &[b]);
    assert_eq!(kinds(&f), ["injection_sqli"]);
    assert_eq!(f[0].detail["place"], "body");
    assert!(f[0].detail.get("sample").is_none());
    let t = obs(
        "10.0.0.2",
        "GET",
        "/static/..%2F..%2Fetc%2Fpasswd",
        "",
        404,
        0,
    );
    assert_eq!(kinds(&run(&mut d, &[t])), ["injection_path_traversal"]);
    // Comment-split keywords, double encoding, a header: the same SQLi.
    for (query, ua) in [
        (
            "q=1%20UN/**/ION%20SEL/**/ECT%20password%20FROM%20users",
            "curl/8",
        ),
        ("q=1%2527%2520OR%25201%253D1--", "curl/8"),
        ("q=tea", "x' UNION SELECT password FROM users--"),
    ] {
        let mut o = obs("10.0.0.3", "GET", "/search", "", 200, 0);
        o.request.query = Some(query.into());
        o.request.user_agent = Some(ua.into());
        assert_eq!(
            kinds(&run(&mut d, &[o])),
            ["injection_sqli"],
            "{query} / {ua}"
        );
    }
    let clean = obs("10.0.0.2", "GET", "/api/v1/accounts/42/balance", "", 200, 0);
    assert!(run(&mut d, &[clean]).is_empty());
}

#[test]
fn token_rate_spike_and_token_id() {
    let cfg = DetectConfig {
        rate: super::config::RateConfig {
            ceiling_per_s: 10,
            ..Default::default()
        },
        ..DetectConfig::default()
    };
    let mut d = Detectors::new(&cfg).unwrap();
    let mut out = Vec::new();
    for i in 0..150u64 {
        // Many addresses, one token: only the token spikes.
        let mut o = obs(
            &format!("10.2.{}.{}", i / 200, i % 200),
            "GET",
            "/x",
            "",
            200,
            i * 10,
        );
        o.request.credentials = Some(Credentials::new("Bearer opaque-token-1"));
        d.observe(&o, &TokenFacts::default(), &mut out);
    }
    assert_eq!(kinds(&out), ["rate_spike_token"]);
    assert_eq!(out[0].detail["trigger"], "ceiling");
    assert_eq!(out[0].token_id.as_ref().map(String::len), Some(16));
}
