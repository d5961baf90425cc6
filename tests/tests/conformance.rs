//! Conformance against the public corpora beside the project (skipped with
//! a message when `../shared/corpora` or `$JWTMON_CORPORA` is absent).

use jwtmon_tests::conformance::{corpora_dir, corpus, crs, jws, llhttp, sqli};

#[test]
fn llhttp_request_corpus_agrees() {
    let Some(dir) = corpora_dir().and_then(|d| corpus(&d, "llhttp-request")) else {
        return;
    };
    let (report, agree, disagree) = llhttp::run(&dir).unwrap();
    print!("{report}");
    assert!(agree > 100, "too few graded cases: {report}");
    assert_eq!(disagree, 0, "{report}");
}

#[test]
fn wycheproof_jws_vectors_agree() {
    let Some(p) = corpora_dir().and_then(|d| corpus(&d, "wycheproof/json_web_signature_test.json"))
    else {
        return;
    };
    let (report, agree, disagree) = jws::wycheproof(&p).unwrap();
    print!("{report}");
    assert!(agree > 300, "{report}");
    assert_eq!(disagree, 0, "{report}");
}

#[test]
fn nginx_auth_jwt_tokens_agree() {
    let Some(p) = corpora_dir().and_then(|d| corpus(&d, "nginx-auth-jwt")) else {
        return;
    };
    let (report, agree, disagree) = jws::nginx(&p).unwrap();
    print!("{report}");
    assert!(agree >= 10, "{report}");
    assert_eq!(disagree, 0, "{report}");
}

#[test]
fn sqli_recall_and_false_positives() {
    let Some(dir) = corpora_dir() else { return };
    let crs = corpus(&dir, "crs-942-sqli");
    let benign = corpus(&dir, "libinjection/false_positives.txt");
    let (report, r) = sqli::run(crs.as_deref(), benign.as_deref()).unwrap();
    print!("{report}");
    if benign.is_some() {
        // The goal: at most 2% of the benign strings flagged, by any kind
        // (every family sees them, not only the SQL tokenizer).
        assert!(r.fp_rate() <= 2.0, "{report}");
        let any = 100.0 * r.false_positives_any as f64 / r.benign.max(1) as f64;
        assert!(any <= 2.0, "{report}");
    }
    if crs.is_some() {
        // Not the 90% goal (see README): a floor so recall never regresses.
        assert!(r.recall() >= 66.5, "{report}");
    }
}

#[test]
fn crs_attack_families_recall_floors() {
    let Some(dir) = corpora_dir() else { return };
    let Some(p) = corpus(&dir, "crs-attacks") else {
        return;
    };
    let (report, families) = crs::run(&p).unwrap();
    print!("{report}");
    // Floors a little under this session's figures, so no family regresses
    // unnoticed; 921, 930, 933, 934, 941, 943 and 944 are at the 90% goal,
    // 931 and 932 are not yet (see README).
    for (family, floor) in [
        ("921", 93.0),
        ("930", 92.0),
        ("931", 73.0),
        ("932", 85.0),
        ("933", 94.0),
        ("934", 91.0),
        ("941", 90.5),
        ("943", 98.0),
        ("944", 93.5),
    ] {
        let f = families
            .iter()
            .find(|f| f.family == family)
            .unwrap_or_else(|| panic!("crs-{family} was not graded:\n{report}"));
        assert!(
            f.recall() >= floor,
            "crs-{family} below {floor}%:\n{report}"
        );
    }
}

/// The default paranoia level flags none of the generated benign
/// requests (searches, names with apostrophes, free text, JSON bodies,
/// same-host and partner URLs); each higher level flags at least as many.
#[test]
fn paranoia_levels_cost_what_they_say() {
    let (pl1, flagged) = sqli::generated_fp(1);
    assert!(pl1 == 0.0, "paranoia 1 flags benign requests: {flagged:#?}");
    let mut last = pl1;
    for level in 2..=4 {
        let (fp, _) = sqli::generated_fp(level);
        assert!(fp >= last, "paranoia {level}: {fp}% < {last}%");
        last = fp;
    }
    assert!(
        last > 0.0,
        "the higher levels add shapes that ordinary text carries"
    );
}
