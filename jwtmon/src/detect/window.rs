//! Bounded sliding-window state shared by the behaviour detectors: event
//! counts per key and distinct values per key, each in an LRU of fixed
//! capacity, each keeping no more than its threshold needs. A key that has
//! fired stays quiet for one window, so a flood yields one finding per
//! window rather than one per request.

use std::{
    collections::VecDeque,
    hash::Hash,
    num::NonZeroUsize,
    time::{Duration, SystemTime},
};

use crate::bounded::BoundedLru;
use ipnetwork::IpNetwork;

/// The network `ip` belongs to at prefix lengths `v4`/`v6` (the /24 or
/// /48 that scans and stuffing are also counted per).
pub fn network_of(ip: std::net::IpAddr, (v4, v6): (u8, u8)) -> IpNetwork {
    let prefix = match ip {
        std::net::IpAddr::V4(_) => v4.min(32),
        std::net::IpAddr::V6(_) => v6.min(128),
    };
    IpNetwork::new(ip, prefix)
        .and_then(|n| IpNetwork::new(n.network(), prefix))
        .unwrap_or_else(|_| IpNetwork::from(ip))
}

/// What a window reports when its key crosses the threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crossing {
    /// Events (or distinct values) in the window, the crossing one included.
    pub count: usize,
    /// Time of the oldest event still in the window: the first offending
    /// request, for time-to-detect.
    pub first: SystemTime,
}

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n.max(1)).unwrap_or(NonZeroUsize::MIN)
}

struct Track<V> {
    events: VecDeque<(SystemTime, V)>,
    quiet_until: Option<SystemTime>,
}

/// Per key, the events of the last `window`; fires when more than
/// `threshold` fall in it. With `distinct`, an event whose value is
/// already in the window refreshes it instead of counting again.
pub struct Window<K: Hash + Eq, V = ()> {
    map: BoundedLru<K, Track<V>>,
    window: Duration,
    threshold: usize,
    distinct: bool,
}

impl<K: Hash + Eq, V: PartialEq> Window<K, V> {
    /// Counts events.
    pub fn counting(keys: usize, window: Duration, threshold: usize) -> Self {
        Self::new(keys, window, threshold, false)
    }

    /// Counts distinct values.
    pub fn distinct(keys: usize, window: Duration, threshold: usize) -> Self {
        Self::new(keys, window, threshold, true)
    }

    fn new(keys: usize, window: Duration, threshold: usize, distinct: bool) -> Self {
        Self {
            map: BoundedLru::new(cap(keys)),
            window,
            threshold,
            distinct,
        }
    }

    /// Records an event at `t`; returns the crossing when this event takes
    /// the key above the threshold (and the key is not quiet).
    pub fn hit(&mut self, key: K, value: V, t: SystemTime) -> Option<Crossing> {
        let track = self.map.get_or_insert_mut(key, || Track {
            events: VecDeque::new(),
            quiet_until: None,
        });
        let horizon = t.checked_sub(self.window).unwrap_or(SystemTime::UNIX_EPOCH);
        while track.events.front().is_some_and(|(at, _)| *at <= horizon) {
            track.events.pop_front();
        }
        if self.distinct
            && let Some(i) = track.events.iter().position(|(_, v)| *v == value)
        {
            track.events.remove(i);
        }
        track.events.push_back((t, value));
        // Only the newest threshold + 1 matter for "more than threshold".
        while track.events.len() > self.threshold + 1 {
            track.events.pop_front();
        }
        if track.events.len() <= self.threshold || track.quiet_until.is_some_and(|q| t < q) {
            return None;
        }
        track.quiet_until = Some(t + self.window);
        Some(Crossing {
            count: track.events.len(),
            first: track.events.front().map_or(t, |(at, _)| *at),
        })
    }

    /// The values (distinct, or one per event) in `key`'s window at `t`,
    /// at most threshold + 1 of them, newest last.
    pub fn values(&mut self, key: &K, t: SystemTime) -> Vec<&V> {
        let horizon = t.checked_sub(self.window).unwrap_or(SystemTime::UNIX_EPOCH);
        self.map.get(key).map_or_else(Vec::new, |track| {
            track
                .events
                .iter()
                .filter(|(at, _)| *at > horizon)
                .map(|(_, v)| v)
                .collect()
        })
    }

    /// Keys tracked.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000 + ms)
    }

    #[test]
    fn fires_above_threshold_once_per_window() {
        let mut w: Window<u8> = Window::counting(10, Duration::from_mins(1), 3);
        assert_eq!(w.hit(1, (), at(0)), None);
        assert_eq!(w.hit(1, (), at(10)), None);
        assert_eq!(w.hit(1, (), at(20)), None);
        let c = w.hit(1, (), at(30)).unwrap();
        assert_eq!((c.count, c.first), (4, at(0)));
        // Quiet for a window after firing.
        assert_eq!(w.hit(1, (), at(40)), None);
        // Another key is independent.
        assert_eq!(w.hit(2, (), at(40)), None);
        // After the window, a new burst fires again.
        for i in 0..3 {
            assert_eq!(w.hit(1, (), at(61_000 + i)), None);
        }
        assert!(w.hit(1, (), at(61_010)).is_some());
    }

    #[test]
    fn old_events_leave_the_window() {
        let mut w: Window<u8> = Window::counting(10, Duration::from_secs(1), 2);
        for i in 0..10 {
            // One every 600 ms: never three within a second.
            assert_eq!(w.hit(1, (), at(i * 600)), None);
        }
    }

    #[test]
    fn distinct_values_and_bounded_keys() {
        let mut w: Window<u8, u64> = Window::distinct(2, Duration::from_mins(1), 2);
        assert_eq!(w.hit(1, 7, at(0)), None);
        assert_eq!(w.hit(1, 7, at(1)), None);
        assert_eq!(w.hit(1, 7, at(2)), None);
        assert_eq!(w.hit(1, 8, at(3)), None);
        assert_eq!(w.hit(1, 9, at(4)).map(|c| c.count), Some(3));
        // Capacity two: a third key evicts the least recent.
        w.hit(2, 1, at(5));
        w.hit(3, 1, at(6));
        assert_eq!(w.len(), 2);
    }
}
