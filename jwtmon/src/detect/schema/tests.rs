//! The schema detector through the detector registry, on generated
//! traffic: it learns, stays silent on more of the same, and names the
//! parameter that breaks the model; one client cannot teach it.

use super::*;
use crate::{
    analysis::TokenFacts,
    detect::{Detectors, config::DetectConfig, tests::obs},
    finding::Finding,
    observe::Observation,
};

fn get(ip: &str, path_query: &str, t: u64) -> Observation {
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let mut o = obs(ip, "GET", path, "", 200, t);
    o.request.content_type = None;
    o.request.query = (!query.is_empty()).then(|| query.to_string());
    o
}

fn post(ip: &str, path: &str, body: &str, t: u64) -> Observation {
    let mut o = obs(ip, "POST", path, body, 200, t);
    o.request.content_length = Some(body.len() as u64);
    o
}

/// Legitimate traffic: 20 clients reading accounts and making transfers.
fn legit(round: u64) -> Vec<Observation> {
    let mut out = Vec::new();
    for i in 0..40u64 {
        let ip = format!("198.51.100.{}", (i + round) % 20 + 1);
        let t = round * 100_000 + i * 1000;
        let sort = if i % 2 == 0 { "asc" } else { "desc" };
        out.push(get(
            &ip,
            &format!(
                "/api/v1/accounts/{}/transactions?limit={}&sort={sort}",
                1000 + i,
                10 + i % 40
            ),
            t,
        ));
        let body = format!(
            r#"{{"amount": {}, "to": "acct_{}", "currency": "EUR", "memo": "rent for {} it's paid"}}"#,
            5 + i * 7,
            100 + i,
            ["March", "April", "May"][(i % 3) as usize]
        );
        out.push(post(&ip, "/api/v1/transfers", &body, t + 500));
    }
    out
}

fn run(d: &mut Detectors, o: &[Observation]) -> Vec<Finding> {
    let mut out = Vec::new();
    for o in o {
        d.observe(o, &TokenFacts::default(), &mut out);
    }
    out
}

