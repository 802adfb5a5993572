//! How much of a handshake flood the kernel sheds before the data path
//! reads it.
//!
//! While handshake messages overflow the handshake queue, every one the
//! queue refuses was still copied out of the socket, looked at and thrown
//! away: under a flood at one core's speed that reading, not the cookie
//! replies, is what takes the data path's time from the data. So while the
//! queue overflows, a socket filter
//! ([`socket_filter`](crate::sys::socket_filter)) lets only one in
//! `one_in` of the handshake messages without a cookie through, at random,
//! and the kernel frees the rest on arrival. What gets through is about
//! what the queue would have taken anyway, so a new peer's chance of a
//! cookie reply stays what it was, and a message with a cookie is never
//! shed.
//!
//! `one_in` follows the flood in windows of [`WINDOW`]: doubled after a
//! window in which the queue refused a message, halved after
//! [`CALM_WINDOWS`] windows in a row in which it never passed the load
//! threshold, so it settles near the flood's rate over what the queue takes
//! and lets go a few seconds after the flood ends. A flood that pauses and
//! comes back finds the filter still there.

use std::time::{Duration, Instant};

/// How long the shedding rate holds before it is reconsidered.
pub(super) const WINDOW: Duration = Duration::from_millis(100);

/// Calm windows in a row after which half as much is shed.
pub(super) const CALM_WINDOWS: u32 = 10;

/// The most that is shed: one in this many passes. A flood would need
/// millions of messages a second for it to matter.
pub(super) const MAX_ONE_IN: u32 = 4096;

/// The shedding rate and what the current window saw.
#[derive(Debug)]
pub(super) struct Shedding {
    /// One in this many handshake messages without a cookie reaches the
    /// socket; 1 sheds none.
    one_in: u32,
    /// When the current window ends.
    window_ends: Instant,
    /// Whether the queue refused a message in the current window.
    overflowed: bool,
    /// Whether the backlog passed the load threshold in the current window.
    loaded: bool,
    /// Calm windows in a row, up to the current one.
    calm: u32,
}

impl Shedding {
    /// Nothing shed; the first window starts at `now`.
    pub(super) fn new(now: Instant) -> Self {
        Self {
            one_in: 1,
            window_ends: now + WINDOW,
            overflowed: false,
            loaded: false,
            calm: 0,
        }
    }

    /// One in how many handshake messages without a cookie passes (1: all).
    pub(super) fn one_in(&self) -> u32 {
        self.one_in
    }

    /// Whether anything is shed: the interface is under load meanwhile.
    pub(super) fn is_shedding(&self) -> bool {
        self.one_in > 1
    }

    /// When the rate may next change, while anything is shed: the run loop
    /// wakes then, so the filter goes once a flood is over even if nothing
    /// arrives any more.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.is_shedding().then_some(self.window_ends)
    }

    /// The queue refused a handshake message: it was full.
    pub(super) fn overflowed(&mut self) {
        self.overflowed = true;
    }

    /// The backlog passed the load threshold.
    pub(super) fn loaded(&mut self) {
        self.loaded = true;
    }

    /// Closes the windows that ended by `now` and returns the new rate if
    /// it changed. Windows that passed without a turn saw nothing: they
    /// were calm.
    pub(super) fn turn(&mut self, now: Instant) -> Option<u32> {
        let before = self.one_in;
        while self.window_ends <= now {
            if self.overflowed {
                self.one_in = (self.one_in * 2).min(MAX_ONE_IN);
                self.calm = 0;
            } else if self.loaded {
                self.calm = 0;
            } else {
                self.calm += 1;
                if self.calm >= CALM_WINDOWS {
                    self.one_in = (self.one_in / 2).max(1);
                    self.calm = 0;
                }
            }
            self.overflowed = false;
            self.loaded = false;
            self.window_ends += WINDOW;
            if self.one_in == 1 && self.window_ends <= now {
                // Nothing shed and nothing seen: start afresh at `now`
                // rather than closing every window since.
                self.window_ends = now + WINDOW;
            }
        }
        (self.one_in != before).then_some(self.one_in)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_doubles_the_rate_up_to_its_bound() {
        let start = Instant::now();
        let mut shedding = Shedding::new(start);
        assert!(!shedding.is_shedding());
        assert_eq!(shedding.deadline(), None);
        let mut at = start;
        for expected in [2, 4, 8, 16] {
            shedding.overflowed();
            // Nothing changes within a window.
            assert_eq!(shedding.turn(at + WINDOW / 2), None);
            at += WINDOW;
            assert_eq!(shedding.turn(at), Some(expected));
        }
        assert!(shedding.is_shedding());
        assert_eq!(shedding.deadline(), Some(at + WINDOW));
        for _ in 0..20 {
            shedding.overflowed();
            at += WINDOW;
            shedding.turn(at);
        }
        assert_eq!(shedding.one_in(), MAX_ONE_IN);
    }

    #[test]
    fn calm_windows_halve_it_and_a_loaded_one_holds_it() {
        let start = Instant::now();
        let mut shedding = Shedding::new(start);
        let mut at = start;
        for _ in 0..3 {
            shedding.overflowed();
            at += WINDOW;
            shedding.turn(at);
        }
        assert_eq!(shedding.one_in(), 8);
        // Nine calm windows, then one loaded: the count starts again.
        for _ in 0..CALM_WINDOWS - 1 {
            at += WINDOW;
            assert_eq!(shedding.turn(at), None);
        }
        shedding.loaded();
        at += WINDOW;
        assert_eq!(shedding.turn(at), None);
        for _ in 0..CALM_WINDOWS - 1 {
            at += WINDOW;
            assert_eq!(shedding.turn(at), None);
        }
        at += WINDOW;
        assert_eq!(shedding.turn(at), Some(4));
    }

    #[test]
    fn a_quiet_spell_lets_go_in_one_turn() {
        let start = Instant::now();
        let mut shedding = Shedding::new(start);
        let mut at = start;
        for _ in 0..4 {
            shedding.overflowed();
            at += WINDOW;
            shedding.turn(at);
        }
        assert_eq!(shedding.one_in(), 16);
        // No turn for a while (nothing arrived): four halvings' worth of
        // calm windows pass at once.
        let later = at + WINDOW * (4 * CALM_WINDOWS);
        assert_eq!(shedding.turn(later), Some(1));
        assert!(!shedding.is_shedding());
        // And a long silence without shedding closes no window late.
        let much_later = later + Duration::from_secs(3600);
        assert_eq!(shedding.turn(much_later), None);
        shedding.overflowed();
        assert_eq!(shedding.turn(much_later + WINDOW), Some(2));
    }
}
