//! Offline analysis: a capture file through the live path's parser,
//! observer, analysers, detectors and (dry-run) decisions. Time is the packet time, so an old capture is
//! judged as it was when it was recorded.

use std::path::Path;

use serde::Serialize;

use crate::{
    capture::config::CaptureConfig,
    capture::pcap::{PcapError, PcapStats, Reassembler, read_file},
    config::Config,
    engine::{Engine, EngineError, Use},
    finding::Finding,
    jwt::{JwtAnalyzer, JwtStats, keys::fetch_jwks},
    observe::{Observation, ObserveStats, Observer},
};

/// Errors of an offline run.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The capture file.
    #[error(transparent)]
    Pcap(#[from] PcapError),
    /// The analysing stages' files (keys, lists, GeoIP, OpenAPI).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What an offline run counted.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OfflineStats {
    /// Packet-level counts.
    pub pcap: PcapStats,
    /// Request-level counts.
    pub observe: ObserveStats,
    /// Token analysis counts.
    pub jwt: JwtStats,
}

/// Reads `path` and returns every observation in time order.
pub fn analyze_file(
    path: &Path,
    cfg: &CaptureConfig,
) -> Result<(Vec<Observation>, OfflineStats), PcapError> {
    let mut reassembler = Reassembler::new(cfg.reassembly_limits());
    let mut observer = Observer::new(cfg);
    let mut segments = Vec::new();
    let mut out = Vec::new();
    let mut read = PcapStats::default();
    read_file(path, &mut read, |link, ts, frame| {
        reassembler.packet(link, ts, frame, &mut segments);
        for seg in segments.drain(..) {
            observer.push(seg, &mut out);
        }
    })?;
    reassembler.stats.bad_records = read.bad_records;
    reassembler.stats.truncated = read.truncated;
    if read.bad_records > 0 || read.truncated {
        tracing::warn!(bad_records = read.bad_records, truncated = read.truncated,
                       file = %path.display(), "malformed capture records were skipped");
    }
    reassembler.finish(&mut segments);
    for seg in segments.drain(..) {
        observer.push(seg, &mut out);
    }
    observer.flush(&mut out);
    out.sort_by_key(|o| o.time);
    Ok((
        out,
        OfflineStats {
            pcap: reassembler.stats,
            observe: observer.stats,
            jwt: JwtStats::default(),
        },
    ))
}

/// Fetches each issuer's JWKS URL once (offline runs have no refresh loop).
/// A failed fetch is reported and the issuer keeps its file keys.
fn fetch_remote_keys(analyzer: &mut JwtAnalyzer) {
    let urls = analyzer.jwks_urls();
    if urls.is_empty() {
        return;
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let client = reqwest::Client::new();
    for (i, url, ..) in urls {
        let result = rt.block_on(fetch_jwks(&client, &url));
        if let Err(e) = &result {
            tracing::warn!(error = %e, "JWKS fetch failed; the issuer keeps its file keys");
        }
        // Nothing waits yet offline, so nothing is judged here.
        analyzer.set_fetched_keys(i, result.map_err(|e| e.to_string()), &mut Vec::new());
    }
}

/// Reads `path` and returns every finding in time order, with the counts.
pub fn findings_of_file(
    path: &Path,
    config: &Config,
) -> Result<(Vec<Finding>, OfflineStats), OfflineError> {
    run_file(path, config).map(|(_, findings, stats)| (findings, stats))
}

/// Runs every stage over `path`; returns the stages (with what they
/// learnt), the findings in time order, and the counts.
pub fn run_file(
    path: &Path,
    config: &Config,
) -> Result<(Engine, Vec<Finding>, OfflineStats), OfflineError> {
    let (observations, mut stats) = analyze_file(path, &config.capture)?;
    let mut stages = Engine::from_config(config, Use::Offline)?;
    fetch_remote_keys(&mut stages.analyzer);
    let mut out = Vec::new();
    for o in &observations {
        stages.analyze(o, &mut out);
    }
    stages.analyzer.finish(&mut out);
    out.sort_by_key(|f| f.time);
    stages.decide(&mut out);
    stats.jwt = stages.analyzer.stats.clone();
    Ok((stages, out, stats))
}
