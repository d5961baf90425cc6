//! Decision engine: policy, guards and TTL growth, on synthetic findings
//! with explicit times.

use std::{
    net::IpAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::json;

use super::{
    Decider, Enforcement,
    config::{Action, DecideConfig, Rule},
};
use crate::{
    finding::{Finding, Outcome, Severity},
    target::Target,
};

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
}

fn finding(kind: &str, ip: &str, t: u64) -> Finding {
    Finding {
        time: at(t),
        kind: kind.parse().unwrap(),
        severity: Severity::High,
        src_ip: ip.parse().unwrap(),
        subject: None,
        token_id: Some("0123456789abcdef".into()),
        api_key_id: None,
        endpoint: "POST /login".into(),
        detail: json!({}),
        action: Outcome::Log,
        proven: true,
        transport: None,
    }
}

fn run(d: &mut Decider, kind: &str, ip: &str, t: u64) -> (Finding, Vec<Enforcement>) {
    let mut f = finding(kind, ip, t);
    let mut out = Vec::new();
    d.decide(&mut f, &mut out);
    (f, out)
}

fn block_ttl(e: &[Enforcement]) -> Option<u64> {
    e.iter().find_map(|e| match e {
        Enforcement::Block { ttl, .. } => Some(ttl.as_secs()),
        _ => None,
    })
}

#[test]
fn default_policy_blocks_forgeries_and_alerts_anomalies() {
    let mut d = Decider::new(&DecideConfig::default());
    let (f, e) = run(&mut d, "login_bruteforce", "10.0.0.2", 0);
    assert_eq!(f.action, "block_ip");
    assert_eq!(block_ttl(&e), Some(600));
    let (f, e) = run(&mut d, "jwt_alg_none", "10.0.0.3", 0);
    assert_eq!((f.action.as_str(), block_ttl(&e)), ("block_ip", Some(3600)));
    let (f, e) = run(&mut d, "rate_spike_ip", "10.0.0.4", 0);
    assert_eq!(f.action, "alert");
    assert!(e.is_empty());
    let (f, e) = run(&mut d, "jwt_replay_multi_ip", "10.0.0.4", 0);
    assert_eq!(f.action, "revoke_token");
    assert_eq!(
        e,
        [Enforcement::Revoke {
            token_id: "0123456789abcdef".into()
        }]
    );
    // A second finding while the block is in force does not block again.
    let (f, e) = run(&mut d, "login_bruteforce", "10.0.0.2", 5);
    assert_eq!(f.action, "already_blocked");
    assert!(e.is_empty());
}

#[test]
fn configured_policy_overrides_and_severity() {
    let mut cfg = DecideConfig::default();
    cfg.policy.insert(
        "rate_spike_ip".parse().unwrap(),
        Rule {
            action: Action::BlockIp,
            ttl: Some(Duration::from_secs(30)),
            severity: Some(Severity::Critical),
        },
    );
    cfg.policy.insert(
        "login_bruteforce".parse().unwrap(),
        Rule {
            action: Action::Log,
            ttl: None,
            severity: None,
        },
    );
    let mut d = Decider::new(&cfg);
    let (f, e) = run(&mut d, "rate_spike_ip", "10.0.0.2", 0);
    assert_eq!(
        (f.action.as_str(), f.severity),
        ("block_ip", Severity::Critical)
    );
    assert_eq!(block_ttl(&e), Some(30));
    let (f, e) = run(&mut d, "login_bruteforce", "10.0.0.3", 0);
    assert_eq!(f.action, "log");
    assert!(e.is_empty());
}

#[test]
fn allowlist_wins_and_dry_run_never_blocks() {
    let mut d = Decider::new(&DecideConfig::default());
    d.set_allowlist(vec!["10.9.0.0/16".parse().unwrap()]);
    let (f, e) = run(&mut d, "jwt_alg_none", "10.9.1.1", 0);
    assert_eq!(f.action, "allowlisted");
    assert_eq!(f.detail["decision"]["allowlisted_by"], "10.9.0.0/16");
    assert!(e.is_empty());

    let mut d = Decider::new(&DecideConfig {
        dry_run: true,
        ..DecideConfig::default()
    });
    let (f, e) = run(&mut d, "jwt_alg_none", "10.0.0.2", 0);
    assert_eq!(f.action, "dry_run");
    assert_eq!(f.detail["decision"]["would"], "block_ip");
    assert!(e.is_empty());
    let (f, e) = run(&mut d, "jwt_replay_multi_ip", "10.0.0.2", 0);
    assert_eq!(f.action, "dry_run");
    assert!(e.is_empty());
    assert_eq!(d.stats.dry_run, 2);
}

