//! Per-subject profiles through [`Detectors::observe`]: learning periods,
//! each anomaly once, verified tokens only, GeoIP country changes with a
//! database built here, bounded state.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;

use super::{Detectors, TokenFacts, config::DetectConfig, tests::obs};
use crate::{
    finding::{Finding, Severity},
    observe::Observation,
};

/// Midnight UTC, 2023-11-14.
const DAY0: u64 = 1_699_920_000;

fn when(day: u64, hour: u64, min: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(DAY0 + day * 86_400 + hour * 3600 + min * 60)
}

fn call(ip: &str, method: &str, path: &str, t: SystemTime) -> Observation {
    let mut o = obs(ip, method, path, "", 200, 0);
    o.time = t;
    o
}

fn alice(verified: bool) -> TokenFacts {
    TokenFacts {
        subject: Some("alice".into()),
        verified,
        ..Default::default()
    }
}

/// Eight office days (09:00–17:00 UTC) from 10.1.1.0/24, two endpoints
/// twice an hour: 256 requests.
fn office_days(d: &mut Detectors, facts: &TokenFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    for day in 0..8 {
        for (hour, min) in (9..17).flat_map(|h| [(h, 5), (h, 35)]) {
            for (i, path) in ["/api/v1/accounts/17/balance", "/api/v1/transfers"]
                .iter()
                .enumerate()
            {
                let ip = format!("10.1.1.{}", 10 + i);
                d.observe(
                    &call(&ip, "GET", path, when(day, hour, min)),
                    facts,
                    &mut out,
                );
            }
        }
    }
    out
}

fn profile_kinds(f: &[Finding]) -> Vec<&'static str> {
    f.iter()
        .map(|f| f.kind.name())
        .filter(|k| {
            matches!(
                *k,
                "unusual_hour" | "new_network_for_subject" | "endpoint_unusual_for_subject"
            )
        })
        .collect()
}

fn observe(d: &mut Detectors, o: &Observation, facts: &TokenFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    d.observe(o, facts, &mut out);
    out
}

#[test]
fn learnt_habits_flag_each_anomaly_once() {
    let mut d = Detectors::new(&DetectConfig::default()).unwrap();
    assert!(profile_kinds(&office_days(&mut d, &alice(true))).is_empty());

    // Day 9, 14:00 from the usual network, usual endpoint: nothing.
    let usual = call(
        "10.1.1.10",
        "GET",
        "/api/v1/accounts/99/balance",
        when(9, 14, 0),
    );
    assert!(profile_kinds(&observe(&mut d, &usual, &alice(true))).is_empty());

    // 03:00 UTC is six hours from 09:00: unusual, once per hour.
    let night = call("10.1.1.10", "GET", "/api/v1/transfers", when(9, 3, 0));
    let f = observe(&mut d, &night, &alice(true));
    assert_eq!(profile_kinds(&f), ["unusual_hour"]);
    assert_eq!(f[0].detail["hour_utc"], 3);
    assert_eq!(f[0].detail["nearest_usual_hour_utc"], 9);
    assert_eq!(f[0].subject.as_deref(), Some("alice"));
    let again = call("10.1.1.10", "GET", "/api/v1/transfers", when(9, 3, 10));
    assert!(profile_kinds(&observe(&mut d, &again, &alice(true))).is_empty());
    // 06:00 is within three hours of 09:00.
    let early = call("10.1.1.10", "GET", "/api/v1/transfers", when(10, 6, 0));
    assert!(profile_kinds(&observe(&mut d, &early, &alice(true))).is_empty());

    // A /24 never used: reported once, then known.
    let away = call("198.51.100.7", "GET", "/api/v1/transfers", when(10, 10, 0));
    let f = observe(&mut d, &away, &alice(true));
    assert_eq!(profile_kinds(&f), ["new_network_for_subject"]);
    assert_eq!(f[0].detail["network"], "198.51.100.0/24");
    assert_eq!(f[0].detail["known_networks"], 1);
    assert_eq!(f[0].severity, Severity::Medium);
    let same_net = call("198.51.100.99", "GET", "/api/v1/transfers", when(10, 10, 1));
    assert!(profile_kinds(&observe(&mut d, &same_net, &alice(true))).is_empty());

    // An endpoint class never called, ids templated: once.
    let admin = call("10.1.1.10", "DELETE", "/api/v1/users/42", when(10, 11, 0));
    let f = observe(&mut d, &admin, &alice(true));
    assert_eq!(profile_kinds(&f), ["endpoint_unusual_for_subject"]);
    assert_eq!(f[0].endpoint, "DELETE /api/v1/users/{id}");
    let admin2 = call("10.1.1.10", "DELETE", "/api/v1/users/43", when(10, 11, 1));
    assert!(profile_kinds(&observe(&mut d, &admin2, &alice(true))).is_empty());
}

