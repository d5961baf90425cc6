//! `cargo xtask conformance --corpora DIR`: grades jwtmon against the public
//! corpora in DIR and prints agreement. Missing corpora are skipped with a
//! message; exit status 1 when any graded case disagrees.

use std::path::PathBuf;

use anyhow::{Result, bail};
use jwtmon_tests::conformance::{corpus, jws, llhttp};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--corpora" => dir = args.next().map(PathBuf::from),
            other => bail!("unknown argument {other:?}; usage: conformance --corpora DIR"),
        }
    }
    let Some(dir) = dir.or_else(jwtmon_tests::conformance::corpora_dir) else {
        return Ok(());
    };
    if !dir.is_dir() {
        println!("SKIP: corpora directory {} not found", dir.display());
        return Ok(());
    }
    let mut disagreements = 0;
    if let Some(p) = corpus(&dir, "llhttp-request") {
        let (report, _, bad) = llhttp::run(&p)?;
        print!("{report}");
        disagreements += bad;
    }
    if let Some(p) = corpus(&dir, "wycheproof/json_web_signature_test.json") {
        let (report, _, bad) = jws::wycheproof(&p)?;
        print!("{report}");
        disagreements += bad;
    }
    if let Some(p) = corpus(&dir, "nginx-auth-jwt") {
        let (report, _, bad) = jws::nginx(&p)?;
        print!("{report}");
        disagreements += bad;
    }
    if disagreements > 0 {
        std::process::exit(1);
    }
    Ok(())
}
