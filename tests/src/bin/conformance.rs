//! `cargo xtask conformance --corpora DIR`: grades jwtmon against the public
//! corpora in DIR and prints agreement. Missing corpora are skipped with a
//! message; exit status 1 when any graded case disagrees.

use std::path::PathBuf;

use anyhow::{Result, bail};
use jwtmon_tests::conformance::{corpus, crs, jws, llhttp, sqli};

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
    let crs = corpus(&dir, "crs-942-sqli");
    let benign = corpus(&dir, "libinjection/false_positives.txt");
    if crs.is_some() || benign.is_some() {
        let (report, r) = sqli::run(crs.as_deref(), benign.as_deref())?;
        print!("{report}");
        if std::env::var_os("JWTMON_CONFORMANCE_VERBOSE").is_some() {
            for e in &r.examples {
                println!("  {e}");
            }
        }
        // Goals: recall >= 90%, false positives <= 2%.
        if (crs.is_some() && r.recall() < 90.0) || (benign.is_some() && r.fp_rate() > 2.0) {
            println!("SQLi goals not met (recall >= 90%, false positives <= 2%)");
            disagreements += 1;
        }
    }
    if let Some(p) = corpus(&dir, "crs-attacks") {
        let (report, families) = crs::run(&p)?;
        print!("{report}");
        for f in &families {
            if std::env::var_os("JWTMON_CONFORMANCE_VERBOSE").is_some() {
                for m in &f.missed {
                    println!("  {m}");
                }
            }
            if f.recall() < 90.0 {
                println!("crs-{}: goal not met (recall >= 90%)", f.family);
                disagreements += 1;
            }
        }
    }
    if let (Some(p), Some(fp)) = (
        corpus(&dir, "crs-attacks"),
        corpus(&dir, "libinjection/false_positives.txt"),
    ) {
        println!("\nparanoia levels: recall per CRS family, false positives (any kind)");
        println!(
            "| paranoia | 921 | 930 | 931 | 932 | 933 | 934 | 941 | 942 | 943 | 944 | libinjection FP | generated benign FP |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for level in 1..=4u8 {
            let (_, families) = crs::run_at(&p, level)?;
            let (_, s) = sqli::run_at(corpus(&dir, "crs-942-sqli").as_deref(), Some(&fp), level)?;
            let (gen_fp, flagged) = sqli::generated_fp(level);
            let mut row = format!("| {level} |");
            for f in &families {
                if f.family == "943" {
                    row.push_str(&format!(" {:.1}% |", s.recall()));
                }
                row.push_str(&format!(" {:.1}% |", f.recall()));
            }
            let any = 100.0 * s.false_positives_any as f64 / s.benign.max(1) as f64;
            row.push_str(&format!(" {any:.2}% | {gen_fp:.1}% |"));
            println!("{row}");
            if std::env::var_os("JWTMON_CONFORMANCE_VERBOSE").is_some() {
                for f in flagged {
                    println!("  level {level} flagged {f}");
                }
            }
        }
    }
    if disagreements > 0 {
        std::process::exit(1);
    }
    Ok(())
}
