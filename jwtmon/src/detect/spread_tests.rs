//! Attacks spread over addresses and time, and the benign shapes next to
//! them: distributed stuffing (a service-wide campaign), low and slow
//! brute force, a scan over one /24, object-id enumeration; an office NAT
//! whose users mistype, a partner's batch lookups.

use std::collections::BTreeSet;

use super::{
    Detectors,
    config::DetectConfig,
    tests::{login, obs, run},
};
use crate::{finding::Finding, observe::Observation};

fn of<'a>(f: &'a [Finding], kind: &str) -> Vec<&'a Finding> {
    f.iter().filter(|f| f.kind.name() == kind).collect()
}

fn detectors() -> Detectors {
    Detectors::new(&DetectConfig::default()).unwrap()
}

#[test]
fn distributed_stuffing_names_every_address() {
    let mut d = detectors();
    // A quiet baseline first: a few failures per 10 minutes, for an hour.
    let mut traffic = Vec::new();
    for i in 0..60u64 {
        traffic.push(login(
            &format!("198.51.100.{}", i % 50 + 1),
            &format!("u{i}"),
            i % 10 != 0,
            i * 60_000,
        ));
    }
    // 40 addresses in 40 networks, two tries each, within three minutes.
    let start = 3_600_000;
    for round in 0..2u64 {
        for a in 0..40u64 {
            let ip = format!("10.{a}.7.9");
            traffic.push(login(
                &ip,
                &format!("victim{}", a * 2 + round),
                false,
                start + round * 90_000 + a * 1000,
            ));
        }
    }
    let f = run(&mut d, &traffic);
    let named: BTreeSet<String> = of(&f, "login_campaign")
        .iter()
        .map(|f| f.src_ip.to_string())
        .collect();
    assert_eq!(named.len(), 40, "{named:?}");
    assert!(named.iter().all(|ip| ip.starts_with("10.")));
    // No single address crossed a per-address threshold.
    assert!(of(&f, "login_bruteforce").is_empty() && of(&f, "credential_stuffing").is_empty());
}

#[test]
fn an_office_nat_where_some_mistype_is_not_stuffing() {
    let mut d = detectors();
    let mut traffic = Vec::new();
    for u in 0..20u64 {
        // Eight of them mistype once, then get in.
        if u < 8 {
            traffic.push(login(
                "192.0.2.10",
                &format!("employee{u}"),
                false,
                u * 20_000,
            ));
        }
        traffic.push(login(
            "192.0.2.10",
            &format!("employee{u}"),
            true,
            u * 20_000 + 5_000,
        ));
    }
    assert_eq!(run(&mut d, &traffic), []);
    // The same failures without the successes are stuffing.
    let mut d = detectors();
    let bad: Vec<Observation> = (0..8u64)
        .map(|u| login("192.0.2.11", &format!("employee{u}"), false, u * 20_000))
        .collect();
    assert_eq!(of(&run(&mut d, &bad), "credential_stuffing").len(), 1);
}

#[test]
fn low_and_slow_brute_force_is_found_over_the_hour() {
    let mut d = detectors();
    // One try every 25 s: never 11 in a minute.
    let traffic: Vec<Observation> = (0..80u64)
        .map(|i| login("203.0.113.50", "alice", false, i * 25_000))
        .collect();
    let f = run(&mut d, &traffic);
    let slow = of(&f, "login_bruteforce");
    assert!(!slow.is_empty(), "{f:?}");
    assert!(slow.iter().all(|f| f.detail["window_s"] == 3600));
}

#[test]
fn a_scan_spread_over_one_network_names_its_addresses() {
    let mut d = detectors();
    let mut traffic = Vec::new();
    for a in 0..10u64 {
        for p in 0..5u64 {
            let path = format!(
                "/probe/{}",
                ["admin", "backup", "old", "test", "dev"][p as usize].to_string() + &a.to_string()
            );
            traffic.push(obs(
                &format!("203.0.113.{}", a + 10),
                "GET",
                &path,
                "",
                404,
                a * 1000 + p * 100,
            ));
        }
    }
    let f = run(&mut d, &traffic);
    let named: BTreeSet<String> = of(&f, "endpoint_scan")
        .iter()
        .map(|f| f.src_ip.to_string())
        .collect();
    assert!(named.len() >= 4, "{named:?}");
    assert!(
        of(&f, "endpoint_scan")
            .iter()
            .all(|f| f.detail["network"] == "203.0.113.0/24")
    );
}

#[test]
fn a_partners_batch_lookups_are_not_a_scan() {
    let mut d = detectors();
    let traffic: Vec<Observation> = (0..200u64)
        .map(|i| {
            obs(
                "198.51.100.77",
                "GET",
                &format!("/api/v1/accounts/{}", 500_000 + i * 7),
                "",
                if i % 3 == 0 { 200 } else { 404 },
                i * 200,
            )
        })
        .collect();
    assert_eq!(run(&mut d, &traffic), []);
}

#[test]
fn walking_other_customers_ids_is_enumeration() {
    let mut d = detectors();
    let mut traffic = Vec::new();
    // Thirty customers, each reading their own account.
    for c in 0..30u64 {
        traffic.push(obs(
            &format!("198.51.100.{}", c + 1),
            "GET",
            &format!("/api/v1/accounts/{}/balance", 7000 + c),
            "",
            200,
            c * 100,
        ));
    }
    assert_eq!(run(&mut d, &traffic), []);
    // One of them walks the others' accounts, which the API serves.
    let walk: Vec<Observation> = (0..30u64)
        .map(|c| {
            obs(
                "198.51.100.1",
                "GET",
                &format!("/api/v1/accounts/{}/balance", 7000 + c),
                "",
                200,
                10_000 + c * 100,
            )
        })
        .collect();
    let f = run(&mut d, &walk);
    let e = of(&f, "object_enumeration");
    assert_eq!(e.len(), 1, "{f:?}");
    assert_eq!(e[0].src_ip.to_string(), "198.51.100.1");
    // Another walks them and is refused (403): enumeration too.
    let refused: Vec<Observation> = (0..30u64)
        .map(|c| {
            obs(
                "203.0.113.99",
                "GET",
                &format!("/api/v1/accounts/{}/balance", 9000 + c),
                "",
                403,
                20_000 + c * 100,
            )
        })
        .collect();
    assert_eq!(of(&run(&mut d, &refused), "object_enumeration").len(), 1);
}
