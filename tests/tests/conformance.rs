//! Conformance against the public corpora beside the project (skipped with
//! a message when `../shared/corpora` or `$JWTMON_CORPORA` is absent).

use jwtmon_tests::conformance::{corpora_dir, corpus, llhttp};

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
