//! Readiness: an interface is ready when enough peers have a live session,
//! one whose handshake completed less than `REJECT_AFTER_TIME` (180 s) ago,
//! after which WireGuard no longer uses its keys.
//!
//! The native mode holds systemd's `READY=1` back until then (`[ready]` in
//! the config); `sentrymesh wait-ready` waits for it from a shell, before a
//! chain node starts.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use sentrymesh_tunnel::timers::REJECT_AFTER_TIME;

use crate::control::client;

/// How often `wait-ready` asks the daemon.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How many of `handshakes` (each peer's last completed handshake, since
/// the Unix epoch) are live at `now`.
pub fn live_sessions(handshakes: &[Option<Duration>], now: Duration) -> usize {
    handshakes
        .iter()
        .flatten()
        .filter(|&&at| now.saturating_sub(at) < REJECT_AFTER_TIME)
        .count()
}

/// The wall-clock time since the Unix epoch, as handshake times are given.
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Reads a duration: a whole number with a unit, `ms`, `s`, `m` or `h`
/// (`90s`, `2m`), or seconds without one.
///
/// # Errors
///
/// A message naming what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 90s, 2m, 500ms)"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "" | "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        _ => return Err(format!("`{unit}` is not a unit: use ms, s, m or h")),
    };
    Ok(duration)
}

/// `sentrymesh wait-ready`: waits until `interface` (or the only interface
/// running) has live sessions with at least `min_peers` peers, reporting on
/// `out` each time the count changes. Returns whether that happened within
/// `timeout`. A daemon that is not up yet, or does not answer, counts as no
/// peers: it may be starting.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn wait_ready(
    interface: Option<&str>,
    min_peers: usize,
    timeout: Duration,
    out: &mut impl Write,
) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    let mut last_report: Option<String> = None;
    loop {
        let report = match client::choose_interface(interface).and_then(|name| {
            let peers = client::peers(&client::socket_path(&name))?;
            let times: Vec<_> = peers.iter().map(|peer| peer.last_handshake).collect();
            Ok((name, live_sessions(&times, unix_now())))
        }) {
            Ok((name, live)) if live >= min_peers => {
                writeln!(out, "{name}: ready, {live} peers with a live session")?;
                return Ok(true);
            }
            Ok((name, live)) => format!("{name}: {live} of {min_peers} peers with a live session"),
            Err(error) => format!("waiting for the daemon: {error:#}"),
        };
        if last_report.as_ref() != Some(&report) {
            writeln!(out, "{report}")?;
            last_report = Some(report);
        }
        let now = Instant::now();
        if now >= deadline {
            writeln!(out, "not ready after {timeout:?}")?;
            return Ok(false);
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_live_for_180_seconds_after_its_handshake() {
        let now = Duration::from_secs(10_000);
        let handshakes = [
            None,
            Some(now - Duration::from_secs(5)),
            Some(now - Duration::from_secs(179)),
            Some(now - Duration::from_secs(180)),
            // A clock stepped back: a handshake "in the future" is recent.
            Some(now + Duration::from_secs(3)),
        ];
        assert_eq!(live_sessions(&handshakes, now), 3);
        assert_eq!(live_sessions(&[], now), 0);
    }

    #[test]
    fn durations_take_a_unit_or_mean_seconds() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 30 "), Ok(Duration::from_secs(30)));
        for bad in ["", "s", "-5s", "1.5s", "10 s", "3d", "99999999999999999999"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was taken");
        }
    }
}
