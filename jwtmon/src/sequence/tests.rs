//! The sequence engine on synthetic calls with explicit times: the banking
//! scenario, scoring against frequency, bounded state, sequence splits and
//! OpenAPI names.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{
    Sequencer,
    config::{Mode, SeqRule, SequenceConfig},
};
use crate::{
    analysis::TokenFacts,
    decide::{Decider, config::DecideConfig},
    detect::tests::obs,
    finding::Finding,
    observe::Observation,
};

const BALANCE: &str = "GET /api/v1/accounts/{id}/balance";
const TRANSFER: &str = "POST /api/v1/transferFunds";

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
}

fn call(ip: &str, method: &str, path: &str, t: SystemTime) -> Observation {
    let mut o = obs(ip, method, path, "", 200, 0);
    o.time = t;
    o.request.user_agent = Some("bank-app/2.1".into());
    o
}

fn session(id: &str) -> TokenFacts {
    TokenFacts {
        session: Some(id.into()),
        ..TokenFacts::default()
    }
}

fn banking_config() -> SequenceConfig {
    let mut cfg = SequenceConfig::default();
    cfg.anomaly.learning_calls = 500;
    cfg.rules = vec![
        SeqRule::Precedence {
            name: "transfer needs a balance check".into(),
            endpoint: TRANSFER.into(),
            requires: BALANCE.into(),
            within: Some(Duration::from_mins(10)),
            mode: Mode::Log,
        },
        SeqRule::NoRepeat {
            name: "no double transfer".into(),
            endpoint: TRANSFER.into(),
            mode: Mode::Block,
        },
    ];
    cfg
}

/// A legitimate session: accounts, balance, balance, transfer.
fn legit(seq: &mut Sequencer, i: u64, out: &mut Vec<Finding>) {
    let ip = format!("10.1.{}.{}", i / 200, i % 200 + 1);
    let facts = session(&format!("s{i}"));
    let t0 = i * 7;
    for (k, (m, p)) in [
        ("GET", "/api/v1/accounts".to_string()),
        ("GET", format!("/api/v1/accounts/{}/balance", 1000 + i)),
        ("GET", format!("/api/v1/accounts/{}/balance", 1000 + i)),
        ("POST", "/api/v1/transferFunds".to_string()),
    ]
    .into_iter()
    .enumerate()
    {
        seq.observe(&call(&ip, m, &p, at(t0 + k as u64)), &facts, out);
    }
}

