//! Period reports over the register: incidents per kind and severity,
//! time to detect and to mitigate (median, p95), top sources, subjects and
//! endpoints, blocks issued and per-day counts; as JSON or Markdown (HTML
//! in [`super::html`]).

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write,
    time::{Duration, SystemTime},
};

use serde::Serialize;

use super::Incident;
use crate::finding::Severity;

/// Median and 95th percentile of a duration sample, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Spread {
    /// Sample size.
    pub n: usize,
    /// Median.
    pub median_ms: Option<f64>,
    /// 95th percentile (nearest rank).
    pub p95_ms: Option<f64>,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Self {
        v.sort_by(f64::total_cmp);
        let pick = |q: f64| {
            (!v.is_empty()).then(|| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1])
        };
        Self {
            n: v.len(),
            median_ms: pick(0.5),
            p95_ms: pick(0.95),
        }
    }
}

/// One day's count.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Incidents first seen that day, by severity (low..critical).
    pub by_severity: [u64; 4],
    /// All of them.
    pub total: u64,
}

/// A ranked name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ranked {
    /// Source pseudonym, subject or endpoint.
    pub name: String,
    /// Incidents.
    pub incidents: u64,
    /// Findings folded into them.
    pub findings: u64,
}

/// The report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Start (inclusive).
    #[serde(with = "humantime_serde")]
    pub from: SystemTime,
    /// End (exclusive).
    #[serde(with = "humantime_serde")]
    pub to: SystemTime,
    /// Incidents in the period.
    pub incidents: u64,
    /// Findings folded into them.
    pub findings: u64,
    /// Per kind.
    pub by_kind: BTreeMap<String, u64>,
    /// Per severity.
    pub by_severity: BTreeMap<String, u64>,
    /// Per status.
    pub by_status: BTreeMap<String, u64>,
    /// First request → detection.
    pub time_to_detect: Spread,
    /// First request → first action in force.
    pub time_to_mitigate: Spread,
    /// Most frequent sources.
    pub top_sources: Vec<Ranked>,
    /// Most frequent subjects.
    pub top_subjects: Vec<Ranked>,
    /// Most frequent endpoints.
    pub top_endpoints: Vec<Ranked>,
    /// Blocks issued.
    pub blocks: u64,
    /// Tokens revoked.
    pub revocations: u64,
    /// Per day, every day of the period (at most 400).
    pub per_day: Vec<Day>,
}

const TOP: usize = 10;

fn ms(a: SystemTime, b: SystemTime) -> f64 {
    b.duration_since(a).unwrap_or_default().as_secs_f64() * 1e3
}

/// `YYYY-MM-DD` of a time (UTC).
pub fn date(t: SystemTime) -> String {
    let mut s = humantime::format_rfc3339_seconds(t).to_string();
    s.truncate(10);
    s
}

fn rank(counts: HashMap<String, (u64, u64)>) -> Vec<Ranked> {
    let mut v: Vec<Ranked> = counts
        .into_iter()
        .map(|(name, (incidents, findings))| Ranked {
            name,
            incidents,
            findings,
        })
        .collect();
    v.sort_by(|a, b| (b.incidents, b.findings, &a.name).cmp(&(a.incidents, a.findings, &b.name)));
    v.truncate(TOP);
    v
}

