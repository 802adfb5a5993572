//! The time model of sentrymesh: two clocks, each for its own purpose, and
//! neither ever read by a core.
//!
//! * **Monotonic time** (`std::time::Instant`) runs the protocol timers: the
//!   tunnel's rekeys, retries, keepalives and cookie lifetimes. It only has
//!   to move forward at the right pace; it means nothing outside this
//!   process, and a jump of the wall clock (NTP stepping, an operator's
//!   `date -s`) must not fire or stall a timer.
//! * **Wall-clock time** ([`UnixTime`], seconds since the Unix epoch) is for
//!   what is signed and expires: a card's validity window, when a vouch or a
//!   revocation was issued, when a sealed bundle was made. Other operators'
//!   machines read these times, so they must be the one time everyone
//!   shares; [`CLOCK_SKEW`] is how far two of them may disagree. The mesh
//!   is given only this clock, so its own rates (gossip and introduction
//!   budgets, cookie secrets) count the same seconds.
//!
//! Both are passed in by the caller as `now` — the daemon reads its clocks,
//! a test or a simulation advances virtual ones — so every behaviour of the
//! cores is reproducible with virtual time. A core never calls
//! `Instant::now()` or `SystemTime::now()`.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// How far apart the clocks of two operators' machines may be: a card or a
/// bundle up to this many seconds in the future is already accepted.
pub const CLOCK_SKEW: u64 = 300;

/// A point in wall-clock time in seconds since the Unix epoch, shown as a
/// UTC date and time such as `2026-05-01 12:00:00 UTC`. The default is the
/// epoch, before any time a caller passes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// `secs` seconds later, or the last time there is.
    pub const fn saturating_add(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// `secs` seconds earlier, or the epoch.
    pub const fn saturating_sub(self, secs: u64) -> Self {
        Self(self.0.saturating_sub(secs))
    }

    /// The seconds from `earlier` to this time; zero when `earlier` is
    /// later.
    pub const fn secs_since(self, earlier: UnixTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// `secs` seconds later. Overflows as `u64` addition does; use
/// [`UnixTime::saturating_add`] with a time from the network.
impl Add<u64> for UnixTime {
    type Output = Self;

    fn add(self, secs: u64) -> Self {
        Self(self.0 + secs)
    }
}

/// Moves `secs` seconds later. Overflows as `u64` addition does.
impl AddAssign<u64> for UnixTime {
    fn add_assign(&mut self, secs: u64) {
        self.0 += secs;
    }
}

/// `secs` seconds earlier. Overflows as `u64` subtraction does; use
/// [`UnixTime::saturating_sub`] with a time from the network.
impl Sub<u64> for UnixTime {
    type Output = Self;

    fn sub(self, secs: u64) -> Self {
        Self(self.0 - secs)
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0 / 86_400;
        let secs = self.0 % 86_400;
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days; every step stays in range for
/// any `u64` count of seconds).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(UnixTime(0).to_string(), "1970-01-01 00:00:00 UTC");
        assert_eq!(UnixTime(951_782_400).to_string(), "2000-02-29 00:00:00 UTC");
        assert_eq!(
            UnixTime(1_777_593_600 + 3661).to_string(),
            "2026-05-01 01:01:01 UTC"
        );
        assert_eq!(
            UnixTime(4_102_444_799).to_string(),
            "2099-12-31 23:59:59 UTC"
        );
    }

    #[test]
    fn arithmetic_in_seconds() {
        let t = UnixTime(1_000);
        assert_eq!(t + 60, UnixTime(1_060));
        assert_eq!(t - 60, UnixTime(940));
        assert_eq!(UnixTime(u64::MAX).saturating_add(1), UnixTime(u64::MAX));
        assert_eq!(UnixTime(5).saturating_sub(10), UnixTime(0));
        assert_eq!(t.secs_since(UnixTime(400)), 600);
        assert_eq!(UnixTime(400).secs_since(t), 0);
    }

    #[test]
    fn the_largest_time_does_not_overflow() {
        let shown = UnixTime(u64::MAX).to_string();
        assert!(shown.ends_with(" UTC"), "{shown}");
    }
}