fn schema_findings(f: &[Finding]) -> Vec<(&'static str, String)> {
    f.iter()
        .filter(|f| f.kind.name().starts_with("schema_"))
        .map(|f| {
            (
                f.kind.name(),
                f.detail["parameter"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn trained() -> Detectors {
    let mut d = Detectors::new(&DetectConfig::default()).unwrap();
    for round in 0..10 {
        let f = run(&mut d, &legit(round));
        assert_eq!(schema_findings(&f), [], "round {round}");
    }
    d
}

#[test]
fn learns_then_stays_silent_on_legitimate_traffic() {
    let mut d = trained();
    for round in 10..20 {
        assert_eq!(
            schema_findings(&run(&mut d, &legit(round))),
            [],
            "round {round}"
        );
    }
}

#[test]
fn tampering_is_named_by_parameter() {
    let mut d = trained();
    let t = 5_000_000;
    let cases: Vec<(Observation, &str, &str)> = vec![
        (
            get(
                "203.0.113.1",
                "/api/v1/accounts/7/transactions?limit=10&sort=asc&debug=1",
                t,
            ),
            "schema_unknown_parameter",
            "debug",
        ),
        (
            get(
                "203.0.113.2",
                "/api/v1/accounts/7/transactions?limit=ten&sort=asc",
                t,
            ),
            "schema_type_mismatch",
            "limit",
        ),
        (
            post(
                "203.0.113.3",
                "/api/v1/transfers",
                r#"{"amount": 5, "to": {"$ne": null}, "currency": "EUR", "memo": "x"}"#,
                t,
            ),
            "schema_type_mismatch",
            "to",
        ),
        (
            post(
                "203.0.113.4",
                "/api/v1/transfers",
                r#"{"amount": -500, "to": "acct_1", "currency": "EUR", "memo": "x"}"#,
                t,
            ),
            "schema_value_anomalous",
            "amount",
        ),
        (
            post(
                "203.0.113.5",
                "/api/v1/transfers",
                r#"{"amount": 5, "to": "acct_1", "currency": "EUR", "memo": "a\r\nBcc: all@corp"}"#,
                t,
            ),
            "schema_value_anomalous",
            "memo",
        ),
        (
            post(
                "203.0.113.6",
                "/api/v1/transfers",
                r#"{"amount": 5, "to": "acct_1", "currency": "XBT", "memo": "x"}"#,
                t,
            ),
            "schema_value_anomalous",
            "currency",
        ),
        (
            post(
                "203.0.113.7",
                "/api/v1/transfers",
                r#"{"to": "acct_1", "currency": "EUR", "memo": "x"}"#,
                t,
            ),
            "schema_missing_required",
            "amount",
        ),
    ];
    for (o, kind, param) in cases {
        let f = run(&mut d, &[o]);
        let got = schema_findings(&f);
        assert!(
            got.contains(&(kind, param.to_string())),
            "{kind} {param}: {got:?}"
        );
        let one = f.iter().find(|f| f.kind.name() == kind).unwrap();
        assert_eq!(one.detail["model"], "learned");
        // The evidence never quotes the value.
        let text = one.detail.to_string();
        for v in ["ten", "$ne", "-500", "Bcc", "XBT"] {
            assert!(!text.contains(v), "{text}");
        }
    }
}

#[test]
fn one_client_cannot_teach_a_parameter() {
    let mut d = Detectors::new(&DetectConfig::default()).unwrap();
    for round in 0..10 {
        let mut traffic = legit(round);
        // The same client slips `admin=true` into its reads while the
        // model learns.
        traffic.push(get(
            "192.0.2.66",
            "/api/v1/accounts/9/transactions?limit=10&sort=asc&admin=true",
            round * 100_000 + 99_000,
        ));
        run(&mut d, &traffic);
    }
    let f = run(
        &mut d,
        &[get(
            "192.0.2.66",
            "/api/v1/accounts/9/transactions?limit=10&sort=asc&admin=true",
            9_000_000,
        )],
    );
    assert_eq!(
        schema_findings(&f),
        [("schema_unknown_parameter", "admin".to_string())]
    );
    // Three principals make a name known.
    let mut d = trained();
    for (n, ip) in ["192.0.2.1", "192.0.2.2", "192.0.2.3"].iter().enumerate() {
        run(
            &mut d,
            &[get(
                ip,
                "/api/v1/accounts/9/transactions?limit=10&sort=asc&page=2",
                6_000_000 + n as u64 * 70_000,
            )],
        );
    }
    let f = run(
        &mut d,
        &[get(
            "192.0.2.4",
            "/api/v1/accounts/9/transactions?limit=10&sort=asc&page=3",
            7_000_000,
        )],
    );
    assert_eq!(schema_findings(&f), []);
}

#[test]
fn a_high_cardinality_endpoint_is_unmodellable() {
    let mut d = Detectors::new(&DetectConfig::default()).unwrap();
    let mut traffic = Vec::new();
    for i in 0..300u64 {
        let ip = format!("198.51.100.{}", i % 20 + 1);
        traffic.push(get(&ip, &format!("/search?f_{i}=x&q=y"), i * 1000));
    }
    run(&mut d, &traffic);
    let f = run(
        &mut d,
        &[get("203.0.113.9", "/search?brand_new=1", 999_000)],
    );
    assert_eq!(schema_findings(&f), []);
}

#[test]
fn a_saved_model_judges_at_once_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.json");
    let mut cfg = DetectConfig::default();
    cfg.schema.save_to = Some(file.clone());
    let mut d = Detectors::new(&cfg).unwrap();
    for round in 0..10 {
        run(&mut d, &legit(round));
    }
    assert_eq!(d.save().unwrap(), std::slice::from_ref(&file));
    // Nothing changed since: nothing written.
    assert_eq!(d.save().unwrap(), Vec::<PathBuf>::new());
    let mut cfg = DetectConfig::default();
    cfg.schema.learned = Some(file.clone());
    let mut d = Detectors::new(&cfg).unwrap();
    let f = run(
        &mut d,
        &[get(
            "203.0.113.1",
            "/api/v1/accounts/7/transactions?limit=10&sort=asc&debug=1",
            9_000_000,
        )],
    );
    assert_eq!(
        schema_findings(&f),
        [("schema_unknown_parameter", "debug".to_string())]
    );
    // A broken file is a clear error naming the key and file.
    std::fs::write(&file, "{nope").unwrap();
    let err = Detectors::new(&cfg).err().unwrap().to_string();
    assert!(
        err.contains("detect.schema.learned") && err.contains("model.json"),
        "{err}"
    );
}

#[test]
fn an_openapi_document_is_stronger_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("api.yaml");
    std::fs::write(
        &spec,
        r"
openapi: 3.0.3
paths:
  /api/v1/accounts/{id}/transactions:
    get:
      parameters:
        - {name: id, in: path, schema: {type: integer}}
        - {name: limit, in: query, schema: {type: integer, maximum: 100}}
        - {name: sort, in: query, schema: {type: string, enum: [asc, desc]}}
",
    )
    .unwrap();
    let mut cfg = DetectConfig::default();
    cfg.schema.openapi = Some(spec);
    let mut d = Detectors::new(&cfg).unwrap();
    let t = 1_000;
    for (n, (q, kind, param)) in [
        (
            "/api/v1/accounts/7/transactions?limit=500",
            "schema_value_anomalous",
            "limit",
        ),
        (
            "/api/v1/accounts/7/transactions?sort=random",
            "schema_value_anomalous",
            "sort",
        ),
        (
            "/api/v1/accounts/7/transactions?trace=1",
            "schema_unknown_parameter",
            "trace",
        ),
        (
            "/api/v1/accounts/x'--/transactions",
            "schema_type_mismatch",
            "id",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let f = run(&mut d, &[get(&format!("203.0.113.{}", 30 + n), q, t)]);
        let one = f
            .iter()
            .find(|f| f.kind.name() == kind)
            .unwrap_or_else(|| panic!("{q}: {f:?}"));
        assert_eq!(
            (
                one.detail["parameter"].as_str(),
                one.detail["model"].as_str()
            ),
            (Some(param), Some("openapi"))
        );
        assert_eq!(one.severity, Severity::High);
    }
    // A served operation the document does not declare: once.
    let f = run(
        &mut d,
        &[
            get("203.0.113.21", "/api/internal/debug", t),
            get("203.0.113.22", "/api/internal/debug", t + 1),
        ],
    );
    assert_eq!(
        f.iter()
            .filter(|f| f.kind == Kind::SchemaUndeclaredEndpoint)
            .count(),
        1
    );
    // Legitimate calls raise nothing, from the first request on.
    let f = run(
        &mut d,
        &[get(
            "203.0.113.23",
            "/api/v1/accounts/7/transactions?limit=20&sort=desc",
            t,
        )],
    );
    assert_eq!(schema_findings(&f), []);
}