/// Summarizes the incidents first seen in `[from, to)`.
pub fn summarize(all: &[Incident], from: SystemTime, to: SystemTime) -> Summary {
    let inc: Vec<&Incident> = all
        .iter()
        .filter(|i| i.first_seen >= from && i.first_seen < to)
        .collect();
    let mut by_kind = BTreeMap::new();
    let mut by_severity = BTreeMap::new();
    let mut by_status = BTreeMap::new();
    let (mut sources, mut subjects, mut endpoints) =
        (HashMap::new(), HashMap::new(), HashMap::new());
    let mut days: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    let day = Duration::from_hours(24);
    let mut d = from;
    while d < to && days.len() < 400 {
        days.insert(date(d), [0; 4]);
        d += day;
    }
    let (mut blocks, mut revocations) = (0, 0);
    for i in &inc {
        *by_kind.entry(i.kind.clone()).or_insert(0) += 1;
        *by_severity.entry(i.severity.to_string()).or_insert(0) += 1;
        *by_status.entry(i.status.as_str().to_string()).or_insert(0) += 1;
        let bump = |m: &mut HashMap<String, (u64, u64)>, k: &str| {
            let e = m.entry(k.to_string()).or_insert((0, 0));
            e.0 += 1;
            e.1 += i.count;
        };
        bump(&mut sources, &i.source);
        if let Some(s) = &i.subject {
            bump(&mut subjects, s);
        }
        bump(&mut endpoints, &i.endpoint);
        if let Some(c) = days.get_mut(&date(i.first_seen)) {
            c[i.severity as usize] += 1;
        }
        blocks += i.actions.iter().filter(|a| a.action == "block_ip").count() as u64;
        revocations += i
            .actions
            .iter()
            .filter(|a| a.action == "revoke_token")
            .count() as u64;
    }
    Summary {
        from,
        to,
        incidents: inc.len() as u64,
        findings: inc.iter().map(|i| i.count).sum(),
        by_kind,
        by_severity,
        by_status,
        time_to_detect: Spread::of(
            inc.iter()
                .map(|i| ms(i.first_seen, i.detected_at))
                .collect(),
        ),
        time_to_mitigate: Spread::of(
            inc.iter()
                .filter_map(|i| i.mitigated_at.map(|m| ms(i.first_seen, m)))
                .collect(),
        ),
        top_sources: rank(sources),
        top_subjects: rank(subjects),
        top_endpoints: rank(endpoints),
        blocks,
        revocations,
        per_day: days
            .into_iter()
            .map(|(date, by_severity)| Day {
                date,
                total: by_severity.iter().sum(),
                by_severity,
            })
            .collect(),
    }
}

/// The severities in index order.
pub const SEVERITIES: [Severity; 4] = [
    Severity::Low,
    Severity::Medium,
    Severity::High,
    Severity::Critical,
];

/// A spread as `median / p95`.
pub fn spread_text(s: &Spread) -> String {
    match (s.median_ms, s.p95_ms) {
        (Some(m), Some(p)) => format!("{m:.1} ms / {p:.1} ms (n={})", s.n),
        _ => "n/a".into(),
    }
}

/// The report as Markdown.
pub fn markdown(s: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# jwtmon incident report\n");
    let _ = writeln!(
        o,
        "Period: {} to {} (UTC)\n",
        date(s.from),
        date(s.to - Duration::from_secs(1))
    );
    let _ = writeln!(
        o,
        "- Incidents: **{}** ({} findings)\n- Blocks issued: **{}**, tokens revoked: **{}**\n\
         - Time to detect (median / p95): {}\n- Time to mitigate (median / p95): {}\n",
        s.incidents,
        s.findings,
        s.blocks,
        s.revocations,
        spread_text(&s.time_to_detect),
        spread_text(&s.time_to_mitigate)
    );
    let table = |o: &mut String, title: &str, head: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(o, "## {title}\n\n| {head} | Count |\n|---|---:|");
        if rows.is_empty() {
            let _ = writeln!(o, "| (none) | 0 |");
        }
        for (k, v) in rows {
            let _ = writeln!(o, "| {} | {v} |", k.replace('|', "\\|"));
        }
        o.push('\n');
    };
    let kv =
        |m: &BTreeMap<String, u64>| m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
    table(&mut o, "By kind", "Kind", kv(&s.by_kind));
    table(&mut o, "By severity", "Severity", kv(&s.by_severity));
    table(&mut o, "By status", "Status", kv(&s.by_status));
    let ranked = |v: &[Ranked]| {
        v.iter()
            .map(|r| {
                (
                    r.name.clone(),
                    format!("{} ({} findings)", r.incidents, r.findings),
                )
            })
            .collect()
    };
    table(&mut o, "Top sources", "Source", ranked(&s.top_sources));
    table(&mut o, "Top subjects", "Subject", ranked(&s.top_subjects));
    table(
        &mut o,
        "Top endpoints",
        "Endpoint",
        ranked(&s.top_endpoints),
    );
    table(
        &mut o,
        "Per day",
        "Date",
        s.per_day
            .iter()
            .map(|d| (d.date.clone(), d.total.to_string()))
            .collect(),
    );
    o
}