#[test]
fn banking_legit_sessions_pass_and_a_replayed_transfer_does_not() {
    let mut seq = Sequencer::new(&banking_config()).unwrap();
    let mut out = Vec::new();
    for i in 0..300 {
        legit(&mut seq, i, &mut out);
    }
    assert!(out.is_empty(), "legitimate sessions reported: {out:?}");

    // The attacker copies the transfer request and replays it three times
    // with modified bodies, in a session of its own.
    let facts = session("stolen-elsewhere");
    for k in 0..3 {
        let o = call("203.0.113.9", "POST", "/api/v1/transferFunds", at(5000 + k));
        seq.observe(&o, &facts, &mut out);
    }
    let rules: Vec<(&str, &str)> = out
        .iter()
        .filter(|f| f.kind == "sequence_rule_violation")
        .map(|f| {
            (
                f.detail["rule_type"].as_str().unwrap(),
                f.detail["mode"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("precedence", "log"),
            ("precedence", "log"),
            ("no_repeat", "block"),
            ("precedence", "log"),
            ("no_repeat", "block"),
        ]
    );
    let anomalous: Vec<&Finding> = out
        .iter()
        .filter(|f| f.kind == "sequence_anomalous")
        .collect();
    assert_eq!(anomalous.len(), 1, "{out:?}");
    assert_eq!(
        anomalous[0].detail["recent_calls"],
        serde_json::json!([TRANSFER, TRANSFER])
    );
    assert!(out.iter().all(|f| f.src_ip.to_string() == "203.0.113.9"));

    // The block-mode rule goes through the decision engine as a block; the
    // log-mode one follows the policy (alert).
    let mut decider = Decider::new(&DecideConfig::default());
    let mut todo = Vec::new();
    for f in &mut out {
        decider.decide(f, &mut todo);
    }
    let no_repeat = out
        .iter()
        .find(|f| f.detail["rule_type"] == "no_repeat")
        .unwrap();
    assert_eq!(no_repeat.action, "block_ip");
    let precedence = out
        .iter()
        .find(|f| f.detail["rule_type"] == "precedence")
        .unwrap();
    assert_eq!(precedence.action, "alert");
}

#[test]
fn precedence_window_and_idle_gap() {
    let mut seq = Sequencer::new(&banking_config()).unwrap();
    let mut out = Vec::new();
    let f = session("a");
    seq.observe(
        &call("10.0.0.1", "GET", "/api/v1/accounts/7/balance", at(0)),
        &f,
        &mut out,
    );
    // 15 minutes later: a new sequence, but the balance check is too old.
    seq.observe(
        &call("10.0.0.1", "POST", "/api/v1/transferFunds", at(900)),
        &f,
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].detail["rule"], "transfer needs a balance check");
    let r = seq.report(10, 1);
    assert_eq!(r.sequences, 2);
    // Within the window: fine.
    out.clear();
    seq.observe(
        &call("10.0.0.1", "GET", "/api/v1/accounts/7/balance", at(1000)),
        &f,
        &mut out,
    );
    seq.observe(
        &call("10.0.0.1", "POST", "/api/v1/transferFunds", at(1001)),
        &f,
        &mut out,
    );
    assert!(out.is_empty(), "{out:?}");
}

/// xorshift: a deterministic stream of pseudo-random numbers.
fn rng(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn a_rare_linked_sequence_outranks_frequent_independent_ones() {
    let mut cfg = SequenceConfig::default();
    cfg.anomaly.enabled = false;
    let mut seq = Sequencer::new(&cfg).unwrap();
    let mut out = Vec::new();
    let mut r = 0x9e37_79b9_7f4a_7c15u64;
    // Heavy independent traffic over 12 endpoints, two of them hot.
    for s in 0..3000u64 {
        let f = session(&format!("bg{s}"));
        for k in 0..20 {
            let e = match rng(&mut r) % 100 {
                0..30 => 0,
                30..50 => 1,
                x => 2 + x % 10,
            };
            let o = call(
                "10.9.0.1",
                "GET",
                &format!("/api/items/e{e}"),
                at(s * 30 + k),
            );
            seq.observe(&o, &f, &mut out);
        }
        // Planted in 1% of sessions: export -> confirm -> download, three
        // endpoints that never occur otherwise.
        if s % 100 == 0 {
            for (k, p) in ["/api/export", "/api/export/confirm", "/api/export/download"]
                .iter()
                .enumerate()
            {
                let o = call("10.9.0.1", "POST", p, at(s * 30 + 20 + k as u64));
                seq.observe(&o, &f, &mut out);
            }
        }
    }
    let report = seq.report(3, 2);
    let planted = |e: &super::ReportEntry| e.sequence.iter().all(|n| n.contains("/api/export"));
    assert!(
        report.top.iter().any(planted),
        "planted sequence not in the top 3: {:?}",
        report.top
    );
    // Frequency alone would not find it: the most frequent bigram is far
    // more common than the planted one.
    let by_count = seq.grams.top(usize::MAX, 2, 1);
    let max_count = by_count.iter().map(|s| s.counts.count).max().unwrap();
    let planted_count = report.top.iter().find(|e| planted(e)).unwrap().count;
    assert!(
        max_count > 20 * planted_count,
        "{max_count} vs {planted_count}"
    );
    let planted_rank = {
        let mut counts: Vec<u64> = by_count.iter().map(|s| s.counts.count).collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        counts.iter().position(|c| *c <= planted_count).unwrap()
    };
    assert!(planted_rank > 3, "frequency rank {planted_rank}");
    // Its share of sequences: 30 of 3000.
    let share = report
        .top
        .iter()
        .find(|e| planted(e))
        .unwrap()
        .share_of_sequences;
    assert!((share - 0.01).abs() < 0.001, "{share}");
}

#[test]
fn state_stays_under_its_caps_on_adversarial_traffic() {
    let cfg = SequenceConfig {
        max_sessions: 100,
        max_ngrams: 1000,
        max_endpoints: 50,
        ..SequenceConfig::default()
    };
    let mut seq = Sequencer::new(&cfg).unwrap();
    let mut out = Vec::new();
    let mut r = 42u64;
    for i in 0..20_000u64 {
        // 5,000 sessions for the first half, then 80 long ones.
        let sessions = if i < 10_000 { 5000 } else { 80 };
        let f = session(&format!("s{}", rng(&mut r) % sessions));
        let path = format!("/x/p{}", rng(&mut r) % 60);
        seq.observe(&call("10.0.0.1", "GET", &path, at(i)), &f, &mut out);
    }
    assert!(seq.sessions() <= 100);
    assert!(seq.ngrams() <= 1000, "{}", seq.ngrams());
    assert!(seq.transitions() <= 1000);
    assert!(seq.endpoints.len() <= 51);
    let report = seq.report(10, 2);
    assert!(report.evicted > 0);
    assert_eq!(report.calls, 20_000);
}

#[test]
fn openapi_paths_name_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("openapi.yaml");
    std::fs::write(
        &spec,
        "openapi: 3.0.0\npaths:\n  /api/v1/accounts/{account_id}/balance:\n    get: {}\n  \
         /api/v1/accounts/me/balance:\n    get: {}\n",
    )
    .unwrap();
    let cfg = SequenceConfig {
        openapi: Some(spec),
        ..SequenceConfig::default()
    };
    let mut seq = Sequencer::new(&cfg).unwrap();
    let a = seq
        .endpoints
        .intern("GET", "/api/v1/accounts/ACC-77x/balance", false);
    assert_eq!(
        seq.endpoints.name(a),
        "GET /api/v1/accounts/{account_id}/balance"
    );
    let me = seq
        .endpoints
        .intern("GET", "/api/v1/accounts/me/balance", true);
    assert_eq!(seq.endpoints.name(me), "GET /api/v1/accounts/me/balance");
    // No template: the built-in normalization.
    let other = seq
        .endpoints
        .intern("POST", "/api/v1/transfers/123?x=1", true);
    assert_eq!(seq.endpoints.name(other), "POST /api/v1/transfers/{id}");

    std::fs::write(dir.path().join("bad.yaml"), "paths: [").unwrap();
    let bad = SequenceConfig {
        openapi: Some(dir.path().join("bad.yaml")),
        ..SequenceConfig::default()
    };
    let err = Sequencer::new(&bad).err().expect("refused").to_string();
    assert!(err.contains("bad.yaml"), "{err}");
}

#[test]
fn suggestions_are_precedence_rules_ending_in_state_changes() {
    let mut seq = Sequencer::new(&SequenceConfig::default()).unwrap();
    let mut out = Vec::new();
    for i in 0..300 {
        legit(&mut seq, i, &mut out);
    }
    let s = seq.suggest(5);
    assert!(!s.is_empty());
    let SeqRule::Precedence {
        endpoint, requires, ..
    } = &s[0].0
    else {
        panic!("not a precedence rule");
    };
    assert_eq!(endpoint, TRANSFER);
    assert!(
        requires == BALANCE || requires == "GET /api/v1/accounts",
        "{requires}"
    );
}

#[test]
fn max_in_window_allow_and_deny_rules() {
    let cfg = SequenceConfig {
        rules: vec![
            SeqRule::MaxInWindow {
                name: "two exports a minute".into(),
                endpoint: "POST /api/export".into(),
                max: 2,
                window: Duration::from_mins(1),
                mode: Mode::Log,
            },
            SeqRule::Allow {
                name: "confirm only right after export".into(),
                sequence: vec!["POST /api/export".into(), "POST /api/export/confirm".into()],
                mode: Mode::Log,
            },
            SeqRule::Deny {
                name: "no password change right after login".into(),
                sequence: vec!["POST /api/login".into(), "POST /api/password".into()],
                mode: Mode::Block,
            },
        ],
        ..SequenceConfig::default()
    };
    let mut seq = Sequencer::new(&cfg).unwrap();
    let f = session("x");
    let mut rules_hit = |calls: &[(&str, u64)]| -> Vec<String> {
        let mut out = Vec::new();
        for (p, t) in calls {
            seq.observe(&call("10.0.0.1", "POST", p, at(*t)), &f, &mut out);
        }
        out.iter()
            .filter(|f| f.kind == "sequence_rule_violation")
            .map(|f| f.detail["rule_type"].as_str().unwrap().to_string())
            .collect()
    };
    // Export, confirm: allowed. Two more exports within the minute: the
    // third is one too many.
    assert!(rules_hit(&[("/api/export", 0), ("/api/export/confirm", 1)]).is_empty());
    assert!(rules_hit(&[("/api/export", 2)]).is_empty());
    assert_eq!(rules_hit(&[("/api/export", 3)]), ["max_in_window"]);
    // A minute later the window has room again.
    assert!(rules_hit(&[("/api/export", 70)]).is_empty());
    // Confirm without an export right before it.
    assert_eq!(
        rules_hit(&[("/api/profile", 71), ("/api/export/confirm", 72)]),
        ["allow"]
    );
    // Login then password change: denied; with a call between: fine.
    assert_eq!(
        rules_hit(&[("/api/login", 80), ("/api/password", 81)]),
        ["deny"]
    );
    assert!(
        rules_hit(&[
            ("/api/login", 90),
            ("/api/profile", 91),
            ("/api/password", 92)
        ])
        .is_empty()
    );
}

/// A scanner's made-up paths (answered 404) never take a slot of the
/// endpoint table; served ones do.
#[test]
fn paths_the_server_did_not_serve_take_no_endpoint_slot() {
    let mut seq = Sequencer::new(&SequenceConfig::default()).unwrap();
    for i in 0..5_000 {
        let mut o = obs(
            "203.0.113.5",
            "GET",
            &format!("/probe-{i}/x.php"),
            "",
            404,
            0,
        );
        o.time = at(i);
        seq.observe(&o, &TokenFacts::default(), &mut Vec::new());
    }
    assert!(seq.endpoints.is_empty(), "{} names", seq.endpoints.len());
    let o = call(
        "203.0.113.6",
        "GET",
        "/api/v1/accounts/7/balance",
        at(9_000),
    );
    seq.observe(&o, &session("s1"), &mut Vec::new());
    assert_eq!(seq.endpoints.len(), 2);
}
