//! The data path's heartbeat: the data-path thread records the time of
//! each turn of its run loop, and the task that pings systemd's watchdog
//! pings only while every data path has turned recently. A thread stuck in
//! a turn then stops the pings, and systemd restarts the service.
//!
//! ```text
//!   data-path thread                     supervisor (tokio)
//!   ----------------                     ------------------
//!   epoll_wait returns, now = clock      every WatchdogSec/2:
//!   heartbeat.beat(now)  ---- atomic --> heartbeat.is_recent(now, WatchdogSec/2)?
//!   serve the turn                         yes: WATCHDOG=1   no: withhold, log
//! ```
//!
//! An idle loop still turns: its deadline is at most a second away (the
//! MTU check), so a healthy heartbeat is never older than about a second.
//! Neither side reads the clock here: both pass `now`, so the tests jump
//! time instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The time of a data path's last turn, shared between the thread that
/// beats and the task that checks. Clones share the same heartbeat.
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    /// The instant the stored offsets count from.
    origin: Instant,
    /// Nanoseconds from `origin` to the last beat.
    last: Arc<AtomicU64>,
}

impl Heartbeat {
    /// A heartbeat whose first beat is at `now`.
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            origin: now,
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records a turn at `now`. A `now` before the last beat (a caller
    /// with an older reading of the clock) does not move the beat back.
    pub(crate) fn beat(&self, now: Instant) {
        let offset = u64::try_from(now.saturating_duration_since(self.origin).as_nanos())
            .unwrap_or(u64::MAX);
        self.last.fetch_max(offset, Ordering::Relaxed);
    }

    /// How long before `now` the last beat was (zero for a beat after it).
    pub(crate) fn age(&self, now: Instant) -> Duration {
        let last = self.origin + Duration::from_nanos(self.last.load(Ordering::Relaxed));
        now.saturating_duration_since(last)
    }

    /// Whether the last beat was at most `max_age` before `now`.
    pub(crate) fn is_recent(&self, now: Instant, max_age: Duration) -> bool {
        self.age(now) <= max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_AGE: Duration = Duration::from_secs(15);

    #[test]
    fn a_heartbeat_is_recent_until_it_is_older_than_the_limit() {
        let start = Instant::now();
        let heartbeat = Heartbeat::new(start);
        assert!(heartbeat.is_recent(start, MAX_AGE));
        assert!(heartbeat.is_recent(start + MAX_AGE, MAX_AGE));
        assert!(!heartbeat.is_recent(start + MAX_AGE + Duration::from_nanos(1), MAX_AGE));
        assert_eq!(
            heartbeat.age(start + Duration::from_secs(20)),
            Duration::from_secs(20)
        );
    }

    #[test]
    fn each_beat_renews_it_and_a_stuck_turn_lets_it_go_stale() {
        let start = Instant::now();
        let heartbeat = Heartbeat::new(start);
        // A loop turning every second, watched from another clone.
        let watcher = heartbeat.clone();
        for second in 1..=60 {
            let now = start + Duration::from_secs(second);
            heartbeat.beat(now);
            assert!(watcher.is_recent(now + Duration::from_millis(999), MAX_AGE));
        }
        // Then a turn that never ends: no more beats.
        let last = start + Duration::from_secs(60);
        assert!(watcher.is_recent(last + MAX_AGE, MAX_AGE));
        assert!(!watcher.is_recent(last + MAX_AGE + Duration::from_millis(1), MAX_AGE));
        // The loop comes back: recent again.
        heartbeat.beat(last + Duration::from_secs(100));
        assert!(watcher.is_recent(last + Duration::from_secs(100), MAX_AGE));
    }

    #[test]
    fn an_older_reading_does_not_move_the_beat_back() {
        let start = Instant::now();
        let heartbeat = Heartbeat::new(start);
        heartbeat.beat(start + Duration::from_secs(10));
        heartbeat.beat(start + Duration::from_secs(3));
        assert_eq!(
            heartbeat.age(start + Duration::from_secs(10)),
            Duration::ZERO
        );
        // A check with a reading older than the beat: age zero, recent.
        assert!(heartbeat.is_recent(start + Duration::from_secs(5), Duration::ZERO));
    }
}
