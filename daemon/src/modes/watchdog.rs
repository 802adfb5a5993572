//! systemd's watchdog (`WatchdogSec=`), fed by the data paths themselves.
//!
//! A ping from a timer of the async runtime says only that the runtime
//! runs: the data-path threads could be stuck and the service would still
//! count as healthy. So the ping is sent only while every interface's data
//! path has turned within the last half of the watchdog's interval (its
//! [`Heartbeat`]); a stuck one withholds the pings, and systemd restarts the
//! service when the interval runs out.

use std::time::{Duration, Instant};

use crate::dataplane::heartbeat::Heartbeat;
use crate::sys::systemd;

/// The watchdog's pings and the heartbeats they depend on.
pub(crate) struct Watchdog {
    /// How often to ping, and how old a heartbeat may be at a ping.
    interval: Duration,
    /// Each interface's data path, by interface name.
    data_paths: Vec<(String, Heartbeat)>,
}

/// What the watchdog does at one of its ticks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Every data path turned recently: send `WATCHDOG=1`.
    Ping,
    /// A data path has not turned for `age`: send nothing.
    Withhold {
        /// The interface of the stuck data path.
        interface: String,
        /// How long ago it last turned.
        age: Duration,
    },
}

impl Watchdog {
    /// The watchdog systemd asked for (`WATCHDOG_USEC`, for this process),
    /// over the data paths `data_paths`; `None` when it asked for none.
    pub(crate) fn from_env(data_paths: Vec<(String, Heartbeat)>) -> Option<Self> {
        systemd::watchdog_interval().map(|interval| Self::new(interval, data_paths))
    }

    /// A watchdog pinged every `interval`, over `data_paths`.
    pub(crate) fn new(interval: Duration, data_paths: Vec<(String, Heartbeat)>) -> Self {
        Self {
            interval,
            data_paths,
        }
    }

    /// How often to ping: half of `WatchdogSec=`.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether to ping at `now`: only when no data path's heartbeat is
    /// older than the ping interval.
    pub(crate) fn check(&self, now: Instant) -> Check {
        self.data_paths
            .iter()
            .find(|(_, heartbeat)| !heartbeat.is_recent(now, self.interval))
            .map_or(Check::Ping, |(interface, heartbeat)| Check::Withhold {
                interface: interface.clone(),
                age: heartbeat.age(now),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(15);

    #[test]
    fn pings_while_every_data_path_turns() {
        let start = Instant::now();
        let (a, b) = (Heartbeat::new(start), Heartbeat::new(start));
        let watchdog = Watchdog::new(
            INTERVAL,
            vec![("sm0".into(), a.clone()), ("sm1".into(), b.clone())],
        );
        assert_eq!(watchdog.check(start), Check::Ping);
        for second in 1..=120 {
            let now = start + Duration::from_secs(second);
            a.beat(now);
            b.beat(now);
            assert_eq!(
                watchdog.check(now + Duration::from_millis(500)),
                Check::Ping
            );
        }
    }

    #[test]
    fn a_stale_heartbeat_withholds_the_ping() {
        let start = Instant::now();
        let (a, b) = (Heartbeat::new(start), Heartbeat::new(start));
        let watchdog = Watchdog::new(
            INTERVAL,
            vec![("sm0".into(), a.clone()), ("sm1".into(), b.clone())],
        );
        // sm1's data path is stuck in a turn from the start; sm0's turns.
        let now = start + INTERVAL;
        a.beat(now);
        assert_eq!(watchdog.check(now), Check::Ping);
        let later = now + Duration::from_secs(1);
        a.beat(later);
        assert_eq!(
            watchdog.check(later),
            Check::Withhold {
                interface: "sm1".into(),
                age: INTERVAL + Duration::from_secs(1),
            }
        );
        // Once it turns again, the pings resume.
        b.beat(later);
        assert_eq!(watchdog.check(later), Check::Ping);
    }
}