#[test]
fn repeat_offenders_get_longer_ttls_up_to_the_cap() {
    let cfg = DecideConfig {
        block_ttl: Duration::from_secs(100),
        ttl_factor: 3.0,
        max_ttl: Duration::from_secs(1000),
        ..DecideConfig::default()
    };
    let mut d = Decider::new(&cfg);
    let mut ttls = Vec::new();
    let mut t = 0;
    for _ in 0..4 {
        let (_, e) = run(&mut d, "rate_spike_ip", "10.0.0.2", t);
        assert!(e.is_empty(), "alert only");
        let (_, e) = run(&mut d, "credential_stuffing", "10.0.0.2", t);
        let ttl = block_ttl(&e).unwrap();
        ttls.push(ttl);
        t += ttl + 1; // after expiry
    }
    // credential_stuffing's built-in TTL (600) grows by 3 to the cap.
    assert_eq!(ttls, [600, 1000, 1000, 1000]);
}

#[test]
fn ttl_growth_and_forgetting() {
    let mut cfg = DecideConfig {
        block_ttl: Duration::from_secs(100),
        ttl_factor: 2.0,
        max_ttl: Duration::from_secs(500),
        offence_memory: Duration::from_secs(10_000),
        ..DecideConfig::default()
    };
    cfg.policy.insert(
        "login_bruteforce".parse().unwrap(),
        Rule {
            action: Action::BlockIp,
            ttl: None,
            severity: None,
        },
    );
    let mut d = Decider::new(&cfg);
    let mut t = 0;
    let mut ttls = Vec::new();
    for _ in 0..4 {
        let (f, e) = run(&mut d, "login_bruteforce", "10.0.0.2", t);
        let ttl = block_ttl(&e).unwrap();
        assert_eq!(f.detail["decision"]["ttl_s"], ttl);
        ttls.push(ttl);
        t += ttl + 1;
    }
    assert_eq!(ttls, [100, 200, 400, 500]);
    // Long after the last offence, it starts over.
    let (_, e) = run(&mut d, "login_bruteforce", "10.0.0.2", t + 20_000);
    assert_eq!(block_ttl(&e), Some(100));
}

#[test]
fn global_cap_and_cidr_aggregation() {
    let mut d = Decider::new(&DecideConfig {
        max_blocks_per_minute: 3,
        ..DecideConfig::default()
    });
    let actions: Vec<String> = (1..=5)
        .map(|i| {
            run(&mut d, "jwt_alg_none", &format!("10.0.0.{i}"), i)
                .0
                .action
                .to_string()
        })
        .collect();
    assert_eq!(
        actions,
        [
            "block_ip",
            "block_ip",
            "block_ip",
            "rate_capped",
            "rate_capped"
        ]
    );
    // A minute later there is room again.
    assert_eq!(
        run(&mut d, "jwt_alg_none", "10.0.0.9", 70).0.action,
        "block_ip"
    );

    let mut d = Decider::new(&DecideConfig {
        aggregate: true,
        aggregate_after: 3,
        ..DecideConfig::default()
    });
    let mut nets = Vec::new();
    for i in 1..=5 {
        let (_, e) = run(&mut d, "jwt_alg_none", &format!("192.0.2.{i}"), i);
        for x in e {
            if let Enforcement::Block { target, .. } = x
                && !target.is_exact()
            {
                nets.push(target);
            }
        }
    }
    let want: Target = "192.0.2.0/24".parse().unwrap();
    assert_eq!(nets, [want], "the /24 once, after the 4th address");
    // No aggregation over an allowlisted address.
    let mut d = Decider::new(&DecideConfig {
        aggregate: true,
        aggregate_after: 1,
        ..DecideConfig::default()
    });
    d.set_allowlist(vec!["198.51.100.7".parse().unwrap()]);
    for i in 1..=3 {
        let (_, e) = run(&mut d, "jwt_alg_none", &format!("198.51.100.{i}"), i);
        assert!(
            e.iter()
                .all(|x| matches!(x, Enforcement::Block { target, .. } if target.is_exact()))
        );
    }
    let ip: IpAddr = "198.51.100.7".parse().unwrap();
    assert!(d.allowlisted(ip).is_some());
}

