//! The CPU budget of signature verification: at most `limit` of each
//! second goes to verifying new tokens. A flood of unique forged tokens
//! (each a cache miss, each an RSA or ECDSA verify) then costs the
//! pipeline a bounded share of its core; the tokens beyond the budget get
//! the key-free checks only and are counted, so the sampling is visible.

use std::time::{Duration, Instant};

/// One-second windows of verification time.
#[derive(Debug)]
pub struct VerifyBudget {
    limit: Duration,
    window: Option<Instant>,
    spent: Duration,
}

/// The window the budget is counted over.
const WINDOW: Duration = Duration::from_secs(1);

impl VerifyBudget {
    /// At most `limit` of verification per second (`ZERO`: no limit).
    pub fn new(limit: Duration) -> Self {
        Self {
            limit,
            window: None,
            spent: Duration::ZERO,
        }
    }

    /// Whether a verification may start at `now`.
    pub fn allow(&mut self, now: Instant) -> bool {
        if self.limit.is_zero() {
            return true;
        }
        match self.window {
            Some(start) if now.saturating_duration_since(start) < WINDOW => {}
            _ => {
                self.window = Some(now);
                self.spent = Duration::ZERO;
            }
        }
        self.spent < self.limit
    }

    /// Records the time one verification took.
    pub fn spend(&mut self, took: Duration) {
        self.spent = self.spent.saturating_add(took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_second_waits_for_the_next() {
        let t0 = Instant::now();
        let mut b = VerifyBudget::new(Duration::from_millis(10));
        assert!(b.allow(t0));
        b.spend(Duration::from_millis(6));
        assert!(b.allow(t0 + Duration::from_millis(100)));
        b.spend(Duration::from_millis(6));
        assert!(!b.allow(t0 + Duration::from_millis(200)));
        assert!(!b.allow(t0 + Duration::from_millis(999)));
        assert!(b.allow(t0 + Duration::from_millis(1001)));
        let mut free = VerifyBudget::new(Duration::ZERO);
        free.spend(Duration::from_secs(5));
        assert!(free.allow(t0));
    }
}
