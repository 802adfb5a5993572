//! How much of a handshake flood the kernel sheds before the data path
//! reads it.
//!
//! While handshake messages overflow the handshake queue, every one the
//! queue refuses was still copied out of the socket, looked at and thrown
//! away: under a flood at one core's speed that reading, not the cookie
//! replies, is what takes the data path's time from the data. So while the
//! queue overflows, a socket filter
//! ([`socket_filter`](crate::sys::socket_filter)) lets only one in N of
//! the handshake messages through, at random, and the kernel frees the
//! rest on arrival. What gets through is about what the queue would have
//! taken anyway, so a new peer's chance of a cookie reply stays what it
//! was.
//!
//! Messages without a cookie (`mac2` zero) and messages that claim one
//! (`mac2` set) have a rate each, since a filter can tell them apart but
//! cannot check a cookie: a flood of the first kind (what a flooder without
//! cookies sends) never sheds a peer's retry with the cookie it was given;
//! a flood of the second kind (random `mac2`s, each refused at the
//! reserved room after a MAC) is shed too, and a retry with a cookie then
//! takes its chance with it.
//!
//! Each rate follows the flood of its kind in windows of [`WINDOW`]:
//! doubled after a window in which the queue refused a message of that
//! kind, halved after [`CALM_WINDOWS`] windows in a row in which it refused
//! none of that kind and the backlog never passed the load threshold, so
//! it settles near the flood's rate over what the queue takes and lets go
//! a few seconds after the flood ends. A flood that pauses and comes back
//! finds the filter still there.

use std::time::{Duration, Instant};

use crate::sys::socket_filter::ShedRates;

/// How long the shedding rates hold before they are reconsidered.
pub(super) const WINDOW: Duration = Duration::from_millis(100);

/// Calm windows in a row after which half as much is shed.
pub(super) const CALM_WINDOWS: u32 = 10;

/// The most that is shed: one in this many passes. A flood would need
/// millions of messages a second for it to matter.
pub(super) const MAX_ONE_IN: u32 = 4096;

/// The two kinds of handshake message the filter tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cookie {
    /// `mac2` is zero: the sender has no cookie.
    None,
    /// `mac2` is set: a cookie, or bytes that claim to be one.
    Claimed,
}

impl Cookie {
    /// The kind of the handshake message `message`, by its last 16 bytes.
    pub(super) fn of(message: &[u8]) -> Self {
        let mac2 = &message[message.len().saturating_sub(16)..];
        if mac2.iter().all(|&byte| byte == 0) {
            Self::None
        } else {
            Self::Claimed
        }
    }
}

/// One kind's rate and what the current window saw of it.
#[derive(Debug, Clone, Copy)]
struct Level {
    /// One in this many messages of the kind reaches the socket; 1: all.
    one_in: u32,
    /// Whether the queue refused a message of the kind this window.
    overflowed: bool,
    /// Calm windows in a row, up to the current one.
    calm: u32,
}

impl Level {
    const IDLE: Self = Self {
        one_in: 1,
        overflowed: false,
        calm: 0,
    };

    /// Closes a window in which the backlog passed the load threshold or
    /// not (`loaded`).
    fn close_window(&mut self, loaded: bool) {
        if self.overflowed {
            self.one_in = (self.one_in * 2).min(MAX_ONE_IN);
            self.calm = 0;
        } else if loaded {
            self.calm = 0;
        } else {
            self.calm += 1;
            if self.calm >= CALM_WINDOWS {
                self.one_in = (self.one_in / 2).max(1);
                self.calm = 0;
            }
        }
        self.overflowed = false;
    }
}

/// The shedding rates and what the current window saw.
#[derive(Debug)]
pub(super) struct Shedding {
    no_cookie: Level,
    claimed_cookie: Level,
    /// When the current window ends.
    window_ends: Instant,
    /// Whether the backlog passed the load threshold in the current window.
    loaded: bool,
}

impl Shedding {
    /// Nothing shed; the first window starts at `now`.
    pub(super) fn new(now: Instant) -> Self {
        Self {
            no_cookie: Level::IDLE,
            claimed_cookie: Level::IDLE,
            window_ends: now + WINDOW,
            loaded: false,
        }
    }

    /// The rates the socket's filter applies.
    pub(super) fn rates(&self) -> ShedRates {
        ShedRates {
            no_cookie: self.no_cookie.one_in,
            claimed_cookie: self.claimed_cookie.one_in,
        }
    }

    /// Whether anything is shed: the interface is under load meanwhile.
    pub(super) fn is_shedding(&self) -> bool {
        self.rates().sheds()
    }

