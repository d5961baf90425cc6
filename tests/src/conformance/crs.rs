//! The OWASP CRS regression tests as attack cases: every stage that
//! expects a rule to fire, rebuilt as the raw request go-ftw would send,
//! and graded per family (921 protocol, 930 LFI, 931 RFI, 932 RCE, 933
//! PHP, 934 generic, 941 XSS, 942 SQLi, 943 session fixation, 944 Java)
//! by what jwtmon's injection detector reports for it after its own HTTP
//! parser read it.

use std::{fmt::Write as _, path::Path};

use anyhow::{Context, Result};
use base64::{Engine, engine::general_purpose::STANDARD};
use jwtmon::{
    detect::{config::InjectionConfig, inject::inspect},
    parse::parse_requests,
};
use serde_yaml_ng::Value;

/// One `expect_ids` stage.
#[derive(Debug)]
pub struct Case {
    /// `file#test_id`.
    pub name: String,
    /// The request bytes (`None`: an encoded request that does not decode).
    pub raw: Option<Vec<u8>>,
    /// The start of its payload, for reports.
    pub sample: String,
    /// CRS's own description calls the match a (known, expected) false
    /// positive: a benign text the rule is known to hit. Graded apart:
    /// not flagging it is right.
    pub known_false_positive: bool,
}

pub fn raw_request(input: &Value) -> Option<Vec<u8>> {
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

impl Case {
    /// Whether jwtmon reports the request with one of `own` kinds (a
    /// request that does not parse is not flagged).
    pub fn flagged_as(&self, cfg: &InjectionConfig, own: &[&str]) -> bool {
        self.raw
            .as_deref()
            .and_then(|raw| kinds(raw, cfg))
            .is_some_and(|k| k.iter().any(|k| own.contains(k)))
    }
}

/// Kinds found in a raw request (parsed by jwtmon first); `None` when it
/// does not parse.
pub fn kinds(raw: &[u8], cfg: &InjectionConfig) -> Option<Vec<&'static str>> {
    let req = parse_requests(raw, true).into_iter().next()?.ok()?;
    Some(
        inspect(cfg, &req)
            .into_iter()
            .map(|h| h.kind.name())
            .collect(),
    )
}

/// Every `expect_ids` stage of the YAML files in `dir`, in file order.
pub fn cases(dir: &Path) -> Result<Vec<Case>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let doc: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&f)?)
            .with_context(|| format!("parsing {}", f.display()))?;
        let Some(Value::Sequence(tests)) = doc.get("tests") else {
            continue;
        };
        let stem = f.file_stem().unwrap_or_default().to_string_lossy();
        for t in tests {
            let id = t.get("test_id").and_then(Value::as_u64).unwrap_or(0);
            let desc = t
                .get("desc")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase();
            let known_false_positive =
                desc.contains("false positive") || desc.contains("false-positive");
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
                let sample = input
                    .get("data")
                    .or_else(|| input.get("uri"))
                    .and_then(Value::as_str)
                    .unwrap_or("(encoded)")
                    .chars()
                    .take(100)
                    .collect();
                out.push(Case {
                    name: format!("{stem}#{id}"),
                    raw: raw_request(input),
                    sample,
                    known_false_positive,
                });
            }
        }
    }
    Ok(out)
}

