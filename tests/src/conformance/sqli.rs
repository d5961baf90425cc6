//! SQL injection detection against the OWASP CRS 942 regression tests
//! (recall on the `expect_ids` cases) and libinjection's list of benign
//! strings that naive detectors flag (false-positive rate, each line sent
//! as a query parameter value). Requests go through jwtmon's own HTTP
//! parser before the detector sees them.

use std::{fmt::Write as _, path::Path};

use anyhow::{Context, Result};
use base64::{Engine, engine::general_purpose::STANDARD};
use jwtmon::{
    detect::{config::InjectionConfig, inject::inspect},
    parse::parse_requests,
};
use serde_yaml_ng::Value;

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

fn raw_request(input: &Value) -> Option<Vec<u8>> {
    if let Some(enc) = input.get("encoded_request").and_then(Value::as_str) {
        return STANDARD.decode(enc.trim()).ok();
    }
    let method = input.get("method").and_then(Value::as_str).unwrap_or("GET");
    let uri = input.get("uri").and_then(Value::as_str).unwrap_or("/");
    let data = input.get("data").and_then(Value::as_str).unwrap_or("");
    let mut head = format!("{method} {uri} HTTP/1.1\r\n");
    let mut has_type = false;
    if let Some(Value::Mapping(h)) = input.get("headers") {
        for (k, v) in h {
            let (Some(k), Some(v)) = (k.as_str(), v.as_str()) else {
                continue;
            };
            if k.eq_ignore_ascii_case("content-length") {
                continue;
            }
            has_type |= k.eq_ignore_ascii_case("content-type");
            let _ = write!(head, "{k}: {v}\r\n");
        }
    }
    if !data.is_empty() && !has_type {
        // What CRS's test client (go-ftw) sends by default for a body.
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    let _ = write!(head, "Content-Length: {}\r\n\r\n", data.len());
    let mut raw = head.into_bytes();
    raw.extend_from_slice(data.as_bytes());
    Some(raw)
}

/// Kinds found in a raw request (parsed by jwtmon first); `None` when it
/// does not parse.
fn kinds(raw: &[u8], cfg: &InjectionConfig) -> Option<Vec<&'static str>> {
    let req = parse_requests(raw, true).into_iter().next()?.ok()?;
    Some(
        inspect(cfg, &req)
            .into_iter()
            .map(|h| h.kind.name())
            .collect(),
    )
}

/// Grades `crs` (the `crs-942-sqli` folder) and `benign` (the
/// `false_positives.txt` file); either may be absent.
pub fn run(crs: Option<&Path>, benign: Option<&Path>) -> Result<(String, SqliReport)> {
    let cfg = InjectionConfig {
        max_value_bytes: 64 * 1024,
        ..InjectionConfig::default()
    };
    let mut r = SqliReport::default();
    let mut unparsed = 0;
    if let Some(dir) = crs {
        let mut files: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let doc: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&f)?)
                .with_context(|| format!("parsing {}", f.display()))?;
            let Some(Value::Sequence(tests)) = doc.get("tests") else {
                continue;
            };
            for t in tests {
                let id = t.get("test_id").and_then(Value::as_u64).unwrap_or(0);
                let Some(Value::Sequence(stages)) = t.get("stages") else {
                    continue;
                };
                for st in stages {
                    let st = st.get("stage").unwrap_or(st);
                    let expect = st
                        .get("output")
                        .and_then(|o| o.get("log"))
                        .and_then(|l| l.get("expect_ids"))
                        .is_some();
                    let Some(input) = st.get("input") else {
                        continue;
                    };
                    if !expect {
                        continue;
                    }
                    r.attacks += 1;
                    let name = format!(
                        "{}#{id}",
                        f.file_stem().unwrap_or_default().to_string_lossy()
                    );
                    let Some(k) = raw_request(input).and_then(|raw| kinds(&raw, &cfg)) else {
                        unparsed += 1;
                        r.examples.push(format!("unparsed {name}"));
                        continue;
                    };
                    if k.contains(&"injection_sqli") {
                        r.detected += 1;
                    } else {
                        r.examples.push(format!(
                            "missed {name}: {}",
                            input
                                .get("data")
                                .or_else(|| input.get("uri"))
                                .and_then(Value::as_str)
                                .unwrap_or("(encoded)")
                                .chars()
                                .take(100)
                                .collect::<String>()
                        ));
                    }
                    if !k.is_empty() {
                        r.detected_any += 1;
                    }
                }
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
                r.examples.push(format!("false positive: {line}"));
            }
        }
    }
    let mut report = String::new();
    if crs.is_some() {
        let _ = writeln!(
            report,
            "crs-942-sqli: {}/{} expect_ids cases detected as injection_sqli ({:.1}% recall; any injection kind {:.1}%; {unparsed} did not parse)",
            r.detected,
            r.attacks,
            r.recall(),
            100.0 * r.detected_any as f64 / r.attacks.max(1) as f64
        );
    }
    if benign.is_some() {
        let _ = writeln!(
            report,
            "libinjection false_positives.txt: {}/{} benign strings flagged ({:.2}% false positives)",
            r.false_positives,
            r.benign,
            r.fp_rate()
        );
    }
    Ok((report, r))
}
