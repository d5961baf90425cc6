//! Offline analysis: a capture file through the live path's parser,
//! observer, analysers, detectors and (dry-run) decisions, streamed in
//! batches so memory is bounded whatever the file's size. Time is the
//! packet time, so an old capture is judged as it was when it was
//! recorded.

use std::{
    collections::BinaryHeap,
    path::Path,
    time::{Duration, SystemTime},
};

use serde::Serialize;

use crate::{
    capture::config::CaptureConfig,
    capture::pcap::{PcapError, PcapStats, Reassembler, read_file},
    config::Config,
    engine::{Engine, EngineError, Use},
    finding::Finding,
    jwt::{JwtAnalyzer, JwtStats, keys::fetch_jwks},
    observe::{Observation, ObserveStats, Observer, weight},
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
    /// Observations handed on before their time to keep the reorder
    /// window within its bytes (they may come after newer ones).
    pub released_early: u64,
}

/// Observations handed on per call while streaming.
const BATCH: usize = 1024;

/// How far behind the newest packet the reorder window may hold an
/// observation (beyond the response timeout): an unanswered request
/// comes out of the observer a timeout after it was sent.
const SLACK: Duration = Duration::from_secs(1);

/// Bytes of observations the reorder window holds at most; over it the
/// oldest go on early (counted in `ObserveStats::released_early`).
const WINDOW_BYTES: usize = 16 << 20;

/// One observation in the reorder window, ordered oldest first.
struct Held {
    time: SystemTime,
    seq: u64,
    obs: Observation,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: the heap's top is the oldest.
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

/// Puts the observer's output back in request-time order within a window
/// bounded in time and bytes.
struct Reorder {
    heap: BinaryHeap<Held>,
    bytes: usize,
    hold: Duration,
    seq: u64,
    released_early: u64,
}

impl Reorder {
    fn new(cfg: &CaptureConfig) -> Self {
        Self {
            heap: BinaryHeap::new(),
            bytes: 0,
            hold: cfg.response_timeout + SLACK,
            seq: 0,
            released_early: 0,
        }
    }

    fn push(&mut self, obs: Observation) {
        self.bytes += weight(&obs);
        self.seq += 1;
        self.heap.push(Held {
            time: obs.time,
            seq: self.seq,
            obs,
        });
    }

    /// Moves to `out` what is older than the window at `now`, and what
    /// the byte bound cannot hold.
    fn release(&mut self, now: SystemTime, out: &mut Vec<Observation>) {
        while let Some(top) = self.heap.peek() {
            let due = top.time + self.hold <= now;
            let over = self.bytes > WINDOW_BYTES;
            if !due && !over {
                break;
            }
            self.released_early += u64::from(!due);
            self.take(out);
        }
    }

    fn take(&mut self, out: &mut Vec<Observation>) {
        if let Some(h) = self.heap.pop() {
            self.bytes = self.bytes.saturating_sub(weight(&h.obs));
            out.push(h.obs);
        }
    }