/// The families graded, with the finding kinds that are their own.
pub const FAMILIES: [(&str, &str, &[&str]); 9] = [
    (
        "921",
        "REQUEST-921-PROTOCOL-ATTACK",
        // CRS files its LDAP injection rule (921200) here.
        &[
            "injection_crlf",
            "request_smuggling",
            "injection_ldap",
            "evasion_content_type",
            "evasion_parser_confusion",
            // 921240 is mod_proxy's `unix:` socket request (CVE-2021-40438),
            // which jwtmon names for what it does: a server-side request.
            "injection_ssrf",
        ],
    ),
    (
        "930",
        "REQUEST-930-APPLICATION-ATTACK-LFI",
        &["injection_path_traversal", "probe_leftover_file"],
    ),
    (
        "931",
        "REQUEST-931-APPLICATION-ATTACK-RFI",
        // CRS files includes through fetchable schemes (`file://`,
        // `gopher://`, `ldap://`, `local_file://`, 931130) here; jwtmon
        // names a URL that reaches local services a server-side request.
        &["injection_rfi", "injection_ssrf"],
    ),
    (
        "932",
        "REQUEST-932-APPLICATION-ATTACK-RCE",
        // CRS files SMTP, IMAP and POP3 command injection (932300-932321)
        // here, and uploads of restricted file names (932180).
        &[
            "injection_command",
            "injection_mail",
            "upload_restricted_file",
        ],
    ),
    (
        "933",
        "REQUEST-933-APPLICATION-ATTACK-PHP",
        &["injection_php"],
    ),
    (
        "934",
        "REQUEST-934-APPLICATION-ATTACK-GENERIC",
        &[
            "injection_ssti",
            "injection_ssrf",
            "injection_prototype_pollution",
            "injection_code",
            "injection_orm",
        ],
    ),
    (
        "941",
        "REQUEST-941-APPLICATION-ATTACK-XSS",
        // CRS's attribute-vector rule (941130) also matches external
        // entity declarations (`<!ENTITY % x SYSTEM "...">`), which jwtmon
        // names for what they do.
        &["injection_xss", "injection_xxe"],
    ),
    (
        "943",
        "REQUEST-943-APPLICATION-ATTACK-SESSION-FIXATION",
        &["session_fixation"],
    ),
    (
        "944",
        "REQUEST-944-APPLICATION-ATTACK-JAVA",
        &["injection_java", "injection_jndi"],
    ),
];

/// One family's figures.
#[derive(Debug, Default)]
pub struct FamilyReport {
    /// CRS rule family (`941`).
    pub family: &'static str,
    /// `expect_ids` cases.
    pub attacks: usize,
    /// Found with one of the family's own kinds.
    pub detected: usize,
    /// Found with any request-content kind.
    pub detected_any: usize,
    /// Refused by the HTTP parser (malformed: counted, not analysed).
    pub refused: usize,
    /// Stages CRS documents as known false positives (not attacks).
    pub known_false_positives: usize,
    /// Of those, flagged by the family's own kinds.
    pub known_false_positives_flagged: usize,
    /// Missed cases.
    pub missed: Vec<String>,
}

impl FamilyReport {
    /// Own-kind recall in percent.
    pub fn recall(&self) -> f64 {
        100.0 * self.detected as f64 / self.attacks.max(1) as f64
    }
}

/// Grades every family present under `dir` (the `crs-attacks` folder).
pub fn run(dir: &Path) -> Result<(String, Vec<FamilyReport>)> {
    run_at(dir, 1)
}

/// [`run`] at a paranoia level (1 to 4).
pub fn run_at(dir: &Path, paranoia: u8) -> Result<(String, Vec<FamilyReport>)> {
    let cfg = InjectionConfig {
        max_value_bytes: 64 * 1024,
        paranoia,
        ..InjectionConfig::default()
    };
    let mut reports = Vec::new();
    let mut text = String::new();
    for (family, sub, own) in FAMILIES {
        let path = dir.join(sub);
        if !path.is_dir() {
            let _ = writeln!(text, "crs-{family}: SKIP ({} is absent)", path.display());
            continue;
        }
        let mut r = FamilyReport {
            family,
            ..FamilyReport::default()
        };
        for case in cases(&path)? {
            if case.known_false_positive {
                r.known_false_positives += 1;
                if case.flagged_as(&cfg, own) {
                    r.known_false_positives_flagged += 1;
                    r.missed.push(format!(
                        "known false positive flagged {}: {}",
                        case.name, case.sample
                    ));
                }
                continue;
            }
            r.attacks += 1;
            let Some(k) = case.raw.as_deref().and_then(|raw| kinds(raw, &cfg)) else {
                r.refused += 1;
                continue;
            };
            if k.iter().any(|k| own.contains(k)) {
                r.detected += 1;
            } else {
                r.missed.push(format!(
                    "missed {}: {} (found {k:?})",
                    case.name, case.sample
                ));
            }
            if !k.is_empty() {
                r.detected_any += 1;
            }
        }
        let _ = writeln!(
            text,
            "crs-{family}: {}/{} expect_ids cases found by the family's own kinds ({:.1}% recall; any kind {:.1}%; {} refused by the parser as malformed; {} of {} stages CRS documents as known false positives flagged)",
            r.detected,
            r.attacks,
            r.recall(),
            100.0 * r.detected_any as f64 / r.attacks.max(1) as f64,
            r.refused,
            r.known_false_positives_flagged,
            r.known_false_positives,
        );
        reports.push(r);
    }
    Ok((text, reports))
}
