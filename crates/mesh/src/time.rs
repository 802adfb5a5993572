//! Times as this crate takes them (Unix seconds from the caller, never from
//! a clock) and as it shows them to an operator (a UTC calendar date).

use std::fmt;

/// How far apart the clocks of two operators' machines may be: a card or a
/// bundle up to this many seconds in the future is already accepted.
pub const CLOCK_SKEW: u64 = 300;

/// A point in time in seconds since the Unix epoch, shown as a UTC date and
/// time such as `2026-05-01 12:00:00 UTC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub u64);

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
    fn the_largest_time_does_not_overflow() {
        let shown = UnixTime(u64::MAX).to_string();
        assert!(shown.ends_with(" UTC"), "{shown}");
    }
}
