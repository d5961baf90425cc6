//! Request-rate spikes per source address (`rate_spike_ip`) and per token
//! (`rate_spike_token`): each key's requests are counted in fixed windows;
//! an exponentially weighted moving average of past windows is its
//! baseline. A window is a spike when it exceeds `factor` × the baseline
//! and `min_requests` once the baseline is learnt, or the absolute ceiling
//! at any time. One finding per key per window.

use std::{
    hash::Hash,
    num::NonZeroUsize,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::bounded::BoundedLru;
use serde_json::{Value, json};

use super::{Detector, config::RateConfig};
use crate::{analysis::Reporter, finding::Kind};

/// Weight of the newest window in the average.
const ALPHA: f64 = 0.3;

struct Track {
    window: u64,
    count: u64,
    first: SystemTime,
    average: f64,
    windows: u32,
    fired: bool,
}

/// Rate state for one kind of key.
pub struct Rate<K: Hash + Eq> {
    cfg: RateConfig,
    map: BoundedLru<K, Track>,
}

/// A spike: the evidence and the first request of its window.
pub struct Spike {
    /// Finding detail.
    pub detail: Value,
    /// First request of the window.
    pub first: SystemTime,
}

impl<K: Hash + Eq> Rate<K> {
    /// Empty state for at most `keys` keys.
    pub fn new(cfg: &RateConfig, keys: usize) -> Self {
        Self {
            cfg: cfg.clone(),
            map: BoundedLru::new(NonZeroUsize::new(keys.max(1)).unwrap_or(NonZeroUsize::MIN)),
        }
    }

    fn window_of(&self, t: SystemTime) -> u64 {
        let w = self.cfg.window.max(Duration::from_millis(1)).as_millis() as u64;
        t.duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64 / w)
    }

    /// Counts a request of `key` at `t`; returns a spike when this request
    /// makes its window one.
    pub fn hit(&mut self, key: K, t: SystemTime) -> Option<Spike> {
        let w = self.window_of(t);
        let track = self.map.get_or_insert_mut(key, || Track {
            window: w,
            count: 0,
            first: t,
            average: 0.0,
            windows: 0,
            fired: false,
        });
        if w > track.window {
            // Close the finished window, then decay over idle ones.
            let idle = (w - track.window - 1).min(1000) as i32;
            track.average = ALPHA * track.count as f64 + (1.0 - ALPHA) * track.average;
            track.average *= (1.0 - ALPHA).powi(idle);
            track.windows = track.windows.saturating_add(1 + idle as u32);
            track.window = w;
            track.count = 0;
            track.first = t;
            track.fired = false;
        }
        track.count += 1;
        if track.fired {
            return None;
        }
        let secs = self.cfg.window.as_secs_f64().max(0.001);
        let ceiling = self.cfg.ceiling_per_s as f64 * secs;
        let count = track.count as f64;
        let over_ceiling = self.cfg.ceiling_per_s > 0 && count > ceiling;
        let over_baseline = track.windows >= self.cfg.learning_windows
            && track.count >= self.cfg.min_requests
            && count > self.cfg.factor * track.average.max(1.0);
        if !(over_ceiling || over_baseline) {
            return None;
        }
        track.fired = true;
        Some(Spike {
            first: track.first,
            detail: json!({
                "requests": track.count,
                "window_s": secs,
                "baseline_per_window": (track.average * 10.0).round() / 10.0,
                "trigger": if over_ceiling { "ceiling" } else { "baseline" },
                "ceiling_per_s": self.cfg.ceiling_per_s,
            }),
        })
    }
}

/// `rate_spike_ip`: the request rate of each client address.
pub struct PerAddress(pub Rate<std::net::IpAddr>);

impl Detector for PerAddress {
    fn name(&self) -> &'static str {
        "rate_ip"
    }

    fn observe(&mut self, report: &mut Reporter<'_>) {
        let obs = report.observation();
        if let Some(s) = self.0.hit(obs.client_ip, obs.time) {
            report.finding(Kind::RateSpikeIp, s.first, s.detail);
        }
    }
}

/// `rate_spike_token`: the request rate of each bearer token.
pub struct PerToken(pub Rate<[u8; 32]>);

impl Detector for PerToken {
    fn name(&self) -> &'static str {
        "rate_token"
    }

    fn observe(&mut self, report: &mut Reporter<'_>) {
        let obs = report.observation();
        if let Some(c) = &obs.request.credentials
            && c.scheme.eq_ignore_ascii_case("bearer")
            && let Some(s) = self.0.hit(*c.digest(), obs.time)
        {
            report.finding(Kind::RateSpikeToken, s.first, s.detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
    }

    fn cfg() -> RateConfig {
        RateConfig {
            window: Duration::from_secs(10),
            factor: 10.0,
            min_requests: 50,
            learning_windows: 3,
            ceiling_per_s: 100,
        }
    }

    #[test]
    fn quiet_client_first_burst_is_not_a_spike() {
        let mut r = Rate::new(&cfg(), 10);
        for i in 0..5 {
            assert!(r.hit(1u8, at(i)).is_none());
        }
    }

    #[test]
    fn spike_over_own_baseline() {
        let mut r = Rate::new(&cfg(), 10);
        // Five windows of 5 requests each: baseline ≈ 5.
        for w in 0..5u64 {
            for i in 0..5 {
                assert!(r.hit(1u8, at(w * 10_000 + i * 100)).is_none());
            }
        }
        // 60 requests in the next window: > 10 × 5 and ≥ 50.
        let fired: Vec<usize> = (0..80u64)
            .filter_map(|i| r.hit(1u8, at(50_000 + i * 10)).map(|_| i as usize))
            .collect();
        assert_eq!(fired.len(), 1, "one finding per window");
        assert!(fired[0] >= 49 && fired[0] < 60, "{fired:?}");
    }

    #[test]
    fn steady_heavy_client_is_not_a_spike_but_ceiling_holds() {
        let mut r = Rate::new(&cfg(), 10);
        // 600 per window (60/s): heavy but steady, under the ceiling.
        for w in 0..6u64 {
            for i in 0..600 {
                assert!(r.hit(1u8, at(w * 10_000 + i * 16)).is_none());
            }
        }
        // A new address at 1001 requests in a window crosses the ceiling.
        let s = (0..1001u64).filter_map(|i| r.hit(2u8, at(i * 9))).count();
        assert_eq!(s, 1);
    }
}
