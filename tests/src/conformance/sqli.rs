//! SQL injection detection against the OWASP CRS 942 regression tests
//! (recall on the `expect_ids` cases) and libinjection's list of benign
//! strings that naive detectors flag (false-positive rate, each line sent
//! as a query parameter value). Requests go through jwtmon's own HTTP
//! parser before the detector sees them.

use std::{fmt::Write as _, path::Path};

use anyhow::Result;
use jwtmon::detect::config::InjectionConfig;

use super::crs::kinds;

/// Recall and false-positive figures.
#[derive(Debug, Default)]
pub struct SqliReport {
    /// `expect_ids` cases.
    pub attacks: usize,
    /// Of those, detected as `injection_sqli`.
    pub detected: usize,
    /// Of those, detected as any injection kind.
    pub detected_any: usize,
    /// Benign strings.
    pub benign: usize,
    /// Of those, flagged as `injection_sqli`.
    pub false_positives: usize,
    /// Of those, flagged as any kind.
    pub false_positives_any: usize,
    /// Stages CRS documents as known false positives (not attacks).
    pub known_false_positives: usize,
    /// Of those, flagged as `injection_sqli`.
    pub known_false_positives_flagged: usize,
    /// Missed attacks and flagged benign strings (for the report).
    pub examples: Vec<String>,
}

impl SqliReport {
    /// Recall in percent.
    pub fn recall(&self) -> f64 {
        100.0 * self.detected as f64 / self.attacks.max(1) as f64
    }

    /// False-positive rate in percent.
    pub fn fp_rate(&self) -> f64 {
        100.0 * self.false_positives as f64 / self.benign.max(1) as f64
    }
}

/// Grades `crs` (the `crs-942-sqli` folder) and `benign` (the
/// `false_positives.txt` file); either may be absent.
pub fn run(crs: Option<&Path>, benign: Option<&Path>) -> Result<(String, SqliReport)> {
    run_at(crs, benign, 1)
}

/// Share of the generated benign requests ([`super::benign`]) flagged by
/// any kind at `paranoia`, with the first few flagged.
pub fn generated_fp(paranoia: u8) -> (f64, Vec<String>) {
    let cfg = InjectionConfig {
        paranoia,
        ..InjectionConfig::default()
    };
    let reqs = super::benign::requests();
    let mut flagged = Vec::new();
    for raw in &reqs {
        let k = kinds(raw, &cfg).unwrap_or_default();
        if !k.is_empty() {
            let line = String::from_utf8_lossy(raw);
            flagged.push(format!("{k:?}: {}", line.lines().next().unwrap_or("")));
        }
    }
    (
        100.0 * flagged.len() as f64 / reqs.len().max(1) as f64,
        flagged,
    )
}

/// [`run`] at a paranoia level (1 to 4).
pub fn run_at(
    crs: Option<&Path>,
    benign: Option<&Path>,
    paranoia: u8,
) -> Result<(String, SqliReport)> {
    let cfg = InjectionConfig {
        max_value_bytes: 64 * 1024,
        paranoia,
        ..InjectionConfig::default()
    };
    let mut r = SqliReport::default();
    let mut unparsed = 0;
    if let Some(dir) = crs {
        for case in super::crs::cases(dir)? {
            if case.known_false_positive {
                // CRS's own "false positive" stages are benign texts.
                r.known_false_positives += 1;
                if case.flagged_as(&cfg, &["injection_sqli"]) {
                    r.known_false_positives_flagged += 1;
                }
                continue;
            }
            r.attacks += 1;
            let Some(k) = case.raw.as_deref().and_then(|raw| kinds(raw, &cfg)) else {
                unparsed += 1;
                r.examples.push(format!("unparsed {}", case.name));
                continue;
            };
            if k.contains(&"injection_sqli") {
                r.detected += 1;
            } else {
                r.examples
                    .push(format!("missed {}: {}", case.name, case.sample));
            }
            if !k.is_empty() {
                r.detected_any += 1;
            }
        }
    }
    if let Some(file) = benign {
        for line in std::fs::read_to_string(file)?.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            r.benign += 1;
            let q: String = form_urlencoded::byte_serialize(line.as_bytes()).collect();
            let raw = format!("GET /search?q={q} HTTP/1.1\r\nHost: api.test\r\n\r\n");
            let k = kinds(raw.as_bytes(), &cfg).unwrap_or_default();
            if k.contains(&"injection_sqli") {
                r.false_positives += 1;
            }
            if !k.is_empty() {
                r.false_positives_any += 1;
                r.examples.push(format!("false positive {k:?}: {line}"));
            }
        }
    }
    let mut report = String::new();
    if crs.is_some() {
        let _ = writeln!(
            report,
            "crs-942-sqli: {}/{} expect_ids cases detected as injection_sqli ({:.1}% recall; any injection kind {:.1}%; {unparsed} did not parse; {} of {} stages CRS documents as known false positives flagged)",
            r.detected,
            r.attacks,
            r.recall(),
            100.0 * r.detected_any as f64 / r.attacks.max(1) as f64,
            r.known_false_positives_flagged,
            r.known_false_positives,
        );
    }
    if benign.is_some() {
        let _ = writeln!(
            report,
            "libinjection false_positives.txt: {}/{} benign strings flagged as injection_sqli ({:.2}% false positives; any kind {}, {:.2}%)",
            r.false_positives,
            r.benign,
            r.fp_rate(),
            r.false_positives_any,
            100.0 * r.false_positives_any as f64 / r.benign.max(1) as f64
        );
    }
    Ok((report, r))
}
