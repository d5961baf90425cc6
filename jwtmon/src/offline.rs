//! Offline analysis: a capture file through the live path's parser and
//! observer. Time is the packet time, so an old capture is judged as it was.

use std::path::Path;

use serde::Serialize;

use crate::{
    capture::pcap::{PcapError, PcapStats, Reassembler, read_file},
    config::CaptureConfig,
    observe::{Observation, ObserveStats, Observer},
};

/// What an offline run counted.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OfflineStats {
    /// Packet-level counts.
    pub pcap: PcapStats,
    /// Request-level counts.
    pub observe: ObserveStats,
}

/// Reads `path` and returns every observation in time order.
pub fn analyze_file(
    path: &Path,
    cfg: &CaptureConfig,
) -> Result<(Vec<Observation>, OfflineStats), PcapError> {
    let mut reassembler = Reassembler::default();
    let mut observer = Observer::new(cfg);
    let mut segments = Vec::new();
    let mut out = Vec::new();
    read_file(path, |link, ts, frame| {
        reassembler.packet(link, ts, frame, &mut segments);
        for seg in segments.drain(..) {
            observer.push(seg, &mut out);
        }
    })?;
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
        },
    ))
}
