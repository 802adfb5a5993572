//! The introduction port of a public host, and this host's own
//! introductions.
//!
//! ```text
//!   datagram from the underlay --> per-source limiter --> IntroductionReceiver --> card
//!                                  (evicts the least       (budget, decrypt, admitted?,
//!                                   recently used)          replay?, budget, signature)
//! ```
//!
//! The per-source limiter keeps one source from spending the receiver's
//! budget of checks alone; the budget, shared by all sources, caps the work
//! a flood from any number of (spoofed) sources can cause. Both drop and
//! count; neither ever refuses every new source.
//!
//! This host's own card leaves sealed to each recipient's WireGuard key
//! ([`sentrymesh_mesh::introduction`]); a hidden host sends none at all.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Instant;

use rand_core::OsRng;
use sentrymesh_mesh::{
    IntroductionReceiver, IntroductionStats, OperatorId, SignedCard, WgPublicKey, seal_introduction,
};
use sentrymesh_tunnel::RateLimiter;

/// What introductions did, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntroductionCounters {
    /// Datagrams dropped by the per-source limiter, unread.
    pub rate_limited: u64,
    /// What the receiver did with the rest.
    pub received: IntroductionStats,
    /// Introductions of this host sealed, one for each peer without a
    /// session every five seconds.
    pub sealed: u64,
}

/// The receiving side: the per-source limiter in front of the receiver.
pub(super) struct Introductions {
    limiter: RateLimiter,
    receiver: IntroductionReceiver,
    rate_limited: u64,
    sealed: u64,
}

impl Introductions {
    /// Receives for the host with WireGuard private key `wg_secret`, from
    /// `now` (Unix seconds).
    pub(super) fn new(wg_secret: &[u8; 32], now: u64) -> Self {
        Self {
            limiter: RateLimiter::new(),
            receiver: IntroductionReceiver::new(wg_secret, now),
            rate_limited: 0,
            sealed: 0,
        }
    }

    /// The card in the datagram `bytes` heard from `source` at `at` (Unix
    /// seconds `now`), when it gets past the limiter and the receiver's
    /// checks for an operator in `admitted`.
    pub(super) fn handle(
        &mut self,
        source: IpAddr,
        bytes: &[u8],
        admitted: &BTreeSet<OperatorId>,
        at: Instant,
        now: u64,
    ) -> Option<SignedCard> {
        if !self.limiter.allow(at, source) {
            self.rate_limited += 1;
            return None;
        }
        match self.receiver.handle_introduction(bytes, admitted, now) {
            Ok(card) => Some(card),
            Err(error) => {
                tracing::debug!("an introduction from {source} is dropped: {error}");
                None
            }
        }
    }

    /// `card` sealed at `now` to the host whose WireGuard key is
    /// `recipient`; `None` for a hidden host's card, or a recipient key that
    /// cannot be sealed to.
    pub(super) fn seal(
        &mut self,
        card: &SignedCard,
        recipient: &WgPublicKey,
        now: u64,
    ) -> Option<Vec<u8>> {
        match seal_introduction(card, recipient, now, &mut OsRng) {
            Ok(sealed) => {
                self.sealed += 1;
                Some(sealed)
            }
            Err(error) => {
                tracing::debug!("no introduction to {recipient}: {error}");
                None
            }
        }
    }

    /// What was counted so far.
    pub(super) fn counters(&self) -> IntroductionCounters {
        IntroductionCounters {
            rate_limited: self.rate_limited,
            received: self.receiver.stats(),
            sealed: self.sealed,
        }
    }
}