    /// When the rates may next change, while anything is shed: the run
    /// loop wakes then, so the filter goes once a flood is over even if
    /// nothing arrives any more.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.is_shedding().then_some(self.window_ends)
    }

    /// The queue refused a handshake message of kind `cookie`: it was
    /// full (and, for a claimed cookie, the reserved room refused it too).
    pub(super) fn overflowed(&mut self, cookie: Cookie) {
        match cookie {
            Cookie::None => self.no_cookie.overflowed = true,
            Cookie::Claimed => self.claimed_cookie.overflowed = true,
        }
    }

    /// The backlog passed the load threshold.
    pub(super) fn loaded(&mut self) {
        self.loaded = true;
    }

    /// Closes the windows that ended by `now` and returns the new rates if
    /// they changed. Windows that passed without a turn saw nothing: they
    /// were calm.
    pub(super) fn turn(&mut self, now: Instant) -> Option<ShedRates> {
        let before = self.rates();
        while self.window_ends <= now {
            self.no_cookie.close_window(self.loaded);
            self.claimed_cookie.close_window(self.loaded);
            self.loaded = false;
            self.window_ends += WINDOW;
            if !self.is_shedding() && self.window_ends <= now {
                // Nothing shed and nothing seen: start afresh at `now`
                // rather than closing every window since.
                self.window_ends = now + WINDOW;
            }
        }
        let after = self.rates();
        (after != before).then_some(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rates of `no_cookie` and `claimed_cookie`.
    fn rates(no_cookie: u32, claimed_cookie: u32) -> ShedRates {
        ShedRates {
            no_cookie,
            claimed_cookie,
        }
    }

    #[test]
    fn overflow_doubles_its_kinds_rate_up_to_its_bound() {
        let start = Instant::now();
        let mut shedding = Shedding::new(start);
        assert!(!shedding.is_shedding());
        assert_eq!(shedding.deadline(), None);
        let mut at = start;
        for expected in [2, 4, 8, 16] {
            shedding.overflowed(Cookie::None);
            // Nothing changes within a window.
            assert_eq!(shedding.turn(at + WINDOW / 2), None);
            at += WINDOW;
            assert_eq!(shedding.turn(at), Some(rates(expected, 1)));
        }
        assert!(shedding.is_shedding());
        assert_eq!(shedding.deadline(), Some(at + WINDOW));
        for _ in 0..20 {
            shedding.overflowed(Cookie::None);
            shedding.overflowed(Cookie::Claimed);
            at += WINDOW;
            shedding.turn(at);
        }
        assert_eq!(shedding.rates(), rates(MAX_ONE_IN, MAX_ONE_IN));
    }

    #[test]
    fn a_flood_of_claimed_cookies_sheds_only_its_kind() {
        let start = Instant::now();
        let mut shedding = Shedding::new(start);
        let mut at = start;
        for expected in [2, 4, 8] {
            shedding.overflowed(Cookie::Claimed);
            at += WINDOW;
            assert_eq!(shedding.turn(at), Some(rates(1, expected)));
        }
    }

    #[test]
    fn calm_windows_halve_it_and_a_loaded_one_holds_it() {
        let start = Instant::now();
        let mut shedding = Shedding::new(start);
        let mut at = start;
        for _ in 0..3 {
            shedding.overflowed(Cookie::None);
            shedding.overflowed(Cookie::Claimed);
            at += WINDOW;
            shedding.turn(at);
        }
        assert_eq!(shedding.rates(), rates(8, 8));
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
        assert_eq!(shedding.turn(at), Some(rates(4, 4)));
        // A flood of one kind holds its rate while the other lets go.
        for _ in 0..CALM_WINDOWS {
            shedding.overflowed(Cookie::Claimed);
            at += WINDOW;
            shedding.turn(at);
        }
        assert_eq!(
            shedding.rates(),
            rates(2, MAX_ONE_IN.min(4 << CALM_WINDOWS))
        );
    }

    #[test]
    fn a_quiet_spell_lets_go_in_one_turn() {
        let start = Instant::now();
        let mut shedding = Shedding::new(start);
        let mut at = start;
        for _ in 0..4 {
            shedding.overflowed(Cookie::None);
            at += WINDOW;
            shedding.turn(at);
        }
        assert_eq!(shedding.rates(), rates(16, 1));
        // No turn for a while (nothing arrived): four halvings' worth of
        // calm windows pass at once.
        let later = at + WINDOW * (4 * CALM_WINDOWS);
        assert_eq!(shedding.turn(later), Some(rates(1, 1)));
        assert!(!shedding.is_shedding());
        // And a long silence without shedding closes no window late.
        let much_later = later + Duration::from_secs(3600);
        assert_eq!(shedding.turn(much_later), None);
        shedding.overflowed(Cookie::None);
        assert_eq!(shedding.turn(much_later + WINDOW), Some(rates(2, 1)));
    }

    #[test]
    fn the_kind_is_read_from_mac2() {
        let mut message = [7u8; 148];
        message[132..].fill(0);
        assert_eq!(Cookie::of(&message), Cookie::None);
        message[147] = 1;
        assert_eq!(Cookie::of(&message), Cookie::Claimed);
        message[147] = 0;
        message[132] = 1;
        assert_eq!(Cookie::of(&message), Cookie::Claimed);
    }
}