#[test]
fn reconfigure_changes_policy_and_keeps_blocks_in_force() {
    let mut d = Decider::new(&DecideConfig::default());
    let (f, _) = run(&mut d, "login_bruteforce", "10.0.0.2", 0);
    assert_eq!(f.action, "block_ip");
    let mut cfg = DecideConfig {
        dry_run: true,
        ..DecideConfig::default()
    };
    cfg.policy.insert(
        "rate_spike_ip".parse().unwrap(),
        Rule {
            action: Action::BlockIp,
            ttl: None,
            severity: None,
        },
    );
    d.reconfigure(&cfg);
    // The block made before the reload is still in force.
    assert_eq!(
        run(&mut d, "login_bruteforce", "10.0.0.2", 5).0.action,
        "already_blocked"
    );
    // The new policy and dry run apply to what comes next.
    let (f, e) = run(&mut d, "rate_spike_ip", "10.0.0.3", 6);
    assert_eq!((f.action.as_str(), e.len()), ("dry_run", 0));
}

#[test]
fn an_unproven_sender_is_never_blocked_or_revoked() {
    let mut d = Decider::new(&DecideConfig::default());
    for kind in ["injection_sqli", "jwt_alg_none", "jwt_replay_multi_ip"] {
        let mut f = finding(kind, "192.0.2.53", 0);
        f.proven = false;
        let mut out = Vec::new();
        d.decide(&mut f, &mut out);
        assert!(out.is_empty(), "{kind}: {out:?}");
        assert_eq!(f.action, "log", "{kind}");
        assert_eq!(f.detail["proven"], false, "{kind}");
        assert!(
            f.detail["decision"]["would"].is_string(),
            "{kind}: {}",
            f.detail
        );
    }
    assert_eq!(d.stats.unproven, 3);
    // The same address, proven, is blocked: nothing was remembered.
    assert_eq!(
        run(&mut d, "injection_sqli", "192.0.2.53", 1).0.action,
        "block_ip"
    );
}

#[test]
fn mapped_addresses_aggregate_as_ipv4_never_as_the_ipv6_slash_64() {
    let mut d = Decider::new(&DecideConfig {
        aggregate: true,
        aggregate_after: 2,
        ..DecideConfig::default()
    });
    let mut targets = Vec::new();
    for i in 1..=4 {
        let (_, e) = run(&mut d, "jwt_alg_none", &format!("::ffff:192.0.2.{i}"), i);
        for x in e {
            if let Enforcement::Block { target, .. } = x {
                targets.push(target.to_string());
            }
        }
    }
    assert!(targets.contains(&"192.0.2.1".to_string()), "{targets:?}");
    assert!(targets.contains(&"192.0.2.0/24".to_string()), "{targets:?}");
    assert!(!targets.iter().any(|t| t.starts_with("::")), "{targets:?}");
}

#[test]
fn automatic_revocations_are_capped_per_minute() {
    let mut d = Decider::new(&DecideConfig {
        max_revocations_per_minute: 3,
        ..DecideConfig::default()
    });
    let actions: Vec<String> = (0..5)
        .map(|i| {
            let mut f = finding("jwt_replay_multi_ip", "10.0.0.1", i);
            f.token_id = Some(format!("{i:016x}"));
            let mut out = Vec::new();
            d.decide(&mut f, &mut out);
            f.action.to_string()
        })
        .collect();
    assert_eq!(
        actions,
        [
            "revoke_token",
            "revoke_token",
            "revoke_token",
            "rate_capped",
            "rate_capped"
        ]
    );
    let mut f = finding("jwt_replay_multi_ip", "10.0.0.1", 5);
    f.token_id = Some("ffffffffffffffff".into());
    d.decide(&mut f, &mut Vec::new());
    assert_eq!(
        f.detail["decision"]["max_revocations_per_minute"], 3,
        "{}",
        f.detail
    );
    // A minute later there is room again.
    let mut f = finding("jwt_replay_multi_ip", "10.0.0.1", 61);
    d.decide(&mut f, &mut Vec::new());
    assert_eq!(f.action, "revoke_token");
}
