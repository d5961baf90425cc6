//! Bulk blocklist import: one address or CIDR per line, `#` and `;`
//! comments (so Spamhaus DROP files load as they are), blank lines ignored.

use std::time::Duration;

use serde::Serialize;

use crate::{
    enforce::maps::{BlockSpec, Maps, MapsError},
    target::Target,
};

/// A line that could not be used.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line number.
    pub line: usize,
    /// The text of the entry.
    pub text: String,
    /// Why.
    pub reason: String,
}

/// What an import did.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// New entries.
    pub added: usize,
    /// Entries that existed and were refreshed.
    pub updated: usize,
    /// Lines that are not addresses or networks.
    pub invalid: Vec<Skipped>,
    /// Entries the allowlist covers (a block would never apply).
    pub allowlisted: Vec<Skipped>,
    /// Set when the import stopped early (e.g. the map is full).
    pub stopped: Option<String>,
}

/// Parses the file's text into (line number, entry) pairs and invalid lines.
pub fn parse(text: &str) -> (Vec<(usize, Target)>, Vec<Skipped>) {
    let mut entries = Vec::new();
    let mut invalid = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split(['#', ';']).next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        // Allow a trailing free-text column after whitespace.
        let token = line.split_whitespace().next().unwrap_or(line);
        match token.parse::<Target>() {
            Ok(t) => entries.push((i + 1, t)),
            Err(e) => invalid.push(Skipped {
                line: i + 1,
                text: token.chars().take(80).collect(),
                reason: e.to_string(),
            }),
        }
    }
    (entries, invalid)
}

/// Entries inserted between two generation writes: the kernel sees new
/// blocks after at most this many inserts instead of paying two extra
/// syscalls for every entry of a million-line list.
const GENERATION_EVERY: usize = 4096;

/// Imports `text` into the block maps.
pub fn import(
    maps: &mut Maps,
    text: &str,
    ttl: Option<Duration>,
    reason: &str,
) -> Result<ImportReport, MapsError> {
    let (entries, invalid) = parse(text);
    let mut report = ImportReport {
        invalid,
        ..Default::default()
    };
    let result = insert_all(maps, &entries, ttl, reason, &mut report);
    // Whatever was inserted, also before an error, becomes visible now.
    maps.new_generation()?;
    result.map(|()| report)
}

fn insert_all(
    maps: &mut Maps,
    entries: &[(usize, Target)],
    ttl: Option<Duration>,
    reason: &str,
    report: &mut ImportReport,
) -> Result<(), MapsError> {
    for (n, &(line, target)) in entries.iter().enumerate() {
        if n > 0 && n % GENERATION_EVERY == 0 {
            maps.new_generation()?;
        }
        let spec = BlockSpec {
            target,
            ttl,
            reason: reason.to_string(),
            origin: jwtmon_common::origin::IMPORT as u16,
        };
        match maps.insert_block(&spec) {
            Ok(true) => report.updated += 1,
            Ok(false) => report.added += 1,
            Err(MapsError::Allowlisted { allow, .. }) => report.allowlisted.push(Skipped {
                line,
                text: target.to_string(),
                reason: format!("covered by allowlist entry {allow}"),
            }),
            Err(e @ MapsError::Kernel { .. }) => {
                report.stopped = Some(format!("line {line}: {e}"));
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spamhaus_style_and_reports_bad_lines() {
        let text = "; Spamhaus DROP List 2026/11/21\n\
                    1.10.16.0/20 ; SBL256894\n\
                    \n\
                    # comment\n\
                    203.0.113.7   manual entry\n\
                    2001:db8::/32\n\
                    999.1.1.1\n\
                    10.0.0.0/33\n";
        let (entries, invalid) = parse(text);
        let got: Vec<String> = entries.iter().map(|(_, t)| t.to_string()).collect();
        assert_eq!(got, ["1.10.16.0/20", "203.0.113.7", "2001:db8::/32"]);
        assert_eq!(entries[0].0, 2);
        assert_eq!(invalid.iter().map(|s| s.line).collect::<Vec<_>>(), [7, 8]);
        assert!(invalid[1].reason.contains("/33"));
    }
}