    #[cfg(test)]
    fn drain(&mut self, out: &mut Vec<Observation>) {
        while !self.heap.is_empty() {
            self.take(out);
        }
    }
}

/// Reads `path` and hands its observations to `each` in batches, in
/// request-time order (within a window bounded in time and bytes, so
/// memory does not grow with the file). Requests without a response
/// within `capture.response_timeout` of packet time are unanswered, as
/// live.
pub fn observe_file(
    path: &Path,
    cfg: &CaptureConfig,
    mut each: impl FnMut(&[Observation]),
) -> Result<OfflineStats, PcapError> {
    let mut reassembler = Reassembler::new(cfg.reassembly_limits());
    let mut observer = Observer::new(cfg);
    let mut reorder = Reorder::new(cfg);
    let mut segments = Vec::new();
    let mut emitted = Vec::new();
    let mut ready = Vec::with_capacity(BATCH);
    let mut read = PcapStats::default();
    let mut now = SystemTime::UNIX_EPOCH;
    let mut expired_at = SystemTime::UNIX_EPOCH;
    read_file(path, &mut read, |link, ts, frame| {
        reassembler.packet(link, ts, frame, &mut segments);
        for seg in segments.drain(..) {
            now = now.max(seg.time);
            observer.push(seg, &mut emitted);
        }
        if now >= expired_at + SLACK {
            observer.expire(now, &mut emitted);
            expired_at = now;
        }
        for o in emitted.drain(..) {
            reorder.push(o);
        }
        reorder.release(now, &mut ready);
        if ready.len() >= BATCH {
            each(&ready);
            ready.clear();
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
        observer.push(seg, &mut emitted);
    }
    observer.flush(&mut emitted);
    for o in emitted.drain(..) {
        reorder.push(o);
    }
    // In batches: the window's contents are never held twice.
    while !reorder.heap.is_empty() {
        while ready.len() < BATCH && !reorder.heap.is_empty() {
            reorder.take(&mut ready);
        }
        each(&ready);
        ready.clear();
    }
    Ok(OfflineStats {
        pcap: reassembler.stats,
        observe: observer.stats,
        jwt: JwtStats::default(),
        released_early: reorder.released_early,
    })
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

/// Runs every stage over `path`, streaming: `each` gets each batch of
/// observations (in time order) with the findings made of it, decided
/// (sorted by time within the batch; the last call, with no observations,
/// has what the weak-secret search found). Returns the stages, with what
/// they learnt, and the counts.
pub fn stream_file(
    path: &Path,
    config: &Config,
    mut each: impl FnMut(&[Observation], &[Finding]),
) -> Result<(Engine, OfflineStats), OfflineError> {
    let mut stages = Engine::from_config(config, Use::Offline)?;
    fetch_remote_keys(&mut stages.analyzer);
    let mut out = Vec::new();
    let mut stats = observe_file(path, &config.capture, |batch| {
        stages.analyze_batch(batch, &mut out);
        out.sort_by_key(|f| f.time);
        stages.decide(&mut out);
        each(batch, &out);
        out.clear();
    })?;
    stages.analyzer.finish(&mut out);
    out.sort_by_key(|f| f.time);
    stages.decide(&mut out);
    each(&[], &out);
    stats.jwt = stages.analyzer.stats.clone();
    Ok((stages, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs_at(secs: u64) -> Observation {
        let mut o = crate::detect::tests::obs("10.0.0.1", "GET", "/", "", 200, 0);
        o.time = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        o
    }

    fn secs(out: &[Observation]) -> Vec<u64> {
        out.iter()
            .map(|o| {
                o.time
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
            })
            .collect()
    }

    #[test]
    fn the_window_restores_time_order_and_holds_no_more_than_its_bytes() {
        let cfg = CaptureConfig::default();
        let hold = cfg.response_timeout + SLACK;
        let mut r = Reorder::new(&cfg);
        let mut out = Vec::new();
        // An unanswered request comes out of the observer a timeout late.
        for t in [100, 101, 75, 102] {
            r.push(obs_at(t));
        }
        r.release(SystemTime::UNIX_EPOCH + Duration::from_secs(102), &mut out);
        assert!(out.is_empty(), "nothing is older than the window yet");
        r.release(
            SystemTime::UNIX_EPOCH + Duration::from_secs(101) + hold,
            &mut out,
        );
        assert_eq!(secs(&out), [75, 100, 101]);
        r.drain(&mut out);
        assert_eq!(secs(&out), [75, 100, 101, 102]);
        assert_eq!(r.released_early, 0);
        // A flood fills the bytes before the window's time: the oldest go
        // on early, and the window never holds much more than its bound.
        let mut r = Reorder::new(&cfg);
        let mut out = Vec::new();
        let one = weight(&obs_at(0));
        let n = WINDOW_BYTES / one * 2;
        for t in 0..n as u64 {
            r.push(obs_at(1_000 + t / 1_000));
            r.release(
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_000),
                &mut out,
            );
            assert!(r.bytes <= WINDOW_BYTES, "bounded");
        }
        assert!(r.released_early > 0);
        assert!(secs(&out).is_sorted(), "still oldest first");
    }
}
