//! Clocks. Block expiries live in the kernel as CLOCK_MONOTONIC deadlines
//! (what `bpf_ktime_get_ns` reads), so they hold without the daemon; display
//! uses wall-clock time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// CLOCK_MONOTONIC now, in ns: the clock the kernel programs compare against.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Seconds since the Unix epoch.
pub fn unix_now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Longest TTL accepted (about ten years); longer means "permanent".
pub const MAX_TTL: Duration = Duration::from_hours(87600);

/// Parses a TTL such as `90s`, `10m`, `2h`, `7d`, `1h30m`; `0`, `permanent`
/// or `forever` mean no expiry (`None`).
pub fn parse_ttl(s: &str) -> Result<Option<Duration>, String> {
    let s = s.trim();
    if matches!(s, "0" | "permanent" | "forever" | "never") {
        return Ok(None);
    }
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("invalid TTL `{s}`: {e} (examples: 90s, 10m, 2h, 7d, permanent)"))?;
    if d < Duration::from_secs(1) {
        return Err(format!("invalid TTL `{s}`: shorter than one second"));
    }
    if d > MAX_TTL {
        return Err(format!(
            "invalid TTL `{s}`: longer than ten years (use `permanent`)"
        ));
    }
    Ok(Some(d))
}

/// A point in time: a duration ago (`24h`, `7d`, relative to `now`), a
/// date (`2026-11-01`, UTC midnight) or an RFC 3339 time.
pub fn parse_since(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    let s = s.trim();
    if let Ok(d) = humantime::parse_duration(s) {
        return now
            .checked_sub(d)
            .ok_or_else(|| format!("`{s}` reaches before 1970"));
    }
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    humantime::parse_rfc3339_weak(&full).map_err(|_| {
        format!("`{s}` is not a time: use a duration ago (24h, 7d), a date (2026-11-01) or RFC 3339 (2026-11-01T08:00:00Z)")
    })
}

/// Formats a duration compactly, to the second (e.g. `9m 58s`).
pub fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("10m").unwrap(), Some(Duration::from_mins(10)));
        assert_eq!(parse_ttl("1h30m").unwrap(), Some(Duration::from_mins(90)));
        assert_eq!(parse_ttl("2s").unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(parse_ttl("permanent").unwrap(), None);
        assert_eq!(parse_ttl("0").unwrap(), None);
        for bad in ["", "ten minutes", "10x", "-5m", "100ms", "20y"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn since_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            parse_since("24h", now).unwrap(),
            now - Duration::from_hours(24)
        );
        let d = parse_since("2026-11-01", now).unwrap();
        assert_eq!(
            humantime::format_rfc3339(d).to_string(),
            "2026-11-01T00:00:00Z"
        );
        assert!(parse_since("2026-11-01T08:30:00Z", now).is_ok());
        assert!(
            parse_since("yesterday", now)
                .unwrap_err()
                .contains("not a time")
        );
    }

    #[test]
    fn monotonic_advances() {
        let a = monotonic_ns();
        std::thread::sleep(Duration::from_millis(2));
        assert!(monotonic_ns() >= a + 1_000_000);
    }
}
