//! What one operator's hosts may make a member do: the bytes of gossip
//! they may send ([`ReceiveBudget`]), and how many of the operator's own
//! objects they may replace ([`Replacements`]). Both are per operator, not
//! per peer: an admitted rival can have a peer per card it signs, and its
//! share must not grow with them.

use sentrymesh_types::UnixTime;

use crate::gossip::{RECEIVE_BURST, RECEIVE_RATE, REPLACEMENT_BURST, REPLACEMENT_EVERY};

/// The bytes of gossip an operator's peers may still send: a token bucket
/// of [`RECEIVE_BURST`] bytes refilled at [`RECEIVE_RATE`] a second.
#[derive(Debug)]
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub(super) struct ReceiveBudget {
    bytes: u64,
    refilled_at: UnixTime,
}

impl ReceiveBudget {
    pub(super) fn new(now: UnixTime) -> Self {
        Self {
            bytes: RECEIVE_BURST,
            refilled_at: now,
        }
    }

    /// Takes `len` bytes at `now`; `false`, taking nothing, when there are
    /// not so many left.
    pub(super) fn take(&mut self, len: usize, now: UnixTime) -> bool {
        // A clock stepped back refills from the new time on.
        let elapsed = now.secs_since(self.refilled_at);
        if elapsed > 0 || now < self.refilled_at {
            self.bytes = elapsed
                .saturating_mul(RECEIVE_RATE)
                .saturating_add(self.bytes)
                .min(RECEIVE_BURST);
            self.refilled_at = now;
        }
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        if len > self.bytes {
            return false;
        }
        self.bytes -= len;
        true
    }
}

/// How many of its own objects an operator may still replace through
/// gossip (a card by a higher serial, a vouch or revocation by a later
/// date): a token bucket of [`REPLACEMENT_BURST`], one more every
/// [`REPLACEMENT_EVERY`] seconds.
#[derive(Debug)]
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub(super) struct Replacements {
    left: u64,
    refilled_at: UnixTime,
}

impl Replacements {
    pub(super) fn new(now: UnixTime) -> Self {
        Self {
            left: REPLACEMENT_BURST,
            refilled_at: now,
        }
    }

    /// Takes one replacement at `now`; `false` when none is left.
    pub(super) fn take(&mut self, now: UnixTime) -> bool {
        if now < self.refilled_at {
            // A clock stepped back refills from the new time on.
            self.refilled_at = now;
        }
        let earned = now.secs_since(self.refilled_at) / REPLACEMENT_EVERY;
        if earned > 0 {
            self.left = self.left.saturating_add(earned).min(REPLACEMENT_BURST);
            // Keep the part of an interval not yet earned.
            self.refilled_at += earned * REPLACEMENT_EVERY;
        }
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }
}
