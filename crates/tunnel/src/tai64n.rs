//! TAI64N timestamps, the replay protection of handshake initiations, and the
//! wall clock they are read from.
//!
//! The engine reads no clock: the caller gives it one pairing of a monotonic
//! `Instant` with the Unix time at that instant, and the engine derives wall
//! time from it. Monotonic time cannot step backwards, so initiations carry
//! strictly increasing timestamps even if the system clock is set back.

use std::time::{Duration, Instant};

/// Length of a TAI64N timestamp on the wire.
pub(crate) const TIMESTAMP_LEN: usize = 12;

/// TAI64 label of the Unix epoch (2^62) plus the 10 s TAI-UTC offset of 1970,
/// as wireguard-go and the kernel encode it.
const TAI64_EPOCH: u64 = 0x4000_0000_0000_000a;

/// Nanoseconds are rounded down to a multiple of 2^24 ns (about 16.8 ms) so a
/// timestamp does not leak a precise clock reading (as wireguard-go does).
const WHITENER_MASK: u32 = (1 << 24) - 1;

/// A TAI64N timestamp: big-endian seconds then nanoseconds, so byte order is
/// time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Tai64N([u8; TIMESTAMP_LEN]);

impl Tai64N {
    /// The (whitened) timestamp of a Unix time.
    pub(crate) fn from_unix(since_epoch: Duration) -> Self {
        let mut bytes = [0u8; TIMESTAMP_LEN];
        let seconds = TAI64_EPOCH.wrapping_add(since_epoch.as_secs());
        bytes[..8].copy_from_slice(&seconds.to_be_bytes());
        let nanos = since_epoch.subsec_nanos() & !WHITENER_MASK;
        bytes[8..].copy_from_slice(&nanos.to_be_bytes());
        Self(bytes)
    }

    /// The timestamp with these wire bytes.
    pub(crate) fn from_bytes(bytes: [u8; TIMESTAMP_LEN]) -> Self {
        Self(bytes)
    }

    /// The wire bytes.
    pub(crate) fn as_bytes(&self) -> &[u8; TIMESTAMP_LEN] {
        &self.0
    }
}

/// A monotonic instant paired with the Unix time it corresponds to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    anchor: Instant,
    unix_at_anchor: Duration,
}

impl WallClock {
    pub(crate) fn new(anchor: Instant, unix_at_anchor: Duration) -> Self {
        Self {
            anchor,
            unix_at_anchor,
        }
    }

    /// The Unix time at `now`.
    pub(crate) fn unix_time(&self, now: Instant) -> Duration {
        if now >= self.anchor {
            self.unix_at_anchor + (now - self.anchor)
        } else {
            self.unix_at_anchor
                .saturating_sub(self.anchor.saturating_duration_since(now))
        }
    }

    /// The timestamp to put in an initiation sent at `now`.
    pub(crate) fn timestamp(&self, now: Instant) -> Tai64N {
        Tai64N::from_unix(self.unix_time(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_order_like_time_and_are_whitened() {
        let a = Tai64N::from_unix(Duration::new(1_700_000_000, 0));
        let b = Tai64N::from_unix(Duration::new(1_700_000_000, 20_000_000));
        let c = Tai64N::from_unix(Duration::new(1_700_000_001, 0));
        assert!(a < b && b < c);
        // Within one whitening step, two readings are equal.
        assert_eq!(
            a,
            Tai64N::from_unix(Duration::new(1_700_000_000, 1_000_000))
        );
        assert_eq!(
            a.as_bytes()[..8],
            (TAI64_EPOCH + 1_700_000_000).to_be_bytes()
        );
    }

    #[test]
    fn wall_clock_follows_the_monotonic_clock() {
        let start = Instant::now();
        let clock = WallClock::new(start, Duration::from_secs(1_000));
        assert_eq!(
            clock.unix_time(start + Duration::from_secs(5)),
            Duration::from_secs(1_005)
        );
        assert!(clock.timestamp(start) < clock.timestamp(start + Duration::from_millis(20)));
    }
}