#[test]
fn learning_period_and_unverified_tokens_produce_nothing() {
    let odd = |day| {
        [
            call("203.0.113.5", "GET", "/api/v1/transfers", when(day, 3, 0)),
            call("10.1.1.10", "DELETE", "/api/v1/users/1", when(day, 12, 0)),
        ]
    };
    // Within the learning period, anything goes (and is learnt).
    let mut d = Detectors::new(&DetectConfig::default()).unwrap();
    let mut f = office_days(&mut d, &alice(true));
    assert!(profile_kinds(&f).is_empty());
    for o in odd(3) {
        f.extend(observe(&mut d, &o, &alice(true)));
    }
    assert!(profile_kinds(&f).is_empty(), "{f:?}");

    // Enough days but too few requests: still learning.
    let mut d = Detectors::new(&DetectConfig::default()).unwrap();
    let mut f = Vec::new();
    for day in 0..10 {
        let o = call("10.1.1.10", "GET", "/api/v1/transfers", when(day, 10, 0));
        f.extend(observe(&mut d, &o, &alice(true)));
    }
    for o in odd(11) {
        f.extend(observe(&mut d, &o, &alice(true)));
    }
    assert!(profile_kinds(&f).is_empty(), "{f:?}");

    // Unverified tokens neither teach nor get judged.
    let mut d = Detectors::new(&DetectConfig::default()).unwrap();
    let mut f = office_days(&mut d, &alice(false));
    for o in odd(9) {
        f.extend(observe(&mut d, &o, &alice(false)));
    }
    assert!(profile_kinds(&f).is_empty());
    assert_eq!(d.tracked("profile"), Some(0));
}

#[test]
fn geoip_marks_a_country_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("countries.mmdb");
    let mut w = mmdb_writer::Writer::new("jwtmon-test-Country");
    for (net, iso) in [
        ("10.1.0.0/16", "NL"),
        ("10.2.0.0/16", "NL"),
        ("198.51.100.0/24", "US"),
    ] {
        let record = serde_json::json!({ "country": { "iso_code": iso } });
        w.insert(net.parse::<IpNet>().unwrap(), &record).unwrap();
    }
    std::fs::write(&path, w.to_bytes().unwrap()).unwrap();

    let mut cfg = DetectConfig::default();
    cfg.profile.geoip_mmdb = Some(path);
    let mut d = Detectors::new(&cfg).unwrap();
    office_days(&mut d, &alice(true));

    // New network, same country: medium.
    let o = call("10.2.3.4", "GET", "/api/v1/transfers", when(9, 10, 0));
    let f = observe(&mut d, &o, &alice(true));
    assert_eq!(profile_kinds(&f), ["new_network_for_subject"]);
    assert_eq!(f[0].severity, Severity::Medium);
    assert_eq!(f[0].detail["country"], "NL");
    assert_eq!(f[0].detail["new_country"], false);

    // New country: high, with the countries known so far.
    let o = call("198.51.100.7", "GET", "/api/v1/transfers", when(9, 10, 5));
    let f = observe(&mut d, &o, &alice(true));
    assert_eq!(profile_kinds(&f), ["new_network_for_subject"]);
    assert_eq!(f[0].severity, Severity::High);
    assert_eq!(f[0].detail["country"], "US");
    assert_eq!(f[0].detail["known_countries"], serde_json::json!(["NL"]));
    assert_eq!(f[0].detail["new_country"], true);
}

#[test]
fn an_unreadable_geoip_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.mmdb");
    std::fs::write(&path, b"not a database").unwrap();
    let mut cfg = DetectConfig::default();
    cfg.profile.geoip_mmdb = Some(path.clone());
    let err = Detectors::new(&cfg).err().expect("broken database refused");
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    cfg.profile.geoip_mmdb = Some(dir.path().join("missing.mmdb"));
    assert!(Detectors::new(&cfg).is_err());
}

#[test]
fn profiles_stay_bounded() {
    let mut cfg = DetectConfig::default();
    cfg.profile.max_subjects = 100;
    cfg.profile.max_networks = 4;
    cfg.profile.learning_requests = 0;
    cfg.profile.learning_period = Duration::ZERO;
    let mut d = Detectors::new(&cfg).unwrap();
    let mut out = Vec::new();
    for i in 0..1000u32 {
        let facts = TokenFacts {
            subject: Some(format!("user{i}")),
            verified: true,
            ..Default::default()
        };
        let ip = format!("10.{}.{}.1", i / 256, i % 256);
        d.observe(&call(&ip, "GET", "/x", when(0, 10, 0)), &facts, &mut out);
    }
    assert_eq!(d.tracked("profile"), Some(100));

    // Networks per subject roll over: the oldest is forgotten, so it is
    // new again, while the four most recent are still known.
    let mut d = Detectors::new(&cfg).unwrap();
    let nets: Vec<String> = (0..6).map(|i| format!("10.0.{i}.1")).collect();
    let seen = |ip: &str, d: &mut Detectors| {
        let f = observe(d, &call(ip, "GET", "/x", when(0, 10, 0)), &alice(true));
        profile_kinds(&f).contains(&"new_network_for_subject")
    };
    for n in &nets {
        seen(n, &mut d);
    }
    assert!(!seen(&nets[5], &mut d));
    assert!(!seen(&nets[2], &mut d));
    assert!(seen(&nets[0], &mut d));
}
