//! Conformance against the public corpora beside the project (skipped with
//! a message when `../shared/corpora` or `$JWTMON_CORPORA` is absent).

use jwtmon_tests::conformance::{corpora_dir, corpus, jws, llhttp};

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
