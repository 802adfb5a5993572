//! The budget of expensive checks a receiver of introductions pays from,
//! with a share only introductions from a proved source may spend.

use sentrymesh_types::UnixTime;

use super::{CHECKS_PER_SECOND, RESERVED_FOR_PROVEN};

/// The checks a receiver may still pay for: a token bucket of
/// [`CHECKS_PER_SECOND`], refilled at that rate a second, whose last
/// [`RESERVED_FOR_PROVEN`] tokens only introductions carrying a valid cookie
/// MAC may take.
#[derive(Debug)]
pub(super) struct CheckBudget {
    tokens: u64,
    refilled_at: UnixTime,
}

impl CheckBudget {
    /// A full budget at `now`.
    pub(super) fn new(now: UnixTime) -> Self {
        Self {
            tokens: CHECKS_PER_SECOND,
            refilled_at: now,
        }
    }

    /// Whether the receiver is under load at `now`: the share anyone may
    /// spend is gone, and what is left is kept for proved sources.
    pub(super) fn under_load(&mut self, now: UnixTime) -> bool {
        self.refill(now);
        self.tokens <= RESERVED_FOR_PROVEN
    }

    /// Takes one check at `now`, from any token when the source is
    /// `proven`, else only from those above the reserve; `false` when none
    /// is left for it.
    pub(super) fn take(&mut self, now: UnixTime, proven: bool) -> bool {
        self.refill(now);
        let floor = if proven { 0 } else { RESERVED_FOR_PROVEN };
        if self.tokens <= floor {
            return false;
        }
        self.tokens -= 1;
        true
    }

    fn refill(&mut self, now: UnixTime) {
        // A clock stepped back refills from the new time on.
        if now != self.refilled_at {
            let elapsed = now.secs_since(self.refilled_at);
            self.tokens = elapsed
                .saturating_mul(CHECKS_PER_SECOND)
                .saturating_add(self.tokens)
                .min(CHECKS_PER_SECOND);
            self.refilled_at = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::NOW;

    #[test]
    fn it_refills_at_its_rate_and_survives_a_clock_step() {
        let mut budget = CheckBudget::new(NOW);
        assert!((0..CHECKS_PER_SECOND).all(|_| budget.take(NOW, true)));
        assert!(!budget.take(NOW, true));
        // A clock stepped back mints nothing, and refills count from there.
        assert!(!budget.take(NOW - 100, true));
        assert!((0..CHECKS_PER_SECOND).all(|_| budget.take(NOW - 99, true)));
        assert!(!budget.take(NOW - 99, true));
        // However long it was idle, it saves up one second's worth.
        assert!((0..CHECKS_PER_SECOND).all(|_| budget.take(NOW + 10_000, true)));
        assert!(!budget.take(NOW + 10_000, true));
    }

    #[test]
    fn the_reserve_is_for_proved_sources_only() {
        let mut budget = CheckBudget::new(NOW);
        let open = CHECKS_PER_SECOND - RESERVED_FOR_PROVEN;
        assert!(!budget.under_load(NOW));
        assert!((0..open).all(|_| budget.take(NOW, false)));
        assert!(budget.under_load(NOW));
        assert!(!budget.take(NOW, false), "the reserve is not for anyone");
        assert!((0..RESERVED_FOR_PROVEN).all(|_| budget.take(NOW, true)));
        assert!(!budget.take(NOW, true));
        assert!(!budget.under_load(NOW + 1), "a second refills it");
    }
}
